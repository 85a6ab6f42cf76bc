"""The tokenizer's training text, read by the one document reader (dsllm/data/documents.py):
plain text (in newline-ended pieces of about 1M characters), JSONL (a text field) or Parquet."""

from __future__ import annotations

from typing import Iterator

from dsllm.data.documents import InputError, expand_inputs, read_documents

TokenizerInputError = InputError  # a training input is missing, empty or unreadable

__all__ = ["TokenizerInputError", "expand_inputs", "iter_files"]


def iter_files(paths: list[str], *, text_field: str = "text", chunk_chars: int = 1 << 20) -> Iterator[str]:
    if not paths:
        raise TokenizerInputError("no tokenizer input files given")
    return read_documents(paths, text_field=text_field, text_chunk_chars=chunk_chars)
