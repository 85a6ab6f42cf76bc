#!/usr/bin/env bash
# v9's third GPU call: branch row-sum-fold (the forward keeps its row sums as 8 partial sums
# per row, block_math.column_fold, so a block's sum needs no shuffles across the quad of
# threads sharing a row) against main, alternating, with tokamax in the same runs; then the
# fold's dense forward phases. Prepare here with
#   for t in main row-sum-fold; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
F="fwd \|WRONG\|ERROR\|Error\|x,"
T="==\|compute 0\|  [a-z_]* *[0-9]* x\|item cycles =\|Error\|ERROR"
for round in 1 2 3; do
  for tree in main row-sum-fold; do
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 100 python -m dsllm.bench.attention --shapes=1,3 \
        --impls=pallas,tokamax --extra_checks=false 2>&1 | grep "$F" | sed "s/^/$tree.r$round /"
  done
done
PYTHONPATH=$site:$PWD/.bench/row-sum-fold timeout 60 python -m dsllm.bench.kernel_trace --rows=dense \
    --level=blocks 2>&1 | grep "$T" | head -16 | sed "s/^/row-sum-fold /"
