#!/usr/bin/env bash
# v9's fourth GPU call: the fold's forward phases against main's in one call (dense, blocks
# level), then shape 3 on both trees (v9_fold.sh's 100 s limit cut the fold's shape 3 runs:
# their compile is slow). Same preparation as v9_fold.sh.
F="fwd \|WRONG\|ERROR\|Error\|x,"
T="==\|compute 0\|  [a-z_]* *[0-9]* x\|item cycles =\|Error\|ERROR"
for tree in row-sum-fold main; do
  PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python -m dsllm.bench.kernel_trace --rows=dense \
      --level=blocks 2>&1 | grep "$T" | head -16 | sed "s/^/$tree /"
done
for tree in row-sum-fold main; do
  PYTHONPATH=$site:$PWD/.bench/$tree timeout 120 python -m dsllm.bench.attention --shapes=3 \
      --impls=pallas --extra_checks=false 2>&1 | grep "$F" | sed "s/^/$tree /"
done
