"""flash_attention: dsllm's attention kernel, one signature for every accelerator.

  out = flash_attention(q, k, v, segment_ids, causal=True, sm_scale=None)

q [B, S, H, D]; k, v [B, S, K, D] with H a multiple of K (GQA/MQA, never
repeated); segment_ids [B, S] int32 or None; bf16 (or f16) in and out, fp32
softmax and accumulation. Differentiable in q, k, v (custom VJP).

Segment ids: 1, 2, ... number the packed documents of a row and 0 marks padding.
Each document must be one contiguous run of equal ids (what packing produces): the
kernels see documents as runs, so an id that reappears later in the row starts a
new document. Padding runs attend among themselves, so padded rows are finite.

Backends (chosen from jax.default_backend() unless `backend` is given):
- "mosaic_gpu": our Pallas Mosaic GPU kernels for Hopper (mgpu_forward,
  mgpu_backward). On CPU this runs under the Mosaic GPU interpreter, which is how
  the tests exercise it (slow: small shapes only).
- "splash": jax's TPU splash attention wrapped (tpu_splash); on CPU it runs in
  the TPU interpreter.
Sequence lengths that are not a multiple of the kernels' block are padded inside
(the padded rows form their own runs; real rows never see them) and sliced off.
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax.ad_checkpoint import checkpoint_name

from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_backward
from dsllm.kernels import mgpu_forward
from dsllm.kernels import mgpu_forward_persistent
from dsllm.kernels import schedule
from dsllm.kernels.mgpu_common import COMPUTE_WGS, Blocks

SUPPORTED_HEAD_DIMS = (64, 128)
# The name (jax.ad_checkpoint.checkpoint_name) of the forward kernel's out and lse as
# saved for the backward. A remat policy must save these names to keep the forward
# kernel out of the backward pass: the policy never sees the kernel primitive itself,
# which plgpu.kernel wraps in a custom_vmap_call (jax 0.11.2).
RESIDUALS_NAME = "flash_attention_residuals"
SUPPORTED_DTYPES = (jnp.bfloat16, jnp.float16)


def flash_attention(q, k, v, segment_ids=None, *, causal=True, sm_scale=None,
                    backend=None, blocks=None, interpret=None):
    """Attention over [B, S, H, D] queries and [B, S, K, D] keys/values. See module doc."""
    _check_inputs(q, k, v, segment_ids)
    D = q.shape[-1]
    sm_scale = float(D ** -0.5 if sm_scale is None else sm_scale)
    platform = jax.default_backend()
    if backend is None:
        backend = "splash" if platform == "tpu" else "mosaic_gpu"
    if interpret is None:
        interpret = platform == "cpu"
    if backend == "splash":
        from dsllm.kernels.tpu_splash import splash_attention
        return splash_attention(q, k, v, segment_ids, causal=causal, sm_scale=sm_scale,
                                interpret=bool(interpret))
    if backend != "mosaic_gpu":
        raise ValueError(f"unknown flash_attention backend {backend!r}: use 'mosaic_gpu' or 'splash'")
    if interpret is True:
        interpret = plgpu.InterpretGPUParams()
    if not interpret:
        _check_hopper()
    return _mosaic_gpu_attention(q, k, v, segment_ids, causal=causal, sm_scale=sm_scale,
                                 blocks=blocks or Blocks(), interpret=interpret or None)


def _check_inputs(q, k, v, segment_ids):
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"q, k, v must be [batch, seq, heads, head_dim]; got shapes "
                         f"{q.shape}, {k.shape}, {v.shape}")
    B, S, H, D = q.shape
    if k.shape != v.shape or k.shape[:2] != (B, S) or k.shape[3] != D:
        raise ValueError(f"k and v must be [{B}, {S}, kv_heads, {D}] like q {q.shape}; got "
                         f"{k.shape} and {v.shape} (self-attention: same batch and seq)")
    if H % k.shape[2]:
        raise ValueError(f"query heads ({H}) must be a multiple of key/value heads ({k.shape[2]})")
    if D not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"head_dim {D} is not supported: use one of {SUPPORTED_HEAD_DIMS}")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"q, k, v must share a dtype among bfloat16/float16; got "
                         f"{q.dtype}, {k.dtype}, {v.dtype}")
    if segment_ids is not None and (segment_ids.shape != (B, S) or
                                    not jnp.issubdtype(segment_ids.dtype, jnp.integer)):
        raise ValueError(f"segment_ids must be an integer [{B}, {S}] array; got "
                         f"{segment_ids.shape} {segment_ids.dtype}")


def _check_hopper():
    """The compiled kernels use wgmma and setmaxnreg, which exist on sm90 (Hopper) only."""
    capability = getattr(jax.devices()[0], "compute_capability", None)
    if capability is not None and str(capability).split(".")[0] != "9":
        raise ValueError(f"flash_attention's Mosaic GPU kernels need a Hopper GPU (compute "
                         f"capability 9.0); this device has {capability}. Use attention "
                         f"'cudnn' or 'xla' here.")


def padded_ranges(segment_ids, batch, seq_len, padded_len, *, causal):
    """block_math.row_ranges for seq_len real rows, extended to padded_len rows.

    Each padded row attends only itself (and is attended only by itself)."""
    ranges = bm.row_ranges(segment_ids, batch, seq_len, causal=causal)
    pad = padded_len - seq_len
    if not pad:
        return ranges
    tail = jnp.broadcast_to(jnp.arange(seq_len, padded_len, dtype=jnp.int32), (batch, pad))
    starts_ends = (tail, tail + 1, tail, tail + 1)
    return tuple(jnp.concatenate([r, t], axis=1) for r, t in zip(ranges, starts_ends))


def _mosaic_gpu_attention(q, k, v, segment_ids, *, causal, sm_scale, blocks, interpret):
    B, S = q.shape[:2]
    Sp = -(-S // blocks.seq_multiple) * blocks.seq_multiple
    ranges = padded_ranges(segment_ids, B, S, Sp, causal=causal)
    if Sp != S:
        q, k, v = (jnp.pad(x, ((0, 0), (0, Sp - S), (0, 0), (0, 0))) for x in (q, k, v))
    out = _attention(q, k, v, ranges, sm_scale, blocks, interpret)
    return out[:, :S]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _attention(q, k, v, ranges, sm_scale, blocks, interpret):
    out, _ = _forward(q, k, v, ranges, sm_scale, blocks, interpret)
    return out


# Programs of the persistent forward in the interpreter: few, so that each runs several
# work items (what the tests must cover: prefetch across items, the ring running on).
INTERPRET_PROGRAMS = 3


def _forward(q, k, v, ranges, sm_scale, blocks, interpret):
    kv_start, kv_end, _, _ = ranges
    if not blocks.persistent_forward:
        return mgpu_forward.forward(q, k, v, kv_start, kv_end, sm_scale=sm_scale, blocks=blocks,
                                    interpret=interpret)
    bounds = bm.block_bounds(kv_start, kv_end, tile_rows=COMPUTE_WGS * blocks.block_q,
                             chunk_rows=blocks.block_q, block=blocks.block_kv,
                             mask_all=blocks.mask_all_blocks)
    table = schedule.tile_table(bounds, COMPUTE_WGS, blocks.persistent_forward)
    programs = INTERPRET_PROGRAMS if interpret else _num_sms()
    return mgpu_forward_persistent.forward(q, k, v, kv_start, kv_end, table, sm_scale=sm_scale,
                                           blocks=blocks, max_programs=programs,
                                           interpret=interpret)


def _num_sms():
    """Streaming multiprocessors of the device (132 on H100/H200 SXM)."""
    return int(getattr(jax.devices()[0], "core_count", None) or 132)


def _attention_fwd(q, k, v, ranges, sm_scale, blocks, interpret):
    out, lse = _forward(q, k, v, ranges, sm_scale, blocks, interpret)
    out, lse = (checkpoint_name(x, RESIDUALS_NAME) for x in (out, lse))
    return out, (q, k, v, ranges, out, lse)


def _attention_bwd(sm_scale, blocks, interpret, residuals, do):
    q, k, v, ranges, out, lse = residuals
    dq, dk, dv = mgpu_backward.backward(q, k, v, out, lse, do, *ranges, sm_scale=sm_scale,
                                        blocks=blocks, interpret=interpret)
    return dq, dk, dv, None


_attention.defvjp(_attention_fwd, _attention_bwd)
