"""Stage 5: tokenization into the token shards the training pipeline reads
(`dsllm/data/shards.py`: ArrayRecord shards + manifest.json, documents without BOS/EOS).

Each task tokenizes its documents in batches (`encode_batch`) into its own part directory with
`ShardWriter`; a final one-task phase moves every part's shards into the dataset directory
under global shard names and writes one manifest. A document goes to the validation split when
a hash of its id falls below `validation_fraction` (so the split is stable across re-runs).
"""

from __future__ import annotations

import json
import os
import shutil

from datatrove.pipeline.base import PipelineStep

from dsllm.data import shards as shard_format
from dsllm.data.corpus.common import reader
from dsllm.data.corpus.remix import unit_hash


def validation_hash(seed: int, doc_id: str) -> float:
    """The validation draw of a document: salted apart from remix's sampling draw (which uses the
    same seed and id: unsalted, a down-sampled group would keep mostly would-be validation
    documents), and of the original id, so every up-sampled copy lands in the same split."""
    return unit_hash(seed, "validation:" + doc_id.split("#copy")[0])


class TokenizeToShards(PipelineStep):
    type = "🔢 - TOKENIZER"
    name = "dsllm tokenize to shards"

    def __init__(self, tokenizer_path: str, parts_dir: str, *, shards_per_task: int = 1,
                 validation_fraction: float = 0.01, batch_size: int = 256, seed: int = 0):
        super().__init__()
        self.tokenizer_path, self.parts_dir = tokenizer_path, parts_dir
        self.shards_per_task, self.validation_fraction = shards_per_task, validation_fraction
        self.batch_size, self.seed = batch_size, seed

    def run(self, data, rank: int = 0, world_size: int = 1):
        from dsllm.tokenizer import load_tokenizer

        tok = load_tokenizer(self.tokenizer_path, num_threads=1)  # one core per datatrove task
        out = os.path.join(self.parts_dir, f"{rank:05d}")
        if os.path.exists(out):
            shutil.rmtree(out)  # a re-run of this task starts its part afresh
        with shard_format.ShardWriter(out, tokenizer=tok.name, vocab_size=tok.vocab_size, bos_id=tok.bos_id,
                                      eos_id=tok.eos_id,
                                      shards={"train": self.shards_per_task, "validation": 1}) as w:
            batch = []
            for doc in data:
                batch.append(doc)
                if len(batch) >= self.batch_size:
                    self._write(tok, w, batch)
                    batch = []
            if batch:
                self._write(tok, w, batch)
        return
        yield

    def _write(self, tok, w, batch):
        with self.track_time("batch"):
            ids = tok.encode_batch([d.text for d in batch])
        for doc, toks in zip(batch, ids):
            self.stat_update("documents")
            if not toks:
                self.stat_update("skipped_empty_document")
                continue
            split = "validation" if validation_hash(self.seed, doc.id) < self.validation_fraction else "train"
            n_bytes = len(doc.text.encode("utf-8"))
            w.add(split, toks, n_bytes)
            src = doc.metadata.get("source", "?")
            self.stat_update("tokens", f"tokens/source/{src}", f"tokens/split/{split}", value=len(toks))
            self.stat_update("bytes", f"bytes/source/{src}", value=n_bytes)
            self.stat_update(f"docs/source/{src}", f"docs/split/{split}")


MERGE_PLAN = ".merge-plan.json"


def merge_parts(parts_dir: str, out_dir: str, extra: dict | None = None) -> dict:
    """Moves every part's shards into `out_dir` under global names and writes one manifest in
    the `dsllm-tokens-v1` format (same fields `ShardWriter.close` writes).

    Resumable: the moves and the manifest are decided first and written to out_dir/MERGE_PLAN,
    then carried out; a merge that crashed (in a move, before the manifest or while removing
    the parts) is finished by calling this again. Each move is one os.replace, so a shard is
    either still in its part or already in out_dir, never half-copied.
    """
    plan_path = os.path.join(out_dir, MERGE_PLAN)
    if os.path.exists(plan_path):
        with open(plan_path) as f:
            plan = json.load(f)
        _check_plan_matches_parts(plan, parts_dir, plan_path)
    else:
        plan = _merge_plan(parts_dir, out_dir, extra)
        os.makedirs(out_dir, exist_ok=True)
        if os.path.exists(os.path.join(out_dir, shard_format.MANIFEST)):
            os.remove(os.path.join(out_dir, shard_format.MANIFEST))   # not valid until the moves end
        with open(plan_path + ".tmp", "w") as f:
            json.dump(plan, f)
        os.replace(plan_path + ".tmp", plan_path)
    for src, dst in plan["moves"]:
        if os.path.exists(src):
            os.replace(src, dst)
        elif not os.path.exists(dst):
            raise shard_format.DatasetError(
                f"merging token shards: {src} is missing and was not moved to {dst}. The parts in "
                f"{parts_dir} are incomplete: delete {out_dir} and {parts_dir} and re-run the tokenize stage.")
    manifest = shard_format.write_manifest(out_dir, plan["meta"], plan["shards"])
    if os.path.exists(parts_dir):   # a resumed merge may find it already (partly) removed
        shutil.rmtree(parts_dir)
    os.remove(plan_path)
    return manifest


def _part_shards(manifest: dict) -> dict:
    return {split: [[e["file"], e["documents"], e["tokens"]] for e in v["shards"]]
            for split, v in manifest["splits"].items()}


def _check_plan_matches_parts(plan: dict, parts_dir: str, plan_path: str):
    """A resumed merge must be the one its plan was made for: every part still on disk must
    hold the shards the plan recorded for it (a re-run tokenize stage writes other ones)."""
    for d in sorted(os.listdir(parts_dir)) if os.path.isdir(parts_dir) else []:
        mpath = os.path.join(parts_dir, d, shard_format.MANIFEST)
        if os.path.exists(mpath):
            if _part_shards(shard_format.read_manifest(mpath)) != plan["parts"].get(d):
                raise shard_format.DatasetError(
                    f"{plan_path} is a merge plan for other parts than those now in {parts_dir} "
                    f"(part {d} differs): a tokenize stage ran again after a merge crashed. Delete "
                    f"{plan_path} and re-run the merge.")


def _merge_plan(parts_dir: str, out_dir: str, extra: dict | None) -> dict:
    """{moves: [(part shard, out_dir shard)], shards: manifest entries per split, meta: manifest
    fields, parts: each part's shards as its manifest lists them}."""
    if not os.path.isdir(parts_dir):
        raise shard_format.DatasetError(f"no tokenized parts in {parts_dir}")
    parts = sorted(d for d in os.listdir(parts_dir) if os.path.isdir(os.path.join(parts_dir, d)))
    manifests = [shard_format.read_manifest(os.path.join(parts_dir, d)) for d in parts]
    if not manifests:
        raise shard_format.DatasetError(f"no tokenized parts in {parts_dir}")
    first = manifests[0]
    for m in manifests[1:]:
        for k in ("tokenizer", "vocab_size", "bos_id", "eos_id"):
            if m[k] != first[k]:
                raise shard_format.DatasetError(f"parts disagree on {k}: {m[k]!r} vs {first[k]!r}")
    moves, shards = [], {}
    for split in sorted({s for m in manifests for s in m["splits"]}):
        entries = [(m["root"], e) for m in manifests for e in m["splits"].get(split, {}).get("shards", [])
                   if e["documents"]]
        if not entries:
            entries = [(m["root"], e) for m in manifests[:1] for e in m["splits"][split]["shards"][:1]]
        shards[split] = []
        for i, (root, e) in enumerate(entries):
            name = shard_format.shard_name(split, i, len(entries))
            moves.append((os.path.join(root, e["file"]), os.path.join(out_dir, name)))
            shards[split].append(dict(e, file=name))
    meta = {k: first[k] for k in ("tokenizer", "vocab_size", "bos_id", "eos_id")}
    return {"moves": moves, "shards": shards, "meta": {**meta, **(extra or {})},
            "parts": {d: _part_shards(m) for d, m in zip(parts, manifests)}}


class MergeShards(PipelineStep):
    type = "🔢 - TOKENIZER"
    name = "dsllm merge shards"

    def __init__(self, parts_dir: str, out_dir: str):
        super().__init__()
        self.parts_dir, self.out_dir = parts_dir, out_dir

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        m = merge_parts(self.parts_dir, self.out_dir)
        for split, s in m["splits"].items():
            self.stat_update(f"documents/{split}", value=s["documents"])
            self.stat_update(f"tokens/{split}", value=s["tokens"])
        return
        yield


def phases(cfg, in_dir: str, out_dir: str, stage_root: str, tasks: int):
    c = cfg.tokenize
    if not c.tokenizer:
        raise ValueError("tokenize.tokenizer is not set: give a tokenizer directory or file "
                         "(train one with `python -m dsllm.tokenizer train`)")
    parts = os.path.join(stage_root, "parts")
    return [
        ("tokenize", [reader(in_dir), TokenizeToShards(c.tokenizer, parts, shards_per_task=c.shards_per_task,
                                                       validation_fraction=c.validation_fraction,
                                                       batch_size=c.batch_size, seed=c.seed)], tasks),
        ("merge", [MergeShards(parts, out_dir)], 1),
    ]
