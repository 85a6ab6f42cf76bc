#!/usr/bin/env bash
# v14's fourth GPU call: the SM clock and power while each implementation is timed (shapes 1
# and 3; pallas, cuDNN, tokamax; 3 rounds of 100 bursts so that each timing spans several
# 50 ms samples), matched by dsllm.bench.clocks. Call 3 found the GPU at its 700 W limit with
# the clock at 1,650-1,980 MHz; this says whether the implementations run at different clocks.
# Runs main's checkout. About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v14_call4.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 \
    > "$OUT/v14_call4_clocks.csv" &
sampler=$!
timeout 330 python -P -m dsllm.bench.attention --shapes=1,3 --rounds=3 --iters=100 \
    --extra_checks=false --out=$OUT/v14_call4_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v14_call4_clocks.csv" "$OUT/v14_call4_bench_attention.json"
