"""PNG plots of an IsoFLOP fit (matplotlib, no display needed): the paper's Figure 4 (IsoFLOP
curves, M_opt and D_opt against C) and Figure 5 (loss against C with a prediction)."""

from __future__ import annotations

import os

import numpy as np

from dsllm.scaling.isoflop import IsoFlopFit
from dsllm.scaling.laws import D_OPT_LAW, M_OPT_LAW, interval


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    os.replace(tmp, path)


def _band(ax, x, samples_fn, level, color):
    """Shades the bootstrap interval of a law over x."""
    lo, hi = [], []
    for xi in x:
        ci = interval(samples_fn(xi), level)
        if ci is None:
            return
        lo.append(ci[0])
        hi.append(ci[1])
    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def plot_fit(fit: IsoFlopFit, out_dir: str, predictions=(), holdout=()) -> list[str]:
    """Writes isoflop.png, m_opt.png, d_opt.png and loss_vs_compute.png; returns their paths.
    predictions: computes to mark on the loss plot; holdout: (compute, loss) pairs measured."""
    plt = _plt()
    os.makedirs(out_dir, exist_ok=True)
    unit = fit.loss_unit or "loss"
    cmap = plt.get_cmap("viridis")
    budgets = fit.budgets
    colors = [cmap(i / max(1, len(budgets) - 1)) for i in range(len(budgets))]
    paths = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cv, col in zip(fit.curves, colors):
        ax.scatter(cv["m"], cv["loss"], color=col, s=18, label=f"C = {cv['budget']:.2g}")
        x = np.geomspace(cv["m"].min() / 1.3, cv["m"].max() * 1.3, 100)
        ax.plot(x, np.polyval(cv["coef"], np.log(x)), color=col, lw=1)
        ax.scatter([cv["m_opt"]], [cv["loss_opt"]], color=col, marker="*", s=120, edgecolor="k", zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("model scale M (non-embedding FLOPs/token)")
    ax.set_ylabel(unit)
    ax.set_title("IsoFLOP curves (stars: fitted minima)")
    ax.legend(fontsize=7)
    paths.append(os.path.join(out_dir, "isoflop.png"))
    _save(fig, paths[-1])
    plt.close(fig)

    c_all = np.asarray(list(budgets) + [p for p in predictions])
    cx = np.geomspace(c_all.min() / 1.5, c_all.max() * 1.5, 60)
    b = fit.boot
    for key, law, paper, base_k, exp_k, label in (
            ("m_opt", fit.m_law, M_OPT_LAW, "m_base", "a", "M_opt (FLOPs/token)"),
            ("d_opt", fit.d_law, D_OPT_LAW, "d_base", "b", "D_opt (tokens)")):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        ax.scatter(budgets, [cv[key] for cv in fit.curves], color="grey", zorder=3, label="IsoFLOP minima")
        ax.plot(cx, law(cx), "b--", label=f"fit: {law.base:.3g} C^{law.exponent:.4f}")
        if len(b.get(exp_k, [])):
            _band(ax, cx, lambda c: b[base_k] * c ** b[exp_k], fit.level, "b")
        ax.plot(cx, paper(cx), "r:", label=f"paper: {paper.base:.4g} C^{paper.exponent:.4f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
        paths.append(os.path.join(out_dir, f"{key}.png"))
        _save(fig, paths[-1])
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(budgets, [cv["loss_opt"] for cv in fit.curves], color="grey", zorder=3, label="IsoFLOP minima")
    ll = fit.loss_law
    lab = (f"fit: {ll.k:.3g} C^-{ll.gamma:.4f}" if ll.kind == "power" else
           f"fit: {ll.e:.3g} + {ll.k:.3g} C^-{ll.gamma:.4f}")
    ax.plot(cx, ll(cx), "b--", label=lab)
    if len(b.get("k", [])):
        _band(ax, cx, lambda c: b["e"] + b["k"] * c ** (-b["gamma"]), fit.level, "b")
    for c in predictions:
        p = fit.predict(c)
        err = None if p["loss_interval"] is None else [[p["loss"] - p["loss_interval"][0]],
                                                      [p["loss_interval"][1] - p["loss"]]]
        ax.errorbar([c], [p["loss"]], yerr=err, fmt="bs", capsize=3, label=f"prediction at {c:.2g}")
    for c, l in holdout:
        ax.scatter([c], [l], color="orange", marker="*", s=140, edgecolor="k", zorder=4, label=f"measured at {c:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOPs)")
    ax.set_ylabel(unit)
    ax.set_title("loss at the compute-optimal allocation")
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
    ax.legend(fontsize=8)
    paths.append(os.path.join(out_dir, "loss_vs_compute.png"))
    _save(fig, paths[-1])
    plt.close(fig)
    return paths
