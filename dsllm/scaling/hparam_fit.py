"""Refitting Formula (1) from a batch-size x learning-rate grid search, the paper's way.

Input: one row per trained model with its compute budget, batch size (tokens), peak learning
rate and final loss. At each budget the near-optimal runs are those within 0.25% of the lowest
loss (loss <= min x 1.0025); batch_tokens = B0 C^beta and learning_rate = lr0 C^alpha are fitted
by least squares in log-log over all near-optimal runs of all budgets (the grey circles of the
paper's Figure 3). Intervals: the runs of each budget are resampled with replacement, the
near-optimal set re-selected and the laws refitted.
"""

from __future__ import annotations

import numpy as np

from dsllm.scaling.laws import BATCH_LAW, DEFAULT_LEVEL, LR_LAW, NEAR_OPTIMAL, fit_power_law, group_budgets, interval


class HparamFitError(ValueError):
    pass


def near_optimal(labels, loss, tolerance: float = NEAR_OPTIMAL) -> np.ndarray:
    """Mask of runs whose loss is within `tolerance` (relative) of their budget's minimum."""
    labels, loss = np.asarray(labels), np.asarray(loss, dtype=float)
    mask = np.zeros(len(loss), bool)
    for c in np.unique(labels):
        sel = labels == c
        mask[sel] = loss[sel] <= loss[sel].min() * (1 + tolerance)
    return mask


def _fit(labels, batch, lr, loss, tolerance):
    mask = near_optimal(labels, loss, tolerance)
    return mask, fit_power_law(labels[mask], batch[mask]), fit_power_law(labels[mask], lr[mask])


def fit_hparam_laws(compute, batch_tokens, learning_rate, loss, budget=None, tolerance: float = NEAR_OPTIMAL,
                    n_boot: int = 1000, seed: int = 0, level: float = DEFAULT_LEVEL) -> dict:
    batch, lr, loss = (np.asarray(a, dtype=float) for a in (batch_tokens, learning_rate, loss))
    labels = group_budgets(compute, budget)
    budgets = np.unique(labels)
    if len(budgets) < 2:
        raise HparamFitError(f"the laws' exponents need grid searches at two or more budgets; found {len(budgets)}")
    if not np.all(np.isfinite(loss)):
        raise HparamFitError("some losses are not finite (diverged runs?); drop those rows or set them high")
    mask, b_law, lr_law = _fit(labels, batch, lr, loss, tolerance)
    rng = np.random.default_rng(seed)
    samples = {k: [] for k in ("batch_base", "batch_exponent", "lr_base", "lr_exponent")}
    index = [np.flatnonzero(labels == c) for c in budgets]
    for _ in range(n_boot):
        pick = np.concatenate([rng.choice(ix, len(ix)) for ix in index])
        try:
            _, b, l = _fit(labels[pick], batch[pick], lr[pick], loss[pick], tolerance)
        except ValueError:  # a resample whose near-optimal runs share one batch size: no slope
            continue
        for k, v in zip(samples, (b.base, b.exponent, l.base, l.exponent)):
            samples[k].append(v)
    ci = {k: interval(v, level) for k, v in samples.items()}
    return dict(
        batch_base=b_law.base, batch_base_interval=ci["batch_base"],
        batch_exponent=b_law.exponent, batch_exponent_interval=ci["batch_exponent"],
        lr_base=lr_law.base, lr_base_interval=ci["lr_base"],
        lr_exponent=lr_law.exponent, lr_exponent_interval=ci["lr_exponent"],
        paper=dict(batch_base=BATCH_LAW.base, batch_exponent=BATCH_LAW.exponent,
                   lr_base=LR_LAW.base, lr_exponent=LR_LAW.exponent),
        near_optimal_tolerance=tolerance, interval_level=level, n_bootstrap=len(samples["lr_base"]),
        runs=int(len(loss)), near_optimal_runs=int(mask.sum()),
        budgets=[dict(budget=float(c), runs=int(np.sum(labels == c)), near_optimal=int(np.sum(mask & (labels == c))),
                      min_loss=float(loss[labels == c].min())) for c in budgets])
