"""Stage 2: near-duplicate removal with MinHash LSH over all dumps together (DeepSeek's
cross-dump strategy), on datatrove's four MinHash steps.

Shingles are word n-grams (`n_grams`, default 5) of the simplified text (lower case, no
punctuation), words split by `words.MultilingualWordTokenizer` (one word per CJK character).
`num_buckets` x `hashes_per_bucket` (bands x rows; default 14 x 8 = 112 hashes, FineWeb's) set
the similarity threshold, about (1/bands)^(1/rows) = 0.72 Jaccard. Duplicate pairs from any
band are joined by union-find; one document per cluster is kept.
"""

from __future__ import annotations

import os

from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter, MinhashDedupSignature)
from datatrove.utils.hashing import HashConfig

from dsllm.data.corpus.common import Tally, reader, writer
from dsllm.data.corpus.words import WORDS


def minhash_config(c) -> MinhashConfig:
    return MinhashConfig(n_grams=c.n_grams, num_buckets=c.num_buckets, hashes_per_bucket=c.hashes_per_bucket,
                         seed=c.seed, hash_config=HashConfig(precision=c.precision, hash_fc=c.hash_fc))


def phases(cfg, in_dir: str, out_dir: str, stage_root: str, tasks: int):
    mcfg = minhash_config(cfg.minhash)
    sigs, buckets, clusters = (os.path.join(stage_root, d) for d in ("signatures", "buckets", "clusters"))
    return [
        ("signature", [reader(in_dir), MinhashDedupSignature(sigs, config=mcfg, language=WORDS)], tasks),
        ("buckets", [MinhashDedupBuckets(sigs, buckets, config=mcfg)], mcfg.num_buckets),
        ("cluster", [MinhashDedupCluster(buckets, clusters, config=mcfg)], 1),
        ("filter", [reader(in_dir),
                    MinhashDedupFilter(clusters, exclusion_writer=writer(os.path.join(stage_root, "removed"))),
                    Tally(), writer(out_dir)], tasks),
    ]
