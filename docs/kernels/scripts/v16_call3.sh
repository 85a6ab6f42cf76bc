#!/usr/bin/env bash
# v16's third GPU call: the train step on packed rows (~8 documents of mixed lengths a row, as the attention
# bench's shape 3), where cuDNN through jax has no segment ids: pallas against xla (the only other attention
# that takes them), and against dense rows. 1.6B bench config, then the 7B (dots_attn, batch 2).
# Output also in $OUT/v16_call3.txt; JSON (with the final loss at full precision) per run.
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.97
exec > >(tee -a "${OUT:-/tmp}/v16_call3.txt") 2>&1
run() {   # config attention docs_per_row tag [more flags]
  local cfg=$1 attn=$2 docs=$3 tag=$4; shift 4
  timeout 150 python -P -m dsllm.bench.train_step --config=configs/$cfg.py --steps=8 --docs_per_row=$docs \
      --config.model.attention=$attn --tag=$tag "$@" 2>&1 \
      | grep "tokens/s\|WARNING: \|Error\|error:\|RESOURCE\|Killed" | tail -4
}
run bench_1p6b pallas 8 pallas_packed8
run bench_1p6b pallas 1 pallas_dense
run bench_1p6b xla 8 xla_packed8
run bench_1p6b cudnn 1 cudnn_dense
run deepseek_7b pallas 8 7b_pallas_packed8 --config.train.global_batch=2
