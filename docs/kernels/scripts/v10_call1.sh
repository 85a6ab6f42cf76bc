#!/usr/bin/env bash
# v10's first GPU call (NOTES.md v9, next step 0): part of each forward block's exps on the
# FMA pipes (Blocks.poly_exp_columns, block_math.exp2_poly), 16 and 32 of 128 columns, timed
# in the same rounds as the default (bench --variants; tokamax in the base pass), then the
# phases of each (dense, blocks level): the softmax phase should shrink if the MUFU bounds it.
# Prepare here with
#   rm -rf .bench/poly-exp && mkdir -p .bench/poly-exp && git archive poly-exp dsllm | tar -x -C .bench/poly-exp
# then run on the GPU machine after the usual wheel install, carrying .whl and .bench.
# About 7 minutes (the compiles dominate).
# Everything printed also goes to $OUT/v10_call1.txt: the device tool returns only the last
# 12,000 characters.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm (the v5-v9 tree comparisons did).
exec > >(tee -a "${OUT:-/tmp}/v10_call1.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,"
T="==\|compute 0\|  [a-z_]* *[0-9]* x\|item cycles =\|Error\|ERROR"
export PYTHONPATH=$site:$PWD/.bench/poly-exp
python -P -c "import dsllm; print(\"dsllm from\", dsllm.__file__)"
timeout 330 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas,tokamax \
    --variants=poly16,poly32 --variant_shapes=1,3 --rounds=5 --extra_checks=false 2>&1 | grep "$F"
for columns in 0 16 32; do
  timeout 60 python -P -m dsllm.bench.kernel_trace --rows=dense --level=blocks \
      --blocks=poly_exp_columns=$columns 2>&1 | grep "$T" | head -13 | sed "s/^/poly$columns /"
done
