#!/usr/bin/env bash
# v12's second GPU call (NOTES v12, next step 0): where the item edge's cycles go, main against
# branch defer-epilogue (which made the edge dearer: 1.52 / 1.98 blocks against 1.37 / 1.59).
# Blocks-level traces (each program's first ~100 blocks) of the persistent forward, dense and
# packed8, both trees; kernel_trace prints each phase per block and item_edges (item start to
# first Q K^T, last P V to item end, the first block's period). Prepare the tree with
#   rm -rf .bench/defer-epilogue && mkdir -p .bench/defer-epilogue && git archive defer-epilogue dsllm | tar -x -C .bench/defer-epilogue
# and carry .whl and .bench. python -P: each tree's own dsllm (NOTES v10).
exec > >(tee -a "${OUT:-/tmp}/v12_call2.txt") 2>&1
for rows in packed8 dense; do
  for tree in main defer; do
    if [ $tree = main ]; then P=$site:$PWD; B=""; else P=$site:$PWD/.bench/defer-epilogue; B=defer_epilogue=True; fi
    echo "== $tree rows=$rows"
    PYTHONPATH=$P timeout 90 python -P -m dsllm.bench.kernel_trace --rows=$rows --level=blocks --blocks="$B" 2>&1 | grep -v "^[IW][0-9]"
  done
done
