#!/usr/bin/env bash
# v15's third GPU call: the issue's benchmark on main (kernels as in v13-v14) in one run:
# anchors.py attn, then dsllm.bench.attention on shapes 1-3 (pallas, cuDNN, tokamax; cuDNN's
# packed THD layout and tokamax's per-row key start on shape 3), 3 rounds. The SM clock and
# power draw are sampled every 200 ms meanwhile (v15_call3_clocks.csv), to see whether the
# GPU runs below its 1,980 MHz clock under these kernels (it does: v14). Runs main's checkout. About 7 minutes.
exec > >(tee -a "${OUT:-/tmp}/v15_call3.txt") 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv -lms 200 \
    > "${OUT:-/tmp}/v15_call3_clocks.csv" &
sampler=$!
timeout 150 python -P .bench/anchors.py attn 2>&1 | grep -v "^W\|^I[0-9]"
timeout 420 python -P -m dsllm.bench.attention --rounds=3 \
    --out=$OUT/v15_call3_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
kill $sampler
