"""Maximum-likelihood toolkit of the component fitters, and the fit-candidate contract.

A fit candidate (a registered component class with ``fit_records``, or a composite registered
with :func:`eden.errormodels.component.register_fit_model`) provides:

* ``fit_records(data, confidence, part_thetas) -> CandidateFit``: the MLE on the sufficient
  statistics ``data`` (an :class:`eden.dram.fit.RecordStats`), with intervals at ``confidence``;
  ``part_thetas`` maps each name in ``fit_parts`` to the raw parameters its own fit returned;
* ``fit_param_count() -> int``: free parameters (BIC's k);
* ``fit_parts``: candidates to fit first whose ``CandidateFit.theta`` this one starts from (``()``);
* ``fit_exclusion(data) -> str | None``: why the data cannot identify it (None: it can);
* ``fits_without_errors``: whether it is identified by data without a single error;
* ``simulate_margins(components, data, rng) -> (errors per row, errors per column unit)``:
  one Monte Carlo draw under the fitted components, for goodness of fit.

A component may also provide ``simulation_passes(cells, rng) -> list[SimPass]`` for
:func:`eden.dram.fit.simulate_records` (``cells``: an :class:`eden.dram.fit.CellSpace`; weak
lines drawn from ``rng`` in order, the passes' failures are drawn after all components').

Likelihoods are binomial kernels of error counts; the combinatorial constant
(``data.log_const``) is added by each fitter so that log-likelihoods are comparable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

# scipy is imported inside the two functions that need it: registering components (which import
# this module) must not cost scipy's import time.

_EPS = 1e-300


@dataclasses.dataclass(frozen=True)
class ParameterEstimate:
    """A fitted model parameter (maximum-likelihood estimate) with its confidence interval.

    Not :class:`eden.nn.evaluate.Estimate` (a mean of repeated measurements with a Student-t
    interval): this is one parameter of a fitted error model.

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
        return self.ci_low is not None and self.ci_high is not None and self.ci_low <= x <= self.ci_high

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "ci": [self.ci_low, self.ci_high],
                "stderr": self.stderr, "method": self.method}




@dataclasses.dataclass(frozen=True)
class CandidateFit:
    """What a fit candidate's ``fit_records`` returns.

    Attributes:
        components: The fitted components (their union is the model).
        loglik: Maximised log-likelihood, with ``data.log_const``.
        estimates: One ParameterEstimate per free parameter, named ``<kind>.<param>``.
        notes: Caveats specific to this candidate.
        theta: Raw parameters (the MLE before clipping), for candidates that start from this one
            (``fit_parts``).
    """

    components: tuple
    loglik: float
    estimates: tuple
    notes: tuple = ()
    theta: tuple | None = None


@dataclasses.dataclass(frozen=True)
class SimPass:
    """One independent failure draw of :func:`eden.dram.fit.simulate_records`.

    Attributes:
        cells: Maps population indices (int64 array) to cell ids ``row_id * row_bits + bitline``.
        size: Population size.
        rate: Failure probability of each population member per drawn iteration.
        members: Instead of ``cells``, for members that fail as a group (line events): maps
            population indices ``i`` to (cell ids, index into ``i`` of each cell's member).
    """

    cells: Callable[[np.ndarray], np.ndarray] | None
    size: int
    rate: float
    members: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None


def all_cells(i: np.ndarray) -> np.ndarray:
    """The population of every cell: index = cell id."""
    return i


def kern(y, n, p):
    """Binomial kernel y ln p + (n - y) ln(1 - p), with 0 ln 0 = 0 (arrays ok)."""
    y = np.asarray(y, np.float64)
    n = np.asarray(n, np.float64)
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(p), 0.0)
        b = np.where(n - y > 0, (n - y) * np.log1p(-p), 0.0)
    return a + b


def log(x):
    with np.errstate(divide="ignore"):
        return np.log(x)


def mix_ll(theta, n, y, m) -> float:
    """Two-class binomial mixture: sum m * ln(F B(y|n,P) + (1-F) B(y|n,Pe)), kernels only."""
    f, p, pe = theta
    lw = log(f) + kern(y, n, p)
    ls = log(1.0 - f) + kern(y, n, pe)
    return float(np.sum(m * np.logaddexp(lw, ls)))


def compress(n, y) -> tuple:
    """Unique (trials, errors) pairs with multiplicities (sufficient statistics)."""
    n = np.asarray(n, np.int64)
    y = np.asarray(y, np.int64)
    radix = int(y.max(initial=0)) + 1
    uniq, mult = np.unique(n * radix + y, return_counts=True)  # n * radix + y < 2^63 for DRAM sizes
    return (uniq // radix).astype(np.float64), (uniq % radix).astype(np.float64), mult.astype(np.float64)


def em_mixture(n, y, m, start, max_iter=300, tol=1e-12):
    """EM for the two-class binomial mixture, then a gradient polish (EM alone
    crawls when a class is nearly empty). Returns (loglik kernel, (F, P, Pe))."""
    from scipy import special

    f, p, pe = start
    ll = mix_ll((f, p, pe), n, y, m)
    for _ in range(max_iter):
        lw = log(f) + kern(y, n, p)
        ls = log(1.0 - f) + kern(y, n, pe)
        r = np.exp(lw - np.logaddexp(lw, ls))
        mr, ms = m * r, m * (1.0 - r)
        f = float(mr.sum() / m.sum())
        nw, ns = float((mr * n).sum()), float((ms * n).sum())
        p = float((mr * y).sum() / nw) if nw > 0 else 0.0
        pe = float((ms * y).sum() / ns) if ns > 0 else 0.0
        new = mix_ll((f, p, pe), n, y, m)
        done = new - ll <= tol * max(1.0, abs(new))
        ll = new
        if done:
            break
    theta = np.array([f, p, pe])
    if np.all((theta > 0) & (theta < 1)):
        def neg(z):
            f_, p_, pe_ = special.expit(z)
            lw_ = np.log(f_) + kern(y, n, p_)
            ls_ = np.log1p(-f_) + kern(y, n, pe_)
            tot = np.logaddexp(lw_, ls_)
            w = np.exp(lw_ - tot)
            # d/dz of ln L through the logit: dL/dtheta * theta (1 - theta), written to stay finite
            g = np.array([np.sum(m * (w * (1 - f_) - (1 - w) * f_)),
                          np.sum(m * w * (y * (1 - p_) - (n - y) * p_)),
                          np.sum(m * (1 - w) * (y * (1 - pe_) - (n - y) * pe_))])
            return -float(np.sum(m * tot)), -g
        lo = np.array([-30.0, -700.0, -700.0])  # keep expit away from exactly 0 or 1
        hi = np.array([30.0, 30.0, 30.0])
        z = newton_max(lambda z_: tuple(-v for v in neg(z_)), np.clip(special.logit(theta), lo, hi), lo, hi)
        cand = special.expit(z)
        cll = mix_ll(cand, n, y, m)
        if cll > ll:
            ll, theta = cll, cand
    f, p, pe = (float(v) for v in theta)
    if p < pe:  # label switch: "weak" is the class with the higher rate
        f, p, pe = 1.0 - f, pe, p
    return ll, (f, p, pe)


def newton_max(fg, z, lo, hi, max_iter=100):
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


def mixture_starts(n, y, m):
    """Starting points: a threshold split and top-fraction splits by observed rate."""
    total_n, total_y = float((m * n).sum()), float((m * y).sum())
    pbar = total_y / total_n
    thr = n * pbar + 3.0 * np.sqrt(n * pbar * (1 - pbar)) + 1.0
    weak = y > thr
    out = []
    rate = y / n
    order = np.argsort(-rate, kind="stable")
    cum = np.cumsum(m[order]) / m.sum()
    for frac in (None, 0.5, 0.1, 0.01, 0.001):
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


def fit_mixture(n, y):
    """MLE of the two-class mixture over units with trials n and errors y."""
    n_u, y_u, m = compress(n, y)
    pbar = float((m * y_u).sum() / (m * n_u).sum())
    best = (mix_ll((0.0, pbar, pbar), n_u, y_u, m), (0.0, pbar, pbar))  # collapsed: exactly em0
    for start in mixture_starts(n_u, y_u, m):
        ll, theta = em_mixture(n_u, y_u, m, start)
        if ll > best[0]:
            best = (ll, theta)
    return best, (n_u, y_u, m)


def hessian(fn, theta, lower, upper):
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


def estimates(names, theta, fn, confidence, *, fixed_cov=None, skip=()):
    """Wald CIs from the observed information of fn (log-likelihood) at theta.

    Parameters at 0 get a one-sided likelihood-ratio bound with the others held
    at their estimates. ``skip``: indices whose interval comes from ``fixed_cov``.
    """
    from scipy import optimize, stats

    theta = np.asarray(theta, np.float64)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    crit = float(stats.chi2.ppf(confidence, 1)) / 2  # log-likelihood drop
    free = [i for i in range(theta.size) if theta[i] > 0 and i not in skip]
    cov = None
    if free:
        def sub(t):
            return fn(put(theta, free, t))

        lower = np.zeros(len(free))
        upper = np.ones(len(free))
        H = hessian(sub, theta[free], lower, upper)
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
            out.append(ParameterEstimate(name, v, max(0.0, v - z * se), min(1.0, v + z * se), se, "Wald (binomial)"))
        elif v <= 0:
            def drop(u, i=i):
                return fn(put(theta, [i], [u])) - (f0 - crit)
            hi = 1e-15
            while hi < 1 and drop(hi) > 0:
                hi = min(1.0, hi * 10)
            u = optimize.brentq(drop, 0.0, hi) if drop(hi) < 0 else 1.0
            out.append(ParameterEstimate(name, v, 0.0, u, None, "likelihood ratio (boundary, others fixed)"))
        elif cov is not None and i in free:
            se = float(math.sqrt(cov[free.index(i), free.index(i)]))
            out.append(ParameterEstimate(name, v, max(0.0, v - z * se), min(1.0, v + z * se), se,
                                "Wald (observed Fisher information)"))
        else:
            out.append(ParameterEstimate(name, v, None, None, None, "not identifiable (singular information)"))
    return tuple(out)


def put(theta, idx, values):
    t = np.array(theta, np.float64)
    t[idx] = values
    return t


def clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def union(a, b):
    """1 - (1-a)(1-b) without cancellation for tiny rates."""
    return a + b - a * b


def excess(p: float, p_else: float) -> float:
    """Rate of the extra sub-pass so that 1 - (1-p_else)(1-x) = p."""
    return 0.0 if p_else >= 1 else (p - p_else) / (1 - p_else)



# ---------------------------------------------------------- weak-line components
def fit_line_mixture(cls, n, y, data, confidence: float) -> CandidateFit:
    """MLE of a weak-line component ``cls`` (fields fraction, p, p_else): a two-class binomial
    mixture over line units with trials ``n`` and errors ``y``; ``theta = (fraction, p, p_else)``."""
    (ll, theta), (n_u, y_u, m) = fit_mixture(n, y)
    def fn(t):
        return mix_ll(t, n_u, y_u, m) + data.log_const

    ll = fn(theta)
    f, p, pe = theta
    names = tuple(f"{cls.kind}.{k}" for k in ("fraction", "p", "p_else"))
    notes = []
    if f < 1e-9 or f > 1 - 1e-9 or p - pe <= 1e-12 * max(p, _EPS):
        notes.append("the two classes collapse (fraction at 0 or 1, or p == p_else): the weak-line "
                     "parameters are not identified and the model reduces to em0")
    est = estimates(names, theta, fn, confidence)
    component = cls(fraction=clip01(f), p=clip01(p), p_else=clip01(min(pe, p)))
    return CandidateFit((component,), ll, est, tuple(notes), tuple(theta))


def simulate_line_margins(data, rng: np.random.Generator, bitlines=None, wordlines=None):
    """One draw of (errors per row, errors per column unit) under weak bitlines and/or weak
    wordlines (components with fraction, p, p_else; None: absent), drawn in that order."""
    st = data
    wT = st.w * st.T
    col_weak = rng.random(st.n_groups) < bitlines.fraction if bitlines else np.zeros(st.n_groups, bool)
    row_weak = rng.random(st.n_rows) < wordlines.fraction if wordlines else np.zeros(st.n_rows, bool)
    c_p, c_pe = (bitlines.p, bitlines.p_else) if bitlines else (0.0, 0.0)
    r_p, r_pe = (wordlines.p, wordlines.p_else) if wordlines else (0.0, 0.0)

    def rate(cw, rw):
        return union(np.where(cw, c_p, c_pe), np.where(rw, r_p, r_pe))

    kw = col_weak.reshape(st.n_bs, st.C).sum(axis=1)[st.row_bs]  # weak column units in the row's subarray
    rows = (rng.binomial(kw * wT, rate(True, row_weak))
            + rng.binomial((st.C - kw) * wT, rate(False, row_weak)))
    jw = np.bincount(st.row_bs, weights=row_weak, minlength=st.n_bs).astype(np.int64)
    jw_g = np.repeat(jw, st.C)
    js_g = np.repeat(st.rows_in_bs, st.C) - jw_g
    cols = rng.binomial(jw_g * wT, rate(col_weak, True)) + rng.binomial(js_g * wT, rate(col_weak, False))
    return rows, cols
