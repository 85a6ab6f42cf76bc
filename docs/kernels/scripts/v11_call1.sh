#!/usr/bin/env bash
# v11's first GPU call (NOTES.md v10, next step 0): the forward without its ping-pong schedule
# (Blocks.forward_pingpong=False, variant nopp) and with the intra-warpgroup overlap
# (Blocks.overlap_forward, whole blocks only: variants noppoverlap and overlap, against their
# untrimmed baselines noppnotrim and notrim; noppoverlappin adds the pinned backward of
# v11_call4.sh), all in the same rounds as the default, shape 1,
# tokamax in the base pass. Branch v11-both holds these (branch nopp-overlap) and the pinned
# backward (branch bwd-pin). Predictions (NOTES v10):
# nopp +5-15% forward; the overlap, now compiled as an overlap (the softmax between the two
# wgmma waits), more than nopp alone.
# Prepare here with
#   rm -rf .bench/v11-both && mkdir -p .bench/v11-both && git archive v11-both dsllm | tar -x -C .bench/v11-both
# then run on the GPU machine after the usual wheel install, carrying .whl and .bench.
# About 6-7 minutes. Everything printed also goes to $OUT/v11_call1.txt.
# python -P: without it, "python -m" puts the working directory (main's checkout) ahead of
# PYTHONPATH, and every tree runs main's dsllm.
exec > >(tee -a "${OUT:-/tmp}/v11_call1.txt") 2>&1
export PYTHONPATH=$site:$PWD/.bench/v11-both
timeout 450 python -P -m dsllm.bench.attention --shapes=1 --impls=pallas,tokamax \
    --variants=nopp,notrim,noppnotrim,noppoverlap,overlap,noppoverlappin --variant_shapes=1 --rounds=5 \
    --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
