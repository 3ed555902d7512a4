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
  and stops at the first candidate past the stream group (or past the range of
  tiles asked for). Draws computed beyond that point are discarded: no state
  crosses stream groups, so batch sizes change nothing.
* Stream groups (``walk_group``, ``group_positions``, ``run_tiles``): each sub-pass's
  groups that meet the range of tiles are walked in order (a group that starts before
  the range is walked from its start, its draws there dropped: the split of the tiles
  into chunks never changes the streams); candidates are listed with their V and their
  words prefetched, then data-dependent acceptance keeps some; the sub-passes' sorted
  lists are united, become (word, mask) log entries, and the words are XORed
  (independent stores: their cache misses overlap). O(candidates + groups).
* High rates (``run_tiles_single``, ``run_tiles_fused``; the main sub-pass's groups
  are single tiles): per tile, the main sub-pass's draws are batched along its stream
  and one branch-free loop takes each skip, decides acceptance and builds the log
  entries, interleaving the sorted kept positions of the other sub-passes (listed for
  the whole range first); a word is XORed when the loop leaves it.
* Acceptance always reads original bits: a range of tiles only reads its own words,
  before they change, and tiles never share a word.

Why ``walk_group``, ``run_tiles_single`` and ``run_tiles_fused`` stay long (100-150
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
#: Largest batch of draws generated at once per stream.
BATCH = 2048
#: From this many draws per tile (single-tile groups), the main sub-pass runs fused with the log.
TILE_MAJOR = 32


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
def next_skip(logm, g, u, guide, goff, tab_t, toff, K, room, acc):
    """One geometric skip of a stream from its draw: the log method's ``g`` or, for the table
    method, the 53-bit ``u`` through the guide table (``acc``: the tails added so far).

    Returns (state, gap, acc): state 0, the next candidate is ``gap + 1`` positions on; 1, a tail
    (all ``K`` thresholds above ``u``: ``K`` added to ``acc``, no candidate yet, take the next
    draw); 2, no candidate within ``room`` more positions (the stream is done)."""
    if logm:
        if not (g < float(room)):
            return 2, np.int64(0), acc
        return 0, np.int64(g), acc
    k = np.int64(guide[goff + np.int64(u >> S41)])
    while k < K and u < tab_t[toff + k]:
        k += 1
    if k == K:
        return 1, np.int64(0), acc + K
    gi = acc + k
    if not (gi < room):
        return 2, np.int64(0), np.int64(0)
    return 0, gi, np.int64(0)


@nb.njit(**JIT)
def fill(thin, logm, k0, k1, rid, stream, c3, j0, nd, L, U, V, G):
    """Draws j0 .. j0 + nd - 1 of one stream, counter (draw, rid, stream, c3) (nd even; j0 even when not thin):
    U[i], V[i] (thin), G[i] = max(ln U / L, 0) (logm)."""
    if thin:
        for i in range(nd):
            x0, x1, x2, x3 = philox(np.uint32(j0 + i), rid, stream, c3, k0, k1)
            U[i] = u53(x0, x1)
            V[i] = u53(x2, x3)
    else:
        b0 = j0 >> 1
        for i in range(nd >> 1):
            x0, x1, x2, x3 = philox(np.uint32(b0 + i), rid, stream, c3, k0, k1)
            U[2 * i] = u53(x0, x1)
            U[2 * i + 1] = u53(x2, x3)
    if logm:
        for i in range(nd):
            g = ln_u53(U[i]) / L
            G[i] = 0.0 if g < 0.0 else g


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


#: Entries ahead whose word the XOR loops prefetch (sparse logs miss in cache and TLB).
XOR_AHEAD = 24


@nb.njit(inline="always", **JIT)
def xor_range(words, idx, mask, a, b):
    """words[idx[i]] ^= mask[i] for i in [a, b), prefetching XOR_AHEAD entries ahead."""
    for i in range(a, b):
        if i + XOR_AHEAD < b:
            _prefetch_w(words, idx[i + XOR_AHEAD])
        words[idx[i]] ^= mask[i]



@nb.njit(**JIT)
def run_tiles_single(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl, sp_key,
                     sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t, guide,
                     out_idx, out_mask, n_start, end):
    """run_tiles for one sub-pass over all bitlines at a high rate (many draws per tile, so
    its stream groups are single tiles, counter word 3 = 0):
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
            fill(thin, logm, k0, k1, rid, np.uint32(0), np.uint32(0), j0, nd, L, ubuf, vbuf, gbuf)
            j0 += nd
            for i in range(nd):
                st, gap, acc = next_skip(logm, gbuf[i], ubuf[i], guide, goff, tab_t, toff, K, size - pos - 1, acc)
                if st == 1:
                    continue
                if st == 2:
                    done = True
                    break
                pos = pos + gap + 1
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
def walk_group(gi, s, t_lo, t_hi, words, wsh, row_bits, bit_lo, nbits, tile_row_id, tile_group, grp_t0, grp_t1,
               grp_cls, sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t, guide,
               bl_off, bl_cols, pop_cum, ubuf, vbuf, gbuf, out, vout, m):
    """Sub-pass s's kept candidates from stream group gi that lie in tiles [t_lo, t_hi), as
    increasing tensor-bit positions at out[m:] (``out`` and the scratch ``vout`` are replaced
    by larger copies when full); returns (out, vout, m).

    One geometric walk over the concatenated populations of the group's tiles, exactly as
    ``reference.subpass_candidates``: batches of draws vectorized along the group's stream
    (counter (draw, row id of its first tile, 0, k)), then a scalar scan. A group that
    starts before t_lo is walked from its start (its draws there are made and dropped), so
    the positions never depend on how the tiles were split. Acceptance (thin sub-passes)
    reads the words, which must still hold their original bits: the walk lists the
    candidates with their V and prefetches their words, then one pass keeps those below the
    threshold of their stored bit (no branch on a loaded word: the loads overlap)."""
    t0 = grp_t0[gi]
    t1 = grp_t1[gi]
    cls = np.int64(grp_cls[gi])
    pop = sp_pop[s]
    a = max(t_lo, t0)
    b = min(t_hi, t1)
    if pop < 0:
        c0 = t0 * row_bits
        size = (t1 - t0) * row_bits
        clo = a * row_bits
        chi = b * row_bits
    else:
        c0 = pop_cum[pop, t0]
        size = pop_cum[pop, t1] - c0
        clo = pop_cum[pop, a]
        chi = pop_cum[pop, b]
    if size <= 0 or chi <= clo:
        return out, vout, m
    m0 = m
    wmask = (np.int64(1) << wsh) - 1
    thin = sp_thin[s] != 0
    K = sp_tab[s, cls, 1]
    logm = K == 0
    toff = sp_tab[s, cls, 0]
    goff = tab_goff[s, cls]
    k0 = sp_key[s, 0]
    k1 = sp_key[s, 1]
    rid = tile_row_id[t0]
    c3 = np.uint32(sp_gbits[s, cls])
    A0 = sp_A[s, cls, 0]
    dA = sp_A[s, cls, 1] - A0  # (wraps; A0 + dA * bit is A0 or A1)
    L = sp_L[s, cls]
    rate = sp_rate[s, cls]
    ti = a  # tile cursor (weak-bitline populations)
    t = a  # tile cursor (all bitlines): tile t holds population indices [tstart, tend)
    tstart = a * row_bits
    tend = tstart + row_bits
    pos = np.int64(-1)
    acc = np.int64(0)
    j0 = np.int64(0)
    done = False
    while not done:
        nd = batch_size(size, pos, rate, BATCH)
        fill(thin, logm, k0, k1, rid, np.uint32(0), c3, j0, nd, L, ubuf, vbuf, gbuf)
        j0 += nd
        if out.shape[0] - m < nd:
            grown = np.empty(2 * out.shape[0] + nd, np.int64)
            grown[:m] = out[:m]
            out = grown
            vgrown = np.empty(grown.shape[0], np.uint64)
            vgrown[:m] = vout[:m]
            vout = vgrown
        for i in range(nd):
            st, gap, acc = next_skip(logm, gbuf[i], ubuf[i], guide, goff, tab_t, toff, K, size - pos - 1, acc)
            if st == 1:
                continue
            if st == 2:
                done = True
                break
            pos = pos + gap + 1
            gp = c0 + pos
            if gp < clo:
                continue
            if gp >= chi:
                done = True
                break
            # population index -> tile and row position
            if pop < 0:
                if gp >= tend:  # a later tile (one division per tile reached, not per candidate)
                    t = gp // row_bits
                    tstart = t * row_bits
                    tend = tstart + row_bits
                rowpos = gp - tstart
            else:
                if pop_cum[pop, ti + 1] <= gp:
                    ti = ti + np.searchsorted(pop_cum[pop, ti:b + 1], gp, side="right") - 1
                t = ti
                rowpos = np.int64(bl_cols[bl_off[pop, np.int64(tile_group[t])] + gp - pop_cum[pop, t]])
            tb = t * row_bits + rowpos - bit_lo
            if tb < 0 or tb >= nbits:
                continue  # outside the tensor (its first and last tiles)
            out[m] = tb
            if thin:
                vout[m] = vbuf[i]
                _prefetch_w(words, tb >> wsh)
            m += 1
    if thin:
        # acceptance on the stored (original) bits, compacted in place
        n = m0
        for q in range(m0, m):
            tb = out[q]
            bit = (np.uint64(words[tb >> wsh]) >> np.uint64(tb & wmask)) & np.uint64(1)
            out[n] = tb
            n += np.int64(vout[q] < A0 + dA * bit)
        m = n
    return out, vout, m


@nb.njit(**JIT)
def group_positions(t_begin, t_end, skip, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, grp_off,
                    grp_t0, grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_rate, sp_A, sp_tab,
                    tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum):
    """Sorted unique tensor-bit positions kept by any sub-pass but ``skip`` (-1: none) in tiles
    [t_begin, t_end): each sub-pass's stream groups that meet the range are walked
    (``walk_group``), then the sub-passes' sorted lists are united. O(candidates + groups)."""
    S = sp_thin.shape[0]
    nbits = bit_hi - bit_lo
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    out = np.empty(256, np.int64)
    vout = np.empty(256, np.uint64)
    la = np.empty(max(S, 1), np.int64)
    lb = np.empty(max(S, 1), np.int64)
    live = 0
    m = np.int64(0)
    for s in range(S):
        if s == skip:
            continue
        a = m
        g0 = grp_off[s]
        g1 = grp_off[s + 1]
        # the first group that ends after t_begin
        gi = g0 + np.searchsorted(grp_t1[g0:g1], t_begin, side="right")
        while gi < g1 and grp_t0[gi] < t_end:
            out, vout, m = walk_group(gi, s, t_begin, t_end, words, wsh, row_bits, bit_lo, nbits, tile_row_id,
                                      tile_group, grp_t0, grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_gbits,
                                      sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols,
                                      pop_cum, ubuf, vbuf, gbuf, out, vout, m)
            gi += 1
        if m > a:
            la[live] = a
            lb[live] = m
            live += 1
    if live == 0:
        return out[:0]
    if live == 1:
        return out[la[0]:lb[0]]
    comb = np.empty(m, np.int64)
    q = merge(out, la, lb, live, comb)
    return comb[:q]

@nb.njit(**JIT)
def run_tiles_fused(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl,
                    sp_key, sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t,
                    guide, s0, sec, out_idx, out_mask, n_start, end):
    """run_tiles when the main sub-pass s0 (all bitlines, single-tile stream groups) takes many
    draws per tile.

    ``sec``: the other sub-passes' kept tensor-bit positions in the chunk, sorted and unique
    (``group_positions``, computed before any word changes). Per tile, s0's draws come in
    batches vectorized along its stream, and one scalar loop takes each skip, decides
    acceptance and builds the (word, mask) entries in position order, taking sec's positions
    in turn (a position kept twice sets its bit twice: the union); no intermediate
    lists and no branch on loaded words. A word is XORed when the loop leaves it:
    acceptance only reads words at or after the current one, still original."""
    wmask = (np.int64(1) << wsh) - 1
    ubuf = np.empty(BATCH, np.uint64)
    vbuf = np.empty(BATCH, np.uint64)
    gbuf = np.empty(BATCH, np.float64)
    thin = sp_thin[s0] != 0
    k0 = sp_key[s0, 0]
    k1 = sp_key[s0, 1]
    size = np.int64(row_bits)
    room = (row_bits >> wsh) + 2
    n = n_start
    si = 0
    ns = sec.shape[0]
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
                fill(thin, logm, k0, k1, rid, np.uint32(0), np.uint32(0), j0, nd, L, ubuf, vbuf, gbuf)
                j0 += nd
            else:
                nd = 0
            i = 0
            while True:
                # next main candidate p (or past the tile when the stream is done)
                p = np.int64(row_bits)
                keep = np.uint64(1)
                if i < nd:
                    st, gap, acc = next_skip(logm, gbuf[i], ubuf[i], guide, goff, tab_t, toff, K, size - pos - 1,
                                             acc)
                    if st == 1:
                        i += 1
                        continue
                    if st == 2:
                        done = True
                    else:
                        pos = pos + gap + 1
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
                # positions of the other sub-passes before p, then p
                while si < ns and sec[si] < tbase + p:
                    tb = sec[si]
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
def run_tiles(t_begin, t_end, words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl, grp_off,
              grp_t0, grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_wl, sp_gbits, sp_active, sp_L, sp_rate, sp_nd0,
              sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum, out_idx, out_mask, n_start, end):
    """Flip the bits of tiles [t_begin, t_end) and log them at out_*[n_start:end].

    Returns the log end, or -1 with the words restored if the log ran out of room.
    The streams are the plan's stream groups; this range of tiles may cut a group (walked
    from its start). In general: 1. every sub-pass's kept positions in the range, united
    (``group_positions``: O(candidates + groups), reads original bits), 2. (word, mask)
    log entries, 3. XOR. When an all-bitline sub-pass takes many draws per tile (its
    groups are single tiles, sp_nd0 >= TILE_MAJOR), it runs fused with the entries
    (``run_tiles_single`` / ``run_tiles_fused``)."""
    S = sp_thin.shape[0]
    wsh = np.int64(0)
    while (np.int64(1) << wsh) < wb:
        wsh += 1
    wmask = np.int64(wb - 1)
    # the main sub-pass: the all-bitline one with most draws per tile
    s0 = -1
    for s in range(S):
        if sp_pop[s] < 0 and (s0 < 0 or sp_nd0[s] > sp_nd0[s0]):
            s0 = s
    if s0 >= 0 and sp_nd0[s0] < TILE_MAJOR:
        s0 = -1
    if S == 1 and s0 == 0:
        return run_tiles_single(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl,
                                sp_key, sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff,
                                tab_t, guide, out_idx, out_mask, n_start, end)
    pos = group_positions(t_begin, t_end, s0, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_group,
                          grp_off, grp_t0, grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_rate,
                          sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum)
    if s0 >= 0:
        return run_tiles_fused(t_begin, t_end, words, wsh, row_bits, bit_lo, bit_hi, tile_row_id, tile_wl,
                               sp_key, sp_thin, sp_wl, sp_active, sp_L, sp_rate, sp_A, sp_tab, tab_goff, tab_t,
                               guide, s0, pos, out_idx, out_mask, n_start, end)
    # 2. (word, mask) entries in position order; nothing is XORed yet, so a log that runs
    # out of room just reports
    n = n_start
    cur = np.int64(-1)
    mask = np.uint64(0)
    for q in range(pos.shape[0]):
        tb = pos[q]
        w = tb >> wsh
        if w != cur:
            if cur >= 0:
                if n >= end:
                    return -1
                out_idx[n] = cur
                out_mask[n] = mask
                n += 1
            cur = w
            mask = np.uint64(0)
        mask |= np.uint64(1) << np.uint64(tb & wmask)
    if cur >= 0:
        if n >= end:
            return -1
        out_idx[n] = cur
        out_mask[n] = mask
        n += 1
    # 3. XOR
    xor_range(words, out_idx, out_mask, n_start, n)
    return n


@nb.njit(parallel=True, **JIT)
def inject_chunks(words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl, grp_off, grp_t0,
                  grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_wl, sp_gbits, sp_active, sp_L, sp_rate, sp_nd0,
                  sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum, chunk_tiles, out_off, out_idx,
                  out_mask, out_n):
    """Flip all tiles, chunk by chunk in parallel; a chunk whose log would overflow
    is left untouched and reported with out_n = -1 (the caller re-runs it)."""
    for c in nb.prange(chunk_tiles.shape[0] - 1):
        n = run_tiles(chunk_tiles[c], chunk_tiles[c + 1], words, wb, row_bits, bit_lo, bit_hi,
                      tile_row_id, tile_group, tile_wl, grp_off, grp_t0, grp_t1, grp_cls, sp_key, sp_thin,
                      sp_pop, sp_wl, sp_gbits, sp_active, sp_L, sp_rate, sp_nd0, sp_A, sp_tab, tab_goff, tab_t,
                      guide, bl_off, bl_cols, pop_cum, out_idx, out_mask, out_off[c], out_off[c + 1])
        out_n[c] = n - out_off[c] if n >= 0 else -1


@nb.njit(**JIT)
def inject_chunks_serial(words, wb, row_bits, bit_lo, bit_hi, tile_row_id, tile_group, tile_wl, grp_off,
                         grp_t0, grp_t1, grp_cls, sp_key, sp_thin, sp_pop, sp_wl, sp_gbits, sp_active, sp_L,
                         sp_rate, sp_nd0, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum,
                         chunk_tiles, out_off, out_idx, out_mask, out_n):
    """inject_chunks on the calling thread only (small jobs)."""
    for c in range(chunk_tiles.shape[0] - 1):
        n = run_tiles(chunk_tiles[c], chunk_tiles[c + 1], words, wb, row_bits, bit_lo, bit_hi,
                      tile_row_id, tile_group, tile_wl, grp_off, grp_t0, grp_t1, grp_cls, sp_key, sp_thin,
                      sp_pop, sp_wl, sp_gbits, sp_active, sp_L, sp_rate, sp_nd0, sp_A, sp_tab, tab_goff, tab_t,
                      guide, bl_off, bl_cols, pop_cum, out_idx, out_mask, out_off[c], out_off[c + 1])
        out_n[c] = n - out_off[c] if n >= 0 else -1


@intrinsic
def _address_as_pointer(typingctx, addr, proto):
    """A pointer to ``proto``'s dtype at the integer address ``addr`` (for ``nb.carray``)."""
    if not (isinstance(addr, types.Integer) and isinstance(proto, types.Array)):
        return None
    ptrty = types.CPointer(proto.dtype)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(ptrty))

    return ptrty(addr, proto), codegen


#: Columns of inject_many's per-tensor offset table: where each tensor's part of a concatenated
#: plan array starts, in units of tiles, (wl, tile) pairs, groups, sub-passes, sub-pass
#: offsets (S + 1 each), tab_t, guide, bl_off, bl_cols, pop_cum entries.
MANY_T, MANY_WL, MANY_G, MANY_S, MANY_SO, MANY_TAB, MANY_GUIDE, MANY_BLO, MANY_BLC, MANY_POP = range(10)


@nb.njit(**JIT)
def inject_many(addrs, nwords, proto, wb, scal, offs, tile_row_id, tile_group, tile_wl, grp_off, grp_t0, grp_t1,
                grp_cls, sp_key, sp_thin, sp_pop, sp_wl, sp_gbits, sp_active, sp_L, sp_rate, sp_nd0, sp_A, sp_tab,
                tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum, out_off, out_idx, out_mask, out_n):
    """``inject_chunks_serial`` (one chunk) for several tensors in one call: tensor j's words are
    the ``nwords[j]`` words at address ``addrs[j]`` (dtype of ``proto``), its plan the slices of
    the concatenated plan arrays at ``offs[j]`` (columns ``MANY_*``), its scalars ``scal[j]`` =
    (row_bits, bit_lo, bit_hi, n_tiles, S, n_wl, n_bl, bl_stride). Its log goes to
    out_*[out_off[j]:out_off[j + 1]]; out_n[j] = entries, or -1 (log full, words untouched)."""
    for j in range(addrs.shape[0]):
        words = nb.carray(_address_as_pointer(addrs[j], proto), (nwords[j],))
        row_bits = scal[j, 0]
        bit_lo = scal[j, 1]
        bit_hi = scal[j, 2]
        T = scal[j, 3]
        S = scal[j, 4]
        n_wl = scal[j, 5]
        n_bl = scal[j, 6]
        bls = scal[j, 7]
        o = offs[j]
        ot, ow, og, os, oso = o[MANY_T], o[MANY_WL], o[MANY_G], o[MANY_S], o[MANY_SO]
        G = offs[j + 1, MANY_G] - og
        n = run_tiles(0, T, words, wb, row_bits, bit_lo, bit_hi, tile_row_id[ot:ot + T], tile_group[ot:ot + T],
                      tile_wl[ow:ow + n_wl * T].reshape((n_wl, T)), grp_off[oso:oso + S + 1], grp_t0[og:og + G],
                      grp_t1[og:og + G], grp_cls[og:og + G], sp_key[2 * os:2 * (os + S)].reshape((S, 2)),
                      sp_thin[os:os + S], sp_pop[os:os + S], sp_wl[os:os + S],
                      sp_gbits[2 * os:2 * (os + S)].reshape((S, 2)), sp_active[2 * os:2 * (os + S)].reshape((S, 2)),
                      sp_L[2 * os:2 * (os + S)].reshape((S, 2)), sp_rate[2 * os:2 * (os + S)].reshape((S, 2)),
                      sp_nd0[os:os + S], sp_A[4 * os:4 * (os + S)].reshape((S, 2, 2)),
                      sp_tab[4 * os:4 * (os + S)].reshape((S, 2, 2)), tab_goff[2 * os:2 * (os + S)].reshape((S, 2)),
                      tab_t[o[MANY_TAB]:offs[j + 1, MANY_TAB]], guide[o[MANY_GUIDE]:offs[j + 1, MANY_GUIDE]],
                      bl_off[o[MANY_BLO]:o[MANY_BLO] + n_bl * bls].reshape((n_bl, bls)),
                      bl_cols[o[MANY_BLC]:offs[j + 1, MANY_BLC]],
                      pop_cum[o[MANY_POP]:o[MANY_POP] + n_bl * (T + 1)].reshape((n_bl, T + 1)),
                      out_idx, out_mask, out_off[j], out_off[j + 1])
        out_n[j] = n - out_off[j] if n >= 0 else -1


@nb.njit(inline="always", cache=True)
def splitmix64(x):
    """``rng.splitmix64`` on uint64 (wrapping arithmetic, the same bits)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@nb.njit(**JIT)
def access_keys(h_seed, access, parts, tag, out):
    """``rng.derive_key(seed, access, ci, pi, tag)`` for every row (ci, pi) of ``parts`` into
    ``out`` (uint32[S, 2]), for parts below 2**63: ``h_seed`` is the SplitMix64 state after the
    seed (``rng.derive_key``'s fold, one step per part below 2**64)."""
    h1 = splitmix64(np.uint64(h_seed) ^ np.uint64(access))
    for s in range(parts.shape[0]):
        h = splitmix64(h1 ^ np.uint64(parts[s, 0]))
        h = splitmix64(h ^ np.uint64(parts[s, 1]))
        h = splitmix64(h ^ np.uint64(tag))
        out[s, 0] = np.uint32(h & LO32)
        out[s, 1] = np.uint32(h >> S32)


#: A *packed* injection (``eden.engine.lean``): one int64 row holds everything a call needs
#: but the tensor's address and the access, so the call takes four arguments (numba's
#: dispatch checks each argument's type on every call, which inside a forward pass costs more
#: than a low-rate injection itself). Scalars first, then (address, element count) of every
#: array at ``PK_ARR + 2 * i``, ``i`` in ``PK_ARRAYS`` order; the kernel writes the log's entry
#: count and the tensor address into ``PK_N`` / ``PK_ADDR`` for the undo.
(PK_WB, PK_ROW_BITS, PK_BIT_LO, PK_BIT_HI, PK_T, PK_S, PK_NWL, PK_NBL, PK_BLS, PK_NWORDS, PK_HSEED, PK_TAG,
 PK_NPARTS, PK_CAP, PK_N, PK_ADDR) = range(16)
PK_ARR = 16
PK_ARRAYS = ("tile_row_id", "tile_group", "tile_wl", "grp_off", "grp_t0", "grp_t1", "grp_cls", "sp_key", "sp_thin",
             "sp_pop", "sp_wl", "sp_gbits", "sp_active", "sp_L", "sp_rate", "sp_nd0", "sp_A", "sp_tab", "tab_goff",
             "tab_t", "guide", "bl_off", "bl_cols", "pop_cum", "parts", "out_idx", "out_mask")
PK_WIDTH = PK_ARR + 2 * len(PK_ARRAYS)
# dtype prototypes of the packed arrays (typing only; out_mask takes the call's word proto)
_P_U8 = np.zeros(0, np.uint8)
_P_I32 = np.zeros(0, np.int32)
_P_U32 = np.zeros(0, np.uint32)
_P_I64 = np.zeros(0, np.int64)
_P_U64 = np.zeros(0, np.uint64)
_P_F64 = np.zeros(0, np.float64)


@nb.njit(inline="always", cache=True)
def _pk1(h, i, proto):
    """Packed array ``i`` (1-D) of header row ``h``."""
    return nb.carray(_address_as_pointer(h[PK_ARR + 2 * i], proto), (h[PK_ARR + 2 * i + 1],))


@nb.njit(inline="always", cache=True)
def _pk2(h, i, proto, a, b):
    return nb.carray(_address_as_pointer(h[PK_ARR + 2 * i], proto), (a, b))


@nb.njit(inline="always", cache=True)
def _pk3(h, i, proto, a, b, c):
    return nb.carray(_address_as_pointer(h[PK_ARR + 2 * i], proto), (a, b, c))


@nb.njit(**JIT)
def _inject_packed_row(addr, access, h, proto):
    """One packed injection (see ``PK_*``): ``inject_chunks_serial`` (one chunk) of the
    ``h[PK_NWORDS]`` words (dtype of ``proto``) at ``addr``; with ``h[PK_NPARTS]`` rows of
    (component, part) (access persistence) the sub-pass keys are first derived for ``access``
    (``access_keys``). Returns (log entries, bits they flip), or (-1, 0) when the log would
    overflow (the words untouched)."""
    T = h[PK_T]
    S = h[PK_S]
    n_bl = h[PK_NBL]
    sp_key = _pk2(h, 7, _P_U32, S, 2)
    if h[PK_NPARTS] > 0:
        access_keys(np.uint64(h[PK_HSEED]), access, _pk2(h, 24, _P_I64, h[PK_NPARTS], 2), h[PK_TAG], sp_key)
    words = nb.carray(_address_as_pointer(addr, proto), (h[PK_NWORDS],))
    out_idx = _pk1(h, 25, _P_I64)
    out_mask = _pk1(h, 26, proto)
    n = run_tiles(0, T, words, h[PK_WB], h[PK_ROW_BITS], h[PK_BIT_LO], h[PK_BIT_HI], _pk1(h, 0, _P_U32),
                  _pk1(h, 1, _P_I32), _pk2(h, 2, _P_U8, h[PK_NWL], T), _pk1(h, 3, _P_I64), _pk1(h, 4, _P_I64),
                  _pk1(h, 5, _P_I64), _pk1(h, 6, _P_U8), sp_key, _pk1(h, 8, _P_U8), _pk1(h, 9, _P_I32),
                  _pk1(h, 10, _P_I32), _pk2(h, 11, _P_I32, S, 2), _pk2(h, 12, _P_U8, S, 2),
                  _pk2(h, 13, _P_F64, S, 2), _pk2(h, 14, _P_F64, S, 2), _pk1(h, 15, _P_I64),
                  _pk3(h, 16, _P_U64, S, 2, 2), _pk3(h, 17, _P_I64, S, 2, 2), _pk2(h, 18, _P_I64, S, 2),
                  _pk1(h, 19, _P_U64), _pk1(h, 20, _P_I32), _pk2(h, 21, _P_I64, n_bl, h[PK_BLS]),
                  _pk1(h, 22, _P_I32), _pk2(h, 23, _P_I64, n_bl, T + 1), out_idx, out_mask, np.int64(0),
                  h[PK_CAP])
    if n < 0:
        h[PK_N] = -1
        return np.int64(-1), np.int64(0)
    bits = np.int64(0)
    for i in range(n):
        bits += popcount64(np.uint64(out_mask[i]))
    h[PK_N] = n
    h[PK_ADDR] = addr
    return np.int64(n), bits


@nb.njit(**JIT)
def inject_packed(addr, access, h, proto):
    """``_inject_packed_row`` of one tensor: (log entries, bits flipped), or (-1, 0)."""
    return _inject_packed_row(addr, access, h, proto)


@nb.njit(**JIT)
def inject_packed_correct(addr, access, h, proto, shift, low, high, clamp, rep):
    """``inject_packed`` then ``correct_log`` (write, one segment) on its log: the words' upper
    bits are a float32 (``shift``: 0 for fp32, 16 for bf16); ``rep`` = replacement words
    (zero, low, high, NaN's), the format's rounding of (0, low, high, clamp(0)). Returns (log
    entries, bits flipped after the correction, values corrected), or (-1, 0, 0) when the log
    would overflow (the words untouched)."""
    n, bits = _inject_packed_row(addr, access, h, proto)
    if n < 0:
        return np.int64(-1), np.int64(0), np.int64(0)
    if n == 0:
        return n, bits, np.int64(0)
    words = nb.carray(_address_as_pointer(addr, proto), (h[PK_NWORDS],))
    off = np.zeros(1, np.int64)
    cnt = np.full(1, n, np.int64)
    n_bad, delta = correct_log(words, shift, _pk1(h, 25, _P_I64), _pk1(h, 26, proto), off, cnt, low, high, True,
                               clamp, rep[0], rep[1], rep[2], rep[3])
    return n, bits - delta, np.int64(n_bad)


@nb.njit(**JIT)
def inject_packed_many(addrs, access, hdr, proto, bits):
    """``_inject_packed_row`` for every row ``j`` of ``hdr`` with the tensor at ``addrs[j]``
    (one call for, e.g., all the weights of a model); ``bits[j]``: the bits flipped, or -1
    when that tensor's log would overflow (its words untouched)."""
    for j in range(addrs.shape[0]):
        n, b = _inject_packed_row(addrs[j], access, hdr[j], proto)
        bits[j] = b if n >= 0 else -1


@nb.njit(**JIT)
def _xor_packed_row(h, proto):
    n = h[PK_N]
    if n > 0:
        words = nb.carray(_address_as_pointer(h[PK_ADDR], proto), (h[PK_NWORDS],))
        xor_range(words, _pk1(h, 25, _P_I64), _pk1(h, 26, proto), np.int64(0), n)
    h[PK_N] = -1


@nb.njit(**JIT)
def xor_packed(h, proto):
    """Undo the packed injection logged in ``h`` (XOR is its own inverse); once: it marks the log
    undone (``h[PK_N] = -1``)."""
    _xor_packed_row(h, proto)


@nb.njit(**JIT)
def xor_packed_many(hdr, proto):
    """``xor_packed`` for every row of ``hdr``."""
    for j in range(hdr.shape[0]):
        _xor_packed_row(hdr[j], proto)


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
                fill(True, True, keys[b, 0], keys[b, 1], rid, stream, np.uint32(0), j0, nd, L[b], ubuf, vbuf, gbuf)
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


@nb.njit(**JIT)
def minmax_keys(a, maxpos):
    """(min, max) of the order keys ``b ^ ((b >> (w - 1)) & maxpos)`` of the IEEE words ``a``
    (signed ints of width ``w``, ``maxpos = 2**(w-1) - 1``): the keys sort as the floats do
    (-0.0 just below +0.0, infinities and NaNs beyond every finite value), and integer
    min/max vectorize where float min/max with NaN semantics do not. One read pass."""
    sh = a.dtype.type(a.itemsize * 8 - 1)
    m = a.dtype.type(maxpos)
    lo = m
    hi = a.dtype.type(-maxpos - 1)
    for i in range(a.shape[0]):
        b = a[i]
        k = b ^ ((b >> sh) & m)
        lo = min(lo, k)
        hi = max(hi, k)
    return lo, hi


@nb.njit(parallel=True, **JIT)
def minmax_keys_parallel(a, maxpos, chunks):
    """``minmax_keys`` over ``chunks`` slices of ``a`` on numba's threads (large tensors)."""
    n = a.shape[0]
    lo = np.empty(chunks, a.dtype)
    hi = np.empty(chunks, a.dtype)
    for c in nb.prange(chunks):
        lo[c], hi[c] = minmax_keys(a[c * n // chunks:(c + 1) * n // chunks], maxpos)
    return lo.min(), hi.max()
