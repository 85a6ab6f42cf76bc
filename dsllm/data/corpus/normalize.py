"""Stage 1a: text normalization (and the key that exact deduplication hashes).

`normalize_text` changes the stored text conservatively: Unicode NFC, `\\r\\n` and `\\r` to `\\n`,
control characters other than tab and newline removed, trailing spaces stripped from each line,
more than `max_blank_lines` blank lines collapsed, leading/trailing blank space removed.
`dedup_key` is the stronger form exact deduplication compares: case-folded, every run of
whitespace one space, so documents that differ only in case or spacing count as duplicates.
"""

from __future__ import annotations

import re
import unicodedata

from datatrove.pipeline.base import PipelineStep

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRAILING = re.compile(r"[ \t]+\n")
_WS = re.compile(r"\s+")


def normalize_text(text: str, *, form: str | None = "NFC", max_blank_lines: int = 2) -> str:
    if form:
        text = unicodedata.normalize(form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING.sub("\n", text + "\n")
    if max_blank_lines >= 0:
        text = re.sub("\n{%d,}" % (max_blank_lines + 2), "\n" * (max_blank_lines + 1), text)
    return text.strip()


def dedup_key(text: str) -> str:
    return _WS.sub(" ", text.casefold()).strip()


def doc_dedup_key(doc) -> str:
    """ExactDedupConfig.content_getter (module level so that it pickles)."""
    return dedup_key(doc.text).encode("utf-8")


class Normalizer(PipelineStep):
    type = "✂️ - FORMAT"
    name = "dsllm normalize"

    def __init__(self, form: str | None = "NFC", max_blank_lines: int = 2, min_chars: int = 1):
        super().__init__()
        self.form, self.max_blank_lines, self.min_chars = form, max_blank_lines, min_chars

    def run(self, data, rank: int = 0, world_size: int = 1):
        for doc in data:
            self.stat_update("total")
            with self.track_time():
                new = normalize_text(doc.text, form=self.form, max_blank_lines=self.max_blank_lines)
            if new != doc.text:
                self.stat_update("modified")
            if len(new) < self.min_chars:
                self.stat_update("dropped", "dropped_empty_after_normalization")
                continue
            doc.text = new
            self.stat_update("forwarded")
            yield doc
