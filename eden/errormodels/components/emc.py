"""emc: clustered errors where weak rows and weak 64-byte line positions intersect.

A ``wl_fraction`` of the rows and, independently, a ``line_fraction`` of the 64-byte line
positions (512 consecutive bitlines, ``LINE_BITS``) of each (bank, subarray) are weak; a cell of a
weak line position in a weak row flips with ``p``, every other cell with ``p_else``. Unlike the
union em1+em2 (a cell fails if its row *or* its bitline is weak, so errors spread out at about
one per line), the errors sit only at the intersections: a faulty line of a weak row at a weak
position holds ``Binomial(512, p)`` errors per access, given at least one, about ``512 p`` of
them. This is the structure of the DIVA DDR3 records (docs/fits.md): errors where error-prone
rows meet error-prone line positions, several per faulty line.

Engine: one all-cell sub-pass at ``p_else`` and one over the weak bitlines at the excess rate in
weak rows only (``Population.WEAK_BITLINES`` with ``by_wordline_class``). Both weak-line maps are
keyed per component (``WeakLines.BOTH``), each nested in its fraction; the weak bitlines come
in blocks of a whole line (``bitline_block = 512``: the weak-bitline streams of em1 drawn over the
line positions of each (bank, subarray) instead of its bitlines).

Fit (:meth:`ClusteredIntersections.fit_records`): variational EM over the records' sufficient
statistics (see :class:`_Intersections`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import Component, Population, SubPass, WeakLines, fraction_param, rate_param
from eden.errors import EdenConfigError


#: Bits of a 64-byte line position (a DDR burst of BL8 on a 64-bit bus): emc's weak bitline blocks.
LINE_BITS = 512


@dataclasses.dataclass(frozen=True)
class ClusteredIntersections(Component):
    """EMC: errors where weak rows and weak 64-byte line positions intersect."""

    kind = "emc"
    weak_lines = WeakLines.BOTH
    bitline_block = LINE_BITS
    line_fraction: float = fraction_param("fraction of the 64-byte line positions (512 bitlines) of each "
                                          "(bank, subarray) that are weak")
    wl_fraction: float = fraction_param("fraction of the rows that are weak")
    p: float = rate_param("flip probability of a bit of a weak line position in a weak row")
    p_else: float = rate_param("flip probability of every other bit")

    def _validate(self):
        if self.p < self.p_else:
            raise EdenConfigError(f"emc.p (weak rows x weak line positions, {self.p}) must be >= emc.p_else "
                                  f"({self.p_else})")

    def weak_fractions(self):
        return {WeakLines.BITLINES: self.line_fraction, WeakLines.WORDLINES: self.wl_fraction}

    def rate_table(self, weak_bitline, weak_wordline):
        r = self.p if (weak_bitline and weak_wordline) else self.p_else
        return (r, r)

    def sub_passes(self):
        # every cell at p_else; the weak lines' bitlines again at the excess rate, in weak rows
        # only: 1 - (1 - p_else)(1 - extra) = p at the intersections
        pe = self.p_else
        extra = mle.excess(self.p, pe)
        return (SubPass(((pe, pe), (pe, pe))),
                SubPass(((0.0, 0.0), (extra, extra)), Population.WEAK_BITLINES, by_wordline_class=True))

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_exclusion(cls, data):
        if data.w % LINE_BITS:
            return (f"not identifiable: the records are per {data.w}-bit unit, not whole {LINE_BITS}-bit lines (the "
                    "fit's units must hold whole line positions)")
        return None

    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Variational EM (:class:`_Intersections`); the log-likelihood is a lower bound."""
        return _fit(cls, data, confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        """One draw of (errors per row, errors per column unit): weak rows, then the weak line
        positions of each column unit (``Binomial(w / 512, line_fraction)``), then the errors."""
        (c,) = components
        st = data
        row_weak = rng.random(st.n_rows) < c.wl_fraction
        k = LINE_BITS * rng.binomial(st.w // LINE_BITS, c.line_fraction, st.n_groups)  # weak bitlines per unit
        T = st.T
        kb = k.reshape(st.n_bs, st.C).sum(axis=1)[st.row_bs]  # weak bitlines in the row's subarray
        row_bits = st.C * st.w
        rows = np.where(row_weak,
                        rng.binomial(kb * T, c.p) + rng.binomial((row_bits - kb) * T, c.p_else),
                        rng.binomial(row_bits * T, c.p_else))
        jw = np.bincount(st.row_bs, weights=row_weak, minlength=st.n_bs).astype(np.int64)
        jw_g = np.repeat(jw, st.C)
        all_g = np.repeat(st.rows_in_bs, st.C)
        cols = (rng.binomial(k * jw_g * T, c.p)
                + rng.binomial(((st.w - k) * jw_g + st.w * (all_g - jw_g)) * T, c.p_else))
        return rows, cols

    def simulation_passes(self, cells, rng):
        org, B, S, nsub = cells.org, cells.B, cells.S, cells.nsub
        if B % LINE_BITS:
            raise EdenConfigError(f"emc needs rows of whole {LINE_BITS}-bit lines, got {B} bits per row")
        nl = B // LINE_BITS
        weak_rows = np.flatnonzero(rng.random(cells.R) < self.wl_fraction)
        weak = np.flatnonzero(rng.random(org.banks * nsub * nl) < self.line_fraction)
        bs_of, line = weak // nl, weak % nl  # (bank, subarray) group and position of each weak line
        first = np.searchsorted(bs_of, np.arange(org.banks * nsub + 1))  # weak lines of each group
        row_bs = (weak_rows // org.rows) * nsub + (weak_rows % org.rows) // S
        per_row = (first[row_bs + 1] - first[row_bs]) * LINE_BITS
        start = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)

        def intersection_cells(i):
            j = np.searchsorted(start, i, side="right") - 1
            local = i - start[j]
            return weak_rows[j] * B + line[first[row_bs[j]] + local // LINE_BITS] * LINE_BITS + local % LINE_BITS

        return [mle.SimPass(mle.all_cells, cells.R * B, self.p_else),
                mle.SimPass(intersection_cells, int(start[-1]), mle.excess(self.p, self.p_else))]


# ------------------------------------------------------------------ the fit
def _log1m(x):
    """ln(1 - x), -inf at 1."""
    with np.errstate(divide="ignore"):
        return np.log1p(-np.asarray(x, np.float64))


#: Largest number of weak line positions in one column unit the fit's posteriors consider (units
#: with errors; error-free units have exact binomial posteriors); 64-byte line records have one.
#: Restricting q's support keeps the bound valid; the fit notes posterior mass found at the cap.
K_CAP = 64


class _Intersections:
    """emc's log-likelihood bound on the records' sufficient statistics.

    Latent: each row weak (``z_r``, prior ``F_w``) and the number ``k_g`` of weak bitlines of each
    column unit of a (bank, subarray) (512 times its weak line positions, ``Binomial(w / 512, F_l)``;
    shared by the subarray's rows).
    Given them, the errors of (row r, unit g), summed over ``T`` iterations, are
    ``Bin(k T, p) * Bin((w - k) T, p_else)`` (convolution) in a weak row, ``Bin(w T, p_else)`` in
    a strong one. The bound is exact over the row classes and mean-field over the units' ``k``
    (a distribution over ``0..K`` per unit with errors; one exact binomial posterior per
    subarray for the error-free units, which are exchangeable):
    ``ELBO = sum_r ln(F_w e^{A_r} + (1 - F_w) e^{B_r}) + sum_g E_q[ln prior(k_g) - ln q(k_g)]``
    with ``A_r`` the row's expected log-likelihood if weak. Full binomial log-pmfs: no
    separate combinatorial constant. ``theta = (F_l, F_w, p, p_else)``.
    """

    def __init__(self, st) -> None:
        self.st = st
        self.w, self.T = st.w, st.T
        self.m = st.w // LINE_BITS  # line positions per column unit
        self.K = min(self.m, K_CAP)
        self.k = LINE_BITS * np.arange(self.K + 1, dtype=np.float64)  # weak bitlines of a unit
        self.xv, self.rec_xi = np.unique(st.rec_x, return_inverse=True)  # distinct record counts
        self.n_nz = st.nz_group.size
        self.rows_per_rec = st.rec_row
        self.cells = float(st.n_rows) * st.C  # (row, unit) cells

    # ---------------------------------------------------------- log pmfs
    def log_p1(self, p, pe):
        """ln P(x | weak row, k) for the distinct counts x (rows) and k = 0..K (columns)."""
        from scipy import special, stats

        w, T, k = self.w, self.T, self.k
        x = self.xv.astype(np.float64)
        j = np.arange(int(x.max(initial=0)) + 1, dtype=np.float64)
        a = stats.binom.logpmf(j[None, :, None], (k * T)[None, None, :], p)  # (1, J, K)
        b = stats.binom.logpmf((x[:, None] - j[None, :])[:, :, None], ((w - k) * T)[None, None, :], pe)
        ok = (j[None, :] <= x[:, None])[:, :, None]
        return special.logsumexp(np.where(ok, a + b, -np.inf), axis=1)  # (X, K)

    def log_p0(self, pe):
        from scipy import stats

        return stats.binom.logpmf(self.xv, self.w * self.T, pe)

    def log_prior(self, fb):
        from scipy import stats

        return stats.binom.logpmf(self.k / LINE_BITS, self.m, fb)

    # ---------------------------------------------------------- pieces of the bound
    def row_llr(self, theta, pi_nz, ek_bs_zero, lp1=None):
        """(A_r - B_r, B_r) per row given the unit posteriors: ``pi_nz`` (n_nz, K+1) of the units
        with errors, ``ek_bs_zero`` the mean k of an error-free unit of each subarray."""
        st = self.st
        fb, fw, p, pe = theta
        w, T = self.w, self.T
        d = T * (_log1m(p) - _log1m(pe))  # ln P(0 | weak, k) - ln P(0 | strong) per weak bitline
        zero0 = w * T * _log1m(pe)
        lp1 = self.log_p1(p, pe) if lp1 is None else lp1
        lp0 = self.log_p0(pe)
        ek_nz = pi_nz @ self.k
        ek_bs = ek_bs_zero * st.zero_per_bs + np.bincount(st.nz_bs, weights=ek_nz, minlength=st.n_bs)
        m = pi_nz @ lp1.T  # (n_nz, X): E_q ln P(x | weak, k) per unit with errors and count value
        e1 = m[st.rec_nz, self.rec_xi]
        corr = e1 - d * ek_nz[st.rec_nz] - lp0[self.rec_xi]
        llr = d * ek_bs[st.row_bs] + np.bincount(st.rec_row, weights=corr, minlength=st.n_rows)
        b = st.C * zero0 + np.bincount(st.rec_row, weights=lp0[self.rec_xi] - zero0, minlength=st.n_rows)
        return llr, b

    def unit_terms(self, fb, pi_nz, fbz):
        """sum over units of E_q[ln prior(k) - ln q(k)]."""
        from scipy import special

        lpr = self.log_prior(fb)
        with np.errstate(divide="ignore", invalid="ignore"):
            nz = float(np.sum(special.xlogy(pi_nz, pi_nz) * -1.0 + pi_nz * np.where(np.isfinite(lpr), lpr, -1e300)))
        # error-free units: q = Binomial(m, fbz) weak lines per subarray -> -m KL(Bern(fbz) || Bern(fb))
        kl = special.rel_entr(fbz, fb) + special.rel_entr(1.0 - fbz, 1.0 - fb)
        return nz - float(np.sum(self.st.zero_per_bs * self.m * kl))

    def elbo(self, theta, pi_nz, fbz, rows=None) -> float:
        fb, fw = theta[0], theta[1]
        llr, b = self.row_llr(theta, pi_nz, self.w * fbz) if rows is None else rows  # E k = 512 m fbz = w fbz
        r = np.logaddexp(mle.log(fw) + llr, mle.log(1.0 - fw)) + b
        return float(np.sum(r)) + self.unit_terms(fb, pi_nz, fbz)

    # ---------------------------------------------------------- coordinate steps
    def unit_step(self, theta, rho, lp1=None):
        """Optimal unit posteriors given the row posteriors ``rho``: (pi_nz, fbz per subarray)."""
        from scipy import special

        st = self.st
        fb, _, p, pe = theta
        T = self.T
        d = T * (_log1m(p) - _log1m(pe))
        rho_bs = np.bincount(st.row_bs, weights=rho, minlength=st.n_bs)
        # error-free units: ln q(j lines) = ln Bin(j; m, fb) + 512 j d sum_rho -> Binomial(m, fbz)
        fbz = special.expit(special.logit(fb) + LINE_BITS * d * rho_bs) if 0 < fb < 1 else np.full(st.n_bs, fb)
        lp1 = self.log_p1(p, pe) if lp1 is None else lp1
        lp0 = self.log_p0(pe)
        # units with errors: + sum over their records of rho_r (ln P1(x|k) - ln P1(0|k) restricted)
        wx = np.zeros((self.n_nz, self.xv.size))
        np.add.at(wx, (st.rec_nz, self.rec_xi), rho[st.rec_row])
        zero_k = d * self.k  # ln P1(0|k) - ln P0(0)
        rec_rho = np.bincount(st.rec_nz, weights=rho[st.rec_row], minlength=self.n_nz)
        logit = (self.log_prior(fb)[None, :] + (rho_bs[st.nz_bs] - rec_rho)[:, None] * zero_k[None, :]
                 + wx @ (lp1 - lp0[:, None]))
        logit = np.where(np.isfinite(logit), logit, -np.inf)
        pi = np.exp(logit - special.logsumexp(logit, axis=1, keepdims=True))
        return pi, fbz

    def theta_step(self, theta, rho, pi_nz, fbz):
        """Maximise the bound over theta given the posteriors (F_b, F_w closed form; p, p_else
        numerically on the sufficient statistics)."""
        from scipy import optimize, special

        st = self.st
        w, T = self.w, self.T
        ek_nz = pi_nz @ self.k
        ek_sum = float(np.sum(st.zero_per_bs * w * fbz) + ek_nz.sum())
        fb = ek_sum / (st.n_groups * w)
        fw = float(rho.mean())
        # expected weak-bitline count over weak rows, over all cells and over the records' cells
        ek_bs = w * fbz * st.zero_per_bs + np.bincount(st.nz_bs, weights=ek_nz, minlength=st.n_bs)
        rk_all = float(rho @ ek_bs[st.row_bs])
        rr = rho[st.rec_row]
        rk_rec = float(rr @ ek_nz[st.rec_nz])
        wk = np.zeros((self.xv.size, self.K + 1))  # sum over records with count x of rho pi(k)
        np.add.at(wk, self.rec_xi, rr[:, None] * pi_nz[st.rec_nz])
        w0 = np.bincount(self.rec_xi, weights=1.0 - rr, minlength=self.xv.size)
        n_zero_cells = self.cells - st.rec_x.size

        def q(p, pe):
            if not (0.0 <= pe <= p <= 1.0):
                return -np.inf
            d = T * (_log1m(p) - _log1m(pe))
            zero = n_zero_cells * w * T * _log1m(pe) + d * (rk_all - rk_rec)
            lp1 = self.log_p1(p, pe)
            with np.errstate(invalid="ignore"):
                rec = float(np.sum(np.where(wk > 0, wk * lp1, 0.0)) + w0 @ self.log_p0(pe))
            return float(zero + rec)

        p0, pe0 = float(theta[2]), float(theta[3])

        def neg(z):
            p, pe = special.expit(z)
            return -q(float(p), float(min(pe, p)))

        z0 = special.logit(np.clip([p0, pe0], 1e-12, 1 - 1e-12))
        res = optimize.minimize(neg, z0, method="Nelder-Mead",
                                options={"xatol": 1e-7, "fatol": 1e-6, "maxiter": 400})
        p, pe = (float(v) for v in special.expit(res.x))
        if -res.fun < q(p0, pe0):
            p, pe = p0, pe0
        return np.array([fb, fw, p, min(pe, p)])

    def run(self, theta, rho, max_iter=200, tol=1e-9):
        """Coordinate ascent from (theta, rho): units, theta, rows, until the bound stalls."""
        from scipy import special

        theta = np.array(theta, np.float64)
        ll = -np.inf
        pi, fbz = self.unit_step(theta, rho)
        for _ in range(max_iter):
            theta = self.theta_step(theta, rho, pi, fbz)
            lp1 = self.log_p1(theta[2], theta[3])
            llr, _ = self.row_llr(theta, pi, self.w * fbz, lp1)
            rho = special.expit(special.logit(theta[1]) + llr) if 0 < theta[1] < 1 else np.full_like(rho, theta[1])
            pi, fbz = self.unit_step(theta, rho, lp1)
            new = self.elbo(theta, pi, fbz)
            done = new - ll <= tol * max(1.0, abs(new))
            ll = max(ll, new)
            if done:
                break
        return ll, theta, rho, pi, fbz


def _fit(cls, st, confidence: float) -> mle.CandidateFit:
    fit = _Intersections(st)
    ber = st.errors / st.trials
    # starts: rows with errors weak; the error-holding units' weak bitlines from their counts
    rows_with = st.row_z > 0
    rho0 = np.where(rows_with, 0.99, 1e-3)
    fw0 = float(np.clip(rows_with.mean(), 1e-6, 1 - 1e-6))
    runs = []
    for p0 in (0.01, 0.002):
        # weak line positions such that the errors in weak rows come out
        fb0 = float(np.clip(ber / max(fw0 * p0, 1e-300), 1e-6, 0.5))
        theta0 = np.array([fb0, fw0, p0, min(ber * 1e-2, p0)])
        runs.append(fit.run(theta0, rho0))
    ll, theta, rho, pi, fbz = max(runs, key=lambda r: r[0])
    fb, fw, p, pe = (float(v) for v in theta)
    def fn(t):
        t = np.asarray(t, np.float64)
        if not (0 <= t[3] <= t[2] <= 1 and 0 <= t[0] <= 1 and 0 <= t[1] <= 1):
            return -np.inf
        return fit.elbo(t, pi, fbz)

    names = ("emc.line_fraction", "emc.wl_fraction", "emc.p", "emc.p_else")
    est = mle.estimates(names, theta, fn, confidence)
    cap_mass = float(pi[:, -1].max(initial=0.0)) if fit.K < fit.m else 0.0
    notes = [("log-likelihood is a variational lower bound (exact over row classes, mean-field over the "
              "weak line positions of each column unit); intervals are conditional on the fitted "
              "posteriors of the column units"),
             ("weak cells are whole 64-byte line positions of weak rows, each cell failing independently "
              "with p per access: errors per faulty line are Binomial(512, p) given one")]
    if cap_mass > 1e-6:
        notes.append(f"some column unit's posterior puts {cap_mass:.3g} of its mass at the cap of {fit.K} weak "
                     "line positions (K_CAP): the bound is looser there")
    component = cls(line_fraction=mle.clip01(fb), wl_fraction=mle.clip01(fw), p=mle.clip01(p),
                    p_else=mle.clip01(min(pe, p)))
    return mle.CandidateFit((component,), float(ll), est, tuple(notes), tuple(float(v) for v in theta))

