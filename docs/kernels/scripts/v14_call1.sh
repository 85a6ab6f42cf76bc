#!/usr/bin/env bash
# v14's first GPU call: the persistent forward's dynamic deal (items taken by an atomic ticket
# from a table whose last 4 waves are sorted heaviest first) against the static snake
# (variant `static`), in the same 5 rounds, with tokamax beside them, on shapes 1 and 3.
# First a short correctness pass (the bench checks every kernel against the fp32 reference
# before timing it, here with the extra cases), so that a hang of the new protocol costs
# 200 s, not the call. About 8 minutes.
# Ran branch `dynamic-deal` (then main's checkout; main went back to the static deal and
# lacks these variants: run it after `git apply docs/kernels/patches/v14_dynamic_deal.patch`).
exec > >(tee -a "${OUT:-/tmp}/v14_call1.txt") 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
filter="fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
timeout 200 python -P -m dsllm.bench.attention --shapes=3 --impls=pallas --rounds=1 --iters=3 \
    --out=$OUT/v14_call1_check.json 2>&1 | grep "$filter" || exit 1
timeout 380 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas,tokamax \
    --variants=static --variant_shapes=1,3 --rounds=5 --extra_checks=false \
    --out=$OUT/v14_call1_bench_attention.json 2>&1 | grep "$filter"
