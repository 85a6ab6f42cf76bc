"""Where the time goes: device kernels of a jax.profiler trace, grouped and ranked.

    python -m dsllm.bench.profile_summary DIR [--top 30] [--stats]

Reads the newest *.xplane.pb under DIR (written by `dsllm.bench.train_step --profile_dir=DIR`)
and prints, for the GPU/TPU planes, total kernel time per kernel name and per category
(matmul, attention, elementwise/fusion, copies, collectives), as shares of the device time,
and how busy the device was: the span from the first kernel's start to the last one's end,
the time some kernel was running (the union of their intervals), the idle rest, and the
idle time in gaps of at least 5 us between kernels (what launch overhead looks like).
"""

import collections
import glob
import os
import re
import sys

from jax.profiler import ProfileData

CATEGORIES = [
    ("attention", re.compile(r"flash|fmha|attention|cudnn|sdpa|mha", re.I)),
    ("matmul", re.compile(r"gemm|matmul|cutlass|xmma|sm90_|nvjet|dot", re.I)),
    ("collective", re.compile(r"nccl|all-reduce|all-gather|reduce-scatter", re.I)),
    ("copy/transpose", re.compile(r"copy|transpose|memcpy|memset", re.I)),
    ("reduction", re.compile(r"reduce", re.I)),
    ("fusion/elementwise", re.compile(r"fusion|loop|input|convert|multiply|add|exp", re.I)),
]


def categorize(name: str) -> str:
    for cat, pattern in CATEGORIES:
        if pattern.search(name):
            return cat
    return "other"


def summarize(path: str, top: int = 30, stats: bool = False) -> str:
    files = sorted(glob.glob(os.path.join(path, "**", "*.xplane.pb"), recursive=True), key=os.path.getmtime)
    if not files:
        raise FileNotFoundError(f"no *.xplane.pb under {path}")
    data = ProfileData.from_file(files[-1])
    per_kernel, per_cat, total = collections.Counter(), collections.Counter(), 0
    launches = collections.Counter()
    first_stats = {}   # kernel name -> its first event's stats (launch shape, registers, ...)
    intervals = []
    ops_of = collections.defaultdict(collections.Counter)  # kernel name -> the XLA ops that launched it
    op_launches = collections.defaultdict(collections.Counter)
    for plane in data.planes:
        if not plane.name.startswith("/device:"):
            continue
        for line in plane.lines:
            if "stream" not in line.name.lower():
                continue  # kernel timelines only (not the per-op "XLA Ops" summary lines)
            for event in line.events:
                per_kernel[event.name] += event.duration_ns
                launches[event.name] += 1
                first_stats.setdefault(event.name, event.stats)
                intervals.append((event.start_ns, event.start_ns + event.duration_ns))
                for key, value in event.stats:
                    if key in ("hlo_op", "tf_op", "name"):
                        ops_of[event.name][str(value)[:60]] += event.duration_ns
                        op_launches[event.name][str(value)[:60]] += 1
                per_cat[categorize(event.name)] += event.duration_ns
                total += event.duration_ns
    if not total:
        lines = {p.name: [l.name for l in p.lines][:8] for p in data.planes}
        return f"no device kernel events found; planes and lines: {lines}"
    out = [f"device kernel time {total / 1e6:.1f} ms in {files[-1]}", busy_line(intervals), "by category:"]
    out += [f"  {cat:20s} {ns / 1e6:9.1f} ms {100 * ns / total:5.1f}%" for cat, ns in per_cat.most_common()]
    out.append(f"top {top} kernels:")
    for name, ns in per_kernel.most_common(top):
        # per launching op: total ms, launches, mean ms per launch
        ops = ", ".join(f"{op} {v / 1e6:.1f} ({op_launches[name][op]}x "
                        f"{v / 1e6 / op_launches[name][op]:.3f})" for op, v in ops_of[name].most_common(4))
        out.append(f"  {ns / 1e6:9.1f} ms {100 * ns / total:5.1f}% {launches[name]:6d}x  {name[:90]}" +
                   (f"  [{ops}]" if ops else ""))
        if stats:
            out.append("      " + ", ".join(f"{k}={str(v)[:40]}" for k, v in first_stats[name]
                                            if k not in ("hlo_op", "tf_op", "name")))
    return "\n".join(out)


def busy_line(intervals, min_gap_ns=5_000):
    """Span, busy time (union of kernel intervals), idle time, and idle time in gaps >= min_gap_ns."""
    intervals = sorted(intervals)
    span = intervals[-1][1] - intervals[0][0] if intervals else 0
    busy = long_gaps = n_long = 0
    cur_start, cur_end = intervals[0] if intervals else (0, 0)
    for start, end in intervals[1:]:
        if start > cur_end:
            busy += cur_end - cur_start
            if start - cur_end >= min_gap_ns:
                long_gaps += start - cur_end
                n_long += 1
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    busy += cur_end - cur_start
    return (f"span {span / 1e6:.1f} ms, busy {busy / 1e6:.1f} ms ({100 * busy / max(span, 1):.1f}%), "
            f"idle {(span - busy) / 1e6:.1f} ms, of which {long_gaps / 1e6:.1f} ms in {n_long} gaps "
            f">= {min_gap_ns / 1e3:.0f} us; {len(intervals)} kernels")


if __name__ == "__main__":
    args = sys.argv[1:]
    top = 30
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    stats = "--stats" in args
    if stats:
        args.remove("--stats")
    print(summarize(args[0], top, stats))
