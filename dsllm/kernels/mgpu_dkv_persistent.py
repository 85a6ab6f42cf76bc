"""Persistent dK/dV kernel for Hopper: one program per SM, looping over work items.

The dK/dV kernel of mgpu_backward (same math, shared: mgpu_backward.consume_key_tile)
as mgpu_forward_persistent is the forward: a program runs many (batch row, key tile,
key/value head) items in one of schedule.py's orders, dealt in a snake.
- The producer loads everything a compute warpgroup needs per item by TMA: its K and V
  rows, their query ranges (q_start, q_end) and the item's row of the tile table, into
  two slots, so item i+1's inputs land while item i runs. A slot is released once dK
  and dV, which reuse its K and V buffers, have been read out of SMEM by the stores,
  checked after the next item's first matmuls (when it no longer stalls).
- The ring of query blocks (Q, dO, lse, delta) runs on across items.
On packed rows a key tile sees ~10 query blocks of 64 per head, so the per-item fixed
cost (loading K/V, the first query blocks, storing dK/dV) weighs as in the forward.
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import mgpu_common as mc
from dsllm.kernels import schedule as sched
from dsllm.kernels.mgpu_backward import consume_key_tile, issue_query_block

KV_SLOTS = 2   # items whose inputs are resident at once: the running one and the next


def _kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, q_start_ref, q_end_ref, table_ref,
            dk_ref, dv_ref,
            k_smems, v_smems, start_smems, end_smems, row_smems,
            q_smems, do_smems, lse_smems, delta_smems,
            k_bars, v_bars, start_bars, end_bars, row_bars,
            q_bars, do_bars, lse_bars, delta_bars, consumed, kv_consumed,
            *, bq, bkv, stages, kv_heads, groups, tiles, order, n_items, programs, sm_scale,
            interpret):
    W = mc.COMPUTE_WGS
    program = lax.axis_index("programs")
    wg = lax.axis_index("wg")
    n_steps = sched.num_steps(program, n_items, programs)
    ring = (q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars,
            consumed)

    def item(step):
        w = sched.work_item(program, step, programs)
        return sched.item_coords(w, tiles=tiles, heads=kv_heads, order=order)

    @pl.when(wg < W)
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")

        def release_slot(step):
            """Item `step`'s dK/dV, stored from its slot, have been read out of SMEM: the
            producer may refill the slot."""
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            plgpu.barrier_arrive(kv_consumed.at[lax.rem(step, KV_SLOTS)])

        def item_fn(step, ring_step):
            _, kv_head = item(step)
            kslot = lax.rem(step, KV_SLOTS)
            wslot = kslot * W + wg
            plgpu.barrier_wait(row_bars.at[kslot])
            row = row_smems.at[kslot]
            b, t, lo, hi = (row[i] for i in range(sched.TABLE_FIXED))
            inner_lo = row[sched.TABLE_FIXED + 2 * wg]
            inner_hi = row[sched.TABLE_FIXED + 2 * wg + 1]
            plgpu.barrier_wait(start_bars.at[wslot])
            row_start = mc.load_vector(start_smems.at[kslot, wg], mc.WGMMA_ROW)
            plgpu.barrier_wait(end_bars.at[wslot])
            row_end = mc.load_vector(end_smems.at[kslot, wg], mc.WGMMA_ROW)
            k_smem, v_smem = k_smems.at[kslot, wg], v_smems.at[kslot, wg]
            plgpu.barrier_wait(k_bars.at[wslot])
            plgpu.barrier_wait(v_bars.at[wslot])

            def release_previous():
                # The previous item's stores had this item's first matmuls to read SMEM, so
                # waiting for them here rarely stalls (right after issuing them it would).
                pl.when(step > 0)(lambda: release_slot(step - 1))
            dk, dv = consume_key_tile(k_smem, v_smem, ring, row_start, row_end,
                                      (lo, hi, inner_lo, inner_hi), ring_step, groups=groups,
                                      stages=stages, sm_scale=sm_scale, interpret=interpret,
                                      after_first_block=release_previous)

            rows = pl.ds((t * W + wg) * bkv, bkv)
            k_smem[...] = (dk * sm_scale).astype(k_smem.dtype)   # K, V no longer needed
            v_smem[...] = dv.astype(v_smem.dtype)
            plgpu.commit_smem()
            plgpu.copy_smem_to_gmem(k_smem, dk_ref.at[b, rows, kv_head])
            plgpu.copy_smem_to_gmem(v_smem, dv_ref.at[b, rows, kv_head])
            return ring_step + groups * (hi - lo)

        lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))
        pl.when(n_steps > 0)(lambda: release_slot(n_steps - 1))
        plgpu.wait_smem_to_gmem(0)

    @pl.when(wg == W)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")

        def item_fn(step, ring_step):
            j, kv_head = item(step)
            b, t, lo, hi = (table_ref[j, i] for i in range(sched.TABLE_FIXED))
            kslot = lax.rem(step, KV_SLOTS)

            @pl.when(step >= KV_SLOTS)
            def _():   # item step - 2's dK/dV have left this slot
                plgpu.barrier_wait(kv_consumed.at[kslot])
            plgpu.copy_gmem_to_smem(table_ref.at[j], row_smems.at[kslot], row_bars.at[kslot])
            for c in range(W):
                rows = pl.ds((t * W + c) * bkv, bkv)
                wslot = kslot * W + c
                plgpu.copy_gmem_to_smem(q_start_ref.at[b, rows], start_smems.at[kslot, c],
                                        start_bars.at[wslot])
                plgpu.copy_gmem_to_smem(q_end_ref.at[b, rows], end_smems.at[kslot, c],
                                        end_bars.at[wslot])
                plgpu.copy_gmem_to_smem(k_ref.at[b, rows, kv_head], k_smems.at[kslot, c],
                                        k_bars.at[wslot])
                plgpu.copy_gmem_to_smem(v_ref.at[b, rows, kv_head], v_smems.at[kslot, c],
                                        v_bars.at[wslot])

            n_q = hi - lo

            def block_fn(i, ring_step):
                slot = lax.rem(ring_step, stages)

                @pl.when(ring_step >= stages)
                def _():   # the consumers are done with ring step ring_step - stages
                    plgpu.barrier_wait(consumed.at[slot])
                issue_query_block(q_ref, do_ref, lse_ref, delta_ref, ring, b=b,
                                  hq=kv_head * groups + lax.div(i, n_q), qi=lo + lax.rem(i, n_q),
                                  slot=slot, bq=bq)
                return ring_step + 1
            return lax.fori_loop(0, groups * n_q, block_fn, ring_step)

        ring_steps = lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))

        # Await the releases not awaited above (every phase must be observed).
        @pl.loop(lax.max(ring_steps - stages, 0), ring_steps)
        def _drain_ring(ring_step):
            plgpu.barrier_wait(consumed.at[lax.rem(ring_step, stages)])

        @pl.loop(lax.max(n_steps - KV_SLOTS, 0), n_steps)
        def _drain_kv(step):
            plgpu.barrier_wait(kv_consumed.at[lax.rem(step, KV_SLOTS)])


def dkv(q, k, v, do, lse, delta, q_start, q_end, table, *, sm_scale, blocks, max_programs,
        interpret):
    """(dk, dv) as mgpu_backward's dK/dV kernel, with the tile table (schedule.tile_table of
    the dK/dV block bounds, in the order blocks.persistent) given."""
    B, S, H, D = q.shape
    K = k.shape[2]
    W = mc.COMPUTE_WGS
    bq, bkv, stages = blocks.block_q_dkv, blocks.block_kv_dkv, blocks.stages
    n_items = table.shape[0] * K
    programs = sched.num_programs(n_items, max_programs)
    kernel = functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, kv_heads=K, groups=H // K,
                               tiles=S // (W * bkv), order=blocks.persistent, n_items=n_items,
                               programs=programs, sm_scale=sm_scale, interpret=bool(interpret))
    slot_bars = lambda: plgpu.Barrier(num_barriers=KV_SLOTS * W)
    return plgpu.kernel(
        kernel,
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
        scratch_types=(
            mc.tiled_smem((KV_SLOTS, W, bkv, D), k.dtype),
            mc.tiled_smem((KV_SLOTS, W, bkv, D), v.dtype),
            plgpu.SMEM((KV_SLOTS, W, bkv), jnp.int32),
            plgpu.SMEM((KV_SLOTS, W, bkv), jnp.int32),
            plgpu.SMEM((KV_SLOTS, table.shape[1]), jnp.int32),
            mc.tiled_smem((stages, bq, D), q.dtype),
            mc.tiled_smem((stages, bq, D), do.dtype),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.SMEM((stages, bq), jnp.float32),
            slot_bars(), slot_bars(), slot_bars(), slot_bars(),
            plgpu.Barrier(num_barriers=KV_SLOTS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=W, num_barriers=stages),
            plgpu.Barrier(num_arrivals=W, num_barriers=KV_SLOTS),
        ),
        grid=(programs,),
        grid_names=("programs",),
        num_threads=W + 1,
        thread_name="wg",
        compiler_params=mc.compiler_params(),
        interpret=interpret,
    )(q, k, v, do, lse, delta, q_start, q_end, table)
