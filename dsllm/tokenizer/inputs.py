"""Reading training text for the tokenizer: plain text, JSONL (a "text" field) or Parquet."""

from __future__ import annotations

import gzip
import io
import json
import os
from typing import Iterator


class TokenizerInputError(ValueError):
    """A training input file is missing, empty or unreadable."""


def _open_text(path: str):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict", newline="")
    return open(path, encoding="utf-8", errors="strict", newline="")


def iter_documents(path: str, *, text_field: str = "text", chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Yields the documents of one file.

    `.jsonl`/`.json` (optionally `.gz`): one JSON object per line, its `text_field`.
    `.parquet`: the `text_field` column. Anything else is plain UTF-8 text, yielded in pieces of
    about `chunk_chars` characters that end at a newline (the whole text is kept).
    """
    if not os.path.exists(path):
        raise TokenizerInputError(f"tokenizer input {path} does not exist")
    base = path[:-3] if path.endswith(".gz") else path
    if base.endswith((".jsonl", ".json", ".ndjson")):
        with _open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TokenizerInputError(f"{path}:{n}: invalid JSON ({e})") from None
                text = rec.get(text_field) if isinstance(rec, dict) else None
                if not isinstance(text, str):
                    raise TokenizerInputError(f"{path}:{n}: no string field {text_field!r}")
                yield text
        return
    if base.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(columns=[text_field]):
            yield from (t for t in batch.column(0).to_pylist() if t)
        return
    try:
        with _open_text(path) as f:
            buf: list[str] = []
            size = 0
            for line in f:
                buf.append(line)
                size += len(line)
                if size >= chunk_chars:
                    yield "".join(buf)
                    buf, size = [], 0
            if buf:
                yield "".join(buf)
    except UnicodeDecodeError as e:
        raise TokenizerInputError(f"{path} is not valid UTF-8 ({e})") from None


def iter_files(paths: list[str], **kw) -> Iterator[str]:
    if not paths:
        raise TokenizerInputError("no tokenizer input files given")
    for p in paths:
        yield from iter_documents(p, **kw)


def expand_inputs(spec) -> list[str]:
    """`a.txt,b/*.jsonl` or a list of such strings -> existing file paths (globs expanded)."""
    import glob

    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not matches:
            raise TokenizerInputError(f"no file matches {item!r}")
        for m in matches:
            if os.path.isdir(m):
                out.extend(sorted(os.path.join(m, f) for f in os.listdir(m) if not f.startswith(".")))
            else:
                out.append(m)
    for p in out:
        if not os.path.exists(p):
            raise TokenizerInputError(f"tokenizer input {p} does not exist")
    if not out:
        raise TokenizerInputError(f"no tokenizer input files in {spec!r}")
    return out
