"""The kernel tracer (mgpu_common.kernel_trace, dsllm.bench.kernel_trace): the forward lowers
for CUDA with Mosaic GPU's profiler at both levels, within the SMEM limit, and only inside the
context; the trace reader and the item fit on a dump-format trace."""
import json
import re

import jax
import jax.numpy as jnp
import pytest

from dsllm.bench.kernel_trace import item_fit, phase_table, read_trace
from dsllm.kernels import mgpu_common as mc
from dsllm.kernels.flash_attention import flash_attention


def _lowered_forward():
    q = jax.ShapeDtypeStruct((1, 1024, 4, 128), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((1, 1024), jnp.int32)
    fwd = jax.jit(lambda q, k, v, s: flash_attention(q, k, v, s, causal=True,
                                                     backend="mosaic_gpu", interpret=False))
    return fwd.trace(q, q, q, seg).lower(lowering_platforms=("cuda",)).as_text()


def _kernel_results(text):
    """The result count of each Mosaic GPU custom call, in order."""
    return [int(n or 1) for n in re.findall(r"%\d+(?::(\d+))? = stablehlo.custom_call @mosaic_gpu",
                                            text)]


@pytest.fixture
def no_dump(monkeypatch):
    """The profiled kernel dumps its buffer through a host callback, which lowers only on the
    GPU's own backend: leave it out of a CPU lowering for CUDA."""
    monkeypatch.setattr(jax.debug, "callback", lambda *args, **kwargs: None)


@pytest.mark.parametrize("level, ranges", [(mc.ITEMS, 200), (mc.BLOCKS, 560)])
def test_the_forward_lowers_with_the_profiler_only_inside_the_context(tmp_path, no_dump, level,
                                                                      ranges):
    plain = _lowered_forward()
    with mc.kernel_trace(tmp_path, ranges_per_warpgroup=ranges, level=level):
        traced = _lowered_forward()
    # the profiler's buffer: a third result of the forward's custom call (out, lse)
    assert _kernel_results(plain) == [2] and _kernel_results(traced) == [3]
    assert _kernel_results(_lowered_forward()) == [2]   # the context restores plain kernels


@pytest.mark.parametrize("backward", ["fused", "split"])
def test_the_backward_kernels_lower_with_the_profiler(tmp_path, no_dump, backward):
    q = jax.ShapeDtypeStruct((1, 1024, 4, 128), jnp.bfloat16)
    seg = jax.ShapeDtypeStruct((1, 1024), jnp.int32)
    loss = lambda q, k, v, s: flash_attention(q, k, v, s, causal=True, backend="mosaic_gpu",
                                              interpret=False,
                                              blocks=mc.Blocks(backward=backward)).sum()
    lower = lambda: jax.jit(jax.grad(loss, argnums=(0, 1, 2))).trace(q, q, q, seg).lower(
        lowering_platforms=("cuda",)).as_text()   # a new jit: traced again
    plain = _kernel_results(lower())
    with mc.kernel_trace(tmp_path, ranges_per_warpgroup=560, level=mc.BLOCKS):
        traced = _kernel_results(lower())
    # forward and fused, or forward, dQ and dK/dV: each with the profiler's buffer
    assert len(plain) == (2 if backward == "fused" else 3)
    assert traced == [n + 1 for n in plain]


def test_more_ranges_than_smem_holds_are_refused(tmp_path, no_dump):
    with mc.kernel_trace(tmp_path, ranges_per_warpgroup=700), pytest.raises(Exception, match="smem"):
        _lowered_forward()


def _dump(path, items):
    """A trace in the format of jax's Mosaic GPU profiler dump: items[(program, wg)] is a
    list of (start, end) cycles of "item" ranges, each with a nested "store" at its end."""
    events = []
    for (program, wg), ranges in items.items():
        tid = 1 + wg + 3 * program
        for start, end in ranges:
            for name, ph, t in (("item", "B", start), ("store", "B", end - 10),
                                ("store", "E", end - 1), ("item", "E", end)):
                events.append({"name": name, "ph": ph, "ts": (5e6 + t) / 1e3, "pid": 1, "tid": tid})
    path.write_text(json.dumps({"displayTimeUnit": "ns", "traceEvents": events}))


def test_read_trace_and_item_fit(tmp_path):
    blocks = {(p, s): 1 + (3 * p + 5 * s) % 7 for p in range(2) for s in range(6)}
    a, b = 3000, 1700   # cycles per item beyond its blocks, per block
    items = {}
    for p in range(2):
        for wg in range(2):
            t, ranges = 0, []
            for s in range(6):
                ranges.append((t, t + a + b * blocks[p, s]))
                t = ranges[-1][1] + 40
            items[p, wg] = ranges
    items[0, 2] = [(0, 100)]   # the producer
    _dump(tmp_path / "t.json", items)
    traces = read_trace(tmp_path / "t.json")
    assert sorted(traces) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    name, depth, start, end = traces[1, 1][1]
    assert (name, depth, end - start) == ("store", 1, 9)
    fit_a, fit_b = item_fit(traces, lambda p, s: blocks[p, s])
    assert fit_a == pytest.approx(a, abs=1) and fit_b == pytest.approx(b, abs=1)
    lines = phase_table(traces)
    assert lines[0].startswith("compute 0:") and any(l.startswith("producer:") for l in lines)
    assert any("  store" in l for l in lines)   # nested ranges are indented


def test_item_fit_needs_two_block_counts(tmp_path):
    _dump(tmp_path / "t.json", {(0, 0): [(0, 10), (20, 30), (40, 50)]})
    with pytest.raises(ValueError, match="two block counts"):
        item_fit(read_trace(tmp_path / "t.json"), lambda p, s: 4)


def test_item_edges(tmp_path):
    """Four items of three blocks (period 100, the first 150): 20 cycles from an item's start
    to its first qk, 30 from its last pv to its end; the first block's sync 40 cycles (the
    others 10), the last block's turn 25 (the others 8)."""
    events, t = [], 0
    stamp = lambda name, ph, ts: events.append(
        {"name": name, "ph": ph, "ts": (1e6 + ts) / 1e3, "pid": 1, "tid": 1})
    for _ in range(4):
        stamp("item", "B", t)
        qk = [t + 20, t + 170, t + 270]
        for i, q in enumerate(qk):
            stamp("qk", "B", q), stamp("qk", "E", q + 5)
            stamp("sync", "B", q + 5), stamp("sync", "E", q + 5 + (40 if i == 0 else 10))
            stamp("turn", "B", q + 45), stamp("turn", "E", q + 45 + (25 if i == 2 else 8))
            stamp("pv", "B", q + 75), stamp("pv", "E", q + 90)
        stamp("item", "E", qk[-1] + 90 + 30)
        t = qk[-1] + 90 + 30 + 7
    (tmp_path / "t.json").write_text(json.dumps({"traceEvents": events}))
    from dsllm.bench.kernel_trace import item_edges
    [line] = item_edges(read_trace(tmp_path / "t.json"))
    # items 2 and 3 of 4 (the first and last are dropped)
    assert line == ("compute 0: 2 items: start to first qk 20, last pv to end 30, first block's "
                    "period 150 against 100 cycles; first own block's sync 40 against 10, last own "
                    "block's turn 25 against 8")


def test_tile_fit_counts_the_blocks_nested_in_each_tile(tmp_path):
    """One tile per program (as the backward kernels run), 400 + 100 * blocks cycles, the
    blocks being its nested s_dp and pass ranges (dlogits ranges do not count)."""
    events = []
    for program, n_blocks in enumerate([2, 5, 3]):
        tid = 1 + 3 * program
        stamp = lambda name, ph, ts: events.append(
            {"name": name, "ph": ph, "ts": (1e6 + ts) / 1e3, "pid": 1, "tid": tid})
        stamp("dkv_tile", "B", 0)
        for i in range(n_blocks):
            name = "pass" if i == 0 else "s_dp"
            stamp(name, "B", 200 + 100 * i), stamp(name, "E", 240 + 100 * i)
            stamp("dlogits", "B", 250 + 100 * i), stamp("dlogits", "E", 260 + 100 * i)
        stamp("dkv_tile", "E", 400 + 100 * n_blocks)
    (tmp_path / "t.json").write_text(json.dumps({"traceEvents": events}))
    from dsllm.bench.kernel_trace import TILES, tile_fit
    a, b = tile_fit(read_trace(tmp_path / "t.json"), *TILES["dK/dV"])
    assert a == pytest.approx(400) and b == pytest.approx(100)
