"""flash_attention's Mosaic GPU kernels, run on CPU under the Mosaic GPU interpreter.

The interpreter runs the kernels' own code: the three warpgroups, TMA copies into
the SMEM ring, barriers (it checks that every phase is awaited), wgmma from SMEM,
block bounds, masks and the online softmax. The one substitution is the wgmma with
a register operand (P.V, dS.K, P^T.dO, dS^T.Q), which the interpreter cannot run:
there it is a plain matmul of the same operands (mgpu_common.mma_accumulate).
What is not covered on CPU: the Mosaic GPU compiler (lowering, registers, layouts)
and real concurrency; the benchmark script checks the compiled kernels on the GPU.

Each case checks output and dq, dk, dv against the fp32 reference (tolerances in
kernel_test_utils). The interpreter is slow: shapes are small.
"""
import numpy as np
import pytest

from dsllm.kernels.block_math import BOUNDS
from dsllm.kernels.flash_attention import flash_attention
from dsllm.kernels.mgpu_common import Blocks
from dsllm.kernels.plan import make_plan
from kernel_test_utils import (compare_with_reference, random_qkv, random_segments,
                               segments_from_lengths)


def mosaic(q, k, v, segment_ids, *, causal):
    return flash_attention(q, k, v, segment_ids, causal=causal, backend="mosaic_gpu", interpret=True)


def test_packed_causal_gqa4_short_documents_and_fully_masked_blocks():
    # Document 1 spans the 64- and 128-key block edges; then a 5-token, a 1-token, a
    # 30- and a 60-token document and 20 padding tokens. In the second query tile
    # (rows 128..255) every row after 140 finds key block 0 fully masked, although
    # the tile must visit it for rows 128..139.
    seg = segments_from_lengths([140, 5, 1, 30, 60, (0, 20)])
    q, k, v, do = random_qkv(0, 1, 256, 4, 1, 64)
    compare_with_reference(mosaic, q, k, v, do, seg, causal=True)


# A document starting 80 rows in: the second query tile's rows all start in the second half
# of key block 0, so its chunks compute that block's second half only (half_head).
HALF_HEAD_DOCS = [80, 150, (0, 26)]


def test_documents_starting_mid_block():
    seg = segments_from_lengths(HALF_HEAD_DOCS)
    q, k, v, do = random_qkv(4, 1, 256, 2, 2, 64)
    compare_with_reference(mosaic, q, k, v, do, seg, causal=True)


def test_the_packed_cases_have_passed_and_half_blocks_in_every_kernel():
    """Between them, the two packed causal cases above run each kernel's kinds of blocks
    (with Blocks.trim_blocks, the default): a chunk's own blocks, the other chunk's blocks
    that it only lets pass and, in the forward and dQ, half blocks of both kinds."""
    col = {name: i for i, name in enumerate(BOUNDS)}
    seen = {}
    for lengths in ([140, 5, 1, 30, 60, (0, 20)], HALF_HEAD_DOCS):
        plan = make_plan(segments_from_lengths(lengths), 1, 256, causal=True)
        for name in ("fwd_bounds", "dq_bounds", "dkv_bounds"):
            bounds = np.asarray(getattr(plan, name))[0]
            passed = (bounds[:, col["own_lo"]] > bounds[:, col["lo"]]) | \
                     (bounds[:, col["own_hi"]] < bounds[:, col["hi"]])
            seen[name, "passed"] = seen.get((name, "passed"), False) | passed.any()
            for half in ("half_head", "half_tail"):
                seen[name, half] = seen.get((name, half), False) | bounds[:, col[half]].any()
    for name in ("fwd_bounds", "dq_bounds", "dkv_bounds"):
        assert seen[name, "passed"], name
    for name in ("fwd_bounds", "dq_bounds"):   # dK/dV computes its half blocks whole
        assert seen[name, "half_head"] and seen[name, "half_tail"], name


# The selectable alternatives to the defaults, each on a packed causal case:
# name: (blocks, document lengths, random_qkv's (seed, B, S, H, K, D)).
VARIANTS = {
    # the forward with one program per tile (the bench's `pertile`)
    "per_tile_forward": (Blocks(persistent_forward=False), [40, 5, 1, 30, 60, (0, 20)],
                         (6, 1, 156, 4, 2, 64)),
    # every warpgroup computes all its tile's blocks, whole (the bench's `notrim`)
    "untrimmed": (Blocks(trim_blocks=False), [140, 5, 1, 30, 60, (0, 20)], (3, 1, 256, 2, 1, 64)),
    # the split backward's persistent dK/dV under GQA 2 (the bench's `pdkv`; the default there
    # is the per-tile dK/dV, and the persistent one for MHA)
    "persistent_dkv_gqa": (Blocks(dkv_kernel="persistent", backward="split"),
                       [140, 5, 1, 30, 60, (0, 20), 200, 56], (9, 1, 512, 4, 2, 64)),
}


# persistent_dkv_gqa is kept out of CI (33 s): test_persistent checks that kernel bit for bit
# against the per-tile dK/dV on a packed GQA 2 case, and the per-tile one is checked here.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "persistent_dkv_gqa"
                                  else n for n in VARIANTS])
def test_selectable_variants_gradients(name):
    blocks, lengths, shape = VARIANTS[name]
    q, k, v, do = random_qkv(*shape)
    attn = lambda q, k, v, s, causal: flash_attention(q, k, v, s, causal=causal, blocks=blocks,
                                                      backend="mosaic_gpu", interpret=True)
    compare_with_reference(attn, q, k, v, do, segments_from_lengths(lengths), causal=True)


def test_bidirectional_segments_head_dim_128_two_rows():
    # Non-causal packed rows, different per batch row (the kernels index bounds by row).
    seg = segments_from_lengths([70, 58], [10, (0, 3), 100, 15])
    q, k, v, do = random_qkv(1, 2, 128, 2, 2, 128)
    compare_with_reference(mosaic, q, k, v, do, seg, causal=False)


def test_plain_causal_gqa8_length_not_a_block_multiple():
    # S=100 is padded inside to 128; the padded rows must not leak into real ones.
    q, k, v, do = random_qkv(2, 1, 100, 8, 1, 64)
    compare_with_reference(mosaic, q, k, v, do, None, causal=True)


def _random_case(seed):
    rng = np.random.default_rng(seed)
    B = int(rng.integers(1, 3))
    S = int(rng.integers(64, 321 if seed else 161))
    K = int(rng.choice([1, 2]))
    G = int(rng.choice([1, 4, 8])) if K == 1 else int(rng.choice([1, 4]))
    D = int(rng.choice([64, 128]))
    causal = bool(rng.random() < 0.7)
    seg = random_segments(rng, B, S, max_docs=10) if rng.random() < 0.8 else None
    return seed, B, S, K * G, K, D, causal, seg


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow),
                                  pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(3, marks=pytest.mark.slow),
                                  pytest.param(4, marks=pytest.mark.slow)])
def test_random_shapes(seed):
    seed, B, S, H, K, D, causal, seg = _random_case(seed)
    q, k, v, do = random_qkv(10 + seed, B, S, H, K, D)
    compare_with_reference(mosaic, q, k, v, do, seg, causal=causal)
