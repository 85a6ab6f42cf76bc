#!/usr/bin/env bash
# v17's second GPU call: the issue's benchmark on main (kernels as in v11-v16) in one run, as
# v15_call3.sh: anchors.py attn, then dsllm.bench.attention on shapes 1-3 (pallas, cuDNN,
# tokamax), 3 rounds, with the SM clock and power sampled every 50 ms and matched to each
# implementation's timings (dsllm.bench.clocks). About 7 minutes.
exec > >(tee -a "${OUT:-/tmp}/v17_call2.txt") 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > "$OUT/v17_call2_clocks.csv" &
sampler=$!
timeout 150 python -P .bench/anchors.py attn 2>&1 | grep -v "^W\|^I[0-9]"
timeout 400 python -P -m dsllm.bench.attention --rounds=3 \
    --out=$OUT/v17_call2_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v17_call2_clocks.csv" "$OUT/v17_call2_bench_attention.json"
