#!/bin/bash
# Training on a Cloud TPU pod slice: the same command on every host of the slice.
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \
#     --command="cd dsllm && bash launch/tpu_pod.sh configs/deepseek_7b.py /mnt/bucket/runs/7b --config.data.path=/data/tokens"
# jax.distributed.initialize() finds the pod's hosts by itself. Attention "auto" picks the Pallas
# (splash) kernel on TPU. The workdir must be a path every host sees (e.g. a gcsfuse mount).
set -euo pipefail
config=$1; workdir=$2; shift 2
python -m dsllm.train --distributed --config="$config" --workdir="$workdir" "$@"
