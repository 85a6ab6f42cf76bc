"""Fused flash-attention backward for Hopper: dK, dV and dQ in one pass over the key tiles.

One program per (key/value head, 2 * block_kv_dkv key rows, batch row), as mgpu_backward's
dK/dV kernel, whose steps it extends (FA3's design). Once warpgroup w has P^T and dS^T
[its 64 keys, 64 queries] of a query block, it also writes dS^T (bf16) to SMEM; when both
warpgroups have, each computes half the block's dQ columns,
  dQ[:, half w] = dS [64 queries, 128 keys] K[:, half w],
and adds them by a TMA reduce-add into an fp32 dQ accumulator in GMEM (zeroed before the
kernel, scaled and cast after it). 5 matmuls per block instead of the split backward's 7,
for 32 KB of reduce-adds per block. Not bitwise deterministic: the reduce-adds into a dQ
row arrive in a varying order (fp32 sums, differences at rounding level).

Measured on the H200 (NOTES.md v7): +6% forward+backward against the split kernels on dense
causal rows (B4 S4096 H32 D128), -7% on packed rows of ~512-token documents, where its
untrimmed query blocks are 10% more work (see use_fused). At head_dim 64 (v13): +1.2% on
dense rows (B4 S4096 H64), -1.3% on packed ones (GQA 4, ~8 documents a row). It runs with its
own register split (COMPUTE_REGISTERS, MEMORY_REGISTERS): at mgpu_common's 232/40, ptxas
spills 52 bytes per thread; at 240/24, none (bench/ptxas_report). At head_dim 128 the other
split of dQ, each warpgroup its own keys with twice the reduce-adds, measured 4% slower than
this one ("keys", NOTES.md v6 and v7); it is what head_dim 64 runs (below).

At head_dim 64 half of dQ's columns would split K's 64-wide swizzle tile, so there each
warpgroup computes all of dQ's columns from its own keys instead,
  dQ += dS [64 queries, its 64 keys] K[its keys, :],
and both reduce-add them into the same rows: the same 16 KB per warpgroup and block as at
head_dim 128, and no rendezvous (a warpgroup reads only its own dS^T and K).

Both warpgroups compute every query block [lo, hi) of their tile (the dQ step needs both
halves of dS), so the trimmed own ranges of block_math.block_bounds are not used; the
masks cover what trimming would skip.

In the interpreter, which has no TMA reductions, the reduce-add is a read-add-write
(the interpreter runs programs one after another; at head_dim 128 the two warpgroups'
columns differ, at 64 they take turns).
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_common as mc
from dsllm.kernels.mgpu_backward import (common_kwargs, probs_and_dlogits, produce_query_blocks,
                                         store_dk_dv)

HEAD_DIMS = (64, 128)
# Registers per consumer warpgroup and for the producer (2 x 240 + 24 per thread x 128 threads
# fits the SM's 64K): at 240 ptxas keeps everything in registers (ptxas_report).
COMPUTE_REGISTERS = 240
MEMORY_REGISTERS = 24
# The fused kernel runs when its blocks exceed the split dK/dV kernel's trimmed blocks by at
# most this fraction: dense causal rows visit 1.5% more (fused measured +6%), the bench's
# packed rows of ~512-token documents 9.8% more (fused measured -7%).
MAX_EXTRA_BLOCKS = 0.05


def dq_by_columns(head_dim):
    """Whether each warpgroup computes half of dQ's columns from both warpgroups' dS^T (head_dim
    128: its half is one 64-wide swizzle tile of K) rather than all of them from its own."""
    return head_dim > 64


def use_fused(dkv_bounds):
    """Whether the fused kernel should run for plan.dkv_bounds (a traced bool): both its
    warpgroups visit their whole tile's query blocks [lo, hi), where the split kernel's visit
    only their own trimmed ones [own_lo, own_hi)."""
    tile = (dkv_bounds[..., 1] - dkv_bounds[..., 0]).sum()
    own = (dkv_bounds[..., 5] - dkv_bounds[..., 4]).sum()
    return tile <= (1 + MAX_EXTRA_BLOCKS) * own


def _kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, q_start_ref, q_end_ref, bounds_ref,
            dq_acc_ref, dk_ref, dv_ref,
            k_smems, v_smems, q_smems, do_smems, lse_smems, delta_smems, ds_smems, dq_smems,
            k_bars, v_bars, q_bars, do_bars, lse_bars, delta_bars, consumed, ds_written, dq_bars,
            *, bq, bkv, stages, groups, sm_scale, interpret):
    b = lax.axis_index("batch")
    kv_head = lax.axis_index("kv_heads")
    t = lax.axis_index("kv_tiles")
    wg = lax.axis_index("wg")
    ring = (q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars,
            consumed)

    @pl.when(wg < mc.COMPUTE_WGS)
    @mc.scope("fused_tile")
    def _compute():
        plgpu.set_max_registers(COMPUTE_REGISTERS, action="increase")
        chunk = t * mc.COMPUTE_WGS + wg
        rows = pl.ds(chunk * bkv, bkv)
        k_smem, v_smem = k_smems.at[wg], v_smems.at[wg]
        plgpu.copy_gmem_to_smem(k_ref.at[b, rows, kv_head], k_smem, k_bars.at[wg])
        plgpu.copy_gmem_to_smem(v_ref.at[b, rows, kv_head], v_smem, v_bars.at[wg])

        lo, hi, inner_lo, inner_hi = (bounds_ref[b, chunk, i] for i in range(4))
        row_start = mc.load_vector(q_start_ref.at[b, rows], mc.WGMMA_ROW)
        row_end = mc.load_vector(q_end_ref.at[b, rows], mc.WGMMA_ROW)
        for c in range(mc.COMPUTE_WGS):
            plgpu.barrier_wait(k_bars.at[c])   # the dQ step reads both warpgroups' K
        plgpu.barrier_wait(v_bars.at[wg])

        D = k_smem.shape[1]
        by_columns = dq_by_columns(D)
        width = D // mc.COMPUTE_WGS if by_columns else D
        cols = pl.ds(wg * width if by_columns else 0, width)   # this warpgroup's dQ columns
        scale2 = sm_scale * bm.LOG2E
        dk = plgpu.layout_cast(jnp.zeros((bkv, D), jnp.float32), mc.WGMMA)
        dv = plgpu.layout_cast(jnp.zeros((bkv, D), jnp.float32), mc.WGMMA)

        def step_fn(qi, carry, *, g, mask_start, mask_end):
            dk, dv = carry
            step = g * (hi - lo) + qi - lo
            slot = lax.rem(step, stages)
            own = mc.per_step(wg, qi)
            p, ds = probs_and_dlogits(k_smems.at[own], v_smems.at[own], ring, slot, qi,
                                      row_start, row_end,
                                      scale2=scale2, mask_start=mask_start, mask_end=mask_end)
            # Two dS buffers, by step parity: a warpgroup writes step s + 2's only after the
            # rendezvous of step s + 1, which the other passes only when done reading step s's.
            ds_pair = ds_smems.at[lax.rem(step, 2)]
            with mc.scope("ds_store", mc.BLOCKS):
                p, ds = p.astype(do_smems.dtype), ds.astype(q_smems.dtype)
                ds_pair.at[wg][...] = ds
                plgpu.commit_smem()   # the dS^T writes, before a wgmma reads them
            # dQ's operands: both warpgroups' dS^T and K (by columns), or this one's
            chunks = pl.ds(mc.per_step(0 if by_columns else wg, qi),
                           mc.COMPUTE_WGS if by_columns else 1)
            with mc.scope("accumulate", mc.BLOCKS):
                dv, dk, dq = _accumulate(dv, p, do_smems.at[slot], dk, ds, q_smems.at[slot],
                                         ds_pair.at[chunks], k_smems.at[chunks],
                                         ds_written if by_columns else None, cols,
                                         interpret=interpret)
            plgpu.barrier_arrive(consumed.at[slot])
            with mc.scope("reduce_add", mc.BLOCKS):
                _reduce_add(dq, dq_smems.at[wg], dq_bars.at[wg],
                            dq_acc_ref.at[b, pl.ds(qi * bq, bq), kv_head * groups + g, cols],
                            interpret=interpret, turns=None if by_columns else (wg, ds_written))
            return dk, dv

        def head_fn(g, carry):
            return mc.over_blocks(functools.partial(step_fn, g=g), (lo, hi, inner_lo, inner_hi),
                                  carry)

        dk, dv = lax.fori_loop(0, groups, head_fn, (dk, dv))
        if by_columns:
            mc.sync(ds_written)   # the other warpgroup's last dQ matmul has read our K
        store_dk_dv(dk * sm_scale, dv, k_smem, v_smem, dk_ref.at[b, rows, kv_head],
                    dv_ref.at[b, rows, kv_head])

    @pl.when(wg == mc.COMPUTE_WGS)
    def _memory():
        produce_query_blocks(q_ref, do_ref, lse_ref, delta_ref, bounds_ref, ring, b=b,
                             kv_head=kv_head, t=t, bq=bq, groups=groups, stages=stages,
                             registers=MEMORY_REGISTERS)


def _accumulate(dv, p, do_smem, dk, ds, q_smem, ds_smem, k_smem, ds_written, cols, *,
                interpret):
    """(dv + P^T dO, dk + dS^T Q, dQ[:, cols] = sum_c dS_c K_c[:, cols]) over the n key
    chunks of ds_smem [n, keys, queries] (dS^T) and k_smem [n, keys, D]: both warpgroups'
    (head_dim 128), or this one's (64, ds_written None). With both, the dQ matmul waits for
    the rendezvous on ds_written (the other warpgroup has written its dS^T), which the dV and
    dK matmuls overlap."""
    shape = (q_smem.shape[0], cols.size)
    n = ds_smem.shape[0]
    rendezvous = (lambda: None) if ds_written is None else (lambda: mc.sync(ds_written))
    if interpret:
        dot = lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32)
        dv = dv + dot(p, do_smem[...])
        dk = dk + dot(ds, q_smem[...])
        rendezvous()
        dq = sum(dot(ds_smem[c].T, k_smem[c, :, cols]) for c in range(n))
        return dv, dk, dq

    def dv_dk(refs):
        dv_ref, dk_ref = refs
        plgpu.wgmma(dv_ref, p, do_smem)
        plgpu.wgmma(dk_ref, ds, q_smem)
        rendezvous()
    # dV and dK are awaited before the dQ matmul is issued: the registers of P^T and dS^T
    # (their operands) are then free for dQ's accumulator. Issued together, the kernel
    # spilled (ptxas: 550-750 bytes per thread).
    dv, dk = pl.run_state(dv_dk)((plgpu.ACC.init(dv), plgpu.ACC.init(dk)))

    def dq_body(dq_ref):
        for c in range(n):
            plgpu.wgmma(dq_ref, ds_smem.at[c].T, k_smem.at[c].at[:, cols])
        return dq_ref[...]
    return dv, dk, pl.run_scoped(dq_body, plgpu.ACC(shape, jnp.float32))


def _reduce_add(dq, stage, bar, dst, *, interpret, turns=None):
    """dst += dq (fp32) by a TMA reduce-add through the SMEM `stage`. turns = (this
    warpgroup, a barrier both arrive on) when both add into the same dst: the interpreter's
    read-add-writes then take turns."""
    plgpu.wait_smem_to_gmem(0, wait_read_only=True)   # the last reduce-add has read the stage
    if interpret:   # no TMA reductions in the interpreter: read, add, write
        def read_add_write():
            plgpu.copy_gmem_to_smem(dst, stage, bar)
            plgpu.barrier_wait(bar)
            stage[...] = stage[...] + dq
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(stage, dst)
            plgpu.wait_smem_to_gmem(0)
        if turns is None:
            read_add_write()
            return
        wg, barrier = turns
        for turn in range(mc.COMPUTE_WGS):
            mc.sync(barrier)
            pl.when(wg == turn)(read_add_write)
        return
    stage[...] = dq
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(stage, dst, reduction_op="add")


def dkv_dq(q, k, v, do, lse, delta, q_start, q_end, bounds, *, sm_scale, blocks, interpret):
    """(dQ, dK, dV) in one kernel; bounds = plan.AttentionPlan.dkv_bounds."""
    B, S, H, D = q.shape
    if D not in HEAD_DIMS:
        raise ValueError(f"the fused backward needs a head_dim in {HEAD_DIMS}, got {D}: use "
                         f"Blocks(backward='split')")
    K = k.shape[2]
    groups = H // K
    bq, bkv = blocks.block_q_dkv, blocks.block_kv_dkv
    stages = min(blocks.stages, S // bq)
    dq_acc = jax.new_ref(jnp.zeros(q.shape, jnp.float32))
    f32_tiled = (plgpu.TilingTransform((8, 32)), plgpu.SwizzleTransform(128))
    dk, dv = plgpu.kernel(
        functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, groups=groups,
                          sm_scale=sm_scale, interpret=bool(interpret)),
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
        scratch_types=(
            mc.tiled_smem((mc.COMPUTE_WGS, bkv, D), k.dtype),
            mc.tiled_smem((mc.COMPUTE_WGS, bkv, D), v.dtype),
            mc.tiled_smem((stages, bq, D), q.dtype),
            mc.tiled_smem((stages, bq, D), do.dtype),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.SMEM((stages, bq), jnp.float32),
            mc.tiled_smem((2, mc.COMPUTE_WGS, bkv, bq), q.dtype),   # dS^T of two steps, both wgs
            plgpu.SMEM((mc.COMPUTE_WGS, bq, D // mc.COMPUTE_WGS if dq_by_columns(D) else D),
                       jnp.float32, transforms=f32_tiled),           # dQ stages
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS),   # ds_written (at 64, interpreter turns)
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),                         # interpreter only
        ),
        grid=(K, S // (mc.COMPUTE_WGS * bkv), B),
        grid_names=("kv_heads", "kv_tiles", "batch"),
        **common_kwargs(interpret),
    )(q, k, v, do, lse, delta, q_start, q_end, bounds, dq_acc)
    dq = (dq_acc[...] * sm_scale).astype(q.dtype)
    return dq, dk, dv
