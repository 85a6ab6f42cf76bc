"""TPU path: jax's Pallas splash attention behind dsllm's flash_attention signature.

Not our own kernel: there is no TPU here to validate one, so we wrap
`jax.experimental.pallas.ops.tpu.splash_attention` (forward and backward kernels,
block-sparse causal mask, segment ids). Splash has no native GQA: we use its MQA
kernel (one K/V head shared by a group of query heads) and vmap it over batch and
key/value heads, so K/V are never repeated. Splash does not scale the logits, so
q is scaled first (in fp32, then cast back); its gradient flows through jax AD.
Sequence lengths that are not a multiple of the block size are padded with a
segment id of their own (-1), which real tokens never attend.
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as splash

BLOCK = 128  # splash's default block sizes, all 128


@functools.lru_cache(maxsize=None)
def _kernel(seq_len, groups, causal, interpret):
    shape = (seq_len, seq_len)
    head_mask = splash.CausalMask(shape) if causal else splash.FullMask(shape)
    return splash.make_splash_mqa_single_device(
        splash.MultiHeadMask([head_mask] * groups),
        block_sizes=splash.BlockSizes.get_default(),
        interpret=interpret)


def splash_attention(q, k, v, segment_ids, *, causal, sm_scale, interpret=False):
    """q [B,S,H,D], k/v [B,S,K,D], segment_ids [B,S] or None -> [B,S,H,D]."""
    B, S, H, D = q.shape
    K = k.shape[2]
    G = H // K
    pad = -S % BLOCK
    if pad or segment_ids is None:
        ids = jnp.zeros((B, S), jnp.int32) if segment_ids is None else segment_ids
        segment_ids = jnp.pad(ids.astype(jnp.int32), ((0, 0), (0, pad)), constant_values=-1)
    if pad:
        q, k, v = (jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0))) for x in (q, k, v))
    Sp = S + pad
    q = (q.astype(jnp.float32) * sm_scale).astype(k.dtype)
    q_BKGSD = q.reshape(B, Sp, K, G, D).transpose(0, 2, 3, 1, 4)
    k_BKSD = k.transpose(0, 2, 1, 3)
    v_BKSD = v.transpose(0, 2, 1, 3)
    kernel = _kernel(Sp, G, causal, bool(interpret))

    def one(q_GSD, k_SD, v_SD, ids_S):
        return kernel(q_GSD, k_SD, v_SD, segment_ids=splash.SegmentIds(q=ids_S, kv=ids_S))

    per_head = jax.vmap(one, in_axes=(0, 0, 0, None))           # over K
    out = jax.vmap(per_head, in_axes=(0, 0, 0, 0))(q_BKGSD, k_BKSD, v_BKSD, segment_ids)
    out = out.transpose(0, 3, 1, 2, 4).reshape(B, Sp, H, D)
    return out[:, :S]
