#!/usr/bin/env bash
# v17's third GPU call: the end-to-end target on main (as v15_call4.sh: the 1.6B train step with
# cudnn and pallas attention, alternating), then head_dim 64's forward with 256-key blocks
# (variant bkv256: at head_dim 64 a 256-key K/V block takes the SMEM a 128-key one takes at
# 128; ptxas: 24 B spilled). Predicted: bkv256 +3-6% forward on shape 5 (the per-block fixed
# costs, syncs, row max shuffles, rescale, spread over twice the keys). About 6 minutes.
exec > >(tee -a "${OUT:-/tmp}/v17_call3.txt") 2>&1
i=0
for attn in cudnn pallas cudnn pallas; do
  i=$((i + 1))
  timeout 125 python -P -m dsllm.bench.train_step --config=configs/bench_1p6b.py --steps=10 \
      --config.model.attention=$attn --tag=$attn$i 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|tokens/s\|WARNING: \|dsllm"
done
timeout 200 python -P -m dsllm.bench.attention --shapes=5 --impls=pallas,cudnn \
    --variants=bkv256 --variant_shapes=5 --rounds=3 --extra_checks=false \
    --out=$OUT/v17_call3_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
