"""Flash-attention backward for Hopper in Pallas Mosaic GPU: a dQ and a dK/dV kernel.

Split and deterministic (no atomics): each output block is owned by one program.
Both kernels recompute P = exp2(S * scale * log2 e - lse) from the forward's
base-2 log-sum-exp, and take delta = rowsum(dO * O) computed in XLA.

dQ: one program per (query head, 2 * block_q query rows, batch row); warpgroups
0/1 own block_q rows each (Q, dO resident in SMEM), warpgroup 2 streams K/V
blocks [lo, hi). dQ = scale * sum_j dS_j K_j.

dK/dV: one program per (key/value head, 2 * block_kv_dkv key rows, batch row);
K, V resident; warpgroup 2 streams, for each of the G query heads of this
key/value head in turn, the Q, dO, lse and delta blocks [lo, hi) that can see
these keys. dV = sum P^T dO and dK = scale * sum dS^T Q are accumulated over all
G heads in registers, so GQA needs no [B, S, H, D] intermediate and no XLA sum.
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import block_math as bm
from dsllm.kernels import mgpu_common as mc
from dsllm.kernels.mgpu_pipeline import produce, produce_kv_blocks


def _dq_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, kv_start_ref, kv_end_ref,
               bounds_ref, dq_ref,
               q_smems, do_smems, k_smems, v_smems,
               q_bars, do_bars, k_bars, v_bars, k_consumed, v_consumed,
               *, bq, bkv, stages, groups, sm_scale, interpret):
    D = q_ref.shape[-1]
    b = lax.axis_index("batch")
    h = lax.axis_index("heads")
    # Causal: later query tiles have more work; run them first to shorten the tail.
    t = q_ref.shape[1] // (mc.COMPUTE_WGS * bq) - 1 - lax.axis_index("q_tiles")
    wg = lax.axis_index("wg")
    scale2 = sm_scale * bm.LOG2E

    @pl.when(wg < mc.COMPUTE_WGS)
    @mc.scope("dq_tile")
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")
        chunk = t * mc.COMPUTE_WGS + wg
        rows = pl.ds(chunk * bq, bq)
        q_smem, do_smem = q_smems.at[wg], do_smems.at[wg]
        plgpu.copy_gmem_to_smem(q_ref.at[b, rows, h], q_smem, q_bars.at[wg])
        plgpu.copy_gmem_to_smem(do_ref.at[b, rows, h], do_smem, do_bars.at[wg])

        bounds = tuple(bounds_ref[b, chunk, i] for i in range(len(bm.BOUNDS)))
        lo = bounds[0]
        row_start = mc.load_vector(kv_start_ref.at[b, rows], mc.WGMMA_ROW)
        row_end = mc.load_vector(kv_end_ref.at[b, rows], mc.WGMMA_ROW)
        lse = mc.load_vector(lse_ref.at[b, h, rows], mc.WGMMA_ROW)
        delta = mc.load_vector(delta_ref.at[b, h, rows], mc.WGMMA_ROW)
        dq = plgpu.layout_cast(jnp.zeros((bq, D), jnp.float32), mc.WGMMA)
        plgpu.barrier_wait(q_bars.at[wg])
        plgpu.barrier_wait(do_bars.at[wg])

        @mc.scope("pass", mc.BLOCKS)
        def pass_fn(ki, dq):
            """Another warpgroup's block: awaited and released, no math."""
            slot = lax.rem(ki - lo, stages)
            plgpu.barrier_wait(k_bars.at[slot])
            plgpu.barrier_wait(v_bars.at[slot])
            plgpu.barrier_arrive(v_consumed.at[slot])
            plgpu.barrier_arrive(k_consumed.at[slot])
            return dq

        def step_fn(ki, dq, *, mask_start, mask_end, key_offset=None):
            slot = lax.rem(ki - lo, stages)
            own = mc.per_step(wg, ki)
            q_smem, do_smem = q_smems.at[own], do_smems.at[own]
            k_smem = mc.block_part(k_smems.at[slot], key_offset, bkv)
            v_smem = mc.block_part(v_smems.at[slot], key_offset, bkv)
            shape = (bq, k_smem.shape[0])

            def s_and_dp(s_ref, dp_ref):
                # Issue both matmuls, then compute P from S while dP is still in flight.
                plgpu.barrier_wait(k_bars.at[slot])
                plgpu.wgmma(s_ref, q_smem, k_smem.T)
                plgpu.barrier_wait(v_bars.at[slot])
                plgpu.wgmma(dp_ref, do_smem, v_smem.T)
                s = mc.mask_block(plgpu.wgmma_accumulator_load(s_ref, wait_n=1),
                                  row_start, row_end, ki * bkv + (key_offset or 0),
                                  mask_start=mask_start, mask_end=mask_end)
                p = bm.probs_from_lse(s, lse, 0, scale2)
                return p, dp_ref[...]
            with mc.scope("s_dp", mc.BLOCKS):
                p, dp = pl.run_scoped(s_and_dp, plgpu.ACC(shape, jnp.float32),
                                      plgpu.ACC(shape, jnp.float32))
            plgpu.barrier_arrive(v_consumed.at[slot])
            with mc.scope("dlogits", mc.BLOCKS):
                ds = bm.dlogits(p, dp, delta, 0)
            with mc.scope("accumulate", mc.BLOCKS):
                dq = mc.mma_accumulate(dq, ds.astype(k_smems.dtype), k_smem, interpret=interpret)
            plgpu.barrier_arrive(k_consumed.at[slot])
            return dq

        dq = mc.over_own_blocks(step_fn, pass_fn, bounds, dq, block=bkv)

        with mc.scope("store"):
            q_smem[...] = (dq * sm_scale).astype(q_smem.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(q_smem, dq_ref.at[b, rows, h])
            plgpu.wait_smem_to_gmem(0)

    @pl.when(wg == mc.COMPUTE_WGS)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")
        kv_head = lax.div(h, groups)
        chunk = t * mc.COMPUTE_WGS
        lo, hi = bounds_ref[b, chunk, 0], bounds_ref[b, chunk, 1]
        produce_kv_blocks(k_ref, v_ref, k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed,
                          b=b, kv_head=kv_head, lo=lo, hi=hi, bkv=bkv, stages=stages)


def probs_and_dlogits(k_smem, v_smem, ring, slot, qi, row_start, row_end, *, scale2,
                      mask_start, mask_end):
    """(P^T, dS^T) [keys, queries] fp32 of a warpgroup's resident keys against query block qi
    in ring slot `slot` (its lse and delta awaited here too)."""
    q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars, _ = ring
    shape = (k_smem.shape[0], q_smems.shape[1])   # transposed tile: key rows, query columns

    def p_and_dp(s_ref, dp_ref):
        # Issue S^T = K Q^T and dP^T = V dO^T together; P^T from S^T overlaps dP^T.
        plgpu.barrier_wait(q_bars.at[slot])
        plgpu.wgmma(s_ref, k_smem, q_smems.at[slot].T)
        plgpu.barrier_wait(do_bars.at[slot])
        plgpu.wgmma(dp_ref, v_smem, do_smems.at[slot].T)
        plgpu.barrier_wait(lse_bars.at[slot])
        lse = mc.load_vector(lse_smems.at[slot], mc.WGMMA_COL)
        s = mc.mask_block(plgpu.wgmma_accumulator_load(s_ref, wait_n=1), row_start, row_end,
                          qi * shape[1], mask_start=mask_start, mask_end=mask_end)
        p = bm.probs_from_lse(s, lse, 1, scale2)
        return p, dp_ref[...]
    with mc.scope("s_dp", mc.BLOCKS):
        p, dp = pl.run_scoped(p_and_dp, plgpu.ACC(shape, jnp.float32),
                              plgpu.ACC(shape, jnp.float32))
    with mc.scope("dlogits", mc.BLOCKS):
        plgpu.barrier_wait(delta_bars.at[slot])
        delta = mc.load_vector(delta_smems.at[slot], mc.WGMMA_COL)
        return p, bm.dlogits(p, dp, delta, 1)


def consume_key_tile(k_smems, v_smems, wg, ring, row_start, row_end, bounds, *, groups, stages,
                     sm_scale, interpret, first_step=0, after_first_block=None):
    """A compute warpgroup's pass over one key tile: for each of the `groups` query heads of
    its key/value head, query blocks lo..hi-1 (Q, dO, lse, delta) from the ring.

    ring = (q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars,
    consumed); block qi of head g uses ring step first_step + g * (hi - lo) + qi - lo (the
    persistent kernel's ring runs on across tiles). bounds: the chunk's block_math.block_bounds
    row; the warpgroup computes its own blocks [own_lo, own_hi) and lets the tile's others
    pass. K and V are k_smems[wg] and v_smems[wg]; the caller has waited for them. Returns
    (dk, dv), dk not yet scaled. after_first_block runs once, after the first own block of the
    first head (there is always one: every key is attended by at least its own row).
    """
    q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars, consumed = ring
    lo, hi = bounds[:2]
    bkv, D = k_smems.shape[1:]
    bq = q_smems.shape[1]
    scale2 = sm_scale * bm.LOG2E
    dk = plgpu.layout_cast(jnp.zeros((bkv, D), jnp.float32), mc.WGMMA)
    dv = plgpu.layout_cast(jnp.zeros((bkv, D), jnp.float32), mc.WGMMA)

    own_lo = bounds[bm.BOUNDS.index("own_lo")]

    def step_fn(qi, carry, *, g, mask_start, mask_end):
        dk, dv = carry
        slot = lax.rem(first_step + g * (hi - lo) + qi - lo, stages)
        own = mc.per_step(wg, qi)
        p, ds = probs_and_dlogits(k_smems.at[own], v_smems.at[own], ring, slot, qi, row_start, row_end,
                                  scale2=scale2, mask_start=mask_start, mask_end=mask_end)
        with mc.scope("accumulate", mc.BLOCKS):
            dv, dk = mc.mma_accumulate_pair(dv, p.astype(do_smems.dtype), do_smems.at[slot],
                                            dk, ds.astype(q_smems.dtype), q_smems.at[slot],
                                            interpret=interpret)
        plgpu.barrier_arrive(consumed.at[slot])
        if after_first_block is not None:
            pl.when((g == 0) & (qi == own_lo))(after_first_block)
        return dk, dv

    @mc.scope("pass", mc.BLOCKS)
    def pass_fn(qi, carry, *, g):
        """Query block of the other warpgroup's rows only: awaited and released, no math."""
        slot = lax.rem(first_step + g * (hi - lo) + qi - lo, stages)
        for bars in (q_bars, do_bars, lse_bars, delta_bars):
            plgpu.barrier_wait(bars.at[slot])
        plgpu.barrier_arrive(consumed.at[slot])
        return carry

    def head_fn(g, carry):
        # No half blocks: the streamed query blocks are already 64 rows.
        return mc.over_own_blocks(functools.partial(step_fn, g=g), functools.partial(pass_fn, g=g),
                                  bounds, carry, block=bq, halves=False)

    return lax.fori_loop(0, groups, head_fn, (dk, dv))


def issue_query_block(q_ref, do_ref, lse_ref, delta_ref, ring, *, b, hq, qi, slot, bq):
    """The producer's copies of query block qi of query head hq into ring slot `slot`."""
    q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars, _ = ring
    cols = pl.ds(qi * bq, bq)
    plgpu.copy_gmem_to_smem(q_ref.at[b, cols, hq], q_smems.at[slot], q_bars.at[slot])
    plgpu.copy_gmem_to_smem(lse_ref.at[b, hq, cols], lse_smems.at[slot], lse_bars.at[slot])
    plgpu.copy_gmem_to_smem(do_ref.at[b, cols, hq], do_smems.at[slot], do_bars.at[slot])
    plgpu.copy_gmem_to_smem(delta_ref.at[b, hq, cols], delta_smems.at[slot], delta_bars.at[slot])


def _dkv_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, q_start_ref, q_end_ref,
                bounds_ref, dk_ref, dv_ref,
                k_smems, v_smems, q_smems, do_smems, lse_smems, delta_smems,
                k_bars, v_bars, q_bars, do_bars, lse_bars, delta_bars, consumed,
                *, bq, bkv, stages, groups, sm_scale, interpret):
    b = lax.axis_index("batch")
    kv_head = lax.axis_index("kv_heads")
    t = lax.axis_index("kv_tiles")
    wg = lax.axis_index("wg")
    ring = (q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars,
            consumed)

    @pl.when(wg < mc.COMPUTE_WGS)
    @mc.scope("dkv_tile")
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")
        chunk = t * mc.COMPUTE_WGS + wg
        rows = pl.ds(chunk * bkv, bkv)
        k_smem, v_smem = k_smems.at[wg], v_smems.at[wg]
        plgpu.copy_gmem_to_smem(k_ref.at[b, rows, kv_head], k_smem, k_bars.at[wg])
        plgpu.copy_gmem_to_smem(v_ref.at[b, rows, kv_head], v_smem, v_bars.at[wg])

        bounds = tuple(bounds_ref[b, chunk, i] for i in range(len(bm.BOUNDS)))
        row_start = mc.load_vector(q_start_ref.at[b, rows], mc.WGMMA_ROW)
        row_end = mc.load_vector(q_end_ref.at[b, rows], mc.WGMMA_ROW)
        plgpu.barrier_wait(k_bars.at[wg])
        plgpu.barrier_wait(v_bars.at[wg])
        dk, dv = consume_key_tile(k_smems, v_smems, wg, ring, row_start, row_end, bounds,
                                  groups=groups, stages=stages, sm_scale=sm_scale,
                                  interpret=interpret)
        store_dk_dv(dk * sm_scale, dv, k_smem, v_smem, dk_ref.at[b, rows, kv_head],
                    dv_ref.at[b, rows, kv_head])

    @pl.when(wg == mc.COMPUTE_WGS)
    def _memory():
        produce_query_blocks(q_ref, do_ref, lse_ref, delta_ref, bounds_ref, ring, b=b,
                             kv_head=kv_head, t=t, bq=bq, groups=groups, stages=stages)


def store_dk_dv(dk, dv, k_smem, v_smem, dk_dst, dv_dst, *, wait=True):
    """A compute warpgroup's finished dK and dV (fp32, dK scaled) to GMEM through the SMEM of
    its K and V, which no matmul reads any more; wait=False leaves the copies in flight (the
    caller awaits them before K and V's SMEM is rewritten)."""
    with mc.scope("store"):
        k_smem[...] = dk.astype(k_smem.dtype)
        v_smem[...] = dv.astype(v_smem.dtype)
        plgpu.commit_smem()
        plgpu.copy_smem_to_gmem(k_smem, dk_dst)
        plgpu.copy_smem_to_gmem(v_smem, dv_dst)
        if wait:
            plgpu.wait_smem_to_gmem(0)


def produce_query_blocks(q_ref, do_ref, lse_ref, delta_ref, bounds_ref, ring, *, b, kv_head, t,
                         bq, groups, stages, registers=mc.MEMORY_REGISTERS):
    """The producer warpgroup of a key tile's program: for each of the `groups` query heads
    of kv_head in turn, query blocks [lo, hi) of the tile (Q, dO, lse, delta) into the ring."""
    plgpu.set_max_registers(registers, action="decrease")
    chunk = t * mc.COMPUTE_WGS
    lo, hi = bounds_ref[b, chunk, 0], bounds_ref[b, chunk, 1]
    n_q = hi - lo
    consumed = ring[-1]

    def issue(step, slot):
        issue_query_block(q_ref, do_ref, lse_ref, delta_ref, ring, b=b,
                          hq=kv_head * groups + lax.div(step, n_q),
                          qi=lo + lax.rem(step, n_q), slot=slot, bq=bq)

    produce(groups * n_q, [(consumed, issue)], stages)


def common_kwargs(interpret):
    return dict(num_threads=mc.COMPUTE_WGS + 1, thread_name="wg",
                compiler_params=mc.compiler_params(), interpret=interpret)


def delta_of(out, do):
    """delta = rowsum(dO * O), [B, H, S] float32 (sequence minor, for 1-D TMA)."""
    return jnp.einsum("bshd,bshd->bhs", out.astype(jnp.float32), do.astype(jnp.float32))


def dq(q, k, v, do, lse, delta, kv_start, kv_end, bounds, *, sm_scale, blocks, interpret):
    """dQ; shapes as in mgpu_forward.forward, bounds = plan.AttentionPlan.dq_bounds."""
    B, S, H, D = q.shape
    groups = H // k.shape[2]
    flag = bool(interpret)
    bq, bkv = blocks.block_q, blocks.block_kv_dq
    stages = min(blocks.stages, S // bkv)
    return plgpu.kernel(
        functools.partial(_dq_kernel, bq=bq, bkv=bkv, stages=stages, groups=groups,
                          sm_scale=sm_scale, interpret=flag),
        out_type=jax.ShapeDtypeStruct(q.shape, q.dtype),
        scratch_types=(
            mc.tiled_smem((mc.COMPUTE_WGS, bq, D), q.dtype),
            mc.tiled_smem((mc.COMPUTE_WGS, bq, D), do.dtype),
            mc.tiled_smem((stages, bkv, D), k.dtype),
            mc.tiled_smem((stages, bkv, D), v.dtype),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
        ),
        grid=(H, S // (mc.COMPUTE_WGS * bq), B),
        grid_names=("heads", "q_tiles", "batch"),
        **common_kwargs(interpret),
    )(q, k, v, do, lse, delta, kv_start, kv_end, bounds)


def dkv(q, k, v, do, lse, delta, q_start, q_end, bounds, *, sm_scale, blocks, interpret):
    """(dK, dV), one program per key tile; bounds = plan.AttentionPlan.dkv_bounds."""
    B, S, H, D = q.shape
    K = k.shape[2]
    groups = H // K
    flag = bool(interpret)
    bq, bkv = blocks.block_q_dkv, blocks.block_kv_dkv
    stages = min(blocks.stages, S // bq)
    return plgpu.kernel(
        functools.partial(_dkv_kernel, bq=bq, bkv=bkv, stages=stages, groups=groups,
                          sm_scale=sm_scale, interpret=flag),
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
        scratch_types=(
            mc.tiled_smem((mc.COMPUTE_WGS, bkv, D), k.dtype),
            mc.tiled_smem((mc.COMPUTE_WGS, bkv, D), v.dtype),
            mc.tiled_smem((stages, bq, D), q.dtype),
            mc.tiled_smem((stages, bq, D), do.dtype),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=mc.COMPUTE_WGS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=mc.COMPUTE_WGS, num_barriers=stages),
        ),
        grid=(K, S // (mc.COMPUTE_WGS * bkv), B),
        grid_names=("kv_heads", "kv_tiles", "batch"),
        **common_kwargs(interpret),
    )(q, k, v, do, lse, delta, q_start, q_end, bounds)
