"""Fit EDEN's error models to raw characterization data by maximum likelihood.

``fit(raw)`` takes one test of a :class:`~eden.dram.raw.RawCharacterization` and fits
every model the data can identify:

* ``em0`` uniform (``p``),
* ``em1`` weak bitlines (``fraction, p, p_else``), per (bank, subarray, column unit),
* ``em2`` weak wordlines (``fraction, p, p_else``), per (bank, row),
* ``em3`` data dependent (``p10, p01``), only with error directions,
* ``em1+em2`` their composition (``em1: fraction, p, p_else`` + ``em2: fraction, p``),

(the candidates registered in :mod:`eden.errormodels.components`, each fitted by its own
``fit_records``; the MLE toolkit is :mod:`eden.errormodels.fitting`)

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

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import h5py
import numpy as np
from scipy import special, stats

from eden.core.io import write_with
from eden.core.validate import check_int
from eden.dram.address import DramOrganization
from eden.dram.raw import MeasurementConditions, RawCharacterization, RecordTest, SummaryTest
from eden.errormodels import fitting as mle
from eden.errormodels.component import Persistence, check_repeat_q
from eden.errormodels.components import Uniform, fit_model, fit_model_names
from eden.errormodels.fitting import ParameterEstimate
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError, EdenDataError

__all__ = [
    "CI_METHOD",
    "MODELS",
    "N_PARAMS",
    "FitError",
    "FitResult",
    "MarginFit",
    "ModelFit",
    "ParameterEstimate",
    "RecordStats",
    "fit",
    "fit_test",
    "read_fit_report",
    "save_fit",
    "simulate_records",
]

MODELS = fit_model_names()
"""Models ``fit`` knows, in order of complexity: the fit candidates registered by
:mod:`eden.errormodels.components` (built-ins and every module added there). The fit reads the
registry on each call, so a candidate registered later takes part too."""

N_PARAMS = {name: fit_model(name).fit_param_count() for name in MODELS}
"""Free parameters (BIC's k) of each model."""

CI_METHOD = ("Wald interval from the observed Fisher information (inverse of the numerical Hessian "
             "of the log-likelihood at the MLE), clipped to [0, 1]; parameters at 0 get a one-sided "
             "likelihood-ratio bound")


class FitError(EdenDataError):
    """The data cannot support the requested fit (e.g. a model it cannot identify)."""


# ------------------------------------------------------------------ results
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

    def estimate(self, name: str) -> ParameterEstimate:
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
    operating_point: MeasurementConditions
    data: Mapping[str, Any]
    candidates: tuple
    selected: str
    forced: bool
    excluded: Mapping[str, str]
    identifiability: tuple
    confidence: float
    bic_n: float | None
    seed: int
    sweeps: Mapping[str, Any] | None = None  # sweep_analysis(...) when asked for (fit(..., sweeps=True))

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
            **({"q": self.model.q} if self.model.q is not None else {}),  # (two_level only: older reports unchanged)
            **({"sweeps": dict(self.sweeps)} if self.sweeps is not None else {}),
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
        if self.sweeps is not None:
            out += format_sweeps(self.sweeps)
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


# --------------------------------------------------------- sufficient stats
class RecordStats:
    """Sufficient statistics of a RecordTest on its organization: the ``data`` of every fit
    candidate's ``fit_records``, ``fit_exclusion`` and ``simulate_margins``.

    Per row (``row_n`` trials, ``row_z`` errors), per column group of a (bank, subarray)
    (``grp_n``, ``grp_y``), per record (``rec_row``, ``rec_group``, ``rec_x``), the error-free
    column groups of each subarray (``zero_per_bs``), direction counts ``(n10, n01, ones trials,
    zeros trials)`` (``direction``, None when not identifiable; ``has_direction``: whether the
    records carry directions at all) and the likelihood's combinatorial constant ``log_const``.
    """

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
        self.has_direction = test.direction is not None
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


# ------------------------------------------------------- goodness of fit
def _gof(name: str, model: ErrorModel, st: RecordStats, seed: int) -> tuple:
    rng = np.random.default_rng([seed, fit_model_names().index(name)])
    reps = int(min(50, max(3, math.ceil(1e6 / max(st.n_rows, st.n_groups)))))
    candidate = fit_model(name)
    sims = [candidate.simulate_margins(model.components, st, rng) for _ in range(reps)]
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
    edges = np.array(sorted(v for v in e if v <= vmax + 1) + [vmax + 2])
    return np.unique(edges)


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
        **kwargs: Passed to :func:`fit_test` (``models``, ``persistence``, ``q``,
            ``confidence``, ``seed``, ``gof``); ``persistence="two_level"`` without ``q``
            identifies each candidate's q from records per iteration (:func:`sweep_analysis`;
            FitError when the records cannot, or no q fits the selected candidate);
            ``sweeps=True`` adds :func:`sweep_analysis` (``sweep_reps`` simulations per candidate, 2 by default)
            of the records (errors per faulty unit, persistence across iterations) for every
            candidate (``result.sweeps``).

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
    sweeps = kwargs.pop("sweeps", False)
    reps = kwargs.pop("sweep_reps", 2)
    persistence = Persistence.coerce(kwargs.get("persistence", Persistence.ACCESS))
    q = kwargs.get("q")
    identify = persistence is Persistence.TWO_LEVEL and q is None
    if identify:  # q from the per-iteration records (below); the rates are fitted as per-access rates
        kwargs = dict(kwargs, persistence=Persistence.ACCESS)
    result = fit_test(t, raw.organization, subarray_rows_known=raw.subarray_rows_known, **kwargs)
    if (sweeps or identify) and isinstance(t, RecordTest) and raw.organization is not None:
        analysis = sweep_analysis(t, raw.organization, {c.name: c.model for c in result.candidates},
                                  selected=result.selected, seed=result.seed, reps=reps)
        result = dataclasses.replace(result, sweeps=analysis)
    if identify:
        result = identify_two_level(result)
    return result


def identify_two_level(result: FitResult) -> FitResult:
    """The two-level version of a fit with a sweep analysis (``fit(..., sweeps=True)``; what
    ``fit(..., persistence="two_level")`` without q returns): each candidate's q from the repeat
    fraction of the per-iteration records (:func:`sweep_analysis`), its model made two-level with it,
    the report's persistence note replaced by what was identified and what was not.

    Raises:
        FitError: the records are not per iteration, or no q in (0, 1] fits the selected candidate
            (the message names the candidates that have one).
    """
    sw = result.sweeps
    obs = sw["observed"] if sw is not None else {}
    if sw is None or obs.get("repeat_error_fraction") is None:
        raise FitError(f"test {result.test!r}: two_level persistence's q is identified only from records per "
                       "iteration with at least 2 iterations (the share of a later iteration's errors that repeat "
                       "the first's); these records are not, so give q (eden errormodel fit --q Q) or choose "
                       "persistence access or fixed")
    r = float(obs["repeat_error_fraction"])
    qs = {name: d.get("two_level_q") or None for name, d in sw["predicted"].items()}
    if qs.get(result.selected) is None:
        ok = ", ".join(f"{n} (q = {v:.3g})" for n, v in qs.items() if v is not None) or "none"
        o = sw["predicted"][result.selected].get("repeat_error_fraction_access")
        raise FitError(f"test {result.test!r}: no two_level q in (0, 1] fits the selected {result.selected}: "
                       f"with independent accesses it already repeats {100 * o:.1f}% of its errors in the "
                       f"{obs['column_bits']}-bit units that failed before (its weak lines fail again), more than "
                       f"the observed {100 * r:.1f}%. Candidates with a q: {ok} (force one with --model), or "
                       "choose persistence access or fixed")
    cands = tuple(dataclasses.replace(c, model=ErrorModel(c.model.components, Persistence.TWO_LEVEL, qs[c.name]))
                  if qs.get(c.name) is not None else c for c in result.candidates)
    d = sw["predicted"][result.selected]
    q = cast(float, qs[result.selected])
    r2 = d.get("repeat_error_fraction_two_level")
    w = obs["column_bits"]
    note = (f"persistence two_level, q = {q:.4g} identified from the per-iteration records: {100 * r:.1f}% of the "
            f"later iterations' errors fall in {w}-bit units that failed in the first (r); {result.selected} "
            f"simulated with independent accesses repeats {100 * d['repeat_error_fraction_access']:.1f}% (o, from "
            f"its weak lines); q = 1 - (1 - r)/(1 - o). The two-level model simulated the same way repeats "
            f"{'-' if r2 is None else f'{100 * r2:.1f}%'}. The rates are per-access rates (per bit per iteration); "
            "the weak map holds rate/q of the cells, fixed per device seed. Not identified: whether a repeat is "
            f"the same cell or another cell of the {w}-bit unit (the records are per unit, so q is tied to "
            f"{result.selected}'s spatial model and differs between candidates), whether q varies between cells, "
            "and how the weak map grows with the operating point")
    others = [f"{n}: q = {v:.4g}" if v is not None else f"{n}: no q fits (kept with access persistence)"
              for n, v in qs.items() if n != result.selected]
    if others:
        note += "; other candidates: " + ", ".join(others)
    ident = tuple(_two_level_note(n, note) for n in result.identifiability)
    return dataclasses.replace(result, candidates=cands, identifiability=ident)


def _two_level_note(note: str, two_level: str) -> str:
    """The records fit's persistence note with the two-level identification in its place."""
    head, sep, _ = note.partition("; whether failures persist across accesses")
    return f"{head}; {two_level}" if sep else note


def fit_test(test: RecordTest | SummaryTest, organization: DramOrganization | None, *,
             subarray_rows_known: bool = True, models: Sequence[str] | None = None,
             persistence: Persistence | str = Persistence.ACCESS, confidence: float = 0.99, seed: int = 0,
             gof: bool = True, q: float | None = None) -> FitResult:
    """Fit error models to one test (see :func:`fit`).

    Args:
        test: A RecordTest or SummaryTest.
        organization: The tested region (required for a RecordTest).
        subarray_rows_known: Whether ``organization.subarray_rows`` comes from the
            source (else the fit notes that it is an assumption).
        models: Candidates to fit (names from :data:`MODELS`); None: every model
            the data identifies. A single name forces that model.
        persistence: Persistence of the fitted models (a :class:`Persistence` or its
            spelling, ``"access"``, ``"fixed"`` or ``"two_level"``); aggregated counts cannot tell
            them apart. ``two_level`` needs ``q`` here; :func:`fit` identifies it from records
            per iteration when ``q`` is None.
        q: ``two_level`` persistence's per-access failure probability of a weak cell (given,
            not identified: the report says so).
        confidence: Confidence level of the intervals, in (0, 1).
        seed: Seed of the goodness-of-fit Monte Carlo (recorded in the report).
        gof: Compute goodness of fit (Monte Carlo; off to save time in tests).

    Returns:
        FitResult.

    Raises:
        EdenConfigError: Unknown model name, persistence or bad confidence.
        FitError: A forced model is not identifiable from this data.
    """
    persistence = Persistence.coerce(persistence)
    if persistence is Persistence.TWO_LEVEL and q is None:
        raise EdenConfigError("fitting with persistence two_level needs q here: eden.dram.fit.fit identifies it "
                              "from records per iteration (or give q)")
    q = check_repeat_q(persistence, q)
    if not (isinstance(confidence, float) and 0 < confidence < 1):
        raise EdenConfigError(f"confidence must be a float in (0, 1), got {confidence!r}")
    if models is not None:
        models = list(models)
        for m in models:
            fit_model(m)  # unknown -> the known names and close matches
        if not models:
            raise EdenConfigError("models must name at least one model")
    if isinstance(test, SummaryTest):
        result = _fit_summary(test, models, persistence if q is None else Persistence.ACCESS, confidence, seed)
    elif organization is None:
        raise FitError(f"test {test.name!r} has records but no organization (tested region) was given")
    else:
        result = _fit_records(test, organization, subarray_rows_known, models,
                              persistence if q is None else Persistence.ACCESS, confidence, seed, gof)
    if q is None:
        return result
    note = (f"persistence two_level with q = {q:.4g} as given, not identified by this fit; the rates are per-access "
            "rates (per bit per iteration) and the weak map holds rate/q of the cells, fixed per device seed")
    ident = tuple(_two_level_note(n, note) for n in result.identifiability)
    if ident == tuple(result.identifiability):  # (no persistence note to replace: a summary fit)
        ident += (note,)
    return dataclasses.replace(
        result, candidates=tuple(dataclasses.replace(c, model=ErrorModel(c.model.components, persistence, q))
                                 for c in result.candidates), identifiability=ident)


def _fit_records(test, org, sub_known, models, persistence, confidence, seed, gof) -> FitResult:
    st = RecordStats(test, org)
    notes = [(f"rates are per bit per iteration ({st.T} iteration(s) of the whole region); the fit assumes "
             "cells fail independently given their line classes, across cells and iterations; whether "
             f"failures persist across accesses is not identified from summed counts: the saved model uses "
             f"persistence={persistence.value!r}")]
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
    excluded.update(_exclusions(st))
    if st.errors == 0:
        notes.append("no errors observed: only an upper bound on a uniform rate is identified")
    wanted = list(fit_model_names()) if models is None else models
    for m in wanted:
        if m in excluded and models is not None:
            raise FitError(f"cannot fit {m} to test {test.name!r}: {excluded[m]}")
    cands = _fit_candidates(st, [m for m in wanted if m not in excluded], confidence, persistence)
    if gof:
        for name, c in cands.items():
            cands[name] = dataclasses.replace(c, gof=_gof(name, c.model, st, seed))
    ordered = tuple(cands[m] for m in fit_model_names() if m in cands)
    selected = min(ordered, key=lambda c: cast(float, c.bic)).name  # record fits have a log-likelihood
    data = {"kind": "records", "records": test.n_records, "column_bits": st.w, "iterations": st.T,
            "bits": st.bits, "bit_trials": st.trials, "errors": st.errors, "ber": st.errors / st.trials,
            "rows": st.n_rows, "column_groups": st.n_groups, "subarray_rows": st.S,
            "subarray_rows_known": sub_known, "direction_known": test.direction is not None,
            "data_pattern": test.data_pattern, "ones_fraction": test.ones_fraction}
    return FitResult(test.name, test.device, test.operating_point, data, ordered, selected,
                     models is not None and len(models) == 1, excluded, tuple(notes), confidence,
                     float(st.trials), seed)


def _exclusions(st: RecordStats) -> dict[str, str]:
    """Candidates the data cannot identify, with the reason (the registry's order)."""
    excluded: dict[str, str] = {}
    for name in fit_model_names():
        candidate = fit_model(name)
        reason = candidate.fit_exclusion(st)
        if reason is None and st.errors == 0 and not candidate.fits_without_errors:
            reason = "not identifiable: no errors were observed"
        if reason is None:
            reason = next((f"not identifiable: its part {part} is not ({excluded[part]})"
                           for part in candidate.fit_parts if part in excluded), None)
        if reason is not None:
            excluded[name] = reason
    return excluded


def _fit_candidates(st: RecordStats, names: list[str], confidence: float,
                    persistence: Persistence) -> dict[str, ModelFit]:
    """Fit ``names`` (and the parts they start from, in the registry's order: parts first)."""
    needed = set(names)
    for name in names:
        needed.update(fit_model(name).fit_parts)
    fitted: dict[str, mle.CandidateFit] = {}
    cands: dict[str, ModelFit] = {}
    for name in fit_model_names():
        if name not in needed:
            continue
        candidate = fit_model(name)
        fitted[name] = cf = candidate.fit_records(st, confidence,
                                                  {part: fitted[part].theta for part in candidate.fit_parts})
        if name in names:
            k = candidate.fit_param_count()
            cands[name] = ModelFit(name, ErrorModel(cf.components, persistence), cf.loglik, k,
                                   _bic(cf.loglik, k, st.trials), cf.estimates, notes=cf.notes)
    return cands


def _bic(ll, k, n):
    return None if ll is None or n is None else float(k * math.log(n) - 2 * ll)


def _fit_summary(test: SummaryTest, models, persistence, confidence, seed) -> FitResult:
    """Summary data identify one number: the uniform-equivalent BER (em0)."""
    excluded = {m: "not identifiable from summary-level data (no per-row or per-column records, no "
                   "error directions)" for m in fit_model_names() if m != Uniform.kind}
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
        ll = float(mle.kern(e, n_trials, p)) + float(special.gammaln(n_trials + 1) - special.gammaln(e + 1)
                                                  - special.gammaln(n_trials - e + 1))
        bic = _bic(ll, 1, n_trials)
        if 0 < p < 1:
            se = math.sqrt(p * (1 - p) / n_trials)
            est = (ParameterEstimate("em0.p", p, max(0.0, p - z * se), min(1.0, p + z * se), se,
                            "Wald (observed Fisher information, exact)"),)
        else:
            est = mle.estimates(("em0.p",), [p], lambda t: float(mle.kern(e, n_trials, t[0])), confidence)
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
            est = (ParameterEstimate("em0.p", p, max(0.0, p - z * se), min(1.0, p + z * se), se,
                            "Wald (binomial over units, delta method)"),)
            ll = float(mle.kern(f * u, u, f))
            n_trials = u * w
            bic = _bic(ll, 1, n_trials)
        else:
            est = (ParameterEstimate("em0.p", p, None, None, None,
                            "no interval: the number of units tested is not recorded"),)
        notes.append(f"lower bound on the BER of any model: {lower:.6g}")
    mf = ModelFit(Uniform.kind, ErrorModel((Uniform(mle.clip01(p)),), persistence), ll, 1, bic, est)
    data = {"kind": "summary", "quantity": test.quantity, "value": test.value, "unit_bits": w,
            "units_tested": test.units_tested, "iterations": test.iterations,
            "ber_lower_bound": (test.value / w if test.quantity == "faulty_unit_fraction" else p),
            "data_pattern": test.data_pattern}
    return FitResult(test.name, test.device, test.operating_point, data, (mf,), Uniform.kind,
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
        EdenTypeError: ``provenance`` is not a JSON-serialisable mapping.
    """
    from eden.errormodels import h5 as _h5

    prov = dict(provenance or {})
    prov.setdefault("fit", {"tool": "eden errormodel fit", "test": result.test, "selected": result.selected,
                            "forced": result.forced, "criterion": "BIC",
                            "operating_point": result.operating_point.to_dict(),
                            "ber_per_bit_per_iteration": result.data.get("ber")})
    provenance_json = _h5.provenance_text(prov)
    report = json.dumps(result.to_dict(), allow_nan=False)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "x") as f:
            _h5._write_contents(f, result.model.components, result.model.persistence, provenance_json,
                                result.model.q)
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
                     name: str = "synthetic", operating_point: MeasurementConditions | None = None,
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
            fail in every iteration; with ``two_level`` the weak cells (the
            ``fixed`` cells of ``model.weak_map()``) are drawn once and each
            fails in each iteration with probability ``model.q``.
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
    pattern = _check_simulation(organization, pattern, iterations, column_bits)
    rng = np.random.default_rng(seed)
    cells = CellSpace.of(organization, pattern)
    t_draw = 1 if model.persistence is Persistence.FIXED else iterations
    if model.persistence is Persistence.TWO_LEVEL:
        trial = _two_level_trials(model, cells, rng, iterations)
    else:
        trial = _failing_trials(model, cells, rng, t_draw)
    return _records(trial, cells, t_draw, iterations=iterations, persistence=model.persistence,
                    column_bits=column_bits, per_iteration=per_iteration, record_direction=record_direction,
                    name=name, operating_point=operating_point, device=device)


def _check_simulation(org: DramOrganization, pattern, iterations, column_bits) -> np.ndarray:
    """The pattern as uint8[P, row_bytes] (default: every byte 0xAA), after checking the arguments."""
    if pattern is None:
        pattern = np.full((1, org.row_bytes), 0xAA, np.uint8)
    pattern = np.asarray(pattern, np.uint8)
    if pattern.ndim != 2 or pattern.shape[1] != org.row_bytes:
        raise EdenConfigError(f"pattern must have shape (P, {org.row_bytes}), got {pattern.shape}")
    check_int("iterations", iterations, lo=1)
    check_int("column_bits", column_bits, lo=1)
    if org.row_bits % column_bits:
        raise EdenConfigError(f"column_bits must divide the row's {org.row_bits} bits, got {column_bits!r}")
    return pattern


@dataclasses.dataclass(frozen=True)
class CellSpace:
    """The simulated region as components' ``simulation_passes`` see it.

    Cell ids are ``row_id * B + bitline`` with ``row_id = bank * rows + row``; ``bits[p]`` is
    the stored bit of each bitline in pattern row ``p`` (row ``r`` holds ``pattern[r % P]``).
    """

    org: DramOrganization
    B: int          # bits per row
    R: int          # rows (banks * rows)
    S: int          # rows per subarray
    nsub: int       # subarrays per bank
    pattern: np.ndarray  # uint8[P, row_bytes]: the written data
    bits: np.ndarray  # uint8[P, B]: the pattern's bits, bitline order
    P: int

    @classmethod
    def of(cls, org: DramOrganization, pattern: np.ndarray) -> CellSpace:
        bits = np.unpackbits(pattern, axis=1, bitorder="little")
        return cls(org, org.row_bits, org.banks * org.rows, org.subarray_rows, -(-org.rows // org.subarray_rows),
                   pattern, bits, pattern.shape[0])


def _failing_trials(model: ErrorModel, cells: CellSpace, rng: np.random.Generator, t_draw: int) -> np.ndarray:
    """Sorted unique failing bit-trials ``cell * t_draw + iteration``: the union of every
    component's passes, each a binomial number of distinct uniformly chosen trials."""
    passes = []
    for comp in model.components:
        if not hasattr(comp, "simulation_passes"):
            raise EdenConfigError(f"component {comp.kind} does not define simulation_passes: "
                                  "records cannot be simulated from it")
        passes += comp.simulation_passes(cells, rng)
    fails = []
    for p in passes:
        if p.size == 0 or p.rate <= 0:
            continue
        k = int(rng.binomial(p.size * t_draw, p.rate))
        idx = _distinct(rng, p.size * t_draw, k)
        if p.members is not None:  # a failing member flips its group of cells in that iteration
            cell, owner = p.members(idx // t_draw)
            fails.append(cell * t_draw + (idx % t_draw)[owner])
        else:
            fails.append(p.cells(idx // t_draw) * t_draw + idx % t_draw)
    return np.unique(np.concatenate(fails)) if fails else np.zeros(0, np.int64)


def _two_level_trials(model: ErrorModel, cells: CellSpace, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """Sorted failing bit-trials ``cell * iterations + iteration`` of a two-level model: the weak
    cells of its weak map, once, then each (weak cell, iteration) failing with probability q."""
    weak = _failing_trials(model.weak_map(), cells, rng, 1)
    pick = np.flatnonzero(rng.random(weak.size * iterations) < cast(float, model.q))  # O(weak cells x iterations)
    return weak[pick // iterations] * iterations + pick % iterations  # sorted: weak is


def _records(trial: np.ndarray, cells: CellSpace, t_draw: int, *, iterations: int, persistence: Persistence,
             column_bits: int, per_iteration: bool, record_direction: bool, name: str,
             operating_point: MeasurementConditions | None, device: str) -> RecordTest:
    """Failing trials -> error records per (bank, row, column unit[, iteration])."""
    org, B, P = cells.org, cells.B, cells.P
    cell, it = trial // t_draw, trial % t_draw
    if persistence is Persistence.FIXED and iterations > 1:  # the same cells fail every iteration
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
        direction = cells.bits[row % P, u].astype(np.int64)
    return RecordTest(name, bank=bank, row=row, column=u, count=counts, column_bits=column_bits,
                      iterations=iterations, iteration=it_u, direction=direction, pattern=cells.pattern,
                      data_pattern=f"synthetic: {P} pattern row(s), ones fraction "
                                   f"{float(cells.bits.mean()):g}",
                      operating_point=operating_point or MeasurementConditions(), device=device)


def _distinct(rng: np.random.Generator, m: int, k: int) -> np.ndarray:
    """k distinct integers drawn uniformly from [0, m) (a uniform k-subset)."""
    if k == 0:
        return np.zeros(0, np.int64)
    if m <= 20_000_000 or k <= m // 50:
        return np.asarray(rng.choice(m, size=k, replace=False), np.int64)
    if k > m // 2:
        raise EdenConfigError(f"simulation would need {k} of {m} trials to fail: rate too high for the "
                         "sparse simulator; use a smaller organization")
    # symmetric under permutations of [0, m): the result is a uniform k-subset
    out = np.unique(rng.integers(0, m, size=k))
    while out.size < k:
        out = np.unique(np.concatenate([out, rng.integers(0, m, size=k - out.size)]))
    return out


# ------------------------------------------------- clustering and persistence
def unit_stats(test: RecordTest, organization: DramOrganization) -> dict[str, Any]:
    """What the records say about clustering and persistence, model-free.

    * ``errors_per_faulty_unit``: errors per (column unit, iteration) with at least one error
      (per iteration when the records are per iteration, else per unit over all iterations);
    * ``faulty_units_per_iteration``, ``errors_per_iteration`` and
      ``errors_per_faulty_unit_per_iteration`` (the data's own spread of the first statistic);
    * with per-iteration records and at least 2 iterations: ``repeat_error_fraction``, the share
      of the errors of iterations 1.. that fall in units that failed in iteration 0, and
      ``repeat_unit_fraction``, the share of those iterations' faulty units that failed in
      iteration 0 (persistence at the records' granularity).
    """
    C = organization.row_bits // test.column_bits
    unit = (test.bank * organization.rows + test.row) * C + test.column
    count = np.asarray(test.count, np.int64)
    out: dict[str, Any] = {"column_bits": int(test.column_bits), "iterations": int(test.iterations),
                           "per_iteration": test.iteration is not None}
    out["errors_per_faulty_unit"] = float(count.sum() / max(count.size, 1))
    if test.iteration is None:
        out.update(errors_per_iteration=None, faulty_units_per_iteration=None,
                   errors_per_faulty_unit_per_iteration=None, repeat_error_fraction=None, repeat_unit_fraction=None)
        return out
    it = np.asarray(test.iteration)
    out["errors_per_iteration"] = [int(count[it == i].sum()) for i in range(test.iterations)]
    out["faulty_units_per_iteration"] = [int(np.count_nonzero(it == i)) for i in range(test.iterations)]
    out["errors_per_faulty_unit_per_iteration"] = [float(count[it == i].mean()) if np.any(it == i) else None
                                                   for i in range(test.iterations)]
    later = it > 0
    if test.iterations < 2 or not later.any():
        out.update(repeat_error_fraction=None, repeat_unit_fraction=None)
        return out
    again = np.isin(unit[later], unit[it == 0])
    out["repeat_error_fraction"] = float(count[later][again].sum() / count[later].sum())
    out["repeat_unit_fraction"] = float(again.mean())
    return out


def sweep_analysis(test: RecordTest, organization: DramOrganization, models: Mapping[str, ErrorModel], *,
                   selected: str | None = None, seed: int = 0, reps: int = 2) -> dict[str, Any]:
    """Observed vs predicted clustering (errors per faulty unit) and persistence of ``test``.

    Each model is simulated ``reps`` times with :func:`simulate_records` (``access``
    persistence: independent iterations) at the records' granularity and iteration count, and
    the same statistics are computed (:func:`unit_stats`; means over the repetitions).

    Persistence: under ``fixed`` persistence every failing cell fails again (repeat fraction 1);
    under ``access`` the repeat fraction ``o`` comes only from other cells of units that fail
    often (weak lines). EDEN's two-level model, fixed weak cells each failing with probability
    ``q`` per access, gives ``1 - (1 - q)(1 - o)`` (the cell itself recurs with ``q``; the other
    cells of its unit as under ``access``), so the observed repeat fraction ``r`` identifies
    ``q = 1 - (1 - r) / (1 - o)`` given a model's ``o``: that ``q`` is reported per model
    (:func:`two_level_q`; 0 where ``o >= r``: no q in (0, 1] fits), and the two-level model with it
    (``ErrorModel(components, "two_level", q)``) is simulated ``reps`` times the same way: its
    repeat fraction (``repeat_error_fraction_two_level``, each run in ``..._runs``) checks the
    identification against the data.
    """
    obs = unit_stats(test, organization)
    pred: dict[str, Any] = {}
    for i, (name, model) in enumerate(models.items()):
        access = ErrorModel(model.components, Persistence.ACCESS)
        runs = [unit_stats(simulate_records(access, organization, seed=seed + 1000 * i + k,
                                            iterations=test.iterations, column_bits=test.column_bits,
                                            per_iteration=True, record_direction=False), organization)
                for k in range(reps)]
        d: dict[str, Any] = {"errors_per_faulty_unit": float(np.mean([r["errors_per_faulty_unit"] for r in runs])),
                             "errors_per_faulty_unit_range": [float(min(r["errors_per_faulty_unit"] for r in runs)),
                                                              float(max(r["errors_per_faulty_unit"] for r in runs))],
                             "faulty_units_per_iteration": float(np.mean([np.mean(r["faulty_units_per_iteration"])
                                                                          for r in runs]))}
        reps_o = [r["repeat_error_fraction"] for r in runs if r["repeat_error_fraction"] is not None]
        if reps_o and obs.get("repeat_error_fraction") is not None:
            o = float(np.mean(reps_o))
            r = obs["repeat_error_fraction"]
            d["repeat_error_fraction_access"] = o
            d["repeat_error_fraction_fixed"] = 1.0
            d["repeat_error_fraction_access_runs"] = [float(v) for v in reps_o]
            q = two_level_q(r, o)
            d["two_level_q"] = 0.0 if q is None and o < 1 else q
            if q is not None:  # the fitted two-level model, simulated the same way
                tl = ErrorModel(model.components, Persistence.TWO_LEVEL, q)
                runs2 = [unit_stats(simulate_records(tl, organization, seed=seed + 1000 * i + 500 + k,
                                                     iterations=test.iterations, column_bits=test.column_bits,
                                                     per_iteration=True, record_direction=False), organization)
                         for k in range(reps)]
                rr = [float(x["repeat_error_fraction"]) for x in runs2 if x["repeat_error_fraction"] is not None]
                d["repeat_error_fraction_two_level"] = float(np.mean(rr)) if rr else None
                d["repeat_error_fraction_two_level_runs"] = rr
                d["errors_per_faulty_unit_two_level"] = float(np.mean([x["errors_per_faulty_unit"] for x in runs2]))
        pred[name] = d
    notes = [f"statistics per {test.column_bits}-bit unit and iteration; predictions: each model simulated "
             f"{reps} times with independent iterations (simulate_records), means shown"]
    if obs.get("repeat_error_fraction") is not None:
        notes.append(f"persistence is identified from the per-iteration records: observed repeat fraction "
                     f"{obs['repeat_error_fraction']:.3g}, 'fixed' predicts 1, 'access' each model's o; the "
                     "two-level model (fixed weak cells failing with probability q per access) matches it with "
                     "the q shown (0: the model's o already exceeds it, no q fits); 'repeat (two-level)' is that "
                     "model simulated the same way. Not identified: whether a "
                     "repeat is the same cell or another cell of the unit (the records are per unit, so q is tied "
                     "to each model's spatial clustering), and whether q varies between cells")
    else:
        notes.append("persistence is not identified: the records are not per iteration (or there is one iteration)")
    return {"observed": obs, "predicted": pred, "selected": selected, "notes": notes}


def two_level_q(repeat: float, access_repeat: float) -> float | None:
    """The q of two-level persistence that makes a model whose ``access`` repeat fraction is
    ``access_repeat`` (o) repeat ``repeat`` (r) of its errors: ``1 - (1 - r) / (1 - o)``; None
    where no q in (0, 1] does (``o >= r``: the model's weak lines alone already repeat as much)."""
    if not access_repeat < 1.0:
        return None
    q = 1.0 - (1.0 - repeat) / (1.0 - access_repeat)
    return float(min(q, 1.0)) if q > 0.0 else None


def format_sweeps(sweeps: Mapping[str, Any]) -> list[str]:
    """Text lines of a :func:`sweep_analysis` (``eden errormodel fit``)."""
    obs = sweeps["observed"]
    w = obs["column_bits"]
    out = [f"clustering and persistence ({w}-bit units):"]
    rep = obs.get("repeat_error_fraction")
    out.append(f"  observed: {obs['errors_per_faulty_unit']:.3g} errors per faulty unit"
               + (f", faulty units per iteration {obs['faulty_units_per_iteration']}"
                  if obs.get("faulty_units_per_iteration") else "")
               + (f"; {100 * rep:.1f}% of the later iterations' errors in units that failed in the first"
                  if rep is not None else ""))
    out.append(f"  {'model':<9}{'errors/faulty unit':>20}{'faulty units/iter':>19}{'repeat (access)':>17}"
               f"{'two-level q':>13}{'repeat (two-level)':>20}")
    for name, d in sweeps["predicted"].items():
        ra = d.get("repeat_error_fraction_access")
        q = d.get("two_level_q")
        r2 = d.get("repeat_error_fraction_two_level")
        out.append(f"  {name:<9}{d['errors_per_faulty_unit']:>20.3g}{d['faulty_units_per_iteration']:>19.4g}"
                   f"{'-' if ra is None else f'{100 * ra:.1f}%':>17}{'-' if q is None else f'{q:.3f}':>13}"
                   f"{'-' if r2 is None else f'{100 * r2:.1f}%':>20}")
    out += [f"  note: {n}" for n in sweeps["notes"]]
    return out
