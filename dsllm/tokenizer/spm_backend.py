"""SentencePiece backend: a DeepSeek-style byte-fallback BPE.

How each DeepSeek pre-tokenizer rule is obtained without a regex pre-tokenizer (docs/tokenizer.md
has the full comparison; tests/tokenizer/test_rules.py checks each rule on every vocabulary piece):
- newlines: `\\n` and `\\r` are user-defined symbols, always matched alone, never merged;
- digits: `split_digits=True`, every digit piece has length one;
- CJK / punctuation / letters: `split_by_unicode_script=True`; punctuation is script Common,
  CJK is Han (Hiragana and Katakana count as Han), letters Latin/Cyrillic/Greek..., and a piece
  may not span two scripts;
- bytes: `byte_fallback=True` with `normalization_rule_name=identity`, so any UTF-8 text
  round-trips exactly (plus one escape: a literal U+2581 in the input, which SentencePiece would
  read as a space, is encoded as its three byte pieces).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

import numpy as np

from dsllm.tokenizer.base import Tokenizer, TokenizerError, read_meta
from dsllm.tokenizer.specials import BOS, EOS, PAD, SPECIAL_TOKENS

MODEL_FILE = "tokenizer.model"
WS = "\u2581"  # SentencePiece's whitespace meta symbol
N_SPECIAL = len(SPECIAL_TOKENS)


class SentencePieceTokenizer(Tokenizer):
    def __init__(self, model_path: str, *, vocab_size: int | None = None, name: str | None = None,
                 num_threads: int | None = None):
        import sentencepiece as spm

        if not os.path.exists(model_path):
            raise TokenizerError(f"no SentencePiece model at {model_path}")
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(model_path)
        except (OSError, RuntimeError) as e:
            raise TokenizerError(f"{model_path} is not a SentencePiece model ({e})") from None
        self._n = self._sp.GetPieceSize()
        meta = read_meta(os.path.dirname(model_path))
        self.vocab_size = int(vocab_size or meta.get("vocab_size") or self._n)
        if self.vocab_size < self._n:
            raise TokenizerError(f"vocab_size {self.vocab_size} is below the model's {self._n} pieces")
        self.name = name or meta.get("name") or f"spm:{os.path.abspath(model_path)}"
        self._threads = num_threads or os.cpu_count() or 1
        # Specials: the pieces dsllm trains (ids 0..14), or whatever a foreign model declares.
        self.special_tokens = {}
        for i in range(self._n):
            if self._sp.IsControl(i) or self._sp.IsUnknown(i):
                self.special_tokens[self._sp.IdToPiece(i)] = i
        def _find(piece, fallback):
            i = self._sp.PieceToId(piece)
            return i if self._sp.IdToPiece(i) == piece else fallback
        self.bos_id = _find(BOS, self._sp.bos_id())
        self.eos_id = _find(EOS, self._sp.eos_id())
        self.pad_id = _find(PAD, self._sp.pad_id() if self._sp.pad_id() >= 0 else self._sp.unk_id())
        # Fast path for decode: are all special ids below some bound (true for dsllm models)?
        self._special_ids = np.array(sorted(self.special_tokens.values()), np.int64)
        self._special_below = (int(self._special_ids.max()) + 1
                               if self._special_ids.size and np.array_equal(
                                   self._special_ids, np.arange(self._special_ids.size)) else None)
        self._ws_bytes = [self._sp.PieceToId(f"<0x{b:02X}>") for b in WS.encode()]
        self._has_bytes = all(self._sp.IsByte(i) for i in self._ws_bytes)
        self.pretokenizer = meta.get("pretokenizer", "native")
        if self.pretokenizer not in ("native", "deepseek"):
            raise TokenizerError(f"unknown pretokenizer {self.pretokenizer!r} in {model_path}'s metadata")
        self._splitter = None
        if self.pretokenizer == "deepseek":
            from dsllm.tokenizer.specials import deepseek_splitter

            self._splitter = deepseek_splitter()

    # --- encode -------------------------------------------------------------------------
    def _escape_ws(self, text: str) -> list[int]:
        """Text holding a literal U+2581: encode the pieces between them, the symbol as bytes."""
        parts = text.split(WS)
        enc = self._sp.Encode(parts, num_threads=1)
        out: list[int] = []
        for k, ids in enumerate(enc):
            if k:
                out.extend(self._ws_bytes)
            out.extend(ids)
        return out

    def _encode_pretokenized(self, texts: list[str], threads: int) -> list[list[int]]:
        """DeepSeek's regex splits first, then SentencePiece on each piece (never across one)."""
        pieces, counts = [], []
        for t in texts:
            ps = [p for p, _ in self._splitter.pre_tokenize_str(t)]
            pieces.extend(ps)
            counts.append(len(ps))
        enc = self._sp.Encode(pieces, num_threads=threads) if pieces else []
        if self._has_bytes:
            for i, p in enumerate(pieces):
                if WS in p:
                    enc[i] = self._escape_ws(p)
        out, k = [], 0
        for n in counts:
            ids: list[int] = []
            for e in enc[k:k + n]:
                ids.extend(e)
            out.append(ids)
            k += n
        return out

    def encode(self, text: str) -> list[int]:
        if self._splitter is not None:
            return self._encode_pretokenized([text], 1)[0]
        if WS in text and self._has_bytes:
            return self._escape_ws(text)
        return self._sp.Encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        texts = list(texts)
        if self._splitter is not None:
            return self._encode_pretokenized(texts, self._threads)
        out = self._sp.Encode(texts, num_threads=self._threads)
        if self._has_bytes:
            for i, t in enumerate(texts):
                if WS in t:
                    out[i] = self._escape_ws(t)
        return out

    # --- decode -------------------------------------------------------------------------
    def decode(self, ids) -> str:
        arr = self._checked_ids(ids)
        if arr.size == 0:
            return ""
        lo, hi = int(arr.min()), int(arr.max())
        if hi < self._n and (self._special_below is not None and lo >= self._special_below):
            return self._sp.Decode(arr.tolist())
        # Slow path: render special ids as their strings, skip padding ids (>= model pieces).
        out, run = [], []
        for i in arr.tolist():
            if i >= self._n:
                continue
            if self._sp.IsControl(i) or self._sp.IsUnknown(i):
                if run:
                    out.append(self._sp.Decode(run))
                    run = []
                out.append(self._sp.IdToPiece(i))
            else:
                run.append(i)
        if run:
            out.append(self._sp.Decode(run))
        return "".join(out)

    def id_to_piece(self, i: int) -> str:
        return self._sp.IdToPiece(int(i)) if 0 <= i < self._n else ""

    @property
    def num_pieces(self) -> int:
        return self._n

    @property
    def processor(self):
        return self._sp


# --- training -----------------------------------------------------------------------------

def _utf8_cut(b: bytes, limit: int) -> int:
    """Largest cut <= limit that does not split a UTF-8 character."""
    cut = min(limit, len(b))
    while cut > 0 and cut < len(b) and (b[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


def split_long_line(line: str, max_bytes: int, stats: dict) -> Iterator[str]:
    """Splits a line longer than `max_bytes` UTF-8 bytes into pieces SentencePiece accepts.

    A cut goes before a space that follows a non-space (SentencePiece pieces start at a space,
    so that cut changes no piece statistics); a line with no such space is cut at a character
    boundary (counted as `forced_splits`). Nothing is dropped.
    """
    b = line.encode("utf-8")
    if len(b) <= max_bytes:
        yield line
        return
    stats["long_lines"] += 1
    while len(b) > max_bytes:
        cut = _utf8_cut(b, max_bytes)
        window = b[:cut]
        sp = window.rfind(b" ")
        while sp > 0 and window[sp - 1] == 0x20:  # back to the start of a run of spaces
            sp -= 1
        if sp > 0:
            cut = sp
        else:
            stats["forced_splits"] += 1
        yield b[:cut].decode("utf-8")
        b = b[cut:]
        stats["pieces_from_long_lines"] += 1
    if b:
        yield b.decode("utf-8")
        stats["pieces_from_long_lines"] += 1


def training_sentences(docs: Iterator[str], max_bytes: int, stats: dict) -> Iterator[str]:
    """Documents -> SentencePiece training sentences: split at newlines (always isolated symbols,
    so no piece statistic changes); literal U+2581 removed (encode() writes it as byte pieces,
    never as a space); long lines split, never dropped."""
    import re

    nl = re.compile(r"[\r\n]+")
    for doc in docs:
        stats["documents"] += 1
        stats["bytes"] += len(doc.encode("utf-8"))
        if WS in doc:
            doc = doc.replace(WS, "")
        for line in nl.split(doc):
            if line:
                stats["lines"] += 1
                yield from split_long_line(line, max_bytes, stats)


def pretoken_counts(docs: Iterator[str], max_bytes: int, stats: dict) -> Iterator[str]:
    """Documents -> "piece<TAB>count" lines of DeepSeek pre-tokens (SentencePiece's TSV input):
    SentencePiece then learns merges inside pre-tokens only. Newline pre-tokens are skipped
    (they are fixed symbols); a tab inside a pre-token becomes a separate entry (TSV cannot
    hold it), so no learned piece contains a tab."""
    import re
    from collections import Counter

    from dsllm.tokenizer.specials import deepseek_splitter

    splitter = deepseek_splitter()
    counts: Counter = Counter()
    for doc in docs:
        stats["documents"] += 1
        stats["bytes"] += len(doc.encode("utf-8"))
        if WS in doc:
            doc = doc.replace(WS, "")
        for piece, _ in splitter.pre_tokenize_str(doc):
            if piece in ("\n", "\r"):
                continue
            if "\t" in piece:
                for part in re.split("(\t)", piece):
                    if part:
                        counts[part] += 1
            else:
                counts[piece] += 1
    stats["unique_pretokens"] = len(counts)
    for piece, n in counts.items():
        for part in split_long_line(piece, max_bytes, stats):
            if part != "\t":
                yield f"{part}\t{n}"


def train_sentencepiece(docs: Iterator[str], out_dir: str, *, vocab_size: int, pretokenizer: str = "native",
                        character_coverage: float = 0.9995, max_piece_length: int = 32,
                        max_sentence_bytes: int = 1 << 16, input_sentence_size: int = 0,
                        num_threads: int | None = None, extra: dict | None = None) -> dict:
    """Trains `out_dir/tokenizer.model` with exactly `vocab_size` pieces (15 specials included)."""
    import sentencepiece as spm

    min_size = N_SPECIAL + 2 + 256 + 1
    if vocab_size < min_size:
        raise TokenizerError(f"vocab_size {vocab_size} is too small: the SentencePiece backend needs at least "
                             f"{min_size} (15 specials, \\n and \\r, 256 byte pieces and one learned piece)")
    os.makedirs(out_dir, exist_ok=True)
    stats = dict(documents=0, lines=0, bytes=0, long_lines=0, pieces_from_long_lines=0, forced_splits=0)
    t0 = time.time()
    kwargs = dict(
        model_type="bpe", vocab_size=vocab_size, byte_fallback=True, split_digits=True,
        split_by_unicode_script=True, split_by_number=True, split_by_whitespace=True,
        allow_whitespace_only_pieces=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False,
        user_defined_symbols=["\n", "\r"], control_symbols=list(SPECIAL_TOKENS[3:]),
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece=PAD, bos_piece=BOS, eos_piece=EOS,
        max_sentence_length=max_sentence_bytes, character_coverage=character_coverage,
        max_sentencepiece_length=max_piece_length, input_sentence_size=input_sentence_size,
        shuffle_input_sentence=True, num_threads=num_threads or os.cpu_count() or 1,
        hard_vocab_limit=False, minloglevel=2,
    )
    if extra:
        kwargs.update(extra)
    if pretokenizer not in ("native", "deepseek"):
        raise TokenizerError(f"pretokenizer must be 'native' or 'deepseek', got {pretokenizer!r}")
    if pretokenizer == "deepseek":
        kwargs["input_format"] = "tsv"
        sentences = pretoken_counts(docs, max_sentence_bytes, stats)
    else:
        sentences = training_sentences(docs, max_sentence_bytes, stats)
    # The trainer rejects sentences > max_sentence_length silently; both feeders split them
    # first, so none is dropped.
    with open(os.path.join(out_dir, MODEL_FILE + ".tmp"), "wb") as f:
        spm.SentencePieceTrainer.Train(sentence_iterator=sentences, model_writer=f, **kwargs)
    os.replace(os.path.join(out_dir, MODEL_FILE + ".tmp"), os.path.join(out_dir, MODEL_FILE))
    if stats["documents"] == 0:
        raise TokenizerError("the tokenizer inputs hold no text")
    stats["train_seconds"] = round(time.time() - t0, 3)
    stats["pretokenizer"] = pretokenizer
    return stats
