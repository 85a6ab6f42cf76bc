#!/usr/bin/env bash
# v15's fourth GPU call (as v11_call6.sh): the end-to-end target on main as it stands: the 1.6B train step with
# cudnn and pallas attention, alternating. Runs main's checkout. Output also in $OUT/v15_call4.txt.
exec > >(tee -a "${OUT:-/tmp}/v15_call4.txt") 2>&1
i=0
for attn in cudnn pallas cudnn pallas; do
  i=$((i + 1))
  timeout 125 python -P -m dsllm.bench.train_step --config=configs/bench_1p6b.py --steps=10 \
      --config.model.attention=$attn --tag=$attn$i 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|tokens/s\|WARNING: \|dsllm"
done
