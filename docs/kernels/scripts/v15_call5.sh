#!/usr/bin/env bash
# v15's fifth GPU call (on commit "Kernels: no SMEM reserved for cross-warp reductions", since
# reverted): compiler_params(reduction_scratch_bytes=0) (2 KB of SMEM not reserved)
# checked by the bench on shapes 1 and 3 (all gradients against the reference, one round), then
# v15_stages.py: the per-tile forward with 2 and 3 K/V stages against the default forward.
exec > >(tee -a "${OUT:-/tmp}/v15_call5.txt") 2>&1
timeout 200 python -P -m dsllm.bench.attention --shapes=1,3 --impls=pallas --rounds=1 --iters=20 \
    --extra_checks=true 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|rror\|relerr\|Traceback"
timeout 300 python -P docs/kernels/scripts/v15_stages.py --rounds=5 2>&1 | grep -v "^W\|^I[0-9]"
