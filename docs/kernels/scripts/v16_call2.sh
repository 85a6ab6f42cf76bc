#!/usr/bin/env bash
# v16's second GPU call: the 7B config (as v16_call1.sh) under the remat policy that keeps every matmul's output
# (dots_attn, if it fits) and at batch 4 under qkv_attn. Output also in $OUT/v16_call2.txt.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.97
exec > >(tee -a "${OUT:-/tmp}/v16_call2.txt") 2>&1
run() {   # attention remat batch tag
  timeout 120 python -P -m dsllm.bench.train_step --config=configs/deepseek_7b.py --steps=8 \
      --config.train.global_batch=$3 --config.model.attention=$1 --config.model.remat=$2 --tag=$4 2>&1 \
      | grep "tokens/s\|WARNING: \|Error\|error:\|RESOURCE\|Killed" | tail -4
}
run pallas dots_attn 2 pallas_dots_attn_b2
run cudnn dots_attn 2 cudnn_dots_attn_b2
run pallas qkv_attn 4 pallas_qkv_b4
run cudnn qkv_attn 4 cudnn_qkv_b4
