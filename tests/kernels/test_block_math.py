"""block_math: the range representation of masks, the block bounds and the tile math.

These functions run inside the kernels (tile math) or around them (ranges, bounds),
so checking them against brute force checks what every kernel skips and masks.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dsllm.kernels import block_math as bm
from dsllm.kernels.reference import attention_mask
from kernel_test_utils import random_segments, segments_from_lengths


def _mask_from_ranges(start, end, S):
    cols = np.arange(S)
    return (cols[None, None, :] >= np.asarray(start)[:, :, None]) & (
        cols[None, None, :] < np.asarray(end)[:, :, None])


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_row_ranges_equal_the_segment_mask(causal, seed):
    rng = np.random.default_rng(seed)
    B, S = 3, 97
    seg = random_segments(rng, B, S, max_docs=9)
    kv_start, kv_end, q_start, q_end = bm.row_ranges(seg, B, S, causal=causal)
    want = np.asarray(attention_mask(seg, S, causal=causal))
    np.testing.assert_array_equal(_mask_from_ranges(kv_start, kv_end, S), want)
    # Seen from the keys: row j of the transposed mask.
    np.testing.assert_array_equal(_mask_from_ranges(q_start, q_end, S), want.transpose(0, 2, 1))


def test_row_ranges_without_segments():
    kv_start, kv_end, q_start, q_end = bm.row_ranges(None, 2, 8, causal=True)
    np.testing.assert_array_equal(kv_start, 0)
    np.testing.assert_array_equal(kv_end[0], np.arange(1, 9))
    np.testing.assert_array_equal(q_start[1], np.arange(8))
    np.testing.assert_array_equal(q_end, 8)


def test_document_bounds_treat_runs_as_documents():
    seg = segments_from_lengths([3, 1, (0, 2), 2])    # ids 1 1 1 2 0 0 3 3
    start, end = bm.document_bounds(seg)
    np.testing.assert_array_equal(start[0], [0, 0, 0, 3, 4, 4, 6, 6])
    np.testing.assert_array_equal(end[0], [3, 3, 3, 4, 6, 6, 8, 8])


@pytest.mark.parametrize("trim", [True, False])
@pytest.mark.parametrize("view", ["queries", "keys"])   # resident rows: forward/dQ, dK/dV
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_block_bounds_cover_every_allowed_pair_and_inner_blocks_need_no_mask(causal, seed, view, trim):
    rng = np.random.default_rng(100 + seed)
    B, S, tile, chunk, block = 2, 512, 128, 64, 64
    half = block // 2
    seg = random_segments(rng, B, S, max_docs=12)
    ranges = bm.row_ranges(seg, B, S, causal=causal)
    # Named for the forward's view; from the keys' view these are q_start, q_end.
    kv_start, kv_end = ranges[:2] if view == "queries" else ranges[2:]
    bounds = np.asarray(bm.block_bounds(kv_start, kv_end, tile_rows=tile, chunk_rows=chunk,
                                        block=block, trim=trim))
    mask = _mask_from_ranges(kv_start, kv_end, S)
    assert bounds.shape == (B, S // chunk, len(bm.BOUNDS))
    halves_seen = 0
    for b in range(B):
        for c in range(S // chunk):
            lo, hi, ilo, ihi, own_lo, own_hi, half_head, half_tail = bounds[b, c]
            assert lo <= own_lo <= ilo <= ihi <= own_hi <= hi
            rows = mask[b, c * chunk:(c + 1) * chunk]
            tile_rows = mask[b, (c * chunk // tile) * tile:(c * chunk // tile + 1) * tile]
            blocks_used = np.nonzero(tile_rows.reshape(tile, S // block, block).any(axis=(0, 2)))[0]
            # Tight: the tile's first and last visited blocks hold an allowed pair.
            assert (lo, hi) == (blocks_used.min(), blocks_used.max() + 1)
            # Nothing allowed outside [own_lo, own_hi): skipped and passed blocks are really empty.
            assert not rows[:, :own_lo * block].any() and not rows[:, own_hi * block:].any()
            if trim:   # and tight for the chunk's own rows
                own_used = np.nonzero(rows.reshape(chunk, S // block, block).any(axis=(0, 2)))[0]
                assert (own_lo, own_hi) == (own_used.min(), own_used.max() + 1)
            else:
                assert (own_lo, own_hi, half_head, half_tail) == (lo, hi, 0, 0)
            # A half block leaves out only columns without an allowed pair, and is never inner.
            first, last = own_lo * block, own_hi * block
            assert half_head == (not rows[:, first:first + half].any()) or not trim
            assert half_tail == (not rows[:, last - half:last].any()) or not trim
            assert not (half_head and ilo == own_lo) and not (half_tail and ihi == own_hi)
            assert not (half_head and half_tail and own_hi - own_lo == 1)
            halves_seen += half_head + half_tail
            # Inner blocks are all-allowed for this chunk, so skipping the mask is exact.
            assert rows[:, ilo * block:ihi * block].all()
            # Tail blocks need only the end compare: no row starts after their first column.
            if ihi < own_hi:
                assert (np.asarray(kv_start)[b, c * chunk:(c + 1) * chunk] <= ihi * block).all()
    assert halves_seen > 0 if trim else halves_seen == 0
    # Plain causal: the chunk's inner range is everything strictly below its diagonal.
    kv_start, kv_end, _, _ = bm.row_ranges(None, 1, S, causal=True)
    bounds = np.asarray(bm.block_bounds(kv_start, kv_end, tile_rows=tile, chunk_rows=chunk,
                                        block=block))
    np.testing.assert_array_equal(bounds[0, :, 0], 0)
    np.testing.assert_array_equal(bounds[0, :, 3], np.arange(S // chunk))
    # Plain causal, 128-key blocks, trimmed: the first chunk of each tile ends halfway into its
    # diagonal block, so it computes that block's first half only.
    bounds = np.asarray(bm.block_bounds(kv_start, kv_end, tile_rows=tile, chunk_rows=chunk,
                                        block=128, trim=True))
    chunks = np.arange(S // chunk)
    np.testing.assert_array_equal(bounds[0, :, 4:], np.stack(
        [0 * chunks, chunks // 2 + 1, 0 * chunks, (chunks % 2 == 0).astype(int)], axis=1))


def _streamed_softmax(s2, mask, block, scale=1.0):
    """The forward's online softmax over raw logits s2 / scale (masked raw, scaled inside)."""
    R, C = s2.shape
    m = jnp.full((R,), -jnp.inf)
    l = jnp.zeros((R,))
    v = jnp.asarray(np.random.default_rng(0).normal(size=(C, 8)), jnp.float32)
    acc = jnp.zeros((R, 8))
    cols = jnp.broadcast_to(jnp.arange(C), (R, C))
    start, end = mask
    for j in range(0, C, block):
        tile = bm.range_mask(s2[:, j:j + block] / scale, start[:, None], end[:, None],
                             cols[:, j:j + block])
        p, m, l, alpha = bm.softmax_update(tile, m, l, scale)
        acc = acc * alpha[:, None] + p @ v[j:j + block]
    out, lse = bm.finalize(acc, m, l)
    return out, lse, v


def test_mask_value_times_scale_is_exact():
    # The kernels compute exp2(fma(s, scale, -m)). For a row whose every key so far is masked,
    # m = MASK * scale (rounded), and the argument must be exactly 0, which needs MASK * scale
    # exact in float32: MASK a power of two. (float32's min fails this.)
    for scale in [bm.LOG2E / 8, bm.LOG2E / 11.3137, 0.1, 1.0, 3.7, 1000.0]:
        exact = np.float64(bm.MASK_VALUE) * np.float64(np.float32(scale))
        assert np.float64(np.float32(bm.MASK_VALUE) * np.float32(scale)) == exact
        assert np.isfinite(np.float32(exact))


@pytest.mark.parametrize("scale", [1.0, bm.LOG2E / 11.3137])
def test_online_softmax_matches_softmax_even_after_fully_masked_blocks(scale):
    rng = np.random.default_rng(1)
    R, C, block = 6, 48, 16
    s2 = jnp.asarray(rng.normal(size=(R, C)) * 4, jnp.float32)
    # Rows whose first one or two blocks are fully masked, and a row allowed a single key.
    start = jnp.array([0, 16, 20, 33, 40, 47])
    end = jnp.array([48, 40, 21, 48, 45, 48])
    out, lse, v = _streamed_softmax(s2, (start, end), block, scale)
    cols = jnp.arange(C)
    allowed = (cols[None] >= start[:, None]) & (cols[None] < end[:, None])
    logits = jnp.where(allowed, s2, -jnp.inf)
    want_p = jax.nn.softmax(logits * np.log(2), axis=-1)   # s2 is in log2 units
    np.testing.assert_allclose(out, want_p @ v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lse, jax.scipy.special.logsumexp(logits * np.log(2), axis=-1) / np.log(2),
                               rtol=1e-5)
    # The backward's recomputation from lse gives back the same probabilities.
    p = bm.probs_from_lse(jnp.where(allowed, s2, bm.MASK_VALUE), lse, 0)
    np.testing.assert_allclose(p, want_p, rtol=1e-5, atol=1e-6)


def test_dlogits_is_the_softmax_jacobian_product():
    rng = np.random.default_rng(2)
    s = jnp.asarray(rng.normal(size=(4, 7)), jnp.float32)
    dp = jnp.asarray(rng.normal(size=(4, 7)), jnp.float32)
    p = jax.nn.softmax(s, axis=-1)
    _, vjp = jax.vjp(lambda s: jax.nn.softmax(s, axis=-1), s)
    delta = (p * dp).sum(-1)     # = rowsum(dO * O) when dp = dO V^T
    np.testing.assert_allclose(bm.dlogits(p, dp, delta, 0), vjp(dp)[0], rtol=1e-5, atol=1e-6)


def test_softmax_update_scaling_inside_equals_scaling_first():
    # The forward's unmasked blocks pass raw logits and the scale; the masked ones pass
    # scaled logits. The running max must be bit-identical (max commutes with a positive
    # scale, rounding included), and p, l, alpha equal to rounding.
    rng = np.random.default_rng(3)
    s = jnp.asarray(rng.normal(size=(8, 64)) * 30, jnp.float32)
    scale = 0.08838834764831845 * bm.LOG2E
    m0 = jnp.asarray(rng.normal(size=(8,)) * 5, jnp.float32)
    l0 = jnp.asarray(rng.uniform(1, 3, size=(8,)), jnp.float32)
    inside = bm.softmax_update(s, m0, l0, scale)
    first = bm.softmax_update(s * scale, m0, l0)
    np.testing.assert_array_equal(inside[1], first[1])
    for a, b in zip(inside, first):
        np.testing.assert_allclose(a, b, rtol=1e-6)
