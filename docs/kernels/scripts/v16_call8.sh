#!/usr/bin/env bash
# v16's eighth GPU call (branch defer-turn, or on main: git apply docs/kernels/patches/v16_defer_last_turn.patch; the version with the last block peeled off the block loops, after call 7's items-level traces showed the edge 1,000-1,200 cycles shorter per item but every block +3%, the cost of the condition in the loops): the persistent forward with Blocks.defer_last_turn (variant
# `defer`: a warpgroup's last block of an item runs its P V without waiting for its turn, which the other
# warpgroup's next-item QK^T gives only after that warpgroup's epilogue; the wait moves to the next item)
# against the default, shapes 3 and 1, 5 rounds, SM clock sampled. Predicted: forward +3-6% on shape 3
# (items of 5.3 blocks), +1-2% on shape 1. About 4 minutes.
exec > >(tee -a "${OUT:-/tmp}/v16_call8.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > "$OUT/v16_call8_clocks.csv" &
sampler=$!
timeout 260 python -P -m dsllm.bench.attention --shapes=3,1 --impls=pallas \
    --variants=defer --variant_shapes=3,1 --rounds=5 --extra_checks=false --iters=50 \
    --out=$OUT/v16_call8_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v16_call8_clocks.csv" "$OUT/v16_call8_bench_attention.json"
