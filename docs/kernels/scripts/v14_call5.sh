#!/usr/bin/env bash
# v14's fifth GPU call: FlashAttention-4's lazy rescale in the forward (variant `lazy8`: a row
# keeps its max until a block exceeds it by 2^8, and a thread multiplies its accumulator only
# if one of its rows' max moved) against the default, shape 1, 5 rounds, checked against the
# fp32 reference first. About 3 minutes. Ran branch `lazy-rescale` (then main's checkout; main
# dropped the change after this call; `docs/kernels/patches/v14_lazy_rescale.patch` holds the
# later warp-uniform form, not the per-thread one this call timed).
exec > >(tee -a "${OUT:-/tmp}/v14_call5.txt") 2>&1
timeout 175 python -P -m dsllm.bench.attention --shapes=1 --impls=pallas \
    --variants=lazy8 --variant_shapes=1 --rounds=5 --extra_checks=false \
    --out=$OUT/v14_call5_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
