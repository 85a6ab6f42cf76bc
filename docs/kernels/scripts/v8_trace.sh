#!/usr/bin/env bash
# v8 call 6: the persistent forward's phases, warpgroup by warpgroup (dsllm.bench.kernel_trace),
# on dense and packed rows, items then blocks. Run on the GPU machine after the usual wheel
# install (PYTHONPATH=$site:$PWD); the traces come back gzipped in $OUT.
for level in items blocks; do
  for rows in dense packed8; do
    timeout 45 python -m dsllm.bench.kernel_trace --rows=$rows --level=$level --dir=/tmp/tr_$rows.$level 2>&1 \
        | grep -v "^WARNING\|^I1\|^W1"
    for f in /tmp/tr_$rows.$level/*-trace.json; do gzip -c $f > $OUT/trace_$rows.$level.json.gz; done
  done
done
