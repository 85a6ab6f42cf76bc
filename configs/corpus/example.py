"""Example corpus config: every dump of every source under ROOT/raw/<source>/<dump>/*.jsonl[.gz]
(or *.parquet), deduplicated together, filtered, remixed, tokenized with ROOT/tokenizer.

    python -m dsllm.data.corpus --config=configs/corpus/example.py:/data/mycorpus
    python -m dsllm.data.corpus --config=configs/corpus/example.py:/data/mycorpus --stage=filter \
        --config.filters.gopher_quality.min_doc_words=100

A synthetic corpus to try it on: `python -m dsllm.data.corpus.synthetic --out=/tmp/corpus_demo`
(it also trains ROOT/tokenizer).
"""

import glob
import os

from dsllm.data.corpus.config import default_config


def get_config(root: str = "/tmp/corpus_demo"):
    c = default_config()
    inputs = []
    for source in sorted(os.listdir(os.path.join(root, "raw"))) if os.path.isdir(os.path.join(root, "raw")) else []:
        for dump in sorted(os.listdir(os.path.join(root, "raw", source))):
            d = os.path.join(root, "raw", source, dump)
            files = [f for pat in ("*.jsonl", "*.jsonl.gz", "*.parquet") for f in glob.glob(os.path.join(d, pat))]
            if files:
                inputs.append(dict(source=source, dump=dump, paths=sorted(files)))
    c.inputs = inputs
    c.work_dir = os.path.join(root, "work")
    c.tasks = 4
    c.on_error = "skip"
    c.tokenize.tokenizer = os.path.join(root, "tokenizer")
    c.tokenize.shards_per_task = 1
    # Remix: the sources the synthetic demo writes; edit for your corpus (bytes, after filtering).
    c.remix.weights = {"web": 0.7, "wiki": 0.3}
    return c
