"""Compiled CPU backend (numba): the same scheme as ``reference.py``, O(errors).

One tile (row segment) at a time: the tile's sub-passes are geometric
generators merged in position order (a k-way merge with de-duplication, so a
bit kept by several sub-passes flips once); finished words are emitted as
(word index, xor mask). Generation only reads the tensor; each chunk's
words are XORed once its tiles are generated. The kernels live in
``_cpu_kernels.py``; ``cuda/inject.cu`` follows them step by step.

numba is compiled lazily on first use (``import eden`` stays light). All
floating-point steps are separate IEEE operations (no ``fastmath``), so the
results equal the NumPy oracle bit for bit.
"""

from __future__ import annotations

import numpy as np

from eden._engine import rng
from eden._engine.plan import Plan

_KERNELS = None


def kernels():
    global _KERNELS
    if _KERNELS is None:
        from eden._engine import _cpu_kernels as k

        _KERNELS = (k.inject_chunks, k.xor_segments)
    return _KERNELS


def _threads() -> int:
    import numba

    return numba.get_num_threads()


def inject(plan: Plan, words: np.ndarray):
    """Flip ``words`` in place per ``plan``; returns the log as segments.

    Returns:
        (idx, mask, off, cnt): entry ``i`` of segment ``c`` (``off[c] <= i <
        off[c] + cnt[c]``) says ``words[idx[i]]`` was XORed with ``mask[i]``.
        Indices are unique and increase within and across segments.
    """
    inject_chunks, _ = kernels()
    T = plan.n_tiles
    n_chunks = max(1, min(T, 16 * _threads()))
    chunk_tiles = np.linspace(0, T, n_chunks + 1).round().astype(np.int64)
    wb = plan.word_bits
    # Log capacity per chunk: mean + 10 sigma of its candidates (never more than its
    # words) plus one row; a chunk that would overflow is re-run with room for all.
    total_bits = float(plan.bit_hi - plan.bit_lo)
    first = np.maximum(chunk_tiles[:-1] * plan.row_bits, plan.bit_lo)
    last = np.minimum(chunk_tiles[1:] * plan.row_bits, plan.bit_hi)
    chunk_words = (last - first) // wb + 2
    mu = plan.expected_candidates * (last - first) / max(total_bits, 1.0)
    row_words = plan.row_bits // wb + 2
    cap = (np.minimum(chunk_words, np.ceil(mu + 10.0 * np.sqrt(mu) + 64)) + row_words).astype(np.int64)
    off = np.zeros(n_chunks + 1, np.int64)
    np.cumsum(cap, out=off[1:])
    idx_dtype = np.int32 if len(words) < 2**31 else np.int64
    idx = np.empty(off[-1], idx_dtype)
    mask = np.empty(off[-1], words.dtype)
    cnt = np.zeros(n_chunks, np.int64)
    args = (plan.tile_row_id, plan.tile_group, plan.tile_wlclass, plan.sp_key, plan.sp_thin, plan.sp_pop,
            plan.sp_wl, plan.sp_active, plan.sp_L, plan.sp_A, plan.sp_tab, plan.tab_goff, plan.tab_t,
            plan.tab_guide, plan.bl_offsets, plan.bl_cols, rng.LOG_LN_C, rng.LOG_INV_C)
    inject_chunks(words, wb, plan.row_bits, plan.bit_lo, plan.bit_hi, *args, chunk_tiles, off, idx, mask, cnt)
    over = np.nonzero(cnt < 0)[0]
    if len(over):  # rare: re-run each overflowed (untouched) chunk with room for every word
        parts_i, parts_m = [], []
        for c in range(n_chunks):
            if cnt[c] >= 0:
                parts_i.append(idx[off[c]:off[c] + cnt[c]])
                parts_m.append(mask[off[c]:off[c] + cnt[c]])
                continue
            sub_off = np.array([0, chunk_words[c] + row_words], np.int64)
            sub_idx = np.empty(sub_off[1], idx_dtype)
            sub_mask = np.empty(sub_off[1], words.dtype)
            sub_cnt = np.zeros(1, np.int64)
            inject_chunks(words, wb, plan.row_bits, plan.bit_lo, plan.bit_hi, *args,
                          chunk_tiles[c:c + 2].copy(), sub_off, sub_idx, sub_mask, sub_cnt)
            if sub_cnt[0] < 0:  # pragma: no cover - capacity is the chunk's word count
                raise RuntimeError("internal error: flip log overflow after resizing")
            cnt[c] = sub_cnt[0]
            parts_i.append(sub_idx[:cnt[c]])
            parts_m.append(sub_mask[:cnt[c]])
        idx = np.concatenate(parts_i)
        mask = np.concatenate(parts_m)
        off = np.zeros(n_chunks + 1, np.int64)
        np.cumsum(cnt, out=off[1:])
    return idx, mask, off[:-1], cnt


def xor_segments(words: np.ndarray, idx, mask, off, cnt) -> None:
    """Apply (or undo: XOR is its own inverse) a segment log in parallel."""
    if len(cnt) == 0:
        return
    kernels()[1](words, idx, mask, np.ascontiguousarray(off), cnt)
