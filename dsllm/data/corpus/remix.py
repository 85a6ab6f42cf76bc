"""Stage 4: remixing. Reaches target mixture weights per source (or domain) by up- or
down-sampling each group, with deterministic randomness (a hash of seed and document id).

Phase 1 counts each group's size (documents or UTF-8 bytes, `remix.unit`); phase 2 computes
each group's rate = weight * total / size and keeps each document floor(rate) times plus once
more with probability frac(rate). `remix.total` sets the output size (default: the input's);
a weight of 0 drops a group. The achieved mixture is in the report next to the target.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

from datatrove.pipeline.base import PipelineStep

from dsllm.data.corpus.common import Tally, reader, writer


def group_of(doc, key: str) -> str:
    return str(doc.metadata.get(key, "?"))


def size_of(doc, unit: str) -> int:
    return 1 if unit == "documents" else len(doc.text.encode("utf-8"))


def unit_hash(seed: int, doc_id: str) -> float:
    h = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


class MixCounter(PipelineStep):
    type = "📊 - STATS"
    name = "dsllm remix count"

    def __init__(self, counts_dir: str, key: str, unit: str):
        super().__init__()
        self.counts_dir, self.key, self.unit = counts_dir, key, unit

    def run(self, data, rank: int = 0, world_size: int = 1):
        sizes: dict[str, int] = {}
        for doc in data:
            g = group_of(doc, self.key)
            sizes[g] = sizes.get(g, 0) + size_of(doc, self.unit)
            self.stat_update("documents")
        os.makedirs(self.counts_dir, exist_ok=True)
        tmp = os.path.join(self.counts_dir, f"{rank:05d}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(sizes, f)
        os.replace(tmp, tmp[:-4])
        return
        yield  # a generator that yields nothing (the pipeline ends here)


def load_sizes(counts_dir: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for name in sorted(os.listdir(counts_dir)):
        if name.endswith(".json"):
            with open(os.path.join(counts_dir, name)) as f:
                for g, n in json.load(f).items():
                    sizes[g] = sizes.get(g, 0) + n
    return sizes


def sampling_rates(sizes: dict[str, int], weights: dict[str, float], total: float | None) -> dict[str, float]:
    """Rate per group so that group g ends with weights[g] / sum(weights) of `total`."""
    missing = sorted(set(sizes) - set(weights))
    if missing:
        raise ValueError(f"remix.weights has no weight for group(s) {missing}; give each a weight (0 drops it)")
    absent = sorted(g for g, w in weights.items() if w > 0 and sizes.get(g, 0) == 0)
    if absent:
        raise ValueError(f"remix.weights gives weight to group(s) {absent} that have no data after filtering")
    wsum = sum(weights[g] for g in sizes)
    if wsum <= 0:
        raise ValueError("remix.weights are all zero")
    total = float(total or sum(sizes.values()))
    return {g: (weights[g] / wsum) * total / sizes[g] for g in sizes}


class Resampler(PipelineStep):
    type = "🔀 - SAMPLER"
    name = "dsllm remix sample"

    def __init__(self, counts_dir: str, key: str, unit: str, weights: dict, total: float | None, seed: int):
        super().__init__()
        self.counts_dir, self.key, self.unit = counts_dir, key, unit
        self.weights, self.total, self.seed = dict(weights), total, seed

    def run(self, data, rank: int = 0, world_size: int = 1):
        rates = sampling_rates(load_sizes(self.counts_dir), self.weights, self.total)
        for doc in data:
            g = group_of(doc, self.key)
            r = rates[g]
            copies = math.floor(r) + (unit_hash(self.seed, doc.id) < r - math.floor(r))
            self.stat_update("total")
            if copies == 0:
                self.stat_update("dropped", f"dropped_downsampled/{g}")
                continue
            self.stat_update("forwarded")
            if copies > 1:
                self.stat_update(f"upsampled_copies/{g}", value=copies - 1)
            base_id = doc.id
            for k in range(copies):
                if k:
                    doc = type(doc)(text=doc.text, id=f"{base_id}#copy{k}", metadata=dict(doc.metadata))
                yield doc


def phases(cfg, in_dir: str, out_dir: str, stage_root: str, tasks: int):
    c = cfg.remix
    counts = os.path.join(stage_root, "counts")
    weights = dict(c.weights or {})
    return [
        ("count", [reader(in_dir), MixCounter(counts, c.key, c.unit)], tasks),
        ("sample", [reader(in_dir), Resampler(counts, c.key, c.unit, weights, c.total, c.seed), Tally(),
                    writer(out_dir)], tasks),
    ]
