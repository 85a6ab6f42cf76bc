"""The persistent kernels' deal of work items, modelled on CPU (NOTES.md v11).

Each item's cost is its streamed blocks (times the query heads a dK/dV item carries under
GQA) plus C0 for its fixed part; a program's load is the sum of its items. Prints, against
the ideal (total / programs), the balance of the deal the kernels use (schedule.work_item and
item_coords over schedule.tile_table), of the same waves dealt heaviest item to least-loaded
program, of all items heaviest first, and of the hardware's greedy launch of the per-tile
dK/dV grid (kv_heads, kv_tiles, batch).

  PYTHONPATH=. python docs/kernels/scripts/v11_deal_model.py
"""
import heapq

import numpy as np

from dsllm.bench.packed_rows import packed_segments
from dsllm.kernels import schedule as sched
from dsllm.kernels.mgpu_common import COMPUTE_WGS
from dsllm.kernels.plan import make_plan

PROGRAMS = 132   # SMs of an H200
C0 = 2.0         # an item's fixed cost, in blocks

# name: (B, S, H, KV heads, documents per row or 0): the bench's shapes 1-4
SHAPES = {"1": (4, 4096, 32, 32, 0), "2": (2, 8192, 64, 8, 0), "3": (4, 4096, 32, 32, 8),
          "4": (2, 8192, 64, 8, 16)}


def snake_makespan(costs):
    """The list of item costs dealt as the kernels deal items: program p runs items
    schedule.work_item(p, step) for its schedule.num_steps (waves, alternate ones reversed)."""
    n = len(costs)
    return max(sum(costs[int(sched.work_item(p, step, PROGRAMS))]
                   for step in range(int(sched.num_steps(p, n, PROGRAMS))))
               for p in range(PROGRAMS))


def greedy_makespan(costs):
    """Each item to the program that frees first (the hardware launching per-tile programs)."""
    loads = [0.0] * PROGRAMS
    for c in costs:
        heapq.heappush(loads, heapq.heappop(loads) + c)
    return max(loads)


def wave_lpt_makespan(costs):
    """The same waves (so the same (row, head) groups run together), each wave's items heaviest
    first to the least-loaded programs: a deal the kernels would have to read from a table."""
    loads = np.zeros(PROGRAMS)
    for s in range(0, len(costs), PROGRAMS):
        wave = np.sort(costs[s:s + PROGRAMS])[::-1]
        loads[np.argsort(loads, kind="stable")[:len(wave)]] += wave
    return loads.max()


def balance(B, S, H, K, docs, kind):
    plan = make_plan(packed_segments(B, S, docs) if docs else None, B, S, causal=True)
    bounds = plan.dkv_bounds if kind == "dkv" else plan.fwd_bounds
    heads, per_item = (K, H // K) if kind == "dkv" else (H, 1)
    table = np.asarray(sched.tile_table(bounds, COMPUTE_WGS))
    tiles = table.shape[0] // B
    row_cost = per_item * (table[:, 3] - table[:, 2]) + C0
    dealt = np.array([row_cost[int(sched.item_coords(w, tiles=tiles, heads=heads)[0])]
                      for w in range(len(row_cost) * heads)])
    ideal = dealt.sum() / PROGRAMS
    out = {"items": len(dealt), "deal": ideal / snake_makespan(dealt),
           "wave LPT": ideal / wave_lpt_makespan(dealt),
           "heaviest first": ideal / snake_makespan(np.sort(dealt)[::-1])}
    if kind == "dkv":
        b = np.asarray(bounds)
        grid = [per_item * (b[r, t * COMPUTE_WGS, 1] - b[r, t * COMPUTE_WGS, 0]) + C0
                for r in range(B) for t in range(tiles) for _ in range(K)]
        out["per-tile greedy"] = ideal / greedy_makespan(grid)
    return out


if __name__ == "__main__":
    for kind in ("fwd", "dkv"):
        for name, shape in SHAPES.items():
            res = balance(*shape, kind)
            print(f"shape {name} {kind}: " + ", ".join(
                f"{k} {v}" if k == "items" else f"{k} {v:.3f}" for k, v in res.items()))
