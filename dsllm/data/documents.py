"""Reading raw documents: the one reader behind `dsllm.tokenizer train` and `dsllm.data.prepare`.

Formats, from the file name (or forced with input_format):
  jsonl    .jsonl / .json / .ndjson, optionally .gz: one JSON object per line, its text_field
  parquet  .parquet: the text_field column
  text     anything else, UTF-8, optionally .gz: the whole file is one document; with
           split_on_blank_lines, each blank-line-separated paragraph is one; with text_chunk_chars,
           pieces of about that many characters ending at a newline (the tokenizer's use: a plain
           text file has no document boundaries to keep, and a whole file may not fit in memory)

Nothing is dropped silently: a malformed record (invalid JSON, no text_field, a value that is
not a string, a Parquet null) stops the read with its file and line or row, or, with
skip_bad_lines, is counted in counts["bad_lines"]. Blank JSONL lines are not records.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import os
import re
from typing import Iterator, Sequence

log = logging.getLogger("dsllm.data")

FORMATS = ("auto", "jsonl", "parquet", "text")
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


class InputError(ValueError):
    """Input documents are missing or cannot be read as asked."""


def expand_inputs(spec: str | Sequence[str]) -> list[str]:
    """`a.txt,b/*.jsonl` (or a list of such strings) -> files, in the order given, globs sorted,
    directories replaced by their files (sorted, hidden ones left out), each file once. A pattern
    that matches no file is an error."""
    items = spec.split(",") if isinstance(spec, str) else [s for item in spec for s in item.split(",")]
    files: dict[str, None] = {}   # ordered, each file once (a set lookup: inputs can be 100k files)
    for item in filter(None, (i.strip() for i in items)):
        item = os.path.expanduser(item)
        matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item] if os.path.exists(item) else []
        found = []
        for m in matches:
            if os.path.isdir(m):
                found.extend(sorted(os.path.join(m, f) for f in os.listdir(m)
                                    if not f.startswith(".") and os.path.isfile(os.path.join(m, f))))
            elif os.path.isfile(m):
                found.append(m)
        if not found:
            raise InputError(f"input {item!r} matches no file" if glob.has_magic(item) or os.path.isdir(item)
                             else f"input {item} does not exist")
        files.update(dict.fromkeys(found))
    if not files:
        raise InputError(f"no input files in {spec!r}")
    return list(files)


def file_format(path: str, input_format: str = "auto") -> str:
    if input_format not in FORMATS:
        raise InputError(f"unknown input format {input_format!r}; use one of {', '.join(FORMATS)}")
    if input_format != "auto":
        return input_format
    base = path[:-3] if path.endswith(".gz") else path
    if base.endswith(_JSONL_SUFFIXES):
        return "jsonl"
    return "parquet" if base.endswith(".parquet") else "text"


def _open_text(path: str):
    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    # newline="": the text is kept exactly as written (\r\n stays \r\n)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def read_documents(files: Sequence[str], *, input_format: str = "auto", text_field: str = "text",
                   split_on_blank_lines: bool = False, text_chunk_chars: int | None = None,
                   skip_bad_lines: bool = False, counts: dict | None = None) -> Iterator[str]:
    """Every document's text, in file order. `counts` (if given) gets 'bad_lines'."""
    counts = counts if counts is not None else {}
    counts.setdefault("bad_lines", 0)

    def bad(message: str):
        if not skip_bad_lines:
            raise InputError(message + " (fix the input, or pass --skip_bad_lines to count and skip such records)")
        counts["bad_lines"] += 1
        if counts["bad_lines"] <= 10:
            log.warning("skipped: %s", message)

    for path in files:
        fmt = file_format(path, input_format)
        if not os.path.isfile(path):
            raise InputError(f"input {path} does not exist")
        try:
            if fmt == "jsonl":
                yield from _jsonl(path, text_field, bad)
            elif fmt == "parquet":
                yield from _parquet(path, text_field, bad)
            else:
                yield from _text(path, split_on_blank_lines, text_chunk_chars)
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not UTF-8 text ({e}); convert it to UTF-8") from None


def _jsonl(path, text_field, bad) -> Iterator[str]:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue  # a blank line is not a record
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                bad(f"{path}:{lineno}: not valid JSON ({e.msg})")
                continue
            if not isinstance(record, dict) or text_field not in record:
                keys = sorted(record) if isinstance(record, dict) else type(record).__name__
                bad(f"{path}:{lineno}: no {text_field!r} field (found {keys}); set --text_field")
                continue
            if not isinstance(record[text_field], str):
                bad(f"{path}:{lineno}: field {text_field!r} is a {type(record[text_field]).__name__}, not a string")
                continue
            yield record[text_field]


def _parquet(path, text_field, bad) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path} is not a Parquet file ({e})") from None
    if text_field not in pf.schema_arrow.names:
        raise InputError(f"{path}: no {text_field!r} column (found {pf.schema_arrow.names}); set --text_field")
    row = 0
    for batch in pf.iter_batches(columns=[text_field]):
        for value in batch.column(0).to_pylist():
            row += 1
            if isinstance(value, str):
                yield value
            else:
                bad(f"{path}: row {row}: column {text_field!r} is {'null' if value is None else type(value).__name__}, "
                    "not a string")


def _text(path, split_on_blank_lines, chunk_chars) -> Iterator[str]:
    with _open_text(path) as f:
        if chunk_chars:
            buf, size = [], 0
            for line in f:
                buf.append(line)
                size += len(line)
                if size >= chunk_chars:
                    yield "".join(buf)
                    buf, size = [], 0
            if buf:
                yield "".join(buf)
            return
        text = f.read()
    if split_on_blank_lines:
        yield from (p.strip("\r\n") for p in re.split(r"\r?\n[ \t\r\f\v]*\n", text))
    else:
        yield text
