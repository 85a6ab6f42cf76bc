"""Shared helpers for the tests (tests/conftest.py puts this folder on sys.path)."""

import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(name: str) -> str:
    return os.path.join(REPO, "configs", f"{name}.py")


def tiny_config(**overrides):
    """configs/tiny.py with {"a.b": value} overrides."""
    from dsllm.config import load_config

    return load_config(config_path("tiny"), overrides)


def counting_documents(n: int, seed: int, vocab: int = 256):
    """Learnable documents: runs of consecutive token ids (mod the vocabulary), 5 to 60 long."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        length, start = int(rng.integers(5, 60)), int(rng.integers(3, vocab))
        docs.append((start + np.arange(length)) % (vocab - 3) + 3)
    return docs


def packed_batch(rng, batch: int, seq: int, vocab: int, docs_per_row: int = 3):
    """A random packed batch in the pipeline's format, with documents of random lengths and padding."""
    seg = np.zeros((batch, seq), np.int32)
    pos = np.zeros((batch, seq), np.int32)
    for b in range(batch):
        cuts = np.sort(rng.choice(np.arange(1, seq - 2), docs_per_row - 1, replace=False))
        bounds = [0, *cuts, seq - 2]
        for i in range(docs_per_row):
            seg[b, bounds[i]:bounds[i + 1]] = i + 1
            pos[b, bounds[i]:bounds[i + 1]] = np.arange(bounds[i + 1] - bounds[i])
    tokens = rng.integers(0, vocab, (batch, seq + 1)).astype(np.int32)
    mask = np.zeros((batch, seq), np.float32)
    mask[:, :-1] = (seg[:, :-1] == seg[:, 1:]) & (seg[:, :-1] > 0)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:], "segment_ids": seg, "positions": pos,
            "loss_mask": mask, "target_bytes": mask * 1.5}
