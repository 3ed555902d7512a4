"""Line events: groups of bits that fail together (a component's ``line_events``, e.g. eml).

The scheme (the executable specification; every backend uses these functions, so their bits are
the same by construction):

* A line-event pass ``e`` of a plan (``Plan.ev_*``) has weak rows (weak-wordline map
  ``ev_wl[e]``: class 1), weak blocks per (bank, subarray) group (``ev_blk``: block indices of
  ``ev_block[e]`` bits) and member bitlines of each weak block (``ev_mem``: row positions).
* Every weak block ``b`` of every tile in a weak row (row id ``r``) draws one Philox block,
  counter ``(b, r, STREAM_EVENTS, 0)`` under key ``ev_key[e]``; it has an event iff the 53-bit
  uniform of words 0-1 is below ``ev_thr[e]`` (``floor(rate * 2**53)``). Keys: ``(seed, access,
  component, part, TAG_EVENT)`` under ``access`` persistence, ``(seed, component, part, TAG_EVENT)``
  under ``fixed`` (the same events every access, nested in the rate: a line's uniform never
  depends on it). One draw per weak tile-line: cost O(weak tile-lines), independent of the data.
* An event flips every member bit of its block that lies in the tensor, whatever the bit
  stores. A bit flips iff some sub-pass keeps it or some event covers it (union).

The event bits do not depend on the stored data, so a backend runs its sub-passes first
(they read the original bits), then :func:`merge_events` adds the event bits not already
flipped, keeping the log's contract (unique, increasing word indices, one segment).
"""

from __future__ import annotations

import numpy as np

from eden.engine import rng
from eden.engine.plan import Plan
from eden.engine.sampling import STREAM_EVENTS


def line_event_bits(plan: Plan) -> np.ndarray:
    """Sorted unique tensor bit offsets flipped by the plan's line events (int64)."""
    out = []
    nbits = plan.bit_hi - plan.bit_lo
    for e in range(len(plan.ev_thr)):
        tiles = np.flatnonzero(plan.tile_wlclass[plan.ev_wl[e]] == 1)
        if not len(tiles):
            continue
        g = plan.tile_group[tiles].astype(np.int64)
        lo, hi = plan.ev_blk_off[e, g], plan.ev_blk_off[e, g + 1]
        n = hi - lo
        t = np.repeat(tiles, n)
        # entry index into ev_blk of each (tile, weak block)
        start = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        j = start + np.arange(int(n.sum()), dtype=np.int64)
        if not len(j):
            continue
        block = int(plan.ev_block[e])
        b = plan.ev_blk[j].astype(np.int64)
        # only blocks that overlap the tensor can flip a bit of it (the draws are per block: skipping
        # the others changes nothing)
        first = t * plan.row_bits + b * block - plan.bit_lo
        near = (first + block > 0) & (first < nbits)
        t, b, j = t[near], b[near], j[near]
        x0, x1, _, _ = rng.philox4x32_10(b, plan.tile_row_id[t].astype(np.int64), STREAM_EVENTS, 0,
                                         int(plan.ev_key[e, 0]), int(plan.ev_key[e, 1]))
        hit = rng.u53(x0, x1) < plan.ev_thr[e]
        t, j = t[hit], j[hit]
        m0, m1 = plan.ev_mem_off[j], plan.ev_mem_off[j + 1]
        k = m1 - m0
        owner = np.repeat(np.arange(len(j)), k)
        mi = np.repeat(m0 - np.concatenate([[0], np.cumsum(k)[:-1]]), k) + np.arange(int(k.sum()), dtype=np.int64)
        bits = t[owner] * plan.row_bits + plan.ev_mem[mi].astype(np.int64) - plan.bit_lo
        out.append(bits[(bits >= 0) & (bits < nbits)])
    if not out:
        return np.zeros(0, np.int64)
    return np.unique(np.concatenate(out))


def pack_bits(bits: np.ndarray, word_bits: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique bit offsets -> (word index int64, xor mask of ``dtype``), one entry per word."""
    dtype = np.dtype(dtype)
    if not len(bits):
        return np.zeros(0, np.int64), np.zeros(0, dtype)
    w = bits // word_bits
    m = np.ones(len(bits), dtype) << (bits % word_bits).astype(dtype)
    uw, start = np.unique(w, return_index=True)
    return uw.astype(np.int64), np.bitwise_or.reduceat(m, start).astype(dtype)


def merge_events(xp, words, idx, mask, bits: np.ndarray, word_bits: int):
    """Add the event ``bits`` (host, sorted unique) to an injection already applied: flip the
    event bits no sub-pass flipped, and return the merged log ``(idx, mask)`` (see
    :func:`merge_words`)."""
    ew, em = pack_bits(bits, word_bits, words.dtype)
    if not len(ew):
        return idx, mask
    return merge_words(xp, words, idx, mask, xp.asarray(ew.astype(idx.dtype)), xp.asarray(em))


def merge_words(xp, words, idx, mask, ew, em):
    """Merge event log entries ``(ew, em)`` (unique increasing words, arrays of ``xp``, NumPy or
    CuPy, like the rest) into an injection already applied: XOR into ``words`` the event bits
    no sub-pass flipped; returns the union log ``(idx, mask)`` (unique increasing word indices).
    ``idx``/``mask``: the sub-passes' log, flattened, word indices increasing."""
    n = int(idx.size)
    if not int(ew.size):
        return idx, mask
    ew = ew.astype(idx.dtype)
    if n:
        pos = xp.searchsorted(idx, ew)
        posc = xp.minimum(pos, n - 1)
        hit = (pos < n) & (idx[posc] == ew)
        prior = xp.where(hit, mask[posc], xp.zeros_like(em))
    else:
        hit = xp.zeros(int(ew.size), bool)
        prior = xp.zeros_like(em)
    words[ew] ^= em & ~prior
    mask = mask.copy()
    if n:
        mask[posc[hit]] = mask[posc[hit]] | em[hit]
    new = ~hit
    all_i = xp.concatenate([idx, ew[new]])
    all_m = xp.concatenate([mask, em[new]])
    order = xp.argsort(all_i, kind="stable") if xp is np else xp.argsort(all_i)
    return all_i[order], all_m[order]
