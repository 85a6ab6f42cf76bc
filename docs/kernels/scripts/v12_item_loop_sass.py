"""The persistent forward's whole-kernel SASS pipeline shape (ptxas_report.loop_pipeline over
every instruction before the last EXIT), lowered at S16384 so that each program loops over
items (ptxas_report's default shape, S1024, gives one item per program and the item loop folds
away). Needs dsllm/bench/ptxas/setup.sh. NOTES.md v12.

  PYTHONPATH=. python -P docs/kernels/scripts/v12_item_loop_sass.py "defer_epilogue=True" /tmp/k.sass
"""
import pathlib
import sys

from absl import flags

from dsllm.bench import ptxas_report as pr
from dsllm.kernels.mgpu_common import parse_blocks

flags.FLAGS(["x"])
forward = pr.lower_kernels(parse_blocks(sys.argv[1]), 128, 1, True, seq=16384)[:1]
[row] = pr.report(forward, pr.ROOT / ".ptxas", sass=True)
print(row[:4])
sass = row[4]
pathlib.Path(sys.argv[2]).write_text(sass)
code = [(op, rest) for _, op, rest in pr.instructions(sass)]
last_exit = max(i for i, (op, _) in enumerate(code) if op == "EXIT")
print(len(code), "instructions")
print(pr.loop_pipeline(code[:last_exit]))
