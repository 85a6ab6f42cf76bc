"""Plain-jnp attention: the numerical reference for every kernel in dsllm.kernels.

Dimension letters: B batch, S sequence, H query heads, K key/value heads,
G query heads per key/value head (H = K * G), D head dim.

fp32 softmax, GQA by reshaping the query heads into [K, G] (K/V never repeated),
and the usual segment semantics: query i may attend key j only if
segment_ids[i] == segment_ids[j] (and j <= i when causal). Padding (segment 0)
therefore attends among padding only, so no row is ever fully masked when causal
or when every row's segment occurs at least once (always true for self-attention).
"""
import jax
import jax.numpy as jnp


def attention_mask(segment_ids, seq_len, *, causal):
    """[B or 1, S, S] boolean: True where query (axis 1) may attend key (axis 2)."""
    mask = jnp.ones((1, seq_len, seq_len), bool)
    if causal:
        mask = jnp.tril(mask)
    if segment_ids is not None:
        mask = mask & (segment_ids[:, :, None] == segment_ids[:, None, :])
    return mask


def reference_attention(q, k, v, segment_ids, *, causal, sm_scale=None):
    """q [B, S, H, D], k/v [B, S, K, D], segment_ids [B, S] int32 or None -> [B, S, H, D] in q.dtype."""
    B, S, H, D = q.shape
    K = k.shape[2]
    if H % K:
        raise ValueError(f"query heads ({H}) must be a multiple of key/value heads ({K})")
    if sm_scale is None:
        sm_scale = D ** -0.5
    q_BSKGD = q.astype(jnp.float32).reshape(B, S, K, H // K, D)
    logits_BKGST = jnp.einsum("bskgd,btkd->bkgst", q_BSKGD, k.astype(jnp.float32)) * sm_scale
    mask = attention_mask(segment_ids, S, causal=causal)[:, None, None]
    logits_BKGST = jnp.where(mask, logits_BKGST, -jnp.inf)
    weights = jax.nn.softmax(logits_BKGST, axis=-1)
    out_BSKGD = jnp.einsum("bkgst,btkd->bskgd", weights, v.astype(jnp.float32))
    return out_BSKGD.reshape(B, S, H, D).astype(q.dtype)
