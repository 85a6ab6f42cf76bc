"""Persistent dK/dV for Hopper: one program per SM, looping over key tiles.

Same math and warpgroup roles as mgpu_backward's dK/dV kernel (2 compute warpgroups x
block_kv_dkv key rows, 1 TMA producer streaming query blocks; the per-tile pass is
mgpu_backward.consume_key_tile), but a program runs many (batch row, key tile, KV head)
items, in schedule.py's order. What changes, as in the persistent forward:

- The producer loads everything a compute warpgroup needs for an item by TMA: K and V, the
  rows' query ranges (q_start, q_end) and the item's row of the tile table. These have two
  SMEM slots, so item i+1's inputs land while item i runs. A slot is released once the dK and
  dV that leave through its K/V buffers have been read out of SMEM, which the consumers check
  after the next item's first block.
- The query ring (Q, dO, lse, delta) runs on across items, so the next item's first blocks
  are fetched while the current item's last ones are computed.
The per-tile program paid its K/V load, the ring's fill and its store in full: 1.5 blocks'
time per tile (kernel_trace tile_fit, NOTES.md v9), a quarter of a packed row's ~5-block tile.
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import mgpu_common as mc
from dsllm.kernels import schedule as sched
from dsllm.kernels.mgpu_backward import (common_kwargs, consume_key_tile, issue_query_block,
                                         store_dk_dv)

KV_SLOTS = 2   # items whose inputs are resident at once: the running one and the next


def _kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, q_start_ref, q_end_ref, table_ref,
            dk_ref, dv_ref,
            k_smems, v_smems, q_smems, do_smems, lse_smems, delta_smems, start_smems, end_smems,
            row_smems,
            k_bars, v_bars, start_bars, end_bars, row_bars, q_bars, do_bars, lse_bars, delta_bars,
            consumed, kv_consumed,
            *, bq, bkv, stages, groups, kv_heads, tiles, n_items, programs, sm_scale, interpret):
    W = mc.COMPUTE_WGS
    program = lax.axis_index("programs")
    wg = lax.axis_index("wg")
    n_steps = sched.num_steps(program, n_items, programs)
    ring = (q_smems, do_smems, lse_smems, delta_smems, q_bars, do_bars, lse_bars, delta_bars,
            consumed)
    inputs = mc.ItemInputs(row_smems, row_bars, start_smems, start_bars, end_smems, end_bars)

    def item(step):
        w = sched.work_item(program, step, programs)
        return sched.item_coords(w, tiles=tiles, heads=kv_heads)

    @pl.when(wg < W)
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")

        def release_slot(step):
            """Item `step`'s dK and dV, stored from its slot, have been read out of SMEM: the
            producer may refill the slot."""
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            plgpu.barrier_arrive(kv_consumed.at[lax.rem(step, KV_SLOTS)])

        @mc.scope("dkv_tile")
        def item_fn(step, ring_step):
            _, kv_head = item(step)
            slot = lax.rem(step, KV_SLOTS)
            wslot = slot * W + wg
            with mc.scope("item_inputs"):
                b, t, bounds, row_start, row_end = mc.read_item_inputs(inputs, slot, wg)
                lo, hi = bounds[:2]
                plgpu.barrier_wait(k_bars.at[wslot])
                plgpu.barrier_wait(v_bars.at[wslot])

            def release_previous():
                # The previous item's stores had this item's first block to read SMEM, so
                # waiting for them here rarely stalls (right after issuing them it would).
                pl.when(step > 0)(lambda: release_slot(step - 1))
            dk, dv = consume_key_tile(k_smems.at[slot], v_smems.at[slot], wg, ring, row_start,
                                      row_end, bounds, groups=groups, stages=stages,
                                      sm_scale=sm_scale, interpret=interpret,
                                      first_step=ring_step, after_first_block=release_previous)
            rows = pl.ds((t * W + wg) * bkv, bkv)
            store_dk_dv(dk * sm_scale, dv, k_smems.at[slot, wg], v_smems.at[slot, wg],
                        dk_ref.at[b, rows, kv_head], dv_ref.at[b, rows, kv_head], wait=False)
            return ring_step + groups * (hi - lo)

        lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))
        pl.when(n_steps > 0)(lambda: release_slot(n_steps - 1))

    @pl.when(wg == W)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")

        @mc.scope("dkv_tile")
        def item_fn(step, ring_step):
            j, kv_head = item(step)
            with mc.scope("read_table"):
                b, t, lo, hi = (table_ref[j, i] for i in range(sched.TABLE_FIXED))
            slot = lax.rem(step, KV_SLOTS)

            @pl.when(step >= KV_SLOTS)
            @mc.scope("wait_kv_slot")
            def _():   # item step - 2's dK and dV have left this slot
                plgpu.barrier_wait(kv_consumed.at[slot])
            def copy_k_v(c, rows, wslot):
                plgpu.copy_gmem_to_smem(k_ref.at[b, rows, kv_head], k_smems.at[slot, c],
                                        k_bars.at[wslot])
                plgpu.copy_gmem_to_smem(v_ref.at[b, rows, kv_head], v_smems.at[slot, c],
                                        v_bars.at[wslot])
            mc.issue_item_inputs(inputs, table_ref, j, q_start_ref, q_end_ref, b=b, t=t, slot=slot,
                                 chunk_rows=bkv, per_chunk=copy_k_v)
            n_q = hi - lo

            def block_fn(i, ring_step):   # query block lo + i % n_q of head i // n_q
                ring_slot = lax.rem(ring_step, stages)

                @pl.when(ring_step >= stages)
                @mc.scope("wait_slot", mc.BLOCKS)
                def _():   # the consumers are done with ring step ring_step - stages
                    plgpu.barrier_wait(consumed.at[ring_slot])
                issue_query_block(q_ref, do_ref, lse_ref, delta_ref, ring, b=b,
                                  hq=kv_head * groups + lax.div(i, n_q), qi=lo + lax.rem(i, n_q),
                                  slot=ring_slot, bq=bq)
                return ring_step + 1
            return lax.fori_loop(0, groups * n_q, block_fn, ring_step)

        ring_steps = lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))

        # Await the releases not awaited above: each phase of a barrier this thread
        # waits on must be observed (the interpreter checks it at deallocation).
        @pl.loop(lax.max(ring_steps - stages, 0), ring_steps)
        def _drain_ring(ring_step):
            plgpu.barrier_wait(consumed.at[lax.rem(ring_step, stages)])

        @pl.loop(lax.max(n_steps - KV_SLOTS, 0), n_steps)
        def _drain_kv(step):
            plgpu.barrier_wait(kv_consumed.at[lax.rem(step, KV_SLOTS)])


def dkv(q, k, v, do, lse, delta, q_start, q_end, table, *, sm_scale, blocks, max_programs,
        interpret):
    """As mgpu_backward.dkv, with the tile table (schedule.tile_table of the dK/dV block
    bounds) given; at most max_programs programs (the number of SMs)."""
    B, S, H, D = q.shape
    K = k.shape[2]
    W = mc.COMPUTE_WGS
    groups = H // K
    bq, bkv = blocks.block_q_dkv, blocks.block_kv_dkv
    stages = min(blocks.stages, S // bq)
    n_items = table.shape[0] * K
    programs = sched.num_programs(n_items, max_programs)
    kernel = functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, groups=groups,
                               kv_heads=K, tiles=S // (W * bkv), n_items=n_items,
                               programs=programs, sm_scale=sm_scale, interpret=bool(interpret))
    return plgpu.kernel(
        kernel,
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
        scratch_types=(
            mc.tiled_smem((KV_SLOTS, W, bkv, D), k.dtype),
            mc.tiled_smem((KV_SLOTS, W, bkv, D), v.dtype),
            mc.tiled_smem((stages, bq, D), q.dtype),
            mc.tiled_smem((stages, bq, D), do.dtype),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.SMEM((stages, bq), jnp.float32),
            plgpu.SMEM((KV_SLOTS, W, bkv), jnp.int32),
            plgpu.SMEM((KV_SLOTS, W, bkv), jnp.int32),
            plgpu.SMEM((KV_SLOTS, table.shape[1]), jnp.int32),
            plgpu.Barrier(num_barriers=KV_SLOTS * W),
            plgpu.Barrier(num_barriers=KV_SLOTS * W),
            plgpu.Barrier(num_barriers=KV_SLOTS * W),
            plgpu.Barrier(num_barriers=KV_SLOTS * W),
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
        **common_kwargs(interpret),
    )(q, k, v, do, lse, delta, q_start, q_end, table)
