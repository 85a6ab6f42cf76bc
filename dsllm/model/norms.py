"""RMSNorm (pre-norm, eps 1e-6): statistics in float32, output in the compute dtype."""

import functools

import jax
import jax.numpy as jnp
from flax import nnx


# Rematerialised on its own: the backward pass recomputes the float32 internals from the
# compute-dtype input instead of keeping a float32 copy of every normalised activation.
@functools.partial(jax.checkpoint, static_argnums=(2,))
def rms_norm(x, scale, eps: float):
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return (y * scale).astype(x.dtype)


class RMSNorm(nnx.Module):
    def __init__(self, dim: int, eps: float, dtype):
        self.scale = nnx.Param(jnp.ones((dim,), jnp.float32), axes=("norm",))
        self.eps = eps
        self.dtype = dtype

    def __call__(self, x_BSD):
        return rms_norm(x_BSD.astype(self.dtype), self.scale[...], self.eps)
