#!/usr/bin/env bash
# v11's fifth GPU call: the issue's benchmark on main as it stands, in one run: anchors.py attn
# (XLA, cuDNN, jax Pallas, tokamax), then dsllm.bench.attention on all three shapes against
# cuDNN and tokamax (the default impls), 3 rounds. Runs main's checkout. About 6 minutes.
exec > >(tee -a "${OUT:-/tmp}/v11_call5.txt") 2>&1
timeout 150 python -P .bench/anchors.py attn 2>&1 | grep -v "^W\|^I[0-9]"
timeout 400 python -P -m dsllm.bench.attention --rounds=3 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm\|shape"
