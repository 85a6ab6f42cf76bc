#!/usr/bin/env bash
# v7 call 3: the fused backward as default ("auto"), in the train step and the bench. Run from the
# checkout on the GPU machine after the usual wheel install (PYTHONPATH=$site:$PWD).
F="fwd \|WRONG\|ERROR\|Error\|tokens/s\|WARNING: "
i=0
for attn in cudnn pallas cudnn pallas; do
  i=$((i + 1))
  timeout 120 python -m dsllm.bench.train_step --config=configs/bench_1p6b.py --steps=10 \
      --config.model.attention=$attn --tag=$attn$i 2>&1 | grep "$F"
done
timeout 200 python -m dsllm.bench.attention --shapes=1,3 --impls=pallas --variants=fused,split \
    --variant_shapes=1,3 --extra_checks=false 2>&1 | grep "$F"
