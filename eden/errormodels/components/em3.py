"""em3: data-dependent errors (true-/anti-cells). A stored 1 reads as 0 with ``p10``, a stored 0
reads as 1 with ``p01``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import Component, SubPass, rate_param


@dataclasses.dataclass(frozen=True)
class DataDependent(Component):
    """EM3: direction-dependent errors (true-/anti-cells)."""

    kind = "em3"
    p10: float = rate_param("probability that a stored 1 reads as 0")
    p01: float = rate_param("probability that a stored 0 reads as 1")

    def rate_table(self, weak_bitline, weak_wordline):
        return (self.p01, self.p10)

    def sub_passes(self):
        q = (self.p01, self.p10)
        return (SubPass((q, q)),)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_exclusion(cls, data):
        if not data.has_direction:
            return ("not identifiable: the records carry no error direction (1->0 vs 0->1)"
                    + (" and are per column unit, not per cell" if data.w > 1 else ""))
        if data.direction is None:
            return ("not identifiable: the fraction of stored ones of the data pattern is unknown "
                    "(or 0 or 1, so one direction is never tested)")
        return None

    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Two independent binomials: 1->0 errors of stored ones, 0->1 errors of stored zeros."""
        st = data
        n10, n01, t1, t0 = st.direction
        p10, p01 = n10 / t1, n01 / t0
        def fn(t):
            return float(mle.kern(n10, t1, t[0]) + mle.kern(n01, t0, t[1])) + st.log_const

        ll = fn([p10, p01])
        fixed = {}
        for i, (p, n) in enumerate(((p10, t1), (p01, t0))):
            if 0 < p < 1:
                fixed[i] = math.sqrt(p * (1 - p) / n)
        est = mle.estimates(("em3.p10", "em3.p01"), [p10, p01], fn, confidence, fixed_cov=fixed,
                            skip=tuple(fixed))
        est = tuple(dataclasses.replace(e, method="Wald (observed Fisher information, exact)")
                    if e.method == "Wald (binomial)" else e for e in est)
        return mle.CandidateFit((cls(p10, p01),), ll, est, theta=(p10, p01))

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        (c,) = components
        st = data
        ones_row, ones_grp = _ones_counts(st)
        rows = rng.binomial(ones_row * st.T, c.p10) + rng.binomial((st.org.row_bits - ones_row) * st.T, c.p01)
        cols = rng.binomial(ones_grp * st.T, c.p10) + rng.binomial(st.grp_n - ones_grp * st.T, c.p01)
        return rows, cols

    def simulation_passes(self, cells, rng):
        org, B, P, R = cells.org, cells.B, cells.P, cells.R
        passes = []
        for value, rate in ((1, self.p10), (0, self.p01)):
            per_prow = [np.flatnonzero(cells.bits[p] == value) for p in range(P)]
            counts = np.array([len(x) for x in per_prow], np.int64)
            row_counts = counts[np.arange(R) % org.rows % P]
            start = np.concatenate([[0], np.cumsum(row_counts)])
            table = np.full((P, max(int(counts.max()), 1)), 0, np.int64)
            for p in range(P):
                table[p, :counts[p]] = per_prow[p]

            def value_cells(i, start=start, table=table):
                g = np.searchsorted(start, i, side="right") - 1
                return g * B + table[(g % org.rows) % P, i - start[g]]

            passes.append(mle.SimPass(value_cells, int(start[-1]), rate))
        return passes


def _ones_counts(st):
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
