"""The benchmark's packed rows (dsllm.bench.attention shape 3) and how their work is counted.

A module of its own (no flags) so that tests and tools can use the same rows.
"""
import jax.numpy as jnp
import numpy as np


def packed_segments(batch, seq, docs, seed=0):
    """[B, S] int32 ids 1..docs per row: random cut points, so mixed document lengths."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, seq), np.int32)
    for b in range(batch):
        cuts = np.sort(rng.choice(np.arange(1, seq), docs - 1, replace=False))
        ids[b] = np.searchsorted(cuts, np.arange(seq), side="right") + 1
    return jnp.asarray(ids)


def allowed_pairs(segment_ids, batch, seq):
    """Causal query-key pairs counted by the benchmark convention."""
    if segment_ids is None:
        return batch * seq * seq / 2
    lengths = [np.bincount(np.asarray(row))[1:] for row in segment_ids]
    return float(sum((l * (l + 1) // 2).sum() for l in lengths))
