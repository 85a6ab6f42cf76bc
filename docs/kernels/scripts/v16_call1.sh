#!/usr/bin/env bash
# v16's first GPU call: the paper's exact 7B config (30 x 4096, 32 heads, FFN 11008, seq 4096) on one
# H200 at batch 2: anchors.py's plain JAX step (cuDNN attention, full remat) beside dsllm's train step with
# cudnn and pallas attention under the remat policies that fit. Output also in $OUT/v16_call1.txt.
# jax preallocates 75% of the GPU by default: 7B state (~103 GiB) plus the step's ~27 GiB of temporaries needs more.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.97
exec > >(tee -a "${OUT:-/tmp}/v16_call1.txt") 2>&1
ANCHOR_CFG='{"layers": 30, "d": 4096, "heads": 32, "ffn": 11008, "batch": 2}' ANCHOR_REMAT=full \
    timeout 150 python -P .bench/anchors.py jaxstep 2>&1 | grep -v '^WARNING\|^I0000\|^W0000' | tail -8
run() {   # attention remat tag
  timeout 110 python -P -m dsllm.bench.train_step --config=configs/deepseek_7b.py --steps=8 \
      --config.train.global_batch=2 --config.model.attention=$1 --config.model.remat=$2 --tag=$3 2>&1 \
      | grep "tokens/s\|WARNING: \|Error\|error:\|RESOURCE\|Killed" | tail -4
}
run pallas full pallas_full
run cudnn full cudnn_full
run pallas qkv_attn pallas_qkv
run cudnn qkv_attn cudnn_qkv
