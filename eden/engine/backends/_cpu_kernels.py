"""numba kernels of the CPU backend (see ``cpu.py`` for the contract).

Module-level so numba can cache the compiled code on disk (``cache=True``);
imported only when the CPU backend first runs, so ``import eden`` stays light.
All floating-point steps are separate IEEE operations (no ``fastmath``, no FMA
contraction), so every value equals the NumPy oracle bit for bit.

Layout of the work (the streams are those of ``plan.py``; only the order in
which this code computes them differs from the oracle, never the values):

* Draws come in *batches*: straight loops over consecutive Philox counters with
  no data dependence, so LLVM vectorizes Philox, the 53-bit draws and the
  software logarithm (its tables are compiled-in constants; floats divide with
  ``error_model="numpy"``, i.e. one IEEE division, no zero check). A scalar scan
  then takes the draws in order, exactly as ``reference.geometric_candidates``,
  and stops at the first candidate past the tile. Draws computed beyond that
  point are discarded: no state crosses tiles, so batch sizes change nothing.
* Low rates (``run_tiles``): tiles go in groups; the first draws of every tile
  of a group are made at once (vectorized across tiles), so a tile whose first
  skip leaves it costs a few nanoseconds. Candidates of the whole group are
  listed (their words prefetched), then per tile: data-dependent acceptance,
  union of the sub-passes' sorted lists, (word, mask) log entries; finally the
  group's words are XORed (independent stores: their cache misses overlap).
* High rates (``run_tiles_single``, ``run_tiles_fused``): per tile, the main
  sub-pass's draws are batched along its stream and one branch-free loop takes
  each skip, decides acceptance and builds the log entries, interleaving the
  sorted kept positions of any other sub-pass; a word is XORed when the loop
  leaves it.
* Acceptance always reads original bits: a tile only reads its own words, before
  they change, and tiles never share a word.

Why ``run_tiles``, ``run_tiles_single`` and ``run_tiles_fused`` stay long (100-200
lines each): their inner loop carries a dozen pieces of state from one candidate to
the next (stream position, draw index within a batch, the batch buffers, the current
word and its mask, the other sub-passes' list cursor). Split into helper functions,
that state would cross a call per candidate as tuples or one-element arrays, which
numba neither keeps in registers nor vectorizes, and the draw batches must stay in
the same function as the loop that consumes them for LLVM to vectorize the batch.
Their steps are numbered in their docstrings and comments instead.
"""

import math

import numba as nb
import numpy as np
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba.core import cgutils, types
from numba.extending import intrinsic

from eden.engine import rng

M0 = np.uint64(rng.PHILOX_M0)
M1 = np.uint64(rng.PHILOX_M1)
W0 = np.uint32(rng.PHILOX_W0)
W1 = np.uint32(rng.PHILOX_W1)
LO32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
S21 = np.uint64(21)
S11 = np.uint32(11)
S41 = np.uint64(41)
S52 = np.uint64(52)
MANT = np.uint64((1 << 52) - 1)
ONE_BITS = np.uint64(0x3FF0000000000000)
LN2 = rng.LN2
LN_2_53 = rng.LN_2_53
THIRD = 1.0 / 3.0
LOG_LN_C = rng.LOG_LN_C
LOG_INV_C = rng.LOG_INV_C
#: Largest batch of draws generated at once per (tile, sub-pass).
BATCH = 2048
#: From this many first draws per tile, they are generated tile by tile.
TILE_MAJOR = 32
#: Draws prepared per tile group (tiles x first-batch draws of all sub-passes).
GROUP_DRAWS = 16384


@intrinsic
def _f64_bits(typingctx, x):
    """The IEEE-754 bit pattern of a float64 (a bitcast, no conversion)."""
    if not (isinstance(x, types.Float) and x.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.uint64))

    return types.uint64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    """The float64 with a given IEEE-754 bit pattern (a bitcast, no conversion)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(x), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """The float32 with a given IEEE-754 bit pattern (a bitcast, no conversion)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 32):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(x), codegen


#: llvm.prefetch's name: typed pointers (LLVM < 15) mangle the pointer type into it.
_PREFETCH = "llvm.prefetch.p0" if llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch_w(typingctx, arr, idx):
    """Hint: arr[idx] is about to be written (llvm.prefetch; no effect on results)."""
    if not (isinstance(arr, types.Array) and isinstance(idx, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            _PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


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


@nb.njit(inline="always", cache=True, error_model="numpy")
def ln_u53(x):
    """rng.ln_u53, step by step. frexp is read off the bit pattern (exact): y = float(x + 1)
    is a normal double m * 2^e with m = 1.f in [1, 2). The tables are module constants
    (compiled in), which lets loops over many draws vectorize, gathers included."""
    y = float(x + np.uint64(1))
    bits = _f64_bits(y)
    ef = float(np.int64(bits >> S52) - 1023)
    m = _bits_f64((bits & MANT) | ONE_BITS)
    i = np.int64((m - 1.0) * 256.0)
    c = 1.0 + (float(i) + 0.5) / 256.0
    r = (m - c) * LOG_INV_C[i]
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
    out = out + LOG_LN_C[i]
    out = out + p
    return out - LN_2_53


# error_model="numpy": a float division is one IEEE division (no zero check, which
# would also keep loops from vectorizing). Divisors are never zero where it matters.
JIT = {"cache": True, "error_model": "numpy"}


@nb.njit(**JIT)
def prefill(thin, logm, k0, k1, rids, ntg, stream, nd, Lt, U, V, G, o):
    """The first nd draws (nd even) of the streams of ntg tiles (counter word 1 =
    rids[t]), draw-major at offset o: U[o + d * ntg + t], V (thin), G = max(ln U / Lt[t], 0)
    (logm). The inner loops run over independent tiles: they vectorize."""
    zero = np.uint32(0)
    # (row views indexed by the loop counter: provably in range, so the loops vectorize)
    if thin:
        for d in range(nd):
            od = o + d * ntg
            Ud = U[od:od + ntg]
            Vd = V[od:od + ntg]
            for t in range(ntg):
                x0, x1, x2, x3 = philox(np.uint32(d), rids[t], stream, zero, k0, k1)
                Ud[t] = u53(x0, x1)
                Vd[t] = u53(x2, x3)
    else:
        for b in range(nd // 2):
            od = o + 2 * b * ntg
            Ua = U[od:od + ntg]
            Ub = U[od + ntg:od + 2 * ntg]
            for t in range(ntg):
                x0, x1, x2, x3 = philox(np.uint32(b), rids[t], stream, zero, k0, k1)
                Ua[t] = u53(x0, x1)
                Ub[t] = u53(x2, x3)
    if logm:
        for d in range(nd):
            od = o + d * ntg
            Ud = U[od:od + ntg]
            Gd = G[od:od + ntg]
            for t in range(ntg):
                g = ln_u53(Ud[t]) / Lt[t]
                Gd[t] = 0.0 if g < 0.0 else g


@nb.njit(**JIT)
def fill(thin, logm, k0, k1, rid, stream, j0, nd, L, U, V, G):
    """Draws j0 .. j0 + nd - 1 of one stream (nd even; j0 even when not thin):
    U[i], V[i] (thin), G[i] = max(ln U / L, 0) (logm)."""
    zero = np.uint32(0)
    if thin:
        for i in range(nd):
            x0, x1, x2, x3 = philox(np.uint32(j0 + i), rid, stream, zero, k0, k1)
            U[i] = u53(x0, x1)
            V[i] = u53(x2, x3)
    else:
        b0 = j0 >> 1
        for i in range(nd >> 1):
            x0, x1, x2, x3 = philox(np.uint32(b0 + i), rid, stream, zero, k0, k1)
            U[2 * i] = u53(x0, x1)
            U[2 * i + 1] = u53(x2, x3)
    if logm:
        for i in range(nd):
            g = ln_u53(U[i]) / L
            G[i] = 0.0 if g < 0.0 else g


@nb.njit(**JIT)
def scan(thin, logm, K, toff, goff, tab_t, guide, popsize, base, bl_cols, lo, hi, tbase, words, wsh,
         U, V, G, o, st, nd, pos, acc, cpos, cv, m):
    """Consume draws 0 .. nd - 1 of a batch (draw i at U/V/G[o + i * st]), in order,
    exactly as ``reference.geometric_candidates``: population index ``pos`` advances
    by skip + 1 until it leaves the population. Candidates whose row position lies
    in [lo, hi) go to cpos[m:] (with their V in cv when thin; acceptance is decided
    later, see ``accept``), and their word is prefetched.

    Returns (done, pos, acc, m); done: the stream left the tile (later draws unused)."""
    for i in range(nd):
        q = o + i * st
        if logm:
            g = G[q]
            if not (g < float(popsize - pos - 1)):
                return True, pos, acc, m
            pos = pos + np.int64(g) + 1
        else:
            # table method: count thresholds above u, starting from the guide; all K
            # above it is a tail: add K and take the next draw (no candidate yet)
            u = U[q]
            k = np.int64(guide[goff + np.int64(u >> S41)])
            while k < K and u < tab_t[toff + k]:
                k += 1
            if k == K:
                acc += K
                continue
            gi = acc + k
            acc = np.int64(0)
            if not (gi < popsize - pos - 1):
                return True, pos, acc, m
            pos = pos + gi + 1
        rowpos = pos if base < 0 else np.int64(bl_cols[base + pos])
        if rowpos < lo:
            continue
        if rowpos >= hi:
            return True, pos, acc, m
        cpos[m] = rowpos
        if thin:
            cv[m] = V[q]
        _prefetch_w(words, (tbase + rowpos) >> wsh)
        m += 1
    return False, pos, acc, m


@nb.njit(**JIT)
def accept(cpos, cv, a, b, words, tbase, wsh, wmask, A0, A1):
    """Keep the candidates cpos[a:b] whose V is below the acceptance threshold of their
    stored (original) bit, compacted in place; returns the new end. No branch on the
    loaded words, so their loads overlap."""
    n = a
    for i in range(a, b):
        rowpos = np.int64(cpos[i])
        tb = tbase + rowpos
        bit = (np.uint64(words[tb >> wsh]) >> np.uint64(tb & wmask)) & np.uint64(1)
        thr = A0 + (A1 - A0) * bit
        cpos[n] = rowpos
        n += np.int64(cv[i] < thr)
    return n


@nb.njit(**JIT)
def batch_size(popsize, pos, rate, bmax):
    """Draws to generate next: the expected number left in the tile + 1 sigma + 2, even."""
    e = float(popsize - pos - 1) * rate * 1.02
    nd = np.int64(e + math.sqrt(e)) + 2
    nd += nd & 1
    return min(nd, bmax)


@nb.njit(**JIT)
def merge(cpos, la, lb, live, comb):
    """Union of live sorted position lists cpos[la[i]:lb[i]] into comb; returns its length.
    Consumes la (each list's head advances)."""
    n = 0
    if live == 2:
        i, ie, j, je = la[0], lb[0], la[1], lb[1]
        while i < ie and j < je:
            x = cpos[i]
            y = cpos[j]
            if x <= y:
                comb[n] = x
                i += 1
                if x == y:
                    j += 1
            else:
                comb[n] = y
                j += 1
            n += 1
        while i < ie:
            comb[n] = cpos[i]
            i += 1
            n += 1
        while j < je:
            comb[n] = cpos[j]
            j += 1
            n += 1
        return n
    big = np.int64(1) << 62
    while True:
        m = big
        for i in range(live):
            if la[i] < lb[i]:
                x = np.int64(cpos[la[i]])
                if x < m:
                    m = x
        if m == big:
            return n
        comb[n] = m
        n += 1
        for i in range(live):
            if la[i] < lb[i] and np.int64(cpos[la[i]]) == m:
                la[i] += 1


@nb.njit(**JIT)
def run_tiles_single(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl, sp_key,
                     sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t, guide,
                     out_idx, out_mask, n_start, end):
    """run_tiles for one sub-pass over all bitlines at a high rate (many draws per tile):
    per tile, batches of draws vectorized along the stream, then one scalar loop that
    takes each skip, decides acceptance and builds the (word, mask) entries, with no
    intermediate lists and no branch on the loaded words. A word is XORed when the loop
    leaves it (it is in cache); acceptance reads only words at or after the current one."""
    wmask = (np.int64(1) << wsh) - 1
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    thin = sp_thin[0] != 0
    k0 = sp_key[0, 0]
    k1 = sp_key[0, 1]
    size = np.int64(row_bits)
    room = (row_bits >> wsh) + 2
    n = n_start
    for t in range(t_begin, t_end):
        if end - n < room:
            # no room for a whole tile: restore this range, report
            for i in range(n_start, n):
                words[out_idx[i]] ^= out_mask[i]
            return -1
        cls = np.int64(tile_wl[sp_wl[0], t]) if sp_wl[0] >= 0 else 0
        if sp_active[0, cls] == 0:
            continue
        K = sp_tab[0, cls, 1]
        logm = K == 0
        toff = sp_tab[0, cls, 0]
        goff = tab_goff[0, cls]
        A0 = sp_A[0, cls, 0]
        dA = sp_A[0, cls, 1] - A0  # (wraps; A0 + dA * bit is A0 or A1)
        L = sp_L[0, cls]
        rid = tile_row_id[t]
        tstart = np.int64(t) * row_bits
        lo = max(bit_lo - tstart, 0)
        hi = min(bit_hi - tstart, row_bits)
        tbase = tstart - bit_lo
        pos = np.int64(-1)
        acc = np.int64(0)
        j0 = np.int64(0)
        cur = (tbase + lo) >> wsh  # a word of this tile: XORing it with 0 is harmless
        mask = np.uint64(0)
        done = False
        while not done:
            nd = batch_size(size, pos, sp_rate[0, cls], BATCH)
            fill(thin, logm, k0, k1, rid, np.uint32(0), j0, nd, L, ubuf, vbuf, gbuf)
            j0 += nd
            for i in range(nd):
                # the skip (as in ``scan``)
                if logm:
                    g = gbuf[i]
                    if not (g < float(size - pos - 1)):
                        done = True
                        break
                    pos = pos + np.int64(g) + 1
                else:
                    u = ubuf[i]
                    k = np.int64(guide[goff + np.int64(u >> S41)])
                    while k < K and u < tab_t[toff + k]:
                        k += 1
                    if k == K:
                        acc += K
                        continue
                    gi = acc + k
                    acc = np.int64(0)
                    if not (gi < size - pos - 1):
                        done = True
                        break
                    pos = pos + gi + 1
                if pos < lo:
                    continue
                if pos >= hi:
                    done = True
                    break
                tb = tbase + pos
                w = tb >> wsh
                bsh = np.uint64(tb & wmask)
                # branch-free: on a new word, XOR and log the finished one (the log entry is
                # written either way, kept if the word changed and kept a bit)
                fm = mask & (np.uint64(0) - np.uint64(w != cur))  # mask if the word changed, else 0
                words[cur] ^= fm
                out_idx[n] = cur
                out_mask[n] = mask
                n += np.int64(fm != np.uint64(0))
                mask ^= fm
                cur = w
                if thin:
                    bit = (np.uint64(words[w]) >> bsh) & np.uint64(1)
                    keep = np.uint64(vbuf[i] < A0 + dA * bit)
                else:
                    keep = np.uint64(1)
                mask |= keep << bsh
        words[cur] ^= mask
        out_idx[n] = cur
        out_mask[n] = mask
        n += np.int64(mask != np.uint64(0))
    return n


@nb.njit(**JIT)
def sub_list(s, t, thin, cls, k0, k1, rid, row_bits, tile_group, sp_pop, sp_L, sp_rate, sp_A, sp_tab, tab_goff,
             tab_t, guide, bl_off, bl_cols, lo, hi, tbase, words, wsh, wmask, ubuf, vbuf, gbuf, cpos, cv, m):
    """Sub-pass s's kept positions in tile t, sorted, at cpos[m:]; returns the end."""
    if sp_pop[s] < 0:
        base = np.int64(-1)
        size = np.int64(row_bits)
    else:
        gidx = np.int64(tile_group[t])
        base = bl_off[sp_pop[s], gidx]
        size = bl_off[sp_pop[s], gidx + 1] - base
    K = sp_tab[s, cls, 1]
    logm = K == 0
    a = m
    done = False
    pos = np.int64(-1)
    acc = np.int64(0)
    j0 = np.int64(0)
    while not done:
        nd = batch_size(size, pos, sp_rate[s, cls], BATCH)
        fill(thin, logm, k0, k1, rid, np.uint32(0), j0, nd, sp_L[s, cls], ubuf, vbuf, gbuf)
        done, pos, acc, m = scan(thin, logm, K, sp_tab[s, cls, 0], tab_goff[s, cls], tab_t, guide, size, base,
                                 bl_cols, lo, hi, tbase, words, wsh, ubuf, vbuf, gbuf, 0, 1, nd, pos, acc, cpos,
                                 cv, m)
        j0 += nd
    if thin and m > a:
        m = accept(cpos, cv, a, m, words, tbase, wsh, wmask, sp_A[s, cls, 0], sp_A[s, cls, 1])
    return m


@nb.njit(**JIT)
def run_tiles_fused(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
                    sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t,
                    guide, bl_off, bl_cols, s0, out_idx, out_mask, n_start, end):
    """run_tiles when the main sub-pass s0 (all bitlines) takes many draws per tile.

    Per tile: 1. the other active sub-passes (if any) give one sorted list of kept
    positions (``sub_list``, merged); 2. s0's draws come in batches vectorized along
    its stream, and one scalar loop takes each skip, decides acceptance and builds
    the (word, mask) entries in position order, taking the other list's positions
    in turn (a position kept twice sets its bit twice: the union); no intermediate
    lists and no branch on loaded words. A word is XORed when the loop leaves it:
    acceptance only reads words at or after the current one, still original."""
    S = sp_thin.shape[0]
    wmask = (np.int64(1) << wsh) - 1
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    cpos = np.empty(max(S - 1, 1) * row_bits, np.int32)
    cv = np.empty(cpos.shape[0], np.uint64)
    comb = np.empty(row_bits if S > 2 else 1, np.int32)
    la = np.empty(S, np.int64)
    lb = np.empty(S, np.int64)
    thin = sp_thin[s0] != 0
    k0 = sp_key[s0, 0]
    k1 = sp_key[s0, 1]
    size = np.int64(row_bits)
    room = (row_bits >> wsh) + 2
    n = n_start
    for t in range(t_begin, t_end):
        if end - n < room:
            # no room for a whole tile: restore this range, report
            for i in range(n_start, n):
                words[out_idx[i]] ^= out_mask[i]
            return -1
        rid = tile_row_id[t]
        tstart = np.int64(t) * row_bits
        lo = max(bit_lo - tstart, 0)
        hi = min(bit_hi - tstart, row_bits)
        tbase = tstart - bit_lo
        # 1. the other sub-passes' kept positions: sec[si:ns]
        live = 0
        m = 0
        for s in range(S):
            if s == s0:
                continue
            cls = np.int64(tile_wl[sp_wl[s], t]) if sp_wl[s] >= 0 else 0
            if sp_active[s, cls] == 0:
                continue
            b = sub_list(s, t, sp_thin[s] != 0, cls, sp_key[s, 0], sp_key[s, 1], rid, row_bits, tile_group,
                         sp_pop, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, lo, hi,
                         tbase, words, wsh, wmask, ubuf, vbuf, gbuf, cpos, cv, m)
            if b > m:
                la[live] = m
                lb[live] = b
                live += 1
            m = b
        if live > 1:
            sec = comb
            si = 0
            ns = merge(cpos, la, lb, live, comb)
        else:
            sec = cpos
            si = 0
            ns = lb[0] if live == 1 else 0
        # 2. the main sub-pass, interleaved with sec
        cls = np.int64(tile_wl[sp_wl[s0], t]) if sp_wl[s0] >= 0 else 0
        active = sp_active[s0, cls] != 0
        K = sp_tab[s0, cls, 1]
        logm = K == 0
        toff = sp_tab[s0, cls, 0]
        goff = tab_goff[s0, cls]
        A0 = sp_A[s0, cls, 0]
        dA = sp_A[s0, cls, 1] - A0  # (wraps; A0 + dA * bit is A0 or A1)
        L = sp_L[s0, cls]
        pos = np.int64(-1)
        acc = np.int64(0)
        j0 = np.int64(0)
        cur = (tbase + lo) >> wsh  # a word of this tile: XORing it with 0 is harmless
        mask = np.uint64(0)
        done = not active
        while True:
            if not done:
                nd = batch_size(size, pos, sp_rate[s0, cls], BATCH)
                fill(thin, logm, k0, k1, rid, np.uint32(0), j0, nd, L, ubuf, vbuf, gbuf)
                j0 += nd
            else:
                nd = 0
            i = 0
            while True:
                # next main candidate p (or past the tile when the stream is done)
                p = np.int64(row_bits)
                keep = np.uint64(1)
                if i < nd:
                    if logm:
                        g = gbuf[i]
                        if not (g < float(size - pos - 1)):
                            done = True
                        else:
                            pos = pos + np.int64(g) + 1
                    else:
                        u = ubuf[i]
                        k = np.int64(guide[goff + np.int64(u >> S41)])
                        while k < K and u < tab_t[toff + k]:
                            k += 1
                        if k == K:
                            acc += K
                            i += 1
                            continue
                        gi = acc + k
                        acc = np.int64(0)
                        if not (gi < size - pos - 1):
                            done = True
                        else:
                            pos = pos + gi + 1
                    if not done:
                        if pos < lo:
                            i += 1
                            continue
                        if pos >= hi:
                            done = True
                        else:
                            p = pos
                elif not done:
                    break  # batch used up: draw more
                # positions of the other list before p, then p
                while si < ns and np.int64(sec[si]) < p:
                    tb = tbase + np.int64(sec[si])
                    si += 1
                    w = tb >> wsh
                    fm = mask & (np.uint64(0) - np.uint64(w != cur))
                    words[cur] ^= fm
                    out_idx[n] = cur
                    out_mask[n] = mask
                    n += np.int64(fm != np.uint64(0))
                    mask ^= fm
                    cur = w
                    mask |= np.uint64(1) << np.uint64(tb & wmask)
                if done:
                    break
                tb = tbase + p
                w = tb >> wsh
                bsh = np.uint64(tb & wmask)
                # branch-free: on a new word, XOR and log the finished one (the log entry
                # is written either way, kept if the word kept a bit)
                fm = mask & (np.uint64(0) - np.uint64(w != cur))  # mask if the word changed, else 0
                words[cur] ^= fm
                out_idx[n] = cur
                out_mask[n] = mask
                n += np.int64(fm != np.uint64(0))
                mask ^= fm
                cur = w
                if thin:
                    bit = (np.uint64(words[w]) >> bsh) & np.uint64(1)
                    keep = np.uint64(vbuf[i] < A0 + dA * bit)
                mask |= keep << bsh
                i += 1
            if done:
                break
        words[cur] ^= mask
        out_idx[n] = cur
        out_mask[n] = mask
        n += np.int64(mask != np.uint64(0))
    return n


@nb.njit(**JIT)
def run_tiles(t_begin, t_end, words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
              sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_rate, sp_nd0, tg, sp_A, sp_tab,
              tab_goff, tab_t, guide, bl_off, bl_cols, out_idx, out_mask, n_start, end):
    """Flip the bits of tiles [t_begin, t_end) and log them at out_*[n_start:end].

    Returns the log end, or -1 with the words restored if the log ran out of room.
    Tiles go in groups of tg. Per group: 0. the first sp_nd0[s] draws of every tile
    and sub-pass, vectorized across tiles; 1. per tile and active sub-pass, a scan of
    its draws (more in batches if needed) lists its candidates in the tile and
    prefetches their words; then per tile: 2. data-dependent acceptance (the words
    have arrived), 3. union of the sub-passes' sorted lists, 4. (word, mask) log
    entries; finally 5. the group's words are XORed. Acceptance reads only original
    bits: a group's words change in step 5, and tiles never share a word."""
    S = sp_thin.shape[0]
    Sx = max(S, 1)
    wsh = np.int64(0)
    while (np.int64(1) << wsh) < wb:
        wsh += 1
    wmask = np.int64(wb - 1)
    # the main sub-pass: the all-bitline one with most draws per tile
    s0 = -1
    for s in range(S):
        if sp_pop[s] < 0 and (s0 < 0 or sp_nd0[s] > sp_nd0[s0]):
            s0 = s
    if S == 1 and s0 == 0 and sp_nd0[0] >= TILE_MAJOR:
        return run_tiles_single(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl,
                                sp_key, sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff,
                                tab_t, guide, out_idx, out_mask, n_start, end)
    if s0 >= 0 and sp_nd0[s0] >= TILE_MAJOR:
        return run_tiles_fused(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_group,
                               tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab,
                               tab_goff, tab_t, guide, bl_off, bl_cols, s0, out_idx, out_mask, n_start, end)
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    pre_off = np.zeros(Sx + 1, np.int64)
    for s in range(S):
        pre_off[s + 1] = pre_off[s] + sp_nd0[s] * tg
    preU = np.empty(pre_off[Sx], np.uint64)
    preV = np.empty(pre_off[Sx], np.uint64)
    preG = np.empty(pre_off[Sx], np.float64)
    rids = np.empty(tg, np.uint32)
    Lt = np.empty(tg, np.float64)
    # candidates of the group: (tile tt, sub-pass s) owns cpos/cv[ca[tt * S + s]:cb[...]]
    ccap = 2 * pre_off[Sx] + 2 * row_bits
    cpos = np.empty(ccap, np.int32)
    cv = np.empty(ccap, np.uint64)
    ca = np.zeros(tg * Sx, np.int64)
    cb = np.zeros(tg * Sx, np.int64)
    la = np.empty(Sx, np.int64)
    lb = np.empty(Sx, np.int64)
    comb = np.empty(row_bits if S > 1 else 1, np.int32)
    n = n_start
    n_done = n_start  # entries [n_start, n_done) are XORed into words
    for g0 in range(t_begin, t_end, tg):
        g1 = min(g0 + tg, t_end)
        ntg = g1 - g0
        for t in range(ntg):
            rids[t] = tile_row_id[g0 + t]
        # 0. first draws of each sub-pass, all tiles of the group at once
        for s in range(S):
            logm = False
            for t in range(ntg):
                cls = np.int64(tile_wl[sp_wl[s], g0 + t]) if sp_wl[s] >= 0 else 0
                Lt[t] = sp_L[s, cls]
                if sp_tab[s, cls, 1] == 0 and sp_active[s, cls] != 0:
                    logm = True
            nd0 = sp_nd0[s]
            o = pre_off[s]
            if nd0 < TILE_MAJOR:
                # few draws per tile: vectorize across tiles (draw-major layout)
                prefill(sp_thin[s] != 0, logm, sp_key[s, 0], sp_key[s, 1], rids, ntg, np.uint32(0), nd0,
                        Lt, preU, preV, preG, o)
            else:
                # many: vectorize along each tile's stream (tile-major layout)
                for t in range(ntg):
                    a = o + t * nd0
                    fill(sp_thin[s] != 0, logm, sp_key[s, 0], sp_key[s, 1], rids[t], np.uint32(0), 0, nd0,
                         Lt[t], preU[a:a + nd0], preV[a:a + nd0], preG[a:a + nd0])
        # 1. candidates of every tile and active sub-pass
        m = 0
        for tt in range(ntg):
            t = g0 + tt
            for s in range(S):
                ca[tt * S + s] = m
                cb[tt * S + s] = m
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
                K = sp_tab[s, cls, 1]
                logm = K == 0
                nd0 = sp_nd0[s]
                if nd0 < TILE_MAJOR:
                    o = pre_off[s] + tt
                    st = ntg
                else:
                    o = pre_off[s] + tt * nd0
                    st = 1
                if logm and not (preG[o] < float(size)):
                    continue  # the first skip leaves the tile (most tiles at low rates)
                if ccap - m < row_bits:  # room for a whole tile's candidates
                    ccap = 2 * ccap
                    cpos2 = np.empty(ccap, np.int32)
                    cv2 = np.empty(ccap, np.uint64)
                    cpos2[:m] = cpos[:m]
                    cv2[:m] = cv[:m]
                    cpos = cpos2
                    cv = cv2
                tstart = np.int64(t) * row_bits
                lo = max(bit_lo - tstart, 0)
                hi = min(bit_hi - tstart, row_bits)
                tbase = tstart - bit_lo
                thin = sp_thin[s] != 0
                toff = sp_tab[s, cls, 0]
                goff = tab_goff[s, cls]
                done, pos, acc, m = scan(thin, logm, K, toff, goff, tab_t, guide, size, base, bl_cols, lo,
                                         hi, tbase, words, wsh, preU, preV, preG, o, st, nd0,
                                         np.int64(-1), np.int64(0), cpos, cv, m)
                j0 = sp_nd0[s]
                while not done:
                    nd = batch_size(size, pos, sp_rate[s, cls], BATCH)
                    fill(thin, logm, sp_key[s, 0], sp_key[s, 1], tile_row_id[t], np.uint32(0), j0, nd,
                         sp_L[s, cls], ubuf, vbuf, gbuf)
                    done, pos, acc, m = scan(thin, logm, K, toff, goff, tab_t, guide, size, base, bl_cols,
                                             lo, hi, tbase, words, wsh, ubuf, vbuf, gbuf, 0, 1, nd, pos, acc,
                                             cpos, cv, m)
                    j0 += nd
                cb[tt * S + s] = m
        for tt in range(ntg):
            t = g0 + tt
            tstart = np.int64(t) * row_bits
            lo = max(bit_lo - tstart, 0)
            hi = min(bit_hi - tstart, row_bits)
            tbase = tstart - bit_lo
            # 2. acceptance; the non-empty lists
            live = 0
            for s in range(S):
                a = ca[tt * S + s]
                b = cb[tt * S + s]
                if b > a and sp_thin[s] != 0:
                    cls = np.int64(tile_wl[sp_wl[s], t]) if sp_wl[s] >= 0 else 0
                    b = accept(cpos, cv, a, b, words, tbase, wsh, wmask, sp_A[s, cls, 0], sp_A[s, cls, 1])
                if b > a:
                    la[live] = a
                    lb[live] = b
                    live += 1
            if live == 0:
                continue
            # 3. union of the lists
            if live == 1:
                src = cpos
                q0 = la[0]
                q1 = lb[0]
            else:
                q0 = 0
                q1 = merge(cpos, la, lb, live, comb)
                src = comb
            if end - n < min(q1 - q0, ((hi - lo) >> wsh) + 2):
                # no room (a tile logs at most that many words): restore, report
                for i in range(n_start, n_done):
                    words[out_idx[i]] ^= out_mask[i]
                return -1
            # 4. (word, mask) entries in position order
            cur = np.int64(-1)
            mask = np.uint64(0)
            for q in range(q0, q1):
                tb = tbase + np.int64(src[q])
                w = tb >> wsh
                if w != cur:
                    if cur >= 0:
                        out_idx[n] = cur
                        out_mask[n] = mask
                        n += 1
                    cur = w
                    mask = np.uint64(0)
                mask |= np.uint64(1) << np.uint64(tb & wmask)
            out_idx[n] = cur
            out_mask[n] = mask
            n += 1
        # 5. XOR the group's words
        for i in range(n_done, n):
            words[out_idx[i]] ^= out_mask[i]
        n_done = n
    return n


@nb.njit(parallel=True, **JIT)
def inject_chunks(words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
                  sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_rate, sp_nd0, tg, sp_A, sp_tab,
                  tab_goff, tab_t, guide, bl_off, bl_cols, chunk_tiles, out_off, out_idx, out_mask, out_n):
    """Flip all tiles, chunk by chunk in parallel; a chunk whose log would overflow
    is left untouched and reported with out_n = -1 (the caller re-runs it)."""
    for c in nb.prange(chunk_tiles.shape[0] - 1):
        n = run_tiles(chunk_tiles[c], chunk_tiles[c + 1], words, wb, row_bits, bit_lo, bit_hi,
                      tile_row_id, tile_group, tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active,
                      sp_L, sp_rate, sp_nd0, tg, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols,
                      out_idx, out_mask, out_off[c], out_off[c + 1])
        out_n[c] = n - out_off[c] if n >= 0 else -1


@nb.njit(**JIT)
def inject_chunks_serial(words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl,
                         sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_rate, sp_nd0, tg, sp_A,
                         sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, chunk_tiles, out_off, out_idx,
                         out_mask, out_n):
    """inject_chunks on the calling thread only (small jobs)."""
    for c in range(chunk_tiles.shape[0] - 1):
        n = run_tiles(chunk_tiles[c], chunk_tiles[c + 1], words, wb, row_bits, bit_lo, bit_hi,
                      tile_row_id, tile_group, tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active,
                      sp_L, sp_rate, sp_nd0, tg, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols,
                      out_idx, out_mask, out_off[c], out_off[c + 1])
        out_n[c] = n - out_off[c] if n >= 0 else -1


@nb.njit(**JIT)
def correct_log(words, shift, idx, mask, off, cnt, low, high, write, clamp, zero_bits, low_bits, high_bits,
                nan_bits):
    """``correct.correct_segments`` for formats whose words are the upper bits of a float32
    (fp32: shift 0, bf16: shift 16). A logged word is implausible iff its value is NaN,
    infinite or outside [low, high] (float32 compares, exact). With ``write`` it is replaced
    (zero: zero_bits; clamp: high_bits above the range or +inf, nan_bits for NaN, low_bits
    otherwise) and its mask becomes original ^ replacement. Returns (implausible values,
    popcount of their masks before - after); without ``write`` nothing changes (count only)."""
    n_bad = 0
    delta = 0
    for c in range(cnt.shape[0]):
        for i in range(off[c], off[c] + cnt[c]):
            w = idx[i]
            cur = words[w]
            v = _bits_f32(np.uint32(np.uint32(cur) << shift))
            if not (v >= low and v <= high):  # NaN, or outside the range (infinities too:
                n_bad += 1                    # the range is finite)
                if write:
                    if not clamp:
                        new = zero_bits
                    elif v != v:
                        new = nan_bits
                    elif v > high:
                        new = high_bits
                    else:
                        new = low_bits
                    m = mask[i]
                    words[w] = new
                    m2 = m ^ (cur ^ new)
                    mask[i] = m2
                    delta += popcount64(np.uint64(m)) - popcount64(np.uint64(m2))
    return n_bad, delta


#: Entries ahead whose word the XOR loops prefetch (sparse logs miss in cache and TLB).
XOR_AHEAD = 24


@nb.njit(inline="always", **JIT)
def xor_range(words, idx, mask, a, b):
    """words[idx[i]] ^= mask[i] for i in [a, b), prefetching XOR_AHEAD entries ahead."""
    for i in range(a, b):
        if i + XOR_AHEAD < b:
            _prefetch_w(words, idx[i + XOR_AHEAD])
        words[idx[i]] ^= mask[i]


@nb.njit(parallel=True, **JIT)
def xor_segments(words, idx, mask, off, cnt):
    """words[idx] ^= mask over the valid prefix of every segment (undo / redo)."""
    for c in nb.prange(cnt.shape[0]):
        xor_range(words, idx, mask, off[c], off[c] + cnt[c])


@nb.njit(**JIT)
def xor_segments_serial(words, idx, mask, off, cnt):
    """xor_segments on the calling thread only (small logs)."""
    for c in range(cnt.shape[0]):
        xor_range(words, idx, mask, off[c], off[c] + cnt[c])


# ------------------------------------------------------------ weak-line maps
@nb.njit(**JIT)
def nested_bitmaps(keys, L, rate, thr, ctr, popsize, stream, bitmap):
    """``reference.nested_sample`` for all streams: bit ``p`` of ``bitmap[i]`` is set
    iff position ``p`` of stream ``i`` is kept by some band (log method, thin draws).

    keys uint32[B, 2], L float64[B], rate float64[B] (sizes batches), thr uint64[B] per
    band; ctr int64[n]; bitmap uint64[n, ceil(popsize / 64)], zeroed."""
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    for i in range(ctr.shape[0]):
        rid = np.uint32(ctr[i])
        for b in range(keys.shape[0]):
            pos = np.int64(-1)
            j0 = np.int64(0)
            done = False
            while not done:
                nd = batch_size(popsize, pos, rate[b], BATCH)
                fill(True, True, keys[b, 0], keys[b, 1], rid, stream, j0, nd, L[b], ubuf, vbuf, gbuf)
                j0 += nd
                for q in range(nd):
                    g = gbuf[q]
                    if not (g < float(popsize - pos - 1)):
                        done = True
                        break
                    pos = pos + np.int64(g) + 1
                    if vbuf[q] < thr[b]:
                        bitmap[i, pos >> 6] |= np.uint64(1) << np.uint64(pos & 63)


#: De Bruijn sequence and table: the index of the lowest set bit of x is
#: _DEBRUIJN_POS[((x & -x) * _DEBRUIJN) >> 58] (integer only).
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_POS = np.zeros(64, np.int64)
for _i in range(64):
    _DEBRUIJN_POS[((int(_DEBRUIJN) << _i) & 0xFFFFFFFFFFFFFFFF) >> 58] = _i


@nb.njit(inline="always", cache=True)
def popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@nb.njit(**JIT)
def bitmap_positions(bitmap, popsize):
    """(offsets int64[n + 1], sorted positions int64[...]) of the set bits of each row."""
    n = bitmap.shape[0]
    off = np.zeros(n + 1, np.int64)
    for i in range(n):
        c = 0
        for w in range(bitmap.shape[1]):
            c += popcount64(bitmap[i, w])
        off[i + 1] = off[i] + c
    pos = np.empty(off[n], np.int64)
    for i in range(n):
        k = off[i]
        for w in range(bitmap.shape[1]):
            x = bitmap[i, w]
            while x:
                low = x & (~x + np.uint64(1))
                pos[k] = w * 64 + _DEBRUIJN_POS[(low * _DEBRUIJN) >> np.uint64(58)]
                k += 1
                x ^= low
    return off, pos


@nb.njit(cache=True)
def weak_rows(k0, k1, row_id, stream, thr, out):
    """``reference.weak_wordlines``: out[i] = 1 iff U(row_id[i]) < thr."""
    zero = np.uint32(0)
    for i in range(row_id.shape[0]):
        x0, x1, _, _ = philox(zero, np.uint32(row_id[i]), stream, zero, k0, k1)
        out[i] = 1 if u53(x0, x1) < thr else 0
