"""Work items of the persistent forward kernel: which (batch row, query tile, head) a
program runs at each of its steps.

A persistent kernel launches one program per SM and each program loops over work
items, so the per-item fixed costs (loading Q, the first K/V blocks, storing the
output) overlap the previous item's compute instead of being paid by a fresh program.
The hardware no longer balances programs (it did, by launching the next program on
whichever SM finished first), and no longer orders them so that neighbours share
K/V blocks in L2, so both are chosen here: items are grouped by (batch row, query head),
each group's tiles heaviest first (most key blocks to visit). ~132 / T groups run at
once, every tile of a head on some SM: they read the same K/V blocks at about the same
time, from L2. Dealing this sawtooth list leaves the programs ~3-5% apart (shapes 1 and
3 of the bench). The alternative, all items heaviest first (<1% apart, but a K/V block
is rarely still in L2 when the next tile of its head needs it), measured 16% slower on
dense rows and 5% on packed ones (NOTES.md, v3).

Items are dealt to programs in waves of P (one item per program), alternate waves in
reverse order ("snake"), so the program that got the heaviest item of one wave gets
the lightest of the next. The tile table lists every (batch row, query tile) once with
its block bounds, in this order; `item_coords` maps an item to its table row and
head. The functions that run in the kernel (`work_item`, `num_steps`, `item_coords`)
are plain lax arithmetic on the program index, so the producer and the consumer
warpgroups derive the same sequence without communicating.
"""
import jax.numpy as jnp
from jax import lax

from dsllm.kernels import block_math as bm

# Columns of a tile-table row: b, t, lo, hi, then per chunk its block_bounds columns after
# (lo, hi) (inner_lo, inner_hi, own_lo, own_hi, half_head, half_tail), then zeros.
TABLE_FIXED = 4
CHUNK_COLS = len(bm.BOUNDS) - 2
# The kernels copy an item's row by TMA into one of two SMEM slots, and TMA writes SMEM only
# at 128-byte boundaries: rows are padded to 32 int32s so the second slot starts on one.
# (With the 8 columns of 2 chunks it started 32 bytes in: CUDA_ERROR_MISALIGNED_ADDRESS on the
# H200, which neither the interpreter nor the lowering checks.)
TABLE_ROW_INTS = 32


def tile_table(bounds, chunks_per_tile):
    """[B * T, TABLE_ROW_INTS] int32: the tiles of each batch row (rows in batch order),
    heaviest first; ties keep t order.

    bounds: block_math.block_bounds output [B, T * chunks_per_tile, len(BOUNDS)]; the chunks
    of a tile share (lo, hi). Row layout: (b, t, lo, hi, chunk 0's other columns, chunk 1's
    other columns, ..., 0, ...).
    """
    B, n_chunks, n_cols = bounds.shape
    T = n_chunks // chunks_per_tile
    per_tile = bounds.reshape(B, T, chunks_per_tile, n_cols)
    b = jnp.broadcast_to(jnp.arange(B, dtype=jnp.int32)[:, None, None], (B, T, 1))
    t = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32)[None, :, None], (B, T, 1))
    per_chunk = per_tile[:, :, :, 2:].reshape(B, T, CHUNK_COLS * chunks_per_tile)
    table = jnp.concatenate([b, t, per_tile[:, :, 0, :2], per_chunk], axis=-1)
    table = table.reshape(B * T, TABLE_FIXED + CHUNK_COLS * chunks_per_tile).astype(jnp.int32)
    if table.shape[1] > TABLE_ROW_INTS:
        raise ValueError(f"{chunks_per_tile} chunks per tile do not fit a {TABLE_ROW_INTS}-int table row")
    table = jnp.pad(table, ((0, 0), (0, TABLE_ROW_INTS - table.shape[1])))
    cost = table[:, 3] - table[:, 2]
    cost = cost - table[:, 0] * (jnp.max(cost) + 1)   # batch row first, then cost: one sort key
    return table[jnp.argsort(-cost, stable=True)]


def item_coords(w, *, tiles, heads):
    """(tile-table row, query head) of work item w; tiles = query tiles per batch row."""
    group, rank = lax.div(w, tiles), lax.rem(w, tiles)   # group = b * heads + h
    return lax.div(group, heads) * tiles + rank, lax.rem(group, heads)


def num_programs(n_items, max_programs):
    return max(1, min(n_items, max_programs))


def work_item(program, step, programs):
    """The item (index into tile-table rows x heads) that `program` runs at its `step`."""
    forward = lax.rem(step, 2) == 0
    position = jnp.where(forward, program, programs - 1 - program)
    return step * programs + position


def num_steps(program, n_items, programs):
    """How many items `program` runs: every full wave, plus one if the last, partial wave
    reaches its position (n_items and programs are static)."""
    full, rest = divmod(n_items, programs)
    position = program if full % 2 == 0 else programs - 1 - program
    return full + lax.convert_element_type(position < rest, jnp.int32)
