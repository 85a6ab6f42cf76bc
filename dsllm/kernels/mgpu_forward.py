"""Flash-attention forward for Hopper in Pallas Mosaic GPU (FA3 structure).

One program per (query head, tile of 2 * block_q rows, batch row). Warpgroups 0
and 1 each own block_q query rows; warpgroup 2 streams K/V blocks by TMA through
a `stages`-deep SMEM ring (the GQA key/value head is q_head // G, never repeated).
The two compute warpgroups ping-pong on a schedule barrier so that one's softmax
overlaps the other's matmuls. The stream covers only blocks [lo, hi) that hold an
allowed key for some row of the tile (causal and document bounds from
block_math.block_bounds, precomputed in plan.py); each warpgroup computes only the blocks
its own rows need (the needed half of its first and last), and the mask is applied only
outside [inner_lo, inner_hi).

Outputs: out [B, S, H, D] and the base-2 log-sum-exp of the scaled logits,
[B, H, S] float32 (sequence minor, so 1-D TMA copies it).
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_common as mc
from dsllm.kernels.mgpu_pipeline import produce_kv_blocks


def consume_tile(q_smem, ring, schedule, row_start, row_end, bounds, first_step, *,
                 bkv, stages, sm_scale, interpret, after_first_block=None):
    """A compute warpgroup's pass over one query tile: K/V blocks lo..hi-1 from the ring.

    Shared by the per-tile and the persistent forward. ring = (k_smems, v_smems, k_bars,
    v_bars, k_consumed, v_consumed); block ki uses ring step first_step + ki - lo (the
    persistent kernel's ring runs on across tiles). bounds: the chunk's row of
    block_math.block_bounds (BOUNDS). The warpgroup computes its own blocks [own_lo, own_hi),
    the first or last of them on half the keys where half_head / half_tail say so, and lets
    the tile's other blocks pass: it still awaits them and releases them, and keeps the
    ping-pong schedule in step with the other warpgroup.
    The caller has waited for Q. Returns (out, lse) of the chunk.
    after_first_block runs once, after the first own block's S = Q K^T (there is always one:
    every row attends at least itself).
    """
    k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed = ring
    lo, hi = bounds[:2]
    own_lo = bounds[bm.BOUNDS.index("own_lo")]
    bq, D = q_smem.shape
    scale2 = sm_scale * bm.LOG2E
    m = plgpu.layout_cast(jnp.full((bq,), -jnp.inf, jnp.float32), mc.WGMMA_ROW)
    l = plgpu.layout_cast(jnp.zeros((bq,), jnp.float32), mc.WGMMA_ROW)
    acc = plgpu.layout_cast(jnp.zeros((bq, D), jnp.float32), mc.WGMMA)

    def slot_of(ki):
        return lax.rem(first_step + ki - lo, stages)

    def wait_next_k(ki):
        @pl.when(ki + 1 < hi)
        def _():
            plgpu.barrier_wait(k_bars.at[slot_of(ki + 1)])

    with mc.scope("first_k"):
        plgpu.barrier_wait(k_bars.at[slot_of(lo)])   # hi > lo: every row attends itself

    def pass_fn(ki, carry):
        """Another warpgroup's block: the same waits, releases and schedule syncs, no math."""
        slot = slot_of(ki)
        with mc.scope("pass", mc.BLOCKS):
            mc.sync(schedule)
            plgpu.barrier_arrive(k_consumed.at[slot])
            plgpu.barrier_arrive(schedule)
            plgpu.barrier_wait(v_bars.at[slot])
            plgpu.barrier_wait(schedule)
            wait_next_k(ki)
            plgpu.barrier_arrive(v_consumed.at[slot])
        return carry

    def step_fn(ki, carry, *, mask_start, mask_end, key_offset=None):
        """Block ki, or with key_offset its bkv // 2 keys from there."""
        acc, m, l = carry
        slot = slot_of(ki)
        k_smem = mc.block_part(k_smems.at[slot], key_offset, bkv)
        v_smem = mc.block_part(v_smems.at[slot], key_offset, bkv)
        width = k_smem.shape[0]

        def qk(acc_ref):
            with mc.scope("qk", mc.BLOCKS):
                plgpu.wgmma(acc_ref, q_smem, k_smem.T)
            with mc.scope("sync", mc.BLOCKS):
                mc.sync(schedule)   # let the other warpgroup's softmax run meanwhile
            with mc.scope("s_wait", mc.BLOCKS):
                return acc_ref[...]
        s = pl.run_scoped(qk, plgpu.ACC((bq, width), jnp.float32))
        plgpu.barrier_arrive(k_consumed.at[slot])
        if after_first_block is not None:
            pl.when(ki == own_lo)(after_first_block)

        with mc.scope("softmax", mc.BLOCKS):
            s = mc.mask_block(s, row_start, row_end, ki * bkv + (key_offset or 0),
                              mask_start=mask_start, mask_end=mask_end)
            p, m, l, alpha = bm.softmax_update(s, m, l, scale2)
            acc = acc * mc.bcast(alpha, acc.shape, 0)
            p16 = p.astype(v_smems.dtype)
            acc, m, l, p16 = lax.optimization_barrier((acc, m, l, p16))

        with mc.scope("turn", mc.BLOCKS):
            plgpu.barrier_arrive(schedule)          # softmax done
            plgpu.barrier_wait(v_bars.at[slot])
            plgpu.barrier_wait(schedule)            # tensor cores are ours again

        with mc.scope("pv", mc.BLOCKS):
            acc = mc.mma_accumulate(acc, p16, v_smem, interpret=interpret,
                                    after_issue=lambda: wait_next_k(ki))
            plgpu.barrier_arrive(v_consumed.at[slot])
        return acc, m, l

    acc, m, l = mc.over_own_blocks(step_fn, pass_fn, bounds, (acc, m, l), block=bkv)
    with mc.scope("finalize"):
        return bm.finalize(acc, m, l)


def _kernel(q_ref, k_ref, v_ref, kv_start_ref, kv_end_ref, bounds_ref,
            o_ref, lse_ref,
            q_smems, k_smems, v_smems, lse_smems,
            q_bars, k_bars, v_bars, k_consumed, v_consumed, schedule,
            *, bq, bkv, stages, groups, sm_scale, interpret):
    b = lax.axis_index("batch")
    h = lax.axis_index("heads")
    # Causal: later query tiles have more work; run them first to shorten the tail.
    t = q_ref.shape[1] // (mc.COMPUTE_WGS * bq) - 1 - lax.axis_index("q_tiles")
    wg = lax.axis_index("wg")

    @pl.when(wg < mc.COMPUTE_WGS)
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")
        chunk = t * mc.COMPUTE_WGS + wg
        rows = pl.ds(chunk * bq, bq)
        q_smem = q_smems.at[wg]
        plgpu.copy_gmem_to_smem(q_ref.at[b, rows, h], q_smem, q_bars.at[wg])

        bounds = tuple(bounds_ref[b, chunk, i] for i in range(len(bm.BOUNDS)))
        row_start = mc.load_vector(kv_start_ref.at[b, rows], mc.WGMMA_ROW)
        row_end = mc.load_vector(kv_end_ref.at[b, rows], mc.WGMMA_ROW)
        plgpu.barrier_wait(q_bars.at[wg])
        pl.when(wg == 1)(lambda: mc.sync(schedule))
        ring = (k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed)
        out, lse = consume_tile(q_smem, ring, schedule, row_start, row_end, bounds, 0,
                                bkv=bkv, stages=stages, sm_scale=sm_scale, interpret=interpret)
        pl.when(wg == 0)(lambda: mc.sync(schedule))

        q_smem[...] = out.astype(q_smem.dtype)   # Q is no longer needed: reuse its SMEM
        lse_smems.at[wg][...] = lse
        plgpu.commit_smem()
        plgpu.copy_smem_to_gmem(q_smem, o_ref.at[b, rows, h])
        plgpu.copy_smem_to_gmem(lse_smems.at[wg], lse_ref.at[b, h, rows])
        plgpu.wait_smem_to_gmem(0)

    @pl.when(wg == mc.COMPUTE_WGS)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")
        kv_head = lax.div(h, groups)
        chunk = t * mc.COMPUTE_WGS
        lo, hi = bounds_ref[b, chunk, 0], bounds_ref[b, chunk, 1]
        produce_kv_blocks(k_ref, v_ref, k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed,
                          b=b, kv_head=kv_head, lo=lo, hi=hi, bkv=bkv, stages=stages)


def forward(q, k, v, kv_start, kv_end, bounds, *, sm_scale, blocks, interpret):
    """q [B,S,H,D], k/v [B,S,K,D] (S a multiple of blocks.seq_multiple) -> (out, lse [B,H,S]).

    bounds: the forward's block bounds (plan.AttentionPlan.fwd_bounds)."""
    B, S, H, D = q.shape
    K = k.shape[2]
    bq, bkv, stages = blocks.block_q, blocks.block_kv, blocks.stages
    tile = mc.COMPUTE_WGS * bq
    stages = min(stages, S // bkv)
    kernel = functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, groups=H // K,
                               sm_scale=sm_scale, interpret=bool(interpret))
    return plgpu.kernel(
        kernel,
        out_type=(jax.ShapeDtypeStruct(q.shape, q.dtype),
                  jax.ShapeDtypeStruct((B, H, S), jnp.float32)),
        scratch_types=(
            mc.tiled_smem((mc.COMPUTE_WGS, bq, D), q.dtype),
            mc.tiled_smem((stages, bkv, D), k.dtype),
            mc.tiled_smem((stages, bkv, D), v.dtype),
            plgpu.SMEM((mc.COMPUTE_WGS, bq), jnp.float32),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS),
        ),
        grid=(H, S // tile, B),
        grid_names=("heads", "q_tiles", "batch"),
        num_threads=mc.COMPUTE_WGS + 1,
        thread_name="wg",
        compiler_params=mc.compiler_params(),
        interpret=interpret,
    )(q, k, v, kv_start, kv_end, bounds)
