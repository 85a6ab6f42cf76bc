#!/usr/bin/env bash
# v11's third GPU call (NOTES.md v10, next step 2): the persistent dK/dV (the split backward's
# default since v10) against the per-tile one on the 67B's GQA shape, both forced to the split
# backward (the default's fused backward is the first figure), in the same rounds. v10 measured
# +2.3% on packed rows (shape 3) and no change on dense MHA (shape 1); GQA 8 streams 8 query
# heads per key tile, so a tile is longer and its fixed cost weighs less: expect 0 to +1%.
# Runs main's checkout (no tree to prepare). About 5 minutes.
exec > >(tee -a "${OUT:-/tmp}/v11_call3.txt") 2>&1
timeout 500 python -P -m dsllm.bench.attention --shapes=2 --impls=pallas --variants=split,tiledkv \
    --variant_shapes=2 --rounds=3 --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
