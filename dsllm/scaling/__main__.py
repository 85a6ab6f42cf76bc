"""`python -m dsllm.scaling <command>`: scaling laws as a tool (docs/scaling.md).

  flops    --n_layer L --d_model D --seq_len S --vocab V        N1, N2, M and the 6N/M ratios
  hparams  --compute C [--seq_len S] | --fit grid.csv           Formula (1), or refit it
  plan     --budgets 1e17,3e17 --per_budget 10 --out DIR        an IsoFLOP plan
  run      --plan DIR [--parallel N] [--print_commands|--collect]  train the plan's runs
  fit      --results results.csv [--plot DIR] [--predict C]     M_opt, D_opt and loss laws
  predict  --compute C --results results.csv [--holdout h.csv]  loss, M_opt, D_opt at C
  suggest  --compute C [--seq_len S] --out configs/x.py         a ready config for dsllm.train
Every command takes --json to print one JSON object instead of text.
"""

from __future__ import annotations

import ast
import json
import shlex
import sys

from absl import app, flags

FLAGS = flags.FLAGS
COMMANDS = ("flops", "hparams", "plan", "run", "fit", "predict", "suggest")

flags.DEFINE_bool("json", False, "print one JSON object")
flags.DEFINE_integer("n_layer", None, "flops: number of layers")
flags.DEFINE_integer("d_model", None, "flops: model width")
flags.DEFINE_integer("seq_len", 4096, "sequence length (the paper's 4096 by default)")
flags.DEFINE_integer("vocab", None, "vocabulary size (default: the dataset's with --data_path, else 102400)")
flags.DEFINE_float("compute", None, "compute budget C in FLOPs (C = M x tokens)")
flags.DEFINE_string("fit", None, "hparams: a grid search's CSV (compute, batch_tokens, learning_rate, loss) to refit")
flags.DEFINE_float("near_optimal", 0.0025, "hparams --fit: near-optimal band, relative to the minimum loss")
flags.DEFINE_list("budgets", None, "plan: compute budgets, e.g. 1e17,3e17,1e18")
flags.DEFINE_integer("per_budget", 10, "plan: model scales per budget")
flags.DEFINE_float("span", 16.0, "plan: largest / smallest target M within a budget")
flags.DEFINE_float("aspect", 64.0, "plan/suggest: d_model / n_layers the depth/width rule aims at")
flags.DEFINE_string("base_config", None, "plan/suggest: config the runs override (default: plan "
                    "configs/scaling_base.py, small models; suggest configs/deepseek_7b.py, the paper's recipe)")
flags.DEFINE_string("data_path", "", "plan/suggest: token dataset directory (sets data.path and the vocabulary)")
flags.DEFINE_integer("eval_tokens", None, "plan: validation tokens at the end of each run (default: the "
                     "whole validation split of --data_path, the same tokens for every run; else 1M)")
flags.DEFINE_integer("batch_multiple", 1, "plan: global batch rounded to a multiple of this (the device count)")
flags.DEFINE_multi_string("set", [], "plan/suggest: extra override for every run, KEY=VALUE (e.g. model.attention=cudnn)")
flags.DEFINE_string("out", None, "plan: output directory; suggest: config file to write")
flags.DEFINE_bool("force", False, "plan: replace a different plan already in --out")
flags.DEFINE_string("results", None, "fit/predict: results CSV; plan/suggest: centre sizes on the law fitted "
                    "to it instead of the paper's; run: where to record results (default PLAN/results.csv)")
flags.DEFINE_list("m_law", [], "plan/suggest: centre sizes on M_opt = BASE C^EXP, given as BASE,EXP "
                  "(default: the paper's 0.1715,0.5243, or the law fitted to --results)")
flags.DEFINE_string("plan", None, "run: plan directory")
flags.DEFINE_string("trainer", f"{sys.executable} -m dsllm.train", "run: the training command")
flags.DEFINE_integer("parallel", 1, "run: runs at a time (small models share one accelerator well)")
flags.DEFINE_bool("keep_going", False, "run: continue with other runs after a failure")
flags.DEFINE_bool("print_commands", False, "run: print one command per run (job arrays) and train nothing")
flags.DEFINE_bool("collect", False, "run: record runs finished elsewhere and train nothing")
flags.DEFINE_float("stop_after_s", None, "run: start no new run after this many seconds")
flags.DEFINE_enum("loss_law", "power", ["power", "offset"], "fit/predict: L = k C^-g (paper) or e + k C^-g")
flags.DEFINE_string("loss_column", "loss", "fit/predict: the results column holding the loss")
flags.DEFINE_string("plot", None, "fit/predict: write PNG plots to this directory")
flags.DEFINE_list("predict", [], "fit: budgets to predict (and mark on the loss plot)")
flags.DEFINE_bool("skip_degenerate", False, "fit/predict/plan: drop budgets whose IsoFLOP curve has no "
                  "minimum (with a warning) instead of failing")
flags.DEFINE_string("holdout", None, "predict: CSV of runs at larger budgets to compare with the prediction")
flags.DEFINE_integer("n_boot", 1000, "bootstrap resamples for intervals")
flags.DEFINE_integer("seed", 0, "bootstrap seed")


def _jsonable(x):
    import numpy as np

    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _print(obj: dict, lines):
    if FLAGS.json:
        print(json.dumps(_jsonable(obj), indent=1))
    else:
        print("\n".join(lines() if callable(lines) else lines))


def _require(*names):
    missing = [n for n in names if getattr(FLAGS, n) in (None, [], "")]
    if missing:
        raise UsageError(f"this command needs {', '.join('--' + n for n in missing)}")


class UsageError(ValueError):
    pass


def _ci(v, ci):
    return f"{v:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")


def _parse_set(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a plain string
        out[key.strip()] = value
    return out


def _settings(budgets, base_config, evals_per_run=1):
    from dsllm.data.shards import read_manifest
    from dsllm.scaling.plan import PlanSettings

    vocab = FLAGS.vocab
    if FLAGS.data_path:
        dvocab = read_manifest(FLAGS.data_path)["vocab_size"]
        if vocab is not None and vocab < dvocab:
            raise UsageError(f"--vocab {vocab} is below the dataset's vocabulary {dvocab}")
        vocab = vocab or dvocab
    kw = dict(budgets=budgets, per_budget=FLAGS.per_budget, span=FLAGS.span, seq_len=FLAGS.seq_len,
              vocab=vocab or 102400, aspect=FLAGS.aspect, base_config=FLAGS.base_config or base_config,
              data_path=FLAGS.data_path, evals_per_run=evals_per_run,
              eval_tokens=FLAGS.eval_tokens, batch_multiple=FLAGS.batch_multiple, extra=_parse_set(FLAGS.set))
    if FLAGS.m_law and FLAGS.results:
        raise UsageError("give --m_law or --results, not both")
    if FLAGS.m_law:
        try:
            base, exponent = (float(x) for x in FLAGS.m_law)
        except ValueError:
            raise UsageError(f"--m_law takes BASE,EXPONENT, got {FLAGS.m_law}") from None
        kw.update(m_law=(base, exponent), m_law_source=f"--m_law (M_opt = {base:.4g} C^{exponent:.4f})")
    if FLAGS.results:
        fit = _isoflop_fit(n_boot=0)
        kw.update(m_law=(fit.m_law.base, fit.m_law.exponent),
                  m_law_source=f"the law fitted to {FLAGS.results} (M_opt = {fit.m_law.base:.4g} C^{fit.m_law.exponent:.4f})")
    return PlanSettings(**kw)


def _isoflop_fit(n_boot=None):
    from dsllm.scaling.isoflop import fit_isoflop
    from dsllm.scaling.table import columns, text_column

    cols = columns(FLAGS.results, ["compute", "m", FLAGS.loss_column], optional=["budget"])
    units = text_column(FLAGS.results, "loss_unit") if FLAGS.loss_column == "loss" else None
    unit = units[0] if units and len(set(units)) == 1 else FLAGS.loss_column
    return fit_isoflop(cols["compute"], cols["m"], cols[FLAGS.loss_column], cols.get("budget"),
                       loss_law=FLAGS.loss_law, n_boot=FLAGS.n_boot if n_boot is None else n_boot,
                       seed=FLAGS.seed, loss_unit=unit, skip_degenerate=FLAGS.skip_degenerate)


def cmd_flops():
    from dsllm.scaling.flops import model_scale

    _require("n_layer", "d_model")
    r = model_scale(FLAGS.n_layer, FLAGS.d_model, FLAGS.seq_len, FLAGS.vocab or 102400)
    _print(r, [f"n_layer {r['n_layer']}, d_model {r['d_model']}, seq_len {r['seq_len']}, vocab {r['vocab']}",
               f"N1 (12 L D^2)          {r['n1']:,}", f"N2 (N1 + V D)          {r['n2']:,}",
               f"M (72LD^2 + 12LDS)     {r['m']:,}", f"6 N1 / M               {r['six_n1_over_m']:.3f}",
               f"6 N2 / M               {r['six_n2_over_m']:.3f}"])


def cmd_hparams():
    if FLAGS.fit:
        from dsllm.scaling.hparam_fit import fit_hparam_laws
        from dsllm.scaling.table import columns

        cols = columns(FLAGS.fit, ["compute", "batch_tokens", "learning_rate", "loss"], optional=["budget"])
        r = fit_hparam_laws(cols["compute"], cols["batch_tokens"], cols["learning_rate"], cols["loss"],
                            cols.get("budget"), tolerance=FLAGS.near_optimal, n_boot=FLAGS.n_boot, seed=FLAGS.seed)
        lvl = int(r["interval_level"] * 100)
        _print(r, [f"{r['near_optimal_runs']} near-optimal runs (within {100 * r['near_optimal_tolerance']:.2f}% of "
                   f"each budget's minimum) of {r['runs']}, over {len(r['budgets'])} budgets; {lvl}% bootstrap intervals",
                   f"batch_tokens  = {_ci(r['batch_base'], r['batch_base_interval'])} * C^"
                   f"{_ci(r['batch_exponent'], r['batch_exponent_interval'])}   (paper 0.2920 C^0.3271)",
                   f"learning_rate = {_ci(r['lr_base'], r['lr_base_interval'])} * C^"
                   f"{_ci(r['lr_exponent'], r['lr_exponent_interval'])}   (paper 0.3118 C^-0.1250)"])
        return
    from dsllm.scaling.laws import hyperparams

    _require("compute")
    r = hyperparams(FLAGS.compute, FLAGS.seq_len)
    _print(r, [f"C = {r['compute']:.4g} FLOPs (Formula 1)",
               f"batch_tokens    {r['batch_tokens']:.6g}  (0.2920 C^0.3271)",
               f"batch_sequences {r['batch_sequences']}  (at seq_len {r['seq_len']})",
               f"learning_rate   {r['learning_rate']:.6g}  (0.3118 C^-0.1250)"])


def cmd_plan():
    from dsllm.scaling.plan import DEFAULT_BASE_CONFIG, make_plan, summary_lines, write_plan

    _require("budgets", "out")
    try:
        budgets = [float(b) for b in FLAGS.budgets]
    except ValueError:
        raise UsageError(f"--budgets must be numbers, got {FLAGS.budgets}") from None
    plan = make_plan(_settings(budgets, DEFAULT_BASE_CONFIG))
    write_plan(plan, FLAGS.out, force=FLAGS.force)
    _print(dict(plan, out=FLAGS.out), lambda: summary_lines(plan) + [f"wrote {FLAGS.out}/plan.json and commands.txt"])


def cmd_run():
    from dsllm.scaling.runner import commands, run_plan

    _require("plan")
    trainer = shlex.split(FLAGS.trainer)
    if FLAGS.print_commands:
        for c in commands(FLAGS.plan, trainer):
            print(shlex.join(c))
        return
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if FLAGS.json else (lambda *a: print(*a, flush=True))
    counts = run_plan(FLAGS.plan, trainer, results_path=FLAGS.results, parallel=FLAGS.parallel,
                      keep_going=FLAGS.keep_going, launch=not FLAGS.collect, stop_after_s=FLAGS.stop_after_s, log=log)
    _print(counts, [", ".join(f"{k} {v}" for k, v in counts.items())])


def _fit_lines(r: dict) -> list[str]:
    lvl = int(r["interval_level"] * 100)
    ll = r["loss_law"]
    law = ("L_opt = k C^-gamma:" if ll == "power" else
           f"L_opt = e + k C^-gamma: e = {_ci(r['loss_e'], r['loss_e_interval'])},") + \
        f" k = {_ci(r['loss_k'], r['loss_k_interval'])}, gamma = {_ci(r['loss_gamma'], r['loss_gamma_interval'])}"
    out = [f"{'budget':>10} {'runs':>4} {'M_opt':>10} {'D_opt':>10} {'L_opt':>8}"]
    out += [f"{b['budget']:10.3g} {b['runs']:4d} {b['m_opt']:10.4g} {b['d_opt']:10.4g} {b['loss_opt']:8.4f}"
            + ("" if b["bracketed"] else "  (minimum outside the runs)") for b in r["budgets"]]
    out += [f"M_opt = {_ci(r['m_base'], r['m_base_interval'])} * C^{_ci(r['a'], r['a_interval'])}   (paper 0.1715 C^0.5243)",
            f"D_opt = {_ci(r['d_base'], r['d_base_interval'])} * C^{_ci(r['b'], r['b_interval'])}   (paper 5.8316 C^0.4757)",
            f"{law}   [{r['loss_unit']}]", f"{lvl}% intervals from {r['n_bootstrap']} bootstrap refits"]
    return out + [f"warning: {w}" for w in r["warnings"]]


def _prediction_lines(p: dict) -> list[str]:
    ci = p["loss_interval"]
    out = [f"C = {p['compute']:.4g}: L_opt = {_ci(p['loss'], ci)} {p['loss_unit']}, "
           f"M_opt = {_ci(p['m_opt'], p.get('m_opt_interval'))}, D_opt = {_ci(p['d_opt'], p.get('d_opt_interval'))}"]
    if "actual" in p:
        out.append(f"  measured {p['actual']:.4f} ({p['holdout_name']}): error {p['error']:+.4f} "
                   f"({100 * p['relative_error']:+.2f}%), {'inside' if p['inside_interval'] else 'outside'} the interval")
    return out


def cmd_fit():
    _require("results")
    fit = _isoflop_fit()
    r = fit.to_json()
    r["predictions"] = [fit.predict(float(c)) for c in FLAGS.predict]
    if FLAGS.plot:
        from dsllm.scaling.plots import plot_fit

        r["plots"] = plot_fit(fit, FLAGS.plot, predictions=[float(c) for c in FLAGS.predict])
    _print(r, lambda: _fit_lines(r) + sum((_prediction_lines(p) for p in r["predictions"]), [])
           + [f"wrote {p}" for p in r.get("plots", [])])


def cmd_predict():
    from dsllm.scaling.table import columns, text_column

    _require("results")
    if FLAGS.compute is None and not FLAGS.holdout:
        raise UsageError("predict needs --compute or --holdout")
    fit = _isoflop_fit()
    preds = [fit.predict(FLAGS.compute)] if FLAGS.compute is not None else []
    holdout = []
    if FLAGS.holdout:
        cols = columns(FLAGS.holdout, ["compute", FLAGS.loss_column], optional=["budget"])
        names = text_column(FLAGS.holdout, "name") or [f"row {i + 2}" for i in range(len(cols["compute"]))]
        for i, c in enumerate(cols.get("budget", cols["compute"])):
            p = fit.predict(float(c))
            actual = float(cols[FLAGS.loss_column][i])
            ci = p["loss_interval"]
            p.update(actual=actual, holdout_name=names[i], error=actual - p["loss"],
                     relative_error=(actual - p["loss"]) / p["loss"],
                     inside_interval=bool(ci and ci[0] <= actual <= ci[1]))
            preds.append(p)
            holdout.append((float(c), actual))
    out = dict(predictions=preds)
    if FLAGS.plot:
        from dsllm.scaling.plots import plot_fit

        out["plots"] = plot_fit(fit, FLAGS.plot, predictions=[p["compute"] for p in preds], holdout=holdout)
    _print(out, lambda: sum((_prediction_lines(p) for p in preds), []) + [f"wrote {p}" for p in out.get("plots", [])])


def cmd_suggest():
    from dsllm.scaling.suggest import describe, render_config, suggest_run, write_config

    _require("compute")
    settings = _settings([FLAGS.compute], "configs/deepseek_7b.py", evals_per_run=10)
    run = suggest_run(settings, FLAGS.compute)
    argv = " ".join(shlex.quote(a) for a in sys.argv[1:])
    if FLAGS.out:
        text = render_config(settings.base_config, run, "\n".join(
            [f"Suggested by `python -m dsllm.scaling {argv}`.", ""] + describe(run)))
        write_config(FLAGS.out, text)
    _print(dict(run, out=FLAGS.out), lambda: describe(run) + (
        [f"wrote {FLAGS.out}; train with: python -m dsllm.train --config={FLAGS.out} --workdir=DIR"
         + ("" if FLAGS.data_path else " --config.data.path=DATASET")] if FLAGS.out else []))


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if len(argv) > 2:
        print(f"error: unexpected arguments {argv[2:]}", file=sys.stderr)
        sys.exit(2)
    from dsllm.scaling.runner import Interrupted, RunError

    try:
        globals()["cmd_" + argv[1]]()
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except Interrupted as e:
        print(f"stopped by {e}", file=sys.stderr)
        sys.exit(130)
    except (ValueError, KeyError, FileNotFoundError) as e:  # the tool's errors are ValueErrors with a message
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
