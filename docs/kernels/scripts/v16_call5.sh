#!/usr/bin/env bash
# v16's fifth GPU call (branch defer-turn; on main: git apply docs/kernels/patches/v16_defer_last_turn_cond.patch):
# where the item edge's cycles go with and without Blocks.defer_last_turn. Blocks-level traces (each program's
# first ~100 blocks) of the persistent forward, packed8 and dense; item_edges now also prints each item's
# first own block's sync and last own block's turn against the other blocks'.
exec > >(tee -a "${OUT:-/tmp}/v16_call5.txt") 2>&1
for rows in packed8 dense; do
  for B in "" defer_last_turn=True; do
    echo "== rows=$rows blocks=$B"
    timeout 90 python -P -m dsllm.bench.kernel_trace --rows=$rows --level=blocks --blocks="$B" 2>&1 | grep -v "^[IW][0-9]"
  done
done
