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


def _kernel(q_ref, k_ref, v_ref, kv_start_ref, kv_end_ref, items_ref, *rest,
            bq, bkv, stages, groups, n_items, programs, sm_scale, dynamic, ticket_early,
            interpret):
    if dynamic:
        counter_ref, *rest = rest
    (o_ref, lse_ref,
     q_smems, k_smems, v_smems, lse_smems, start_smems, end_smems, row_smems, ticket_smem,
     q_bars, start_bars, end_bars, row_bars, k_bars, v_bars,
     k_consumed, v_consumed, q_consumed, schedule) = rest
    W = mc.COMPUTE_WGS
    program = lax.axis_index("programs")
    wg = lax.axis_index("wg")
    ring = (k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed)
    inputs = mc.ItemInputs(row_smems, row_bars, start_smems, start_bars, end_smems, end_bars)

    @pl.when(wg < W)
    def _compute():
        plgpu.set_max_registers(mc.COMPUTE_REGISTERS, action="increase")
        pl.when(wg == 1)(lambda: mc.sync(schedule))   # warpgroup 0 takes the tensor cores first

        def release_slot(step):
            """Item `step`'s outputs, stored from its slot, have been read out of SMEM: the
            producer may refill the slot (and lse_smems may be rewritten)."""
            plgpu.wait_smem_to_gmem(0, wait_read_only=True)
            plgpu.barrier_arrive(q_consumed.at[lax.rem(step, Q_SLOTS)])

        def next_head(step):
            """The query head of this program's item `step` (its item-table row has landed in
            the step's slot), or -1: no item left."""
            qslot = lax.rem(step, Q_SLOTS)
            plgpu.barrier_wait(row_bars.at[qslot])
            return row_smems.at[qslot][sched.HEAD_COL]

        @mc.scope("item")
        def item_fn(carry):
            step, ring_step, h = carry
            qslot = lax.rem(step, Q_SLOTS)
            wslot = qslot * W + wg
            with mc.scope("item_inputs"):
                b, t, chunk_bounds, row_start, row_end = mc.read_item_inputs(
                    inputs, qslot, wg, row_awaited=True)
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
            return step + 1, ring_step + hi - lo, next_head(step + 1)

        n_steps, _, _ = lax.while_loop(lambda c: c[2] >= 0, item_fn,
                                       (jnp.int32(0), jnp.int32(0), next_head(0)))
        pl.when(n_steps > 0)(lambda: release_slot(n_steps - 1))
        pl.when(wg == 0)(lambda: mc.sync(schedule))
        plgpu.wait_smem_to_gmem(0)

    @pl.when(wg == W)
    def _memory():
        plgpu.set_max_registers(mc.MEMORY_REGISTERS, action="decrease")

        def ticket(step):
            """The item-table row of this program's `step` (n_items: the end row)."""
            if dynamic:
                return lax.min(mc.take_ticket(counter_ref, ticket_smem), n_items)
            return sched.static_ticket(program, step, n_items, programs)

        def wait_q_slot(step):
            @pl.when(step >= Q_SLOTS)
            @mc.scope("wait_q_slot")
            def _():   # item step - 2's outputs have left this slot
                plgpu.barrier_wait(q_consumed.at[lax.rem(step, Q_SLOTS)])

        @mc.scope("item")
        def item_fn(carry):
            step, ring_step, j, j_next = carry
            with mc.scope("read_table"):
                b, t, lo, hi = (items_ref[j, i] for i in range(sched.TABLE_FIXED))
                h = items_ref[j, sched.HEAD_COL]
            qslot = lax.rem(step, Q_SLOTS)
            wait_q_slot(step)
            mc.issue_item_inputs(
                inputs, items_ref, j, kv_start_ref, kv_end_ref, b=b, t=t, slot=qslot, chunk_rows=bq,
                per_chunk=lambda c, rows, wslot: plgpu.copy_gmem_to_smem(
                    q_ref.at[b, rows, h], q_smems.at[qslot, c], q_bars.at[wslot]))
            if ticket_early:   # item step + 2's, a whole item ahead of its use
                j_next, j_after = ticket(step + 2), j_next

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
            ring_step = lax.fori_loop(lo, hi, block_fn, ring_step)
            if ticket_early:
                return step + 1, ring_step, j_after, j_next
            # Taken after this item's last K/V block is issued: the consumers are then about
            # `stages` blocks from its end, and the atomic's round trip hides under them.
            return step + 1, ring_step, ticket(step + 1), j_next

        first = (ticket(0), ticket(1)) if ticket_early else (ticket(0), jnp.int32(0))
        n_steps, ring_steps, _, _ = lax.while_loop(lambda c: c[2] < n_items, item_fn,
                                                   (jnp.int32(0), jnp.int32(0)) + first)
        # The end row (head -1) into the next slot ends the consumers' loops.
        end_slot = lax.rem(n_steps, Q_SLOTS)
        wait_q_slot(n_steps)
        plgpu.copy_gmem_to_smem(items_ref.at[n_items], row_smems.at[end_slot], row_bars.at[end_slot])

        # Await the releases not awaited above: each phase of a barrier this thread
        # waits on must be observed (the interpreter checks it at deallocation).
        @pl.loop(lax.max(ring_steps - stages, 0), ring_steps)
        def _drain_ring(ring_step):
            slot = lax.rem(ring_step, stages)
            plgpu.barrier_wait(k_consumed.at[slot])
            plgpu.barrier_wait(v_consumed.at[slot])

        @pl.loop(lax.max(n_steps - 1, 0), n_steps)   # steps up to n_steps - 2: wait_q_slot
        def _drain_q(step):
            plgpu.barrier_wait(q_consumed.at[lax.rem(step, Q_SLOTS)])


def forward(q, k, v, kv_start, kv_end, table, *, sm_scale, blocks, max_programs, interpret):
    """As mgpu_forward.forward, with the tile table (schedule.tile_table of the forward's
    block bounds) given; at most max_programs programs (the number of SMs). The items are
    dealt as blocks.item_deal says, statically in the interpreter."""
    B, S, H, D = q.shape
    K = k.shape[2]
    W = mc.COMPUTE_WGS
    bq, bkv, stages = blocks.block_q, blocks.block_kv, blocks.stages
    n_items = table.shape[0] * H
    programs = sched.num_programs(n_items, max_programs)
    # The table follows the configured deal (the interpreter runs the dynamic deal's table
    # with static tickets); the tickets are atomic only when compiled.
    tail = blocks.tail_waves * programs if blocks.item_deal == "dynamic" else 0
    items = sched.item_table(table, tiles=S // (W * bq), heads=H, tail=tail)
    dynamic = blocks.item_deal == "dynamic" and not interpret
    operands = (q, k, v, kv_start, kv_end, items)
    if dynamic:   # the ticket counter: a fresh zero per call, written in place by the kernel
        operands += (jax.new_ref(jnp.zeros((1,), jnp.int32)),)
    kernel = functools.partial(_kernel, bq=bq, bkv=bkv, stages=stages, groups=H // K,
                               n_items=n_items, programs=programs, sm_scale=sm_scale,
                               dynamic=dynamic, ticket_early=blocks.ticket_early,
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
            plgpu.SMEM((Q_SLOTS, sched.TABLE_ROW_INTS), jnp.int32),
            plgpu.SMEM((1,), jnp.int32),
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
    )(*operands)
