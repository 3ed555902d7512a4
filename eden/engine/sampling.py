"""The oracle's sampling primitives shared by the plan compiler and the NumPy reference backend.

``geometric_candidates`` walks a population with i.i.d. geometric skips (the scheme in
``plan.py``); ``nested_sample`` builds maps nested in their rate from it; ``weak_bitlines`` and
``weak_wordlines`` are the weak-line maps of em1/em2 components that ``compile_plan`` puts in a
plan (backends may pass equal compiled versions). Stream and tag constants keep every Philox
stream of the scheme distinct.
"""

from __future__ import annotations

import numpy as np

from eden.engine import rng

TAG_ACCESS = 1
TAG_FIXED = 2
TAG_BITLINE = 3
TAG_WORDLINE = 4
TAG_TWO_LEVEL = 5
TAG_MEMBER = 6   # line events' member bitlines
TAG_EVENT = 7    # line events' per-access (or fixed) draws
TAG_SLOT = 8     # grouped line events' weak slots and member ranking
STREAM_CELLS = 0
STREAM_BITLINES = 1
STREAM_WORDLINES = 2
STREAM_EVENTS = 3
#: Lowest dyadic band edge of fixed (nested) maps: (0, 2^-24] is one band.
FIXED_MIN_EXP = 24
TWO53 = 1 << 53


def fixed_bands() -> list[tuple[float, float]]:
    """Dyadic bands (0, 2^-24], (2^-24, 2^-23], ..., (1/2, 1] of fixed (nested) maps."""
    edges = [0.0] + [2.0 ** -e for e in range(FIXED_MIN_EXP, 0, -1)] + [1.0]
    return list(zip(edges[:-1], edges[1:]))


def geometric_candidates(key, ctr, L, popsize, thin, stream=STREAM_CELLS, tab=None, ctr3=None):
    """All candidates of one sub-pass over many streams (stream groups, or rows of weak-line maps).

    Args:
        key: (k0, k1) Philox key of the sub-pass.
        ctr: int64[n] counter word 1 of each stream (row id of the group's first tile).
        ctr3: int64[n] counter word 3 of each stream (the group bits ``k``); 0 when None.
        L: float64[n] log1p(-rate) per stream (log method).
        popsize: int64[n] population size per stream; 0 skips the stream.
        thin: whether draws carry an acceptance uniform V.
        tab: optional (toff int64[n], K int64[n], goff int64[n], t uint64[], guide int32[]):
            streams with K > 0 use the table method (see ``plan.py``).

    Returns:
        (stream_index int64[k], population_index int64[k], V uint64[k]) in
        generation order per stream.
    """
    ctr = np.asarray(ctr, np.int64)
    L = np.asarray(L, np.float64)
    popsize = np.asarray(popsize, np.int64)
    n = len(ctr)
    c3 = np.zeros(n, np.int64) if ctr3 is None else np.broadcast_to(np.asarray(ctr3, np.int64), (n,))
    if tab is None:
        tab = (np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
               np.zeros(1, np.uint64), np.zeros(1, np.int32))
    toff, K, goff, tt, guide = tab
    pos = np.full(n, -1, np.int64)
    draw = np.zeros(n, np.int64)
    pending = np.zeros(n, np.int64)  # table method: skips accumulated over tail draws
    alive = popsize > 0
    out_s, out_p, out_v = [], [], []
    while alive.any():
        idx = np.nonzero(alive)[0]
        j = draw[idx]
        call = j if thin else j // 2
        x0, x1, x2, x3 = rng.philox4x32_10(call, ctr[idx], stream, c3[idx], key[0], key[1])
        if thin:
            u = rng.u53(x0, x1)
            v = rng.u53(x2, x3)
        else:
            u = np.where(j % 2 == 0, rng.u53(x0, x1), rng.u53(x2, x3))
            v = np.zeros(len(idx), np.uint64)
        draw[idx] = j + 1
        # log method
        g = rng.ln_u53(u) / L[idx]
        g = np.where(g < 0.0, 0.0, g)
        # table method
        Ki = K[idx]
        use_tab = Ki > 0
        if use_tab.any():
            b = (u >> np.uint64(53 - 12)).astype(np.int64)
            k = np.where(use_tab, guide[np.where(use_tab, goff[idx] + b, 0)], 0).astype(np.int64)
            while True:
                probe = toff[idx] + np.minimum(k, np.maximum(Ki - 1, 0))
                more = use_tab & (k < Ki) & (u < tt[probe])
                if not more.any():
                    break
                k = k + more
            tail = use_tab & (k == Ki)
            pending[idx[tail]] += Ki[tail]
            g = np.where(use_tab, (pending[idx] + k).astype(np.float64), g)
            done_tab = use_tab & ~tail
            pending[idx[done_tab]] = 0
            # a tail draw yields no candidate yet: only its draw is consumed
            keep_round = ~tail
            idx, g, v, j = idx[keep_round], g[keep_round], v[keep_round], j[keep_round]
        rem = (popsize[idx] - pos[idx] - 1).astype(np.float64)
        stop = ~(g < rem)
        alive[idx[stop]] = False
        go = ~stop
        newpos = pos[idx[go]] + g[go].astype(np.int64) + 1
        pos[idx[go]] = newpos
        out_s.append(idx[go])
        out_p.append(newpos)
        out_v.append(v[go])
    if not out_s:
        e = np.zeros(0, np.int64)
        return e, e.copy(), np.zeros(0, np.uint64)
    return np.concatenate(out_s), np.concatenate(out_p), np.concatenate(out_v)


def nested_sample(seed: int, tags: tuple[int, ...], rate: float, ctr: np.ndarray, popsize: int,
                  stream: int) -> list[np.ndarray]:
    """Sorted positions with threshold < rate per stream; nested in ``rate``."""
    ctr = np.asarray(ctr, np.int64)
    hit_s, hit_p = [], []
    if rate > 0:
        for bi, (lo, hi) in enumerate(fixed_bands()):
            if lo >= rate:
                break
            c = (hi - lo) / (1.0 - lo)
            L = -np.inf if c >= 1.0 else np.log1p(-c)
            band_key = rng.derive_key(seed, *tags, bi)
            s, p, v = geometric_candidates(band_key, ctr, np.full(len(ctr), L), np.full(len(ctr), popsize),
                                           thin=True, stream=stream)
            a = min(1.0, (rate - lo) / (hi - lo))
            keep = v < np.uint64(min(TWO53, int(np.floor(a * TWO53))))
            hit_s.append(s[keep])
            hit_p.append(p[keep])
    if not hit_s:
        return [np.zeros(0, np.int64) for _ in range(len(ctr))]
    # union per stream: unique (stream, position) pairs, then split by stream
    key = np.unique(np.concatenate(hit_s) * np.int64(popsize) + np.concatenate(hit_p))
    streams, pos = np.divmod(key, np.int64(popsize))
    bounds = np.searchsorted(streams, np.arange(len(ctr) + 1))
    return [pos[bounds[i]:bounds[i + 1]] for i in range(len(ctr))]


def weak_bitlines(seed: int, component: int, fraction: float, groups: np.ndarray,
                  row_bits: int) -> list[np.ndarray]:
    """Sorted weak bitlines of each (bank, subarray) group; nested in ``fraction``."""
    return nested_sample(seed, (component, TAG_BITLINE), fraction, groups, row_bits, STREAM_BITLINES)


def weak_wordlines(seed: int, component: int, fraction: float, row_id: np.ndarray) -> np.ndarray:
    """1 where a row is a weak wordline: its 53-bit uniform is below fraction * 2**53."""
    k0, k1 = rng.derive_key(seed, component, TAG_WORDLINE)
    x0, x1, _, _ = rng.philox4x32_10(0, np.asarray(row_id, np.int64), STREAM_WORDLINES, 0, k0, k1)
    thr = np.uint64(min(TWO53, int(np.floor(fraction * TWO53))))
    return (rng.u53(x0, x1) < thr).astype(np.uint8)
