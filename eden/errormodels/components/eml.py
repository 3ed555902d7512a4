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
