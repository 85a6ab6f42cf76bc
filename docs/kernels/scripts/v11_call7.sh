#!/usr/bin/env bash
# v11's seventh GPU call: the dK/dV kernel under GQA on packed rows (bench shape 4: the 67B's
# GQA 8, B2 S8192, ~16 documents per row). Call 3 measured the per-tile dK/dV 1.17x the
# persistent one on shape 2 (dense GQA 8), and the deal's cost model (NOTES v11) gives the
# persistent one's programs 0.63 of balanced on shape 4 against the hardware's 0.90 for
# per-tile; Blocks.dkv_kernel="auto" now picks per-tile under GQA. Variants in the same rounds:
# split (the split backward, auto's per-tile dK/dV) and pdkv (the split backward with the
# persistent dK/dV). Prediction: split/pdkv 1.1-1.3x forward+backward. Runs main's checkout.
exec > >(tee -a "${OUT:-/tmp}/v11_call7.txt") 2>&1
timeout 260 python -P -m dsllm.bench.attention --shapes=4 --impls=pallas --variants=split,pdkv \
    --variant_shapes=4 --rounds=3 --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
