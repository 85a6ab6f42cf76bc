"""Where an attention kernel's time goes, warpgroup by warpgroup: Mosaic GPU's on-device
profiler (clock stamps of each warpgroup's named phases, mgpu_common.scope) on one call of the
persistent forward, or of the gradient (--backward).

  python -m dsllm.bench.kernel_trace [--rows=dense|packed8|uniform512] [--level=items|blocks]
      [--ranges=N] [--dir=DIR] [--backward=none|auto|fused|split] [--shape=B,S,H,D]
      [--blocks=backward=split,stages=3,...]

Prints, per warpgroup role (compute 0, compute 1, producer), each phase's count, mean
cycles and share of the traced time, and a least-squares fit of a compute warpgroup's work
item cycles as a + b * (blocks the item streams), from the tile table: a is what an item costs
beyond its blocks, in cycles and in blocks (NOTES.md v8). Needs a Hopper GPU; the trace files
(Chrome trace events, viewable in Perfetto) stay in --dir.

At --level=items each warpgroup records about 5 ranges per item (all items of one call fit);
at --level=blocks also 6 per block, so only each program's first ~100 blocks are recorded
(the rest dropped). Each range takes 16 bytes of SMEM per warpgroup, beside the kernel's
~195 KB: --ranges over about 580 fails to lower (227 KB).

--backward traces the gradient: the forward and the backward kernels it runs (dQ and dK/dV,
or the fused one), each printed apart. The backward kernels run one program per tile, and
their dumps hold every program's events: use a smaller shape (--shape=1,4096,8,128: 256
programs per kernel) or the dump takes minutes.
"""
import dataclasses
import glob
import json
import os
import sys
import tempfile

import numpy as np
from absl import app, flags

import dsllm

ROWS = flags.DEFINE_string("rows", "dense", "dense, packed<docs per row> or uniform<length>")
LEVEL = flags.DEFINE_enum("level", "items", ["items", "blocks"], "phases to record")
RANGES = flags.DEFINE_integer("ranges", 0, "ranges per warpgroup (0: 200 items, 560 blocks)")
DIR = flags.DEFINE_string("dir", "", "where the traces go (default: a new temporary folder)")
SHAPE = flags.DEFINE_string("shape", "4,4096,32,128", "B,S,H,D")
# allow_override: ptxas_report and kernel_trace both define --blocks, and the tests import both.
BLOCKS = flags.DEFINE_string("blocks", "", "Blocks fields, e.g. stages=3,backward=split",
                             allow_override=True)
BACKWARD = flags.DEFINE_enum("backward", "none", ["none", "auto", "fused", "split"],
                             "none: the forward; else the gradient with this Blocks.backward")

WARPGROUPS = 3   # every kernel's two compute warpgroups and its producer


def read_trace(path, warpgroups=WARPGROUPS):
    """{(program, warpgroup): [(name, depth, start, end), ...] in entry order}, times in
    cycles from the warpgroup's first stamp. The dump names a warpgroup's events
    tid = 1 + warpgroup + warpgroups * program, with ts = (its start time + clock) / 1000."""
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    by_tid = {}
    for e in events:
        by_tid.setdefault(e["tid"], []).append(e)
    traces = {}
    for tid, evs in by_tid.items():
        program, wg = divmod(tid - 1, warpgroups)
        stack, ranges = [], []
        t0 = evs[0]["ts"]
        for e in evs:
            t = round((e["ts"] - t0) * 1000)
            if e["ph"] == "B":
                stack.append(len(ranges))
                ranges.append([e["name"], len(stack) - 1, t, None])
            else:
                ranges[stack.pop()][3] = t
        traces[(program, wg)] = [tuple(r) for r in ranges]
    return traces


def phase_table(traces, compute_wgs=2):
    """Lines: per role, each phase's count, mean cycles and share of the role's traced time
    (from first entry to last exit, summed over programs)."""
    lines = []
    roles = sorted({wg for _, wg in traces})
    for wg in roles:
        role = f"compute {wg}" if wg < compute_wgs else "producer"
        spans = sum(r[-1][3] - r[0][2] for (p, w), r in traces.items() if w == wg and r)
        stats = {}
        for (p, w), ranges in traces.items():
            if w != wg:
                continue
            for name, depth, start, end in ranges:
                key = ("  " * depth) + name
                n, total = stats.get(key, (0, 0))
                stats[key] = (n + 1, total + end - start)
        lines.append(f"{role}: {spans} cycles traced over "
                     f"{len({p for p, w in traces if w == wg})} programs")
        for key, (n, total) in stats.items():
            lines.append(f"  {key:<16} {n:7d} x {total / n:9.1f} cycles  {100 * total / spans:5.1f}%")
    return lines


def item_fit(traces, blocks_of, compute_wgs=2):
    """(a, b): least-squares item cycles = a + b * blocks over the compute warpgroups' "item"
    ranges (each program's last one dropped: it may be cut off); blocks_of(program, step)
    gives the blocks item `step` of `program` streams."""
    xs, ys = [], []
    for (program, wg), ranges in traces.items():
        if wg >= compute_wgs:
            continue
        items = [r for r in ranges if r[0] == "item" and r[1] == 0][:-1]
        for step, (_, _, start, end) in enumerate(items):
            xs.append(blocks_of(program, step))
            ys.append(end - start)
    return _fit(xs, ys, "items")


def _fit(xs, ys, what):
    if len(set(xs)) < 2:
        raise ValueError(f"the fit needs {what} of at least two block counts: trace other rows")
    (b, a), *_ = np.linalg.lstsq(np.stack([np.asarray(xs, float), np.ones(len(xs))], 1),
                                 np.asarray(ys, float), rcond=None)
    return a, b


def tile_fit(traces, top, block_names, compute_wgs=2):
    """(a, b): least-squares cycles = a + b * blocks over the compute warpgroups' top-level
    `top` ranges (a work item or a tile), blocks counted in the trace itself: the ranges named
    in block_names nested in it (so at the blocks level). A warpgroup's last one is dropped
    when it has several (the persistent forward's last item may be cut off)."""
    xs, ys = [], []
    for (program, wg), ranges in traces.items():
        if wg >= compute_wgs:
            continue
        tops = [i for i, r in enumerate(ranges) if r[0] == top and r[1] == 0]
        if len(tops) > 1:
            tops = tops[:-1]
        for i in tops:
            _, depth, start, end = ranges[i]
            nested = 0
            for name, d, _, _ in ranges[i + 1:]:
                if d <= depth:
                    break
                nested += name in block_names
            xs.append(nested)
            ys.append(end - start)
    return _fit(xs, ys, f'"{top}" ranges')


def item_edges(traces, compute_wgs=2):
    """Lines: per compute warpgroup, mean cycles from an item's start to its first QK^T, from
    its last P V to its end, and the period of its first block against the others' (between
    consecutive "qk" entries), over the items with at least three own blocks (each program's
    first and last item dropped: the pipeline fills, and a trace may be cut off)."""
    lines = []
    for wg in range(compute_wgs):
        head, tail, first, rest = [], [], [], []
        sync_first, sync_rest, turn_last, turn_rest = [], [], [], []
        for (program, w), ranges in traces.items():
            if w != wg:
                continue
            starts = [i for i, r in enumerate(ranges) if r[0] == "item" and r[1] == 0]
            for a, b in zip(starts[1:-1], starts[2:]):
                inner = ranges[a + 1:b]
                qk = [r[2] for r in inner if r[0] == "qk"]
                pv_end = [r[3] for r in inner if r[0] == "pv"]
                if len(qk) < 3:
                    continue
                head.append(qk[0] - ranges[a][2])
                tail.append(ranges[a][3] - pv_end[-1])
                first.append(qk[1] - qk[0])
                rest += [y - x for x, y in zip(qk[1:], qk[2:])]
                syncs = [r[3] - r[2] for r in inner if r[0] == "sync"]
                turns = [r[3] - r[2] for r in inner if r[0] == "turn"]
                sync_first.append(syncs[0])
                sync_rest += syncs[1:]
                turn_last.append(turns[-1])
                turn_rest += turns[:-1]
        if head:
            lines.append(f"compute {wg}: {len(head)} items: start to first qk {np.mean(head):.0f}, "
                         f"last pv to end {np.mean(tail):.0f}, first block's period "
                         f"{np.mean(first):.0f} against {np.mean(rest):.0f} cycles; first own "
                         f"block's sync {np.mean(sync_first):.0f} against {np.mean(sync_rest):.0f}, "
                         f"last own block's turn {np.mean(turn_last):.0f} against "
                         f"{np.mean(turn_rest):.0f}")
    return lines


def segments(rows, B, S):
    import jax.numpy as jnp
    from dsllm.bench.packed_rows import packed_segments
    if rows == "dense":
        return None
    if rows.startswith("packed"):
        return packed_segments(B, S, int(rows[len("packed"):]))
    if rows.startswith("uniform"):
        length = int(rows[len("uniform"):])
        return jnp.asarray(np.broadcast_to(np.arange(S) // length + 1, (B, S)).astype(np.int32))
    raise ValueError(f"--rows={rows!r}: use dense, packed<docs> or uniform<length>")


KERNEL_SCOPES = {"item": "forward", "softmax": "forward", "dq_tile": "dQ", "dkv_tile": "dK/dV",
                 "fused_tile": "fused backward"}
# per kernel: its work item's or tile's range, and the ranges that count its blocks
TILES = {"forward": ("item", ("qk", "pass")), "dQ": ("dq_tile", ("s_dp", "pass")),
         "dK/dV": ("dkv_tile", ("s_dp", "pass")), "fused backward": ("fused_tile", ("s_dp",))}


def kernel_name(traces):
    """Which kernel a trace is of, from its scopes' names."""
    names = {r[0] for ranges in traces.values() for r in ranges}
    return next((kernel for scope, kernel in KERNEL_SCOPES.items() if scope in names), "?")


def trace_call(rows, shape, level, ranges, directory, backward=None, blocks=None):
    """Run the forward (backward None) or the gradient with `blocks` (default Blocks()), its
    backward set to `backward`, once on `rows` (see segments) of shape (B, S, H, D) with the
    kernels' phases recorded. Returns
    ([(kernel name, trace path, read_trace of it)] in the order the kernels ran,
    blocks_of(program, step) of the persistent forward's items)."""
    import jax
    import jax.numpy as jnp
    from dsllm.kernels import mgpu_common as mc
    from dsllm.kernels import schedule as sched
    from dsllm.kernels.flash_attention import _max_programs, flash_attention
    from dsllm.kernels.plan import make_plan

    B, S, H, D = shape
    os.makedirs(directory, exist_ok=True)
    keys = jax.random.split(jax.random.key(0), 3)
    q, k, v = (jax.random.normal(key, (B, S, H, D), jnp.bfloat16) for key in keys)
    seg = segments(rows, B, S)
    blocks = blocks or mc.Blocks()
    if backward:
        blocks = dataclasses.replace(blocks, backward=backward)
    plan = make_plan(seg, B, S, causal=True, blocks=blocks)
    attn = lambda q, k, v, p: flash_attention(q, k, v, seg, plan=p)
    if backward:
        f = jax.grad(lambda q, k, v, p: attn(q, k, v, p).astype(jnp.float32).sum(), (0, 1, 2))
    else:
        f = attn
    before = set(glob.glob(os.path.join(directory, "*-trace.json")))
    with mc.kernel_trace(directory, ranges_per_warpgroup=ranges, level=level):
        jax.block_until_ready(jax.jit(f)(q, k, v, plan))
        jax.effects_barrier()   # the dumps are host callbacks
    new = sorted(set(glob.glob(os.path.join(directory, "*-trace.json"))) - before)
    if not new:
        raise SystemExit(f"no trace was written to {directory}: is this a Hopper GPU?")
    kernels = []
    for path in new:   # named by the dump's time in ns: the order the kernels ran
        traces = read_trace(path)
        kernels.append((kernel_name(traces), path, traces))

    table = np.asarray(sched.tile_table(plan.fwd_bounds, mc.COMPUTE_WGS))
    tiles = S // (mc.COMPUTE_WGS * plan.blocks.block_q)
    programs = sched.num_programs(table.shape[0] * H, _max_programs(False))

    def blocks_of(program, step):
        w = int(sched.work_item(program, step, programs))
        row, _ = sched.item_coords(w, tiles=tiles, heads=H)
        return int(table[int(row), 3] - table[int(row), 2])
    return kernels, blocks_of


def main(argv):
    del argv
    from dsllm.kernels import mgpu_common as mc
    shape = tuple(int(x) for x in SHAPE.value.split(","))
    level = mc.ITEMS if LEVEL.value == "items" else mc.BLOCKS
    ranges = RANGES.value or (200 if level == mc.ITEMS else 560)
    directory = DIR.value or tempfile.mkdtemp(prefix="kernel_trace_")
    backward = None if BACKWARD.value == "none" else BACKWARD.value
    from dsllm.kernels.mgpu_common import parse_blocks
    # Which dsllm runs (trees compared by PYTHONPATH need `python -P -m`: NOTES.md v10).
    print(f"dsllm from {os.path.dirname(dsllm.__file__)}", flush=True)
    kernels, blocks_of = trace_call(ROWS.value, shape, level, ranges, directory, backward,
                                    parse_blocks(BLOCKS.value))
    for name, path, traces in kernels:
        print(f"== {name}: {ROWS.value} rows, B,S,H,D {shape}, level {LEVEL.value}: {path}")
        print("\n".join(phase_table(traces)))
        if level == mc.BLOCKS and name in TILES:
            a, b = tile_fit(traces, *TILES[name])
            print(f"{TILES[name][0]} cycles = {a:.0f} + {b:.0f} * own blocks (counted in the "
                  f"trace): {a / b:.2f} blocks beyond its own")
        if name != "forward":
            continue
        print("\n".join(item_edges(traces)))
        if level == mc.ITEMS:
            a, b = item_fit(traces, blocks_of)
            print(f"item cycles = {a:.0f} + {b:.0f} * blocks: an item costs {a / b:.2f} blocks "
                  f"beyond its own")


if __name__ == "__main__":
    sys.exit(app.run(main))
