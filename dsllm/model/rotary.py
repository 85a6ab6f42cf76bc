"""Rotary position embeddings (theta 10000), by position inside each packed document.

Half-split layout (as in the released LLaMA-format checkpoints): the first and second halves
of each head are the two coordinates of a rotated pair.
"""

import jax.numpy as jnp


def apply_rope(x_BSHE, positions_BS, theta: float):
    E = x_BSHE.shape[-1]
    inv_freq_F = 1.0 / (theta ** (jnp.arange(0, E, 2, dtype=jnp.float32) / E))
    angle_BSF = positions_BS.astype(jnp.float32)[..., None] * inv_freq_F
    cos, sin = jnp.cos(angle_BSF)[:, :, None, :], jnp.sin(angle_BSF)[:, :, None, :]
    x1, x2 = jnp.split(x_BSHE.astype(jnp.float32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x_BSHE.dtype)
