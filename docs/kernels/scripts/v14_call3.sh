#!/usr/bin/env bash
# v14's third GPU call: the issue's benchmark on main (the static snake, as v13) in one run
# dsllm.bench.attention on shapes 1-3, 3 rounds), now with cuDNN and tokamax on the packed
# rows of shape 3 too: cuDNN through its packed ("THD") layout, tokamax with its per-row key
# start. Their packed/dense ratios say what the 85% target asks beyond the references.
# Runs main's checkout. About 7 minutes.
exec > >(tee -a "${OUT:-/tmp}/v14_call3.txt") 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 150 python -P .bench/anchors.py attn 2>&1 | grep -v "^W\|^I[0-9]"
timeout 420 python -P -m dsllm.bench.attention --rounds=3 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
