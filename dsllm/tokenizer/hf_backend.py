"""Hugging Face `tokenizers` backend: loads a released DeepSeek `tokenizer.json` (or any other),
and trains one with DeepSeek LLM's exact pre-tokenizer (regex splits, single digits, ByteLevel)."""

from __future__ import annotations

import json
import os
import time
from typing import Iterator

from dsllm.tokenizer.base import Tokenizer, TokenizerError, read_meta
from dsllm.tokenizer.specials import BOS, EOS, PAD, SPECIAL_TOKENS, deepseek_pre_tokenizer

JSON_FILE = "tokenizer.json"
_BOS_NAMES = (BOS, "<s>", "<|begin_of_text|>", "<|startoftext|>")
_EOS_NAMES = (EOS, "</s>", "<|end_of_text|>", "<|endoftext|>")
_PAD_NAMES = (PAD, "<pad>", "<|pad|>", "[PAD]")


def _token_str(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


class HFTokenizer(Tokenizer):
    def __init__(self, json_path: str, *, vocab_size: int | None = None, name: str | None = None,
                 num_threads: int | None = None):
        from tokenizers import Tokenizer as _HF

        if not os.path.exists(json_path):
            raise TokenizerError(f"no tokenizer.json at {json_path}")
        try:
            self._tok = _HF.from_file(json_path)
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise TokenizerError(f"{json_path} is not a Hugging Face tokenizer file ({e})") from None
        # Special strings in raw text are encoded as text, never as special ids.
        self._tok.encode_special_tokens = True
        d = os.path.dirname(os.path.abspath(json_path))
        meta = read_meta(d)
        cfg = _read_json(os.path.join(d, "tokenizer_config.json"))
        model_cfg = _read_json(os.path.join(d, "config.json"))
        self._n = self._tok.get_vocab_size(with_added_tokens=True)
        self.vocab_size = int(vocab_size or meta.get("vocab_size") or model_cfg.get("vocab_size") or self._n)
        if self.vocab_size < self._n:
            raise TokenizerError(f"vocab_size {self.vocab_size} is below the tokenizer's {self._n} ids")
        self.name = name or meta.get("name") or f"hf:{os.path.abspath(json_path)}"
        self._sequential = num_threads == 1
        added = self._tok.get_added_tokens_decoder()
        self.special_tokens = {t.content: i for i, t in added.items() if t.special}

        def pick(key, names):
            s = _token_str(cfg.get(key))
            if s is not None and self._tok.token_to_id(s) is not None:
                return self._tok.token_to_id(s)
            for n in names:
                if self._tok.token_to_id(n) is not None:
                    return self._tok.token_to_id(n)
            return None

        self.bos_id = pick("bos_token", _BOS_NAMES)
        self.eos_id = pick("eos_token", _EOS_NAMES)
        if self.bos_id is None or self.eos_id is None:
            raise TokenizerError(f"{json_path}: cannot find BOS/EOS tokens (looked in tokenizer_config.json "
                                 f"and for {_BOS_NAMES[:2]} / {_EOS_NAMES[:2]})")
        pad = pick("pad_token", _PAD_NAMES)
        self.pad_id = self.eos_id if pad is None else pad  # DeepSeek's released config pads with EOS

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self._sequential:  # one thread: each worker process of a pipeline already has its core
            return [self._tok.encode(t, add_special_tokens=False).ids for t in texts]
        enc = self._tok.encode_batch_fast(list(texts), add_special_tokens=False)
        return [e.ids for e in enc]

    def decode(self, ids) -> str:
        arr = self._checked_ids(ids)
        if arr.size == 0:
            return ""
        if int(arr.max()) >= self._n:
            arr = arr[arr < self._n]  # padding ids carry no text
        return self._tok.decode(arr.tolist(), skip_special_tokens=False)

    def id_to_piece(self, i: int) -> str:
        return self._tok.id_to_token(int(i)) or ""

    @property
    def backend(self):
        return self._tok


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        try:
            v = json.load(f)
        except json.JSONDecodeError as e:
            raise TokenizerError(f"{path} is not valid JSON ({e})") from None
    return v if isinstance(v, dict) else {}


def build_deepseek_tokenizer():
    """An untrained BPE tokenizer with DeepSeek LLM's pre-tokenizer and ByteLevel decoder."""
    from tokenizers import Tokenizer as _HF, decoders, models

    tok = _HF(models.BPE())
    tok.pre_tokenizer = deepseek_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    return tok


def train_hf(docs: Iterator[str], out_dir: str, *, vocab_size: int, min_frequency: int = 2,
             max_token_length: int | None = 32) -> dict:
    """Trains `out_dir/tokenizer.json`: vocab_size - 15 learned tokens (the 256 byte alphabet
    included), then the 15 specials appended after them (DeepSeek's layout: BOS = learned count)."""
    from tokenizers import AddedToken, pre_tokenizers as pt, trainers

    learned = vocab_size - len(SPECIAL_TOKENS)
    if learned < 257:
        raise TokenizerError(f"vocab_size {vocab_size} is too small for the byte-level backend "
                             f"(at least {257 + len(SPECIAL_TOKENS)})")
    os.makedirs(out_dir, exist_ok=True)
    stats = dict(documents=0, bytes=0)

    def counted():
        for d in docs:
            stats["documents"] += 1
            stats["bytes"] += len(d.encode("utf-8"))
            yield d

    t0 = time.time()
    tok = build_deepseek_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=learned, min_frequency=min_frequency, show_progress=False,
                                  initial_alphabet=pt.ByteLevel.alphabet(), special_tokens=[],
                                  max_token_length=max_token_length)
    tok.train_from_iterator(counted(), trainer=trainer)
    if stats["documents"] == 0:
        raise TokenizerError("the tokenizer inputs hold no text")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIAL_TOKENS])
    path = os.path.join(out_dir, JSON_FILE)
    tok.save(path + ".tmp")
    os.replace(path + ".tmp", path)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(dict(bos_token=BOS, eos_token=EOS, pad_token=PAD, add_bos_token=True, add_eos_token=False,
                       clean_up_tokenization_spaces=False, model_max_length=4096), f, indent=1, ensure_ascii=False)
    stats["train_seconds"] = round(time.time() - t0, 3)
    stats["learned_tokens"] = tok.get_vocab_size(with_added_tokens=False)
    return stats
