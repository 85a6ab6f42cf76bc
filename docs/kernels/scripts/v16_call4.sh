#!/usr/bin/env bash
# v16's fourth GPU call (branch defer-turn; on main: git apply docs/kernels/patches/v16_defer_last_turn_cond.patch): the persistent forward with Blocks.defer_last_turn (variant
# `defer`: a warpgroup's last block of an item runs its P V without waiting for its turn, which the other
# warpgroup's next-item QK^T gives only after that warpgroup's epilogue; the wait moves to the next item)
# against the default, shapes 3 and 1, 5 rounds, SM clock sampled. Predicted: forward +3-8% on shape 3
# (items of 5.3 blocks), +1-3% on shape 1. About 4 minutes.
exec > >(tee -a "${OUT:-/tmp}/v16_call4.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > "$OUT/v16_call4_clocks.csv" &
sampler=$!
timeout 400 python -P -m dsllm.bench.attention --shapes=3,1 --impls=pallas \
    --variants=defer --variant_shapes=3,1 --rounds=5 --extra_checks=false --iters=50 \
    --out=$OUT/v16_call4_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v16_call4_clocks.csv" "$OUT/v16_call4_bench_attention.json"
