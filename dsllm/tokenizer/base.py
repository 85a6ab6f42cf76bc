"""The tokenizer interface every backend implements (docs/interfaces.md)."""

from __future__ import annotations

import abc
import json
import os

import numpy as np

META_FILE = "dsllm_tokenizer.json"


class TokenizerError(ValueError):
    """A tokenizer file is missing or malformed, or an id is out of range."""


class Tokenizer(abc.ABC):
    """encode(text) -> ids without BOS/EOS; decode(ids) -> text (special ids render as their
    strings); `vocab_size` is the model vocabulary (every id is below it, padding included)."""

    name: str
    vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int
    special_tokens: dict[str, int]

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]: ...

    @abc.abstractmethod
    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...

    @abc.abstractmethod
    def decode(self, ids) -> str: ...

    def id_to_piece(self, i: int) -> str:
        raise NotImplementedError

    def _checked_ids(self, ids) -> np.ndarray:
        """ids as a flat int64 array, every one inside the model vocabulary (else TokenizerError)."""
        arr = np.asarray(ids, np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise TokenizerError(f"token id out of range [0, {self.vocab_size}): min {int(arr.min())}, "
                                 f"max {int(arr.max())}")
        return arr

    def __repr__(self):
        return (f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, "
                f"bos_id={self.bos_id}, eos_id={self.eos_id}, pad_id={self.pad_id})")


def read_meta(directory: str) -> dict:
    path = os.path.join(directory, META_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise TokenizerError(f"{path} is not valid JSON ({e})") from None


def write_meta(directory: str, meta: dict):
    tmp = os.path.join(directory, META_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
    os.replace(tmp, os.path.join(directory, META_FILE))
