"""em0: uniform random bit errors; every bit flips with probability ``p``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from eden.errormodels import fitting as mle
from eden.errormodels.component import Component, SubPass, rate_param


@dataclasses.dataclass(frozen=True)
class Uniform(Component):
    """EM0: uniform random bit errors."""

    kind = "em0"
    fits_without_errors = True  # zero errors still bound p from above
    p: float = rate_param("flip probability of every bit")

    def rate_table(self, weak_bitline, weak_wordline):
        return (self.p, self.p)

    def sub_passes(self):
        q = (self.p, self.p)
        return (SubPass((q, q)),)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_records(cls, data, confidence, part_thetas):
        st = data
        p = st.errors / st.trials
        ll = float(mle.kern(st.errors, st.trials, p)) + st.log_const
        def fn(t):
            return float(mle.kern(st.errors, st.trials, t[0])) + st.log_const

        if 0 < p < 1:
            se = math.sqrt(p * (1 - p) / st.trials)
            est = mle.estimates(("em0.p",), [p], fn, confidence, fixed_cov={0: se}, skip=(0,))
            est = (dataclasses.replace(est[0], method="Wald (observed Fisher information, exact)"),)
        else:
            est = mle.estimates(("em0.p",), [p], fn, confidence)
        return mle.CandidateFit((cls(p),), ll, est, theta=(p,))

    @staticmethod
    def simulate_margins(components, data, rng: np.random.Generator):
        (c,) = components
        return rng.binomial(data.row_n, c.p, data.n_rows), rng.binomial(data.grp_n, c.p)

    def simulation_passes(self, cells, rng):
        return [mle.SimPass(mle.all_cells, cells.R * cells.B, self.p)]
