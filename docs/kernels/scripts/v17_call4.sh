#!/usr/bin/env bash
# v17's fourth GPU call: 256-key forward blocks at head_dim 64 (variant bkv256; call 3: shape 5
# forward 1.092x) on packed rows (shape 6: GQA 4, ~8 documents a row), where half blocks of 128
# keys instead of 64 visit more masked pairs at document edges, and shape 5 again. Predicted:
# shape 6 forward -3..+5% (fewer, larger blocks against more masked pairs). About 4 minutes.
exec > >(tee -a "${OUT:-/tmp}/v17_call4.txt") 2>&1
timeout 330 python -P -m dsllm.bench.attention --shapes=6,5 --impls=pallas,cudnn \
    --variants=bkv256 --variant_shapes=6,5 --rounds=3 --extra_checks=false \
    --out=$OUT/v17_call4_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
