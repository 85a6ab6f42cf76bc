"""A multilingual word splitter for datatrove's MinHash and Gopher/C4 steps.

datatrove's default English word tokenizer needs spaCy; ours is a regex with no download and no
model: Latin/Cyrillic/... words are `\\w+` runs (apostrophes kept inside), each CJK character is
a word of its own (so MinHash shingles and word counts mean something for Chinese text), and
runs of punctuation are separate tokens (Gopher's symbol-word ratio looks at those).
"""

from __future__ import annotations

import regex
from datatrove.utils.word_tokenizers import WordTokenizer

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}"
_WORD = regex.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:['’][^\W{_CJK}]+)*|[^\w\s]+", regex.UNICODE)
_SENT = regex.compile(r"[^.!?。！？\n]+(?:[.!?。！？]+|\n|$)")


class MultilingualWordTokenizer(WordTokenizer):
    def __init__(self):
        super().__init__("multilingual")

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [s.strip() for s in _SENT.findall(text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _SENT.finditer(text) if m.group().strip()]

    # one instance per process is enough; equal instances share datatrove's lru_cache entry
    def __eq__(self, other):
        return isinstance(other, MultilingualWordTokenizer)

    def __hash__(self):
        return hash(MultilingualWordTokenizer)


WORDS = MultilingualWordTokenizer()
