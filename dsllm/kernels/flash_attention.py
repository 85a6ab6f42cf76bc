"""flash_attention: dsllm's attention kernel, one signature for every accelerator.

  out = flash_attention(q, k, v, segment_ids, causal=True, sm_scale=None)

q [B, S, H, D]; k, v [B, S, K, D] with H a multiple of K (GQA/MQA, never
repeated); segment_ids [B, S] int32 or None; bf16 (or f16) in and out, fp32
softmax and accumulation. Differentiable in q, k, v (custom VJP). sm_scale (default
head_dim ** -0.5) must be positive and below MAX_SM_SCALE.

Segment ids: 1, 2, ... number the packed documents of a row and 0 marks padding.
Each document must be one contiguous run of equal ids (what packing produces): the
kernels see documents as runs, so an id that reappears later in the row starts a
new document. Padding runs attend among themselves, so padded rows are finite.

Backends (chosen from jax.default_backend() unless `backend` is given):
- "mosaic_gpu": our Pallas Mosaic GPU kernels for Hopper (mgpu_forward_persistent,
  or mgpu_forward per tile; mgpu_backward_fused or mgpu_backward's split kernels, see
  Blocks.backward). On CPU this runs under the Mosaic GPU interpreter, which is how
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

from dsllm.kernels import mgpu_backward
from dsllm.kernels import mgpu_backward_fused
from dsllm.kernels import mgpu_backward_persistent
from dsllm.kernels import mgpu_forward
from dsllm.kernels import mgpu_forward_persistent
from dsllm.kernels import schedule
from dsllm.kernels.mgpu_common import COMPUTE_WGS, Blocks
from dsllm.kernels.plan import make_plan, padded_length

SUPPORTED_HEAD_DIMS = (64, 128)
SUPPORTED_DTYPES = (jnp.bfloat16, jnp.float16)
# The name (jax.ad_checkpoint.checkpoint_name) of the forward kernel's out and lse as
# saved for the backward. A remat policy must save these names to keep the forward
# kernel out of the backward pass: the policy never sees the kernel primitive itself,
# which plgpu.kernel wraps in a custom_vmap_call (jax 0.11.2).
RESIDUALS_NAME = "flash_attention_residuals"
MAX_SM_SCALE = 2.0 ** 26


def flash_attention(q, k, v, segment_ids=None, *, causal=True, sm_scale=None,
                    backend=None, blocks=None, interpret=None, plan=None):
    """Attention over [B, S, H, D] queries and [B, S, K, D] keys/values. See module doc.

    plan: plan.make_plan(segment_ids, B, S, causal=causal, blocks=blocks) computed by the
    caller once for many calls with the same segment ids (a model's layers); the Mosaic
    GPU kernels then skip deriving it (the splash backend ignores it). blocks defaults to the
    plan's, else Blocks()."""
    _check_inputs(q, k, v, segment_ids)
    D = q.shape[-1]
    sm_scale = float(D ** -0.5 if sm_scale is None else sm_scale)
    if not 0 < sm_scale < MAX_SM_SCALE:
        # The kernels take a row's max before scaling (true for a positive scale only) and keep
        # MASK_VALUE * scale finite (block_math.MASK_VALUE).
        raise ValueError(f"sm_scale must be in (0, {MAX_SM_SCALE:g}); got {sm_scale}")
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
    if interpret and platform == "cpu":
        _check_interpreter_devices(len(jax.devices("cpu")))
    if not interpret:
        _check_hopper()
    blocks = blocks or (plan.blocks if plan is not None else Blocks())
    B, S = q.shape[:2]
    if plan is None:
        plan = make_plan(segment_ids, B, S, causal=causal, blocks=blocks)
    elif (plan.seq_len, plan.causal, plan.blocks) != (S, causal, blocks) or \
            plan.ranges[0].shape[0] != B:
        raise ValueError(f"the plan was made for batch {plan.ranges[0].shape[0]}, seq_len "
                         f"{plan.seq_len}, causal={plan.causal}, {plan.blocks}; this call has "
                         f"batch {B}, seq_len {S}, causal={causal}, {blocks}")
    return _mosaic_gpu_attention(q, k, v, plan, sm_scale=sm_scale, interpret=interpret or None)


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


def _check_interpreter_devices(n_devices):
    """The Mosaic GPU interpreter runs a program's COMPUTE_WGS + 1 warpgroups as concurrent
    host threads, each executing jitted bodies on the CPU client, and they wait on each other
    at barriers. With fewer host devices than that, the client's thread pool ran short on a
    2-core machine and jitted kernels hung, forever and without an error (1 and 2 devices
    hung, 3 ran; docs/kernels/README.md). Refuse rather than hang."""
    if n_devices < COMPUTE_WGS + 1:
        raise RuntimeError(
            f"flash_attention's Mosaic GPU interpreter needs at least {COMPUTE_WGS + 1} CPU "
            f"devices (one per warpgroup thread) and this process has {n_devices}: it can hang "
            f"otherwise. Start Python with XLA_FLAGS=--xla_force_host_platform_device_count=8 "
            f"(as the tests do), or use attention 'xla' on CPU.")


def _check_hopper():
    """The compiled kernels use wgmma and setmaxnreg, which exist on sm90 (Hopper) only."""
    capability = getattr(jax.devices()[0], "compute_capability", None)
    if capability is not None and str(capability).split(".")[0] != "9":
        raise ValueError(f"flash_attention's Mosaic GPU kernels need a Hopper GPU (compute "
                         f"capability 9.0); this device has {capability}. Use attention "
                         f"'cudnn' or 'xla' here.")


def _mosaic_gpu_attention(q, k, v, plan, *, sm_scale, interpret):
    S = q.shape[1]
    Sp = padded_length(S, plan.blocks)
    if Sp != S:
        q, k, v = (jnp.pad(x, ((0, 0), (0, Sp - S), (0, 0), (0, 0))) for x in (q, k, v))
    out = _attention(q, k, v, plan, sm_scale, interpret)
    return out[:, :S]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _attention(q, k, v, plan, sm_scale, interpret):
    out, _ = _forward(q, k, v, plan, sm_scale, interpret)
    return out


# Programs of the persistent kernels in the interpreter: few, so that each runs several
# work items (what the tests must cover: prefetch across items, the ring running on).
INTERPRET_PROGRAMS = 3


def _forward(q, k, v, plan, sm_scale, interpret):
    kv_start, kv_end, _, _ = plan.ranges
    blocks = plan.blocks
    if not blocks.persistent_forward:
        return mgpu_forward.forward(q, k, v, kv_start, kv_end, plan.fwd_bounds, sm_scale=sm_scale,
                                    blocks=blocks, interpret=interpret)
    table = schedule.tile_table(plan.fwd_bounds, COMPUTE_WGS)
    return mgpu_forward_persistent.forward(q, k, v, kv_start, kv_end, table, sm_scale=sm_scale,
                                           blocks=blocks, max_programs=_max_programs(interpret),
                                           interpret=interpret)


def _max_programs(interpret):
    """Programs of the persistent forward: the device's streaming multiprocessors (132 on
    H100/H200 SXM), or INTERPRET_PROGRAMS in the interpreter."""
    if interpret:
        return INTERPRET_PROGRAMS
    return int(getattr(jax.devices()[0], "core_count", None) or 132)


def _attention_fwd(q, k, v, plan, sm_scale, interpret):
    out, lse = _forward(q, k, v, plan, sm_scale, interpret)
    # In a layer scan the residuals are written into stacked [layers, ...] buffers. XLA's GPU
    # dynamic-slice fusion fuses such a write with the kernel call that produces it, and when
    # the output has other users (the next projection) it keeps a second copy of the call for
    # them: the forward kernel ran twice per layer (+1.1 ms per layer at B8 S4096 H16, 4% of
    # the 1.6B train step; NOTES.md v4).
    # The barrier hides the call from that rewrite.
    out, lse = jax.lax.optimization_barrier((out, lse))
    out, lse = (checkpoint_name(x, RESIDUALS_NAME) for x in (out, lse))
    return out, (q, k, v, plan, out, lse)


def _attention_bwd(sm_scale, interpret, residuals, do):
    q, k, v, plan, out, lse = residuals
    blocks = plan.blocks
    kv_start, kv_end, q_start, q_end = plan.ranges
    delta = mgpu_backward.delta_of(out, do)

    def split():
        dq = mgpu_backward.dq(q, k, v, do, lse, delta, kv_start, kv_end, plan.dq_bounds,
                              sm_scale=sm_scale, blocks=blocks, interpret=interpret)
        if blocks.persistent_dkv(groups=q.shape[2] // k.shape[2]):
            table = schedule.tile_table(plan.dkv_bounds, COMPUTE_WGS)
            dk, dv = mgpu_backward_persistent.dkv(
                q, k, v, do, lse, delta, q_start, q_end, table, sm_scale=sm_scale, blocks=blocks,
                max_programs=_max_programs(interpret), interpret=interpret)
        else:
            dk, dv = mgpu_backward.dkv(q, k, v, do, lse, delta, q_start, q_end, plan.dkv_bounds,
                                       sm_scale=sm_scale, blocks=blocks, interpret=interpret)
        return dq, dk, dv

    def fused():
        return mgpu_backward_fused.dkv_dq(q, k, v, do, lse, delta, q_start, q_end,
                                          plan.dkv_bounds, sm_scale=sm_scale, blocks=blocks,
                                          interpret=interpret)

    if blocks.backward == "split":
        dq, dk, dv = split()
    elif blocks.backward == "fused":
        dq, dk, dv = fused()
    else:   # "auto": which one is faster depends on the segment ids, known on the device only
        dq, dk, dv = jax.lax.cond(mgpu_backward_fused.use_fused(plan.dkv_bounds), fused, split)
    return dq, dk, dv, None


_attention.defvjp(_attention_fwd, _attention_bwd)
