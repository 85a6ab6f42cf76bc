"""The training loop: data, step, logging, evaluation, checkpoints, signals, resume.

    state = restore(workdir) or init(config)
    for step in range(state.step, train.steps):
        state, metrics = train_step(state, next(batches))
        log every log_every; evaluate every eval_every; checkpoint every ckpt_every
        on SIGTERM / Ctrl-C: checkpoint now and exit (the same command resumes)
    final evaluation, final checkpoint, final_metrics.json, optional greedy sample
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time

import jax
import numpy as np

from dsllm import sharding
from dsllm.data import pipeline
from dsllm.losses.pretrain import next_token_loss
from dsllm.model.attention import check_segments
from dsllm.train import state as state_lib
from dsllm.train.checkpoint import Checkpointer
from dsllm.train.metrics import MetricsLogger, peak_flops_per_device
from dsllm.train.step import make_eval_step, make_train_step

log = logging.getLogger("dsllm.train")


class _StopRequest:
    """Turns SIGTERM and SIGINT into a flag the loop checks between steps (a second Ctrl-C kills)."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            signal.signal(signum, self._previous[signum])
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint after this step, then exiting", self.signal)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_config(cfg):
    t, m = cfg.train, cfg.model
    if not cfg.data.path:
        raise ValueError("no training data: set --config.data.path=DIR (a directory made by "
                         "`python -m dsllm.data.prepare`)")
    if t.global_batch % t.micro_batches:
        raise ValueError(f"train.global_batch={t.global_batch} is not a multiple of train.micro_batches={t.micro_batches}")
    if t.seq_len % min(m.loss_chunk, t.seq_len):
        raise ValueError(f"train.seq_len={t.seq_len} is not a multiple of model.loss_chunk={m.loss_chunk}")


def _global_batch(local_batch, batch_sharding):
    return {k: jax.make_array_from_process_local_data(batch_sharding, np.asarray(v)) for k, v in local_batch.items()}


def evaluate(cfg, eval_step, params, batch_sharding) -> dict:
    """Mean loss (nats per token) and bits per UTF-8 byte over the first eval_batches of the eval split."""
    totals = {"nats": 0.0, "weight": 0.0, "bytes": 0.0}
    for batch in pipeline.eval_batches(cfg.data.path, cfg.data.eval_split, seq_len=cfg.train.seq_len,
                                       global_batch=cfg.train.global_batch, vocab_size=cfg.model.vocab_size,
                                       max_batches=cfg.train.eval_batches):
        check_segments(batch["segment_ids"], cfg.model.attention)
        m = jax.device_get(eval_step(params, _global_batch(batch, batch_sharding)))
        for k in totals:
            totals[k] += float(m[k])
    if totals["weight"] == 0:
        raise ValueError(f"evaluation split {cfg.data.eval_split!r} of {cfg.data.path} gave no target tokens")
    return {"val_loss": totals["nats"] / totals["weight"],
            "val_bpb": totals["nats"] / (math.log(2) * totals["bytes"]) if totals["bytes"] else float("nan")}


def train(cfg, workdir: str, stop_at_step: int | None = None) -> dict | None:
    """Trains (or resumes) the run in `workdir`; returns the final metrics.

    stop_at_step: behave as if SIGTERM arrived after that step (checkpoint, return None); for
    time-sliced jobs and tests."""
    _check_config(cfg)
    os.makedirs(workdir, exist_ok=True)
    final_path = os.path.join(workdir, "final_metrics.json")
    t, m = cfg.train, cfg.model
    mesh = sharding.make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    setup = state_lib.make_setup(cfg, mesh)
    ckpt = Checkpointer(workdir, t.ckpt_every, t.max_to_keep)
    data = pipeline.train_iterator(cfg.data.path, cfg.data.train_split, seq_len=t.seq_len, global_batch=t.global_batch,
                                   seed=t.seed, vocab_size=m.vocab_size, workers=cfg.data.workers)
    flops = state_lib.flops_per_token(m, t.seq_len)
    log.info("model: %s parameters; %.3g FLOPs/token for MFU (6 x matmul params + 6 L d s); paper M = %.3g; "
             "mesh %s", f"{setup.spec.param_count:,}", flops, state_lib.paper_m(m, t.seq_len), dict(mesh.shape))

    if ckpt.latest_step() is not None:
        _check_same_model(cfg, ckpt.saved_config())
        state = ckpt.restore(state_lib.abstract_state(setup), data)
        log.info("resumed from %s at step %d", ckpt.directory, int(state["step"]))
    else:
        state = state_lib.init_state(cfg, setup)
    start = int(state["step"])
    if start >= t.steps and os.path.exists(final_path):
        log.info("run already finished (%d steps); final metrics in %s", start, final_path)
        ckpt.close()
        if hasattr(data, "close"):
            data.close()
        with open(final_path) as f:
            return json.load(f)

    train_step = make_train_step(setup, next_token_loss, t.micro_batches)
    eval_step = make_eval_step(setup, next_token_loss)
    peak = peak_flops_per_device(t.peak_flops_per_device)
    logger = MetricsLogger(workdir, total_steps=t.steps, tokens_per_step=t.global_batch * t.seq_len,
                           flops_per_token=flops, peak_flops=peak and peak * jax.device_count())
    wall0 = time.time()
    stopped, last_saved = None, None
    try:
        with jax.set_mesh(mesh), _StopRequest() as stop:
            logger.start(start)
            for step in range(start, t.steps):
                local = next(data)
                check_segments(local["segment_ids"], m.attention)
                state, metrics = train_step(state, _global_batch(local, setup.batch_sharding))
                done = step + 1
                if done % t.log_every == 0 or done == t.steps:
                    logger.train(done, jax.device_get(metrics))
                if t.eval_every and done % t.eval_every == 0 and done < t.steps:
                    logger.eval(done, evaluate(cfg, eval_step, state["params"], setup.batch_sharding))
                if ckpt.save(done, state, data, cfg, force=done == t.steps):
                    last_saved = done
                if stop.signal or done == stop_at_step:
                    stopped = (stop.signal or "stop_at_step", done)
                    break
            if stopped:
                if last_saved != stopped[1]:
                    ckpt.save(stopped[1], state, data, cfg, force=True)
                ckpt.wait()
                log.warning("stopped by %s at step %d; checkpoint saved in %s. Run the same command to resume.",
                            stopped[0], stopped[1], ckpt.directory)
                return None
            final_eval = evaluate(cfg, eval_step, state["params"], setup.batch_sharding)
            logger.eval(t.steps, final_eval)
            sample = None
            if t.sample_tokens > 0 and t.sample_prompt:
                from dsllm.generate import greedy_sample
                sample = greedy_sample(cfg, setup, state["params"], t.sample_prompt, t.sample_tokens)
                log.info("sample: %r -> %r", t.sample_prompt, sample)
    finally:  # also on errors: finish pending checkpoint writes, stop data workers
        ckpt.close()
        logger.close()
        if hasattr(data, "close"):
            data.close()
    final = {"step": t.steps, "tokens": t.steps * t.global_batch * t.seq_len, "train_loss": logger.last_loss,
             **final_eval, "wall_s": time.time() - wall0, "flops_per_token": flops,
             "m": state_lib.paper_m(m, t.seq_len), "params": setup.spec.param_count, "sample": sample}
    if jax.process_index() == 0:
        tmp = final_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(final, f, indent=1)
        os.replace(tmp, final_path)
    return final


def _check_same_model(cfg, saved: dict | None):
    if saved is None:
        return
    ours = json.loads(cfg.to_json())["model"]
    theirs = saved.get("model", {})
    shape_keys = ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "ffn_dim")
    diff = {k: (theirs.get(k), ours.get(k)) for k in shape_keys if theirs.get(k) != ours.get(k)}
    if diff:
        raise ValueError(f"the checkpoint in this workdir is of another model shape {diff} (checkpoint, now); "
                         f"use a fresh --workdir or the same model settings")
