#!/usr/bin/env bash
# Prepared in v16 after the GPU time, not run: the persistent forward with Q in registers for S = Q K^T
# (variant `qregs`, Blocks.q_in_registers; branch q-regs, or on main: git apply
# docs/kernels/patches/v16_q_in_registers.patch). A block then reads 16 KB less SMEM per warpgroup
# (of ~80 KB), for +36 register moves (IMAD.MOV) per block in the inner loop's SASS (484 -> 521
# instructions), 0 spills. v16 calls 7-8 found the packed forward paying for cycles in clock under the
# power limit: the question here is energy, so the SM clock is sampled beside it. Predicted: forward
# -1..+2% on both shapes, a higher clock if it wins. About 4 minutes.
exec > >(tee -a "${OUT:-/tmp}/v16_call9.txt") 2>&1
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw --format=csv -lms 50 > "$OUT/v16_call9_clocks.csv" &
sampler=$!
timeout 400 python -P -m dsllm.bench.attention --shapes=3,1 --impls=pallas \
    --variants=qregs --variant_shapes=3,1 --rounds=5 --extra_checks=false --iters=50 \
    --out=$OUT/v16_call9_bench_attention.json 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
kill $sampler
python -P -m dsllm.bench.clocks "$OUT/v16_call9_clocks.csv" "$OUT/v16_call9_bench_attention.json"
