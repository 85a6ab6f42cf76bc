"""Parameter creation: every weight is a float32 nnx.Param carrying its logical axis names
(`axes`), which dsllm.sharding maps to mesh axes."""

import jax
import jax.numpy as jnp
from flax import nnx


def normal_param(rngs: nnx.Rngs, shape, std: float, axes) -> nnx.Param:
    assert len(shape) == len(axes), (shape, axes)
    return nnx.Param(std * jax.random.normal(rngs.params(), shape, jnp.float32), axes=tuple(axes))
