#!/usr/bin/env bash
# v9's second GPU call: where the time goes, by dsllm.bench.kernel_trace. Both forwards' phases
# (main and fences, dense at the blocks level, packed at the items level), the backward
# kernels' (both trees, fused and split, on 8 heads), then the softmax diagnostics on the faster
# forward's tree (TREE=main|fences, default fences). Same preparation as v9_call1.sh.
F="==\|compute\|producer\|  [a-z_]* *[0-9]* x\|item\|cycles =\|fwd \|Error\|ERROR"
for tree in main fences; do
  PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python -m dsllm.bench.kernel_trace --rows=dense \
      --level=blocks 2>&1 | grep "$F" | sed "s/^/$tree /"
  PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python -m dsllm.bench.kernel_trace --rows=packed8 \
      2>&1 | grep "$F" | sed "s/^/$tree /"
done
for tree in main fences; do
  for backward in fused split; do
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python -m dsllm.bench.kernel_trace --rows=dense \
        --level=blocks --backward=$backward --shape=1,4096,8,128 2>&1 | grep "$F" | sed "s/^/$tree /"
  done
done
PYTHONPATH=$site:$PWD/.bench/${TREE:-fences} timeout 200 python docs/kernels/scripts/v9_softmax_cost.py \
    2>&1 | grep "$F\|dense" | sed "s/^/${TREE:-fences} /"
