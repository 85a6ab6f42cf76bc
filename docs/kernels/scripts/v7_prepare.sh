#!/usr/bin/env bash
# Before the GPU call (on this machine): the three trees the first v7 call compares, under
# .bench/ (carried to the GPU machine with .whl): v6's measured kernels, main, fused-bwd.
set -euo pipefail
cd "$(dirname "$0")/../../.."
for name_rev in before:83aa173 main:main fused:fused-bwd; do
  name=${name_rev%%:*}; rev=${name_rev#*:}
  rm -rf .bench/$name && mkdir -p .bench/$name
  paths="dsllm"
  if git cat-file -e "$rev:docs/kernels/scripts" 2>/dev/null; then paths="dsllm docs/kernels/scripts"; fi
  git archive "$rev" $paths | tar -x -C .bench/$name
done
cp ../shared/bench/anchors.py .bench/anchors.py 2>/dev/null || true
ls .bench/before .bench/main .bench/fused
