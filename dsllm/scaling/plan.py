"""IsoFLOP planning: compute budgets -> ready-to-launch training runs.

For each budget C:
  * model scales: `per_budget` targets spaced evenly in log M over a range of `span` (max/min),
    centred on M_opt(C) (Formula 4, or a law fitted to earlier results); each target becomes a
    real shape through the depth/width rule (shapes.py); targets that land on one shape are
    merged;
  * tokens D = C / M, rounded to whole steps: steps = round(D / (global_batch * seq_len));
  * global batch and peak learning rate from Formula (1) at C (the batch rounded to whole
    sequences and to a multiple of `batch_multiple`);
  * the multi-step schedule of the base config (80% / 90% of the tokens, 31.6% / 10%), with
    warmup_steps = min(2000, max(1, steps // 20)): the paper's 2000 steps, shortened for runs of
    a few thousand steps;
  * validation on about `eval_tokens` tokens at the end of the run (`evals_per_run` times in
    all), checkpoints 4 times a run.

A plan is a directory: plan.json (every run with its numbers and config overrides) and
commands.txt (one `dsllm.train` command per run, for job arrays and cluster launchers).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shlex

import numpy as np

from dsllm.scaling.flops import n1, n2, train_flops_per_token
from dsllm.scaling.laws import M_OPT_LAW, PowerLaw, hyperparams
from dsllm.scaling.shapes import ModelShape, shape_for_m

PLAN_FILE = "plan.json"
COMMANDS_FILE = "commands.txt"
FORMAT = "dsllm-scaling-plan-v1"
DEFAULT_BASE_CONFIG = "configs/scaling_base.py"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PlanError(ValueError):
    """A plan cannot be made or read as asked."""


@dataclasses.dataclass
class PlanSettings:
    budgets: list[float]
    per_budget: int = 10
    span: float = 16.0             # largest / smallest target M within a budget
    seq_len: int = 4096
    vocab: int = 102400
    aspect: float = 64.0           # d_model / n_layers the depth/width rule aims at
    base_config: str = DEFAULT_BASE_CONFIG
    data_path: str = ""
    eval_tokens: int | None = None  # validation tokens of each evaluation (None: the whole validation
                                    # split of data_path, the same tokens for every run; 1M without one)
    evals_per_run: int = 1         # evaluations spread over a run (1: at the end only)
    batch_multiple: int = 1        # global batch rounded to a multiple of this (e.g. the device count)
    min_steps: int = 20            # a run with fewer steps is reported as degenerate
    m_law: tuple[float, float] = (M_OPT_LAW.base, M_OPT_LAW.exponent)  # centre of each budget's sizes
    m_law_source: str = "paper Formula (4)"
    extra: dict = dataclasses.field(default_factory=dict)  # further config overrides for every run


def budget_label(c: float) -> str:
    return f"{c:.3g}".replace("e+", "e")


def _dataset(s: PlanSettings) -> dict | None:
    """The dataset's split sizes when data_path holds one (for evaluation and epoch counts)."""
    if not s.data_path:
        return None
    from dsllm.data.shards import DatasetError, read_manifest

    try:
        return read_manifest(s.data_path)["splits"]
    except DatasetError:
        return None


def _eval_tokens(s: PlanSettings, splits: dict | None) -> int:
    """Tokens one evaluation should cover: the whole validation split (with a BOS and an EOS per
    document, as rows are packed) unless eval_tokens says otherwise."""
    if s.eval_tokens is not None:
        return s.eval_tokens
    val = (splits or {}).get("validation")
    return val["tokens"] + 2 * val["documents"] if val else 1_000_000


def _run(settings: PlanSettings, budget: float, shape: ModelShape, m_target: float, eval_tokens: int) -> dict:
    # imported here: dsllm.optim brings jax (~1.2 s), which `fit`, `predict` and `run` never need
    from dsllm.optim import multistep_boundaries

    s = settings
    hp = hyperparams(budget, s.seq_len)
    mult = max(1, s.batch_multiple)
    batch = max(mult, int(round(hp["batch_tokens"] / s.seq_len / mult)) * mult)
    m = shape.m(s.seq_len)
    steps = max(1, int(round(budget / m / (batch * s.seq_len))))
    tokens = steps * batch * s.seq_len
    warmup = min(2000, max(1, steps // 20))
    # one more batch than the tokens need: packing leaves a partly filled last row per pass
    eval_batches = max(1, math.ceil(eval_tokens / (batch * s.seq_len)) + (s.eval_tokens is None))
    overrides = {
        "model.vocab_size": s.vocab, "model.d_model": shape.d_model, "model.n_layers": shape.n_layers,
        "model.n_heads": shape.n_heads, "model.n_kv_heads": shape.n_kv_heads, "model.ffn_dim": shape.ffn_dim,
        "optim.peak_lr": float(f"{hp['learning_rate']:.4g}"), "optim.warmup_steps": warmup,
        "train.steps": steps, "train.global_batch": batch, "train.seq_len": s.seq_len,
        "train.eval_every": max(1, steps // max(1, s.evals_per_run)), "train.eval_batches": eval_batches, "train.ckpt_every": max(1, steps // 4),
    }
    if s.data_path:
        overrides["data.path"] = s.data_path
    overrides.update(s.extra)
    return dict(
        name=f"C{budget_label(budget)}-L{shape.n_layers}-D{shape.d_model}", budget=budget,
        **shape.as_dict(), m=m, m_target=m_target, n1=n1(shape.n_layers, shape.d_model),
        n2=n2(shape.n_layers, shape.d_model, s.vocab),
        flops_per_token=train_flops_per_token(shape.n_layers, shape.d_model, s.seq_len, s.vocab, shape.ffn_dim,
                                              shape.n_heads, shape.n_kv_heads),
        tokens_target=budget / m, tokens=tokens, compute=m * tokens, steps=steps, global_batch=batch,
        seq_len=s.seq_len, batch_tokens_law=hp["batch_tokens"], peak_lr=overrides["optim.peak_lr"],
        warmup_steps=warmup,
        schedule=dict(kind="multistep", warmup_steps=warmup, decay_steps=multistep_boundaries(steps),
                      decay_factors=[0.316, 0.1]),
        overrides=overrides)


def make_plan(settings: PlanSettings) -> dict:
    s = settings
    if not s.budgets:
        raise PlanError("give at least one compute budget (--budgets=1e17,3e17,...)")
    if any(not c > 0 for c in s.budgets):
        raise PlanError(f"budgets must be positive FLOPs, got {s.budgets}")
    if s.per_budget < 1 or s.span < 1:
        raise PlanError(f"per_budget must be >= 1 and span >= 1, got {s.per_budget} and {s.span}")
    law = PowerLaw(*s.m_law)
    runs, warnings = [], []
    splits = _dataset(s)
    if s.data_path and splits is None:
        warnings.append(f"no dataset at {s.data_path} yet: evaluation sized for {_eval_tokens(s, None):,} tokens "
                        "and epochs not counted")
    train_tokens = (splits or {}).get("train", {}).get("tokens")
    for budget in sorted(float(c) for c in s.budgets):
        centre = float(law(budget))
        if s.per_budget == 1:
            targets = [centre]
        else:
            targets = centre * np.geomspace(1 / math.sqrt(s.span), math.sqrt(s.span), s.per_budget)
        shapes = {}
        for t in targets:
            shape = shape_for_m(float(t), s.seq_len, s.aspect)
            shapes.setdefault(shape, float(t))
        if len(shapes) < s.per_budget:
            warnings.append(f"C={budget:.3g}: {s.per_budget} targets gave only {len(shapes)} distinct shapes "
                            "(small widths come in steps of 64); widen --span for more")
        for shape, target in sorted(shapes.items(), key=lambda kv: kv[0].m(s.seq_len)):
            run = _run(s, budget, shape, target, _eval_tokens(s, splits))
            if train_tokens:
                run["epochs"] = run["tokens"] / train_tokens
                if run["epochs"] > 4:
                    warnings.append(f"{run['name']}: {run['epochs']:.1f} epochs of the training split; repeated "
                                    "data beyond about 4 epochs is worth less than fresh data")
            if run["steps"] < s.min_steps:
                warnings.append(f"{run['name']}: only {run['steps']} steps of {run['global_batch']} sequences; "
                                "the budget is too small for this model")
            runs.append(run)
    return dict(format=FORMAT, settings=dataclasses.asdict(s), runs=runs, warnings=warnings,
                total_compute=sum(r["compute"] for r in runs),
                total_train_flops=sum(r["flops_per_token"] * r["tokens"] for r in runs))


def override_args(run: dict) -> list[str]:
    return [f"--config.{k}={_fmt(v)}" for k, v in run["overrides"].items()]


def _fmt(v) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(_fmt(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def resolve_config(path: str) -> str:
    """A config path as given, or relative to the repository root (plans travel between machines)."""
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    candidate = os.path.join(REPO_ROOT, path)
    if os.path.exists(candidate):
        return candidate
    raise PlanError(f"base config {path} not found (neither from {os.getcwd()} nor from {REPO_ROOT})")


def train_command(plan: dict, run: dict, workdir: str, trainer: list[str]) -> list[str]:
    config = resolve_config(plan["settings"]["base_config"])
    return list(trainer) + [f"--config={config}", f"--workdir={workdir}"] + override_args(run)


def _atomic_write(path: str, text: str):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_plan(plan: dict, out_dir: str, force: bool = False):
    """Writes plan.json and commands.txt. An existing, different plan is kept unless `force`:
    its runs may be half trained, and a changed plan would silently mix two studies."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, PLAN_FILE)
    text = json.dumps(plan, indent=1) + "\n"
    if os.path.exists(path) and not force:
        with open(path) as f:
            old = f.read()
        if old != text:
            raise PlanError(f"{out_dir} already holds a different plan; choose a new --out, or --force to replace it "
                            "(finished runs of the old plan stay in its runs/ folder and may no longer match)")
    _atomic_write(path, text)
    # commands.txt is run from the repository root (where the base config path points)
    root = os.path.abspath(out_dir)
    if root.startswith(REPO_ROOT + os.sep):
        root = os.path.relpath(root, REPO_ROOT)
    lines = ["# one dsllm.train command per run; run each from the repository root"]
    lines += [shlex.join(["python", "-m", "dsllm.train", f"--config={plan['settings']['base_config']}",
                          f"--workdir={os.path.join(root, 'runs', r['name'])}"] + override_args(r))
              for r in plan["runs"]]
    _atomic_write(os.path.join(out_dir, COMMANDS_FILE), "\n".join(lines) + "\n")


def read_plan(plan_dir: str) -> dict:
    path = os.path.join(plan_dir, PLAN_FILE)
    if not os.path.exists(path):
        raise PlanError(f"no plan at {plan_dir}: {path} does not exist; make one with "
                        "`python -m dsllm.scaling plan --budgets=... --out=DIR`")
    with open(path) as f:
        try:
            plan = json.load(f)
        except json.JSONDecodeError as e:
            raise PlanError(f"{path} is not valid JSON ({e})") from None
    if plan.get("format") != FORMAT:
        raise PlanError(f"{path} has format {plan.get('format')!r}, expected {FORMAT!r}")
    return plan


def summary_lines(plan: dict) -> list[str]:
    s = plan["settings"]
    out = [f"{len(plan['runs'])} runs over {len(s['budgets'])} budgets, seq_len {s['seq_len']}, vocab {s['vocab']}, "
           f"sizes centred on {s['m_law_source']}",
           f"{'name':<24} {'M':>9} {'tokens':>9} {'layers':>6} {'d_model':>7} {'heads':>5} {'batch':>5} "
           f"{'steps':>7} {'lr':>8}"]
    for r in plan["runs"]:
        out.append(f"{r['name']:<24} {r['m']:9.3g} {r['tokens']:9.3g} {r['n_layers']:6d} {r['d_model']:7d} "
                   f"{r['n_heads']:5d} {r['global_batch']:5d} {r['steps']:7d} {r['peak_lr']:8.3g}")
    out.append(f"total compute C = sum M*D = {plan['total_compute']:.3g} FLOPs; executed FLOPs (head and attention "
               f"included) about {plan['total_train_flops']:.3g}")
    out += [f"warning: {w}" for w in plan["warnings"]]
    return out
