"""NumPy reference implementation (the oracle) of the sampling scheme in ``plan.py``.

Written for clarity, vectorized across rows: every candidate of every sub-pass
is generated, filtered, and the union is taken with ``np.unique``. The fast
backends (numba, CUDA) must return exactly the same (word, mask) lists. Registered as the
``reference`` backend at the end of this module.
"""

from __future__ import annotations

import functools

import numpy as np

from eden.engine.contract import Op, host_read_log, register_backend, register_kernel
from eden.engine.correct import correct_segments
from eden.engine.plan import Plan

# The oracle's weak-line maps: this backend's ``weak_lines`` for compile_plan.
from eden.engine.sampling import geometric_candidates, weak_bitlines, weak_wordlines  # noqa: F401


def sample_flips(plan: Plan, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of kept candidates as sorted unique (word index, xor mask) arrays.

    ``words`` is the tensor's storage viewed as unsigned integers of
    ``plan.word_bits`` bits; it is read (for data-dependent acceptance), never written.
    """
    wb = plan.word_bits
    udt = words.dtype
    T = plan.n_tiles
    tiles = np.arange(T, dtype=np.int64)
    lo = np.maximum(plan.bit_lo - tiles * plan.row_bits, 0)
    hi = np.minimum(plan.bit_hi - tiles * plan.row_bits, plan.row_bits)
    flat = []
    for s in range(plan.n_subpasses):
        wl = plan.sp_wl[s]
        cls = plan.tile_wlclass[wl].astype(np.int64) if wl >= 0 else np.zeros(T, np.int64)
        active = plan.sp_active[s][cls].astype(bool)
        pop = plan.sp_pop[s]
        if pop < 0:
            popsize = np.full(T, plan.row_bits, np.int64)
        else:
            off = plan.bl_offsets[pop]
            g = plan.tile_group.astype(np.int64)
            popsize = off[g + 1] - off[g]
        popsize = np.where(active, popsize, 0)
        tab = (plan.sp_tab[s, cls, 0], plan.sp_tab[s, cls, 1], plan.tab_goff[s, cls], plan.tab_t,
               plan.tab_guide)
        st, pi, v = geometric_candidates(plan.sp_key[s], plan.tile_row_id.astype(np.int64),
                                         plan.sp_L[s][cls], popsize, bool(plan.sp_thin[s]), tab=tab)
        if pop < 0:
            rowpos = pi
        else:
            rowpos = plan.bl_cols[plan.bl_offsets[pop][plan.tile_group[st].astype(np.int64)] + pi].astype(np.int64)
        inside = (rowpos >= lo[st]) & (rowpos < hi[st])
        st, rowpos, v = st[inside], rowpos[inside], v[inside]
        tbit = st * plan.row_bits + rowpos - plan.bit_lo
        if plan.sp_thin[s]:
            stored = (words[tbit // wb] >> (tbit % wb).astype(udt)) & udt.type(1)
            thr = plan.sp_A[s][cls[st], stored.astype(np.int64)]
            keep = v < thr
            tbit = tbit[keep]
        flat.append(tbit)
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
