#!/usr/bin/env bash
# v17's fifth GPU call: where 256-key forward blocks at head_dim 64 (variant bkv256) stop paying:
# shape 5 on rows of ~2 and ~4 documents (new flag --docs). Calls 3-4: 1.09x forward on dense
# rows (visited keys 1.015x those of 128-key blocks), 0.846x on ~8 documents (1.098x visited).
# At ~2 and ~4 documents the visited keys are 1.034x: predicted +2..+6% there. About 4 minutes.
exec > >(tee -a "${OUT:-/tmp}/v17_call5.txt") 2>&1
for docs in 2 4; do
  timeout 200 python -P -m dsllm.bench.attention --shapes=5 --docs=$docs --impls=pallas \
      --variants=bkv256 --variant_shapes=5 --rounds=3 --extra_checks=false \
      --out=$OUT/v17_call5_docs${docs}_bench_attention.json 2>&1 \
      | grep "fwd \|WRONG\|ERROR\|Error\|rror\|x,\|x (\|dsllm\|shape\|relerr\|Traceback"
done
