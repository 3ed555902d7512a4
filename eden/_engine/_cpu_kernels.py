"""numba kernels of the CPU backend (see ``cpu.py`` for the contract).

Module-level so numba can cache the compiled code on disk (``cache=True``);
imported only when the CPU backend first runs, so ``import eden`` stays light.
All floating-point steps are separate IEEE operations (no ``fastmath``).
"""

import math

import numba as nb
import numpy as np

from eden._engine import rng


M0 = np.uint64(rng.PHILOX_M0)
M1 = np.uint64(rng.PHILOX_M1)
W0 = np.uint32(rng.PHILOX_W0)
W1 = np.uint32(rng.PHILOX_W1)
LO32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
S21 = np.uint64(21)
S11 = np.uint32(11)
LN2 = rng.LN2
LN_2_53 = rng.LN_2_53
THIRD = 1.0 / 3.0

@nb.njit(inline="always", cache=True)
def philox(c0, c1, c2, c3, k0, k1):
    for _ in range(rng.PHILOX_ROUNDS):
        p0 = np.uint64(c0) * M0
        p1 = np.uint64(c2) * M1
        n0 = np.uint32(p1 >> S32) ^ c1 ^ k0
        n1 = np.uint32(p1 & LO32)
        n2 = np.uint32(p0 >> S32) ^ c3 ^ k1
        n3 = np.uint32(p0 & LO32)
        c0, c1, c2, c3 = n0, n1, n2, n3
        k0 = np.uint32(k0 + W0)
        k1 = np.uint32(k1 + W1)
    return c0, c1, c2, c3

@nb.njit(inline="always", cache=True)
def u53(a, b):
    return (np.uint64(a) << S21) ^ np.uint64(b >> S11)

@nb.njit(inline="always", cache=True)
def ln_u53(x, ln_c, inv_c):
    y = float(x + np.uint64(1))
    m, e = math.frexp(y)
    m = m * 2.0
    ef = float(e - 1)
    i = int((m - 1.0) * 256.0)
    c = 1.0 + (float(i) + 0.5) / 256.0
    r = (m - c) * inv_c[i]
    p = r * 0.2
    p = -0.25 + p
    p = r * p
    p = THIRD + p
    p = r * p
    p = -0.5 + p
    p = r * p
    p = 1.0 + p
    p = r * p
    out = ef * LN2
    out = out + ln_c[i]
    out = out + p
    return out - LN_2_53

@nb.njit(inline="always", cache=True)
def draw_skip(thin, k0, k1, rid, L, draw, h2, h3, toff, K, goff, tab_t, guide, ln_c, inv_c):
    """One geometric skip (as float) and the acceptance draw V: (g, v, draw, h2, h3)."""
    acc = np.int64(0)
    while True:
        # 1. one draw: a fresh Philox block, or the cached second half
        v = np.uint64(0)
        if thin:
            x0, x1, x2, x3 = philox(np.uint32(draw), rid, np.uint32(0), np.uint32(0), k0, k1)
            u = u53(x0, x1)
            v = u53(x2, x3)
        elif draw % 2 == 0:
            x0, x1, x2, x3 = philox(np.uint32(draw // 2), rid, np.uint32(0), np.uint32(0), k0, k1)
            u = u53(x0, x1)
            h2 = x2
            h3 = x3
        else:
            u = u53(h2, h3)
        draw += 1
        if K == 0:
            # 2a. log method
            g = ln_u53(u, ln_c, inv_c) / L
            if g < 0.0:
                g = 0.0
            return g, v, draw, h2, h3
        # 2b. table method: count thresholds above u, starting from the guide
        k = np.int64(guide[goff + np.int64(u >> np.uint64(41))])
        while k < K and u < tab_t[toff + k]:
            k += 1
        if k < K:
            return float(acc + k), v, draw, h2, h3
        acc += K

@nb.njit(inline="always", cache=True)
def advance(thin, k0, k1, rid, L, popsize, pos, draw, h2, h3, pop_base, lo, hi, tbase,
            words, wb, A0, A1, bl_cols, toff, K, goff, tab_t, guide, ln_c, inv_c):
    """Next kept candidate of one generator: (rowpos or -1, pos, draw, h2, h3)."""
    while True:
        # 1-2. one skip; stop past the population
        g, v, draw, h2, h3 = draw_skip(thin, k0, k1, rid, L, draw, h2, h3, toff, K, goff, tab_t,
                                       guide, ln_c, inv_c)
        if not (g < float(popsize - pos - 1)):
            return -1, pos, draw, h2, h3
        pos = pos + np.int64(g) + 1
        # 3. population index -> bit position in the row
        rowpos = pos if pop_base < 0 else np.int64(bl_cols[pop_base + pos])
        if rowpos < lo:
            continue
        if rowpos >= hi:
            return -1, pos, draw, h2, h3
        # 4. data-dependent acceptance on the stored (original) bit
        if thin:
            tb = tbase + rowpos
            bit = (np.uint64(words[tb // wb]) >> np.uint64(tb % wb)) & np.uint64(1)
            thr = A1 if bit else A0
            if not (v < thr):
                continue
        return rowpos, pos, draw, h2, h3

@nb.njit(inline="always", cache=True)
def emit(out_idx, out_mask, n, w, mask):
    """Log one finished word. (Words are XORed once their tile is done: independent
    stores overlap their cache misses, and acceptance always reads original bits.)"""
    out_idx[n] = w
    out_mask[n] = mask
    return n + 1

@nb.njit(cache=True)
def run_tiles(t_begin, t_end, words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
              sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A, sp_tab, tab_goff, tab_t,
              guide, bl_off, bl_cols, ln_c, inv_c, out_idx, out_mask, n_start, end):
    """Flip the bits of tiles [t_begin, t_end); returns the log end, or -1 (words
    untouched) if the log has no room for another tile.

    Per tile: 1. start a generator per active sub-pass; 2. emit (word, mask) in
    position order, merging generators; 3. flush the last word; 4. XOR the words."""
    S = max(sp_thin.shape[0], 1)
    g_s = np.empty(S, np.int64)
    g_cls = np.empty(S, np.int64)
    g_pos = np.empty(S, np.int64)
    g_draw = np.empty(S, np.int64)
    g_h2 = np.empty(S, np.uint32)
    g_h3 = np.empty(S, np.uint32)
    g_cur = np.empty(S, np.int64)
    g_base = np.empty(S, np.int64)
    g_size = np.empty(S, np.int64)
    n = n_start
    for t in range(t_begin, t_end):
        if end - n < row_bits // wb + 2:
            return -1  # no room for a whole tile; nothing was written to words yet
        rid = tile_row_id[t]
        tstart = np.int64(t) * row_bits
        lo = max(bit_lo - tstart, 0)
        hi = min(bit_hi - tstart, row_bits)
        tbase = tstart - bit_lo
        # 1. start one generator per active sub-pass, positioned on its first kept bit
        live = 0
        for s in range(sp_thin.shape[0]):
            cls = 0
            if sp_wl[s] >= 0:
                cls = np.int64(tile_wl[sp_wl[s], t])
            if sp_active[s, cls] == 0:
                continue
            if sp_pop[s] < 0:
                base = np.int64(-1)
                size = np.int64(row_bits)
            else:
                gidx = np.int64(tile_group[t])
                base = bl_off[sp_pop[s], gidx]
                size = bl_off[sp_pop[s], gidx + 1] - base
            rp, pos, draw, h2, h3 = advance(sp_thin[s] != 0, sp_key[s, 0], sp_key[s, 1], rid,
                                            sp_L[s, cls], size, np.int64(-1), np.int64(0),
                                            np.uint32(0), np.uint32(0), base, lo, hi, tbase, words, wb,
                                            sp_A[s, cls, 0], sp_A[s, cls, 1], bl_cols,
                                            sp_tab[s, cls, 0], sp_tab[s, cls, 1], tab_goff[s, cls],
                                            tab_t, guide, ln_c, inv_c)
            if rp < 0:
                continue
            g_s[live] = s
            g_cls[live] = cls
            g_pos[live] = pos
            g_draw[live] = draw
            g_h2[live] = h2
            g_h3[live] = h3
            g_cur[live] = rp
            g_base[live] = base
            g_size[live] = size
            live += 1
        cur_word = np.int64(-1)
        mask = np.uint64(0)
        if live == 1:
            # 2a. one generator (the common case): no merge needed
            s = g_s[0]
            cls = g_cls[0]
            thin = sp_thin[s] != 0
            k0 = sp_key[s, 0]
            k1 = sp_key[s, 1]
            L = sp_L[s, cls]
            A0 = sp_A[s, cls, 0]
            A1 = sp_A[s, cls, 1]
            toff = sp_tab[s, cls, 0]
            K = sp_tab[s, cls, 1]
            goff = tab_goff[s, cls]
            size = g_size[0]
            base = g_base[0]
            pos = g_pos[0]
            draw = g_draw[0]
            h2 = g_h2[0]
            h3 = g_h3[0]
            rp = g_cur[0]
            hot = (not thin) and base < 0
            lim = float(min(hi, size))
            while rp >= 0:
                tb = tbase + rp
                w = tb // wb
                if w != cur_word:
                    if cur_word >= 0:
                        n = emit(out_idx, out_mask, n, cur_word, mask)
                    cur_word = w
                    mask = np.uint64(0)
                mask |= np.uint64(1) << np.uint64(tb % wb)
                if hot:
                    # all bitlines, no acceptance: the position is the skip sum
                    g, v, draw, h2, h3 = draw_skip(False, k0, k1, rid, L, draw, h2, h3, toff, K, goff,
                                                   tab_t, guide, ln_c, inv_c)
                    if not (g < lim - float(pos) - 1.0):
                        break
                    pos = pos + np.int64(g) + 1
                    rp = pos
                else:
                    rp, pos, draw, h2, h3 = advance(thin, k0, k1, rid, L, size, pos, draw, h2, h3, base,
                                                    lo, hi, tbase, words, wb, A0, A1, bl_cols, toff, K,
                                                    goff, tab_t, guide, ln_c, inv_c)
            live = 0
        # 2b. k-way merge in position order; equal positions flip once
        while live > 0:
            m = g_cur[0]
            for i in range(1, live):
                if g_cur[i] < m:
                    m = g_cur[i]
            tb = tbase + m
            w = tb // wb
            if w != cur_word:
                if cur_word >= 0:
                    n = emit(out_idx, out_mask, n, cur_word, mask)
                cur_word = w
                mask = np.uint64(0)
            mask |= np.uint64(1) << np.uint64(tb % wb)
            i = 0
            while i < live:
                if g_cur[i] == m:
                    s = g_s[i]
                    cls = g_cls[i]
                    rp, pos, draw, h2, h3 = advance(sp_thin[s] != 0, sp_key[s, 0], sp_key[s, 1], rid,
                                                    sp_L[s, cls], g_size[i], g_pos[i], g_draw[i],
                                                    g_h2[i], g_h3[i], g_base[i], lo, hi, tbase, words,
                                                    wb, sp_A[s, cls, 0], sp_A[s, cls, 1], bl_cols,
                                                    sp_tab[s, cls, 0], sp_tab[s, cls, 1],
                                                    tab_goff[s, cls], tab_t, guide, ln_c, inv_c)
                    if rp < 0:
                        live -= 1
                        g_s[i] = g_s[live]
                        g_cls[i] = g_cls[live]
                        g_pos[i] = g_pos[live]
                        g_draw[i] = g_draw[live]
                        g_h2[i] = g_h2[live]
                        g_h3[i] = g_h3[live]
                        g_cur[i] = g_cur[live]
                        g_base[i] = g_base[live]
                        g_size[i] = g_size[live]
                        continue
                    g_pos[i] = pos
                    g_draw[i] = draw
                    g_h2[i] = h2
                    g_h3[i] = h3
                    g_cur[i] = rp
                i += 1
        # 3. the tile's last word
        if cur_word >= 0:
            n = emit(out_idx, out_mask, n, cur_word, mask)
    # 4. flip the range's words at the end: one long loop of independent stores
    #    overlaps its cache misses, and acceptance above read only original bits
    for i in range(n_start, n):
        words[out_idx[i]] ^= out_mask[i]
    return n

@nb.njit(parallel=True, cache=True)
def inject_chunks(words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
                  sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A, sp_tab, tab_goff, tab_t,
                  guide, bl_off, bl_cols, ln_c, inv_c, chunk_tiles, out_off, out_idx, out_mask, out_n):
    """Flip all tiles, chunk by chunk in parallel; a chunk whose log would overflow
    is left untouched and reported with out_n = -1 (the caller re-runs it)."""
    for c in nb.prange(chunk_tiles.shape[0] - 1):
        n = run_tiles(chunk_tiles[c], chunk_tiles[c + 1], words, wb, row_bits, bit_lo, bit_hi,
                      tile_row_id, tile_group, tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active,
                      sp_L, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, ln_c, inv_c,
                      out_idx, out_mask, out_off[c], out_off[c + 1])
        out_n[c] = n - out_off[c] if n >= 0 else -1

@nb.njit(parallel=True, cache=True)
def xor_segments(words, idx, mask, off, cnt):
    """words[idx] ^= mask over the valid prefix of every segment (undo / redo)."""
    for c in nb.prange(cnt.shape[0]):
        for i in range(off[c], off[c] + cnt[c]):
            words[idx[i]] ^= mask[i]

