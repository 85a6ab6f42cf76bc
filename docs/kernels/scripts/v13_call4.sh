#!/usr/bin/env bash
# v13's fourth GPU call: per-kernel device times at head_dim 64 (shape 5), ours (split and
# fused backward) against cuDNN, one round, from 5 traced forward+backward calls each.
exec > >(tee -a "${OUT:-/tmp}/v13_call4.txt") 2>&1
XLA_FLAGS=--xla_gpu_enable_command_buffer= timeout 400 python -P -m dsllm.bench.attention \
    --shapes=5 --impls=pallas,cudnn --variants=fused --variant_shapes=5 --rounds=1 \
    --extra_checks=false --profile_dir=/tmp/prof --out=$OUT/v13_call4.json 2>&1 | grep -v '^W\|^I[0-9]'
