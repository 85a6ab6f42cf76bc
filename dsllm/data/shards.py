"""Token shards: ArrayRecord files of tokenized documents plus one JSON manifest.

Layout of a dataset directory:

    manifest.json
    train-00000-of-00004.array_record  ...
    validation-00000-of-00001.array_record

One ArrayRecord record is one document: a little-endian uint32 holding the document's
UTF-8 byte count, then its tokens as little-endian int32. The byte count travels with the
tokens so that bits-per-byte can be computed exactly on any subset of documents.

manifest.json:

    {"format": "dsllm-tokens-v1", "tokenizer": "<name or path>", "vocab_size": 32000,
     "bos_id": 1, "eos_id": 2,
     "splits": {"train": {"documents": N, "tokens": T, "bytes": U,
                           "shards": [{"file": "train-00000-of-00004.array_record",
                                       "documents": n, "tokens": t, "bytes": u}, ...]},
                "validation": {...}}}

Shards are written to a temporary name and renamed when complete, and the manifest is
written last (also atomically), so a crash never leaves a dataset that looks whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterator

import numpy as np

FORMAT = "dsllm-tokens-v1"
MANIFEST = "manifest.json"
_HEADER = np.dtype("<u4")
_TOKEN = np.dtype("<i4")


class DatasetError(ValueError):
    """A token dataset is missing, malformed or does not fit the run."""


def encode_document(tokens, n_bytes: int) -> bytes:
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise DatasetError(f"a document must be a 1-D token array, got shape {tokens.shape}")
    if n_bytes < 0 or n_bytes >= 2**32:
        raise DatasetError(f"document byte count {n_bytes} out of range")
    return np.asarray([n_bytes], _HEADER).tobytes() + tokens.astype(_TOKEN).tobytes()


def decode_document(record: bytes) -> tuple[np.ndarray, int]:
    if len(record) < 4 or (len(record) - 4) % 4:
        raise DatasetError(f"corrupt record of {len(record)} bytes (expected 4 + 4*n)")
    n_bytes = int(np.frombuffer(record[:4], _HEADER)[0])
    return np.frombuffer(record[4:], _TOKEN).astype(np.int32), n_bytes


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.array_record"


def write_manifest(out_dir: str, meta: dict, shards_by_split: dict[str, list[dict]]) -> dict:
    """Writes manifest.json (atomically, last) from the metadata and each split's shard entries
    ({file, documents, tokens, bytes}); the split totals are their sums."""
    splits = {split: dict(documents=sum(e["documents"] for e in entries), tokens=sum(e["tokens"] for e in entries),
                          bytes=sum(e["bytes"] for e in entries), shards=entries)
              for split, entries in shards_by_split.items()}
    manifest = dict(format=FORMAT, **meta, splits=splits)
    tmp = os.path.join(out_dir, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(out_dir, MANIFEST))
    return manifest


@dataclasses.dataclass
class _Stats:
    documents: int = 0
    tokens: int = 0
    bytes: int = 0

    def add(self, n_tokens: int, n_bytes: int):
        self.documents += 1
        self.tokens += n_tokens
        self.bytes += n_bytes


class ShardWriter:
    """Writes one dataset directory: documents go round-robin into a fixed number of shards
    per split; close() renames the finished shards and writes the manifest.

        with ShardWriter(out_dir, tokenizer="spm:demo.model", vocab_size=8192,
                         bos_id=1, eos_id=2, shards={"train": 4, "validation": 1}) as w:
            w.add("train", token_ids, n_bytes=len(text.encode()))
    """

    def __init__(self, out_dir: str, *, tokenizer: str, vocab_size: int, bos_id: int, eos_id: int,
                 shards: dict[str, int], extra: dict | None = None):
        from array_record.python.array_record_module import ArrayRecordWriter

        if not shards or any(n < 1 for n in shards.values()):
            raise DatasetError(f"shards must give each split at least one shard, got {shards}")
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        if os.path.exists(os.path.join(out_dir, MANIFEST)):
            raise DatasetError(f"{out_dir} already holds a dataset (manifest.json); choose a new directory "
                               "or delete the old one")
        self._meta = dict(tokenizer=tokenizer, vocab_size=int(vocab_size), bos_id=int(bos_id), eos_id=int(eos_id),
                          **(extra or {}))
        self._writers, self._stats, self._next = {}, {}, {}
        for split, count in shards.items():
            names = [shard_name(split, i, count) for i in range(count)]
            self._writers[split] = [
                (name, ArrayRecordWriter(os.path.join(out_dir, name + ".tmp"), "group_size:1"))
                for name in names]
            self._stats[split] = [_Stats() for _ in names]
            self._next[split] = 0
        self._vocab_size = int(vocab_size)
        self._closed = False

    def add(self, split: str, tokens, n_bytes: int):
        if split not in self._writers:
            raise DatasetError(f"unknown split {split!r}; this writer has {sorted(self._writers)}")
        tokens = np.asarray(tokens)
        if tokens.size == 0:
            raise DatasetError("empty document: skip it before writing (it holds no tokens)")
        if tokens.min() < 0 or tokens.max() >= self._vocab_size:
            raise DatasetError(f"token id out of range [0, {self._vocab_size}): min {tokens.min()}, max {tokens.max()}")
        i = self._next[split]
        self._next[split] = (i + 1) % len(self._writers[split])
        self._writers[split][i][1].write(encode_document(tokens, n_bytes))
        self._stats[split][i].add(int(tokens.size), int(n_bytes))

    def close(self) -> dict:
        if self._closed:
            return self.manifest
        shards = {}
        for split, writers in self._writers.items():
            shards[split] = []
            for (name, writer), st in zip(writers, self._stats[split]):
                writer.close()
                os.replace(os.path.join(self.out_dir, name + ".tmp"), os.path.join(self.out_dir, name))
                shards[split].append(dict(file=name, **dataclasses.asdict(st)))
        self.manifest = write_manifest(self.out_dir, self._meta, shards)
        self._closed = True
        return self.manifest

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            self.close()
        else:  # leave no manifest: the partial dataset must not look complete
            for writers in self._writers.values():
                for _, w in writers:
                    w.close()


def read_manifest(path: str) -> dict:
    """Reads and checks a dataset's manifest; `path` is the directory or the manifest file."""
    mpath = path if path.endswith(".json") else os.path.join(path, MANIFEST)
    if not os.path.exists(mpath):
        raise DatasetError(f"no token dataset at {path}: {mpath} does not exist. "
                           "Create one with `python -m dsllm.data.prepare` or `python -m dsllm.data.corpus`.")
    with open(mpath) as f:
        try:
            m = json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{mpath} is not valid JSON ({e})") from None
    if m.get("format") != FORMAT:
        raise DatasetError(f"{mpath} has format {m.get('format')!r}, expected {FORMAT!r}")
    m["root"] = os.path.dirname(os.path.abspath(mpath))
    return m


def shard_paths(manifest: dict, split: str) -> list[str]:
    if split not in manifest["splits"]:
        raise DatasetError(f"dataset {manifest['root']} has no split {split!r} (it has {sorted(manifest['splits'])})")
    paths = [os.path.join(manifest["root"], s["file"]) for s in manifest["splits"][split]["shards"] if s["documents"]]
    if not paths:
        raise DatasetError(f"split {split!r} of {manifest['root']} holds no documents")
    for p in paths:
        if not os.path.exists(p):
            raise DatasetError(f"shard {p} listed in the manifest is missing")
    return paths


def iter_documents(manifest: dict, split: str) -> Iterator[tuple[np.ndarray, int]]:
    """Every (tokens, n_bytes) of a split in shard order; for tools and tests, not training."""
    from array_record.python.array_record_module import ArrayRecordReader

    for path in shard_paths(manifest, split):
        reader = ArrayRecordReader(path)
        try:
            for i in range(reader.num_records()):
                yield decode_document(reader.read([i])[0])
        finally:  # also when the caller stops early
            reader.close()
