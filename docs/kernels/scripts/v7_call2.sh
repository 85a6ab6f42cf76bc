#!/usr/bin/env bash
# v7 call 2: main (split) vs cuDNN, tokamax on shapes 1,2,3; fused at 240/24 (columns, keys); v6 kernels on shape 1; anchors attn.
# The trees under .bench/ come from v7_prepare.sh (.bench/fused = branch fused-bwd, which has regs240.py).
F="fwd \|WRONG\|ERROR\|Error"
b() { tag=$1; tree=$2; shift 2; PYTHONPATH=$site:$PWD/.bench/$tree timeout 240 python -m dsllm.bench.attention --extra_checks=false "$@" 2>&1 | grep "$F" | sed "s/^/$tag /"; }
b main main --shapes=1,3,2 --impls=pallas,cudnn,tokamax
b before before --shapes=1 --impls=pallas
PYTHONPATH=$site:$PWD/.bench/fused timeout 240 python .bench/fused/docs/kernels/scripts/regs240.py \
    --shapes=1,3,2 --variants=fused,fusedkeys --variant_shapes=1,3,2 2>&1 | grep "$F" | sed "s/^/fused240 /"
b main2 main --shapes=1 --impls=pallas
timeout 150 python .bench/anchors.py attn 2>&1 | tail -12
