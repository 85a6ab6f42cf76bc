"""The paper's scaling laws and the power-law fitting they share.

Formula (1), hyper-parameters against the compute budget C (FLOPs, C = M D):
    learning_rate = 0.3118 C^-0.1250            batch_tokens = 0.2920 C^0.3271
Formula (4), optimal model and data scale:
    M_opt = 0.1715 C^0.5243                      D_opt = 5.8316 C^0.4757
"""

from __future__ import annotations

import dataclasses

import numpy as np

NEAR_OPTIMAL = 0.0025  # the paper's near-optimal band: within 0.25% of the minimum loss at a budget
DEFAULT_LEVEL = 0.95   # confidence level of every bootstrap interval


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """y = base * x^exponent."""
    base: float
    exponent: float

    def __call__(self, x):
        return self.base * np.power(np.asarray(x, dtype=float), self.exponent)

    def inverse(self, y):
        return np.power(np.asarray(y, dtype=float) / self.base, 1.0 / self.exponent)


LR_LAW = PowerLaw(0.3118, -0.1250)       # Formula (1), peak learning rate
BATCH_LAW = PowerLaw(0.2920, 0.3271)     # Formula (1), batch size in tokens
M_OPT_LAW = PowerLaw(0.1715, 0.5243)     # Formula (4), non-embedding FLOPs/token
D_OPT_LAW = PowerLaw(5.8316, 0.4757)     # Formula (4), tokens

# Table 4: exponents a (model scaling) and b (data scaling) reported for several data sets.
TABLE4 = {
    "OpenAI (OpenWebText2)": (0.73, 0.27),
    "Chinchilla (MassiveText)": (0.49, 0.51),
    "DeepSeek (early data)": (0.450, 0.550),
    "DeepSeek (current data)": (0.524, 0.476),
    "DeepSeek (OpenWebText2)": (0.578, 0.422),
}


def hyperparams(compute: float, seq_len: int | None = None) -> dict:
    """Formula (1) at one budget; with seq_len, the batch in whole sequences too (at least 1)."""
    if not compute > 0:
        raise ValueError(f"compute must be a positive number of FLOPs, got {compute}")
    out = dict(compute=float(compute), batch_tokens=float(BATCH_LAW(compute)),
               learning_rate=float(LR_LAW(compute)))
    if seq_len is not None:
        out.update(seq_len=int(seq_len), batch_sequences=max(1, int(round(out["batch_tokens"] / seq_len))))
    return out


def optimal_scale(compute: float) -> dict:
    """Formula (4) at one budget."""
    return dict(compute=float(compute), m_opt=float(M_OPT_LAW(compute)), d_opt=float(D_OPT_LAW(compute)))


def fit_power_law(x, y) -> PowerLaw:
    """Least squares of log y on log x. Needs at least two distinct positive x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of one length, got {x.shape} and {y.shape}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power law needs positive x and y")
    if len(np.unique(x)) < 2:
        raise ValueError("a power law needs points at two or more distinct x (compute budgets)")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return PowerLaw(float(np.exp(intercept)), float(slope))


def interval(samples, level: float = DEFAULT_LEVEL) -> list[float] | None:
    """Percentile interval of bootstrap samples (None when there are none)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return None
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(s, tail)), float(np.percentile(s, 100 - tail))]


def group_budgets(compute, budget=None, rtol: float = 0.1) -> np.ndarray:
    """Labels runs by compute budget: the `budget` column where a results file has one,
    otherwise computes within rtol of each other (planned runs miss their budget by the
    rounding of steps). Returns each run's budget value (the group's geometric mean when
    grouping by compute)."""
    if budget is not None:
        return np.asarray(budget, dtype=float)
    c = np.asarray(compute, dtype=float)
    order = np.argsort(c)
    labels = np.empty_like(c)
    start = 0
    for i in range(1, len(c) + 1):
        if i == len(c) or c[order[i]] > c[order[start]] * (1 + rtol):
            idx = order[start:i]
            labels[idx] = np.exp(np.mean(np.log(c[idx])))
            start = i
    return labels
