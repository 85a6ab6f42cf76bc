"""Fitting an IsoFLOP study (the paper's Section 3.2, Chinchilla's approach 2).

Per budget C: a parabola of the loss in ln M; its vertex is the IsoFLOP minimum (M_opt, L_opt),
and D_opt = C / M_opt. Across budgets: M_opt = m_base C^a and D_opt = d_base C^b by least squares
in log-log (so a + b = 1 and m_base d_base = 1 by construction), and the loss-versus-compute law
L_opt(C), either a power law k C^-gamma (the paper's Figure 5) or with an offset, e + k C^-gamma.

Intervals come from a residual bootstrap: the parabolas' residuals (scaled by sqrt(n/(n-3)) for
the three fitted constants) are pooled over budgets, resampled onto each budget's fitted curve,
and everything above is refitted; percentiles of the refits give each interval.
"""

from __future__ import annotations

import dataclasses
import math
import warnings as _warnings

import numpy as np

from dsllm.scaling.laws import DEFAULT_LEVEL, PowerLaw, fit_power_law, group_budgets, interval


class FitError(ValueError):
    """The results cannot be fitted as asked (too few points, a curve without a minimum, ...)."""


@dataclasses.dataclass(frozen=True)
class LossLaw:
    """L_opt(C) = e + k C^-gamma (e = 0 for the plain power law)."""
    kind: str
    e: float
    k: float
    gamma: float

    def __call__(self, c):
        return self.e + self.k * np.power(np.asarray(c, dtype=float), -self.gamma)


LOSS_LAWS = ("power", "offset")


def fit_loss_law(compute, loss, kind: str = "power") -> LossLaw:
    c, l = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    if kind not in LOSS_LAWS:
        raise FitError(f"loss law must be one of {LOSS_LAWS}, got {kind!r}")
    p = fit_power_law(c, l)
    if kind == "power":
        return LossLaw("power", 0.0, p.base, -p.exponent)
    if len(np.unique(c)) < 4:
        raise FitError("the offset law e + k C^-gamma has three constants: it needs four or more budgets")
    from scipy.optimize import curve_fit

    x = np.log(c)
    x0 = x.mean()  # centred, so that k is well scaled

    def f(x, e, lnk, gamma):
        return e + np.exp(lnk - gamma * (x - x0))

    lo = float(l.min())
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            (e, lnk, gamma), _ = curve_fit(f, x, l, p0=[0.5 * lo, math.log(0.5 * lo), max(-p.exponent, 1e-3)],
                                           bounds=([0.0, -50.0, 1e-6], [lo, 50.0, 5.0]), maxfev=20000)
    except (RuntimeError, ValueError) as err:
        raise FitError(f"the offset loss law did not converge ({err}); use --loss_law=power") from None
    return LossLaw("offset", float(e), float(math.exp(lnk + gamma * x0)), float(gamma))


def fit_parabola(m, loss) -> np.ndarray:
    """Coefficients (p2, p1, p0) of loss = p2 x^2 + p1 x + p0 with x = ln M."""
    m, loss = np.asarray(m, dtype=float), np.asarray(loss, dtype=float)
    if len(np.unique(m)) < 3:
        raise FitError(f"an IsoFLOP parabola needs three or more distinct model scales, got {len(np.unique(m))}")
    return np.polyfit(np.log(m), loss, 2)


def vertex(coef) -> tuple[float, float]:
    """(M, loss) at the parabola's minimum; FitError when it opens downwards or bottoms out at a
    loss <= 0 (a nearly flat parabola, whose vertex lies far outside the runs: bootstrap resamples
    of a budget whose runs do not bracket its optimum give such curves)."""
    p2, p1, p0 = coef
    if not p2 > 0:
        raise FitError("the IsoFLOP curve has no minimum (the parabola opens downwards)")
    x = -p1 / (2 * p2)
    loss = p0 - p1 * p1 / (4 * p2)
    if not loss > 0:
        raise FitError(f"the IsoFLOP curve has no usable minimum (its vertex is at loss {loss:.3g}, "
                       f"M={math.exp(x):.3g})")
    return float(math.exp(x)), float(loss)


@dataclasses.dataclass
class IsoFlopFit:
    curves: list[dict]            # per budget: budget, m, loss, coef, m_opt, d_opt, loss_opt, bracketed
    m_law: PowerLaw
    d_law: PowerLaw
    loss_law: LossLaw
    level: float
    loss_unit: str
    boot: dict                    # bootstrap samples: m_base, a, d_base, b, e, k, gamma, noise
    warnings: list[str]

    @property
    def budgets(self) -> np.ndarray:
        return np.asarray([c["budget"] for c in self.curves])

    def _boot_loss(self, c) -> np.ndarray:
        b = self.boot
        if not len(b.get("k", [])):
            return np.asarray([])
        return b["e"] + b["k"] * np.power(float(c), -b["gamma"])

    def predict(self, compute: float) -> dict:
        """Optimal M, D and loss at a budget, with intervals. loss_interval covers the law's
        uncertainty plus one run's scatter about it (the parabola residuals)."""
        c = float(compute)
        boot_law = self._boot_loss(c)
        noise = self.boot.get("noise", np.zeros_like(boot_law))
        out = dict(compute=c, loss=float(self.loss_law(c)), loss_unit=self.loss_unit,
                   loss_interval=interval(boot_law + noise, self.level),
                   loss_law_interval=interval(boot_law, self.level),
                   m_opt=float(self.m_law(c)), d_opt=float(self.d_law(c)))
        if len(self.boot.get("a", [])):
            out["m_opt_interval"] = interval(self.boot["m_base"] * c ** self.boot["a"], self.level)
            out["d_opt_interval"] = interval(self.boot["d_base"] * c ** self.boot["b"], self.level)
        budgets = self.budgets
        if c > budgets.max():
            out["extrapolation"] = float(c / budgets.max())
        return out

    def to_json(self) -> dict:
        b, lvl = self.boot, self.level
        ci = lambda k: interval(b[k], lvl) if len(b.get(k, [])) else None
        return dict(
            m_base=self.m_law.base, m_base_interval=ci("m_base"), a=self.m_law.exponent, a_interval=ci("a"),
            d_base=self.d_law.base, d_base_interval=ci("d_base"), b=self.d_law.exponent, b_interval=ci("b"),
            loss_law=self.loss_law.kind, loss_e=self.loss_law.e, loss_e_interval=ci("e"),
            loss_k=self.loss_law.k, loss_k_interval=ci("k"), loss_gamma=self.loss_law.gamma,
            loss_gamma_interval=ci("gamma"), loss_unit=self.loss_unit, interval_level=lvl,
            n_bootstrap=int(len(b.get("a", []))), budgets=[
                dict(budget=c["budget"], runs=len(c["m"]), m_opt=c["m_opt"], d_opt=c["d_opt"],
                     loss_opt=c["loss_opt"], bracketed=c["bracketed"]) for c in self.curves],
            warnings=self.warnings)


def _fit_all(budgets, groups, loss_law):
    """Vertices per budget and the three laws; groups: list of (m, loss) arrays."""
    m_opt, l_opt = [], []
    for (m, loss) in groups:
        mo, lo = vertex(fit_parabola(m, loss))
        m_opt.append(mo)
        l_opt.append(lo)
    m_opt, l_opt = np.asarray(m_opt), np.asarray(l_opt)
    return m_opt, l_opt, fit_power_law(budgets, m_opt), fit_power_law(budgets, budgets / m_opt), \
        fit_loss_law(budgets, l_opt, loss_law)


def fit_isoflop(compute, m, loss, budget=None, loss_law: str = "power", n_boot: int = 1000, seed: int = 0,
                level: float = DEFAULT_LEVEL, loss_unit: str = "", skip_degenerate: bool = False) -> IsoFlopFit:
    """skip_degenerate: leave out (with a warning) runs whose loss is not finite and budgets whose
    curve has no minimum, instead of failing."""
    compute, m, loss = (np.asarray(a, dtype=float) for a in (compute, m, loss))
    if not (compute.shape == m.shape == loss.shape) or compute.ndim != 1:
        raise FitError("compute, m and loss must be 1-D columns of one length")
    warns = []
    if not np.all(np.isfinite(loss)):
        bad = int(np.sum(~np.isfinite(loss)))
        if not skip_degenerate:
            raise FitError(f"{bad} loss value(s) are not finite (diverged runs?); drop those rows "
                           "(or --skip_degenerate)")
        warns.append(f"{bad} run(s) with a non-finite loss (diverged?) left out")
        keep = np.isfinite(loss)
        compute, m, loss = compute[keep], m[keep], loss[keep]
        budget = None if budget is None else np.asarray(budget, dtype=float)[keep]
    labels = group_budgets(compute, budget)
    if len(np.unique(labels)) < 2:
        raise FitError(f"scaling exponents need two or more compute budgets; the results hold {len(np.unique(labels))}")
    curves = []
    for c in np.unique(labels):
        mg, lg = m[labels == c], loss[labels == c]
        try:
            coef = fit_parabola(mg, lg)
            mo, lo = vertex(coef)
        except FitError as e:
            if skip_degenerate:
                warns.append(f"C={c:.3g}: {e}; budget dropped from the fit")
                continue
            raise FitError(f"budget C={c:.3g}: {e}; its runs must bracket the optimum (add smaller and larger "
                           "models) or drop the budget (--skip_degenerate)") from None
        bracketed = bool(mg.min() <= mo <= mg.max())
        if not bracketed:
            warns.append(f"C={c:.3g}: the minimum M={mo:.3g} lies outside the runs' range "
                         f"[{mg.min():.3g}, {mg.max():.3g}] (extrapolated)")
        curves.append(dict(budget=float(c), m=mg, loss=lg, coef=coef, m_opt=mo, d_opt=float(c / mo), loss_opt=lo,
                           bracketed=bracketed))
    if len(curves) < 2:
        raise FitError(f"scaling exponents need two or more compute budgets with an IsoFLOP minimum; "
                       f"the results hold {len(curves)}" + (f" ({'; '.join(warns)})" if warns else ""))
    budgets = np.asarray([cv["budget"] for cv in curves])
    groups = [(cv["m"], cv["loss"]) for cv in curves]
    _, _, m_law, d_law, l_law = _fit_all(budgets, groups, loss_law)

    # residual bootstrap
    pool = []
    for cv in curves:
        n = len(cv["m"])
        if n > 3:
            fitted = np.polyval(cv["coef"], np.log(cv["m"]))
            pool.append((cv["loss"] - fitted) * math.sqrt(n / (n - 3)))
    pool = np.concatenate(pool) if pool else np.asarray([])
    keys = ("m_base", "a", "d_base", "b", "e", "k", "gamma", "noise")
    boot = {k: [] for k in keys}
    failed = 0
    if n_boot > 0 and pool.size:
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            resampled = [(cv["m"], np.polyval(cv["coef"], np.log(cv["m"])) + rng.choice(pool, len(cv["m"])))
                         for cv in curves]
            try:
                _, _, ml, dl, ll = _fit_all(budgets, resampled, loss_law)
            except FitError:
                failed += 1
                continue
            for k, v in zip(keys, (ml.base, ml.exponent, dl.base, dl.exponent, ll.e, ll.k, ll.gamma,
                                   rng.choice(pool))):
                boot[k].append(v)
    elif n_boot > 0:
        warns.append("no bootstrap intervals: every budget has exactly three runs, so the parabolas leave no "
                     "residuals to resample; use four or more runs per budget")
    if failed:
        warns.append(f"{failed} of {n_boot} bootstrap resamples gave a curve without a minimum and were dropped")
    boot = {k: np.asarray(v) for k, v in boot.items()}
    return IsoFlopFit(curves, m_law, d_law, l_law, level, loss_unit, boot, warns)
