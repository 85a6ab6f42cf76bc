#!/usr/bin/env bash
# Prepared in v14 (not run yet): the lazy rescale with a warp-uniform condition (branch
# `lazy-rescale`: the warp multiplies its accumulator only if one of its 16 rows' max moved,
# voted with vote.sync.any, so ptxas emits a uniform branch without the BSSY/BSYNC region that
# v14 call 5's per-thread condition got), variant `lazy8` against the default, shapes 1 and 3,
# 5 rounds, with the SM clock sampled (fewer FMULs per block may also mean less power).
# Run it after `git apply docs/kernels/patches/v14_lazy_rescale.patch`. About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v15_call1.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 \
    > "$OUT/v15_call1_clocks.csv" &
sampler=$!
timeout 400 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas \
    --variants=lazy8 --variant_shapes=1,3 --rounds=5 --extra_checks=false --iters=50 \
    --out=$OUT/v15_call1_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v15_call1_clocks.csv" "$OUT/v15_call1_bench_attention.json"
