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
    """Turns SIGTERM and SIGINT into a flag the loop checks between steps (a second Ctrl-C kills).

    With several processes every host must stop after the same step (a host that stops early
    would leave the others waiting in the next step's collectives): they agree through JAX's
    preemption sync point, which the coordination service drives from SIGTERM, so SIGTERM is
    left to JAX there."""

    def __init__(self):
        self.signal = None
        self._previous = {}
        self._multihost = jax.process_count() > 1

    def __enter__(self):
        signals = (signal.SIGINT,) if self._multihost else (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:
            signal.signal(signum, self._previous[signum])
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint after this step, then exiting", self.signal)

    def should_stop(self, step: int) -> bool:
        if self._multihost:
            from jax.experimental import multihost_utils
            if multihost_utils.reached_preemption_sync_point(step):
                self.signal = self.signal or "SIGTERM"
        return self.signal is not None

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_config(cfg):
    t, m = cfg.train, cfg.model
    if not cfg.data.path:
        raise ValueError("no training data: set --config.data.path=DIR (a directory made by "
                         "`python -m dsllm.data.prepare`)")
    for key in ("steps", "global_batch", "micro_batches", "seq_len", "log_every", "ckpt_every"):
        if t[key] < 1:
            raise ValueError(f"train.{key}={t[key]} must be at least 1")
    for key in ("eval_every", "eval_batches", "sample_tokens"):
        if t[key] < 0:
            raise ValueError(f"train.{key}={t[key]} must be 0 (off) or positive")
    if t.global_batch % t.micro_batches:
        raise ValueError(f"train.global_batch={t.global_batch} is not a multiple of train.micro_batches={t.micro_batches}")
    if t.seq_len % min(m.loss_chunk, t.seq_len):
        raise ValueError(f"train.seq_len={t.seq_len} is not a multiple of model.loss_chunk={m.loss_chunk}")


def _check_data(cfg):
    """Everything the run will read, checked before any training: the training split, the
    evaluation split (if evaluation is on) and, for samples, the tokenizer and the prompt length."""
    pipeline.open_split(cfg.data.path, cfg.data.train_split, vocab_size=cfg.model.vocab_size)
    if cfg.train.eval_batches:
        pipeline.open_split(cfg.data.path, cfg.data.eval_split, vocab_size=cfg.model.vocab_size)
    if cfg.train.sample_tokens and cfg.train.sample_prompt:
        from dsllm.generate import tokenizer_for
        prompt = tokenizer_for(cfg).encode(cfg.train.sample_prompt)
        if 1 + len(prompt) + cfg.train.sample_tokens > cfg.train.seq_len:
            raise ValueError(f"train.sample_prompt ({len(prompt)} tokens) + train.sample_tokens="
                             f"{cfg.train.sample_tokens} do not fit train.seq_len={cfg.train.seq_len}")


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
    _check_data(cfg)
    os.makedirs(workdir, exist_ok=True)
    final_path = os.path.join(workdir, "final_metrics.json")
    t, m = cfg.train, cfg.model
    mesh = sharding.make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    setup = state_lib.make_setup(cfg, mesh)
    flops = state_lib.flops_per_token(m, t.seq_len)
    log.info("model: %s parameters; %.3g FLOPs/token for MFU (6 x matmul params + 6 L d s); paper M = %.3g; "
             "mesh %s", f"{setup.spec.param_count:,}", flops, state_lib.paper_m(m, t.seq_len), dict(mesh.shape))
    ckpt = Checkpointer(workdir, t.ckpt_every, t.max_to_keep)
    data = None
    try:
        data = pipeline.train_iterator(cfg.data.path, cfg.data.train_split, seq_len=t.seq_len,
                                       global_batch=t.global_batch, seed=t.seed, vocab_size=m.vocab_size,
                                       workers=cfg.data.workers)
        if ckpt.latest_step() is not None:
            _check_same_run(cfg, ckpt.saved_config())
            state = ckpt.restore(state_lib.abstract_state(setup), data)
            log.info("resumed from %s at step %d", ckpt.directory, int(state["step"]))
        else:
            state = state_lib.init_state(cfg, setup)
        start = int(state["step"])
        if start >= t.steps and os.path.exists(final_path):
            log.info("run already finished (%d steps); final metrics in %s", start, final_path)
            with open(final_path) as f:
                return json.load(f)
        return _run(cfg, workdir, setup, state, start, data, ckpt, flops, stop_at_step)
    finally:  # also on errors: finish pending checkpoint writes, stop data workers
        ckpt.close()
        if data is not None and hasattr(data, "close"):
            data.close()


def _run(cfg, workdir, setup, state, start, data, ckpt, flops, stop_at_step):
    t, m = cfg.train, cfg.model
    train_step = make_train_step(setup, next_token_loss, t.micro_batches)
    eval_step = make_eval_step(setup, next_token_loss, t.micro_batches)
    peak = peak_flops_per_device(t.peak_flops_per_device)
    logger = MetricsLogger(workdir, total_steps=t.steps, tokens_per_step=t.global_batch * t.seq_len,
                           flops_per_token=flops, peak_flops=peak and peak * jax.device_count(), start_step=start)

    def timed_eval(step):
        t0 = time.time()
        metrics = evaluate(cfg, eval_step, state["params"], setup.batch_sharding)
        logger.eval(step, metrics, seconds=time.time() - t0)
        return metrics

    wall0 = time.time()
    last_saved = None
    try:
        with jax.set_mesh(setup.mesh), _StopRequest() as stop:
            logger.start(start)
            for step in range(start, t.steps):
                local = next(data)
                check_segments(local["segment_ids"], m.attention)
                state, metrics = train_step(state, _global_batch(local, setup.batch_sharding))
                done = step + 1
                if done % t.log_every == 0 or done == t.steps:
                    logger.train(done, jax.device_get(metrics))
                if t.eval_every and t.eval_batches and done % t.eval_every == 0 and done < t.steps:
                    timed_eval(done)
                if ckpt.save(done, state, data, cfg, force=done == t.steps):
                    last_saved = done
                if stop.should_stop(done) or done == stop_at_step:
                    if last_saved != done:
                        ckpt.save(done, state, data, cfg, force=True)
                    ckpt.wait()
                    log.warning("stopped by %s at step %d; checkpoint saved in %s. Run the same command to resume.",
                                stop.signal or "stop_at_step", done, ckpt.directory)
                    return None
            final_eval = timed_eval(t.steps) if t.eval_batches else {}
            sample = None
            if t.sample_tokens and t.sample_prompt:
                from dsllm.generate import greedy_sample
                sample = greedy_sample(cfg, setup, state["params"], t.sample_prompt, t.sample_tokens)
                log.info("sample: %r -> %r", t.sample_prompt, sample)
    finally:
        logger.close()
    final = {"step": t.steps, "tokens": t.steps * t.global_batch * t.seq_len, "train_loss": logger.last_loss,
             **final_eval, "wall_s": time.time() - wall0, "flops_per_token": flops,
             "m": state_lib.paper_m(m, t.seq_len), "params": setup.spec.param_count, "sample": sample}
    if jax.process_index() == 0:
        path = os.path.join(workdir, "final_metrics.json")
        with open(path + ".tmp", "w") as f:
            json.dump(final, f, indent=1)
        os.replace(path + ".tmp", path)
    return final


# What a saved checkpoint (model state and data-iterator position) is only valid for.
_RESUME_KEYS = {"model": ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "ffn_dim"),
                "train": ("global_batch", "seq_len", "seed"),
                "data": ("path", "train_split", "workers")}


def _check_same_run(cfg, saved: dict | None):
    if saved is None:
        return
    ours = json.loads(cfg.to_json())
    diff = {f"{group}.{k}": (saved.get(group, {}).get(k), ours[group][k])
            for group, keys in _RESUME_KEYS.items() for k in keys if saved.get(group, {}).get(k) != ours[group][k]}
    if diff:
        raise ValueError(f"the checkpoint in this workdir was written by another run: {diff} (checkpoint, now). "
                         f"Model shape and data order must match to resume; use a fresh --workdir or the old settings")
