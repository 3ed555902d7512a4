"""eml: per-access line events, a fixed group of bits of a weak line failing together.

Fixed maps (per device seed): a ``wl_fraction`` of the rows, a ``line_fraction`` of the 64-byte
line positions (512 bitlines, ``LINE_BITS``) of each (bank, subarray), and a fixed *member* set of
bitlines of each (bank, subarray), each bitline a member with ``bit_fraction`` (so a weak line
position holds ``Binomial(512, bit_fraction)`` members; every map nested in its fraction). A
*weak tile-line* is a weak line position in a weak row. On every access each weak tile-line has
an *event* with probability ``e``, independently, and an event flips every member bit of that
line at once; every cell also fails on its own with ``p_else`` (background).

This is the structure of the DIVA DDR3 records (docs/fits-clustering.md): per sweep a faulty line
holds 1-3 errors (background) or exactly the same group of errors, and the second sweep's errors
fall in the rows that failed in the first but mostly in other lines of them, which no model of
independently failing cells (em1+em2, emc) reproduces.

Engine: one all-cell sub-pass at ``p_else`` and one line-event pass (:class:`LineEventPass`;
``eden/engine/events.py``). The weak line positions are the weak-bitline streams of em1 drawn
over the line positions (as emc's), the weak rows em2's, both keyed per component.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import (Component, LineEventPass, SubPass, WeakLines, fraction_param,
                                        rate_param)
from eden.errors import EdenConfigError

#: Bits of a 64-byte line position (a DDR burst of BL8 on a 64-bit bus).
LINE_BITS = 512


@dataclasses.dataclass(frozen=True)
class LineEvents(Component):
    """EML: per-access events that flip a fixed group of bits of a weak 64-byte line."""

    kind = "eml"
    weak_lines = WeakLines.BOTH
    bitline_block = LINE_BITS
    line_fraction: float = fraction_param("fraction of the 64-byte line positions (512 bitlines) of each "
                                          "(bank, subarray) that are weak")
    wl_fraction: float = fraction_param("fraction of the rows that are weak")
    bit_fraction: float = fraction_param("fraction of the bitlines of each (bank, subarray) that are event "
                                         "members (a weak line flips its members together)")
    e: float = rate_param("probability per access of an event at a weak line position of a weak row")
    p_else: float = rate_param("flip probability of every cell on its own (background)")

    def weak_fractions(self):
        return {WeakLines.BITLINES: self.line_fraction, WeakLines.WORDLINES: self.wl_fraction}

    def rate_table(self, weak_bitline, weak_wordline):
        # a cell of a weak line in a weak row is a member with bit_fraction (the marginal rate)
        r = self.p_else
        if weak_bitline and weak_wordline:
            r = mle.union(self.p_else, self.bit_fraction * self.e)
        return (r, r)

    def sub_passes(self):
        pe = self.p_else
        return (SubPass(((pe, pe), (pe, pe))),)

    def line_events(self):
        return (LineEventPass(self.e, self.bit_fraction),)

    def events_per_faulty_line(self) -> float:
        """Mean members of a weak line position given at least one (what one event flips)."""
        n, f = LINE_BITS, self.bit_fraction
        return n * f / (1.0 - (1.0 - f) ** n) if f > 0 else 0.0

    # ------------------------------------------------------------------ simulation
    def simulation_passes(self, cells, rng):
        """Background at ``p_else`` over every cell, and one event pass over the weak tile-lines
        whose failure flips the line's members (:class:`eden.errormodels.fitting.SimPass` with
        ``members``). The maps are drawn with NumPy (same statistics as the engine's)."""
        org, B, S, nsub = cells.org, cells.B, cells.S, cells.nsub
        if B % LINE_BITS:
            raise EdenConfigError(f"eml needs rows of whole {LINE_BITS}-bit lines, got {B} bits per row")
        nl = B // LINE_BITS
        n_bs = org.banks * nsub
        weak_rows = np.flatnonzero(rng.random(cells.R) < self.wl_fraction)
        weak = np.flatnonzero(rng.random(n_bs * nl) < self.line_fraction)  # (group, position) ids
        member = rng.random((n_bs, B)) < self.bit_fraction if n_bs * B <= 1 << 27 else None
        if member is None:
            raise EdenConfigError(f"eml simulation: {n_bs * B} bitlines of member map is too large; use a smaller "
                                  "organization")
        bs_of, line = weak // nl, weak % nl
        first = np.searchsorted(bs_of, np.arange(n_bs + 1))  # weak lines of each group
        row_bs = (weak_rows // org.rows) * nsub + (weak_rows % org.rows) // S
        per_row = first[row_bs + 1] - first[row_bs]
        start = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)

        def members(i):
            """(cell ids, owner index into i) of the member bits of weak tile-lines i."""
            j = np.searchsorted(start, i, side="right") - 1
            w = first[row_bs[j]] + (i - start[j])  # weak line entry
            g, pos = bs_of[w], line[w]
            m = member[g[:, None], pos[:, None] * LINE_BITS + np.arange(LINE_BITS)[None, :]]
            owner, bit = np.nonzero(m)
            return weak_rows[j[owner]] * B + pos[owner] * LINE_BITS + bit, owner

        return [mle.SimPass(mle.all_cells, cells.R * B, self.p_else),
                mle.SimPass(None, int(start[-1]), self.e, members=members)]

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_exclusion(cls, data):
        if data.w != LINE_BITS:
            return (f"not identifiable: the records are per {data.w}-bit unit, not per {LINE_BITS}-bit line (a line "
                    "event's group of errors must be one record)")
        return None

    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Variational EM (:class:`_Events`); the log-likelihood is a lower bound."""
        return _fit(cls, data, confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        """One draw of (errors per row, errors per column unit) for the goodness of fit: weak rows,
        weak line positions and their member counts, then per (weak row, weak line of its
        subarray) the events of the T accesses; background on the other bit-trials."""
        (c,) = components
        st = data
        T, w = st.T, st.w
        row_weak = np.flatnonzero(rng.random(st.n_rows) < c.wl_fraction)
        k = np.where(rng.random(st.n_groups) < c.line_fraction, rng.binomial(LINE_BITS, c.bit_fraction, st.n_groups), 0)
        lines = np.flatnonzero(k > 0)  # sorted: grouped by subarray
        first = np.searchsorted(lines // st.C, np.arange(st.n_bs + 1))
        per_row = first[st.row_bs[row_weak] + 1] - first[st.row_bs[row_weak]]
        r = np.repeat(row_weak, per_row)
        at = np.repeat(first[st.row_bs[row_weak]] - np.concatenate([[0], np.cumsum(per_row)[:-1]]), per_row)
        g = lines[at + np.arange(int(per_row.sum()))]
        flips = rng.binomial(T, c.e, len(g)) * k[g]  # event bits of each (weak row, weak line) pair
        ev_rows = np.bincount(r, weights=flips, minlength=st.n_rows).astype(np.int64)
        ev_cols = np.bincount(g, weights=flips, minlength=st.n_groups).astype(np.int64)
        rows = ev_rows + rng.binomial(st.C * w * T - ev_rows, c.p_else)
        cols = ev_cols + rng.binomial(np.repeat(st.rows_in_bs, st.C) * w * T - ev_cols, c.p_else)
        return rows, cols


# ------------------------------------------------------------------ the fit
def _log1m(x):
    with np.errstate(divide="ignore"):
        return np.log1p(-np.asarray(x, np.float64))


#: Largest member count of a weak line the fit's posteriors consider (the prior's mass above it is
#: left out: the bound stays valid; the fit notes posterior mass found at the cap).
K_CAP = 64


class _Events:
    """eml's log-likelihood bound on the records' sufficient statistics (64-byte line records).

    Latent: each row weak (``z_r``, prior ``F_w``), and the member count ``k_g`` of each line
    position g of a (bank, subarray) (0 unless weak: prior ``(1 - F_l) [k = 0] + F_l Bin(k; 512, f)``),
    shared by the subarray's rows. Given them, the errors of (row r, unit g) summed over ``T``
    accesses are, in a weak row, ``sum_j Bin(j; T, e) Bin(x - j k; 512 T - j k, p_else)`` (``j``
    events, each flipping the ``k`` members; background on the other cells) and
    ``Bin(x; 512 T, p_else)`` in a strong row. The bound is exact over the row classes and
    mean-field over the units' ``k`` (one exact posterior per subarray for the error-free units,
    which are exchangeable: they only learn whether ``k > 0``):
    ``ELBO = sum_r ln(F_w e^{A_r} + (1 - F_w) e^{B_r}) + sum_g E_q[ln prior(k_g) - ln q(k_g)]``.
    Full binomial log-pmfs. ``theta = (F_l, F_w, f, e, p_else)``.
    """

    def __init__(self, st) -> None:
        self.st = st
        self.T = st.T
        self.K = K_CAP
        self.k = np.arange(self.K + 1, dtype=np.float64)
        self.pos = (self.k > 0).astype(np.float64)  # [k > 0]
        self.xv, self.rec_xi = np.unique(st.rec_x, return_inverse=True)
        self.n_nz = st.nz_group.size
        self.cells = float(st.n_rows) * st.C

    def per_unit_count(self, weights):
        """Sparse (units with errors, distinct counts) sums of ``weights`` over the records."""
        from scipy import sparse

        return sparse.csr_matrix((weights, (self.st.rec_nz, self.rec_xi)), shape=(self.n_nz, self.xv.size))

    def log_p1(self, e, pe):
        """ln P(x | weak row, k) for the distinct counts x (rows) and k = 0..K (columns)."""
        from scipy import special, stats

        T, k = self.T, self.k
        x = self.xv.astype(np.float64)[:, None]
        terms = []
        for j in range(T + 1):
            lj = stats.binom.logpmf(j, T, e)
            terms.append(lj + stats.binom.logpmf(x - j * k[None, :], LINE_BITS * T - j * k[None, :], pe))
        return special.logsumexp(np.stack(terms), axis=0)

    def log_p0(self, pe):
        from scipy import stats

        return stats.binom.logpmf(self.xv, LINE_BITS * self.T, pe)

    def log_prior(self, fl, f):
        from scipy import stats

        lp = mle.log(fl) + stats.binom.logpmf(self.k, LINE_BITS, f)
        lp[0] = np.logaddexp(mle.log(1.0 - fl), lp[0])
        return lp

    def d1(self, e):
        """ln P1(0 | k > 0) - ln P0(0): no event in T accesses."""
        return self.T * float(_log1m(e))

    def row_llr(self, theta, pi, rz_bs_zero, lp1=None):
        """(A_r - B_r, B_r) per row given the unit posteriors (``pi`` of the units with errors,
        ``rz_bs_zero`` the probability ``k > 0`` of an error-free unit of each subarray)."""
        st = self.st
        _, _, _, e, pe = theta
        d = self.d1(e)
        zero0 = LINE_BITS * self.T * float(_log1m(pe))
        lp1 = self.log_p1(e, pe) if lp1 is None else lp1
        lp0 = self.log_p0(pe)
        pz = pi @ self.pos
        pz_bs = rz_bs_zero * st.zero_per_bs + np.bincount(st.nz_bs, weights=pz, minlength=st.n_bs)
        m = pi @ lp1.T
        corr = m[st.rec_nz, self.rec_xi] - d * pz[st.rec_nz] - lp0[self.rec_xi]
        llr = d * pz_bs[st.row_bs] + np.bincount(st.rec_row, weights=corr, minlength=st.n_rows)
        b = st.C * zero0 + np.bincount(st.rec_row, weights=lp0[self.rec_xi] - zero0, minlength=st.n_rows)
        return llr, b

    def unit_terms(self, theta, pi, rz):
        """sum over units of E_q[ln prior(k) - ln q(k)]."""
        from scipy import special

        lpr = self.log_prior(theta[0], theta[2])
        with np.errstate(divide="ignore", invalid="ignore"):
            nz = float(np.sum(-special.xlogy(pi, pi) + pi * np.where(np.isfinite(lpr), lpr, -1e300)))
        # error-free units: q(k > 0) = rz, q(k | k > 0) = prior(k | k > 0): -KL(Bern(rz) || Bern(prior k > 0))
        p_pos = float(-np.expm1(lpr[0])) if np.isfinite(lpr[0]) else 1.0
        kl = special.rel_entr(rz, p_pos) + special.rel_entr(1.0 - rz, 1.0 - p_pos)
        return nz - float(np.sum(self.st.zero_per_bs * kl))

    def elbo(self, theta, pi, rz) -> float:
        llr, b = self.row_llr(theta, pi, rz)
        r = np.logaddexp(mle.log(theta[1]) + llr, mle.log(1.0 - theta[1])) + b
        return float(np.sum(r)) + self.unit_terms(theta, pi, rz)

    def unit_step(self, theta, rho, lp1=None):
        """Optimal unit posteriors given the row posteriors ``rho``: (pi of units with errors,
        q(k > 0) of the error-free units of each subarray)."""
        from scipy import special

        st = self.st
        fl, _, f, e, pe = theta
        d = self.d1(e)
        rho_bs = np.bincount(st.row_bs, weights=rho, minlength=st.n_bs)
        lpr = self.log_prior(fl, f)
        p_pos = float(-np.expm1(lpr[0])) if np.isfinite(lpr[0]) else 1.0
        if 0.0 < p_pos < 1.0:
            rz = special.expit(special.logit(p_pos) + d * rho_bs)
        else:
            rz = np.full(st.n_bs, p_pos)
        lp1 = self.log_p1(e, pe) if lp1 is None else lp1
        lp0 = self.log_p0(pe)
        wx = self.per_unit_count(rho[st.rec_row])
        rec_rho = np.bincount(st.rec_nz, weights=rho[st.rec_row], minlength=self.n_nz)
        logit = (lpr[None, :] + (rho_bs[st.nz_bs] - rec_rho)[:, None] * (d * self.pos)[None, :]
                 + np.asarray(wx @ (lp1 - lp0[:, None])))
        logit = np.where(np.isfinite(logit), logit, -np.inf)
        pi = np.exp(logit - special.logsumexp(logit, axis=1, keepdims=True))
        return pi, rz

    def theta_step(self, theta, rho, pi, rz):
        """Maximise the bound over theta given the posteriors (F_w closed form; (F_l, f) and
        (e, p_else) numerically on the expected statistics)."""
        from scipy import optimize, special

        st = self.st
        T = self.T
        fw = float(rho.mean())
        # prior part: expected histogram of k (error-free units: q(k | k > 0) = the current prior's)
        lpr_old = self.log_prior(theta[0], theta[2])
        cond = np.exp(lpr_old[1:] - special.logsumexp(lpr_old[1:])) if np.isfinite(lpr_old[1:]).any() \
            else np.zeros(self.K)
        h = pi.sum(axis=0)
        h[1:] += float(np.sum(st.zero_per_bs * rz)) * cond
        h[0] += float(np.sum(st.zero_per_bs * (1.0 - rz)))

        def neg_prior(z):
            fl, f = special.expit(z)
            lp = self.log_prior(fl, f)
            return -float(np.sum(np.where(h > 0, h * lp, 0.0)))

        z0 = special.logit(np.clip([theta[0], theta[2]], 1e-9, 1 - 1e-9))
        res = optimize.minimize(neg_prior, z0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-8,
                                                                               "maxiter": 400})
        fl, f = (float(v) for v in special.expit(res.x))
        if res.fun > neg_prior(z0):
            fl, f = float(theta[0]), float(theta[2])
        # likelihood part
        pz = pi @ self.pos
        pz_bs = rz * st.zero_per_bs + np.bincount(st.nz_bs, weights=pz, minlength=st.n_bs)
        rk_all = float(rho @ pz_bs[st.row_bs])
        rr = rho[st.rec_row]
        rk_rec = float(rr @ pz[st.rec_nz])
        wk = np.asarray(self.per_unit_count(rr).T @ pi)  # sum over records with count x of rho pi(k)
        w0 = np.bincount(self.rec_xi, weights=1.0 - rr, minlength=self.xv.size)
        n_zero_cells = self.cells - st.rec_x.size

        def q(e, pe):
            if not (0.0 <= e <= 1.0 and 0.0 <= pe <= 1.0):
                return -np.inf
            zero = n_zero_cells * LINE_BITS * T * float(_log1m(pe)) + self.d1(e) * (rk_all - rk_rec)
            lp1 = self.log_p1(e, pe)
            with np.errstate(invalid="ignore"):
                rec = float(np.sum(np.where(wk > 0, wk * lp1, 0.0)) + w0 @ self.log_p0(pe))
            return float(zero + rec)

        def neg(z):
            e, pe = special.expit(z)
            return -q(float(e), float(pe))

        z0 = special.logit(np.clip([theta[3], theta[4]], 1e-12, 1 - 1e-12))
        res = optimize.minimize(neg, z0, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-6, "maxiter": 400})
        e, pe = (float(v) for v in special.expit(res.x))
        if -res.fun < q(float(theta[3]), float(theta[4])):
            e, pe = float(theta[3]), float(theta[4])
        return np.array([fl, fw, f, e, pe])

    def run(self, theta, rho, max_iter=200, tol=1e-9):
        from scipy import special

        theta = np.array(theta, np.float64)
        ll = -np.inf
        pi, rz = self.unit_step(theta, rho)
        for _ in range(max_iter):
            theta = self.theta_step(theta, rho, pi, rz)
            lp1 = self.log_p1(theta[3], theta[4])
            llr, _ = self.row_llr(theta, pi, rz, lp1)
            rho = special.expit(special.logit(theta[1]) + llr) if 0 < theta[1] < 1 else np.full_like(rho, theta[1])
            pi, rz = self.unit_step(theta, rho, lp1)
            new = self.elbo(theta, pi, rz)
            done = new - ll <= tol * max(1.0, abs(new))
            ll = max(ll, new)
            if done:
                break
        return ll, theta, rho, pi, rz


def _fit(cls, st, confidence: float) -> mle.CandidateFit:
    fit = _Events(st)
    ber = st.errors / st.trials
    rows_with = st.row_z > 0
    rho0 = np.where(rows_with, 0.99, 1e-3)
    fw0 = float(np.clip(rows_with.mean(), 1e-6, 1 - 1e-6))
    runs = []
    for f0, e0 in ((7.0 / LINE_BITS, 0.3), (3.0 / LINE_BITS, 0.1)):
        fl0 = float(np.clip(ber / max(fw0 * f0 * e0, 1e-300), 1e-6, 0.5))
        theta0 = np.array([fl0, fw0, f0, e0, ber * 1e-2])
        runs.append(fit.run(theta0, rho0))
    ll, theta, rho, pi, rz = max(runs, key=lambda r: r[0])

    def fn(t):
        t = np.asarray(t, np.float64)
        if not np.all((t >= 0) & (t <= 1)):
            return -np.inf
        return fit.elbo(t, pi, rz)

    names = ("eml.line_fraction", "eml.wl_fraction", "eml.bit_fraction", "eml.e", "eml.p_else")
    est = mle.estimates(names, theta, fn, confidence)
    cap_mass = float(pi[:, -1].max(initial=0.0))
    notes = [("log-likelihood is a variational lower bound (exact over row classes, mean-field over the "
              "member count of each line position); intervals are conditional on the fitted posteriors of the "
              "line positions"),
             ("a weak line of a weak row has an event with probability e per access that flips all its members "
              "(Binomial(512, bit_fraction) of them, fixed per line position); other cells fail with p_else")]
    if cap_mass > 1e-6:
        notes.append(f"some line position's posterior puts {cap_mass:.3g} of its mass at the cap of {fit.K} members "
                     "(K_CAP): the bound is looser there")
    fl, fw, f, e, pe = (mle.clip01(float(v)) for v in theta)
    component = cls(line_fraction=fl, wl_fraction=fw, bit_fraction=f, e=e, p_else=pe)
    return mle.CandidateFit((component,), float(ll), est, tuple(notes), tuple(float(v) for v in theta))
