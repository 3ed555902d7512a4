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
    faint_fraction: float = fraction_param("share of the weak rows that are faint: slot events at e_faint, no line "
                                           "events")
    e_faint: float = rate_param("probability per access of an event at a weak slot of a faint weak row")
    faint_hi_fraction: float = fraction_param("share of the faint weak rows whose groups have group_hi bits", 1.0)
    p_else: float = rate_param("flip probability of every cell on its own (background)")

    def weak_fractions(self):
        return {WeakLines.BITLINES: self.line_fraction, WeakLines.WORDLINES: self.wl_fraction}

    def mean_group(self) -> float:
        """Mean group size over the weak rows."""
        return sum((hi - lo) * K for (lo, hi), K, _, _ in self.row_shares())

    def row_shares(self):
        """((lo, hi) share of the weak rows' uniform, group size, slot rate, line rate) of the four
        kinds of weak row: main hi, main lo, faint hi, faint lo (disjoint, nested in each fraction)."""
        m, h, hf = 1.0 - self.faint_fraction, self.hi_fraction, self.faint_hi_fraction
        return (((0.0, m * h), self.group_hi, self.e, self.e_line),
                ((m * h, m), self.group_lo, self.e, self.e_line),
                ((m, m + (1.0 - m) * hf), self.group_hi, self.e_faint, 0.0),
                ((m + (1.0 - m) * hf, 1.0), self.group_lo, self.e_faint, 0.0))

    def mean_slot_fraction(self) -> float:
        """Fraction of the slots of a weak line position that are weak, over both kinds of position."""
        return self.dense_fraction * self.dense_slot_fraction + (1.0 - self.dense_fraction) * self.slot_fraction

    def rate_table(self, weak_bitline, weak_wordline):
        # a cell of a weak line in a weak row: in a weak slot with slot_fraction, then in its row's
        # group with K / 8 (the marginal rate over the two row shares)
        r = self.p_else
        if weak_bitline and weak_wordline:
            ev = sum((hi - lo) * K / SLOT_BITS * mle.union(e, el) for (lo, hi), K, e, el in self.row_shares())
            r = mle.union(self.p_else, self.mean_slot_fraction() * ev)
        return (r, r)

    def sub_passes(self):
        pe = self.p_else
        return (SubPass(((pe, pe), (pe, pe))),)

    def line_events(self):
        dense = (self.dense_fraction, self.dense_slot_fraction)
        passes = []
        for i, (rows, K, e, el) in enumerate(self.row_shares()):
            kinds = ((e, False), (el, True)) if i < 2 else ((e, False),)  # faint rows: no line events
            passes += [LineEventPass(rate, slot_bits=SLOT_BITS, slot_fraction=self.slot_fraction, members=K,
                                     rows=rows, dense=dense, whole_block=whole) for rate, whole in kinds]
        return tuple(passes)

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
        ``Binomial(S, e)`` (faint rows: ``e_faint``, no line events), over the slot counts ``S`` of
        :meth:`slot_count_prior` and the kinds of weak row (background left out)."""
        S = np.arange(SLOTS + 1, dtype=np.float64)
        p = self.slot_count_prior()
        errors = faulty = 0.0
        for (lo, hi), K, e, el in self.row_shares():
            errors += (hi - lo) * K * float(p @ S) * (el + (1.0 - el) * e)
            faulty += (hi - lo) * float(p[1:] @ (el + (1.0 - el) * -np.expm1(S[1:] * np.log1p(-min(e, 1 - 1e-16)))))
        return errors / faulty if faulty > 0 else 0.0

    # ------------------------------------------------------------------ simulation
    def _maps(self, org, B, S, nsub, R, rng):
        """NumPy draws of the maps (same statistics as the engine's): the weak rows of each share,
        and per (bank, subarray) the weak slots (row positions of their first bit) and rankings."""
        if B % LINE_BITS:
            raise EdenConfigError(f"emg needs rows of whole {LINE_BITS}-bit lines, got {B} bits per row")
        nl = B // LINE_BITS
        n_bs = org.banks * nsub
        u = rng.random(R) / max(self.wl_fraction, 1e-300)  # weak rows: u < 1
        rows = tuple(np.flatnonzero((u >= lo) & (u < hi) & (u < 1.0)) for (lo, hi), *_ in self.row_shares())
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
        for weak_rows, (_, K, e, el) in zip(rows, self.row_shares()):
            row_bs = (weak_rows // org.rows) * nsub + (weak_rows % org.rows) // S
            for rate, fst, size in ((e, first, None), (el, first_line, np.diff(line_start))):
                per_row = fst[row_bs + 1] - fst[row_bs]
                start = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)

                def members(i, weak_rows=weak_rows, row_bs=row_bs, start=start, K=K, fst=fst, size=size):
                    j = np.searchsorted(start, i, side="right") - 1
                    w = fst[row_bs[j]] + (i - start[j])  # weak slot (or line) entry
                    if size is not None:  # a line: all its weak slots
                        n = size[w]
                        owner = np.repeat(np.arange(len(i)), n)
                        first_slot = line_start[w] - np.concatenate([[0], np.cumsum(n)[:-1]])
                        w = np.repeat(first_slot, n) + np.arange(int(n.sum()))
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
        u = rng.random(st.n_rows) / max(c.wl_fraction, 1e-300)  # weak rows: u < 1
        row_weak = np.flatnonzero(u < 1.0)
        share = np.searchsorted([hi for (_, hi), *_ in c.row_shares()], u[row_weak], side="right").clip(0, 3)
        K_row, e_row, el_row = (np.array([x[i] for x in c.row_shares()])[share] for i in (1, 2, 3))
        up = rng.random(st.n_groups)
        frac = np.where(up < c.line_fraction * c.dense_fraction, c.dense_slot_fraction, c.slot_fraction)
        k = np.where(up < c.line_fraction, rng.binomial(SLOTS, frac), 0)
        lines = np.flatnonzero(k > 0)  # sorted: grouped by subarray
        first = np.searchsorted(lines // st.C, np.arange(st.n_bs + 1))
        per_row = first[st.row_bs[row_weak] + 1] - first[st.row_bs[row_weak]]
        r = np.repeat(row_weak, per_row)
        K, e, el = (np.repeat(a, per_row) for a in (K_row, e_row, el_row))
        at = np.repeat(first[st.row_bs[row_weak]] - np.concatenate([[0], np.cumsum(per_row)[:-1]]), per_row)
        g = lines[at + np.arange(int(per_row.sum()))]
        j2 = rng.binomial(T, el)  # accesses with a line event: all k[g] groups
        flips = (rng.binomial(k[g] * (T - j2), e) + k[g] * j2) * K  # event bits of each (weak row, weak line)
        ev_rows = np.bincount(r, weights=flips, minlength=st.n_rows).astype(np.int64)
        ev_cols = np.bincount(g, weights=flips, minlength=st.n_groups).astype(np.int64)
        rows = ev_rows + rng.binomial(st.C * w * T - ev_rows, c.p_else)
        cols = ev_cols + rng.binomial(np.repeat(st.rows_in_bs, st.C) * w * T - ev_cols, c.p_else)
        return rows, cols


# ------------------------------------------------------------------ the fit
def _lse(a, axis):
    """ln sum exp over ``axis`` (keeping it), -inf where every term is -inf."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m


def group_size_candidates(counts) -> list[tuple[int, int]]:
    """(group_hi, group_lo) pairs to try, from the error counts in 1..8 of the records: every pair
    of the two most frequent counts and the two most frequent that no more frequent count of 2 or
    more divides (a line with two events of a group of K holds 2 K, so a frequent count can be a
    multiple of a group size), and the most frequent count alone (one group size)."""
    c = np.asarray(counts, np.int64)
    freq = np.bincount(c[(c >= 1) & (c <= SLOT_BITS)], minlength=SLOT_BITS + 1)[1:]
    order = [int(i) + 1 for i in np.argsort(-freq, kind="stable") if freq[i] > 0]
    if not order:
        return [(SLOT_BITS, 1)]
    prime = [k for n, k in enumerate(order) if not any(d >= 2 and k % d == 0 for d in order[:n])]
    values = sorted(set(order[:2]) | set(prime[:2]), key=order.index)
    pairs = [(max(a, b), min(a, b)) for n, a in enumerate(values) for b in values[n + 1:]]
    return pairs + [(order[0], order[0])]


#: theta of the fit: indices of its entries
F_L, F_W, H, PHI, S_SPARSE, S_DENSE, E, E_LINE, P_ELSE, FAINT, E_FAINT, H_FAINT = range(12)
#: The fit's weak-row classes (after the strong class 0): (group: 0 hi / 1 lo, faint)
CLASSES = ((0, False), (1, False), (0, True), (1, True))


class _Groups:
    """emg's log-likelihood bound on the records' sufficient statistics (64-byte line records).

    Latent: each row's class (strong, or weak: main or faint, with groups of ``group_hi`` or
    ``group_lo`` bits; priors ``1 - F_w`` and ``F_w (1 - a) h``, ``F_w (1 - a) (1 - h)``,
    ``F_w a h``, ``F_w a (1 - h)``, ``a`` the faint share) and the weak-slot count ``S_g`` of each
    line position g of a (bank, subarray) (prior :meth:`GroupedLineEvents.slot_count_prior`),
    shared by the subarray's rows. Given them, the errors of (row r, unit g) summed over ``T``
    accesses are, in a row of group size ``K`` with slot and line event rates ``(e1, e2)`` (main
    rows ``(e, e_line)``, faint rows ``(e_faint, 0)``), ``sum_{j2, j1} Bin(j2; T, e2) Bin(j1; S
    (T - j2), e1) Bin(x - K (j1 + S j2); 512 T - K (j1 + S j2), p_else)`` (``j2`` accesses with a
    line event, ``j1`` slot events in the others) and ``Bin(x; 512 T, p_else)`` in a strong row.
    The bound is exact over the row classes and mean-field over each unit's ``S`` (the error-free
    units of a subarray are exchangeable and share one exact posterior): ``ELBO = sum_r ln sum_c
    prior_c e^{L_rc} + sum_g E_q[ln prior(S_g) - ln q(S_g)]``. Full binomial log-pmfs. ``theta``:
    see :data:`F_L` ...; the M-step is closed form (``j1``, ``j2`` latent) but for the slot-count
    prior.
    """

    def __init__(self, st, K_hi: int, K_lo: int) -> None:
        from scipy import special

        self.st = st
        self.T = T = st.T
        self.Ks = (int(K_hi), int(K_lo))
        self.S = np.arange(SLOTS + 1, dtype=np.float64)
        self.xv, self.rec_xi = np.unique(st.rec_x, return_inverse=True)
        self.n_nz = st.nz_group.size
        self.cell = st.rec_nz.astype(np.int64) * self.xv.size + self.rec_xi
        self.pairs = float(st.n_rows) * st.C
        n = LINE_BITS * T
        x = self.xv.astype(np.float64)
        lc = special.gammaln
        self.lp0_const = lc(n + 1) - lc(x + 1) - lc(n - x + 1)
        self.ln_c64 = lc(SLOTS + 1) - lc(self.S + 1) - lc(SLOTS - self.S + 1)
        self.j = np.arange(int(x.max(initial=0) // min(self.Ks)) + 1, dtype=np.float64)
        self.j2 = np.arange(T + 1, dtype=np.float64)
        self.ln_t = lc(T + 1) - lc(self.j2 + 1) - lc(T - self.j2 + 1)
        # per group size: ln C(S (T - j2), j1) + ln C(n - K b, x - K b), b = j1 + S j2, over (j2, x, S, j1)
        j2, xx, S, j1 = np.meshgrid(self.j2, x, self.S, self.j, indexing="ij")
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

    @staticmethod
    def rates(theta, faint: bool) -> tuple[float, float]:
        """(slot event rate, line event rate) of a main or faint weak row."""
        return (float(theta[E_FAINT]), 0.0) if faint else (float(theta[E]), float(theta[E_LINE]))

    def log_p1(self, theta, events: bool = False):
        """ln P(x | class, S) for the distinct counts x (rows) and S = 0..64 (columns), per weak
        class (:data:`CLASSES`); with ``events``, also the posterior means E[j1 | x, S], E[j2 | x, S]."""
        T = self.T
        lpe, l1pe = self._logs(theta[P_ELSE])
        x = self.xv.astype(np.float64)
        base = (x * lpe + (LINE_BITS * T - x) * l1pe)[:, None]
        j2, S, j1 = self.j2[:, None, None], self.S[None, :, None], self.j[None, None, :]
        out, e1, e2 = [], [], []
        for k, faint in CLASSES:
            K, comb = self.Ks[k], self.comb[k]
            (le, l1e), (lq, l1q) = (self._logs(v) for v in self.rates(theta, faint))
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

    def dvecs(self, theta):
        """Per weak class: ln P(0 | class, S) - ln P(0 | strong): no event in T accesses."""
        out = []
        for _, faint in CLASSES:
            e1, e2 = self.rates(theta, faint)
            out.append(self.T * (self.S * self._logs(e1)[1] + (self.S > 0) * self._logs(e2)[1]))
        return out

    def log_prior(self, fl, phi, s, sd):
        """ln prior(S): ``(1 - F_l) [S = 0] + F_l ((1 - phi) Bin(S; 64, s) + phi Bin(S; 64, s_d))``."""
        def binom(p):
            a, b = self._logs(p)
            return self.ln_c64 + self.S * a + (SLOTS - self.S) * b

        lp = mle.log(fl) + np.logaddexp(mle.log(1.0 - phi) + binom(s), mle.log(phi) + binom(sd))
        lp[0] = np.logaddexp(mle.log(1.0 - fl), lp[0])
        return lp

    def per_unit_count(self, weights):
        """Dense (units with errors, distinct counts) sums of ``weights`` over the records."""
        nx = self.xv.size
        return np.bincount(self.cell, weights=weights, minlength=self.n_nz * nx).reshape(self.n_nz, nx)

    def per_bs(self, pi, qz, v):
        """E[v(S)] of each unit with errors and its sum over each subarray's units."""
        st = self.st
        ev = pi @ v
        return ev, st.zero_per_bs * (qz @ v) + np.bincount(st.nz_bs, weights=ev, minlength=st.n_bs)

    def row_terms(self, theta, pi, qz, lp1=None):
        """(L_c - B for each weak class, B) per row given the unit posteriors."""
        st = self.st
        lp1 = self.log_p1(theta) if lp1 is None else lp1
        lp0 = self.log_p0(theta[P_ELSE])
        zero0 = LINE_BITS * self.T * self._logs(theta[P_ELSE])[1]
        out = []
        for lp, dv in zip(lp1, self.dvecs(theta)):
            ed, ed_bs = self.per_bs(pi, qz, dv)
            m = pi @ np.where(np.isfinite(lp), lp, -1e300).T  # E_q ln P(x | class, S) per (unit, count)
            corr = m[st.rec_nz, self.rec_xi] - ed[st.rec_nz] - lp0[self.rec_xi]
            out.append(ed_bs[st.row_bs] + np.bincount(st.rec_row, weights=corr, minlength=st.n_rows))
        b = st.C * zero0 + np.bincount(st.rec_row, weights=lp0[self.rec_xi] - zero0, minlength=st.n_rows)
        return out, b

    @staticmethod
    def class_priors(theta):
        fw, a = float(theta[F_W]), float(theta[FAINT])
        hs = {False: float(theta[H]), True: float(theta[H_FAINT])}
        return [max(1.0 - fw, 0.0)] + [max(fw * (a if faint else 1.0 - a) * (hs[faint] if k == 0 else 1.0 - hs[faint]),
                                           0.0) for k, faint in CLASSES]

    def row_logits(self, theta, ls):
        return np.stack([mle.log(p) + (np.zeros(self.st.n_rows) if c == 0 else ls[c - 1])
                         for c, p in enumerate(self.class_priors(theta))])

    def unit_terms(self, theta, pi, qz):
        from scipy import special

        lpr = self.log_prior(*theta[[F_L, PHI, S_SPARSE, S_DENSE]])
        lpr = np.where(np.isfinite(lpr), lpr, -1e300)
        nz = float(np.sum(-special.xlogy(pi, pi) + pi * lpr))
        z = np.sum(-special.xlogy(qz, qz) + qz * lpr[None, :], axis=1)
        return nz + float(self.st.zero_per_bs @ z)

    def elbo(self, theta, pi, qz, lp1=None) -> float:

        ls, b = self.row_terms(theta, pi, qz, lp1)
        r = _lse(self.row_logits(theta, ls), 0)[0] + b
        return float(np.sum(r)) + self.unit_terms(theta, pi, qz)

    def unit_step(self, theta, rho, lp1=None):
        """Optimal unit posteriors given the row posteriors ``rho`` (classes x rows)."""

        st = self.st
        lpr = self.log_prior(*theta[[F_L, PHI, S_SPARSE, S_DENSE]])
        lp1 = self.log_p1(theta) if lp1 is None else lp1
        lz = np.repeat(lpr[None, :], st.n_bs, axis=0)
        logit = np.repeat(lpr[None, :], self.n_nz, axis=0)
        for c, (lp, dv) in enumerate(zip(lp1, self.dvecs(theta)), start=1):
            r_bs = np.bincount(st.row_bs, weights=rho[c], minlength=st.n_bs)
            rec_w = np.bincount(st.rec_nz, weights=rho[c][st.rec_row], minlength=self.n_nz)
            lz = lz + r_bs[:, None] * dv[None, :]
            logit = logit + (r_bs[st.nz_bs] - rec_w)[:, None] * dv[None, :]
            logit = logit + self.per_unit_count(rho[c][st.rec_row]) @ np.where(np.isfinite(lp), lp, -1e300)
        lz = np.where(np.isfinite(lz), lz, -np.inf)
        qz = np.exp(lz - _lse(lz, 1))
        logit = np.where(np.isfinite(logit), logit, -np.inf)
        pi = np.exp(logit - _lse(logit, 1))
        return pi, qz

    def theta_step(self, theta, rho, pi, qz):
        """Maximise the bound over theta given the posteriors: the row shares, event rates and
        p_else in closed form (the events j1, j2 of each record latent, at their posterior under
        theta), the slot-count prior's (F_l, phi, s, s_d) numerically on its expected histogram."""
        from scipy import optimize, special

        st = self.st
        T = self.T
        new = np.array(theta, np.float64)
        tot = rho.sum(axis=1)
        weak = float(tot[1:].sum())
        new[F_W] = weak / st.n_rows
        if weak > 0:
            new[FAINT] = float(tot[3] + tot[4]) / weak
        if tot[1] + tot[2] > 0:
            new[H] = float(tot[1] / (tot[1] + tot[2]))
        if tot[3] + tot[4] > 0:
            new[H_FAINT] = float(tot[3] / (tot[3] + tot[4]))
        hist = pi.sum(axis=0) + st.zero_per_bs @ qz

        def neg_prior(z):
            lp = self.log_prior(*special.expit(z))
            return -float(np.sum(np.where(hist > 0, hist * lp, 0.0)))

        idx = [F_L, PHI, S_SPARSE, S_DENSE]
        z0 = special.logit(np.clip(theta[idx], 1e-9, 1 - 1e-9))
        res = optimize.minimize(neg_prior, z0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-8,
                                                                               "maxiter": 2000})
        if res.fun <= neg_prior(z0):
            new[idx] = special.expit(res.x)
        if new[S_DENSE] < new[S_SPARSE]:  # the dense kind is the one with more weak slots (the mixture's labels)
            new[PHI], new[S_SPARSE], new[S_DENSE] = 1.0 - new[PHI], new[S_DENSE], new[S_SPARSE]
        # rates: expected events over their trials (slot events: a class's slot-accesses without a
        # line event; line events: its accesses of lines with weak slots), background: expected
        # errors not from events over the cell-trials no event covers
        _, ej1, ej2 = self.log_p1(theta, events=True)
        _, es_bs = self.per_bs(pi, qz, self.S)
        _, pos_bs = self.per_bs(pi, qz, (self.S > 0).astype(np.float64))
        S = self.S[None, :]
        stats = {False: np.zeros(4), True: np.zeros(4)}  # (slot events, slot trials, line events, line trials)
        bits = 0.0
        for c, (k, faint) in enumerate(CLASSES, start=1):
            w = self.per_unit_count(rho[c][st.rec_row]).T @ pi
            j1, j2 = ej1[c - 1], ej2[c - 1]
            stats[faint] += [float(np.sum(w * j1)),
                             T * float(rho[c] @ es_bs[st.row_bs]) - float(np.sum(w * S * j2)),
                             float(np.sum((w * j2)[:, 1:])), T * float(rho[c] @ pos_bs[st.row_bs])]
            bits += self.Ks[k] * float(np.sum(w * (j1 + S * j2)))
        for faint, (ie, il) in ((False, (E, E_LINE)), (True, (E_FAINT, None))):
            n1, t1, n2, t2 = stats[faint]
            if t1 > 0:
                new[ie] = n1 / t1
            if il is not None and t2 > 0:
                new[il] = n2 / t2
        new[P_ELSE] = (float(st.rec_x.sum()) - bits) / (self.pairs * LINE_BITS * T - bits)
        for i in (E, E_LINE, E_FAINT, P_ELSE):
            new[i] = min(max(new[i], 0.0), 1.0 - 1e-12)
        for i in (F_W, H, FAINT, H_FAINT):  # shares: rounding may step past a bound
            new[i] = min(max(new[i], 0.0), 1.0)
        return new

    def run(self, theta, rho, max_iter=400, tol=1e-10):

        theta = np.array(theta, np.float64)
        ll = -np.inf
        pi, qz = self.unit_step(theta, rho)
        for _ in range(max_iter):
            theta = self.theta_step(theta, rho, pi, qz)
            lp1 = self.log_p1(theta)
            ls, _ = self.row_terms(theta, pi, qz, lp1)
            lg = self.row_logits(theta, ls)
            rho = np.exp(lg - _lse(lg, 0))
            pi, qz = self.unit_step(theta, rho, lp1)
            new = self.elbo(theta, pi, qz, lp1)
            done = new - ll <= tol * max(1.0, abs(new))
            ll = max(ll, new)
            if done:
                break
        return ll, theta, rho, pi, qz


def _initial_rows(st, K_hi: int, K_lo: int) -> np.ndarray:
    """Row posteriors to start from (strong, main hi, main lo, faint hi, faint lo): rows with
    errors by whether all their counts are multiples of ``K_hi`` (hi) or not (lo), main when
    their errors span more than one record; error-free rows mostly strong."""
    rho = np.full((5, st.n_rows), 0.0005)
    rho[0] = 0.998
    with_err = st.row_z > 0
    if K_hi != K_lo:
        bad = np.bincount(st.rec_row, weights=(st.rec_x % K_hi != 0).astype(np.float64), minlength=st.n_rows) > 0
    else:
        bad = np.zeros(st.n_rows, bool)
    many = np.bincount(st.rec_row, minlength=st.n_rows) > 1
    for c, (k, faint) in enumerate(CLASSES, start=1):
        sel = with_err & (bad if k else ~bad) & (~many if faint else many)
        rho[:, sel] = 0.01 / 4
        rho[c, sel] = 0.99
    return rho


def _fit(cls, st, confidence: float) -> mle.CandidateFit:
    def start(fit, rho0, s0, e0):
        with_err = st.row_z > 0
        weak0 = rho0[1:, with_err].sum(axis=1)
        h0 = float(np.clip(weak0[0] / max(weak0[0] + weak0[1], 1), 1e-3, 1 - 1e-3))
        hf0 = float(np.clip(weak0[2] / max(weak0[2] + weak0[3], 1), 1e-3, 1 - 1e-3))
        faint0 = float(np.clip((weak0[2] + weak0[3]) / max(weak0.sum(), 1), 1e-3, 1 - 1e-3))
        fl0 = float(np.clip(st.nz_group.size / max(st.n_groups, 1), 1e-6, 0.9))
        fw0 = float(np.clip(with_err.mean(), 1e-6, 1 - 1e-6))
        return np.array([fl0, fw0, h0, 0.2, s0, min(4 * s0, 0.9), e0, 0.02, max(st.errors / st.trials * 1e-2, 1e-12),
                         faint0, e0 / 10, hf0])

    starts = ((4.0 / SLOTS, 0.1), (16.0 / SLOTS, 0.02))
    # the group sizes: a short run of each candidate pair, the best bound kept; then two short
    # starts for it, and the better one run to convergence
    tried = []
    for K_hi, K_lo in group_size_candidates(st.rec_x):
        fit = _Groups(st, K_hi, K_lo)
        rho0 = _initial_rows(st, K_hi, K_lo)
        tried.append((fit.run(start(fit, rho0, *starts[0]), rho0, max_iter=40)[0], K_hi, K_lo, fit, rho0))
    _, K_hi, K_lo, fit, rho0 = max(tried, key=lambda r: r[0])
    runs = [fit.run(start(fit, rho0, s0, e0), rho0, max_iter=40) for s0, e0 in starts]
    _, theta, rho, _, _ = max(runs, key=lambda r: r[0])
    ll, theta, rho, pi, qz = fit.run(theta, rho)

    # parameters at a bound, and those the data then cannot identify
    for i in (F_L, F_W, H, PHI, FAINT, H_FAINT):
        theta[i] = 0.0 if theta[i] < 1e-9 else (1.0 if theta[i] > 1.0 - 1e-9 else theta[i])
    for i in (E, E_LINE, E_FAINT, P_ELSE):  # a rate the EM drove to the floor is 0 (a one-sided interval)
        if theta[i] < 1e-15:
            theta[i] = 0.0
    why: dict[int, str] = {}
    if theta[FAINT] == 0.0:
        theta[E_FAINT] = theta[H_FAINT] = 0.0
        why[E_FAINT] = why[H_FAINT] = "no faint rows"
    if theta[PHI] == 0.0:
        theta[S_DENSE] = theta[S_SPARSE]
        why[S_DENSE] = "no dense line positions"
    elif theta[PHI] == 1.0:
        theta[S_SPARSE] = theta[S_DENSE]
        why[S_SPARSE] = "no sparse line positions"
    if theta[H] in (0.0, 1.0) and theta[H_FAINT] in (0.0, 1.0) and theta[H] == theta[H_FAINT]:
        why.setdefault(H, "one group size")
    ll = fit.elbo(theta, pi, qz)

    names = ("emg.line_fraction", "emg.wl_fraction", "emg.hi_fraction", "emg.dense_fraction", "emg.slot_fraction",
             "emg.dense_slot_fraction", "emg.e", "emg.e_line", "emg.p_else", "emg.faint_fraction", "emg.e_faint",
             "emg.faint_hi_fraction")
    free = [i for i in range(len(names)) if i not in why and theta[i] < 1.0]

    def fn(t):
        t = mle.put(theta, free, t)
        if not np.all((t >= 0) & (t <= 1)) or max(t[E], t[E_LINE], t[E_FAINT], t[P_ELSE]) >= 1:
            return -np.inf
        return fit.elbo(t, pi, qz)

    sub = dict(zip(free, mle.estimates([names[i] for i in free], theta[free], fn, confidence)))
    est = tuple(sub[i] if i in sub else mle.ParameterEstimate(
        names[i], float(theta[i]), None, None, None,
        f"not identified ({why[i]})" if i in why else "at its upper bound (not estimated)") for i in range(len(names)))
    notes = [("log-likelihood is a variational lower bound (exact over the row classes, mean-field over the "
              "weak-slot count of each line position); intervals are conditional on the fitted posteriors"),
             (f"group sizes {K_hi} and {K_lo} bits: the best bound of the pairs of the most frequent error counts "
              f"(1..8) of the records ({', '.join(f'{a}/{b}' for _, a, b, _, _ in tried)}), counted as parameters in "
              "the BIC; which bits of a line a group holds is not identified by per-line records (eden puts each "
              f"group in one {SLOT_BITS}-bit slot)"),
             ("a weak slot of a weak line position in a main weak row has an event with probability e per access "
              "that flips its row's group, a line event (e_line) flips the groups of all its weak slots; faint weak "
              "rows have slot events only (e_faint); other cells fail with p_else")]
    fl, fw, h, phi, s, sd, e, el, pe, faint, ef, hf = (mle.clip01(float(v)) for v in theta)
    component = cls(line_fraction=fl, wl_fraction=fw, hi_fraction=h, dense_fraction=phi, slot_fraction=s,
                    dense_slot_fraction=sd, group_hi=K_hi, group_lo=K_lo, e=e, e_line=el, faint_fraction=faint,
                    e_faint=ef, faint_hi_fraction=hf, p_else=pe)
    return mle.CandidateFit((component,), float(ll), est, tuple(notes), tuple(float(v) for v in theta))
