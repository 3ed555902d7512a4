"""NumPy reference implementation (the oracle) of the sampling scheme in ``plan.py``.

Written for clarity, vectorized across stream groups: every candidate of every sub-pass
is generated, filtered, and the union is taken with ``np.unique``. The fast
backends (numba, CUDA) must return exactly the same (word, mask) lists. Registered as the
``reference`` backend at the end of this module.
"""

from __future__ import annotations

import functools

import numpy as np

from eden.engine.contract import Op, host_read_log, register_backend, register_kernel
from eden.engine.correct import correct_segments
from eden.engine.events import line_event_bits
from eden.engine.plan import Plan

# The oracle's weak-line maps: this backend's ``weak_lines`` for compile_plan.
from eden.engine.sampling import geometric_candidates, weak_bitlines, weak_wordlines  # noqa: F401


def tile_population(plan: Plan, s: int) -> np.ndarray:
    """int64[n_tiles + 1]: sub-pass ``s``'s population before each tile (tiles concatenated)."""
    pop = plan.sp_pop[s]
    if pop < 0:
        return np.arange(plan.n_tiles + 1, dtype=np.int64) * plan.row_bits
    return plan.pop_cum[pop]


def subpass_candidates(plan: Plan, s: int):
    """Every candidate of sub-pass ``s`` that lands in the tensor, before acceptance.

    Returns (tensor bit int64[k], class int64[k], V uint64[k], group int64[k]), in walk
    order (by group, then position): one geometric walk per stream group (``plan.py``)."""
    g0, g1 = plan.grp_off[s], plan.grp_off[s + 1]
    t0, t1 = plan.grp_t0[g0:g1], plan.grp_t1[g0:g1]
    cls = plan.grp_cls[g0:g1].astype(np.int64)
    cum = tile_population(plan, s)
    popsize = cum[t1] - cum[t0]
    tab = (plan.sp_tab[s, cls, 0], plan.sp_tab[s, cls, 1], plan.tab_goff[s, cls], plan.tab_t, plan.tab_guide)
    gi, pi, v = geometric_candidates(plan.sp_key[s], plan.tile_row_id[t0].astype(np.int64), plan.sp_L[s][cls],
                                     popsize, bool(plan.sp_thin[s]), tab=tab,
                                     ctr3=plan.sp_gbits[s][cls].astype(np.int64))
    # population index of the group -> (tile, index in the tile's population) -> row position
    glob = cum[t0[gi]] + pi
    tile = np.searchsorted(cum, glob, side="right") - 1
    k = glob - cum[tile]
    pop = plan.sp_pop[s]
    if pop < 0:
        rowpos = k
    else:
        rowpos = plan.bl_cols[plan.bl_offsets[pop][plan.tile_group[tile].astype(np.int64)] + k].astype(np.int64)
    tbit = tile * plan.row_bits + rowpos - plan.bit_lo
    inside = (tbit >= 0) & (tbit < plan.bit_hi - plan.bit_lo)
    return tbit[inside], cls[gi[inside]], v[inside], gi[inside] + g0


def sample_flips(plan: Plan, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of kept candidates as sorted unique (word index, xor mask) arrays.

    ``words`` is the tensor's storage viewed as unsigned integers of
    ``plan.word_bits`` bits; it is read (for data-dependent acceptance), never written.
    """
    wb = plan.word_bits
    udt = words.dtype
    flat = []
    for s in range(plan.n_subpasses):
        tbit, cls, v, _ = subpass_candidates(plan, s)
        if plan.sp_thin[s]:
            stored = (words[tbit // wb] >> (tbit % wb).astype(udt)) & udt.type(1)
            thr = plan.sp_A[s][cls, stored.astype(np.int64)]
            tbit = tbit[v < thr]
        flat.append(tbit)
    if plan.has_events:  # line events (events.py): data-independent groups of bits
        flat.append(line_event_bits(plan))
    if not flat:
        return np.zeros(0, np.int64), np.zeros(0, udt)
    bits = np.unique(np.concatenate(flat))
    widx = bits // wb
    one = np.ones(len(bits), udt)
    m = one << (bits % wb).astype(udt)
    uw, start = np.unique(widx, return_index=True)
    masks = np.bitwise_or.reduceat(m, start) if len(m) else m
    return uw.astype(np.int64), masks.astype(udt)


# ------------------------------------------------------------ the backend
# The oracle as a backend (``backend="reference"``): CPU tensors; ``auto`` takes it only when
# numba is disabled (EDEN_DISABLE_NUMBA).
register_backend("reference", device="cpu", auto_rank=0)


@register_kernel(Op.INJECT, "reference")
def inject(plan: Plan, words: np.ndarray, fmt):
    """The oracle's flips, XORed into ``words``; the log is one segment."""
    idx, mask = sample_flips(plan, words)
    words[idx] ^= mask
    return words, idx, mask, np.zeros(1, np.int64), np.array([len(idx)], np.int64)


@register_kernel(Op.XOR_LOG, "reference")
def xor_log(words: np.ndarray, idx, mask, off, cnt) -> None:
    i, m = host_read_log(idx, mask, off, cnt)
    words[i] ^= m


register_kernel(Op.CORRECT, "reference")(functools.partial(correct_segments, np))
register_kernel(Op.READ_LOG, "reference")(host_read_log)
