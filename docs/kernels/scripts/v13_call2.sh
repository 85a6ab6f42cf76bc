#!/usr/bin/env bash
# v13's second GPU call: head_dim 64 (bench shape 5, B4 S4096 H64 D64), never timed: our
# kernels against cuDNN and tokamax, and the split backward's two dK/dV kernels (the default
# runs the persistent one for MHA; NOTES.md v10-v11 timed that choice at head_dim 128 only),
# in the same 3 rounds. Runs main's checkout. About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v13_call2.txt") 2>&1
timeout 500 python -P -m dsllm.bench.attention --shapes=5 --variants=tiledkv --variant_shapes=5 \
    --rounds=3 --extra_checks=false --out=$OUT/v13_call2_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
