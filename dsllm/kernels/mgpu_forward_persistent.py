"""Persistent flash-attention forward for Hopper: one program per SM, looping over work items.

Same math and warpgroup roles as mgpu_forward (2 compute warpgroups x block_q query
rows, 1 TMA producer, ping-pong on a schedule barrier; the per-tile pass is
mgpu_forward.consume_tile), but a program runs many (batch row, query tile, head)
items, in schedule.py's order, dealt in a snake. What changes:

- The producer loads everything a compute warpgroup needs for an item by TMA: Q, the
  rows' key ranges (kv_start, kv_end) and the item's row of the tile table (block
  bounds). These have two SMEM slots, so item i+1's inputs land while item i runs; a
  slot is released (q_consumed) once the output that reuses its Q buffer has been read
  out of SMEM by the store, which the consumers check after the next item's first
  matmul (by then the store is done, so the check does not stall them).
- The K/V ring runs on across items (ring step = blocks streamed so far), so the
  producer fetches the next item's first K/V blocks as soon as the current item's last
  blocks free their slots.
Per-item fixed costs (loading Q and the first K/V blocks, reading bounds and ranges,
launching a program) therefore overlap the previous item's matmuls, which matters for
packed rows, whose tiles visit ~5 key blocks each instead of ~16.
"""
import functools

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax

from dsllm.kernels import mgpu_common as mc
from dsllm.kernels import schedule as sched
from dsllm.kernels.mgpu_forward import consume_tile

Q_SLOTS = 2   # items whose inputs are resident at once: the running one and the next


def _kernel(q_ref, k_ref, v_ref, kv_start_ref, kv_end_ref, table_ref,
            o_ref, lse_ref,
            q_smems, k_smems, v_smems, lse_smems, start_smems, end_smems, row_smems,
            q_bars, start_bars, end_bars, row_bars, k_bars, v_bars,
            k_consumed, v_consumed, q_consumed, schedule,
            *, bq, bkv, stages, heads, groups, tiles, n_items, programs, sm_scale,
            interpret):
    W = mc.COMPUTE_WGS
    program = lax.axis_index("programs")
    wg = lax.axis_index("wg")
    n_steps = sched.num_steps(program, n_items, programs)
    ring = (k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed)
    inputs = mc.ItemInputs(row_smems, row_bars, start_smems, start_bars, end_smems, end_bars)

    def item(step):
        w = sched.work_item(program, step, programs)
        return sched.item_coords(w, tiles=tiles, heads=heads)

    @pl.when(wg < W)
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")
        pl.when(wg == 1)(lambda: mc.sync(schedule))   # warpgroup 0 takes the tensor cores first

        def release_slot(step):
            """Item `step`'s outputs, stored from its slot, have been read out of SMEM: the
            producer may refill the slot (and lse_smems may be rewritten)."""
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            plgpu.barrier_arrive(q_consumed.at[lax.rem(step, Q_SLOTS)])

        @mc.scope("item")
        def item_fn(step, ring_step):
            _, h = item(step)
            qslot = lax.rem(step, Q_SLOTS)
            wslot = qslot * W + wg
            with mc.scope("item_inputs"):
                b, t, chunk_bounds, row_start, row_end = mc.read_item_inputs(inputs, qslot, wg)
                lo, hi = chunk_bounds[:2]
                q_smem = q_smems.at[qslot, wg]
                plgpu.barrier_wait(q_bars.at[wslot])

            def release_previous():
                # The previous item's stores had this item's first matmul to read SMEM, so
                # waiting for them here rarely stalls (right after issuing them it would).
                pl.when(step > 0)(lambda: release_slot(step - 1))
            out, lse = consume_tile(q_smem, ring, schedule, row_start, row_end,
                                    chunk_bounds, ring_step,
                                    bkv=bkv, stages=stages, sm_scale=sm_scale, interpret=interpret,
                                    after_first_block=release_previous)

            rows = pl.ds((t * W + wg) * bq, bq)
            with mc.scope("store"):
                q_smem[...] = out.astype(q_smem.dtype)   # Q is no longer needed: reuse its SMEM
                lse_smems.at[wg][...] = lse
                plgpu.commit_smem()
                plgpu.copy_smem_to_gmem(q_smem, o_ref.at[b, rows, h])
                plgpu.copy_smem_to_gmem(lse_smems.at[wg], lse_ref.at[b, h, rows])
            return ring_step + hi - lo

        lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))
        pl.when(n_steps > 0)(lambda: release_slot(n_steps - 1))
        pl.when(wg == 0)(lambda: mc.sync(schedule))
        plgpu.wait_smem_to_gmem(0)

    @pl.when(wg == W)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")

        @mc.scope("item")
        def item_fn(step, ring_step):
            j, h = item(step)
            with mc.scope("read_table"):
                b, t, lo, hi = (table_ref[j, i] for i in range(sched.TABLE_FIXED))
            qslot = lax.rem(step, Q_SLOTS)

            @pl.when(step >= Q_SLOTS)
            @mc.scope("wait_q_slot")
            def _():   # item step - 2's outputs have left this slot
                plgpu.barrier_wait(q_consumed.at[qslot])
            mc.issue_item_inputs(
                inputs, table_ref, j, kv_start_ref, kv_end_ref, b=b, t=t, slot=qslot, chunk_rows=bq,
                per_chunk=lambda c, rows, wslot: plgpu.copy_gmem_to_smem(
                    q_ref.at[b, rows, h], q_smems.at[qslot, c], q_bars.at[wslot]))

            kv_head = lax.div(h, groups)

            def block_fn(ki, ring_step):
                slot = lax.rem(ring_step, stages)
                cols = pl.ds(ki * bkv, bkv)
                for ref, smems, bars, consumed in ((k_ref, k_smems, k_bars, k_consumed),
                                                   (v_ref, v_smems, v_bars, v_consumed)):
                    @pl.when(ring_step >= stages)
                    @mc.scope("wait_slot", mc.BLOCKS)
                    def _():   # the consumers are done with ring step ring_step - stages
                        plgpu.barrier_wait(consumed.at[slot])
                    plgpu.copy_gmem_to_smem(ref.at[b, cols, kv_head], smems.at[slot], bars.at[slot])
                return ring_step + 1
            return lax.fori_loop(lo, hi, block_fn, ring_step)

        ring_steps = lax.fori_loop(0, n_steps, item_fn, jnp.int32(0))

        # Await the releases not awaited above: each phase of a barrier this thread
        # waits on must be observed (the interpreter checks it at deallocation).
        @pl.loop(lax.max(ring_steps - stages, 0), ring_steps)
        def _drain_ring(ring_step):
            slot = lax.rem(ring_step, stages)
            plgpu.barrier_wait(k_consumed.at[slot])
            plgpu.barrier_wait(v_consumed.at[slot])

        @pl.loop(lax.max(n_steps - Q_SLOTS, 0), n_steps)
        def _drain_q(step):
            plgpu.barrier_wait(q_consumed.at[lax.rem(step, Q_SLOTS)])


def forward(q, k, v, kv_start, kv_end, table, *, sm_scale, blocks, max_programs, interpret):
    """As mgpu_forward.forward, with the tile table (schedule.tile_table of the forward's
    block bounds) given; at most max_programs
    programs (the number of SMs)."""
    B, S, H, D = q.shape
    K = k.shape[2]
    W = mc.COMPUTE_WGS
    bq, bkv, stages = blocks.block_q, blocks.block_kv, blocks.stages
    n_items = table.shape[0] * H
    programs = sched.num_programs(n_items, max_programs)
    kernel = functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, heads=H, groups=H // K,
                               tiles=S // (W * bq),
                               n_items=n_items, programs=programs, sm_scale=sm_scale,
                               interpret=bool(interpret))
    return plgpu.kernel(
        kernel,
        out_type=(jax.ShapeDtypeStruct(q.shape, q.dtype),
                  jax.ShapeDtypeStruct((B, H, S), jnp.float32)),
        scratch_types=(
            mc.tiled_smem((Q_SLOTS, W, bq, D), q.dtype),
            mc.tiled_smem((stages, bkv, D), k.dtype),
            mc.tiled_smem((stages, bkv, D), v.dtype),
            plgpu.SMEM((W, bq), jnp.float32),
            plgpu.SMEM((Q_SLOTS, W, bq), jnp.int32),
            plgpu.SMEM((Q_SLOTS, W, bq), jnp.int32),
            plgpu.SMEM((Q_SLOTS, table.shape[1]), jnp.int32),
            plgpu.Barrier(num_barriers=Q_SLOTS * W),
            plgpu.Barrier(num_barriers=Q_SLOTS * W),
            plgpu.Barrier(num_barriers=Q_SLOTS * W),
            plgpu.Barrier(num_barriers=Q_SLOTS),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_barriers=stages),
            plgpu.Barrier(num_arrivals=W, num_barriers=stages),
            plgpu.Barrier(num_arrivals=W, num_barriers=stages),
            plgpu.Barrier(num_arrivals=W, num_barriers=Q_SLOTS),
            plgpu.Barrier(num_arrivals=W),
        ),
        grid=(programs,),
        grid_names=("programs",),
        num_threads=W + 1,
        thread_name="wg",
        compiler_params=mc.compiler_params(),
        interpret=interpret,
    )(q, k, v, kv_start, kv_end, table)
