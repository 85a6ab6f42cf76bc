"""The corpus pipeline: normalize + exact dedup, cross-dump MinHash dedup, quality filters,
remixing, tokenization into token shards, on datatrove executors (local, Slurm, Ray).

    python -m dsllm.data.corpus --config=configs/corpus/example.py          # the whole chain
    python -m dsllm.data.corpus --config=... --stage=filter                 # one stage again

See docs/corpus.md.
"""
