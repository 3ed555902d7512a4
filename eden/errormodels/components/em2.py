"""em2: weak wordlines. A ``fraction`` of the rows is weak; bits on them flip with ``p``, all
other bits with ``p_else``."""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import Component, SubPass, WeakLines, fraction_param, rate_param
from eden.errors import EdenConfigError


@dataclasses.dataclass(frozen=True)
class WeakWordlines(Component):
    """EM2: errors concentrated on a fraction of the wordlines (rows)."""

    kind = "em2"
    weak_lines = WeakLines.WORDLINES
    fraction: float = fraction_param("fraction of the rows that are weak")
    p: float = rate_param("flip probability of a bit in a weak row")
    p_else: float = rate_param("flip probability of every other bit")

    def _validate(self):
        if self.p < self.p_else:
            raise EdenConfigError(f"em2.p (weak wordlines, {self.p}) must be >= em2.p_else ({self.p_else})")

    def rate_table(self, weak_bitline, weak_wordline):
        r = self.p if weak_wordline else self.p_else
        return (r, r)

    def sub_passes(self):
        pe, pw = self.p_else, self.p
        return (SubPass(((pe, pe), (pw, pw)), by_wordline_class=True),)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        """Two-class binomial mixture over the rows."""
        return mle.fit_line_mixture(cls, np.full(data.n_rows, data.row_n), data.row_z, data, confidence)

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        (c,) = components
        return mle.simulate_line_margins(data, rng, wordlines=c)

    def simulation_passes(self, cells, rng):
        B = cells.B
        weak_rows = np.flatnonzero(rng.random(cells.R) < self.fraction)
        return [mle.SimPass(mle.all_cells, cells.R * B, self.p_else),
                mle.SimPass(lambda i: weak_rows[i // B] * B + i % B, weak_rows.size * B,
                        mle.excess(self.p, self.p_else))]
