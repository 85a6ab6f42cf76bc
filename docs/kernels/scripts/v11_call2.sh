#!/usr/bin/env bash
# v11's second GPU call, rewritten after call 1 (NOTES v11): on dense rows the overlap helped
# only without the ping-pong and without trimming (noppoverlap 1.062x noppnotrim), and nothing
# beat the default. The overlap on trimmed bounds, with and without the ping-pong
# (noppoverlaptrim, overlaptrim), on shapes 1 and 3 in the same rounds as the default.
# Prediction from call 1's factors: noppoverlaptrim ~ noppoverlap x (nopp/noppnotrim 1.04),
# about 1.02x the default on shape 1. Tree: branch v11-both in .bench/v11-both. About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v11_call2.txt") 2>&1
export PYTHONPATH=$site:$PWD/.bench/v11-both
timeout 500 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas \
    --variants=noppoverlaptrim,overlaptrim --variant_shapes=1,3 --rounds=5 --extra_checks=false \
    2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
