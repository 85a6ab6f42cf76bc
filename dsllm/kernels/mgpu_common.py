"""Pieces shared by the Mosaic GPU (Hopper) attention kernels.

The kernels run compiled on sm90 GPUs and, for tests, under the Mosaic GPU
interpreter on CPU (`plgpu.InterpretGPUParams`), which simulates warpgroups,
barriers, SMEM and TMA. In jax 0.11.2 that interpreter cannot run a wgmma whose
left operand is in registers, nor an accumulator initialised from a value
(`pl.run_state(...)(plgpu.ACC.init(x))`). `mma_accumulate` is therefore the one
place where interpreted and compiled kernels differ: compiled, it issues the
register-operand wgmma into the running accumulator; interpreted, it adds a
plain matmul of the same operands. Everything else (TMA, barriers, pipeline
order, block bounds, masks, softmax) is the same code in both modes.
"""
import contextlib
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.experimental.pallas as pl
import jax.experimental.pallas.mosaic_gpu as plgpu

from dsllm.kernels import block_math as bm
from dsllm.kernels import schedule as sched

WGMMA = plgpu.Layout.WGMMA
WGMMA_ROW = plgpu.Layout.WGMMA.reduce(1)   # one value per row of a WGMMA tile
WGMMA_COL = plgpu.Layout.WGMMA.reduce(0)   # one value per column

COMPUTE_WGS = 2          # consumer warpgroups per program; one more loads (TMA)
MEMORY_REGISTERS = 40    # registers left to the producer warpgroup
COMPUTE_REGISTERS = 232  # registers given to each consumer warpgroup
BACKWARDS = ("auto", "fused", "split")
DKV_KERNELS = ("auto", "persistent", "per_tile")


@dataclasses.dataclass(frozen=True)
class Blocks:
    """Block sizes. Each program owns COMPUTE_WGS * block_rows resident rows."""
    block_q: int = 64        # forward / dq: query rows per compute warpgroup
    block_kv: int = 128      # forward: keys per streamed block
    block_kv_dq: int = 128   # dq: keys per streamed block (128 measured 2% faster than 64)
    block_kv_dkv: int = 64   # dk/dv: key rows per compute warpgroup
    block_q_dkv: int = 64    # dk/dv: queries per streamed block
    stages: int = 2          # depth of the SMEM ring for streamed blocks
    # The forward as a persistent kernel (mgpu_forward_persistent: one program per SM looping
    # over work items in schedule.py's order), or one program per tile (mgpu_forward). The
    # persistent one measured +7-8% forward on dense and packed rows (NOTES.md, v3).
    persistent_forward: bool = True
    # The split backward's dK/dV kernel: "persistent" (mgpu_backward_persistent: one program
    # per SM looping over (row, key tile, KV head) items), "per_tile" (mgpu_backward.dkv: one
    # program per key tile, which the hardware balances), or "auto": persistent when each KV
    # head serves one query head, per-tile under GQA. Persistent measured +2.3%
    # forward+backward on packed rows (shape 3) and the same on dense ones (NOTES.md v10).
    # Under GQA 8 its items (8 query heads each) are few and long, and the static deal left
    # the programs far apart (a cost model: 0.65 of balanced): per-tile measured 1.17x on the
    # 67B's shape (NOTES.md v11).
    dkv_kernel: str = "auto"
    # Each compute warpgroup computes only the streamed blocks that hold allowed pairs of its
    # own rows (block_math.block_bounds(trim=True)); in the forward and dQ, only the needed
    # half of its first and last block.
    trim_blocks: bool = True
    # The backward: "fused" (mgpu_backward_fused: dK, dV and dQ in one kernel), "split"
    # (mgpu_backward: a dQ kernel and a dK/dV kernel), or "auto": fused when the plan's blocks
    # make it the faster one (mgpu_backward_fused.use_fused, decided on the device from the
    # segment ids), else split. The split kernels are bitwise
    # deterministic; the fused one is not (its dQ reduce-adds arrive in varying order).
    backward: str = "auto"
    # Diagnostic only: apply the mask on every block (no unmasked fast path), to
    # measure what masking costs.
    mask_all_blocks: bool = False

    def persistent_dkv(self, groups):
        """Whether the split backward runs the persistent dK/dV for `groups` query heads per
        KV head."""
        return self.dkv_kernel == "persistent" or (self.dkv_kernel == "auto" and groups == 1)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            if f.name.startswith("block_") and val % 64:
                raise ValueError(f"Blocks.{f.name}={val} must be a multiple of 64")
        if self.backward not in BACKWARDS:
            raise ValueError(f"Blocks.backward={self.backward!r}: use one of {BACKWARDS}")
        if self.dkv_kernel not in DKV_KERNELS:
            raise ValueError(f"Blocks.dkv_kernel={self.dkv_kernel!r}: use one of {DKV_KERNELS}")
        if self.stages < 2:
            raise ValueError(f"Blocks.stages={self.stages} must be at least 2")

    @property
    def seq_multiple(self):
        """Sequence lengths must be a multiple of this (the wrapper pads to it)."""
        import math
        sizes = [COMPUTE_WGS * self.block_q, self.block_kv, self.block_kv_dq,
                 COMPUTE_WGS * self.block_kv_dkv, self.block_q_dkv]
        return math.lcm(*sizes)


def parse_blocks(text):
    """'a=1,b=x' -> Blocks(a=1, b='x') (ints and booleans parsed, the rest strings)."""
    kwargs = {}
    for item in filter(None, text.split(",")):
        key, _, val = item.partition("=")
        if val in ("True", "False"):
            kwargs[key] = val == "True"
        else:
            kwargs[key] = int(val) if val.lstrip("-").isdigit() else val
    return Blocks(**kwargs)


def sync(schedule):
    """Arrive on the ping-pong schedule barrier and wait for the other warpgroup's arrival."""
    plgpu.barrier_arrive(schedule)
    plgpu.barrier_wait(schedule)


def over_blocks(step_fn, bounds, carry):
    """carry = step_fn(i, carry, mask_start=..., mask_end=...) for the streamed blocks
    i in [lo, hi) of bounds = (lo, hi, inner_lo, inner_hi) (block_math.block_bounds): the head
    blocks [lo, inner_lo) need both compares, the inner ones none, the tail [inner_hi, hi)
    only the end's. Three loops, so that each body is compiled with only the compares it needs."""
    lo, hi, inner_lo, inner_hi = bounds
    carry = jax.lax.fori_loop(lo, inner_lo, functools.partial(step_fn, mask_start=True, mask_end=True),
                              carry)
    carry = jax.lax.fori_loop(inner_lo, inner_hi,
                              functools.partial(step_fn, mask_start=False, mask_end=False), carry)
    return jax.lax.fori_loop(inner_hi, hi, functools.partial(step_fn, mask_start=False, mask_end=True),
                             carry)


def over_own_blocks(step_fn, pass_fn, bounds, carry, *, block, halves=True):
    """A warpgroup's pass over its tile's streamed blocks [lo, hi), bounds being its chunk's
    block_math.block_bounds row: carry = pass_fn(i, carry) for the blocks outside its own
    [own_lo, own_hi), and step_fn as over_blocks asks for its own blocks. With halves, the
    half blocks that half_head / half_tail mark get key_offset (the first of their block // 2
    columns) and both compares; without, they are computed whole."""
    lo, hi, inner_lo, inner_hi, own_lo, own_hi, half_head, half_tail = bounds
    if not halves:
        carry = jax.lax.fori_loop(lo, own_lo, pass_fn, carry)
        carry = over_blocks(step_fn, (own_lo, own_hi, inner_lo, inner_hi), carry)
        return jax.lax.fori_loop(own_hi, hi, pass_fn, carry)
    half = functools.partial(step_fn, mask_start=True, mask_end=True)
    full_lo, full_hi = own_lo + half_head, own_hi - half_tail
    carry = jax.lax.fori_loop(lo, own_lo, pass_fn, carry)
    carry = jax.lax.fori_loop(own_lo, full_lo, functools.partial(half, key_offset=block // 2), carry)
    carry = over_blocks(step_fn, (full_lo, full_hi, jax.lax.clamp(full_lo, inner_lo, full_hi),
                                  jax.lax.clamp(full_lo, inner_hi, full_hi)), carry)
    carry = jax.lax.fori_loop(full_hi, own_hi, functools.partial(half, key_offset=0), carry)
    return jax.lax.fori_loop(own_hi, hi, pass_fn, carry)


def per_step(index, step):
    """index (an int), recomputed at every step of a loop over `step` (never negative).

    Index a resident SMEM operand with this inside a streaming loop. Its wgmma descriptors
    (one 64-bit value per 16-wide k step) are otherwise loop-invariant, and LLVM hoists them
    out of the loop, where they stay live across it, 2 registers each: ptxas then spilled
    up to 600 bytes per thread in the backward kernels (NOTES.md v6). Derived from `step`,
    they are rebuilt in the loop for a few integer ops per step.
    """
    return jnp.where(step >= 0, index, index + 1)


def block_part(ref, key_offset, block):
    """ref [block, ...] (one ring slot), or its block // 2 rows from key_offset (a half block)."""
    return ref if key_offset is None else ref.at[pl.ds(key_offset, block // 2)]


def mask_block(s, row_start, row_end, first_col, *, mask_start, mask_end):
    """Logits s [R, C] (WGMMA layout) with the pairs outside [row_start, row_end) of its rows
    set to block_math.MASK_VALUE, columns numbered from first_col; as over_blocks asks (no
    compare, or the end's only).

    The masked result passes an optimization barrier, which emits no instruction. Seen
    through, LLVM rewrites select(mask, s, MASK) * scale as select(mask, s * scale, MASK *
    scale), which keeps a multiply per element ahead of exp2 instead of folding the scale
    into exp2's FFMA (the backward's SASS, NOTES.md v6)."""
    if not mask_end:
        return s
    shape = s.shape
    return jax.lax.optimization_barrier(
        bm.range_mask(s, bcast(row_start, shape, 0) if mask_start else None,
                      bcast(row_end, shape, 0), first_col + iota(shape, 1)))


def tiled_smem(shape, dtype):
    """SMEM buffer with the 128-byte swizzle that wgmma and TMA want (rows of 64 bf16)."""
    transforms = (plgpu.TilingTransform((8, 64)), plgpu.SwizzleTransform(128))
    return plgpu.SMEM(shape, dtype, transforms=transforms)


def mma_new(a_ref, b_ref, shape):
    """a_ref @ b_ref for two SMEM operands, into a fresh fp32 accumulator."""
    def body(acc_ref):
        plgpu.wgmma(acc_ref, a_ref, b_ref)
        return acc_ref[...]
    return pl.run_scoped(body, plgpu.ACC(shape, jnp.float32))


def mma_accumulate(acc, a, b_ref, *, interpret, after_issue=None):
    """acc + a @ b_ref with a in registers (bf16) and b in SMEM.

    after_issue runs once the matmul is issued and before it is awaited (compiled)
    so that waits for the next stream block overlap the tensor-core work.
    """
    if interpret:
        if after_issue is not None:
            after_issue()
        return acc + jnp.dot(a, b_ref[...], preferred_element_type=jnp.float32)

    def body(acc_ref):
        plgpu.wgmma(acc_ref, a, b_ref)
        if after_issue is not None:
            after_issue()
    return pl.run_state(body)(plgpu.ACC.init(acc))


def mma_accumulate_pair(acc0, a0, b0_ref, acc1, a1, b1_ref, *, interpret):
    """(acc0 + a0 @ b0_ref, acc1 + a1 @ b1_ref), register a, SMEM b: both matmuls are
    issued before either is awaited (one wgmma wait instead of two)."""
    if interpret:
        dot = lambda a, b_ref: jnp.dot(a, b_ref[...], preferred_element_type=jnp.float32)
        return acc0 + dot(a0, b0_ref), acc1 + dot(a1, b1_ref)

    def body(refs):
        acc0_ref, acc1_ref = refs
        plgpu.wgmma(acc0_ref, a0, b0_ref)
        plgpu.wgmma(acc1_ref, a1, b1_ref)
    return pl.run_state(body)((plgpu.ACC.init(acc0), plgpu.ACC.init(acc1)))


def load_vector(ref, layout):
    """Load a 1-D int/float vector from GMEM or SMEM into registers with `layout`."""
    return plgpu.load(ref, layout=layout, optimized=False)


class ItemInputs(NamedTuple):
    """A persistent kernel's per-item inputs, in two SMEM slots: the item's tile-table row
    (schedule.tile_table) and, per compute warpgroup, its rows' ranges (start, end). The
    producer copies item i+1's while item i runs; the compute warpgroups read them.
    row_smems [2, TABLE_ROW_INTS], start_smems / end_smems [2, COMPUTE_WGS, rows] int32; the
    start and end barriers are indexed slot * COMPUTE_WGS + warpgroup."""
    row_smems: Any
    row_bars: Any
    start_smems: Any
    start_bars: Any
    end_smems: Any
    end_bars: Any


def issue_item_inputs(inputs, table_ref, j, start_ref, end_ref, *, b, t, slot, chunk_rows,
                      per_chunk):
    """The producer's copies of tile-table row j and, for each compute warpgroup c, the ranges
    of its rows; per_chunk(c, rows, wslot) then issues the kernel's own copies of c's rows."""
    plgpu.copy_gmem_to_smem(table_ref.at[j], inputs.row_smems.at[slot], inputs.row_bars.at[slot])
    for c in range(COMPUTE_WGS):
        rows = pl.ds((t * COMPUTE_WGS + c) * chunk_rows, chunk_rows)
        wslot = slot * COMPUTE_WGS + c
        plgpu.copy_gmem_to_smem(start_ref.at[b, rows], inputs.start_smems.at[slot, c],
                                inputs.start_bars.at[wslot])
        plgpu.copy_gmem_to_smem(end_ref.at[b, rows], inputs.end_smems.at[slot, c],
                                inputs.end_bars.at[wslot])
        per_chunk(c, rows, wslot)


def read_item_inputs(inputs, slot, wg):
    """A compute warpgroup's item from `slot`, awaited: (b, t, bounds, row_start, row_end) with
    bounds its chunk's block_math.block_bounds row (the tile's lo, hi, then its own columns)."""
    plgpu.barrier_wait(inputs.row_bars.at[slot])
    row = inputs.row_smems.at[slot]
    b, t, lo, hi = (row[i] for i in range(sched.TABLE_FIXED))
    first = sched.TABLE_FIXED + sched.CHUNK_COLS * wg
    bounds = (lo, hi) + tuple(row[first + i] for i in range(sched.CHUNK_COLS))
    wslot = slot * COMPUTE_WGS + wg
    plgpu.barrier_wait(inputs.start_bars.at[wslot])
    row_start = load_vector(inputs.start_smems.at[slot, wg], WGMMA_ROW)
    plgpu.barrier_wait(inputs.end_bars.at[wslot])
    row_end = load_vector(inputs.end_smems.at[slot, wg], WGMMA_ROW)
    return b, t, bounds, row_start, row_end


def iota(shape, dim):
    return plgpu.broadcasted_iota(jnp.int32, shape, dim, layout=WGMMA)


def bcast(x, shape, dim):
    return jax.lax.broadcast_in_dim(x, shape, [dim])


# Mosaic GPU's on-device profiler, while kernel_trace() is active: CompilerParams fields, and
# the deepest scope level recorded.
_trace = {"params": {}, "level": 0}

# scope levels: a work item's phases (prologue, epilogue), or also each block's phases
ITEMS, BLOCKS = 1, 2


@contextlib.contextmanager
def kernel_trace(directory, *, ranges_per_warpgroup, level=ITEMS):
    """Kernels lowered inside this context record their `scope`s up to `level`: thread 0 of
    each warpgroup writes the SM clock at every scope's entry and exit into SMEM (16 bytes a
    range, ranges_per_warpgroup per warpgroup, the rest dropped), and each call dumps
    DIR/<ns>-trace.json (Chrome trace events; dsllm.bench.kernel_trace reads them). Off by
    default: a scope then emits no instruction."""
    old = dict(_trace)
    _trace.update(params=dict(profile_space=ranges_per_warpgroup, profile_dir=str(directory),
                              profile_bounds_check=True), level=level)
    try:
        yield
    finally:
        _trace.update(old)


class _Unrecorded(contextlib.ContextDecorator):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def scope(name, level=ITEMS):
    """A named phase of a warpgroup (a context manager or a decorator), recorded under
    kernel_trace; otherwise it does nothing."""
    return jax.named_scope(name) if _trace["level"] >= level else _Unrecorded()


def compiler_params():
    return plgpu.CompilerParams(approx_math=True, **_trace["params"])
