#!/usr/bin/env bash
# v11's first GPU call (NOTES.md v10, next step 0): the forward without its ping-pong schedule
# (Blocks.forward_pingpong=False, branch no-pingpong, bench variant nopp), in the same rounds
# as the default (tokamax in the base pass), shapes 1 and 3; then both forwards' phases (dense,
# blocks level). If the softmax phase is latency-bound (v10: moving 1/8 of its exps to the FMA
# pipes did not shorten it), two warps per SM sub-partition interleaving their softmaxes
# should shorten the block period. Prepare here with
#   rm -rf .bench/no-pingpong && mkdir -p .bench/no-pingpong && git archive no-pingpong dsllm | tar -x -C .bench/no-pingpong
# then run on the GPU machine after the usual wheel install, carrying .whl and .bench.
# About 7 minutes. Everything printed also goes to $OUT/v11_call1.txt.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm.
exec > >(tee -a "${OUT:-/tmp}/v11_call1.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
T="==\|dsllm from\|compute 0\|  [a-z_]* *[0-9]* x\|item cycles =\|Error\|ERROR"
export PYTHONPATH=$site:$PWD/.bench/no-pingpong
timeout 330 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas,tokamax \
    --variants=nopp --variant_shapes=1,3 --rounds=5 --extra_checks=false 2>&1 | grep "$F"
for pingpong in True False; do
  timeout 60 python -P -m dsllm.bench.kernel_trace --rows=dense --level=blocks \
      --blocks=forward_pingpong=$pingpong 2>&1 | grep "$T" | head -14 | sed "s/^/pingpong=$pingpong /"
done
