"""Causal self-attention with RoPE and grouped-query attention, over packed documents.

Segment ids are a required input of every implementation: 1, 2, ... number the documents of
a packed row, 0 marks padding. A query attends to keys of its own document at or before it.

Implementations (config `model.attention`; "auto", the default, picks pallas on GPU and TPU, xla on CPU):
  xla    reference einsum with the full segment/causal mask; runs anywhere.
  cudnn  cuDNN flash attention through jax, for rows of one document each (padding at the
         end); a packed batch is refused on the host by check_segments.
  pallas our own Pallas kernels (dsllm/kernels), the default on GPU and TPU.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name
from jax.sharding import PartitionSpec as P

from dsllm.model.params import normal_param
from dsllm.model.rotary import apply_rope
from dsllm.sharding import constrain, logical_to_spec

IMPLEMENTATIONS = ("auto", "xla", "cudnn", "pallas")


def resolve_attention(impl: str) -> str:
    """"auto" is our Pallas kernels on GPU and TPU and the xla reference on CPU."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {impl!r}; choose one of {IMPLEMENTATIONS}")
    if impl == "auto":
        from dsllm.kernels import default_attention_impl
        return default_attention_impl(jax.default_backend(),
                                      getattr(jax.devices()[0], "compute_capability", None))
    return impl


def xla_attention(q_BSHE, k_BSKE, v_BSKE, segment_ids_BS, *, causal=True):
    """The reference: float32 softmax over an explicit [B, K, G, S, S] mask."""
    B, S, H, E = q_BSHE.shape
    K = k_BSKE.shape[2]
    q_BSKGE = q_BSHE.reshape(B, S, K, H // K, E)
    logits = jnp.einsum("bskge,btke->bkgst", q_BSKGE, k_BSKE, preferred_element_type=jnp.float32)
    logits = logits * (E ** -0.5)
    mask_BST = segment_ids_BS[:, :, None] == segment_ids_BS[:, None, :]
    if causal:
        mask_BST = mask_BST & (jnp.arange(S)[:, None] >= jnp.arange(S)[None, :])
    logits = jnp.where(mask_BST[:, None, None], logits, -1e30)
    probs = jax.nn.softmax(logits, axis=-1).astype(v_BSKE.dtype)
    out = jnp.einsum("bkgst,btke->bskge", probs, v_BSKE)
    return out.reshape(B, S, H, E)


def cudnn_attention(q_BSHE, k_BSKE, v_BSKE, segment_ids_BS, *, causal=True):
    """cuDNN flash attention for rows that hold one document each (padding, segment 0, at the end).

    Packed rows are refused by check_segments on the host: jax's public cuDNN entry point has no
    segment ids, and its packed ("ragged offsets") layout gave wrong dq gradients on our H200
    (dsllm.bench.check_cudnn, jax 0.11.2: relative error 0.3), so it is not used."""
    if not causal:
        raise NotImplementedError("the cudnn path here is causal only")
    lengths_B = jnp.sum(segment_ids_BS > 0, axis=-1).astype(jnp.int32)
    return jax.nn.dot_product_attention(q_BSHE, k_BSKE, v_BSKE, is_causal=True, query_seq_lengths=lengths_B,
                                        key_value_seq_lengths=lengths_B, implementation="cudnn")


def check_segments(segment_ids, impl: str):
    """Host-side check that a batch is one the attention implementation can honour.
    xla and pallas take any packing; cudnn only one document per row with padding at the end."""
    if resolve_attention(impl) != "cudnn":
        return
    seg = np.asarray(segment_ids)
    one_doc = np.all((seg == 1) | (seg == 0)) and np.all(np.diff(seg, axis=-1) <= 0)
    if not one_doc:
        raise ValueError("this batch packs several documents into a row, which cudnn attention cannot honour "
                         "(it would attend across documents). Use --config.model.attention=pallas (GPU) or xla.")


def attention_plan(segment_ids_BS, impl: str, *, causal: bool = True, backward: str = "auto"):
    """What the `pallas` kernels derive from the segment ids (dsllm.kernels.plan), for the model to
    compute once per step and pass to every layer; None for the other implementations and on TPU
    (splash derives its own). backward: which backward kernels (model.attention_backward,
    kernels.mgpu_common.Blocks.backward); the plan carries the choice to every layer."""
    if impl != "pallas" or jax.default_backend() == "tpu":
        return None
    from dsllm.kernels.mgpu_common import Blocks
    from dsllm.kernels.plan import make_plan

    B, S = segment_ids_BS.shape
    return make_plan(segment_ids_BS, B, S, causal=causal, blocks=Blocks(backward=backward))


def pallas_attention(q_BSHE, k_BSKE, v_BSKE, segment_ids_BS, *, causal=True, plan=None):
    """Our flash-attention kernels, run per device under shard_map when a mesh is active: a kernel
    call cannot be partitioned by XLA, so each device gets its rows (batch over data x fsdp) and its
    heads (over tensor). plan: attention_plan(segment_ids_BS, "pallas") or None; every array in it
    has the batch first, so a device's rows of it go with its rows of the segment ids."""
    from dsllm.kernels.flash_attention import flash_attention

    def kernel(q, k, v, seg, plan=None):
        return flash_attention(q, k, v, seg, causal=causal, plan=plan)

    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty or mesh.size == 1:
        return kernel(q_BSHE, k_BSKE, v_BSKE, segment_ids_BS, plan)
    q_spec = logical_to_spec(("batch", "seq", "heads", "head_dim"), q_BSHE.shape, mesh)
    kv_spec = logical_to_spec(("batch", "seq", "kv_heads", "head_dim"), k_BSKE.shape, mesh)
    if kv_spec[2] is None and q_spec[2] is not None and k_BSKE.shape[2] > 1:
        # KV heads too few to split: keep the query heads whole too, so that each device's query
        # heads map onto its key/value heads by the same grouping (with one KV head, any do).
        q_spec = P(q_spec[0], None, None, None)
    seg_spec = P(q_spec[0], None)
    args = (q_BSHE, k_BSKE, v_BSKE, segment_ids_BS)
    specs = (q_spec, kv_spec, kv_spec, seg_spec)
    if plan is not None:
        args += (plan,)
        specs += (jax.tree.map(lambda x: P(q_spec[0], *(None,) * (x.ndim - 1)), plan),)
    sharded = jax.shard_map(kernel, mesh=mesh, in_specs=specs, out_specs=q_spec, check_vma=False)
    return sharded(*args)


def attend(q, k, v, segment_ids, *, impl: str, causal: bool = True, plan=None):
    if impl == "xla":
        return xla_attention(q, k, v, segment_ids, causal=causal)
    if impl == "cudnn":
        return cudnn_attention(q, k, v, segment_ids, causal=causal)
    if impl == "pallas":
        return pallas_attention(q, k, v, segment_ids, causal=causal, plan=plan)
    raise ValueError(f"unknown attention implementation {impl!r}; choose one of {IMPLEMENTATIONS}")


class Attention(nnx.Module):
    def __init__(self, cfg, dtype, rngs: nnx.Rngs):
        D, H, K = cfg.d_model, cfg.n_heads, cfg.n_kv_heads
        if D % H:
            raise ValueError(f"d_model {D} is not a multiple of n_heads {H}")
        if H % K:
            raise ValueError(f"n_kv_heads {K} must divide n_heads {H} (equal: multi-head attention)")
        E = D // H
        std = cfg.init_std
        self.wq_DHE = normal_param(rngs, (D, H, E), std, ("embed", "heads", "head_dim"))
        self.wk_DKE = normal_param(rngs, (D, K, E), std, ("embed", "kv_heads", "head_dim"))
        self.wv_DKE = normal_param(rngs, (D, K, E), std, ("embed", "kv_heads", "head_dim"))
        self.wo_HED = normal_param(rngs, (H, E, D), std, ("heads", "head_dim", "embed"))
        self.rope_theta = cfg.rope_theta
        self.impl = resolve_attention(cfg.attention)
        from dsllm.kernels.mgpu_common import BACKWARDS   # checked on every platform: a typo fails early
        if cfg.attention_backward not in BACKWARDS:
            raise ValueError(f"model.attention_backward={cfg.attention_backward!r}: use one of {BACKWARDS}")
        self.dtype = dtype

    def __call__(self, x_BSD, segment_ids_BS, positions_BS, plan=None):
        """plan: attention_plan(segment_ids_BS, self.impl), computed once for all layers, or None."""
        w = lambda p: p[...].astype(self.dtype)
        q = jnp.einsum("bsd,dhe->bshe", x_BSD, w(self.wq_DHE))
        k = jnp.einsum("bsd,dke->bske", x_BSD, w(self.wk_DKE))
        v = jnp.einsum("bsd,dke->bske", x_BSD, w(self.wv_DKE))
        q = apply_rope(q, positions_BS, self.rope_theta)
        k = apply_rope(k, positions_BS, self.rope_theta)
        q, k, v = (checkpoint_name(t, "qkv") for t in (q, k, v))
        q = constrain(q, ("batch", "seq", "heads", "head_dim"))
        k = constrain(k, ("batch", "seq", "kv_heads", "head_dim"))
        v = constrain(v, ("batch", "seq", "kv_heads", "head_dim"))
        out = attend(q, k, v, segment_ids_BS, impl=self.impl, plan=plan)
        out = checkpoint_name(out, "attn_out")
        return jnp.einsum("bshe,hed->bsd", out, w(self.wo_HED))
