"""The persistent forward's whole-kernel SASS pipeline shape (ptxas_report.loop_pipeline over
every instruction before the last EXIT), lowered at B4 S4096 H32 D128 so that each program
loops over items (ptxas_report's own shape, S1024, gives one item per program and the item
loop folds away). Needs dsllm/bench/ptxas/setup.sh. NOTES.md v12.

  PYTHONPATH=. python -P docs/kernels/scripts/v12_item_loop_sass.py "defer_epilogue=True" /tmp/k.sass
"""
import sys, pathlib
import jax, jax.numpy as jnp
from jax.experimental.mosaic.gpu import core
from dsllm.bench import ptxas_report as pr
from dsllm.kernels.mgpu_common import parse_blocks
from dsllm.kernels.flash_attention import flash_attention
from absl import flags
flags.FLAGS(["x"])
blocks = parse_blocks(sys.argv[1])
q = jax.ShapeDtypeStruct((4, 4096, 32, 128), jnp.bfloat16)
f = lambda q, k, v: flash_attention(q, k, v, None, causal=True, blocks=blocks, backend="mosaic_gpu", interpret=False)
core.KNOWN_KERNELS.clear()
jax.jit(f).trace(q, q, q).lower(lowering_platforms=("cuda",))
mods = list(core.KNOWN_KERNELS.values())
rows = pr.report(mods[:1], pr.ROOT / ".ptxas", sass=True)
print(rows[0][:4])
sass = rows[0][4]
pathlib.Path(sys.argv[2]).write_text(sass)
code = [(op, rest) for _, op, rest in pr.instructions(sass)]
last_exit = max(i for i, (o, r) in enumerate(code) if o == "EXIT")
print(len(code), "instructions")
print(pr.loop_pipeline(code[:last_exit]))
