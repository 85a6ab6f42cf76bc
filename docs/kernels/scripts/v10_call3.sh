#!/usr/bin/env bash
# v10's third GPU call: the persistent dK/dV (Blocks.persistent_dkv, branch persistent-dkv:
# mgpu_backward_persistent) against the per-tile one, both with the split backward, in the
# same rounds (bench variants pdkv and split beside the default), on shapes 3, 1 and 2; then
# both kernels' per-tile cost on packed rows (tile_fit's a: 4,497 cycles per tile per-tile in
# v9). Prediction: packed rows' dK/dV a down to ~1,000-2,000 cycles, shape 3 fwd+bwd +4-8%,
# dense shapes +1-3% for split (the default's fused backward on shape 1 is unchanged).
# Prepare here with
#   rm -rf .bench/persistent-dkv && mkdir -p .bench/persistent-dkv && git archive persistent-dkv dsllm | tar -x -C .bench/persistent-dkv
# About 8 minutes.
# Everything printed also goes to $OUT/v10_call3.txt: the device tool returns only the last
# 12,000 characters.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm (the v5-v9 tree comparisons did).
exec > >(tee -a "${OUT:-/tmp}/v10_call3.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,"
T="==\|compute 0\|  [a-z_]* *[0-9]* x\|tile cycles =\|Error\|ERROR"
export PYTHONPATH=$site:$PWD/.bench/persistent-dkv
python -P -c "import dsllm; print(\"dsllm from\", dsllm.__file__)"
timeout 400 python -P -m dsllm.bench.attention --shapes=3,1,2 --impls=pallas --variants=split,pdkv \
    --variant_shapes=3,1,2 --rounds=5 --extra_checks=false 2>&1 | grep "$F"
for blocks in backward=split backward=split,persistent_dkv=True; do
  timeout 60 python -P -m dsllm.bench.kernel_trace --rows=packed8 --level=blocks --backward=split \
      --blocks=$blocks --shape=1,4096,8,128 2>&1 | grep "$T" | sed "s/^/$blocks /"
done
