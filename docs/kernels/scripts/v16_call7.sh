#!/usr/bin/env bash
# v16's seventh GPU call (branch defer-turn; on main: git apply docs/kernels/patches/v16_defer_last_turn_cond.patch):
# call 5 at --level=items (~5 stamps per item instead of 6 per block, every item recorded): does the
# deferred turn's shorter edge (call 5, blocks level) survive lighter tracing?
exec > >(tee -a "${OUT:-/tmp}/v16_call7.txt") 2>&1
for rows in packed8 dense; do
  for B in "" defer_last_turn=True; do
    echo "== rows=$rows blocks=$B"
    timeout 90 python -P -m dsllm.bench.kernel_trace --rows=$rows --level=items --blocks="$B" 2>&1 \
        | grep -v "^[IW][0-9]" | grep "==\|cycles traced\|item \|item cycles\|compute [01]: [0-9]* items"
  done
done
