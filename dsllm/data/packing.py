"""Packing: documents -> fixed-length rows of (input, target) pairs with segment ids.

A document of n tokens is fed as [BOS] + tokens + [EOS]. We turn it into n + 1
(input, target) pairs *before* packing:

    inputs        BOS  t1   t2  ...  tn
    targets       t1   t2   t3  ...  EOS
    target_bytes  b1   b2   b3  ...  0      (b1 + ... + bn = the document's UTF-8 bytes)

and let Grain's `ConcatThenSplitIterDataset` concatenate the pairs of consecutive
documents and cut them into rows of `seq_len`. Packing pairs rather than raw tokens means
every target in a row is the true next token of the same document, even where a long
document is cut across rows (no prediction is lost at a cut, and none crosses a document
boundary), so the loss mask is simply "not padding". Each piece of a cut document is its
own segment with positions restarting at 0, because attention cannot see the other piece.

The batch format (docs/interfaces.md, "Batches"): inputs, targets, segment_ids, positions
(int32) and loss_mask, target_bytes (float32), all [rows, seq_len].
"""

from __future__ import annotations

import grain
import numpy as np

from dsllm.data.shards import DatasetError, decode_document

BATCH_KEYS = ("inputs", "targets", "segment_ids", "positions", "loss_mask", "target_bytes")
# The per-document features that are packed side by side; all have the same length.
_PACKED = ("inputs", "targets", "target_bytes")


def spread_bytes(n_bytes: int, n_tokens: int) -> np.ndarray:
    """Spreads a document's bytes over its tokens as evenly as integers allow (the first
    n_bytes % n_tokens tokens get one more), so the sum is exact even in float32."""
    base, extra = divmod(int(n_bytes), int(n_tokens))
    out = np.full(n_tokens, base, np.float32)
    out[:extra] += 1
    return out


class DocumentToPairs(grain.transforms.Map):
    """One ArrayRecord record (a stored document) -> its (input, target) pairs.

    A class rather than a closure so that Grain can pickle it into worker processes.
    """

    def __init__(self, *, bos_id: int, eos_id: int, vocab_size: int):
        self.bos_id, self.eos_id, self.vocab_size = int(bos_id), int(eos_id), int(vocab_size)

    def map(self, record: bytes) -> dict[str, np.ndarray]:
        tokens, n_bytes = decode_document(record)
        if tokens.size == 0:
            raise DatasetError("a stored document holds no tokens; the shards are corrupt, re-run prepare")
        if tokens.min() < 0 or tokens.max() >= self.vocab_size:
            raise DatasetError(f"token id {int(tokens.max())} (min {int(tokens.min())}) is outside the model "
                               f"vocabulary [0, {self.vocab_size}); the shards do not match this model")
        return {
            "inputs": np.concatenate([[self.bos_id], tokens]).astype(np.int32),
            "targets": np.concatenate([tokens, [self.eos_id]]).astype(np.int32),
            "target_bytes": np.concatenate([spread_bytes(n_bytes, tokens.size), [0.0]]).astype(np.float32),
        }


def pack_rows(pairs: grain.IterDataset, seq_len: int) -> grain.IterDataset:
    """Document pairs -> packed rows of `seq_len`, with Grain's own concat-then-split packer.

    Rows are full except the very last one of a finite stream, which is zero-padded.
    """
    return _JsonSafeState(grain.experimental.ConcatThenSplitIterDataset(
        pairs, length_struct={k: seq_len for k in _PACKED}))


class _JsonSafeState(grain.IterDataset):
    """Works around a grain 0.2.18 bug: ConcatThenSplit's state holds (start, stop) tuples,
    and (-1, -1) marks "no remainder". Checkpoints store the state as JSON, which turns the
    tuples into lists; set_state then compares [-1, -1] != (-1, -1), takes an empty slice
    for a remainder and restores the wrong position. Turning the lists back into tuples
    before set_state fixes it (tests/data/test_pipeline.py restores from every position)."""

    def __iter__(self):
        return _JsonSafeStateIterator(self._parent.__iter__())


class _JsonSafeStateIterator(grain.DatasetIterator):
    def __next__(self):
        return next(self._parent)

    def get_state(self):
        return self._parent.get_state()

    def set_state(self, state):
        slices = {k: tuple(v) for k, v in state["remainder_slices"].items()}
        self._parent.set_state(dict(state, remainder_slices=slices))


def to_batch(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A stack of packed rows (Grain's feature names) -> the batch format of interfaces.md.

    Works on one row [seq] or a batch [rows, seq] alike.
    """
    segment_ids = rows["inputs_segment_ids"].astype(np.int32)
    return {
        "inputs": rows["inputs"].astype(np.int32),
        "targets": rows["targets"].astype(np.int32),
        "segment_ids": segment_ids,
        "positions": rows["inputs_positions"].astype(np.int32),
        # Every packed target is the next token of its own document (see module doc), so the
        # loss is taken wherever the slot is not padding.
        "loss_mask": (segment_ids > 0).astype(np.float32),
        "target_bytes": rows["target_bytes"].astype(np.float32),
    }


def padding_rows(n_rows: int, seq_len: int) -> dict[str, np.ndarray]:
    """All-padding rows (segment 0, loss_mask 0) to fill the last, partial eval batch."""
    return {k: np.zeros((n_rows, seq_len), np.float32 if k in ("loss_mask", "target_bytes") else np.int32)
            for k in BATCH_KEYS}
