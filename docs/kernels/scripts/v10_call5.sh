#!/usr/bin/env bash
# v10's fifth GPU call: branch row-sum-fold (row sums as 8 partial sums per row, no shuffles
# per block; v9's calls 3-4 ran main's dsllm for both trees) against main, shape 1,
# alternating processes. Prepare here with
#   for t in main row-sum-fold; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
exec > >(tee -a "${OUT:-/tmp}/v10_call5.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,"
b() { tree=$1; shift; PYTHONPATH=$site:$PWD/.bench/$tree timeout 90 python -P -m dsllm.bench.attention \
    --impls=pallas --extra_checks=false "$@" 2>&1 | grep "$F" | sed "s/^/$tree /"; }
b row-sum-fold --shapes=1; b main --shapes=1; b row-sum-fold --shapes=1; b main --shapes=1
