"""Causal self-attention with RoPE and grouped-query attention, over packed documents.

Segment ids are a required input of every implementation: 1, 2, ... number the documents of
a packed row, 0 marks padding. A query attends to keys of its own document at or before it.

Implementations (config `model.attention`):
  xla    reference einsum with the full segment/causal mask; runs anywhere.
  cudnn  cuDNN flash attention through jax. One document per row: plain causal with the
         padding length. Several: cuDNN's packed (ragged offsets) layout, which needs a static
         bound on documents per row (`model.max_segments`, checked on the host per batch by
         check_segments).
  pallas our own Pallas kernels (dsllm/kernels), the default on GPU and TPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from dsllm.model.params import normal_param
from dsllm.model.rotary import apply_rope
from dsllm.sharding import constrain

IMPLEMENTATIONS = ("xla", "cudnn", "pallas")


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


def _segment_offsets(segment_ids_BS, max_segments: int):
    """cuDNN's packed layout: per row, start offset and length of each document, -1 padded."""
    ids_M = jnp.arange(1, max_segments + 1, dtype=segment_ids_BS.dtype)
    lengths_BM = jnp.sum(segment_ids_BS[:, None, :] == ids_M[None, :, None], axis=-1).astype(jnp.int32)
    starts_BM = jnp.cumsum(lengths_BM, axis=-1) - lengths_BM
    present = lengths_BM > 0
    seqlen_BM = jnp.where(present, lengths_BM, -1)
    offsets_BM = jnp.where(present, starts_BM, -1)
    offsets_BM1 = jnp.concatenate([offsets_BM, jnp.full_like(offsets_BM[:, :1], -1)], axis=-1)
    return seqlen_BM, offsets_BM1


def cudnn_attention(q_BSHE, k_BSKE, v_BSKE, segment_ids_BS, *, max_segments: int, causal=True):
    if not causal:
        raise NotImplementedError("the cudnn path here is causal only")
    E = q_BSHE.shape[-1]
    if max_segments == 1:  # one document per row, padding at the end
        lengths_B = jnp.sum(segment_ids_BS > 0, axis=-1).astype(jnp.int32)
        return jax.nn.dot_product_attention(q_BSHE, k_BSKE, v_BSKE, is_causal=True, query_seq_lengths=lengths_B,
                                            key_value_seq_lengths=lengths_B, implementation="cudnn")
    from jax._src.cudnn import fused_attention_stablehlo as cudnn_fa  # the packed layout is not public API yet

    seqlen_BM, offsets_BM1 = _segment_offsets(segment_ids_BS, max_segments)
    return cudnn_fa.dot_product_attention(
        q_BSHE, k_BSKE, v_BSKE, q_seqlen=seqlen_BM, kv_seqlen=seqlen_BM, q_offsets=offsets_BM1,
        kv_offsets=offsets_BM1, scale=E ** -0.5, mask_type=cudnn_fa.MaskType.PADDING_CAUSAL)


def check_segments(segment_ids, impl: str, max_segments: int):
    """Host-side check of a batch against what the attention implementation can honour.
    Segments must be contiguous runs numbered 1, 2, ... with padding (0) only at the end."""
    seg = np.asarray(segment_ids)
    if impl == "cudnn":
        most = int(seg.max(initial=0))
        if most > max_segments:
            raise ValueError(f"a packed row holds {most} documents but model.max_segments={max_segments}: "
                             f"cudnn attention cannot honour more; raise --config.model.max_segments or use "
                             f"--config.model.attention=xla|pallas")


def attend(q, k, v, segment_ids, *, impl: str, max_segments: int = 64, causal: bool = True):
    if impl == "xla":
        return xla_attention(q, k, v, segment_ids, causal=causal)
    if impl == "cudnn":
        return cudnn_attention(q, k, v, segment_ids, max_segments=max_segments, causal=causal)
    if impl == "pallas":
        from dsllm.kernels.flash_attention import flash_attention
        return flash_attention(q, k, v, segment_ids, causal=causal)
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
        self.impl = cfg.attention
        self.max_segments = cfg.max_segments
        self.dtype = dtype

    def __call__(self, x_BSD, segment_ids_BS, positions_BS):
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
        out = attend(q, k, v, segment_ids_BS, impl=self.impl, max_segments=self.max_segments)
        out = checkpoint_name(out, "attn_out")
        return jnp.einsum("bshe,hed->bsd", out, w(self.wo_HED))
