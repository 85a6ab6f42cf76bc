"""Throughput of the real train step: python -m dsllm.bench.train_step --config=configs/bench_1p6b.py

The same make_setup / make_train_step / loss as dsllm.train, on random tokens (one document
per row, or --docs_per_row=N documents of mixed lengths packed in each row), on all local
devices. Prints tokens/s, MFU (DESIGN.md's FLOPs/token against 989 TFLOP/s per H100/H200; it
counts causal attention over the whole row, also for packed rows, whose documents attend to
less) and peak device memory, and writes them as JSON to $OUT if set.

--profile_dir=DIR also writes a jax.profiler trace of a few steps there.

It also counts the attention kernel call sites in the compiled (XLA-optimised) step: with
`pallas`, the forward and the backward's kernels (expected_kernel_calls: forward, dQ, dK/dV and
the fused backward under the default `auto`), one more under the remat policies
that recompute attention in the backward (`dots`, `full`). XLA once
duplicated the forward call (NOTES.md, kernel v4), which only this count or a profile shows.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from dsllm import sharding
from dsllm.bench.packed_rows import packed_segments
from dsllm.kernels.block_math import document_bounds
from dsllm.losses.pretrain import next_token_loss
from dsllm.train import state as state_lib
from dsllm.train.metrics import peak_flops_per_device
from dsllm.train.step import make_train_step

_CONFIG = config_flags.DEFINE_config_file("config", "configs/bench_1p6b.py", "config file", lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 10, "timed steps (after 3 warm-up steps)")
_PROFILE = flags.DEFINE_string("profile_dir", "", "write a profiler trace of 3 steps here")
_TAG = flags.DEFINE_string("tag", "", "name for this measurement in the JSON output")
_DOCS = flags.DEFINE_integer("docs_per_row", 1, "documents packed in each row (mixed lengths, as the "
                             "attention bench's shape 3: packed_rows.packed_segments); 1: one per row")


def random_batch(batch: int, seq: int, vocab: int, seed: int = 0, docs_per_row: int = 1) -> dict:
    """Random tokens in rows of docs_per_row documents, laid out as the data pipeline packs them:
    segment ids 1.. per document, positions restarting at each document's start."""
    if not 1 <= docs_per_row <= seq:
        raise ValueError(f"docs_per_row must be in [1, seq_len={seq}]; got {docs_per_row}")
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (batch, seq + 1), dtype=np.int32)
    segment_ids = packed_segments(batch, seq, docs_per_row, seed)
    doc_start, _ = document_bounds(segment_ids)
    positions = np.arange(seq, dtype=np.int32) - np.asarray(doc_start)
    return {"inputs": tokens[:, :-1], "targets": tokens[:, 1:],
            "segment_ids": np.asarray(segment_ids, np.int32),
            "positions": positions.astype(np.int32),
            "loss_mask": np.ones((batch, seq), np.float32), "target_bytes": np.ones((batch, seq), np.float32)}


# Remat policies that keep the attention kernel's out and lse: the backward runs dQ and dK/dV only.
_KEEPS_ATTENTION = ("none", "dots_attn", "qkv_attn")


def expected_kernel_calls(remat: str, backward: str = "auto") -> int:
    """Mosaic GPU call sites in a `pallas` train step: the forward, the backward's kernels, and
    the forward again in the backward when the remat policy does not keep its results. The
    backward (model.attention_backward) is dQ and dK/dV ("split"), the fused kernel alone
    ("fused"), or both under the cond that picks one per call ("auto"), at either head_dim."""
    backward_calls = {"split": 2, "fused": 1, "auto": 3}[backward]
    return 1 + backward_calls + (remat not in _KEEPS_ATTENTION)


def mosaic_kernel_calls(hlo_text: str) -> int:
    """Mosaic GPU custom calls in an optimised HLO module's text (each appears once per call site;
    a call inside the layer loop's body runs once per layer)."""
    return len(re.findall(r'custom_call_target="mosaic_gpu', hlo_text))


def run(cfg, steps: int, profile_dir: str = "", docs_per_row: int = 1) -> dict:
    t, m = cfg.train, cfg.model
    mesh = sharding.make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    setup = state_lib.make_setup(cfg, mesh)
    state = state_lib.init_state(cfg, setup)
    step = make_train_step(setup, next_token_loss, t.micro_batches)
    batch = {k: jax.device_put(v, setup.batch_sharding)
             for k, v in random_batch(t.global_batch, t.seq_len, m.vocab_size,
                                      docs_per_row=docs_per_row).items()}
    with jax.set_mesh(mesh):
        t0 = time.perf_counter()
        step = step.lower(state, batch).compile()
        kernel_calls = mosaic_kernel_calls(step.as_text())
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - t0
        for _ in range(2):
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            state, metrics = step(state, batch)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t0)
        if profile_dir:
            os.makedirs(profile_dir, exist_ok=True)
            with jax.profiler.trace(profile_dir):
                for _ in range(3):
                    state, metrics = step(state, batch)
                jax.block_until_ready(metrics)
    dt = statistics.median(times)
    tokens_per_s = t.global_batch * t.seq_len / dt
    flops = state_lib.flops_per_token(m, t.seq_len)
    peak = peak_flops_per_device(t.peak_flops_per_device)
    stats = jax.devices()[0].memory_stats() or {}
    return {"config": {"d_model": m.d_model, "n_layers": m.n_layers, "head_dim": m.d_model // m.n_heads,
                       "attention": m.attention, "attention_backward": m.attention_backward,
                       "remat": m.remat,
                       "global_batch": t.global_batch, "seq_len": t.seq_len, "micro_batches": t.micro_batches,
                       "docs_per_row": docs_per_row},
            "devices": jax.device_count(), "device_kind": jax.devices()[0].device_kind,
            "params": setup.spec.param_count, "flops_per_token": flops, "step_s_median": dt,
            "step_s_min": min(times), "compile_s": compile_s, "mosaic_kernel_calls": kernel_calls,
            "tokens_per_s": tokens_per_s,
            "mfu": tokens_per_s * flops / (peak * jax.device_count()) if peak else None,
            "peak_mem_gib": stats.get("peak_bytes_in_use", 0) / 2**30, "loss": float(metrics["loss"])}


def main(argv):
    del argv
    result = run(_CONFIG.value, _STEPS.value, _PROFILE.value, _DOCS.value)
    result["tag"] = _TAG.value
    mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a"
    print(f"[{_TAG.value or 'train_step'}] {result['config']} devices={result['devices']} "
          f"params={result['params']:,}: {result['tokens_per_s']:,.0f} tokens/s, MFU {mfu}, "
          f"step {1e3 * result['step_s_median']:.1f} ms, peak memory {result['peak_mem_gib']:.1f} GiB, "
          f"compile {result['compile_s']:.0f} s, loss {result['loss']:.3f}, "
          f"Mosaic GPU kernel call sites {result['mosaic_kernel_calls']}", flush=True)
    c = result["config"]
    expected = expected_kernel_calls(c["remat"], c["attention_backward"])
    if c["attention"] == "pallas" and result["mosaic_kernel_calls"] != expected:
        print(f"WARNING: {result['mosaic_kernel_calls']} Mosaic GPU kernel call sites in the compiled "
              f"step, expected {expected} with remat {c['remat']!r}: XLA duplicated "
              f"or split a kernel call (see docs/kernels/NOTES.md, v4)", flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, f"train_step_{_TAG.value or 'default'}.json"), "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    app.run(main)
