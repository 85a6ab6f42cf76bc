"""The benchmark tools: profile_summary's busy/idle accounting, train_step's kernel count and
batches, timing, clocks, the attention bench's shapes and the script itself on CPU."""
import json
import os
import subprocess
import sys

from helpers import REPO
from dsllm.bench.profile_summary import busy_line


def test_busy_line_unions_overlaps_and_counts_long_gaps():
    # [0, 10us) and [5, 20us) overlap -> busy 20us; gap of 2us (short); [22, 30us); gap 70us; [100, 110us)
    us = 1_000
    line = busy_line([(0, 10 * us), (5 * us, 20 * us), (22 * us, 30 * us), (100 * us, 110 * us)])
    assert "span 0.1 ms" in line
    assert "busy 0.0 ms (34.5%)" in line          # 38us of 110us
    assert "0.1 ms in 1 gaps >= 5 us" in line      # only the 70us gap is long
    assert line.endswith("4 kernels")


def test_busy_line_without_events():
    assert busy_line([]).startswith("span 0.0 ms, busy 0.0 ms")


def test_mosaic_kernel_calls_counts_call_sites_in_optimised_hlo():
    from dsllm.bench.train_step import mosaic_kernel_calls
    hlo = """
  %mpmd_map.14 = (bf16[8,4096,16,128]{3,2,1,0}, f32[8,16,4096]{2,1,0}) custom-call(%p0.2), custom_call_target="mosaic_gpu_v2", operand_layout_constraints={}
  %mpmd_map.0 = (bf16[8,4096,16,128]{3,2,1,0}) custom-call(%a), custom_call_target="mosaic_gpu_v2"
  %fmha = (bf16[8,4096,16,128]{3,2,1,0}) custom-call(%a), custom_call_target="__cudnn$fmhaSoftmax"
"""
    assert mosaic_kernel_calls(hlo) == 2


def test_expected_kernel_calls_follow_the_remat_policies():
    """The policies that keep the attention results (model.transformer.REMAT_POLICIES) run the
    forward once; the others run it again in the backward."""
    from dsllm.bench.train_step import expected_kernel_calls
    from dsllm.model.transformer import REMAT_POLICIES
    assert {p: expected_kernel_calls(p) for p in REMAT_POLICIES} == {
        "none": 4, "dots": 5, "dots_attn": 4, "qkv_attn": 4, "full": 5}
    assert expected_kernel_calls("dots_attn", "split") == 3
    assert expected_kernel_calls("dots_attn", "fused") == 2
    assert expected_kernel_calls("full", "fused") == 3


def test_interleaved_seconds_times_every_function_each_round_after_warming_the_first():
    import time
    import jax.numpy as jnp
    from dsllm.bench import timing
    calls = []

    def fn(name, seconds):
        def f(x):
            calls.append(name)
            time.sleep(seconds)
            return x
        return f

    fns = {"slow": fn("slow", 0.004), "fast": fn("fast", 0.001)}
    spans = []
    times = timing.interleaved_seconds(fns, (jnp.zeros(2),), rounds=3, warm_seconds=0.05,
                                          iters=2, warmup=0, burst=1, spans=spans)
    warm = len(calls) - 12                       # 3 rounds x 2 functions x 2 timed calls
    assert warm >= 5 and set(calls[:warm]) == {"slow"}   # 0.05 s of the first one, first
    assert calls[warm:] == (["slow"] * 2 + ["fast"] * 2) * 3   # each round, each in turn
    assert [len(t) for t in times.values()] == [3, 3]
    assert all(s > f for s, f in zip(times["slow"], times["fast"]))
    ratios = timing.paired_ratios(times, "fast", "slow")   # fast's speed-up, per round
    assert len(ratios) == 3 and all(r > 1.5 for r in ratios)
    # each timing's span, in order, in wall-clock seconds, one after the other
    assert [(n, r) for n, r, _, _ in spans] == [(n, r) for r in range(3) for n in ("slow", "fast")]
    assert all(s < e for _, _, s, e in spans) and all(
        a[3] <= b[2] for a, b in zip(spans, spans[1:]))


def test_clocks_by_timing_matches_samples_to_spans(tmp_path):
    import datetime
    from dsllm.bench import clocks
    t0 = datetime.datetime(2026, 12, 1, 3, 40, 0)
    lines = ["timestamp, clocks.current.sm [MHz], power.draw [W]"] + [
        f"{(t0 + datetime.timedelta(seconds=0.5 * i)).strftime('%Y/%m/%d %H:%M:%S.%f')[:-3]}, "
        f"{1500 + 10 * i} MHz, {600 + i}.00 W" for i in range(10)] + ["garbage line"]
    path = tmp_path / "clocks.csv"
    path.write_text("\n".join(lines))
    samples = clocks.read_samples(path)
    assert len(samples) == 10 and samples[3][1:] == (1530.0, 603.0)
    start = t0.timestamp()
    spans = [("a", 0, start - 0.1, start + 1.1), ("b", 0, start + 1.9, start + 2.6),
             ("a", 1, start + 4.4, start + 4.6), ("c", 0, start + 10, start + 11)]
    got = clocks.clocks_by_timing(samples, spans)
    # a: samples 0, 1, 2 and 9; b: 4 and 5; c: none inside its span
    assert got == {"a": (1515.0, 601.5, 4), "b": (1545.0, 604.5, 2)}


def test_document_offsets_describe_packed_rows_for_cudnn():
    """Document starts and lengths, padded with -1 to the row with the most documents (cuDNN's
    packed layout); ids that come back later in a row are refused, not merged."""
    import numpy as np
    import pytest
    from dsllm.bench.packed_rows import document_offsets, packed_segments
    offsets, lengths = document_offsets(np.array([[1, 1, 2, 2, 2, 3], [5, 5, 5, 5, 6, 6]]))
    np.testing.assert_array_equal(offsets, [[0, 2, 5, -1], [0, 4, -1, -1]])
    np.testing.assert_array_equal(lengths, [[2, 3, 1], [4, 2, -1]])
    seg = np.asarray(packed_segments(4, 4096, 8))
    offsets, lengths = document_offsets(seg)
    assert offsets.shape == (4, 9) and (lengths.sum(axis=1) == 4096).all()
    for row, starts in zip(seg, offsets):
        assert (row[starts[1:8]] != row[starts[1:8] - 1]).all()   # each start begins a new id
    with pytest.raises(ValueError, match="contiguous"):
        document_offsets(np.array([[1, 1, 2, 1]]))


def test_random_batch_packs_documents_as_the_pipeline_does():
    """--docs_per_row: contiguous documents 1..N per row, positions restarting at each start;
    one document a row is the dense batch of before."""
    import numpy as np
    import pytest
    from dsllm.bench.train_step import random_batch
    from dsllm.data.packing import BATCH_KEYS
    batch = random_batch(3, 64, 100, docs_per_row=5)
    assert set(batch) == set(BATCH_KEYS)
    seg, pos = batch["segment_ids"], batch["positions"]
    for row_seg, row_pos in zip(seg, pos):
        assert list(np.unique(row_seg)) == [1, 2, 3, 4, 5]
        assert (np.diff(row_seg) >= 0).all()                      # each document one run
        starts = np.flatnonzero(np.diff(row_seg, prepend=0))
        assert (row_pos[starts] == 0).all()
        inside = np.setdiff1d(np.arange(1, 64), starts)
        assert (row_pos[inside] == row_pos[inside - 1] + 1).all()
    dense = random_batch(2, 16, 100)
    assert (dense["segment_ids"] == 1).all()
    assert (dense["positions"] == np.arange(16)).all()
    with pytest.raises(ValueError, match="docs_per_row"):
        random_batch(2, 16, 100, docs_per_row=17)


def test_attention_bench_docs_flag_replaces_only_the_documents_per_row():
    from dsllm.bench.packed_rows import SHAPES, shape_of
    assert shape_of("3") == SHAPES["3"] and SHAPES["3"][5] == 8
    assert shape_of("3", docs=0) == SHAPES["3"][:5] + (0,)
    assert shape_of("5", docs=2) == SHAPES["5"][:5] + (2,)
    assert shape_of("5", small=True, docs=4)[:5] == (1, 256, 2, 2, 64)


def test_attention_bench_runs_end_to_end_on_cpu_with_small_shapes(tmp_path):
    """The whole script (checks against the reference, timing, summary, JSON) on the Mosaic GPU
    interpreter; --small times each function once (about 20 s)."""
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=REPO, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    r = subprocess.run([sys.executable, "-P", "-m", "dsllm.bench.attention", "--small", "--shapes=3",
                        "--docs=2", "--impls=pallas", "--extra_checks=false", f"--out={out}"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "shape3 B1 S256 H2 KV2 D64 packed~2docs" in r.stdout
    res = json.loads(out.read_text())
    assert res["shape3.dims"] == dict(B=1, S=256, H=2, KVH=2, D=64, docs=2)
    assert max(res["shape3.pallas.relerr"].values()) < 1e-2       # checked before it was timed
    assert res["shape3.pallas.fwd_ms"] > 0 and res["shape3.pallas.fwdbwd_ms"] > 0
    assert len(res["shape3.pallas.fwd_ms_rounds"]) == 1           # --small: one round
