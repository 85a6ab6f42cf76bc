"""The producer side of a warp-specialised stream of blocks through an SMEM ring.

A program streams `n` blocks through `stages` SMEM slots; step i uses slot
i % stages. For every buffer of a block, the producer warpgroup issues a TMA copy
that completes on that buffer's ready barrier; the consumers arrive on a consumed
barrier when they are done with the slot. Each thread waits on every phase of the
barriers it waits on exactly once, in order (the interpreter checks this): the
producer drains the consumed barriers of the last steps before it exits.
"""
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu
from jax import lax


def produce(n, buffers, stages):
    """Producer loop. buffers: list of (consumed_barriers, issue(step, slot)) pairs.

    Buffers that share one consumed-barrier array list it once with an issue
    function that copies all of them.
    """
    for i in range(stages):
        @pl.when(i < n)
        def _prologue():
            for _, issue in buffers:
                issue(i, i)

    @pl.loop(0, n - stages)
    def _refill(step):
        slot = lax.rem(step, stages)
        for consumed, issue in buffers:
            plgpu.barrier_wait(consumed.at[slot])
            issue(step + stages, slot)

    @pl.loop(lax.max(n - stages, 0), n)
    def _drain(step):
        slot = lax.rem(step, stages)
        for consumed, _ in buffers:
            plgpu.barrier_wait(consumed.at[slot])


def produce_kv_blocks(k_ref, v_ref, k_smems, v_smems, k_bars, v_bars, k_consumed, v_consumed, *,
                      b, kv_head, lo, hi, bkv, stages):
    """The producer of a query tile's program (forward and dQ kernels): key and value blocks
    lo..hi-1 of one batch row and KV head, each on its own ready barrier and consumed barrier."""
    def issue(ref, smems, bars):
        def fn(step, slot):
            cols = pl.ds((lo + step) * bkv, bkv)
            plgpu.copy_gmem_to_smem(ref.at[b, cols, kv_head], smems.at[slot], bars.at[slot])
        return fn

    produce(hi - lo, [(k_consumed, issue(k_ref, k_smems, k_bars)),
                      (v_consumed, issue(v_ref, v_smems, v_bars))], stages)
