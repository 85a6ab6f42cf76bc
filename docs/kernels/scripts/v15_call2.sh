#!/usr/bin/env bash
# Prepared in v14 (not run yet): the forward's row sums on the tensor cores (variant `rowsum`:
# l += P @ ones, a 64x16x128 wgmma beside P V, instead of 64 FADDs and 4 shuffles per thread
# and block; inner loop 484 -> 453 SASS instructions, 0 spills) against the default, shapes 1
# and 3, 5 rounds, with the SM clock sampled. v9's no-row-sum diagnostic shortened the block
# period 9% (3,271 -> 2,976 cycles) though its single timing read slower.
# Run it after `git apply docs/kernels/patches/v14_rowsum_mma.patch`. About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v15_call2.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 \
    > "$OUT/v15_call2_clocks.csv" &
sampler=$!
timeout 400 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas \
    --variants=rowsum --variant_shapes=1,3 --rounds=5 --extra_checks=false --iters=50 \
    --out=$OUT/v15_call2_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v15_call2_clocks.csv" "$OUT/v15_call2_bench_attention.json"
