#!/usr/bin/env bash
# v14's second GPU call: the dynamic deal (default) against the static snake (`static`), and
# the dynamic deal without its sorted tail (`tail0`), with 8 waves sorted (`tail8`), and with
# each ticket taken a whole item ahead (`early`), all in the same 7 rounds, packed rows
# (shape 3) first, then dense (shape 1). About 7 minutes.
# Ran branch `dynamic-deal` (then main's checkout; main went back to the static deal and
# lacks these variants: run it after `git apply docs/kernels/patches/v14_dynamic_deal.patch`).
exec > >(tee -a "${OUT:-/tmp}/v14_call2.txt") 2>&1
filter="fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
timeout 570 python -P -m dsllm.bench.attention --shapes=3,1 --impls=pallas \
    --variants=static,tail0,tail8,early --variant_shapes=3,1 --rounds=7 --extra_checks=false \
    --out=$OUT/v14_call2_bench_attention.json 2>&1 | grep "$filter"
