"""Stage 4: quality filters, Gopher- and C4-style heuristics (datatrove's implementations).

Each filter is configured by a dict in `config.filters.<name>` whose keys are the datatrove
filter's own arguments (`enabled=False` turns it off). Every drop is counted under its reason
(`dropped_gopher_short_doc`, `dropped_gopher_enough_stop_words`, `dropped_dup_line_frac`,
`dropped_too_few_sentences`, ...) in the stage report, and the dropped documents are written to
`04_filter/removed/<filter>/` with the reason in `metadata.filter_reason`.

Filters, in order:
- gopher_quality: word count, mean word length, symbol (#, ...) to word ratios, bullet and
  ellipsis line ratios, alphabetic word ratio, stop-word presence;
- gopher_repetition: duplicated lines / paragraphs (by count and characters), top n-gram and
  duplicated n-gram character fractions;
- c4: C4's line rules (terminal punctuation, words per line, javascript, policy lines; these
  remove lines) and document rules (lorem ipsum, curly brackets, too few sentences);
- fineweb (off by default): FineWeb's line punctuation, short lines, duplicated characters and
  newline ratio.
Words come from `words.MultilingualWordTokenizer` (no spaCy, no download).
"""

from __future__ import annotations

import inspect
import os

from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)

from dsllm.data.corpus.common import Tally, reader, writer
from dsllm.data.corpus.words import WORDS

FILTERS = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
}

# Gopher's English stop words plus the commonest Chinese function words (DeepSeek's corpus is
# mostly Chinese and English); a document needs `min_stop_words` distinct ones.
STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with", "的", "了", "是", "在", "和", "有", "我", "不"]


def build_filters(filters_cfg, removed_root: str | None = None) -> list:
    steps = []
    for name, cls in FILTERS.items():
        if name not in filters_cfg:
            continue
        kw = dict(filters_cfg[name])
        if not kw.pop("enabled", True):
            continue
        if name == "gopher_quality" and kw.get("stop_words") is None:
            kw["stop_words"] = STOP_WORDS
        for k in ("top_n_grams", "dup_n_grams"):
            if k in kw:
                kw[k] = tuple(tuple(x) for x in kw[k])
        unknown = set(kw) - set(inspect.signature(cls.__init__).parameters)
        if unknown:
            raise ValueError(f"filters.{name}: unknown option(s) {sorted(unknown)}")
        excl = writer(os.path.join(removed_root, name)) if removed_root else None
        steps.append(cls(exclusion_writer=excl, language=WORDS, **kw))
    return steps


def phases(cfg, in_dir: str, out_dir: str, stage_root: str, tasks: int):
    return [("filter", [reader(in_dir), *build_filters(cfg.filters, os.path.join(stage_root, "removed")),
                        Tally(), writer(out_dir)], tasks)]
