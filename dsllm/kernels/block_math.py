"""The block-level math shared by the flash-attention kernels, as pure jnp functions.

Everything here is either run in XLA around the kernels (row ranges, block bounds)
or called from inside the kernel bodies (masking, the online-softmax update, the
backward's dS), so that CPU tests of these functions test the kernels' math.

Masks as ranges. For self-attention over packed documents, where each document is
one contiguous run of equal segment ids, the allowed keys of query row i are the
interval [kv_start[i], kv_end[i]):
  kv_start[i] = start of i's document,
  kv_end[i]   = i + 1 if causal else end of i's document.
Seen from key row j, the allowed queries are [q_start[j], q_end[j]):
  q_start[j] = j if causal else start of j's document,
  q_end[j]   = end of j's document.
(Both describe the same set of pairs: same document, and j <= i when causal.)
So a kernel needs only two int32 vectors for its resident rows, never an [S, S]
mask, and whole blocks outside [min start, max end) are skipped.
Padding (segment 0) is just another run, so padding rows attend among their own
run and no row is ever empty.
"""
import math

import jax.numpy as jnp
from jax import lax

LOG2E = math.log2(math.e)
# The kernels mask raw logits and scale them inside exp2's argument, fused into one FFMA:
# exp2(fma(s, scale, -m)). MASK_VALUE is finite, so that a row whose every key in a block is
# masked yields exp2(MASK * scale - MASK * scale) = 1 instead of NaN (that garbage is wiped by
# alpha = 0 as soon as the row sees its first allowed key; every row has one: itself, or its
# document). And it is a power of two, so that MASK * scale is exact and that argument is
# exactly 0 under the fused multiply-add too; a value like float32's min would leave the
# rounding error of MASK * scale, about 1e30, and exp2 of it is inf or 0. 2^100 keeps
# MASK * scale finite for any scale below 2^27.
MASK_VALUE = -2.0 ** 100


# ---------------------------------------------------------------- row ranges (XLA)

def document_bounds(segment_ids):
    """[B, S] ids -> (start, end) [B, S] int32: the run of equal ids holding each position."""
    B, S = segment_ids.shape
    pos = jnp.broadcast_to(jnp.arange(S, dtype=jnp.int32), (B, S))
    first = jnp.concatenate(
        [jnp.ones((B, 1), bool), segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
    last = jnp.concatenate(
        [segment_ids[:, 1:] != segment_ids[:, :-1], jnp.ones((B, 1), bool)], axis=1)
    start = lax.cummax(jnp.where(first, pos, 0), axis=1)
    end = lax.cummin(jnp.where(last, pos + 1, S), axis=1, reverse=True)
    return start, end


def row_ranges(segment_ids, batch, seq_len, *, causal):
    """Allowed intervals per query row and per key row, each [B, S] int32.

    Returns (kv_start, kv_end, q_start, q_end) as described in the module docstring.
    segment_ids None means one document per row.
    """
    pos = jnp.broadcast_to(jnp.arange(seq_len, dtype=jnp.int32), (batch, seq_len))
    if segment_ids is None:
        doc_start = jnp.zeros_like(pos)
        doc_end = jnp.full_like(pos, seq_len)
    else:
        doc_start, doc_end = document_bounds(segment_ids)
    kv_start, q_end = doc_start, doc_end
    kv_end = pos + 1 if causal else doc_end
    q_start = pos if causal else doc_start
    return kv_start, kv_end, q_start, q_end


# ---------------------------------------------------------------- block bounds (XLA)

# Columns of a block_bounds row.
BOUNDS = ("lo", "hi", "inner_lo", "inner_hi", "own_lo", "own_hi", "half_head", "half_tail")


def block_bounds(row_start, row_end, *, tile_rows, chunk_rows, block, mask_all=False,
                 trim=False):
    """Which streamed blocks each resident tile visits, [B, S // chunk_rows, 8] int32.

    A kernel program owns `tile_rows` resident rows, split into chunks of
    `chunk_rows` (one per compute warpgroup), and streams blocks of `block` columns.
    For each chunk, the columns of BOUNDS:
    - [lo, hi): the blocks the whole tile must visit, shared by its chunks (they consume
      one stream);
    - [own_lo, own_hi) within it: the blocks this chunk computes; the others it only lets
      pass. With trim=False, the tile's [lo, hi); with trim=True, the blocks that hold an
      allowed pair of this chunk's rows;
    - half_head, half_tail (0 or 1, trim=True only): the chunk's first (last) own block
      holds allowed pairs only in its second (first) half of block // 2 columns, so the
      kernel may compute that half only. Both are never set on the same block (each row
      has an allowed key);
    - [inner_lo, inner_hi) within [own_lo, own_hi): the blocks where every (row, column)
      pair of the chunk is allowed, so the mask can be skipped. The tail blocks
      [inner_hi, own_hi) need only the end compare (col < row_end): they start at or
      after inner_lo, which is at or after every row's start (or, clipped to own_hi,
      leaves no tail). The head blocks [own_lo, inner_lo) may need both compares. A half
      block is never inner.
    """
    B, S = row_start.shape
    n_tiles, n_chunks = S // tile_rows, S // chunk_rows
    per_chunk = tile_rows // chunk_rows
    t_start = row_start.reshape(B, n_tiles, tile_rows)
    t_end = row_end.reshape(B, n_tiles, tile_rows)
    lo = t_start.min(-1) // block
    hi = -(-t_end.max(-1) // block)
    lo, hi = (jnp.repeat(x, per_chunk, axis=1) for x in (lo, hi))
    c_start = row_start.reshape(B, n_chunks, chunk_rows)
    c_end = row_end.reshape(B, n_chunks, chunk_rows)
    if trim:
        first, last = c_start.min(-1), c_end.max(-1)
        own_lo, own_hi = first // block, -(-last // block)
        half = block // 2
        half_head = (first - own_lo * block >= half).astype(jnp.int32)
        half_tail = ((own_hi - 1) * block + half >= last).astype(jnp.int32)
    else:
        own_lo, own_hi = lo, hi
        half_head = half_tail = jnp.zeros_like(lo)
    inner_lo = jnp.clip(-(-c_start.max(-1) // block), own_lo, own_hi)
    inner_hi = jnp.clip(c_end.min(-1) // block, inner_lo, own_hi)
    if mask_all:
        inner_lo = inner_hi = own_hi
    return jnp.stack([lo, hi, inner_lo, inner_hi, own_lo, own_hi, half_head, half_tail],
                     axis=-1).astype(jnp.int32)


# ---------------------------------------------------------------- in-kernel tile math

def range_mask(x, row_start, row_end, col_ids):
    """x [R, C] where row_start <= col < row_end, else MASK_VALUE.

    row_start/row_end are already broadcast to [R, C] (the kernels broadcast with
    their own layouts); col_ids [R, C] are absolute column indices. row_start None
    skips the start compare (the tail blocks of block_bounds need only the end's).
    """
    # Two selects rather than one on (a & b): the same function, and the simplest
    # form for the Mosaic GPU lowering.
    if row_start is not None:
        x = jnp.where(col_ids >= row_start, x, MASK_VALUE)
    return jnp.where(col_ids < row_end, x, MASK_VALUE)


def softmax_update(s, m_prev, l_prev, scale=1.0):
    """One online-softmax step on a tile of logits s [R, C], whose log2-scaled values are
    s * scale (scale > 0).

    Returns (p, m_new, l_new, alpha): p = exp2(s * scale - m_new) [R, C] unnormalised
    probabilities, the running max/sum updated, and alpha [R] the factor by which
    the running output accumulator must be rescaled.
    The row max is taken before scaling. Multiplying by a positive constant commutes with max,
    rounding included, so m_new is the same. Each element is then multiplied once, inside
    exp2's argument (one FFMA), instead of also once for the max: 64 fewer FMULs per thread and
    block in the forward (its SASS, NOTES.md v6). Masked logits are MASK_VALUE (see there).
    """
    m_new = jnp.maximum(m_prev, s.max(axis=1) * scale)
    alpha = jnp.exp2(m_prev - m_new)
    p = jnp.exp2(s * scale - lax.broadcast_in_dim(m_new, s.shape, [0]))
    l_new = l_prev * alpha + p.sum(axis=1)
    return p, m_new, l_new, alpha


def finalize(acc, m, l):
    """Normalised output [R, D] and the base-2 log-sum-exp [R] of the scaled logits."""
    out = acc / lax.broadcast_in_dim(l, acc.shape, [0])
    return out, m + jnp.log(l) * LOG2E   # log, not log2: what the Mosaic GPU kernels lower


def probs_from_lse(s, lse2, lse_dim, scale=1.0):
    """Recomputed probabilities exp2(s * scale - lse2) with lse2 broadcast along `lse_dim`
    (s * scale the log2-scaled logits)."""
    return jnp.exp2(s * scale - lax.broadcast_in_dim(lse2, s.shape, [lse_dim]))


def dlogits(p, dp, delta, delta_dim):
    """dS = P * (dP - delta), delta = rowsum(dO * O) broadcast along `delta_dim`."""
    return p * (dp - lax.broadcast_in_dim(delta, p.shape, [delta_dim]))
