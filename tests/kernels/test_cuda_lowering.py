"""The compiled path, as far as a CPU can take it: every Mosaic GPU kernel lowers for CUDA.

jax lowers a Pallas Mosaic GPU kernel to its NVVM/LLVM module (layout inference, wgmma,
TMA, barriers) in Python, before any GPU is needed, so lowering the forward and backward
for the "cuda" platform on CPU catches what the interpreter does not check (unsupported
layouts or ops in the compiled lowering). ptxas, registers and real timing stay GPU-only.
"""
import jax
import jax.numpy as jnp
import pytest

from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks


@pytest.mark.parametrize("persistent_forward", [True, False])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_forward_and_backward_lower_for_cuda(head_dim, persistent_forward):
    # (Blocks.trim_blocks changes only the plan's bounds, which are data: the kernels are the same.)
    q = jax.ShapeDtypeStruct((2, 384, 4, head_dim), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((2, 384, 1, head_dim), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((2, 384), jnp.int32)
    blocks = Blocks(persistent_forward=persistent_forward)
    loss = lambda q, k, v, s: flash_attention(q, k, v, s, causal=True, blocks=blocks,
                                              backend="mosaic_gpu", interpret=False).sum()
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = grad.trace(q, kv, kv, seg).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("stablehlo.custom_call @mosaic_gpu") == 3   # forward, dQ, dK/dV


@pytest.mark.parametrize("dq_split", ["columns", "keys"])
def test_fused_backward_lowers_for_cuda(dq_split):
    q = jax.ShapeDtypeStruct((2, 384, 4, 128), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((2, 384, 1, 128), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((2, 384), jnp.int32)
    blocks = Blocks(fused_backward=dq_split)
    loss = lambda q, k, v, s: flash_attention(q, k, v, s, causal=True, blocks=blocks,
                                              backend="mosaic_gpu", interpret=False).sum()
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = grad.trace(q, kv, kv, seg).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("stablehlo.custom_call @mosaic_gpu") == 2   # forward, fused backward
