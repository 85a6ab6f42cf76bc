"""What the Mosaic GPU kernels derive from segment ids, computed once per batch.

Row ranges (block_math.row_ranges, extended over the padded rows) and the block
bounds of the forward, dQ and dK/dV kernels depend only on the segment ids, the
sequence length, causality and the block sizes, not on q, k, v. A model calls
`make_plan` once per step, outside its scan over layers, and passes the plan to
every layer's flash_attention call, instead of each call (forward, its
rematerialisation, backward) recomputing them in XLA: ~100 small XLA ops per
layer forward and ~250 forward+backward (jaxpr equations, B8 S4096), most of them
integer floor divisions.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp

from dsllm.kernels import block_math as bm
from dsllm.kernels.mgpu_common import COMPUTE_WGS, Blocks


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["ranges", "fwd_bounds", "dq_bounds", "dkv_bounds"],
                   meta_fields=["seq_len", "causal", "blocks"])
@dataclasses.dataclass(frozen=True)
class AttentionPlan:
    """Every array has the batch first (a mesh shards a plan like the segment ids).

    ranges: (kv_start, kv_end, q_start, q_end), each [B, padded length] int32.
    fwd_bounds, dq_bounds, dkv_bounds: block_math.block_bounds of each kernel.
    seq_len is the unpadded length; the plan is only valid for these blocks and causality.
    """
    ranges: tuple
    fwd_bounds: jax.Array
    dq_bounds: jax.Array
    dkv_bounds: jax.Array
    seq_len: int
    causal: bool
    blocks: Blocks


def padded_length(seq_len, blocks):
    return -(-seq_len // blocks.seq_multiple) * blocks.seq_multiple


def padded_ranges(segment_ids, batch, seq_len, padded_len, *, causal):
    """block_math.row_ranges for seq_len real rows, extended to padded_len rows.

    Each padded row attends only itself (and is attended only by itself)."""
    ranges = bm.row_ranges(segment_ids, batch, seq_len, causal=causal)
    pad = padded_len - seq_len
    if not pad:
        return ranges
    tail = jnp.broadcast_to(jnp.arange(seq_len, padded_len, dtype=jnp.int32), (batch, pad))
    starts_ends = (tail, tail + 1, tail, tail + 1)
    return tuple(jnp.concatenate([r, t], axis=1) for r, t in zip(ranges, starts_ends))


def make_plan(segment_ids, batch, seq_len, *, causal, blocks=None):
    """The plan for [batch, seq_len] segment ids (None: one document per row)."""
    blocks = blocks or Blocks()
    ranges = padded_ranges(segment_ids, batch, seq_len, padded_length(seq_len, blocks),
                           causal=causal)
    kv_start, kv_end, q_start, q_end = ranges
    bounds = functools.partial(bm.block_bounds, mask_all=blocks.mask_all_blocks)
    return AttentionPlan(
        ranges=ranges,
        fwd_bounds=bounds(kv_start, kv_end, tile_rows=COMPUTE_WGS * blocks.block_q,
                          chunk_rows=blocks.block_q, block=blocks.block_kv,
                          trim=blocks.trim_blocks),
        dq_bounds=bounds(kv_start, kv_end, tile_rows=COMPUTE_WGS * blocks.block_q,
                         chunk_rows=blocks.block_q, block=blocks.block_kv_dq,
                         trim=blocks.trim_blocks),
        dkv_bounds=bounds(q_start, q_end, tile_rows=COMPUTE_WGS * blocks.block_kv_dkv,
                          chunk_rows=blocks.block_kv_dkv, block=blocks.block_q_dkv,
                          trim=blocks.trim_blocks),
        seq_len=seq_len, causal=causal, blocks=blocks)
