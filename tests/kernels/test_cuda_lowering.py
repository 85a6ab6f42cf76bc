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


def _mosaic_calls(head_dim, blocks):
    """Mosaic GPU kernel call sites in the gradient of a causal packed call, lowered for CUDA."""
    q = jax.ShapeDtypeStruct((2, 384, 4, head_dim), jnp.bfloat16)
    kv = jax.ShapeDtypeStruct((2, 384, 1, head_dim), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((2, 384), jnp.int32)
    loss = lambda q, k, v, s: flash_attention(q, k, v, s, causal=True, blocks=blocks,
                                              backend="mosaic_gpu", interpret=False).sum()
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    text = grad.trace(q, kv, kv, seg).lower(lowering_platforms=("cuda",)).as_text()
    return text.count("stablehlo.custom_call @mosaic_gpu")


@pytest.mark.parametrize("persistent_forward", [True, False])
@pytest.mark.parametrize("head_dim", [64, 128])
def test_forward_and_backward_lower_for_cuda(head_dim, persistent_forward):
    # (Blocks.trim_blocks changes only the plan's bounds, which are data: the kernels are the same.)
    blocks = Blocks(persistent_forward=persistent_forward)
    # forward, dQ, dK/dV and the fused backward, the other branch of the cond that picks one
    # (Blocks.backward "auto")
    assert _mosaic_calls(head_dim, blocks) == 4


@pytest.mark.parametrize("backward, calls", [("fused", 2), ("split", 3)])
def test_forced_backward_lowers_for_cuda(backward, calls):
    assert _mosaic_calls(128, Blocks(backward=backward)) == calls


@pytest.mark.parametrize("head_dim", [64, 128])
def test_persistent_dkv_lowers_for_cuda(head_dim):
    # forward, dQ and the persistent dK/dV, whose SMEM holds two K/V slots (the lowering refuses
    # a kernel whose scratch does not fit); the GQA 4 call above takes the per-tile dK/dV
    assert _mosaic_calls(head_dim, Blocks(backward="split", dkv_kernel="persistent")) == 3
