"""The persistent forward (mgpu_forward_persistent, the default), the persistent dK/dV
(mgpu_backward_persistent) and their work schedule (schedule.py).

The persistent forward runs the per-tile forward's math (mgpu_forward.consume_tile) on each
work item, so on every case its out and lse must equal the per-tile kernel's bit for bit.
Here: that equality over the cases of test_flash_attention.py, the output against the
reference directly, and the schedule: every item exactly once, heaviest first within each
(row, head) group. (The per-tile forward's gradients are in test_flash_attention.py's
VARIANTS.) The interpreter runs 3 programs
(flash_attention.INTERPRET_PROGRAMS), so programs run several items: the K/V ring running
on across items, the two input slots and their release are exercised.
"""
import jax.experimental.pallas.mosaic_gpu as plgpu
import jax.numpy as jnp
import numpy as np
import pytest

from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_forward, mgpu_forward_persistent
from dsllm.kernels import schedule as sched
from dsllm.kernels.flash_attention import INTERPRET_PROGRAMS
from dsllm.kernels.plan import make_plan, padded_length
from dsllm.kernels.mgpu_common import COMPUTE_WGS, Blocks
from dsllm.kernels.reference import reference_attention
from kernel_test_utils import (OUT_RTOL, random_qkv, random_segments, rel_err,
                               segments_from_lengths)


@pytest.mark.parametrize("n_items, programs", [(1, 1), (7, 3), (9, 3), (10, 3), (4096, 132),
                                               (4096 + 5, 132), (131, 132)])
def test_schedule_runs_every_item_exactly_once(n_items, programs):
    P = sched.num_programs(n_items, programs)
    seen = []
    for p in range(P):
        steps = int(sched.num_steps(p, n_items, P))
        items = [int(sched.work_item(p, s, P)) for s in range(steps)]
        assert all(0 <= w < n_items for w in items), (p, items)
        seen += items
    assert sorted(seen) == list(range(n_items))


def _table(B, S, causal, seed=5, bq=64, bkv=128):
    seg = random_segments(np.random.default_rng(seed), B, S, max_docs=9)
    kv_start, kv_end, _, _ = bm.row_ranges(seg, B, S, causal=causal)
    bounds = np.asarray(bm.block_bounds(kv_start, kv_end, tile_rows=COMPUTE_WGS * bq,
                                        chunk_rows=bq, block=bkv, trim=True))
    return bounds, np.asarray(sched.tile_table(jnp.asarray(bounds), COMPUTE_WGS))


@pytest.mark.parametrize("causal", [True, False])
def test_tile_table_lists_every_tile_once_heaviest_first(causal):
    B, S = 3, 1024
    bounds, table = _table(B, S, causal)
    T = S // (COMPUTE_WGS * 64)
    # rows are whole 128-byte TMA units (the second SMEM slot must start on one), padded with zeros
    assert table.shape == (B * T, sched.TABLE_ROW_INTS) and sched.TABLE_ROW_INTS * 4 % 128 == 0
    assert (table[:, sched.TABLE_FIXED + sched.CHUNK_COLS * COMPUTE_WGS:] == 0).all()
    assert sorted(map(tuple, table[:, :2])) == [(b, t) for b in range(B) for t in range(T)]
    cost = table[:, 3] - table[:, 2]
    # batch rows in order, each row's tiles heaviest first
    np.testing.assert_array_equal(table[:, 0], np.repeat(np.arange(B), T))
    assert all((np.diff(cost[b * T:(b + 1) * T]) <= 0).all() for b in range(B))
    for b, t, lo, hi, *per_chunk in table:
        for c in range(COMPUTE_WGS):
            cols = per_chunk[sched.CHUNK_COLS * c:sched.CHUNK_COLS * (c + 1)]
            np.testing.assert_array_equal(bounds[b, t * COMPUTE_WGS + c], [lo, hi, *cols])


def test_items_cover_every_tile_and_head_once():
    B, S, H = 2, 1024, 3
    _, table = _table(B, S, True)
    T = S // (COMPUTE_WGS * 64)
    coords = [sched.item_coords(w, tiles=T, heads=H) for w in range(B * T * H)]
    seen = [(int(table[j, 0]), int(table[j, 1]), int(h)) for j, h in coords]
    assert sorted(seen) == [(b, t, h) for b in range(B) for t in range(T) for h in range(H)]
    assert [x[::2] for x in seen[:T]] == [(0, 0)] * T   # a (row, head) group's tiles are consecutive items


def test_snake_balances_the_programs():
    # Dense causal, shape 1 of the benchmark (B4 S4096 H32): tile t visits t + 1 blocks.
    B, T, H, P = 4, 32, 32, 132
    table_cost = np.concatenate([np.arange(T, 0, -1)] * B)   # each row's tiles heaviest first
    n = B * T * H
    loads = [sum(table_cost[int(sched.item_coords(sched.work_item(p, s, P), tiles=T, heads=H)[0])]
                 for s in range(int(sched.num_steps(p, n, P)))) for p in range(P)]
    assert max(loads) / np.mean(loads) <= 1.04 + 1e-9, (max(loads), np.mean(loads))


def _both_ways(q, k, v, seg, causal):
    """(out, lse) from the per-tile forward and from the persistent one."""
    B, S = q.shape[:2]
    plan = make_plan(seg, B, S, causal=causal, blocks=Blocks())
    Sp = padded_length(S, plan.blocks)
    kv_start, kv_end, _, _ = plan.ranges
    q, k, v = (jnp.pad(x, ((0, 0), (0, Sp - S), (0, 0), (0, 0))) for x in (q, k, v))
    kw = dict(sm_scale=q.shape[-1] ** -0.5, blocks=plan.blocks,
              interpret=plgpu.InterpretGPUParams())   # what flash_attention passes on CPU
    per_tile = mgpu_forward.forward(q, k, v, kv_start, kv_end, plan.fwd_bounds, **kw)
    persistent = mgpu_forward_persistent.forward(
        q, k, v, kv_start, kv_end, sched.tile_table(plan.fwd_bounds, COMPUTE_WGS),
        max_programs=INTERPRET_PROGRAMS, **kw)
    return per_tile, persistent


# (name, seed, B, S, H, K, D, causal, segment lengths per row or None); the cases of
# test_flash_attention plus a single-item one (one program).
CASES = [
    ("packed_gqa4_short_docs_masked_blocks", 0, 1, 256, 4, 1, 64, True, [[140, 5, 1, 30, 60, (0, 20)]]),
    ("bidirectional_d128_two_rows", 1, 2, 128, 2, 2, 128, False, [[70, 58], [10, (0, 3), 100, 15]]),
    ("plain_causal_gqa8_ragged_length", 2, 1, 100, 8, 1, 64, True, None),
    ("one_item", 3, 1, 128, 1, 1, 128, True, [[3, 125]]),
    ("random_packed_d128_gqa2", 4, 2, 384, 4, 2, 128, True, "random"),
]


def _case_inputs(case):
    """((q, k, v, do), segment ids, causal) of a CASES entry."""
    _, seed, B, S, H, K, D, causal, lengths = case
    if lengths == "random":
        seg = random_segments(np.random.default_rng(seed), B, S, max_docs=8)
    else:
        seg = None if lengths is None else segments_from_lengths(*lengths)
    return random_qkv(seed, B, S, H, K, D), seg, causal


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_persistent_forward_equals_the_per_tile_forward(case):
    (q, k, v, _), seg, causal = _case_inputs(case)
    S = q.shape[1]
    per_tile, persistent = _both_ways(q, k, v, seg, causal)
    for name, x, p in zip(("out", "lse"), per_tile, persistent):
        np.testing.assert_array_equal(np.asarray(p, np.float32), np.asarray(x, np.float32),
                                      err_msg=name)
    ref = reference_attention(q.astype(jnp.float32), k.astype(jnp.float32), v.astype(jnp.float32),
                              seg, causal=causal)
    assert rel_err(persistent[0][:, :S], ref) < OUT_RTOL


# The persistent dK/dV (mgpu_backward_persistent) runs the per-tile kernel's math
# (mgpu_backward.consume_key_tile) on each key tile: dK and dV equal bit for bit. The cases:
# 12 items over 3 programs (4 each: both K/V slots reused, the query ring running on across
# items), 4 items non-causal, and a single item.
DKV_CASES = [c for c in CASES if c[0] in ("random_packed_d128_gqa2", "bidirectional_d128_two_rows",
                                          "plain_causal_gqa8_ragged_length")]


@pytest.mark.parametrize("case", DKV_CASES, ids=[c[0] for c in DKV_CASES])
def test_persistent_dkv_equals_the_per_tile_dkv(case):
    from dsllm.kernels import mgpu_backward, mgpu_backward_persistent
    (q, k, v, do), seg, causal = _case_inputs(case)
    B, S, _, D = q.shape
    blocks = Blocks(dkv_kernel="persistent", backward="split")
    plan = make_plan(seg, B, S, causal=causal, blocks=blocks)
    Sp = padded_length(S, blocks)
    q, k, v, do = (jnp.pad(x, ((0, 0), (0, Sp - S), (0, 0), (0, 0))) for x in (q, k, v, do))
    do = do.astype(q.dtype)
    kv_start, kv_end, q_start, q_end = plan.ranges
    kw = dict(sm_scale=D ** -0.5, blocks=blocks, interpret=plgpu.InterpretGPUParams())
    out, lse = mgpu_forward.forward(q, k, v, kv_start, kv_end, plan.fwd_bounds, **kw)
    delta = mgpu_backward.delta_of(out, do)
    args = (q, k, v, do, lse, delta, q_start, q_end)
    per_tile = mgpu_backward.dkv(*args, plan.dkv_bounds, **kw)
    persistent = mgpu_backward_persistent.dkv(
        *args, sched.tile_table(plan.dkv_bounds, COMPUTE_WGS), max_programs=INTERPRET_PROGRAMS,
        **kw)
    for name, x, p in zip(("dk", "dv"), per_tile, persistent):
        assert float(jnp.abs(x.astype(jnp.float32)).max()) > 0, name   # a real comparison
        np.testing.assert_array_equal(np.asarray(p, np.float32), np.asarray(x, np.float32),
                                      err_msg=name)


def test_dkv_kernel_auto_is_persistent_for_mha_only_and_forced_values_hold():
    # "auto": the persistent dK/dV when each KV head serves one query head, per-tile under GQA
    # (NOTES.md v11: per-tile 1.17x on the 67B's GQA 8).
    assert Blocks().persistent_dkv(groups=1)
    assert not Blocks().persistent_dkv(groups=2)
    assert not Blocks().persistent_dkv(groups=8)
    assert Blocks(dkv_kernel="persistent").persistent_dkv(groups=8)
    assert not Blocks(dkv_kernel="per_tile").persistent_dkv(groups=1)
    with pytest.raises(ValueError, match="Blocks.dkv_kernel='tiled'"):
        Blocks(dkv_kernel="tiled")
