"""Compile the backward (split, fused by columns, fused by keys) once each, for ptxas's report."""
import sys
import jax, jax.numpy as jnp
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
name = sys.argv[1]
blocks = Blocks(fused_backward={"split": ""}.get(name, name))
q = jax.random.normal(jax.random.key(0), (1, 1024, 4, 128), jnp.bfloat16)
loss = lambda q: flash_attention(q, q, q, None, causal=True, blocks=blocks, backend="mosaic_gpu").astype(jnp.float32).sum()
print(name, float(jax.jit(jax.grad(loss))(q).astype(jnp.float32).mean()))
