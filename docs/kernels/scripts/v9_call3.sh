#!/usr/bin/env bash
# v9's third GPU call (NOTES.md v8, next step 3): branch fences-early (fences + the early
# arrive before the persistent forward's epilogue, which lost 4-8% on dense rows in v8 while
# the ping-pong was broken) against fences, alternating: the bench's shapes 1 and 3 and the
# uniform-document forward (tile cost), then fences-early's item edges.
# Prepare here with
#   for t in fences fences-early; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
F="fwd \|WRONG\|ERROR\|Error\|fit\|L=\|compute\|cycles ="
for round in 1 2; do
  for tree in fences fences-early; do
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 100 python -m dsllm.bench.attention --shapes=1,3 \
        --impls=pallas --extra_checks=false 2>&1 | grep "$F" | sed "s/^/$tree.r$round /"
    PYTHONPATH=$site:$PWD/.bench/$tree timeout 60 python docs/kernels/scripts/v8_tile_cost.py \
        --backward=false --lengths=4096,512,128 2>&1 | grep "$F" | sed "s/^/$tree.r$round /"
  done
done
PYTHONPATH=$site:$PWD/.bench/fences-early timeout 60 python -m dsllm.bench.kernel_trace --rows=packed8 \
    --level=blocks 2>&1 | grep "$F" | sed "s/^/fences-early /"
