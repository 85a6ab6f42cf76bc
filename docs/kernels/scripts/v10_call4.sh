#!/usr/bin/env bash
# v10's fourth GPU call. v5-v9 compared trees without python -P, so every tree ran main's
# dsllm (see v10_call1.sh): branch fences (the forward's "softmax done" arrival fenced after
# the exps, predicted forward +10-20% on shape 1) and store-read (predicted backward +2-5% on
# packed rows, shape 3) were never timed. Alternating processes, one shape each to fit the
# call. Prepare here with
#   for t in main fences store-read; do rm -rf .bench/$t && mkdir -p .bench/$t && git archive $t dsllm | tar -x -C .bench/$t; done
exec > >(tee -a "${OUT:-/tmp}/v10_call4.txt") 2>&1
F="fwd \|WRONG\|ERROR\|Error\|x,"
b() { tree=$1; shift; PYTHONPATH=$site:$PWD/.bench/$tree timeout 150 python -P -m dsllm.bench.attention \
    --impls=pallas --extra_checks=false "$@" 2>&1 | grep "$F" | sed "s/^/$tree /"; }
for tree in main fences store-read; do
  PYTHONPATH=$site:$PWD/.bench/$tree python -P -c "import dsllm; print('$tree:', dsllm.__file__)"
done
b main --shapes=1; b fences --shapes=1
b store-read --shapes=3; b main --shapes=3
b fences --shapes=1; b main --shapes=1
b store-read --shapes=3
