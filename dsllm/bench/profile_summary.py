"""Where the time goes: device kernels of a jax.profiler trace, grouped and ranked.

    python -m dsllm.bench.profile_summary DIR [--top 30]

Reads the newest *.xplane.pb under DIR (written by `dsllm.bench.train_step --profile_dir=DIR`)
and prints, for the GPU/TPU planes, total kernel time per kernel name and per category
(matmul, attention, elementwise/fusion, copies, collectives), as shares of the device time.
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


def summarize(path: str, top: int = 30) -> str:
    files = sorted(glob.glob(os.path.join(path, "**", "*.xplane.pb"), recursive=True), key=os.path.getmtime)
    if not files:
        raise FileNotFoundError(f"no *.xplane.pb under {path}")
    data = ProfileData.from_file(files[-1])
    per_kernel, per_cat, total = collections.Counter(), collections.Counter(), 0
    ops_of = collections.defaultdict(collections.Counter)  # kernel name -> the XLA ops that launched it
    for plane in data.planes:
        if not plane.name.startswith("/device:"):
            continue
        for line in plane.lines:
            if "stream" not in line.name.lower():
                continue  # kernel timelines only (not the per-op "XLA Ops" summary lines)
            for event in line.events:
                per_kernel[event.name] += event.duration_ns
                for key, value in event.stats:
                    if key in ("hlo_op", "tf_op", "name"):
                        ops_of[event.name][str(value)[:60]] += event.duration_ns
                per_cat[categorize(event.name)] += event.duration_ns
                total += event.duration_ns
    if not total:
        lines = {p.name: [l.name for l in p.lines][:8] for p in data.planes}
        return f"no device kernel events found; planes and lines: {lines}"
    out = [f"device kernel time {total / 1e6:.1f} ms in {files[-1]}", "by category:"]
    out += [f"  {cat:20s} {ns / 1e6:9.1f} ms {100 * ns / total:5.1f}%" for cat, ns in per_cat.most_common()]
    out.append(f"top {top} kernels:")
    for name, ns in per_kernel.most_common(top):
        ops = ", ".join(f"{op} {v / 1e6:.1f}" for op, v in ops_of[name].most_common(4))
        out.append(f"  {ns / 1e6:9.1f} ms {100 * ns / total:5.1f}%  {name[:90]}" + (f"  [{ops}]" if ops else ""))
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    top = 30
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    print(summarize(args[0], top))
