#!/usr/bin/env bash
# v11's first GPU call (NOTES.md v10, next step 0): the forward without its ping-pong schedule
# (Blocks.forward_pingpong=False, variant nopp) and with the intra-warpgroup overlap
# (Blocks.overlap_forward, whole blocks only: variants noppoverlap and overlap, against their
# untrimmed baselines noppnotrim and notrim), all in the same rounds as the default, shape 1,
# tokamax in the base pass. Branch nopp-overlap holds both changes. Predictions (NOTES v10):
# nopp +5-15% forward; the overlap, now compiled as an overlap (the softmax between the two
# wgmma waits), more than nopp alone.
# Prepare here with
#   rm -rf .bench/nopp-overlap && mkdir -p .bench/nopp-overlap && git archive nopp-overlap dsllm | tar -x -C .bench/nopp-overlap
# then run on the GPU machine after the usual wheel install, carrying .whl and .bench.
# About 6-7 minutes. Everything printed also goes to $OUT/v11_call1.txt.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm.
exec > >(tee -a "${OUT:-/tmp}/v11_call1.txt") 2>&1
export PYTHONPATH=$site:$PWD/.bench/nopp-overlap
timeout 450 python -P -m dsllm.bench.attention --shapes=1 --impls=pallas,tokamax \
    --variants=nopp,notrim,noppnotrim,noppoverlap,overlap --variant_shapes=1 --rounds=5 \
    --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
