#!/usr/bin/env bash
# The first GPU call of v7 (NOTES.md v6, next steps): run on the GPU machine after the usual
# wheel install (PYTHONPATH=$site), with .bench from v7_prepare.sh carried. One round is about
# 250 s (round 2, with cuDNN, tokamax and anchors.py, about 450 s); run `bash v7_call.sh 1` and `bash v7_call.sh 2` as two calls.
#   before: the split kernels as v6 measured them (83aa173)
#   main:   + per_step (no spills) + the forward's single multiply
#   fused:  fused-bwd, variants fused ("columns") and fusedkeys; then "columns" at 240/24
round=${1:-1}
F="fwd \|WRONG\|ERROR"
bench() { PYTHONPATH=$site:$PWD/.bench/$1 timeout 200 python -m dsllm.bench.attention --shapes=1,3 \
            --extra_checks=false "${@:2}" 2>&1 | grep "$F" | sed "s/^/$1.r$round /"; }
bench before --impls=pallas
if [ "$round" = 2 ]; then bench main --impls=pallas,cudnn,tokamax; else bench main --impls=pallas; fi
bench fused --impls=pallas --variants=fused,fusedkeys --variant_shapes=1,3
PYTHONPATH=$site:$PWD/.bench/fused timeout 150 python .bench/fused/docs/kernels/scripts/regs240.py \
    --shapes=1,3 --variant_shapes=1,3 2>&1 | grep "$F" | sed "s/^/fused240.r$round /"
if [ "$round" = 2 ] && [ -f .bench/anchors.py ]; then timeout 200 python .bench/anchors.py attn 2>&1 | tail -15; fi
