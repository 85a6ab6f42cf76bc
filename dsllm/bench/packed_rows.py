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


def document_offsets(segment_ids):
    """cuDNN's packed ("THD") description of rows of consecutive documents.

    Returns numpy int32 (offsets [B, M+1], lengths [B, M]): each document's start position
    in its row and its length, for M = the most documents in a row, the unused entries -1,
    as jax's private cuDNN API asks (`jax._src.cudnn.fused_attention_stablehlo.
    dot_product_attention(q_offsets=, q_seqlen=)`; its own test pads offsets the same way).
    The ids must be concrete (the bench closes over them) and each document contiguous.
    """
    ids = np.asarray(segment_ids)
    starts = [np.flatnonzero(np.diff(row, prepend=row[0] - 1)) for row in ids]
    for b, (row, s) in enumerate(zip(ids, starts)):
        if len(np.unique(row)) != len(s):
            raise ValueError(f"row {b}: a segment id occurs in more than one run of positions; "
                             "the packed layout needs each document contiguous")
    most = max(len(s) for s in starts)
    offsets = np.full((len(ids), most + 1), -1, np.int32)
    lengths = np.full((len(ids), most), -1, np.int32)
    for b, s in enumerate(starts):
        offsets[b, :len(s)] = s
        lengths[b, :len(s)] = np.diff(np.append(s, ids.shape[1]))
    return offsets, lengths
