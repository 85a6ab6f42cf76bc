"""Stage 1b: exact deduplication across every dump at once, on datatrove's ExactDedup steps.

The hash is taken over `normalize.dedup_key` (case-folded, whitespace-collapsed text): one
document of each group of identical keys is kept. Phases: signatures per task, one merge that
finds duplicates, then a filter that drops them (and writes them to removed/ with the reason).
"""

from __future__ import annotations

import os

from datatrove.pipeline.dedup.exact_dedup import (ExactDedupConfig, ExactDedupFilter, ExactDedupSignature,
                                                  ExactFindDedups)
from datatrove.utils.hashing import HashConfig

from dsllm.data.corpus.common import Tally, reader, writer
from dsllm.data.corpus.normalize import doc_dedup_key


def phases(cfg, in_dir: str, out_dir: str, stage_root: str, tasks: int):
    c = cfg.exact_dedup
    dcfg = ExactDedupConfig(content_getter=doc_dedup_key, hash_config=HashConfig(precision=64, hash_fc=c.hash_fc))
    sigs, dups = os.path.join(stage_root, "signatures"), os.path.join(stage_root, "duplicates")
    return [
        ("signature", [reader(in_dir), ExactDedupSignature(sigs, config=dcfg)], tasks),
        ("find", [ExactFindDedups(sigs, dups, config=dcfg)], 1),
        ("filter", [reader(in_dir),
                    ExactDedupFilter(dups, config=dcfg, exclusion_writer=writer(os.path.join(stage_root, "removed"))),
                    Tally(), writer(out_dir)], tasks),
    ]
