"""`suggest`: the complete training configuration for one compute budget.

The model scale is M_opt(C) (the paper's Formula 4, or a law fitted to one's own IsoFLOP
results), realised by the depth/width rule; tokens D = C / M; batch and learning rate from
Formula (1); the multi-step schedule. The config file it writes is a normal configs/*.py:
dsllm.config.base_config() plus every value that differs from it.
"""

from __future__ import annotations

import dataclasses
import os
import pprint

from dsllm.scaling.plan import PlanSettings, make_plan, resolve_config


def suggest_run(settings: PlanSettings, compute: float) -> dict:
    """The single run a one-size plan at `compute` makes (see plan.py for every rule)."""
    plan = make_plan(dataclasses.replace(settings, budgets=[float(compute)], per_budget=1))
    run = plan["runs"][0]
    run["warnings"] = plan["warnings"]
    return run


def _changes(default: dict, actual: dict, prefix="") -> dict:
    out = {}
    for k, v in actual.items():
        if isinstance(v, dict):
            sub = _changes(default.get(k, {}), v, prefix + k + ".")
            out.update(sub)
        elif k not in default or default[k] != v:
            out[prefix + k] = v
    return out


def render_config(base_config: str, run: dict, header: str) -> str:
    """A configs/*.py file: the base config with the run's overrides, written as the values
    that differ from dsllm.config.base_config()."""
    from dsllm.config import base_config as schema
    from dsllm.config import load_config

    config = load_config(resolve_config(base_config), run["overrides"])
    changes = _changes(schema().to_dict(), config.to_dict())
    sections: dict[str, dict] = {}
    for key, value in changes.items():
        section, leaf = key.split(".", 1)
        sections.setdefault(section, {})[leaf] = value
    lines = [f'"""{header.strip()}\n"""', "", "from dsllm.config import base_config, lock", "", "",
             "def get_config():", "    c = base_config()"]
    for section, values in sections.items():
        args = ", ".join(f"{k}={pprint.pformat(v)}" for k, v in values.items())
        lines.append(f"    c.{section}.update({args})")
    lines += ["    return lock(c)", ""]
    return "\n".join(lines)


def write_config(path: str, text: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def describe(run: dict) -> list[str]:
    sch = run["schedule"]
    return [
        f"compute budget C = {run['budget']:.4g} FLOPs",
        f"model: {run['n_layers']} layers x d_model {run['d_model']}, {run['n_heads']} heads of {run['head_dim']}, "
        f"ffn {run['ffn_dim']}; M = {run['m']:.4g} FLOPs/token (target {run['m_target']:.4g}), "
        f"N1 = {run['n1']:.4g}, N2 = {run['n2']:.4g}",
        f"data: {run['tokens']:.4g} tokens = {run['steps']} steps x {run['global_batch']} sequences x {run['seq_len']}",
        f"peak learning rate {run['peak_lr']:.4g}; batch law {run['batch_tokens_law']:.4g} tokens",
        f"schedule: multi-step, warmup {sch['warmup_steps']} steps, x{sch['decay_factors'][0]} at step "
        f"{sch['decay_steps'][0]}, x{sch['decay_factors'][1]} at step {sch['decay_steps'][1]}",
    ] + [f"warning: {w}" for w in run.get("warnings", [])]
