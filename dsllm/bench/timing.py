"""Timing device functions: medians of bursts, and several functions interleaved in rounds so
that their ratios are paired (dsllm.bench.attention, the kernel scripts in docs/kernels)."""
import statistics
import time

import jax


def median_seconds(f, *args, burst=5, iters=20, warmup=3):
    """Median seconds per call over `iters` bursts of `burst` calls queued back to back, so
    that the host's dispatch and sync overhead stays out of short kernels' times; `warmup`
    untimed calls first."""
    for _ in range(warmup):
        jax.block_until_ready(f(*args))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        outs = [f(*args) for _ in range(burst)]
        jax.block_until_ready(outs)
        times.append((time.perf_counter() - t) / burst)
    return statistics.median(times)


def interleaved_seconds(fns, args, *, rounds, warm_seconds, spans=None, warmup=3,
                        **median_kw):
    """{name: [seconds per call, one per round]} for fns {name: f(*args)}.

    Each round times every function in turn (median_seconds), so that slow drifts of the
    device (its clocks rising from idle, heat) fall on all of them alike, and the rounds
    pair them: a ratio is read per round. Before the first round the first function runs
    for warm_seconds: the bench compiles for minutes, and a GPU idle that long starts the
    timing at low clocks (the v9 runs moved 4-8% between runs of one tree, NOTES.md v9).
    spans, a list, gets (name, round, start, end) of each timing in seconds since the epoch,
    to be matched with clock samples taken beside the run (dsllm.bench.clocks).
    """
    if not fns:
        return {}
    first = next(iter(fns.values()))
    end = time.perf_counter() + warm_seconds
    while time.perf_counter() < end:
        jax.block_until_ready(first(*args))
    times = {name: [] for name in fns}
    for r in range(rounds):
        for name, f in fns.items():
            # Warmed outside the span: a function's first warm-up call may compile it (seconds
            # of an idle GPU; v14 call 4's first round read 117 W).
            for _ in range(warmup):
                jax.block_until_ready(f(*args))
            start = time.time()
            times[name].append(median_seconds(f, *args, warmup=0, **median_kw))
            if spans is not None:
                spans.append((name, r, start, time.time()))
    return times


def paired_ratios(times, ours, other):
    """Per-round ratios other / ours of interleaved_seconds' times (ours' speed-up)."""
    return [b / a for a, b in zip(times[ours], times[other])]
