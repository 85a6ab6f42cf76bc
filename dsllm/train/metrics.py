"""Training metrics: console lines with a progress display, and TensorBoard event files."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

import jax

log = logging.getLogger("dsllm.train")

# Dense bf16 peak per chip (datasheet figures), for MFU.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "TPU v4": 275e12,
              "TPU v5p": 459e12, "TPU v5 lite": 197e12, "TPU v6 lite": 918e12}


def peak_flops_per_device(override: float = 0.0) -> float | None:
    if override:
        return override
    kind = jax.devices()[0].device_kind
    for name, flops in PEAK_FLOPS.items():
        if name.lower() in kind.lower():
            return flops
    return None  # e.g. CPU: MFU is not reported


def _open_jsonl(path: str, start_step: int):
    """metrics.jsonl for appending, without the lines of steps after `start_step` (a resumed run
    redoes the steps after its checkpoint; their first logging is dropped, not repeated)."""
    if os.path.exists(path) and start_step:
        with open(path) as f:
            keep = [line for line in f if line.strip() and json.loads(line)["step"] <= start_step]
        with open(path + ".tmp", "w") as f:
            f.writelines(keep)
        os.replace(path + ".tmp", path)
    return open(path, "a" if start_step else "w")


class MetricsLogger:
    def __init__(self, workdir: str, *, total_steps: int, tokens_per_step: int, flops_per_token: float,
                 peak_flops: float | None, start_step: int = 0):
        from tensorboardX import SummaryWriter

        primary = jax.process_index() == 0
        self.writer = SummaryWriter(os.path.join(workdir, "tensorboard")) if primary else None
        # one JSON line per logged step as well: easy to read back for plots, tests and sweeps
        self.jsonl = _open_jsonl(os.path.join(workdir, "metrics.jsonl"), start_step) if primary else None
        self.total_steps = total_steps
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.last_loss = None
        self._progress = None
        if sys.stdout.isatty() and jax.process_index() == 0:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
            self._progress = Progress(TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                                      TimeRemainingColumn(), transient=True)

    def start(self, step: int):
        self._t0, self._step0 = time.time(), step
        if self._progress:
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.total_steps, completed=step)

    def train(self, step: int, metrics: dict):
        now = time.time()
        tokens_per_s = (step - self._step0) * self.tokens_per_step / max(now - self._t0, 1e-9)
        self._t0, self._step0 = now, step
        self.last_loss = float(metrics["loss"])
        scalars = {"loss": self.last_loss, "learning_rate": float(metrics["learning_rate"]),
                   "grad_norm": float(metrics["grad_norm"]), "tokens_per_s": tokens_per_s}
        line = (f"step {step}/{self.total_steps} | loss {scalars['loss']:.4f} | lr {scalars['learning_rate']:.3g} | "
                f"grad norm {scalars['grad_norm']:.3g} | {tokens_per_s:,.0f} tok/s")
        if self.peak_flops:
            scalars["mfu"] = tokens_per_s * self.flops_per_token / self.peak_flops
            line += f" | MFU {100 * scalars['mfu']:.1f}%"
        self._emit(step, "train", scalars, line)
        if self._progress:
            self._progress.update(self._task, completed=step)

    def eval(self, step: int, metrics: dict, seconds: float = 0.0):
        line = f"eval step {step} | " + " | ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self._emit(step, "eval", metrics, line)
        self._t0 += seconds  # evaluation time is not training time

    def _emit(self, step, prefix, scalars, line):
        if self._progress:
            self._progress.console.print(line)
        else:
            log.info(line)
        if self.writer:
            for k, v in scalars.items():
                self.writer.add_scalar(f"{prefix}/{k}", v, step)
            self.writer.flush()
            self.jsonl.write(json.dumps({"kind": prefix, "step": step, **scalars}) + "\n")
            self.jsonl.flush()

    def close(self):
        if self._progress:
            self._progress.stop()
        if self.writer:
            self.writer.close()
            self.jsonl.close()
