#!/usr/bin/env bash
# v11's second GPU call: the forward on packed rows (shape 3) without ping-pong (variant nopp)
# and with the overlap on trimmed bounds (noppoverlaptrim), in the same rounds as the default;
# then the forward's phases (dense, blocks level) with the ping-pong, without, and without plus
# the overlap. Same tree as v11_call1.sh (branch
# v11-both in .bench/v11-both). About 6 minutes. Output also in $OUT/v11_call2.txt.
exec > >(tee -a "${OUT:-/tmp}/v11_call2.txt") 2>&1
T="==\|dsllm from\|compute 0\|  [a-z_]* *[0-9]* x\|item cycles =\|Error\|ERROR"
export PYTHONPATH=$site:$PWD/.bench/v11-both
timeout 330 python -P -m dsllm.bench.attention --shapes=3 --impls=pallas --variants=nopp,noppoverlaptrim \
    --variant_shapes=3 --rounds=5 --extra_checks=false 2>&1 | grep "fwd \|WRONG\|ERROR\|Error\|x,\|dsllm"
for blocks in forward_pingpong=True forward_pingpong=False \
    forward_pingpong=False,overlap_forward=True,trim_blocks=False; do
  timeout 70 python -P -m dsllm.bench.kernel_trace --rows=dense --level=blocks \
      --blocks=$blocks 2>&1 | grep "$T" | head -14 | sed "s/^/$blocks /"
done
