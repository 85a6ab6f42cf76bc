"""The attention benchmark's shapes (dsllm.bench.attention), its packed rows and how their
work is counted.

A module of its own (no flags) so that tests and tools can use the same shapes and rows.
"""
import jax.numpy as jnp
import numpy as np

# name: (B, S, H, KVH, D, packed documents per row or 0)
SHAPES = {
    "1": (4, 4096, 32, 32, 128, 0),
    "2": (2, 8192, 64, 8, 128, 0),
    "3": (4, 4096, 32, 32, 128, 8),
    # not in the list (--shapes=4): the 67B's GQA on packed rows of ~16 documents
    "4": (2, 8192, 64, 8, 128, 16),
    # (--shapes=5) head_dim 64 at shape 1's FLOPs (the scaling studies' small models use 64)
    "5": (4, 4096, 64, 64, 64, 0),
    # (--shapes=6) head_dim 64 with GQA 4 on packed rows of ~8 documents
    "6": (4, 4096, 64, 16, 64, 8),
}
SMALL_SHAPES = {"1": (1, 256, 2, 2, 64, 0), "2": (1, 256, 4, 1, 64, 0), "3": (1, 256, 2, 2, 64, 4),
                "4": (1, 256, 4, 1, 64, 4), "5": (1, 256, 2, 2, 64, 0),
                "6": (1, 256, 4, 1, 64, 4)}


def shape_of(name, *, small=False, docs=None):
    """(B, S, H, KVH, D, docs) of a bench shape, with docs in place of its own if given."""
    shape = (SMALL_SHAPES if small else SHAPES)[name]
    return shape if docs is None else shape[:5] + (docs,)


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
