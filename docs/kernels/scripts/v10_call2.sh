#!/usr/bin/env bash
# v10's second GPU call: branch store-read (each tile's final TMA store awaited only until it
# has read SMEM, not until it has landed: the dQ, dK/dV and fused backward kernels, once per
# tile, and the forwards) against main, alternating processes, shapes 1 and 3; then the
# backward kernels' per-tile cost on packed rows (tile_fit's a) in both trees. Prepare here with
#   for t in main store-read; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
# About 8 minutes (each bench process ~100-120 s, mostly compiles; the traces ~40 s each).
# Everything printed also goes to $OUT/v10_call2.txt: the device tool returns only the last
# 12,000 characters.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm (the v5-v9 tree comparisons did).
exec > >(tee -a "${OUT:-/tmp}/v10_call2.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,"
T="==\|compute 0\|  [a-z_]* *[0-9]* x\|tile cycles =\|item cycles =\|Error\|ERROR"
for round in 1 2; do
  for tree in main store-read; do
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 200 python -P -m dsllm.bench.attention --shapes=1,3 \
        --impls=pallas --extra_checks=false 2>&1 | grep "$F" | sed "s/^/$tree.r$round /"
  done
done
for tree in main store-read; do
  PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python -P -m dsllm.bench.kernel_trace --rows=packed8 \
      --level=blocks --backward=split --shape=1,4096,8,128 2>&1 | grep "$T" | sed "s/^/$tree /"
done
