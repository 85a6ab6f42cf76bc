"""The dynamic deal of the persistent forward's items, modelled on CPU (NOTES.md v14).

Items cost their streamed blocks plus C0; programs take items from one list, in order, as
they free up (a ticket per item, fetched atomically; `ahead` = 1: each ticket taken one item
before it is needed). Prints, against the ideal (total / 132), the balance of the static snake
(schedule.work_item, what main runs), of the greedy deal over the same list, of the list in
sections of G (row, head) groups each sorted heaviest first, and of the list with only its
last X items sorted heaviest first (branch `dynamic-deal`: X = 4 waves = 528).

  PYTHONPATH=. python docs/kernels/scripts/v14_deal_model.py
"""
import heapq
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import v11_deal_model as m   # noqa: E402
from dsllm.bench.packed_rows import packed_segments   # noqa: E402
from dsllm.kernels import schedule as sched   # noqa: E402
from dsllm.kernels.mgpu_common import COMPUTE_WGS   # noqa: E402
from dsllm.kernels.plan import make_plan   # noqa: E402

P = m.PROGRAMS


def dynamic_makespan(costs, ahead=0):
    """Tickets taken in list order; a program takes the ticket of its item s + 1 + ahead when
    it starts item s."""
    n, taken = len(costs), 0
    queues = [[] for _ in range(P)]
    for _ in range(ahead + 1):
        for p in range(P):
            if taken < n:
                queues[p].append(taken)
                taken += 1
    heap, end = [(0.0, p) for p in range(P)], 0.0
    while heap:
        t, p = heapq.heappop(heap)
        if not queues[p]:
            end = max(end, t)
            continue
        w = queues[p].pop(0)
        if taken < n:
            queues[p].append(taken)
            taken += 1
        heapq.heappush(heap, (t + costs[w], p))
    return end


def item_costs(name, c0):
    B, S, H, _, docs = m.SHAPES[name]
    plan = make_plan(packed_segments(B, S, docs) if docs else None, B, S, causal=True)
    table = np.asarray(sched.tile_table(plan.fwd_bounds, COMPUTE_WGS))
    tiles = table.shape[0] // B
    row_cost = (table[:, 3] - table[:, 2]) + c0
    return tiles, np.array([row_cost[int(sched.item_coords(w, tiles=tiles, heads=H)[0])]
                            for w in range(len(row_cost) * H)])


if __name__ == "__main__":
    for c0 in (1.5, 2.5):
        m.C0 = c0
        for name in ("1", "3", "2"):
            tiles, costs = item_costs(name, c0)
            ideal = costs.sum() / P
            bal = lambda c, ahead=0: ideal / dynamic_makespan(c, ahead)
            print(f"C0 {c0} shape {name}: snake {ideal / m.snake_makespan(costs):.3f}, "
                  f"greedy in list order {bal(costs):.3f} (ahead 1: {bal(costs, 1):.3f})")
            sections = []
            for g in (4, 16, 32):
                sec = tiles * g
                order = np.concatenate([s + np.argsort(-costs[s:s + sec], kind="stable")
                                        for s in range(0, len(costs), sec)])
                sections.append(f"G{g} {bal(costs[order]):.3f}")
            tails = []
            for x in (132, 264, 528, 1056):
                c = np.concatenate([costs[:-x], np.sort(costs[-x:])[::-1]])
                tails.append(f"X{x} {bal(c):.3f}/{bal(c, 1):.3f}")
            print("   sections sorted: " + ", ".join(sections))
            print("   last X sorted (ahead 0/1): " + ", ".join(tails))
