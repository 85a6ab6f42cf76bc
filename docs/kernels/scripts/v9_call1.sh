#!/usr/bin/env bash
# v9's first GPU call (NOTES.md v8, next step 0): branch fences (the forward's "softmax done"
# arrival ordered after the softmax, branch fwd-fence; the backward's P computed while dP is in
# flight, branch bwd-overlap) against main, alternating, with cuDNN and tokamax in the same
# runs. The forward figure measures the first change, forward+backward minus forward the second. Prepare here with
#   for t in main fences; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
# then run on the GPU machine after the usual wheel install, carrying .whl and .bench.
F="fwd \|WRONG\|ERROR\|Error\|x,"
for round in 1 2; do
  for tree in main fences; do
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 140 python -m dsllm.bench.attention --shapes=1,3 \
        --impls=pallas,cudnn,tokamax --extra_checks=false 2>&1 | grep "$F" | sed "s/^/$tree.r$round /"
  done
done
