"""em1: weak bitlines. A ``fraction`` of the bitlines of each (bank, subarray) is weak; bits on
them flip with ``p``, all other bits with ``p_else``."""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import Component, Population, SubPass, WeakLines, fraction_param, rate_param
from eden.errors import EdenConfigError


@dataclasses.dataclass(frozen=True)
class WeakBitlines(Component):
    """EM1: errors concentrated on a fraction of the bitlines."""

    kind = "em1"
    weak_lines = WeakLines.BITLINES
    fraction: float = fraction_param("fraction of the bitlines of each (bank, subarray) that are weak")
    p: float = rate_param("flip probability of a bit on a weak bitline")
    p_else: float = rate_param("flip probability of every other bit")

    def _validate(self):
        if self.p < self.p_else:
            raise EdenConfigError(f"em1.p (weak bitlines, {self.p}) must be >= em1.p_else ({self.p_else})")

    def rate_table(self, weak_bitline, weak_wordline):
        r = self.p if weak_bitline else self.p_else
        return (r, r)

    def sub_passes(self):
        # every cell at p_else, and the weak bitlines' cells again at the excess rate:
        # 1 - (1 - p_else)(1 - extra) = p on weak bitlines
        pe, pw = self.p_else, self.p
        extra = 0.0 if pe >= 1.0 else (pw - pe) / (1.0 - pe)
        return (SubPass(((pe, pe), (pe, pe))),
                SubPass(((extra, extra), (extra, extra)), Population.WEAK_BITLINES))

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Two-class binomial mixture over the column units of each (bank, subarray)."""
        return mle.fit_line_mixture(cls, data.grp_n, data.grp_y, data, confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        (c,) = components
        return mle.simulate_line_margins(data, rng, bitlines=c)

    def simulation_passes(self, cells, rng):
        org, B, S, nsub = cells.org, cells.B, cells.S, cells.nsub
        weak = np.flatnonzero(rng.random(org.banks * nsub * B) < self.fraction)
        bs, bl = weak // B, weak % B  # (bank, subarray) group and bitline of each weak bitline
        sub_rows = np.minimum(S, org.rows - (bs % nsub) * S)
        start = np.concatenate([[0], np.cumsum(sub_rows)])

        def weak_bitline_cells(i):
            j = np.searchsorted(start, i, side="right") - 1
            local = i - start[j]
            bank, sub = bs[j] // nsub, bs[j] % nsub
            return (bank * org.rows + sub * S + local) * B + bl[j]

        return [mle.SimPass(mle.all_cells, cells.R * B, self.p_else),
                mle.SimPass(weak_bitline_cells, int(start[-1]), mle.excess(self.p, self.p_else))]
