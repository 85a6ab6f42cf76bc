"""Helpers shared by the corpus tests."""

import gzip
import json
import os

from dsllm.data.corpus.config import default_config


def small_config(inputs, work_dir, **over):
    cfg = default_config()
    cfg.inputs = inputs
    cfg.work_dir = str(work_dir)
    cfg.tasks = 2
    cfg.executor.workers = 1   # tasks run one after another in this process: fast, no forkserver
    cfg.tokenize.enabled = False
    for k, v in over.items():
        node = cfg
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node[last] = v
    return cfg


def read_stage(work_dir, stage):
    from dsllm.data.corpus.common import data_dir

    d = data_dir(str(work_dir), stage)
    out = []
    for f in sorted(os.listdir(d)):
        if f.endswith(".jsonl.gz"):
            with gzip.open(os.path.join(d, f), "rt", encoding="utf-8") as fh:
                out += [json.loads(line) for line in fh]
    return out
