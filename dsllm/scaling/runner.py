"""Runs a plan: one `dsllm.train` process per run, results recorded in a CSV.

The runner keeps no state of its own beyond the results file: a run is finished when its
workdir holds final_metrics.json (the trainer writes it last), recorded when the CSV has its
row. So running the same plan again skips recorded runs, records runs finished elsewhere (a job
array) and relaunches unfinished ones, which the trainer resumes from their newest checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from dsllm.scaling.plan import read_plan, train_command
from dsllm.scaling.table import read_rows, write_rows

RESULTS_FILE = "results.csv"
METRICS_FILE = "final_metrics.json"
LOG_FILE = "train.log"
DEFAULT_TRAINER = (sys.executable, "-m", "dsllm.train")
METRIC_KEYS = ("step", "tokens", "train_loss", "val_loss", "val_bpb", "wall_s")
FIELDS = ["name", "budget", "compute", "m", "tokens", "loss", "loss_unit", "val_loss", "val_bpb", "train_loss",
          "step", "steps", "global_batch", "seq_len", "n_layers", "d_model", "n_heads", "ffn_dim", "peak_lr",
          "flops_per_token", "wall_s", "runner_wall_s"]
TERM_GRACE_S = 120  # how long a stopped run may take to write its checkpoint before it is killed


class RunError(RuntimeError):
    """A training run failed or left results the runner cannot read."""


def workdir_of(plan_dir: str, run: dict) -> str:
    return os.path.join(os.path.abspath(plan_dir), "runs", run["name"])


def read_metrics(workdir: str) -> dict | None:
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        try:
            metrics = json.load(f)
        except json.JSONDecodeError as e:
            raise RunError(f"{path} is not valid JSON ({e}); delete it to rerun the run") from None
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise RunError(f"{path} lacks {missing}; the trainer's final_metrics.json must hold {list(METRIC_KEYS)}")
    return metrics


def result_row(run: dict, metrics: dict, runner_wall_s: float | None = None) -> dict:
    """One CSV row. compute = M x the tokens actually trained; loss = validation bits-per-byte."""
    tokens = int(metrics["tokens"])
    return dict(name=run["name"], budget=run["budget"], compute=run["m"] * tokens, m=run["m"], tokens=tokens,
                loss=metrics["val_bpb"], loss_unit="bits-per-byte", val_loss=metrics["val_loss"],
                val_bpb=metrics["val_bpb"], train_loss=metrics["train_loss"], step=metrics["step"],
                steps=run["steps"], global_batch=run["global_batch"], seq_len=run["seq_len"],
                n_layers=run["n_layers"], d_model=run["d_model"], n_heads=run["n_heads"], ffn_dim=run["ffn_dim"],
                peak_lr=run["peak_lr"], flops_per_token=metrics.get("flops_per_token", run["flops_per_token"]),
                wall_s=metrics["wall_s"], runner_wall_s="" if runner_wall_s is None else round(runner_wall_s, 1))


def commands(plan_dir: str, trainer=DEFAULT_TRAINER) -> list[list[str]]:
    plan = read_plan(plan_dir)
    return [train_command(plan, r, workdir_of(plan_dir, r), list(trainer)) for r in plan["runs"]]


def _tail(path: str, n: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Interrupted(Exception):
    """SIGTERM or SIGINT reached the runner; runs in flight were stopped (they resume later)."""


def run_plan(plan_dir: str, trainer=DEFAULT_TRAINER, results_path: str | None = None, parallel: int = 1,
             keep_going: bool = False, launch: bool = True, stop_after_s: float | None = None,
             env: dict | None = None, log=print) -> dict:
    """Runs every unrecorded run of the plan, `parallel` at a time; returns counts. With
    launch=False only records runs that finished elsewhere. stop_after_s: start no new run after
    that many seconds (runs in flight finish). Raises RunError when a run fails (after the
    others in flight end, or after all runs with keep_going)."""
    plan = read_plan(plan_dir)
    results_path = results_path or os.path.join(plan_dir, RESULTS_FILE)
    rows = read_rows(results_path) if os.path.exists(results_path) else []
    done = {r["name"] for r in rows}
    by_name = {r["name"]: r for r in plan["runs"]}
    stale = done - set(by_name)
    if stale:
        log(f"note: {results_path} holds {len(stale)} run(s) not in this plan (kept): {sorted(stale)[:3]}")

    def record(run, metrics, wall=None):
        rows.append(result_row(run, metrics, wall))
        done.add(run["name"])
        write_rows(results_path, rows, FIELDS)
        if metrics["step"] != run["steps"]:
            log(f"warning: {run['name']} finished at step {metrics['step']}, the plan says {run['steps']}")

    todo = []
    counts = dict(skipped=0, recorded=0, finished=0, failed=0, not_started=0)
    for run in plan["runs"]:
        if run["name"] in done:
            counts["skipped"] += 1
            continue
        metrics = read_metrics(workdir_of(plan_dir, run))
        if metrics is not None:
            record(run, metrics)
            counts["recorded"] += 1
        else:
            todo.append(run)
    if not launch:
        counts["not_started"] = len(todo)
        log(f"recorded {counts['recorded']} finished run(s); {len(todo)} not finished")
        return counts

    start = time.time()
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    failures = []
    run_env = dict(os.environ, **(env or {}))
    if parallel > 1:  # several processes share the accelerator: none may grab all its memory
        run_env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def stop(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for s in previous:
        signal.signal(s, stop)
    try:
        queue = list(todo)
        while queue or running:
            may_start = (not failures or keep_going) and (stop_after_s is None or time.time() - start < stop_after_s)
            while queue and len(running) < parallel and may_start:
                run = queue.pop(0)
                wd = workdir_of(plan_dir, run)
                os.makedirs(wd, exist_ok=True)
                cmd = train_command(plan, run, wd, list(trainer))
                logf = open(os.path.join(wd, LOG_FILE), "a")
                logf.write(f"\n### {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
                logf.flush()
                log(f"start {run['name']}: M={run['m']:.3g} tokens={run['tokens']:.3g} steps={run['steps']}")
                proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=run_env)
                running[run["name"]] = (proc, time.time(), logf)
            if not running:
                break
            time.sleep(0.2)
            for name, (proc, t0, logf) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                logf.close()
                del running[name]
                run, wd = by_name[name], workdir_of(plan_dir, by_name[name])
                metrics = read_metrics(wd) if rc == 0 else None
                if metrics is None:
                    counts["failed"] += 1
                    why = f"exit code {rc}" if rc else (f"exit code 0 but no {METRICS_FILE}: stopped before its "
                                                        "last step (a signal?); run again to resume it")
                    failures.append(f"{name} ({why}); log {os.path.join(wd, LOG_FILE)}:\n{_tail(os.path.join(wd, LOG_FILE))}")
                    log(f"FAILED {name}: {why}")
                else:
                    record(run, metrics, time.time() - t0)
                    counts["finished"] += 1
                    log(f"done {name}: val_bpb={metrics['val_bpb']:.4f} val_loss={metrics['val_loss']:.4f} "
                        f"({time.time() - t0:.0f} s)")
        counts["not_started"] = len(queue)
    except Interrupted as e:
        log(f"{e}: stopping {len(running)} run(s) in flight; they resume from their checkpoints next time")
        for s in previous:  # a further signal must not cut the wait short
            signal.signal(s, signal.SIG_IGN)
        _terminate(running, forward=str(e) == "SIGTERM")
        raise
    except Exception:  # any other error here: leave no training process running behind us
        _terminate(running, forward=True)
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if counts["not_started"]:
        log(f"{counts['not_started']} run(s) not started (time limit or an earlier failure); run again to continue")
    if failures:
        raise RunError(f"{len(failures)} run(s) failed:\n" + "\n".join(failures))
    return counts


def _terminate(running: dict, forward: bool):
    """Stops the runs in flight and waits for them to save a checkpoint. SIGTERM is passed on to
    each; SIGINT is not: Ctrl-C in a terminal reaches the whole process group already, and a
    second signal would make the trainer quit without its stop checkpoint."""
    if forward:
        for proc, _, _ in running.values():
            proc.send_signal(signal.SIGTERM)
    deadline = time.time() + TERM_GRACE_S
    for proc, _, logf in running.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
