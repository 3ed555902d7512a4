"""Fit EDEN's error models to raw characterization data by maximum likelihood.

``fit(raw)`` takes one test of a :class:`~eden.dram.raw.RawCharacterization` and fits
every model the data can identify:

* ``em0`` uniform (``p``),
* ``em1`` weak bitlines (``fraction, p, p_else``), per (bank, subarray, column unit),
* ``em2`` weak wordlines (``fraction, p, p_else``), per (bank, row),
* ``em3`` data dependent (``p10, p01``), only with error directions,
* ``em1+em2`` their composition (``em1: fraction, p, p_else`` + ``em2: fraction, p``),

then selects one by the Bayesian information criterion
``BIC = k ln(n) - 2 ln L`` with ``n`` the number of bit-trials (bits x
iterations), reports 99% confidence intervals and goodness of fit (observed vs
fitted distribution of errors per row and per column unit), and says what the
data cannot identify. ``save_fit`` writes the chosen model as an eden
error-model file (loadable by ``ErrorModel.load``) with the full report in
``/fit``.

Likelihood. Given its line classes, each bit-trial (one bit in one iteration)
fails independently with the model's rate; the observations are the error
counts per (bank, row, column unit), summed over iterations. All models share
the combinatorial constant, so log-likelihoods are comparable. em1 and em2 are
two-class binomial mixtures over column groups / rows, fitted by EM; their
likelihood is exact. em1+em2 couples rows and columns: its likelihood is exact
over the row classes and a classification likelihood over the column classes
(maximised over them), i.e. a lower bound on the marginal likelihood.

Confidence intervals are Wald intervals from the observed Fisher information
(the inverse of the numerically differentiated Hessian of the log-likelihood at
the MLE), clipped to [0, 1]; a parameter on the boundary (0) gets a one-sided
likelihood-ratio interval instead. ``simulate_records`` draws synthetic records
from a known model (same address conventions as :mod:`eden.dram.address`), which is
how the fit is tested.
"""

from __future__ import annotations

from eden.errors import EdenDataError

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from scipy import optimize, special, stats

from eden.core.io import write_with
from eden.dram.address import DramOrganization
from eden.errormodels.model import (
    PERSISTENCE_MODES,
    DataDependent,
    ErrorModel,
    Uniform,
    WeakBitlines,
    WeakWordlines,
)
from eden.dram.raw import OperatingPoint, RawCharacterization, RecordTest, SummaryTest

__all__ = [
    "CI_METHOD",
    "MODELS",
    "Estimate",
    "FitError",
    "FitResult",
    "MarginFit",
    "ModelFit",
    "fit",
    "fit_test",
    "read_fit_report",
    "save_fit",
    "simulate_records",
]

MODELS = ("em0", "em1", "em2", "em3", "em1+em2")
"""Models ``fit`` knows, in order of complexity."""

N_PARAMS = {"em0": 1, "em1": 3, "em2": 3, "em3": 2, "em1+em2": 5}

CI_METHOD = ("Wald interval from the observed Fisher information (inverse of the numerical Hessian "
             "of the log-likelihood at the MLE), clipped to [0, 1]; parameters at 0 get a one-sided "
             "likelihood-ratio bound")

_EPS = 1e-300


class FitError(EdenDataError):
    """The data cannot support the requested fit (e.g. a model it cannot identify)."""


# ------------------------------------------------------------------ results
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A fitted parameter with its confidence interval.

    Attributes:
        name: ``<kind>.<param>`` (e.g. ``"em1.fraction"``); probabilities are per
            bit per iteration, fractions are of bitlines (em1) or rows (em2).
        value: Maximum-likelihood estimate.
        ci_low, ci_high: Confidence interval (None where not identifiable).
        stderr: Standard error from the observed information (None if n/a).
        method: How the interval was obtained.
    """

    name: str
    value: float
    ci_low: float | None
    ci_high: float | None
    stderr: float | None
    method: str

    def contains(self, x: float) -> bool:
        """True if ``x`` lies in the interval (False if there is none)."""
        return self.ci_low is not None and self.ci_low <= x <= self.ci_high

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "ci": [self.ci_low, self.ci_high],
                "stderr": self.stderr, "method": self.method}


@dataclasses.dataclass(frozen=True)
class MarginFit:
    """Observed vs fitted distribution of error counts over rows or column units.

    Attributes:
        margin: ``"row"`` (per (bank, row)) or ``"column"`` (per (bank, subarray,
            column unit): the units whose weakness em1 models).
        bins: Half-open integer ranges ``(lo, hi)`` of errors per unit.
        observed: Number of units per bin in the data.
        expected: Expected number under the fitted model (Monte Carlo mean).
        chi2, dof, p_value: Pearson chi-square over the bins (expected >= 5;
            dof = bins - 1, not reduced for fitted parameters).
        observed_mean, fitted_mean, observed_var, fitted_var: Moments of the
            errors per unit.
    """

    margin: str
    bins: tuple
    observed: tuple
    expected: tuple
    chi2: float
    dof: int
    p_value: float
    observed_mean: float
    fitted_mean: float
    observed_var: float
    fitted_var: float

    def to_dict(self) -> dict:
        return {"margin": self.margin, "bins": [list(b) for b in self.bins], "observed": list(self.observed),
                "expected": list(self.expected), "chi2": self.chi2, "dof": self.dof,
                "p_value": self.p_value, "observed_mean": self.observed_mean,
                "fitted_mean": self.fitted_mean, "observed_var": self.observed_var,
                "fitted_var": self.fitted_var}


@dataclasses.dataclass(frozen=True)
class ModelFit:
    """One fitted candidate model.

    Attributes:
        name: One of :data:`MODELS`.
        model: The fitted eden ErrorModel.
        loglik: Maximised log-likelihood (None for summary data of unknown size).
        n_params: Free parameters.
        bic: ``n_params * ln(n) - 2 * loglik`` (None when loglik is None).
        estimates: Parameters with confidence intervals.
        gof: Goodness of fit per margin (empty for summary data).
        notes: Caveats specific to this candidate.
    """

    name: str
    model: ErrorModel
    loglik: float | None
    n_params: int
    bic: float | None
    estimates: tuple
    gof: tuple = ()
    notes: tuple = ()

    def estimate(self, name: str) -> Estimate:
        for e in self.estimates:
            if e.name == name:
                return e
        raise KeyError(f"{self.name} has no parameter {name!r}; known: {', '.join(e.name for e in self.estimates)}")

    def to_dict(self) -> dict:
        return {"model": self.name, "spec": self.model.to_spec(), "n_params": self.n_params,
                "loglik": self.loglik, "bic": self.bic,
                "parameters": [e.to_dict() for e in self.estimates],
                "gof": {g.margin: g.to_dict() for g in self.gof}, "notes": list(self.notes)}


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Outcome of fitting one test.

    Attributes:
        test: Test name.
        device: Device label from the raw file.
        operating_point: The test's operating point.
        data: Data summary (bits, iterations, bit-trials, errors, BER, ...).
        candidates: Fitted models, in :data:`MODELS` order.
        selected: Name of the selected (or forced) model.
        forced: True when the model was forced (``models=[one]``).
        excluded: Models not fitted, with the reason.
        identifiability: What the data can and cannot identify.
        confidence: Confidence level of the intervals.
        bic_n: The ``n`` in BIC (bit-trials).
        seed: Seed of the goodness-of-fit Monte Carlo.
    """

    test: str
    device: str
    operating_point: OperatingPoint
    data: Mapping[str, Any]
    candidates: tuple
    selected: str
    forced: bool
    excluded: Mapping[str, str]
    identifiability: tuple
    confidence: float
    bic_n: float | None
    seed: int

    @property
    def best(self) -> ModelFit:
        """The selected candidate."""
        return self.candidate(self.selected)

    @property
    def model(self) -> ErrorModel:
        """The selected model."""
        return self.best.model

    def candidate(self, name: str) -> ModelFit:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"model {name!r} was not fitted; fitted: {', '.join(c.name for c in self.candidates)}")

    def to_dict(self) -> dict:
        bics = [c.bic for c in self.candidates if c.bic is not None]
        best_bic = min(bics) if bics else None
        cands = []
        for c in self.candidates:
            d = c.to_dict()
            d["delta_bic"] = None if c.bic is None or best_bic is None else c.bic - best_bic
            cands.append(d)
        return _jsonable({
            "test": self.test, "device": self.device, "operating_point": self.operating_point.to_dict(),
            "data": dict(self.data), "criterion": "BIC", "bic_n": self.bic_n,
            "confidence": self.confidence, "ci_method": CI_METHOD, "gof_seed": self.seed,
            "identifiability": list(self.identifiability), "excluded": dict(self.excluded),
            "candidates": cands, "selected": self.selected, "forced": self.forced,
            "model_spec": self.model.to_spec(), "persistence": self.model.persistence,
        })

    def format_text(self, gof_detail: bool = True) -> str:
        """Human-readable report (as printed by ``eden errormodel fit``)."""
        d = self.data
        out = [f"test {self.test}" + (f" ({self.device})" if self.device else "")
               + f": {self.operating_point.describe()}"]
        if d["kind"] == "records":
            unit = "cell" if d["column_bits"] == 1 else f"{d['column_bits']}-bit column unit"
            out.append(f"data: {d['records']} error records per {unit} x {d['iterations']} iteration(s); "
                       f"{d['bits']} bits -> {d['bit_trials']:.4g} bit-trials, {d['errors']} errors, "
                       f"BER {d['ber']:.4g} per bit per iteration")
        else:
            out.append(f"data: summary only ({d['quantity']} = {d['value']:.6g}, {d['unit_bits']}-bit units, "
                       f"units tested: {d['units_tested'] or 'unknown'}, iterations: {d['iterations'] or 'unknown'})")
        out.append("what the data can and cannot identify:")
        out += [f"  - {n}" for n in self.identifiability]
        for name, why in self.excluded.items():
            out.append(f"  - {name} not fitted: {why}")
        best = [c.bic for c in self.candidates if c.bic is not None]
        b0 = min(best) if best else None
        out.append(f"candidates (BIC = k ln n - 2 ln L, n = {self.bic_n:.4g} bit-trials):"
                   if self.bic_n else "candidates:")
        out.append(f"  {'model':<9}{'k':>3}{'log L':>18}{'BIC':>18}{'dBIC':>12}{'row chi2/dof':>14}"
                   f"{'col chi2/dof':>14}")
        for c in self.candidates:
            g = {m.margin: m for m in c.gof}
            gs = [f"{g[k].chi2 / max(g[k].dof, 1):>14.3g}" if k in g else f"{'-':>14}" for k in ("row", "column")]
            ll = f"{c.loglik:>18.6g}" if c.loglik is not None else f"{'-':>18}"
            bic = f"{c.bic:>18.6g}" if c.bic is not None else f"{'-':>18}"
            dbic = f"{c.bic - b0:>12.4g}" if c.bic is not None and b0 is not None else f"{'-':>12}"
            out.append(f"  {c.name:<9}{c.n_params:>3}{ll}{bic}{dbic}{gs[0]}{gs[1]}")
        how = "forced" if self.forced else "lowest BIC"
        out.append(f"selected ({how}): {self.selected} -> {self.model.to_spec()}")
        level = f"{100 * self.confidence:g}%"
        for e in self.best.estimates:
            ci = f"[{e.ci_low:.4g}, {e.ci_high:.4g}]" if e.ci_low is not None else f"- ({e.method})"
            out.append(f"  {e.name:<14} = {e.value:.6g}  {level} CI {ci}")
        for n in self.best.notes:
            out.append(f"  note: {n}")
        if gof_detail:
            for m in self.best.gof:
                out.append(f"goodness of fit per {m.margin}: chi2 = {m.chi2:.4g} on {m.dof} dof (p = "
                           f"{m.p_value:.3g}); mean {m.observed_mean:.4g} observed vs {m.fitted_mean:.4g} "
                           f"fitted, variance {m.observed_var:.4g} vs {m.fitted_var:.4g}")
                out.append(f"  {'errors':>15}{'observed':>12}{'fitted':>14}")
                for (lo, hi), o, e in zip(m.bins, m.observed, m.expected):
                    label = f"{lo}" if hi == lo + 1 else f"{lo}-{hi - 1}"
                    out.append(f"  {label:>15}{o:>12}{e:>14.1f}")
        return "\n".join(out)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


# ------------------------------------------------------------ log-likelihood
def _kern(y, n, p):
    """Binomial kernel y ln p + (n - y) ln(1 - p), with 0 ln 0 = 0 (arrays ok)."""
    y = np.asarray(y, np.float64)
    n = np.asarray(n, np.float64)
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(p), 0.0)
        b = np.where(n - y > 0, (n - y) * np.log1p(-p), 0.0)
    return a + b


def _log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def _mix_ll(theta, n, y, m) -> float:
    """Two-class binomial mixture: sum m * ln(F B(y|n,P) + (1-F) B(y|n,Pe)), kernels only."""
    f, p, pe = theta
    lw = _log(f) + _kern(y, n, p)
    ls = _log(1.0 - f) + _kern(y, n, pe)
    return float(np.sum(m * np.logaddexp(lw, ls)))


def _compress(n, y) -> tuple:
    """Unique (trials, errors) pairs with multiplicities (sufficient statistics)."""
    n = np.asarray(n, np.int64)
    y = np.asarray(y, np.int64)
    radix = int(y.max(initial=0)) + 1
    uniq, mult = np.unique(n * radix + y, return_counts=True)  # n * radix + y < 2^63 for DRAM sizes
    return (uniq // radix).astype(np.float64), (uniq % radix).astype(np.float64), mult.astype(np.float64)


def _em_mixture(n, y, m, start, max_iter=300, tol=1e-12):
    """EM for the two-class binomial mixture, then a gradient polish (EM alone
    crawls when a class is nearly empty). Returns (loglik kernel, (F, P, Pe))."""
    f, p, pe = start
    ll = _mix_ll((f, p, pe), n, y, m)
    for _ in range(max_iter):
        lw = _log(f) + _kern(y, n, p)
        ls = _log(1.0 - f) + _kern(y, n, pe)
        r = np.exp(lw - np.logaddexp(lw, ls))
        mr, ms = m * r, m * (1.0 - r)
        f = float(mr.sum() / m.sum())
        nw, ns = float((mr * n).sum()), float((ms * n).sum())
        p = float((mr * y).sum() / nw) if nw > 0 else 0.0
        pe = float((ms * y).sum() / ns) if ns > 0 else 0.0
        new = _mix_ll((f, p, pe), n, y, m)
        done = new - ll <= tol * max(1.0, abs(new))
        ll = new
        if done:
            break
    theta = np.array([f, p, pe])
    if np.all((theta > 0) & (theta < 1)):
        def neg(z):
            f_, p_, pe_ = special.expit(z)
            lw_ = np.log(f_) + _kern(y, n, p_)
            ls_ = np.log1p(-f_) + _kern(y, n, pe_)
            tot = np.logaddexp(lw_, ls_)
            w = np.exp(lw_ - tot)
            # d/dz of ln L through the logit: dL/dtheta * theta (1 - theta), written to stay finite
            g = np.array([np.sum(m * (w * (1 - f_) - (1 - w) * f_)),
                          np.sum(m * w * (y * (1 - p_) - (n - y) * p_)),
                          np.sum(m * (1 - w) * (y * (1 - pe_) - (n - y) * pe_))])
            return -float(np.sum(m * tot)), -g
        lo = np.array([-30.0, -700.0, -700.0])  # keep expit away from exactly 0 or 1
        hi = np.array([30.0, 30.0, 30.0])
        z = _newton_max(lambda z_: tuple(-v for v in neg(z_)), np.clip(special.logit(theta), lo, hi), lo, hi)
        cand = special.expit(z)
        cll = _mix_ll(cand, n, y, m)
        if cll > ll:
            ll, theta = cll, cand
    f, p, pe = (float(v) for v in theta)
    if p < pe:  # label switch: "weak" is the class with the higher rate
        f, p, pe = 1.0 - f, pe, p
    return ll, (f, p, pe)


def _newton_max(fg, z, lo, hi, max_iter=100):
    """Maximise f on the box [lo, hi] by damped Newton steps (Hessian by central
    differences of the analytic gradient; gradient ascent where it is not
    negative definite) with a backtracking line search. ``fg(z) -> (f, grad)``."""
    f, g = fg(z)
    for _ in range(max_iter):
        k = z.size
        H = np.empty((k, k))
        for i in range(k):
            h = 1e-5 * max(1.0, abs(z[i]))
            e = np.zeros(k)
            e[i] = h
            H[:, i] = (fg(z + e)[1] - fg(z - e)[1]) / (2 * h)
        H = 0.5 * (H + H.T)
        try:
            step = -np.linalg.solve(H, g) if np.all(np.linalg.eigvalsh(H) < 0) else None
        except np.linalg.LinAlgError:
            step = None
        if step is None or not np.all(np.isfinite(step)):
            step = g / max(1.0, float(np.max(np.abs(g))))
        t, improved = 1.0, False
        while t > 1e-12:
            zn = np.clip(z + t * step, lo, hi)
            fn, gn = fg(zn)
            if np.isfinite(fn) and fn >= f:
                improved = True
                break
            t *= 0.5
        if not improved:
            break
        done = fn - f <= 1e-12 * max(1.0, abs(fn))  # converged, or crawling along a flat ridge
        z, f, g = zn, fn, gn
        if done:
            break
    return z


def _mixture_starts(n, y, m):
    """Starting points: a threshold split and top-fraction splits by observed rate."""
    total_n, total_y = float((m * n).sum()), float((m * y).sum())
    pbar = total_y / total_n
    thr = n * pbar + 3.0 * np.sqrt(n * pbar * (1 - pbar)) + 1.0
    weak = y > thr
    out = []
    rate = y / n
    order = np.argsort(-rate, kind="stable")
    cum = np.cumsum(m[order]) / m.sum()
    for i, frac in enumerate((None, 0.5, 0.1, 0.01, 0.001)):
        if frac is None:
            sel = weak
        else:
            sel = np.zeros(n.size, bool)
            sel[order[: int(np.searchsorted(cum, frac)) + 1]] = True
        mw, ms = m * sel, m * ~sel
        if mw.sum() == 0 or ms.sum() == 0:
            continue
        f = float(mw.sum() / m.sum())
        p = float((mw * y).sum() / (mw * n).sum())
        pe = float((ms * y).sum() / (ms * n).sum())
        if p <= pe:
            continue
        out.append((min(max(f, 1e-9), 1 - 1e-9), p, pe))
    return out


def _fit_mixture(n, y):
    """MLE of the two-class mixture over units with trials n and errors y."""
    n_u, y_u, m = _compress(n, y)
    pbar = float((m * y_u).sum() / (m * n_u).sum())
    best = (_mix_ll((0.0, pbar, pbar), n_u, y_u, m), (0.0, pbar, pbar))  # collapsed: exactly em0
    for start in _mixture_starts(n_u, y_u, m):
        ll, theta = _em_mixture(n_u, y_u, m, start)
        if ll > best[0]:
            best = (ll, theta)
    return best, (n_u, y_u, m)


def _hessian(fn, theta, lower, upper):
    """Central-difference Hessian of fn at theta, steps kept inside (lower, upper)."""
    theta = np.asarray(theta, np.float64)
    k = theta.size
    h = np.empty(k)
    for i in range(k):
        h[i] = 1e-3 * max(abs(theta[i]), 1e-12)
        room = min(theta[i] - lower[i], upper[i] - theta[i])
        h[i] = min(h[i], 0.5 * room) if room > 0 else h[i]
    f0 = fn(theta)
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        H[i, i] = (fn(theta + e) - 2 * f0 + fn(theta - e)) / h[i] ** 2
        for j in range(i + 1, k):
            d = np.zeros(k)
            d[j] = h[j]
            H[i, j] = H[j, i] = (fn(theta + e + d) - fn(theta + e - d) - fn(theta - e + d)
                                 + fn(theta - e - d)) / (4 * h[i] * h[j])
    return H


def _estimates(names, theta, fn, confidence, *, fixed_cov=None, skip=()):
    """Wald CIs from the observed information of fn (log-likelihood) at theta.

    Parameters at 0 get a one-sided likelihood-ratio bound with the others held
    at their estimates. ``skip``: indices whose interval comes from ``fixed_cov``.
    """
    theta = np.asarray(theta, np.float64)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    crit = float(stats.chi2.ppf(confidence, 1)) / 2  # log-likelihood drop
    free = [i for i in range(theta.size) if theta[i] > 0 and i not in skip]
    cov = None
    if free:
        sub = lambda t: fn(_put(theta, free, t))
        lower = np.zeros(len(free))
        upper = np.ones(len(free))
        H = _hessian(sub, theta[free], lower, upper)
        try:
            c = np.linalg.inv(-H)
            if np.all(np.isfinite(c)) and np.all(np.diag(c) > 0) and np.all(np.linalg.eigvalsh(-H) > 0):
                cov = c
        except np.linalg.LinAlgError:
            cov = None
    out = []
    f0 = fn(theta)
    for i, name in enumerate(names):
        v = float(theta[i])
        if fixed_cov is not None and i in fixed_cov:
            se = fixed_cov[i]
            out.append(Estimate(name, v, max(0.0, v - z * se), min(1.0, v + z * se), se, "Wald (binomial)"))
        elif v <= 0:
            def drop(u, i=i):
                return fn(_put(theta, [i], [u])) - (f0 - crit)
            hi = 1e-15
            while hi < 1 and drop(hi) > 0:
                hi = min(1.0, hi * 10)
            u = optimize.brentq(drop, 0.0, hi) if drop(hi) < 0 else 1.0
            out.append(Estimate(name, v, 0.0, u, None, "likelihood ratio (boundary, others fixed)"))
        elif cov is not None and i in free:
            se = float(math.sqrt(cov[free.index(i), free.index(i)]))
            out.append(Estimate(name, v, max(0.0, v - z * se), min(1.0, v + z * se), se,
                                "Wald (observed Fisher information)"))
        else:
            out.append(Estimate(name, v, None, None, None, "not identifiable (singular information)"))
    return tuple(out)


def _put(theta, idx, values):
    t = np.array(theta, np.float64)
    t[idx] = values
    return t


# --------------------------------------------------------- sufficient stats
class _Stats:
    """Sufficient statistics of a RecordTest on its organization."""

    def __init__(self, test: RecordTest, org: DramOrganization) -> None:
        self.org = org
        self.w = w = test.column_bits
        self.T = T = test.iterations
        self.C = C = org.row_bits // w
        self.S = S = org.subarray_rows
        self.nsub = nsub = -(-org.rows // S)
        self.n_rows = org.banks * org.rows
        self.n_bs = org.banks * nsub
        self.n_groups = self.n_bs * C
        self.bits = org.banks * org.rows * org.row_bits
        self.trials = self.bits * T
        unit = (test.bank * org.rows + test.row) * C + test.column
        uniq, inv = np.unique(unit, return_inverse=True)
        x = np.bincount(inv, weights=test.count, minlength=uniq.size).astype(np.int64)
        self.rec_row = uniq // C
        col = uniq % C
        bank, row = self.rec_row // org.rows, self.rec_row % org.rows
        self.rec_group = (bank * nsub + row // S) * C + col
        self.rec_x = x
        self.row_n = org.row_bits * T
        self.row_z = np.bincount(self.rec_row, weights=x, minlength=self.n_rows).astype(np.int64)
        rows_in_sub = np.full(nsub, S, np.int64)
        rows_in_sub[-1] = org.rows - S * (nsub - 1)
        self.rows_in_bs = np.tile(rows_in_sub, org.banks)
        self.grp_n = np.repeat(self.rows_in_bs, C) * w * T
        self.grp_y = np.bincount(self.rec_group, weights=x, minlength=self.n_groups).astype(np.int64)
        r = np.arange(self.n_rows)
        self.row_bs = (r // org.rows) * nsub + (r % org.rows) // S
        # column groups with errors ("nz") and, per (bank, subarray), the error-free rest:
        # error-free groups of one subarray are exchangeable, so they share one posterior
        self.nz_group, self.rec_nz = np.unique(self.rec_group, return_inverse=True)
        self.nz_bs = self.nz_group // C
        self.nz_y = self.grp_y[self.nz_group]
        self.nz_n = self.grp_n[self.nz_group]
        self.zero_per_bs = C - np.bincount(self.nz_bs, minlength=self.n_bs)
        self.bs_n = self.rows_in_bs * w * T  # trials of one column group of the subarray
        self.errors = int(x.sum())
        m = w * T
        self.log_const = float(np.sum(special.gammaln(m + 1) - special.gammaln(x + 1) - special.gammaln(m - x + 1)))
        # direction statistics (em3)
        self.direction = None
        self.pattern = test.pattern
        if test.direction is not None and test.ones_fraction is not None and 0 < test.ones_fraction < 1:
            n10 = int(test.count[test.direction == 1].sum())
            n01 = int(test.count[test.direction == 0].sum())
            if test.pattern is not None:
                ones_per_prow = np.unpackbits(test.pattern, axis=1).sum(axis=1).astype(np.int64)
                rows_of = np.bincount(np.arange(org.rows) % test.pattern.shape[0],
                                      minlength=test.pattern.shape[0])
                n1 = int(org.banks * np.dot(ones_per_prow, rows_of))
            else:
                n1 = round(test.ones_fraction * self.bits)
            self.direction = (n10, n01, n1 * T, (self.bits - n1) * T)
        self.ones_fraction = test.ones_fraction


# ---------------------------------------------------------------- the fits
def _fit_em0(st: _Stats, confidence: float, persistence: str) -> ModelFit:
    p = st.errors / st.trials
    ll = float(_kern(st.errors, st.trials, p)) + st.log_const
    fn = lambda t: float(_kern(st.errors, st.trials, t[0])) + st.log_const
    if 0 < p < 1:
        se = math.sqrt(p * (1 - p) / st.trials)
        est = _estimates(("em0.p",), [p], fn, confidence, fixed_cov={0: se}, skip=(0,))
        est = (dataclasses.replace(est[0], method="Wald (observed Fisher information, exact)"),)
    else:
        est = _estimates(("em0.p",), [p], fn, confidence)
    return ModelFit("em0", ErrorModel((Uniform(p),), persistence), ll, 1,
                    _bic(ll, 1, st.trials), est)


def _fit_em3(st: _Stats, confidence: float, persistence: str) -> ModelFit:
    n10, n01, t1, t0 = st.direction
    p10, p01 = n10 / t1, n01 / t0
    fn = lambda t: float(_kern(n10, t1, t[0]) + _kern(n01, t0, t[1])) + st.log_const
    ll = fn([p10, p01])
    fixed = {}
    for i, (p, n) in enumerate(((p10, t1), (p01, t0))):
        if 0 < p < 1:
            fixed[i] = math.sqrt(p * (1 - p) / n)
    est = _estimates(("em3.p10", "em3.p01"), [p10, p01], fn, confidence, fixed_cov=fixed, skip=tuple(fixed))
    est = tuple(dataclasses.replace(e, method="Wald (observed Fisher information, exact)")
                if e.method == "Wald (binomial)" else e for e in est)
    return ModelFit("em3", ErrorModel((DataDependent(p10, p01),), persistence), ll, 2,
                    _bic(ll, 2, st.trials), est)


def _fit_lines(st: _Stats, kind: str, confidence: float, persistence: str):
    n, y = (st.grp_n, st.grp_y) if kind == "em1" else (np.full(st.n_rows, st.row_n), st.row_z)
    (ll, theta), (n_u, y_u, m) = _fit_mixture(n, y)
    fn = lambda t: _mix_ll(t, n_u, y_u, m) + st.log_const
    ll = fn(theta)
    f, p, pe = theta
    names = tuple(f"{kind}.{k}" for k in ("fraction", "p", "p_else"))
    notes = []
    if f < 1e-9 or f > 1 - 1e-9 or p - pe <= 1e-12 * max(p, _EPS):
        notes.append("the two classes collapse (fraction at 0 or 1, or p == p_else): the weak-line "
                     "parameters are not identified and the model reduces to em0")
    est = _estimates(names, theta, fn, confidence)
    cls = WeakBitlines if kind == "em1" else WeakWordlines
    model = ErrorModel((cls(fraction=_clip01(f), p=_clip01(p), p_else=_clip01(min(pe, p))),), persistence)
    return ModelFit(kind, model, ll, 3, _bic(ll, 3, st.trials), est, notes=tuple(notes)), theta


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _bic(ll, k, n):
    return None if ll is None or n is None else float(k * math.log(n) - 2 * ll)


# em1+em2: cell rate classes (column weak?, row weak?) -> 1-(1-r_col)(1-r_row)
def _q(p1, pe, p2):
    """Rates of the classes WW, SW (strong column, weak row), WS, SS."""
    return (_union(p1, p2), _union(pe, p2), p1, pe)


def _union(a, b):
    """1 - (1-a)(1-b) without cancellation for tiny rates."""
    return a + b - a * b


class _Composite:
    """em1+em2 by variational EM.

    The bound maximised is exact over the row classes and mean-field over the
    column classes (each column unit weak with probability ``pi``):
    ``ELBO = sum_rows ln(F2 A_r + (1-F2) B_r) + sum_cols (E ln prior + entropy)``,
    where ``A_r, B_r`` use the expected weak/strong column trials and errors of the
    row. It is a lower bound on the marginal log-likelihood, equal to it when
    ``F2 = 0`` (em1) or ``F1 = 0`` (em2). Parameters: ``(F1, F2, P1, Pe, P2)``;
    ``pi`` is ``(pi of the error-free units of each subarray, pi of each unit with errors)``.
    """

    def __init__(self, st: _Stats) -> None:
        self.st = st

    def row_stats(self, pi):
        st = self.st
        pz, pn = pi
        yw = np.bincount(st.rec_row, weights=st.rec_x * pn[st.rec_nz], minlength=st.n_rows)
        pw = pz * st.zero_per_bs + np.bincount(st.nz_bs, weights=pn, minlength=st.n_bs)
        nw = pw[st.row_bs] * (st.w * st.T)
        return yw, st.row_z - yw, nw, st.row_n - nw

    @staticmethod
    def row_terms(theta, rs):
        _, f2, p1, pe, p2 = theta
        yw, ys, nw, ns = rs
        qww, qsw, qws, qss = _q(p1, pe, p2)
        lw = _log(f2) + _kern(yw, nw, qww) + _kern(ys, ns, qsw)
        ls = _log(1 - f2) + _kern(yw, nw, qws) + _kern(ys, ns, qss)
        return lw, ls

    def col_sums(self, pi):
        """(expected weak units, expected strong units, entropy) of the column posteriors."""
        pz, pn = pi
        zc = self.st.zero_per_bs
        s1 = float(zc @ pz + pn.sum())
        ent = float(zc @ (special.entr(pz) + special.entr(1 - pz)) + np.sum(special.entr(pn) + special.entr(1 - pn)))
        return s1, self.st.n_groups - s1, ent

    def elbo(self, theta, pi, rs=None, cs=None) -> float:
        lw, ls = self.row_terms(theta, rs if rs is not None else self.row_stats(pi))
        s1, s0, ent = cs if cs is not None else self.col_sums(pi)
        f1 = theta[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            prior = float(special.xlogy(s1, f1) + special.xlogy(s0, 1 - f1))
        return float(np.sum(np.logaddexp(lw, ls))) + prior + ent + self.st.log_const

    def run(self, theta, pi, max_iter=500, tol=1e-9):
        st = self.st
        theta = np.array(theta, np.float64)
        rs = self.row_stats(pi)
        ll = self.elbo(theta, pi, rs)
        for _ in range(max_iter):
            lw, ls = self.row_terms(theta, rs)
            rho = np.exp(lw - np.logaddexp(lw, ls))
            yw, ys, nw, ns = rs
            # theta-step given (rho, pi)
            s1, _, _ = self.col_sums(pi)
            f1, f2 = s1 / st.n_groups, float(rho.mean())
            ev = np.array([rho @ yw, rho @ ys, (1 - rho) @ yw, (1 - rho) @ ys])
            nv = np.array([rho @ nw, rho @ ns, (1 - rho) @ nw, (1 - rho) @ ns])
            p1, pe, p2 = _mstep_rates(ev, nv, theta[2:])
            theta = np.array([f1, f2, p1, pe, p2])
            # pi-step given (rho, theta): independent per column unit
            if 0 < f1 < 1:
                qww, qsw, qws, qss = _q(p1, pe, p2)
                wt = st.w * st.T
                rho_bs = np.bincount(st.row_bs, weights=rho, minlength=st.n_bs)
                na_bs = rho_bs * wt
                nb_bs = st.bs_n - na_bs
                dz = _kern(0, na_bs, qww) - _kern(0, na_bs, qsw) + _kern(0, nb_bs, qws) - _kern(0, nb_bs, qss)
                a = np.bincount(st.rec_nz, weights=st.rec_x * rho[st.rec_row], minlength=st.nz_group.size)
                b = st.nz_y - a
                na, nb = na_bs[st.nz_bs], nb_bs[st.nz_bs]
                dn = _kern(a, na, qww) - _kern(a, na, qsw) + _kern(b, nb, qws) - _kern(b, nb, qss)
                lf = special.logit(f1)
                pi = (special.expit(lf + dz), special.expit(lf + dn))
            rs = self.row_stats(pi)
            new = self.elbo(theta, pi, rs)
            done = new - ll <= tol * max(1.0, abs(new))
            ll = max(ll, new)
            if done:
                break
        return ll, theta, pi


def _quadratic_argmax(c2: float, c1: float, c0: float) -> float:
    """Maximiser on [0, 1) of a concave function whose derivative has the sign of
    ``c2 x^2 + c1 x + c0`` there (a decreasing derivative: one downward crossing)."""
    if c2 == 0.0:
        roots = [-c0 / c1] if c1 != 0.0 else []
    else:
        disc = max(c1 * c1 - 4.0 * c2 * c0, 0.0)
        q = -0.5 * (c1 + math.copysign(math.sqrt(disc), c1 if c1 != 0.0 else 1.0))  # stable roots
        roots = [q / c2] + ([c0 / q] if q != 0.0 else [])
    best = None
    for r in roots:
        if 0.0 <= r < 1.0 and 2.0 * c2 * r + c1 <= 0.0:  # downward crossing = the maximum
            best = r if best is None else max(best, r)
    if best is not None:
        return float(best)
    return 0.0 if c0 <= 0.0 else 1.0 - 1e-16


def _mstep_rates(ev, nv, start, sweeps=50):
    """Maximise sum_k e_k ln q_k + (n_k - e_k) ln(1 - q_k) over (p1, pe, p2), where
    (q_WW, q_SW, q_WS, q_SS) = _q(p1, pe, p2). Coordinate ascent: each coordinate is
    concave and its first-order condition, multiplied by positive factors, is a
    quadratic, solved exactly."""
    e_ww, e_sw, e_ws, e_ss = (float(v) for v in ev)
    n_ww, n_sw, n_ws, n_ss = (float(v) for v in nv)

    def solo(e_joint, n_joint, e_solo, n_solo, other):
        # x with classes q = union(x, other) (e_joint of n_joint) and q = x (e_solo of n_solo):
        # c e_j/q + e_s/x - A/(1-x) = 0, c = 1 - other, A = non-failures; times x q (1-x) > 0
        c = 1.0 - other
        big_a = (n_joint - e_joint) + (n_solo - e_solo)
        return _quadratic_argmax(-c * (e_joint + e_solo + big_a),
                                 c * e_joint + e_solo * (c - other) - big_a * other, e_solo * other)

    p1, pe, p2 = (float(v) for v in start)
    for _ in range(sweeps):
        old = (p1, pe, p2)
        p1 = solo(e_ww, n_ww, e_ws, n_ws, p2)
        pe = solo(e_sw, n_sw, e_ss, n_ss, p2)
        # x = p2 in q = union(p1, x) (WW) and q = union(pe, x) (SW); times q1 q2 (1-x) > 0
        a1, a2 = 1.0 - p1, 1.0 - pe
        big_b = (n_ww - e_ww) + (n_sw - e_sw)
        p2 = _quadratic_argmax(-a1 * a2 * (e_ww + e_sw + big_b),
                               a1 * e_ww * (a2 - pe) + a2 * e_sw * (a1 - p1) - big_b * (p1 * a2 + pe * a1),
                               a1 * e_ww * pe + a2 * e_sw * p1 - big_b * p1 * pe)
        if all(abs(u - v) <= 1e-12 * max(abs(v), 1e-300) for u, v in zip((p1, pe, p2), old)):
            break
    return p1, pe, p2


def _fit_composite(st: _Stats, em1_theta, em2_theta, confidence: float, persistence: str) -> ModelFit:
    comp = _Composite(st)
    f1, p1, pe1 = em1_theta
    f2, pw, pe2 = em2_theta

    def em1_posterior(y, n):
        lw = _log(f1) + _kern(y, n, p1)
        ls = _log(1 - f1) + _kern(y, n, pe1)
        return np.exp(lw - np.logaddexp(lw, ls))

    pi1 = (em1_posterior(0, st.bs_n), em1_posterior(st.nz_y, st.nz_n))
    pi0 = (np.zeros(st.n_bs), np.zeros(st.nz_group.size))
    p2 = max((pw - pe2) / max(1 - pe2, 1e-300), 0.0)
    # em1 and em2 embedded exactly (the bound equals their likelihood there) ...
    t_em1 = np.array([f1, 0.0, p1, pe1, 0.0])
    t_em2 = np.array([0.0, f2, pe2, pe2, p2])
    runs = [(comp.elbo(t_em1, pi1), t_em1, pi1), (comp.elbo(t_em2, pi0), t_em2, pi0)]
    # ... and both together, and em1 with a little em2
    soft = tuple(np.clip(v, 1e-12, 1 - 1e-12) for v in pi1)
    for start in (np.array([f1, f2, p1, min(pe1, pe2), p2]), np.array([f1, 0.01, p1, pe1, max(p2, pe1)])):
        runs.append(comp.run(np.clip(start, 1e-12, 1 - 1e-12), soft))
    ll, theta, pi = max(runs, key=lambda r: r[0])
    f1, f2, p1, pe, p2 = (float(v) for v in theta)
    if p1 < pe:  # relabel column classes (the union is symmetric in them)
        f1, p1, pe, pi = 1 - f1, pe, p1, (1 - pi[0], 1 - pi[1])
        theta = np.array([f1, f2, p1, pe, p2])
    rs, cs = comp.row_stats(pi), comp.col_sums(pi)
    fn = lambda t: comp.elbo(np.asarray(t), pi, rs, cs)
    names = ("em1.fraction", "em2.fraction", "em1.p", "em1.p_else", "em2.p")
    est = _estimates(names, theta, fn, confidence)
    est = tuple(est[i] for i in (0, 2, 3, 1, 4))  # em1.fraction, p, p_else, em2.fraction, p
    notes = [("log-likelihood is a variational lower bound (exact over row classes, mean-field over "
             "column classes; exact when either component is absent); intervals are conditional on "
             "the fitted column-class probabilities"),
             ("em2.p_else is fixed at 0: em1.p_else and em2.p_else would both be a background rate and "
             "only their union is identifiable")]
    if f2 <= 0 or f1 <= 0:
        notes.append("one component vanished: em1+em2 reduces to a single component here")
    model = ErrorModel((WeakBitlines(_clip01(f1), _clip01(p1), _clip01(min(pe, p1))),
                        WeakWordlines(_clip01(f2), _clip01(p2), 0.0)), persistence)
    return ModelFit("em1+em2", model, ll, 5, _bic(ll, 5, st.trials), est, notes=tuple(notes))


# ------------------------------------------------------- goodness of fit
def _simulate_margins(name: str, model: ErrorModel, st: _Stats, rng: np.random.Generator):
    """One Monte Carlo draw of (errors per row, errors per column unit) under a fitted model."""
    wT = st.w * st.T
    comps = {c.kind: c for c in model.components}
    if name == "em0":
        p = comps["em0"].p
        return rng.binomial(st.row_n, p, st.n_rows), rng.binomial(st.grp_n, p)
    if name == "em3":
        c = comps["em3"]
        ones_row, ones_grp = _ones_counts(st)
        rows = rng.binomial(ones_row * st.T, c.p10) + rng.binomial((st.org.row_bits - ones_row) * st.T, c.p01)
        cols = rng.binomial(ones_grp * st.T, c.p10) + rng.binomial(st.grp_n - ones_grp * st.T, c.p01)
        return rows, cols
    e1 = comps.get("em1")
    e2 = comps.get("em2")
    col_weak = rng.random(st.n_groups) < e1.fraction if e1 else np.zeros(st.n_groups, bool)
    row_weak = rng.random(st.n_rows) < e2.fraction if e2 else np.zeros(st.n_rows, bool)
    c_p, c_pe = (e1.p, e1.p_else) if e1 else (0.0, 0.0)
    r_p, r_pe = (e2.p, e2.p_else) if e2 else (0.0, 0.0)

    def rate(cw, rw):
        return _union(np.where(cw, c_p, c_pe), np.where(rw, r_p, r_pe))

    kw = col_weak.reshape(st.n_bs, st.C).sum(axis=1)[st.row_bs]  # weak column units in the row's subarray
    rows = (rng.binomial(kw * wT, rate(True, row_weak))
            + rng.binomial((st.C - kw) * wT, rate(False, row_weak)))
    jw = np.bincount(st.row_bs, weights=row_weak, minlength=st.n_bs).astype(np.int64)
    jw_g = np.repeat(jw, st.C)
    js_g = np.repeat(st.rows_in_bs, st.C) - jw_g
    cols = rng.binomial(jw_g * wT, rate(col_weak, True)) + rng.binomial(js_g * wT, rate(col_weak, False))
    return rows, cols


def _ones_counts(st: _Stats):
    """Stored ones per row and per column group (exact with a pattern, else spread evenly)."""
    org = st.org
    if st.pattern is not None:
        P = st.pattern.shape[0]
        bits = np.unpackbits(st.pattern, axis=1, bitorder="little").astype(np.int64)  # (P, row_bits)
        per_prow = bits.sum(axis=1)
        ones_row = np.tile(per_prow[np.arange(org.rows) % P], org.banks)
        unit = bits.reshape(P, st.C, st.w).sum(axis=2)  # (P, C)
        counts = np.zeros((st.nsub, P), np.int64)  # rows of each subarray with pattern row p
        r = np.arange(org.rows)
        np.add.at(counts, (r // st.S, r % P), 1)
        per_sub = counts @ unit  # (nsub, C)
        ones_grp = np.tile(per_sub.reshape(-1), org.banks)
        return ones_row, ones_grp
    f = st.ones_fraction
    ones_row = np.full(st.n_rows, round(f * org.row_bits))
    ones_grp = np.rint(f * st.grp_n / st.T).astype(np.int64)
    return ones_row, ones_grp


def _gof(name: str, model: ErrorModel, st: _Stats, seed: int) -> tuple:
    rng = np.random.default_rng([seed, MODELS.index(name)])
    reps = int(min(50, max(3, math.ceil(1e6 / max(st.n_rows, st.n_groups)))))
    sims = [_simulate_margins(name, model, st, rng) for _ in range(reps)]
    out = []
    for k, margin, obs in ((0, "row", st.row_z), (1, "column", st.grp_y)):
        sim = np.concatenate([s[k] for s in sims])
        out.append(_compare(margin, obs, sim, reps))
    return tuple(out)


def _edges(vmax: int) -> np.ndarray:
    e = set(range(9))
    x = 8.0
    while x <= vmax + 1:
        x *= 1.25
        e.add(int(x))
    e = np.array(sorted(v for v in e if v <= vmax + 1) + [vmax + 2])
    return np.unique(e)


def _compare(margin: str, obs: np.ndarray, sim: np.ndarray, reps: int) -> MarginFit:
    edges = _edges(int(max(obs.max(initial=0), sim.max(initial=0))))
    o = np.histogram(obs, edges)[0].astype(np.float64)
    e = np.histogram(sim, edges)[0].astype(np.float64) / reps
    # merge bins left to right until each has expected >= 5; a short tail joins the last bin
    bins, ob, ex = [], [], []
    lo, acc_o, acc_e = int(edges[0]), 0.0, 0.0
    for i in range(len(o)):
        acc_o += o[i]
        acc_e += e[i]
        if acc_e >= 5:
            bins.append([lo, int(edges[i + 1])])
            ob.append(acc_o)
            ex.append(acc_e)
            lo, acc_o, acc_e = int(edges[i + 1]), 0.0, 0.0
    if acc_o or acc_e:
        if bins:
            bins[-1][1] = int(edges[-1])
            ob[-1] += acc_o
            ex[-1] += acc_e
        else:
            bins.append([lo, int(edges[-1])])
            ob.append(acc_o)
            ex.append(acc_e)
    ob_a, ex_a = np.array(ob), np.array(ex)
    ok = ex_a > 0
    chi2 = float(np.sum((ob_a[ok] - ex_a[ok]) ** 2 / ex_a[ok]) + (np.inf if (ob_a[~ok] > 0).any() else 0.0))
    dof = max(len(bins) - 1, 0)
    p_value = float(stats.chi2.sf(chi2, dof)) if dof > 0 and math.isfinite(chi2) else (1.0 if dof == 0 else 0.0)
    return MarginFit(margin, tuple((int(a), int(b)) for a, b in bins), tuple(int(v) for v in ob_a),
                     tuple(float(v) for v in ex_a), chi2, dof, p_value,
                     float(obs.mean()), float(sim.mean()), float(obs.var()), float(sim.var()))


# ------------------------------------------------------------------ driver
def fit(raw: RawCharacterization, test: str | None = None, **kwargs) -> FitResult:
    """Fit error models to one test of a raw characterization.

    Args:
        raw: The data (see :mod:`eden.dram.raw`).
        test: Test name; None if the file holds exactly one test.
        **kwargs: Passed to :func:`fit_test` (``models``, ``persistence``,
            ``confidence``, ``seed``, ``gof``).

    Returns:
        FitResult with all candidates, the selected model and the report.

    Raises:
        KeyError: No such test (the message lists the names).
        FitError: The data cannot identify a requested model, or nothing can be
            fitted (e.g. a summary of a region of unknown size).

    Example:
        >>> from eden.dram.address import DramOrganization
        >>> org = DramOrganization(banks=2, rows=512, row_bytes=1024)
        >>> t = simulate_records(ErrorModel.from_spec("em0:p=1e-4"), org, seed=1)
        >>> r = fit(RawCharacterization((t,), org), models=["em0"], gof=False)
        >>> r.selected
        'em0'
    """
    t = raw.test(test)
    return fit_test(t, raw.organization, subarray_rows_known=raw.subarray_rows_known, **kwargs)


def fit_test(test: RecordTest | SummaryTest, organization: DramOrganization | None, *,
             subarray_rows_known: bool = True, models: Sequence[str] | None = None,
             persistence: str = "access", confidence: float = 0.99, seed: int = 0,
             gof: bool = True) -> FitResult:
    """Fit error models to one test (see :func:`fit`).

    Args:
        test: A RecordTest or SummaryTest.
        organization: The tested region (required for a RecordTest).
        subarray_rows_known: Whether ``organization.subarray_rows`` comes from the
            source (else the fit notes that it is an assumption).
        models: Candidates to fit (names from :data:`MODELS`); None: every model
            the data identifies. A single name forces that model.
        persistence: Persistence of the fitted models (``"access"`` or
            ``"fixed"``); aggregated counts cannot tell them apart.
        confidence: Confidence level of the intervals, in (0, 1).
        seed: Seed of the goodness-of-fit Monte Carlo (recorded in the report).
        gof: Compute goodness of fit (Monte Carlo; off to save time in tests).

    Returns:
        FitResult.

    Raises:
        ValueError: Unknown model name, persistence or bad confidence.
        FitError: A forced model is not identifiable from this data.
    """
    if persistence not in PERSISTENCE_MODES:
        raise ValueError(f"unknown persistence {persistence!r}; known: {', '.join(PERSISTENCE_MODES)}")
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")
    if models is not None:
        models = list(models)
        for m in models:
            if m not in MODELS:
                raise ValueError(f"unknown model {m!r}; known: {', '.join(MODELS)}")
        if not models:
            raise ValueError("models must name at least one model")
    if isinstance(test, SummaryTest):
        return _fit_summary(test, models, persistence, confidence, seed)
    if organization is None:
        raise FitError(f"test {test.name!r} has records but no organization (tested region) was given")
    return _fit_records(test, organization, subarray_rows_known, models, persistence, confidence, seed, gof)


def _fit_records(test, org, sub_known, models, persistence, confidence, seed, gof) -> FitResult:
    st = _Stats(test, org)
    notes = [(f"rates are per bit per iteration ({st.T} iteration(s) of the whole region); the fit assumes "
             "cells fail independently given their line classes, across cells and iterations; whether "
             f"failures persist across accesses is not identified from summed counts: the saved model uses "
             f"persistence={persistence!r}")]
    excluded: dict[str, str] = {}
    if st.w > 1:
        notes.append(f"column granularity is {st.w} bits ({st.w // 8}-byte units): em1 is fitted with weak "
                     f"column units of {st.w} bitlines per (bank, subarray); which bitlines inside a unit are "
                     "weak, and whether a unit's errors come from one bitline or many, are not identifiable. "
                     "The saved em1 fraction is the fraction of bitlines in weak units and p the per-bit rate "
                     "there; eden draws weak bitlines independently, so their clustering into units is not "
                     "reproduced")
    if not sub_known:
        notes.append(f"the source does not give the subarray size: weak bitlines are grouped per (bank, "
                     f"subarray of {st.S} rows), eden's default (affects em1 and em1+em2)")
    if test.direction is None:
        excluded["em3"] = ("not identifiable: the records carry no error direction (1->0 vs 0->1)"
                           + (" and are per column unit, not per cell" if st.w > 1 else ""))
    elif st.direction is None:
        excluded["em3"] = ("not identifiable: the fraction of stored ones of the data pattern is unknown "
                           "(or 0 or 1, so one direction is never tested)")
    if st.errors == 0:
        for m in ("em1", "em2", "em1+em2", "em3"):
            excluded.setdefault(m, "not identifiable: no errors were observed")
        notes.append("no errors observed: only an upper bound on a uniform rate is identified")
    wanted = list(MODELS) if models is None else models
    for m in wanted:
        if m in excluded and models is not None:
            raise FitError(f"cannot fit {m} to test {test.name!r}: {excluded[m]}")
    cands: dict[str, ModelFit] = {}
    thetas = {}
    if "em0" in wanted:
        cands["em0"] = _fit_em0(st, confidence, persistence)
    for kind in ("em1", "em2"):
        need = kind in wanted or ("em1+em2" in wanted and "em1+em2" not in excluded)
        if need and kind not in excluded:
            mf, thetas[kind] = _fit_lines(st, kind, confidence, persistence)
            if kind in wanted:
                cands[kind] = mf
    if "em3" in wanted and "em3" not in excluded:
        cands["em3"] = _fit_em3(st, confidence, persistence)
    if "em1+em2" in wanted and "em1+em2" not in excluded:
        cands["em1+em2"] = _fit_composite(st, thetas["em1"], thetas["em2"], confidence, persistence)
    if gof:
        for name, c in cands.items():
            cands[name] = dataclasses.replace(c, gof=_gof(name, c.model, st, seed))
    ordered = tuple(cands[m] for m in MODELS if m in cands)
    selected = min(ordered, key=lambda c: c.bic).name
    data = {"kind": "records", "records": test.n_records, "column_bits": st.w, "iterations": st.T,
            "bits": st.bits, "bit_trials": st.trials, "errors": st.errors, "ber": st.errors / st.trials,
            "rows": st.n_rows, "column_groups": st.n_groups, "subarray_rows": st.S,
            "subarray_rows_known": sub_known, "direction_known": test.direction is not None,
            "data_pattern": test.data_pattern, "ones_fraction": test.ones_fraction}
    return FitResult(test.name, test.device, test.operating_point, data, ordered, selected,
                     models is not None and len(models) == 1, excluded, tuple(notes), confidence,
                     float(st.trials), seed)


def _fit_summary(test: SummaryTest, models, persistence, confidence, seed) -> FitResult:
    excluded = {m: "not identifiable from summary-level data (no per-row or per-column records, no "
                   "error directions)" for m in MODELS if m != "em0"}
    if models is not None:
        for m in models:
            if m in excluded:
                raise FitError(f"cannot fit {m} to test {test.name!r}: {excluded[m]}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    T = test.iterations or 1
    notes = []
    if test.iterations is None:
        notes.append("the number of iterations is not recorded: rates are per test, not per access")
    ll = bic = None
    n_trials = None
    w = test.unit_bits
    if test.quantity == "bit_errors":
        if test.units_tested is None:
            raise FitError(f"cannot fit test {test.name!r}: it gives a bit-error count but not the number of "
                           "bits tested, so no rate is identifiable")
        n_trials = test.units_tested * T
        e = test.value
        p = e / n_trials
        ll = float(_kern(e, n_trials, p)) + float(special.gammaln(n_trials + 1) - special.gammaln(e + 1)
                                                  - special.gammaln(n_trials - e + 1))
        bic = _bic(ll, 1, n_trials)
        if 0 < p < 1:
            se = math.sqrt(p * (1 - p) / n_trials)
            est = (Estimate("em0.p", p, max(0.0, p - z * se), min(1.0, p + z * se), se,
                            "Wald (observed Fisher information, exact)"),)
        else:
            est = _estimates(("em0.p",), [p], lambda t: float(_kern(e, n_trials, t[0])), confidence)
        notes.insert(0, "summary-level data (a total bit-error count): only the uniform-equivalent BER "
                        "(em0) is identifiable; nothing about where errors fall (em1/em2) or their "
                        "direction (em3)")
        if p > 0.5:
            notes.append("BER above 0.5: the data is no longer retained at all (worse than random); "
                         "treat this operating point as unusable rather than as a uniform error rate")
    else:
        f = test.value
        p = 1.0 - (1.0 - f) ** (1.0 / w)
        lower = f / w
        notes.insert(0, f"summary-level data: only the fraction f = {f:.6g} of {w}-bit units with >= 1 error. "
                        f"It identifies a lower bound on the BER of any model, f/{w} = {lower:.4g} (each "
                        f"faulty unit holds >= 1 error), and the uniform-equivalent BER 1-(1-f)^(1/{w}) = "
                        f"{p:.4g} (the em0 rate that reproduces f), which is what is saved; if errors cluster "
                        "within units the true BER is higher, and nothing about where errors fall (em1/em2) "
                        "or their direction (em3) is identifiable")
        if test.units_tested is not None and 0 < f < 1:
            u = test.units_tested * T
            se_f = math.sqrt(f * (1 - f) / u)
            dp = (1.0 / w) * (1.0 - f) ** (1.0 / w - 1.0)
            se = dp * se_f
            est = (Estimate("em0.p", p, max(0.0, p - z * se), min(1.0, p + z * se), se,
                            "Wald (binomial over units, delta method)"),)
            ll = float(_kern(f * u, u, f))
            n_trials = u * w
            bic = _bic(ll, 1, n_trials)
        else:
            est = (Estimate("em0.p", p, None, None, None,
                            "no interval: the number of units tested is not recorded"),)
        notes.append(f"lower bound on the BER of any model: {lower:.6g}")
    mf = ModelFit("em0", ErrorModel((Uniform(_clip01(p)),), persistence), ll, 1, bic, est)
    data = {"kind": "summary", "quantity": test.quantity, "value": test.value, "unit_bits": w,
            "units_tested": test.units_tested, "iterations": test.iterations,
            "ber_lower_bound": (test.value / w if test.quantity == "faulty_unit_fraction" else p),
            "data_pattern": test.data_pattern}
    return FitResult(test.name, test.device, test.operating_point, data, (mf,), "em0",
                     models is not None and len(models) == 1, excluded, tuple(notes), confidence,
                     None if n_trials is None else float(n_trials), seed)


# ------------------------------------------------------------------ output
def save_fit(result: FitResult, path: os.PathLike | str, *, overwrite: bool = False,
             provenance: Mapping[str, Any] | None = None) -> None:
    """Write the selected model as an eden error-model file, with the report in ``/fit``.

    The file is a normal error-model file (docs/formats.md; ``ErrorModel.load``
    reads it). The extra root group ``/fit`` holds attributes ``test``,
    ``selected``, ``criterion``, ``confidence`` and a scalar string dataset
    ``report_json`` with :meth:`FitResult.to_dict`.

    Args:
        result: The fit.
        path: Destination ``.h5`` file.
        overwrite: Replace an existing file.
        provenance: Mapping stored as the model's provenance; the fit's test,
            selection and operating point are added under ``"fit"``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        TypeError: ``provenance`` is not a JSON-serialisable mapping.
    """
    from eden.errormodels import h5 as _h5

    prov = dict(provenance or {})
    prov.setdefault("fit", {"tool": "eden errormodel fit", "test": result.test, "selected": result.selected,
                            "forced": result.forced, "criterion": "BIC",
                            "operating_point": result.operating_point.to_dict(),
                            "ber_per_bit_per_iteration": result.data.get("ber")})
    provenance_json = _h5._provenance_json(prov)
    report = json.dumps(result.to_dict(), allow_nan=False)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "x") as f:
            _h5._write_contents(f, result.model, provenance_json)
            g = f.create_group("fit")
            g.attrs["test"] = result.test
            g.attrs["selected"] = result.selected
            g.attrs["criterion"] = "BIC"
            g.attrs["confidence"] = np.float64(result.confidence)
            g.create_dataset("report_json", data=report, dtype=h5py.string_dtype())

    write_with(path, write, overwrite=overwrite, what="error-model file")


def read_fit_report(path: os.PathLike | str) -> dict | None:
    """The ``/fit`` report of an error-model file written by :func:`save_fit` (None if absent)."""
    with h5py.File(os.fspath(path), "r") as f:
        if "fit" not in f or "report_json" not in f["fit"]:
            return None
        raw = f["fit/report_json"][()]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


# ---------------------------------------------------------------- simulate
def simulate_records(model: ErrorModel | str, organization: DramOrganization, *, seed: int = 0,
                     iterations: int = 1, column_bits: int = 1, per_iteration: bool = False,
                     pattern: np.ndarray | None = None, record_direction: bool = True,
                     name: str = "synthetic", operating_point: OperatingPoint | None = None,
                     device: str = "synthetic") -> RecordTest:
    """Draw error records of a whole organization from a known error model.

    Follows eden's conventions (:mod:`eden.dram.address`, ``docs/architecture.md``):
    bit ``k`` of byte ``b`` of a row is bitline ``8*b + k``; em1 marks a
    ``fraction`` of the bitlines of each (bank, subarray) weak, em2 a
    ``fraction`` of the rows; each component is a union of sub-passes (em1: all
    cells at ``p_else``, weak-bitline cells at ``(p - p_else)/(1 - p_else)``;
    em3: stored ones at ``p10``, stored zeros at ``p01``) and a bit-trial fails
    if any sub-pass fails it. Only failures are materialised (exact: a
    binomial number of distinct uniformly chosen trials per sub-pass), so cost
    is O(errors + lines), not O(bits). The weak lines are drawn with NumPy, not
    with the injection engine's Philox streams: same statistics, other lines.

    Args:
        model: Error model (or spec string).
        organization: The simulated tested region.
        seed: NumPy seed; same seed, same records.
        iterations: Test iterations. With ``access`` persistence every
            iteration is an independent draw; with ``fixed`` the same cells
            fail in every iteration.
        column_bits: Record granularity (1 = per cell; 512 = 64-byte lines).
        per_iteration: One record per (unit, iteration) instead of summed counts.
        pattern: uint8[P, row_bytes] written data (row ``r`` holds
            ``pattern[r % P]``); default: every byte 0xAA.
        record_direction: Record error directions (only with column_bits == 1).
        name, operating_point, device: Stored in the RecordTest.

    Returns:
        A RecordTest (put it in a RawCharacterization with ``organization``).

    Example:
        >>> org = DramOrganization(banks=1, rows=64, row_bytes=256)
        >>> t = simulate_records("em0:p=0.01", org, seed=3)
        >>> 0 < t.total_errors < 0.02 * org.capacity_bytes * 8
        True
    """
    model = ErrorModel.coerce(model)
    org = organization
    rng = np.random.default_rng(seed)
    if pattern is None:
        pattern = np.full((1, org.row_bytes), 0xAA, np.uint8)
    pattern = np.asarray(pattern, np.uint8)
    if pattern.ndim != 2 or pattern.shape[1] != org.row_bytes:
        raise ValueError(f"pattern must have shape (P, {org.row_bytes}), got {pattern.shape}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    if isinstance(column_bits, bool) or not isinstance(column_bits, int) or column_bits < 1 \
            or org.row_bits % column_bits:
        raise ValueError(f"column_bits must divide the row's {org.row_bits} bits, got {column_bits!r}")
    B = org.row_bits
    R = org.banks * org.rows
    S = org.subarray_rows
    nsub = -(-org.rows // S)
    T_draw = 1 if model.persistence == "fixed" else iterations
    bits_le = np.unpackbits(pattern, axis=1, bitorder="little")  # (P, B): stored bit of each bitline
    P = pattern.shape[0]
    passes = []  # (enumerator, population size, rate)
    for comp in model.components:
        if comp.kind == "em0":
            passes.append((_all_cells, R * B, comp.p))
        elif comp.kind == "em1":
            weak = np.flatnonzero(rng.random(org.banks * nsub * B) < comp.fraction)
            bs, bl = weak // B, weak % B
            sub_rows = np.minimum(S, org.rows - (bs % nsub) * S)
            start = np.concatenate([[0], np.cumsum(sub_rows)])
            def weak_bitline_cells(i, bs=bs, bl=bl, start=start):
                j = np.searchsorted(start, i, side="right") - 1
                local = i - start[j]
                bank, sub = bs[j] // nsub, bs[j] % nsub
                return (bank * org.rows + sub * S + local) * B + bl[j]
            passes.append((_all_cells, R * B, comp.p_else))
            passes.append((weak_bitline_cells, int(start[-1]), _excess(comp.p, comp.p_else)))
        elif comp.kind == "em2":
            weak_rows = np.flatnonzero(rng.random(R) < comp.fraction)
            passes.append((_all_cells, R * B, comp.p_else))
            passes.append((lambda i, wr=weak_rows: wr[i // B] * B + i % B, weak_rows.size * B,
                           _excess(comp.p, comp.p_else)))
        elif comp.kind == "em3":
            for value, rate in ((1, comp.p10), (0, comp.p01)):
                per_prow = [np.flatnonzero(bits_le[p] == value) for p in range(P)]
                counts = np.array([len(x) for x in per_prow], np.int64)
                row_counts = counts[np.arange(R) % org.rows % P]
                start = np.concatenate([[0], np.cumsum(row_counts)])
                table = np.full((P, max(int(counts.max()), 1)), 0, np.int64)
                for p in range(P):
                    table[p, :counts[p]] = per_prow[p]
                def value_cells(i, start=start, table=table):
                    g = np.searchsorted(start, i, side="right") - 1
                    return g * B + table[(g % org.rows) % P, i - start[g]]
                passes.append((value_cells, int(start[-1]), rate))
    fails = []
    for enum, size, rate in passes:
        if size == 0 or rate <= 0:
            continue
        k = int(rng.binomial(size * T_draw, rate))
        idx = _distinct(rng, size * T_draw, k)
        fails.append(enum(idx // T_draw) * T_draw + idx % T_draw)
    trial = np.unique(np.concatenate(fails)) if fails else np.zeros(0, np.int64)
    cell, it = trial // T_draw, trial % T_draw
    if model.persistence == "fixed" and iterations > 1:  # the same cells fail every iteration
        cell = np.repeat(cell, iterations)
        it = np.tile(np.arange(iterations), trial.size)
    row_id, bitline = cell // B, cell % B
    unit = bitline // column_bits
    C = B // column_bits
    key = row_id * C + unit
    if per_iteration:
        key = key * iterations + it
    uniq, counts = np.unique(key, return_counts=True)
    if per_iteration:
        it_u, base = uniq % iterations, uniq // iterations
    else:
        it_u, base = None, uniq
    r_id, u = base // C, base % C
    bank, row = r_id // org.rows, r_id % org.rows
    direction = None
    if record_direction and column_bits == 1:
        direction = bits_le[row % P, u].astype(np.int64)
    return RecordTest(name, bank=bank, row=row, column=u, count=counts, column_bits=column_bits,
                      iterations=iterations, iteration=it_u, direction=direction, pattern=pattern,
                      data_pattern=f"synthetic: {P} pattern row(s), ones fraction "
                                   f"{float(bits_le.mean()):g}",
                      operating_point=operating_point or OperatingPoint(), device=device)


def _all_cells(i):
    return i


def _excess(p: float, p_else: float) -> float:
    """Rate of the extra sub-pass so that 1 - (1-p_else)(1-x) = p."""
    return 0.0 if p_else >= 1 else (p - p_else) / (1 - p_else)


def _distinct(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """k distinct integers drawn uniformly from [0, m) (a uniform k-subset)."""
    if k == 0:
        return np.zeros(0, np.int64)
    if m <= 20_000_000 or k <= m // 50:
        return np.asarray(rng.choice(m, size=k, replace=False), np.int64)
    if k > m // 2:
        raise ValueError(f"simulation would need {k} of {m} trials to fail: rate too high for the "
                         "sparse simulator; use a smaller organization")
    # symmetric under permutations of [0, m): the result is a uniform k-subset
    out = np.unique(rng.integers(0, m, size=k))
    while out.size < k:
        out = np.unique(np.concatenate([out, rng.integers(0, m, size=k - out.size)]))
    return out
