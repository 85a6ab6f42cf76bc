"""Reading the raw corpus: documents grouped by source and dump, as JSONL(.gz) or Parquet.

Malformed input never disappears silently. `on_error="raise"` stops with a message naming the
file and line; `on_error="skip"` counts each skipped record under its reason in the stage's
stats (invalid_json, missing_text, non_utf8, empty_file) and goes on.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep


class CorpusInputError(ValueError):
    """Raw corpus input that is missing or malformed (with on_error='raise')."""


def expand_inputs(inputs: list[dict]) -> list[tuple[str, str, str, str]]:
    """[{source, dump, paths, format?}] -> sorted [(path, source, dump, format)]."""
    out = []
    if not inputs:
        raise CorpusInputError("the config lists no inputs (config.inputs)")
    for spec in inputs:
        for key in ("source", "paths"):
            if not spec.get(key):
                raise CorpusInputError(f"input {dict(spec)} has no {key!r}")
        paths = spec["paths"] if isinstance(spec["paths"], (list, tuple)) else [spec["paths"]]
        files = []
        for p in paths:
            hits = sorted(glob.glob(p, recursive=True)) if any(c in p for c in "*?[") else [p]
            files += [h for h in hits if os.path.isfile(h)]
            if not hits or (not any(c in p for c in "*?[") and not os.path.isfile(p)):
                raise CorpusInputError(f"input {p!r} (source {spec['source']}) matches no file")
        for f in files:
            fmt = spec.get("format") or ("parquet" if f.endswith(".parquet") else "jsonl")
            out.append((f, str(spec["source"]), str(spec.get("dump") or "all"), fmt))
    return sorted(set(out))


class CorpusReader(PipelineStep):
    """Reads every input file assigned to this rank (files are split across tasks)."""

    type = "📖 - READER"
    name = "dsllm corpus reader"

    def __init__(self, inputs: list[dict], *, text_field: str = "text", id_field: str = "id",
                 on_error: str = "raise", domain_field: str | None = "domain"):
        super().__init__()
        if on_error not in ("raise", "skip"):
            raise CorpusInputError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.files = expand_inputs(inputs)
        self.text_field, self.id_field, self.on_error = text_field, id_field, on_error
        self.domain_field = domain_field

    def _bad(self, reason: str, where: str, detail: str = ""):
        if self.on_error == "raise":
            raise CorpusInputError(f"{where}: {reason.replace('_', ' ')}{': ' + detail if detail else ''} "
                                   "(set on_error='skip' to count and skip such records)")
        self.stat_update(f"skipped_{reason}")

    def _records(self, path: str, fmt: str) -> Iterator[tuple[int, dict | None]]:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(path)
            except Exception as e:  # pyarrow raises ArrowInvalid for a non-Parquet file
                self._bad("unreadable_file", path, str(e))
                return
            n = 0
            for batch in pf.iter_batches():
                for rec in batch.to_pylist():
                    n += 1
                    yield n, rec
            if n == 0:
                self._bad("empty_file", path)
            return
        opener = gzip.open if path.endswith(".gz") else open
        n_lines = 0
        with opener(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                n_lines += 1
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    self._bad("non_utf8", f"{path}:{n}", str(e))
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    self._bad("invalid_json", f"{path}:{n}", str(e))
                    continue
                yield n, rec
        if n_lines == 0:
            self._bad("empty_file", path)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        if data:
            yield from data
        for path, source, dump, fmt in self.files[rank::world_size]:
            with self.track_time():
                for n, rec in self._records(path, fmt):
                    text = rec.get(self.text_field) if isinstance(rec, dict) else None
                    if not isinstance(text, str):
                        self._bad("missing_text", f"{path}:{n}", f"no string field {self.text_field!r}")
                        continue
                    meta = {k: v for k, v in rec.items() if k not in (self.text_field, self.id_field)
                            and isinstance(v, (str, int, float, bool))}
                    meta.update(source=source, dump=dump)
                    if self.domain_field and self.domain_field in rec:
                        meta["domain"] = str(rec[self.domain_field])
                    doc_id = rec.get(self.id_field)
                    doc = Document(text=text, id=str(doc_id) if doc_id is not None else f"{source}/{dump}/"
                                   f"{os.path.basename(path)}:{n}", metadata=meta)
                    self.stat_update("documents")
                    self.stat_update(f"source/{source}")
                    self.update_doc_stats(doc)
                    yield doc
