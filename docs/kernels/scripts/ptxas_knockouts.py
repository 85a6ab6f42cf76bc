"""ptxas reports of the fused backward ("columns") with parts knocked out by editing its
source, to localise its register spills. Results are wrong by design; only ptxas matters."""
import sys, types
import jax, jax.numpy as jnp
import dsllm.kernels.mgpu_backward_fused as f
src = open(f.__file__).read()
KNOCK = {
    # the dQ matmul: zeros instead
    "nodq": ("    return dv, dk, pl.run_scoped(dq_body, plgpu.ACC(shape, jnp.float32))",
             "    return dv, dk, plgpu.layout_cast(jnp.zeros(shape, jnp.float32), mc.WGMMA)"),
    # the reduce-add and its SMEM stage
    "noreduce": ("    plgpu.wait_smem_to_gmem(0, wait_read_only=True)   # the last",
                 "    return\n    plgpu.wait_smem_to_gmem(0, wait_read_only=True)   # the last"),
    # the dS^T store to SMEM
    "nods": ("                ds_pair.at[wg][...] = ds\n", ""),
    # the rendezvous inside the dV/dK matmuls
    "nosync": ("        if ds_written is not None:\n            mc.sync(ds_written)\n    # dV",
               "    # dV"),
}
for k in sys.argv[1].split("+"):
    a, b = KNOCK[k]
    assert a in src, k
    src = src.replace(a, b)
mod = types.ModuleType("dsllm.kernels.mgpu_backward_fused")
mod.__file__ = f.__file__
exec(compile(src, f.__file__, "exec"), mod.__dict__)
import dsllm.kernels.flash_attention as fa
fa.mgpu_backward_fused = mod
from dsllm.kernels.mgpu_common import Blocks
blocks = Blocks(fused_backward="columns")
q = jax.random.normal(jax.random.key(0), (1, 1024, 4, 128), jnp.bfloat16)
loss = lambda q: fa.flash_attention(q, q, q, None, causal=True, blocks=blocks, backend="mosaic_gpu").astype(jnp.float32).sum()
print(sys.argv[1], float(jax.jit(jax.grad(loss))(q).astype(jnp.float32).mean()))
