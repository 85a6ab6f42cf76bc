#!/usr/bin/env bash
# v11's fourth GPU call: branch bwd-pin (Blocks.pin_backward: the backward kernels store P's row
# sums to SMEM before awaiting dP, which keeps P's exps between the waits for S and dP, where
# ptxas otherwise sank them below the second: ptxas_report --pipeline shows `W1 B e32 S2 B W0`
# instead of `W1 W0 e32`). Variants in the same rounds: bwdpin (the default backward, fused on
# shape 1, split on shape 3), splitpin and split. Prediction: the backward +3-8% (the exps
# overlap the dP matmul; the row sum and two warpgroup barriers per block cost some of it).
# Prepare here with
#   rm -rf .bench/v11-both && mkdir -p .bench/v11-both && git archive v11-both dsllm | tar -x -C .bench/v11-both
# (bwd-pin merged with nopp-overlap, as v11_call1.sh uses; its default Blocks are main's).
# About 8 minutes. Output also in $OUT/v11_call4.txt.
exec > >(tee -a "${OUT:-/tmp}/v11_call4.txt") 2>&1
export PYTHONPATH=$site:$PWD/.bench/v11-both
timeout 540 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas \
    --variants=bwdpin,splitpin,split --variant_shapes=1,3 --rounds=5 --extra_checks=false 2>&1 \
    | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
