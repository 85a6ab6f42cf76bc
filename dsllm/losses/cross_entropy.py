"""Output projection fused with cross-entropy, in sequence chunks.

No float32 [B, S, V] logits tensor ever exists: a lax.scan walks chunks of `chunk` positions,
and for each computes logits [B, chunk, V] in float32, the log-sum-exp, the target logit,
and at once the gradients with respect to the hidden states and the head (softmax - onehot is
known in the forward pass). The backward pass then only scales those by the incoming
cotangent: three matmuls per chunk in total, the same as an unfused head, with no
recomputation and no [B, S, V] residual.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _chunks(x, chunk):
    """[B, S, ...] -> [S / chunk, B, chunk, ...] (the scan axis first; the batch keeps its sharding)."""
    B, S = x.shape[:2]
    return jnp.swapaxes(x.reshape(B, S // chunk, chunk, *x.shape[2:]), 0, 1)


def _forward_and_grads(h_BSD, w_DV, targets_BS, weights_BS, chunk):
    w_compute = w_DV.astype(h_BSD.dtype)

    def body(carry, xs):
        nats_sum, dw_DV = carry
        h_BCD, t_BC, wt_BC = xs
        logits = jnp.einsum("bcd,dv->bcv", h_BCD, w_compute, preferred_element_type=jnp.float32)
        lse_BC = jax.nn.logsumexp(logits, axis=-1)
        target_logit_BC = jnp.take_along_axis(logits, t_BC[..., None], axis=-1)[..., 0]
        nats_sum = nats_sum + jnp.sum((lse_BC - target_logit_BC) * wt_BC)
        # d(sum of weighted nats) / d logits = weight * (softmax - onehot)
        onehot = jax.nn.one_hot(t_BC, logits.shape[-1], dtype=jnp.float32)
        dlogits = ((jnp.exp(logits - lse_BC[..., None]) - onehot) * wt_BC[..., None]).astype(h_BCD.dtype)
        dh_BCD = jnp.einsum("bcv,dv->bcd", dlogits, w_compute)
        dw_DV = dw_DV + jnp.einsum("bcd,bcv->dv", h_BCD, dlogits, preferred_element_type=jnp.float32)
        return (nats_sum, dw_DV), dh_BCD

    init = (jnp.zeros((), jnp.float32), jnp.zeros(w_DV.shape, jnp.float32))
    xs = (_chunks(h_BSD, chunk), _chunks(targets_BS, chunk), _chunks(weights_BS, chunk))
    (nats_sum, dw_DV), dh = jax.lax.scan(body, init, xs)
    return nats_sum, jnp.swapaxes(dh, 0, 1).reshape(h_BSD.shape), dw_DV


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _weighted_nats(h_BSD, w_DV, targets_BS, weights_BS, chunk):
    return _forward_and_grads(h_BSD, w_DV, targets_BS, weights_BS, chunk)[0]


def _fwd(h_BSD, w_DV, targets_BS, weights_BS, chunk):
    nats_sum, dh_BSD, dw_DV = _forward_and_grads(h_BSD, w_DV, targets_BS, weights_BS, chunk)
    return nats_sum, (dh_BSD, dw_DV, weights_BS)


def _bwd(chunk, residuals, g):
    dh_BSD, dw_DV, weights_BS = residuals
    return (g * dh_BSD).astype(dh_BSD.dtype), (g * dw_DV).astype(dw_DV.dtype), None, jnp.zeros_like(weights_BS)


_weighted_nats.defvjp(_fwd, _bwd)


def chunked_cross_entropy(h_BSD, w_DV, targets_BS, weights_BS, chunk: int):
    """Sum over positions of weights * (-log p(target)), differentiable in h and w.

    h_BSD: hidden states in the compute dtype; w_DV: the float32 output projection."""
    S = h_BSD.shape[1]
    chunk = min(chunk, S)
    if S % chunk:
        raise ValueError(f"sequence length {S} is not a multiple of model.loss_chunk={chunk}")
    return _weighted_nats(h_BSD, w_DV, targets_BS.astype(jnp.int32), weights_BS.astype(jnp.float32), chunk)
