"""emg: grouped line events, per-access events that each flip a fixed group of bits of one slot.

The DIVA DDR3 records (docs/fits-clustering.md, docs/line-events.md) show more structure than one
group per line: a faulty line holds a whole multiple of one group size, ``K * N`` errors (``N``
events in that line and sweep: 1 in 80% of faulty lines, 2 in 15%, up to 4-5), and the group size
is a property of the row: ``K = 7`` in one set of rows and ``K = 1`` in the other, never mixed (the
two sets alternate in blocks of 128 rows, as true- and anti-cell regions do). eml, with one group
of ``Binomial(512, f)`` members per line position, predicts about 3.4 errors per faulty line where
the data show 4.6.

Model (fixed maps per device seed, each nested in its fraction):

* a ``wl_fraction`` of the rows are weak; a ``hi_fraction`` share of them (by the same row
  uniform, so the two shares are disjoint) have groups of ``group_hi`` bits, the rest groups of
  ``group_lo`` bits;
* a ``line_fraction`` of the 64-byte line positions (512 bitlines, ``LINE_BITS``) of each (bank,
  subarray) are weak, and each 8-bitline slot (``SLOT_BITS``: one byte of the line, one x8 chip's
  beat) of a weak position is weak with ``slot_fraction`` (so a weak position has
  ``Binomial(64, slot_fraction)`` weak slots);
* each weak slot has a fixed ranking of its 8 bitlines; a group of ``K`` bits is its first ``K``;
* on every access each weak slot of a weak row has an event with probability ``e``,
  independently, and an event flips the row's group of that slot (``K`` bits, whatever they
  store); every cell also fails on its own with ``p_else`` (background).

The per-line records do not identify which bits of a line a group holds: eden puts each group in
one byte slot (the module's one layout assumption; docs/line-events.md).

Engine: one all-cell sub-pass at ``p_else`` and two grouped line-event passes
(:class:`LineEventPass` with ``slot_bits``; ``eden/engine/plan.py``), one per row share, drawn by
the same kernels as eml's (the plan lists the weak slots as the event blocks). Fit: variational
EM, exact over the three row classes, mean-field over the weak-slot count of each line position;
the two group sizes are the two most frequent error counts of the records (1..8) and are counted
as parameters in the BIC.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import (Component, LineEventPass, SubPass, WeakLines, count_param,
                                        fraction_param, rate_param)
from eden.errors import EdenConfigError

#: Bits of a 64-byte line position (a DDR burst of BL8 on a 64-bit bus).
LINE_BITS = 512
#: Bits of an event slot (one byte of the line: one x8 chip's beat).
SLOT_BITS = 8
#: Slots of a line position.
SLOTS = LINE_BITS // SLOT_BITS


@dataclasses.dataclass(frozen=True)
class GroupedLineEvents(Component):
    """EMG: per-access events that flip a fixed group of bits of a weak slot of a weak line."""

    kind = "emg"
    weak_lines = WeakLines.BOTH
    bitline_block = LINE_BITS
    line_fraction: float = fraction_param("fraction of the 64-byte line positions (512 bitlines) of each "
                                          "(bank, subarray) that are weak")
    wl_fraction: float = fraction_param("fraction of the rows that are weak")
    hi_fraction: float = fraction_param("share of the weak rows whose groups have group_hi bits (the rest: "
                                        "group_lo)", 1.0)
    dense_fraction: float = fraction_param("share of the weak line positions that are dense (their slots weak "
                                           "with dense_slot_fraction)")
    slot_fraction: float = fraction_param("fraction of the 8-bit slots of a weak line position that are weak")
    dense_slot_fraction: float = fraction_param("fraction of the 8-bit slots of a dense weak line position that are "
                                                "weak")
    group_hi: int = count_param("bits an event flips in a slot of a group_hi row (1..8)", 1, SLOT_BITS, 7)
    group_lo: int = count_param("bits an event flips in a slot of a group_lo row (1..8)", 1, SLOT_BITS, 1)
    e: float = rate_param("probability per access of an event at a weak slot of a weak row (flips its group)")
    e_line: float = rate_param("probability per access of a line event at a weak line position of a weak row (flips "
                               "the groups of all its weak slots)")
    p_else: float = rate_param("flip probability of every cell on its own (background)")

    def weak_fractions(self):
        return {WeakLines.BITLINES: self.line_fraction, WeakLines.WORDLINES: self.wl_fraction}

    def mean_group(self) -> float:
        """Mean group size over the weak rows."""
        return self.hi_fraction * self.group_hi + (1.0 - self.hi_fraction) * self.group_lo

    def mean_slot_fraction(self) -> float:
        """Fraction of the slots of a weak line position that are weak, over both kinds of position."""
        return self.dense_fraction * self.dense_slot_fraction + (1.0 - self.dense_fraction) * self.slot_fraction

    def rate_table(self, weak_bitline, weak_wordline):
        # a cell of a weak line in a weak row: in a weak slot with slot_fraction, then in its row's
        # group with K / 8 (the marginal rate over the two row shares)
        r = self.p_else
        if weak_bitline and weak_wordline:
            r = mle.union(self.p_else, self.mean_slot_fraction() * self.mean_group() / SLOT_BITS
                          * mle.union(self.e, self.e_line))
        return (r, r)

    def sub_passes(self):
        pe = self.p_else
        return (SubPass(((pe, pe), (pe, pe))),)

    def line_events(self):
        h = self.hi_fraction
        dense = (self.dense_fraction, self.dense_slot_fraction)
        return tuple(LineEventPass(rate, slot_bits=SLOT_BITS, slot_fraction=self.slot_fraction, members=K, rows=rows,
                                   dense=dense, whole_block=whole)
                     for K, rows in ((self.group_hi, (0.0, h)), (self.group_lo, (h, 1.0)))
                     for rate, whole in ((self.e, False), (self.e_line, True)))

    def slot_count_prior(self) -> np.ndarray:
        """P(S = 0..64): the weak slots of a line position (0 unless weak; sparse or dense)."""
        from scipy import stats

        S = np.arange(SLOTS + 1)
        p = self.line_fraction * ((1.0 - self.dense_fraction) * stats.binom.pmf(S, SLOTS, self.slot_fraction)
                                  + self.dense_fraction * stats.binom.pmf(S, SLOTS, self.dense_slot_fraction))
        p[0] += 1.0 - self.line_fraction
        return p

    def events_per_faulty_line(self) -> float:
        """Mean event errors of a weak line position of a weak row given at least one event in one
        access: ``K * E[N | N > 0]`` with ``N = S`` on a line event (``e_line``), else
        ``Binomial(S, e)``, over the slot counts ``S`` of :meth:`slot_count_prior` (background left
        out)."""
        S = np.arange(SLOTS + 1, dtype=np.float64)
        p = self.slot_count_prior()
        n = float(p @ S) * (self.e_line + (1.0 - self.e_line) * self.e)
        p_any = float(p[1:] @ (self.e_line + (1.0 - self.e_line) * -np.expm1(S[1:] * np.log1p(-min(self.e, 1 - 1e-16)))))
        return float(self.mean_group() * n / p_any) if p_any > 0 else 0.0

    # ------------------------------------------------------------------ simulation
    def _maps(self, org, B, S, nsub, R, rng):
        """NumPy draws of the maps (same statistics as the engine's): the weak rows of each share,
        and per (bank, subarray) the weak slots (row positions of their first bit) and rankings."""
        if B % LINE_BITS:
            raise EdenConfigError(f"emg needs rows of whole {LINE_BITS}-bit lines, got {B} bits per row")
        nl = B // LINE_BITS
        n_bs = org.banks * nsub
        u = rng.random(R)
        rows = (np.flatnonzero(u < self.wl_fraction * self.hi_fraction),
                np.flatnonzero((u >= self.wl_fraction * self.hi_fraction) & (u < self.wl_fraction)))
        up = rng.random(n_bs * nl)
        weak_pos = up < self.line_fraction
        frac = np.where(up < self.line_fraction * self.dense_fraction, self.dense_slot_fraction, self.slot_fraction)
        slot = (rng.random((n_bs * nl, SLOTS)) < frac[:, None]) & weak_pos[:, None]
        w = np.flatnonzero(slot.ravel())  # (group, position, slot) ids, sorted
        bs_of = w // (nl * SLOTS)
        start_bit = (w % (nl * SLOTS)) * SLOT_BITS
        rank = np.argsort(rng.random((w.size, SLOT_BITS)), axis=1)
        first = np.searchsorted(bs_of, np.arange(n_bs + 1))
        # lines with weak slots: their slot entries are contiguous in w
        lines, line_start = np.unique(w // SLOTS, return_index=True)
        line_start = np.append(line_start, w.size).astype(np.int64)
        first_line = np.searchsorted(lines // nl, np.arange(n_bs + 1))
        return rows, start_bit, rank, first, line_start, first_line

    def simulation_passes(self, cells, rng):
        """Background at ``p_else`` over every cell and, per row share, two event passes: over its
        (weak row, weak slot) pairs, whose failure flips the row's group of the slot, and over its
        (weak row, line with weak slots) pairs, whose failure flips the groups of all the line's weak
        slots (:class:`eden.errormodels.fitting.SimPass` with ``members``)."""
        org, B, S, nsub = cells.org, cells.B, cells.S, cells.nsub
        rows, start_bit, rank, first, line_start, first_line = self._maps(org, B, S, nsub, cells.R, rng)
        passes = [mle.SimPass(mle.all_cells, cells.R * B, self.p_else)]
        for weak_rows, K in zip(rows, (self.group_hi, self.group_lo)):
            row_bs = (weak_rows // org.rows) * nsub + (weak_rows % org.rows) // S
            for rate, fst, size in ((self.e, first, None), (self.e_line, first_line, np.diff(line_start))):
                per_row = fst[row_bs + 1] - fst[row_bs]
                start = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)

                def members(i, weak_rows=weak_rows, row_bs=row_bs, start=start, K=K, fst=fst, size=size):
                    j = np.searchsorted(start, i, side="right") - 1
                    w = fst[row_bs[j]] + (i - start[j])  # weak slot (or line) entry
                    if size is not None:  # a line: all its weak slots
                        n = size[w]
                        owner = np.repeat(np.arange(len(i)), n)
                        w = np.repeat(line_start[w] - np.concatenate([[0], np.cumsum(n)[:-1]]), n) + np.arange(int(n.sum()))
                        j = j[owner]
                    else:
                        owner = np.arange(len(i))
                    cell = (weak_rows[j] * B + start_bit[w])[:, None] + rank[w, :K]
                    return cell.ravel(), np.repeat(owner, K)

                passes.append(mle.SimPass(None, int(start[-1]), rate, members=members))
        return passes

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_exclusion(cls, data):
        if data.w != LINE_BITS:
            return (f"not identifiable: the records are per {data.w}-bit unit, not per {LINE_BITS}-bit line (a "
                    "line's groups of errors must be one record)")
        return None

    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Variational EM (:class:`_Groups`); the log-likelihood is a lower bound."""
        return _fit(cls, data, confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        """One draw of (errors per row, errors per column unit) for the goodness of fit: weak rows
        and their shares, weak line positions and their weak-slot counts, then per (weak row, weak
        line of its subarray) the events of the T accesses; background on the other bit-trials."""
        (c,) = components
        st = data
        T, w = st.T, st.w
        u = rng.random(st.n_rows)
        row_weak = np.flatnonzero(u < c.wl_fraction)
        K_row = np.where(u[row_weak] < c.wl_fraction * c.hi_fraction, c.group_hi, c.group_lo)
        up = rng.random(st.n_groups)
        frac = np.where(up < c.line_fraction * c.dense_fraction, c.dense_slot_fraction, c.slot_fraction)
        k = np.where(up < c.line_fraction, rng.binomial(SLOTS, frac), 0)
        lines = np.flatnonzero(k > 0)  # sorted: grouped by subarray
        first = np.searchsorted(lines // st.C, np.arange(st.n_bs + 1))
        per_row = first[st.row_bs[row_weak] + 1] - first[st.row_bs[row_weak]]
        r = np.repeat(row_weak, per_row)
        K = np.repeat(K_row, per_row)
        at = np.repeat(first[st.row_bs[row_weak]] - np.concatenate([[0], np.cumsum(per_row)[:-1]]), per_row)
        g = lines[at + np.arange(int(per_row.sum()))]
        j2 = rng.binomial(T, c.e_line, len(g))  # accesses with a line event: all k[g] groups
        flips = (rng.binomial(k[g] * (T - j2), c.e) + k[g] * j2) * K  # event bits of each (weak row, weak line)
        ev_rows = np.bincount(r, weights=flips, minlength=st.n_rows).astype(np.int64)
        ev_cols = np.bincount(g, weights=flips, minlength=st.n_groups).astype(np.int64)
        rows = ev_rows + rng.binomial(st.C * w * T - ev_rows, c.p_else)
        cols = ev_cols + rng.binomial(np.repeat(st.rows_in_bs, st.C) * w * T - ev_cols, c.p_else)
        return rows, cols


# ------------------------------------------------------------------ the fit
def group_sizes(counts) -> tuple[int, int]:
    """(group_hi, group_lo): the two most frequent error counts in 1..8 of the records (the larger
    first; both the same when one count in 1..8 occurs)."""
    c = np.asarray(counts, np.int64)
    freq = np.bincount(c[(c >= 1) & (c <= SLOT_BITS)], minlength=SLOT_BITS + 1)[1:]
    if not freq.any():
        return SLOT_BITS, 1
    top = [int(i) + 1 for i in np.argsort(-freq, kind="stable")[:2] if freq[i] > 0]
    return (max(top), min(top))


class _Groups:
    """emg's log-likelihood bound on the records' sufficient statistics (64-byte line records).

    Latent: each row's class (strong, ``hi`` or ``lo``; priors ``1 - F_w``, ``F_w h``,
    ``F_w (1 - h)``) and the weak-slot count ``S_g`` of each line position g of a (bank, subarray)
    (prior :meth:`GroupedLineEvents.slot_count_prior`), shared by the subarray's rows. Given
    them, the errors of (row r, unit g) summed over ``T`` accesses are, in a row of group size
    ``K``, ``sum_{j2, j1} Bin(j2; T, e_line) Bin(j1; S (T - j2), e) Bin(x - K (j1 + S j2); 512 T -
    K (j1 + S j2), p_else)`` (``j2`` accesses with a line event, ``j1`` slot events in the others)
    and ``Bin(x; 512 T, p_else)`` in a strong row. The bound is exact over the row classes and
    mean-field over each unit's ``S`` (the error-free units of a subarray are exchangeable and
    share one exact posterior): ``ELBO = sum_r ln sum_c prior_c e^{L_rc} + sum_g E_q[ln prior(S_g)
    - ln q(S_g)]``. Full binomial log-pmfs. ``theta = (F_l, F_w, h, phi, s, s_d, e, e_line,
    p_else)``; the M-step is closed form but for the slot-count prior (``j1``, ``j2`` latent).
    """

    def __init__(self, st, K_hi: int, K_lo: int) -> None:
        from scipy import special

        self.st = st
        self.T = T = st.T
        self.Ks = (int(K_hi), int(K_lo))
        self.S = np.arange(SLOTS + 1, dtype=np.float64)
        self.xv, self.rec_xi = np.unique(st.rec_x, return_inverse=True)
        self.n_nz = st.nz_group.size
        self.pairs = float(st.n_rows) * st.C
        n = LINE_BITS * T
        x = self.xv.astype(np.float64)
        lc = special.gammaln
        self.lp0_const = lc(n + 1) - lc(x + 1) - lc(n - x + 1)
        self.j = np.arange(int(x.max(initial=0) // min(self.Ks)) + 1, dtype=np.float64)
        self.j2 = np.arange(T + 1, dtype=np.float64)
        self.ln_t = lc(T + 1) - lc(self.j2 + 1) - lc(T - self.j2 + 1)
        # per class: ln C(S (T - j2), j1) + ln C(n - K b, x - K b), b = j1 + S j2, over (j2, x, S, j1)
        j2, xx, S, j1 = (a.astype(np.float64) for a in np.meshgrid(self.j2, x, self.S, self.j, indexing="ij"))
        trials = S * (T - j2)
        self.comb = []
        for K in self.Ks:
            b = K * (j1 + S * j2)
            ok = (xx >= b) & (j1 <= trials)
            a = (lc(trials + 1) - lc(j1 + 1) - lc(np.maximum(trials - j1, 0) + 1)
                 + lc(n - b + 1) - lc(np.maximum(xx - b, 0) + 1) - lc(np.maximum(n - xx, 0) + 1))
            self.comb.append(np.where(ok, a, -np.inf))

    @staticmethod
    def _logs(v):
        return float(np.log(max(v, 1e-300))), float(np.log1p(-min(v, 1.0 - 1e-16)))

    def log_p1(self, theta, events: bool = False):
        """ln P(x | class K, S) for the distinct counts x (rows) and S = 0..64 (columns), per class;
        with ``events``, also each class's posterior means E[j1 | x, S] and E[j2 | x, S]."""
        T = self.T
        (le, l1e), (lq, l1q), (lpe, l1pe) = (self._logs(theta[i]) for i in (6, 7, 8))
        x = self.xv.astype(np.float64)
        base = (x * lpe + (LINE_BITS * T - x) * l1pe)[:, None]
        j2, S, j1 = self.j2[:, None, None], self.S[None, :, None], self.j[None, None, :]
        out, e1, e2 = [], [], []
        for K, comb in zip(self.Ks, self.comb):
            lin = (self.ln_t[:, None, None] + j2 * lq + (T - j2) * l1q + j1 * (le - l1e) + S * (T - j2) * l1e
                   - K * (j1 + S * j2) * lpe)  # (j2, S, j1)
            z = comb + lin[:, None, :, :]
            m = z.max(axis=(0, 3))
            mm = np.where(np.isfinite(m), m, 0.0)
            w = np.exp(z - mm[None, :, :, None])
            tot = w.sum(axis=(0, 3))
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.log(tot) + mm
                if events:
                    e1.append(np.where(tot > 0, np.einsum("axsj,j->xs", w, self.j) / tot, 0.0))
                    e2.append(np.where(tot > 0, np.einsum("axsj,a->xs", w, self.j2) / tot, 0.0))
            out.append(np.where(np.isfinite(s), s + base, -np.inf))
        return (out, e1, e2) if events else out

    def log_p0(self, pe):
        x = self.xv.astype(np.float64)
        lpe, l1pe = self._logs(pe)
        return self.lp0_const + x * lpe + (LINE_BITS * self.T - x) * l1pe

    def dvec(self, theta):
        """ln P(0 | weak row, S) - ln P(0 | strong row): no event in T accesses."""
        return self.T * (self.S * self._logs(theta[6])[1] + (self.S > 0) * self._logs(theta[7])[1])

    def log_prior(self, fl, phi, s, sd):
        """ln prior(S): ``(1 - F_l) [S = 0] + F_l ((1 - phi) Bin(S; 64, s) + phi Bin(S; 64, s_d))``."""
        from scipy import stats

        with np.errstate(divide="ignore"):
            lp = mle.log(fl) + np.logaddexp(mle.log(1.0 - phi) + stats.binom.logpmf(self.S, SLOTS, s),
                                            mle.log(phi) + stats.binom.logpmf(self.S, SLOTS, sd))
        lp[0] = np.logaddexp(mle.log(1.0 - fl), lp[0])
        return lp

    def per_unit_count(self, weights):
        from scipy import sparse

        return sparse.csr_matrix((weights, (self.st.rec_nz, self.rec_xi)), shape=(self.n_nz, self.xv.size))

    def per_bs(self, pi, qz, v):
        """E[v(S)] of each unit with errors and its sum over each subarray's units."""
        st = self.st
        ev = pi @ v
        return ev, st.zero_per_bs * (qz @ v) + np.bincount(st.nz_bs, weights=ev, minlength=st.n_bs)

    def row_terms(self, theta, pi, qz, lp1=None):
        """(L_hi - B, L_lo - B, B) per row given the unit posteriors."""
        st = self.st
        lp1 = self.log_p1(theta) if lp1 is None else lp1
        lp0 = self.log_p0(theta[8])
        zero0 = LINE_BITS * self.T * self._logs(theta[8])[1]
        ed, ed_bs = self.per_bs(pi, qz, self.dvec(theta))
        out = []
        for lp in lp1:
            m = pi @ np.where(np.isfinite(lp), lp, -1e300).T  # E_q ln P(x | class, S) per (unit, count)
            corr = m[st.rec_nz, self.rec_xi] - ed[st.rec_nz] - lp0[self.rec_xi]
            out.append(ed_bs[st.row_bs] + np.bincount(st.rec_row, weights=corr, minlength=st.n_rows))
        b = st.C * zero0 + np.bincount(st.rec_row, weights=lp0[self.rec_xi] - zero0, minlength=st.n_rows)
        return out[0], out[1], b

    def row_logits(self, theta, l_hi, l_lo):
        fw, h = theta[1], theta[2]
        return np.stack([mle.log(1.0 - fw) + np.zeros_like(l_hi), mle.log(fw * h) + l_hi,
                         mle.log(fw * (1.0 - h)) + l_lo])

    def unit_terms(self, theta, pi, qz):
        from scipy import special

        lpr = self.log_prior(*theta[[0, 3, 4, 5]])
        lpr = np.where(np.isfinite(lpr), lpr, -1e300)
        nz = float(np.sum(-special.xlogy(pi, pi) + pi * lpr))
        z = np.sum(-special.xlogy(qz, qz) + qz * lpr[None, :], axis=1)
        return nz + float(self.st.zero_per_bs @ z)

    def elbo(self, theta, pi, qz, lp1=None) -> float:
        from scipy import special

        l_hi, l_lo, b = self.row_terms(theta, pi, qz, lp1)
        r = special.logsumexp(self.row_logits(theta, l_hi, l_lo), axis=0) + b
        return float(np.sum(r)) + self.unit_terms(theta, pi, qz)

    def unit_step(self, theta, rho, lp1=None):
        """Optimal unit posteriors given the row posteriors ``rho`` (3 x rows: strong, hi, lo)."""
        from scipy import special

        st = self.st
        dv = self.dvec(theta)
        lpr = self.log_prior(*theta[[0, 3, 4, 5]])
        rw = rho[1] + rho[2]
        r_bs = np.bincount(st.row_bs, weights=rw, minlength=st.n_bs)
        lz = lpr[None, :] + r_bs[:, None] * dv[None, :]
        lz = np.where(np.isfinite(lz), lz, -np.inf)
        qz = np.exp(lz - special.logsumexp(lz, axis=1, keepdims=True))
        lp1 = self.log_p1(theta) if lp1 is None else lp1
        rec_w = np.bincount(st.rec_nz, weights=rw[st.rec_row], minlength=self.n_nz)
        logit = lpr[None, :] + (r_bs[st.nz_bs] - rec_w)[:, None] * dv[None, :]
        for c, lp in zip((1, 2), lp1):
            logit = logit + np.asarray(self.per_unit_count(rho[c][st.rec_row]) @ np.where(np.isfinite(lp), lp, -1e300))
        logit = np.where(np.isfinite(logit), logit, -np.inf)
        pi = np.exp(logit - special.logsumexp(logit, axis=1, keepdims=True))
        return pi, qz

    def theta_step(self, theta, rho, pi, qz):
        """Maximise the bound over theta given the posteriors: F_w, h, e, e_line and p_else in
        closed form (the events j1, j2 of each record latent, at their posterior under theta), the
        slot-count prior's (F_l, phi, s, s_d) numerically on its expected histogram."""
        from scipy import optimize, special

        st = self.st
        T = self.T
        rw = rho[1] + rho[2]
        fw = float(rw.mean())
        h = float(rho[1].sum() / rw.sum()) if rw.sum() > 0 else float(theta[2])
        hist = pi.sum(axis=0) + st.zero_per_bs @ qz

        def neg_prior(z):
            lp = self.log_prior(*special.expit(z))
            return -float(np.sum(np.where(hist > 0, hist * lp, 0.0)))

        z0 = special.logit(np.clip(theta[[0, 3, 4, 5]], 1e-9, 1 - 1e-9))
        res = optimize.minimize(neg_prior, z0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-8,
                                                                               "maxiter": 2000})
        fl, phi, s, sd = (float(v) for v in special.expit(res.x))
        if res.fun > neg_prior(z0):
            fl, phi, s, sd = (float(v) for v in theta[[0, 3, 4, 5]])
        if sd < s:  # the dense kind is the one with more weak slots (the mixture's labels)
            phi, s, sd = 1.0 - phi, sd, s
        # rates: expected events over their trials (slot events: the weak rows' slot-accesses without
        # a line event; line events: the weak rows' accesses of lines with weak slots), background:
        # expected errors not from events over the cell-trials no event covers
        _, ej1, ej2 = self.log_p1(theta, events=True)
        wk = [np.asarray(self.per_unit_count(rho[c][st.rec_row]).T @ pi) for c in (1, 2)]
        _, es_bs = self.per_bs(pi, qz, self.S)
        _, pos_bs = self.per_bs(pi, qz, (self.S > 0).astype(np.float64))
        S = self.S[None, :]
        slot_trials = T * float(rw @ es_bs[st.row_bs]) - sum(float(np.sum(w * S * j)) for w, j in zip(wk, ej2))
        line_trials = T * float(rw @ pos_bs[st.row_bs])
        n1 = sum(float(np.sum(w * j)) for w, j in zip(wk, ej1))
        n2 = sum(float(np.sum((w * j)[:, 1:])) for w, j in zip(wk, ej2))
        bits = sum(K * float(np.sum(w * (j1 + S * j2))) for K, w, j1, j2 in zip(self.Ks, wk, ej1, ej2))
        e = n1 / slot_trials if slot_trials > 0 else float(theta[6])
        el = n2 / line_trials if line_trials > 0 else float(theta[7])
        pe = (float(st.rec_x.sum()) - bits) / (self.pairs * LINE_BITS * T - bits)
        e, el, pe = (min(max(v, 0.0), 1.0 - 1e-12) for v in (e, el, pe))
        return np.array([fl, fw, h, phi, s, sd, e, el, pe])

    def run(self, theta, rho, max_iter=400, tol=1e-10):
        from scipy import special

        theta = np.array(theta, np.float64)
        ll = -np.inf
        pi, qz = self.unit_step(theta, rho)
        for _ in range(max_iter):
            theta = self.theta_step(theta, rho, pi, qz)
            lp1 = self.log_p1(theta)
            l_hi, l_lo, _ = self.row_terms(theta, pi, qz, lp1)
            lg = self.row_logits(theta, l_hi, l_lo)
            rho = np.exp(lg - special.logsumexp(lg, axis=0, keepdims=True))
            pi, qz = self.unit_step(theta, rho, lp1)
            new = self.elbo(theta, pi, qz, lp1)
            done = new - ll <= tol * max(1.0, abs(new))
            ll = max(ll, new)
            if done:
                break
        return ll, theta, rho, pi, qz


def _initial_rows(st, K_hi: int, K_lo: int) -> np.ndarray:
    """Row posteriors to start from: rows with errors by whether all their counts are multiples of
    ``K_hi`` (hi) or not (lo); error-free rows mostly strong."""
    rho = np.zeros((3, st.n_rows))
    rho[0] = 0.998
    rho[1] = rho[2] = 0.001
    with_err = st.row_z > 0
    if K_hi != K_lo:
        bad = np.bincount(st.rec_row, weights=(st.rec_x % K_hi != 0).astype(np.float64), minlength=st.n_rows) > 0
    else:
        bad = np.zeros(st.n_rows, bool)
    hi = with_err & ~bad
    lo = with_err & bad
    rho[:, hi] = np.array([0.01, 0.98, 0.01])[:, None]
    rho[:, lo] = np.array([0.01, 0.01, 0.98])[:, None]
    return rho


def _fit(cls, st, confidence: float) -> mle.CandidateFit:
    K_hi, K_lo = group_sizes(st.rec_x)
    fit = _Groups(st, K_hi, K_lo)
    rho0 = _initial_rows(st, K_hi, K_lo)
    with_err = st.row_z > 0
    fw0 = float(np.clip(with_err.mean(), 1e-6, 1 - 1e-6))
    h0 = float(np.clip(rho0[1][with_err].sum() / max(with_err.sum(), 1), 1e-3, 1 - 1e-3))
    fl0 = float(np.clip(st.nz_group.size / max(st.n_groups, 1), 1e-6, 0.9))
    runs = []
    for s0, e0 in ((4.0 / SLOTS, 0.1), (16.0 / SLOTS, 0.02)):
        theta0 = np.array([fl0, fw0, h0, 0.2, s0, min(4 * s0, 0.9), e0, 0.02, max(st.errors / st.trials * 1e-2, 1e-12)])
        runs.append(fit.run(theta0, rho0))
    ll, theta, rho, pi, qz = max(runs, key=lambda r: r[0])

    def fn(t):
        t = np.asarray(t, np.float64)
        if not np.all((t >= 0) & (t <= 1)) or t[6] >= 1 or t[7] >= 1 or t[8] >= 1:
            return -np.inf
        return fit.elbo(t, pi, qz)

    names = ("emg.line_fraction", "emg.wl_fraction", "emg.hi_fraction", "emg.dense_fraction", "emg.slot_fraction",
             "emg.dense_slot_fraction", "emg.e", "emg.e_line", "emg.p_else")
    est = mle.estimates(names, theta, fn, confidence)
    notes = [("log-likelihood is a variational lower bound (exact over the row classes, mean-field over the "
              "weak-slot count of each line position); intervals are conditional on the fitted posteriors"),
             (f"group sizes {K_hi} and {K_lo} bits: the two most frequent error counts (1..8) of the records, "
              "counted as parameters in the BIC; which bits of a line a group holds is not identified by per-line "
              f"records (eden puts each group in one {SLOT_BITS}-bit slot)"),
             ("a weak slot of a weak line position in a weak row has an event with probability e per access that "
              "flips its row's group; other cells fail with p_else")]
    fl, fw, h, phi, s, sd, e, el, pe = (mle.clip01(float(v)) for v in theta)
    component = cls(line_fraction=fl, wl_fraction=fw, hi_fraction=h, dense_fraction=phi, slot_fraction=s,
                    dense_slot_fraction=sd, group_hi=K_hi, group_lo=K_lo, e=e, e_line=el, p_else=pe)
    return mle.CandidateFit((component,), float(ll), est, tuple(notes), tuple(float(v) for v in theta))
