#!/usr/bin/env bash
# v13's third GPU call: the fused backward at head_dim 64 (each warpgroup's dQ from its own
# keys, both reduce-adding into the same rows), forced as variant `fused`, against the split
# backward (what "auto" runs at head_dim 64), on dense MHA rows (shape 5) and on packed GQA-4
# rows (shape 6), in the same 3 rounds; cuDNN beside them. Checks the compiled kernel's
# gradients on both before timing. Runs main's checkout. About 6 minutes.
exec > >(tee -a "${OUT:-/tmp}/v13_call3.txt") 2>&1
timeout 560 python -P -m dsllm.bench.attention --shapes=5,6 --impls=pallas,cudnn \
    --variants=fused,split --variant_shapes=5,6 --rounds=3 --extra_checks=false \
    --out=$OUT/v13_call3_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|x (\|dsllm\|shape\|relerr"
