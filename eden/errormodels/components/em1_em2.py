"""em1+em2: the fit candidate that combines weak bitlines and weak wordlines in one model.

Not a component (the model it fits is the union of an em1 and an em2 component): a fit
candidate (contract: :mod:`eden.errormodels.fitting`) that starts from the em1 and em2 fits.
"""

from __future__ import annotations

import math

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.components.em1 import WeakBitlines
from eden.errormodels.components.em2 import WeakWordlines


class WeakBitlinesAndWordlines:
    """em1+em2 (``em1: fraction, p, p_else`` + ``em2: fraction, p``; em2.p_else fixed at 0)."""

    name = "em1+em2"
    fit_parts = ("em1", "em2")
    fits_without_errors = False

    @staticmethod
    def fit_param_count() -> int:
        return 5  # em2.p_else is fixed at 0: only the union of the two background rates is identifiable

    @staticmethod
    def fit_exclusion(data) -> str | None:
        return None

    @staticmethod
    def fit_records(data, confidence, part_thetas) -> mle.CandidateFit:
        return _fit_composite(data, part_thetas["em1"], part_thetas["em2"], confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        bitlines, wordlines = components
        return mle.simulate_line_margins(data, rng, bitlines=bitlines, wordlines=wordlines)


# em1+em2: cell rate classes (column weak?, row weak?) -> 1-(1-r_col)(1-r_row)
def _q(p1, pe, p2):
    """Rates of the classes WW, SW (strong column, weak row), WS, SS."""
    return (mle.union(p1, p2), mle.union(pe, p2), p1, pe)


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

    def __init__(self, st) -> None:
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
        lw = mle.log(f2) + mle.kern(yw, nw, qww) + mle.kern(ys, ns, qsw)
        ls = mle.log(1 - f2) + mle.kern(yw, nw, qws) + mle.kern(ys, ns, qss)
        return lw, ls

    def col_sums(self, pi):
        """(expected weak units, expected strong units, entropy) of the column posteriors."""
        from scipy import special

        pz, pn = pi
        zc = self.st.zero_per_bs
        s1 = float(zc @ pz + pn.sum())
        ent = float(zc @ (special.entr(pz) + special.entr(1 - pz)) + np.sum(special.entr(pn) + special.entr(1 - pn)))
        return s1, self.st.n_groups - s1, ent

    def elbo(self, theta, pi, rs=None, cs=None) -> float:
        from scipy import special

        lw, ls = self.row_terms(theta, rs if rs is not None else self.row_stats(pi))
        s1, s0, ent = cs if cs is not None else self.col_sums(pi)
        f1 = theta[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            prior = float(special.xlogy(s1, f1) + special.xlogy(s0, 1 - f1))
        return float(np.sum(np.logaddexp(lw, ls))) + prior + ent + self.st.log_const

    def run(self, theta, pi, max_iter=500, tol=1e-9):
        from scipy import special

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
                dz = (mle.kern(0, na_bs, qww) - mle.kern(0, na_bs, qsw)
                      + mle.kern(0, nb_bs, qws) - mle.kern(0, nb_bs, qss))
                a = np.bincount(st.rec_nz, weights=st.rec_x * rho[st.rec_row], minlength=st.nz_group.size)
                b = st.nz_y - a
                na, nb = na_bs[st.nz_bs], nb_bs[st.nz_bs]
                dn = mle.kern(a, na, qww) - mle.kern(a, na, qsw) + mle.kern(b, nb, qws) - mle.kern(b, nb, qss)
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


def _fit_composite(st, em1_theta, em2_theta, confidence: float) -> mle.CandidateFit:
    comp = _Composite(st)
    f1, p1, pe1 = em1_theta
    f2, pw, pe2 = em2_theta

    def em1_posterior(y, n):
        lw = mle.log(f1) + mle.kern(y, n, p1)
        ls = mle.log(1 - f1) + mle.kern(y, n, pe1)
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
    def fn(t):
        return comp.elbo(np.asarray(t), pi, rs, cs)

    names = ("em1.fraction", "em2.fraction", "em1.p", "em1.p_else", "em2.p")
    est = mle.estimates(names, theta, fn, confidence)
    est = tuple(est[i] for i in (0, 2, 3, 1, 4))  # em1.fraction, p, p_else, em2.fraction, p
    notes = [("log-likelihood is a variational lower bound (exact over row classes, mean-field over "
             "column classes; exact when either component is absent); intervals are conditional on "
             "the fitted column-class probabilities"),
             ("em2.p_else is fixed at 0: em1.p_else and em2.p_else would both be a background rate and "
             "only their union is identifiable")]
    if f2 <= 0 or f1 <= 0:
        notes.append("one component vanished: em1+em2 reduces to a single component here")
    components = (WeakBitlines(mle.clip01(f1), mle.clip01(p1), mle.clip01(min(pe, p1))),
                  WeakWordlines(mle.clip01(f2), mle.clip01(p2), 0.0))
    return mle.CandidateFit(components, ll, est, tuple(notes))
