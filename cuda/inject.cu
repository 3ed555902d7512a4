// eden CUDA backend: bit-error injection, bit-identical to eden/engine/backends/cpu.py.
//
// This file transliterates ``run_tiles`` of eden/engine/backends/cpu.py (itself the
// O(errors) form of the NumPy oracle eden/engine/backends/reference.py; the sampling
// contract is in eden/engine/plan.py and the randomness in eden/engine/rng.py).
// One thread handles one tile (the part of one DRAM row the tensor occupies):
//
//   eden_count_tiles<W>     pass 1: number of (word, mask) entries of each tile
//   (host: exclusive scan of the counts)
//   eden_emit_tiles<W, I>   pass 2: the same generation, writing the entries at
//                           the tile's offset (word indices increase within and
//                           across tiles, like the CPU log)
//   eden_xor_segments<W, I> words[idx[i]] ^= mask[i] (inject, undo, redo)
//
// Both generation passes only READ the tensor (data-dependent acceptance needs
// the original bits); the words are XORed by the separate xor kernel, launched
// after the emit pass on the same stream.
//
// Floating point: every double operation of the software logarithm goes through
// __dmul_rn / __dadd_rn / __dsub_rn / __ddiv_rn, so nothing is contracted into an
// FMA and each step is rounded exactly like NumPy and numba (build with
// -fmad=false as well). The generation routines are __host__ __device__ so a
// host build of this file (tests, debugging) runs the very same code; the host
// side uses plain IEEE operators (compile it with -ffp-contract=off).
//
// Compiled at run time by CuPy (NVRTC; no standard headers are used) and, for
// CI, by `nvcc -std=c++17 -DEDEN_NVCC_CHECK -fmad=false -c cuda/inject.cu`.

namespace eden {

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;

// ------------------------------------------------------------------ constants
// rng.py: PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, PHILOX_ROUNDS
#define EDEN_PHILOX_M0 0xD2511F53ULL
#define EDEN_PHILOX_M1 0xCD9E8D57ULL
#define EDEN_PHILOX_W0 0x9E3779B9U
#define EDEN_PHILOX_W1 0xBB67AE85U
#define EDEN_PHILOX_ROUNDS 10
// plan.py: GUIDE_BITS = 12 -> guide index u >> (53 - 12)
#define EDEN_GUIDE_SHIFT 41

// -------------------------------------------------------- IEEE double helpers
// Each helper is one correctly rounded IEEE operation (no FMA contraction).
__host__ __device__ __forceinline__ double d_mul(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}
__host__ __device__ __forceinline__ double d_add(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dadd_rn(a, b);
#else
    return a + b;
#endif
}
__host__ __device__ __forceinline__ double d_sub(double a, double b) {
#ifdef __CUDA_ARCH__
    return __dsub_rn(a, b);
#else
    return a - b;
#endif
}
__host__ __device__ __forceinline__ double d_div(double a, double b) {
#ifdef __CUDA_ARCH__
    return __ddiv_rn(a, b);
#else
    return a / b;
#endif
}
// frexp is exact (y = m * 2^e, m in [0.5, 1)).
__host__ __device__ __forceinline__ double d_frexp(double y, int* e) {
#ifdef __CUDA_ARCH__
    return frexp(y, e);
#else
    return __builtin_frexp(y, e);
#endif
}

// ---------------------------------------------------------------- the tables
// Everything a tile needs (device pointers and scalars of eden.engine.plan.Plan;
// array layouts are the C-contiguous NumPy ones).
struct Params {
    i64 row_bits;            // bits per DRAM row
    i64 bit_lo, bit_hi;      // tensor [start, end) in bits from tile 0's row start
    i64 n_tiles;             // row stride of tile_wl
    i64 S;                   // number of sub-passes
    i64 bl_stride;           // row stride of bl_off (n_groups + 1)
    const u32* tile_row_id;  // [n_tiles]
    const i32* tile_group;   // [n_tiles]
    const u8* tile_wl;       // [n_wl, n_tiles]
    const u32* sp_key;       // [S, 2]
    const u8* sp_thin;       // [S]
    const i32* sp_pop;       // [S]
    const i32* sp_wl;        // [S]
    const u8* sp_active;     // [S, 2]
    const double* sp_L;      // [S, 2]
    const u64* sp_A;         // [S, 2, 2]
    const i64* sp_tab;       // [S, 2, 2]: (offset, K)
    const i64* tab_goff;     // [S, 2]
    const u64* tab_t;        // concatenated thresholds
    const i32* guide;        // concatenated 4096-entry guides
    const i64* bl_off;       // [n_bl, n_groups + 1]
    const i32* bl_cols;      // concatenated sorted weak bitlines
    const double* ln_c;      // rng.LOG_LN_C [256]
    const double* inv_c;     // rng.LOG_INV_C [256]
    double ln2;              // rng.LN2
    double ln_2_53;          // rng.LN_2_53 (= 53.0 * LN2 rounded, computed by Python)
};

// ---------------------------------------------------------------- randomness
// rng.philox4x32_10: Random123 Philox4x32, 10 rounds, pure 32-bit arithmetic.
__host__ __device__ __forceinline__ void philox4x32_10(u32 c0, u32 c1, u32 c2, u32 c3, u32 k0, u32 k1,
                                                      u32& o0, u32& o1, u32& o2, u32& o3) {
#pragma unroll
    for (int r = 0; r < EDEN_PHILOX_ROUNDS; ++r) {
        const u64 p0 = (u64)c0 * EDEN_PHILOX_M0;
        const u64 p1 = (u64)c2 * EDEN_PHILOX_M1;
        const u32 n0 = (u32)(p1 >> 32) ^ c1 ^ k0;
        const u32 n1 = (u32)p1;
        const u32 n2 = (u32)(p0 >> 32) ^ c3 ^ k1;
        const u32 n3 = (u32)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
        k0 += EDEN_PHILOX_W0;
        k1 += EDEN_PHILOX_W1;
    }
    o0 = c0;
    o1 = c1;
    o2 = c2;
    o3 = c3;
}

// rng.u53: 53-bit integer draw from two 32-bit words.
__host__ __device__ __forceinline__ u64 u53(u32 a, u32 b) {
    return ((u64)a << 21) ^ (u64)(b >> 11);
}

// rng.ln_u53: ln((x + 1) / 2^53), each step separately IEEE-rounded.
__host__ __device__ __forceinline__ double ln_u53(u64 x, const Params& P) {
    // 1. y = float(x + 1), exact because x + 1 <= 2^53
    const double y = (double)(x + 1ULL);
    // 2. y = m * 2^e with m in [1, 2) (frexp is exact; m * 2 is exact)
    int e = 0;
    double m = d_frexp(y, &e);
    m = d_mul(m, 2.0);
    const double ef = (double)(e - 1);
    // 3. table cell i and r = (m - c_i) * (1 / c_i)
    const i64 i = (i64)d_mul(d_sub(m, 1.0), 256.0);  // truncation, m - 1 in [0, 1)
    const double c = d_add(1.0, d_div(d_add((double)i, 0.5), 256.0));
    const double r = d_mul(d_sub(m, c), P.inv_c[i]);
    // 4. ln(1 + r) by the degree-5 series, Horner
    double p = d_mul(r, 0.2);
    p = d_add(-0.25, p);
    p = d_mul(r, p);
    p = d_add(1.0 / 3.0, p);  // the double nearest 1/3, as Python's 1.0 / 3.0
    p = d_mul(r, p);
    p = d_add(-0.5, p);
    p = d_mul(r, p);
    p = d_add(1.0, p);
    p = d_mul(r, p);
    // 5. ln y = (e ln2 + ln c_i) + series, minus ln(2^53)
    double out = d_mul(ef, P.ln2);
    out = d_add(out, P.ln_c[i]);
    out = d_add(out, p);
    return d_sub(out, P.ln_2_53);
}

// -------------------------------------------------------------- the generator
// One sub-pass generator of one tile (cpu.py keeps these in the g_* arrays).
struct Gen {
    i64 s;      // sub-pass
    i64 pos;    // population index of the last candidate
    i64 draw;   // draws consumed
    u32 h2, h3; // cached second half of the last Philox block (non-thin)
    i64 cur;    // current kept bit position in the row
};

// Per-sub-pass constants of a generator in its tile (class-resolved).
struct Sub {
    bool thin;
    u32 k0, k1;
    double L;
    u64 A0, A1;
    i64 toff, K, goff;
    i64 base, size;  // population: base < 0 = all bitlines; else bl_cols[base .. base + size)
};

__host__ __device__ __forceinline__ i64 tile_class(const Params& P, i64 s, i64 t) {
    const i32 wl = P.sp_wl[s];
    return wl >= 0 ? (i64)P.tile_wl[(i64)wl * P.n_tiles + t] : 0;
}

__host__ __device__ __forceinline__ Sub make_sub(const Params& P, i64 s, i64 cls, i64 t) {
    Sub q;
    q.thin = P.sp_thin[s] != 0;
    q.k0 = P.sp_key[2 * s];
    q.k1 = P.sp_key[2 * s + 1];
    q.L = P.sp_L[2 * s + cls];
    q.A0 = P.sp_A[(2 * s + cls) * 2 + 0];
    q.A1 = P.sp_A[(2 * s + cls) * 2 + 1];
    q.toff = P.sp_tab[(2 * s + cls) * 2 + 0];
    q.K = P.sp_tab[(2 * s + cls) * 2 + 1];
    q.goff = P.tab_goff[2 * s + cls];
    const i32 pop = P.sp_pop[s];
    if (pop < 0) {
        q.base = -1;
        q.size = P.row_bits;
    } else {
        const i64 g = (i64)P.tile_group[t];
        q.base = P.bl_off[(i64)pop * P.bl_stride + g];
        q.size = P.bl_off[(i64)pop * P.bl_stride + g + 1] - q.base;
    }
    return q;
}

// cpu.py draw_skip: one geometric skip (as double) and the acceptance draw V.
__host__ __device__ __forceinline__ double draw_skip(const Params& P, const Sub& q, u32 rid, Gen& G,
                                                    u64& v_out) {
    i64 acc = 0;
    for (;;) {
        // 1. one draw: a fresh Philox block (counter (call, row_id, 0, 0)), or the
        //    cached second half of the last block
        u64 u;
        u64 v = 0;
        u32 x0, x1, x2, x3;
        if (q.thin) {
            philox4x32_10((u32)G.draw, rid, 0u, 0u, q.k0, q.k1, x0, x1, x2, x3);
            u = u53(x0, x1);
            v = u53(x2, x3);
        } else if (G.draw % 2 == 0) {
            philox4x32_10((u32)(G.draw / 2), rid, 0u, 0u, q.k0, q.k1, x0, x1, x2, x3);
            u = u53(x0, x1);
            G.h2 = x2;
            G.h3 = x3;
        } else {
            u = u53(G.h2, G.h3);
        }
        G.draw += 1;
        if (q.K == 0) {
            // 2a. log method
            double g = d_div(ln_u53(u, P), q.L);
            if (g < 0.0) g = 0.0;
            v_out = v;
            return g;
        }
        // 2b. table method: count thresholds above u, starting from the guide
        i64 k = (i64)P.guide[q.goff + (i64)(u >> EDEN_GUIDE_SHIFT)];
        while (k < q.K && u < P.tab_t[q.toff + k]) ++k;
        if (k < q.K) {
            v_out = v;
            return (double)(acc + k);
        }
        // tail: all K thresholds are above u; add K and draw again (memoryless)
        acc += q.K;
    }
}

// cpu.py advance: the generator's next kept bit position in the row, or -1.
template <typename W>
__host__ __device__ __forceinline__ i64 advance(const Params& P, const Sub& q, u32 rid, Gen& G, i64 lo,
                                               i64 hi, i64 tbase, const W* __restrict__ words) {
    const i64 WB = (i64)(sizeof(W) * 8);
    for (;;) {
        // 1-2. one skip; stop past the population
        u64 v = 0;
        const double g = draw_skip(P, q, rid, G, v);
        if (!(g < (double)(q.size - G.pos - 1))) return -1;
        G.pos = G.pos + (i64)g + 1;
        // 3. population index -> bit position in the row
        const i64 rowpos = q.base < 0 ? G.pos : (i64)P.bl_cols[q.base + G.pos];
        if (rowpos < lo) continue;
        if (rowpos >= hi) return -1;
        // 4. data-dependent acceptance on the stored (original) bit
        if (q.thin) {
            const i64 tb = tbase + rowpos;  // >= 0
            const u64 bit = ((u64)words[tb / WB] >> (u64)(tb % WB)) & 1ULL;
            const u64 thr = bit ? q.A1 : q.A0;
            if (!(v < thr)) continue;
        }
        return rowpos;
    }
}

// Live generators of one tile, in a global scratch buffer laid out field-major
// ([field][slot][lane], 32-bit words) so neighbouring threads access neighbouring
// words. 6 fields (backends/cuda.py sizes the buffer with _GEN_FIELDS = 6). Stored values
// fit 32 bits: s < S, pos and cur < row_bits < 2^31 (backends/cuda.py checks), and a
// generator's draw count stays far below 2^32 (about row_bits draws per row).
struct GenStore {
    u32* base;
    i64 S;
    i64 stride;  // lanes in this launch
    i64 lane;
    __host__ __device__ __forceinline__ u32& at(int f, i64 i) const {
        return base[((i64)f * S + i) * stride + lane];
    }
    __host__ __device__ __forceinline__ void put(i64 i, const Gen& G) const {
        at(0, i) = (u32)G.s;
        at(1, i) = (u32)G.pos;
        at(2, i) = (u32)G.draw;
        at(3, i) = G.h2;
        at(4, i) = G.h3;
        at(5, i) = (u32)G.cur;
    }
    __host__ __device__ __forceinline__ Gen get(i64 i) const {
        Gen G;
        G.s = (i64)at(0, i);
        G.pos = (i64)(i32)at(1, i);  // pos >= 0 once stored
        G.draw = (i64)at(2, i);
        G.h2 = at(3, i);
        G.h3 = at(4, i);
        G.cur = (i64)(i32)at(5, i);
        return G;
    }
    __host__ __device__ __forceinline__ i64 cur(i64 i) const { return (i64)(i32)at(5, i); }
};

// Word-run accumulator: consecutive kept bits of one word become one entry.
template <typename W, typename I, bool EMIT>
struct Emitter {
    i64 cur_word;
    u64 mask;
    i64 n;
    I* out_idx;
    W* out_mask;
    __host__ __device__ __forceinline__ void flush() {
        if constexpr (EMIT) {
            out_idx[n] = (I)cur_word;
            out_mask[n] = (W)mask;
        }
        n += 1;
    }
    __host__ __device__ __forceinline__ void add(i64 tb) {
        const i64 WB = (i64)(sizeof(W) * 8);
        const i64 w = tb / WB;
        if (w != cur_word) {
            if (cur_word >= 0) flush();
            cur_word = w;
            mask = 0;
        }
        mask |= 1ULL << (u64)(tb % WB);
    }
};

// cpu.py run_tiles, one tile: returns the number of (word, mask) entries; writes
// them at out_idx/out_mask[0 ..) when EMIT. Reads words, never writes them.
template <typename W, typename I, bool EMIT>
__host__ __device__ i64 run_tile(const Params& P, const W* __restrict__ words, i64 t, GenStore st,
                                 I* out_idx, W* out_mask) {
    const u32 rid = P.tile_row_id[t];
    const i64 tstart = t * P.row_bits;
    const i64 lo = P.bit_lo - tstart > 0 ? P.bit_lo - tstart : 0;
    const i64 hi = P.bit_hi - tstart < P.row_bits ? P.bit_hi - tstart : P.row_bits;
    const i64 tbase = tstart - P.bit_lo;
    // 1. start one generator per active sub-pass, positioned on its first kept bit
    i64 live = 0;
    for (i64 s = 0; s < P.S; ++s) {
        const i64 cls = tile_class(P, s, t);
        if (P.sp_active[2 * s + cls] == 0) continue;
        const Sub q = make_sub(P, s, cls, t);
        Gen G;
        G.s = s;
        G.pos = -1;
        G.draw = 0;
        G.h2 = 0;
        G.h3 = 0;
        G.cur = advance<W>(P, q, rid, G, lo, hi, tbase, words);
        if (G.cur < 0) continue;
        st.put(live, G);
        live += 1;
    }
    Emitter<W, I, EMIT> em;
    em.cur_word = -1;
    em.mask = 0;
    em.n = 0;
    em.out_idx = out_idx;
    em.out_mask = out_mask;
    if (live == 1) {
        // 2a. one generator (the common case): no merge needed. (cpu.py's `hot`
        //     shortcut for all-bitline, non-thin sub-passes stops at the same
        //     candidate as advance(): g < min(hi, size) - pos - 1 <=> the next
        //     position is < size and < hi; so advance() is used throughout.)
        Gen G = st.get(0);
        const Sub q = make_sub(P, G.s, tile_class(P, G.s, t), t);
        while (G.cur >= 0) {
            em.add(tbase + G.cur);
            G.cur = advance<W>(P, q, rid, G, lo, hi, tbase, words);
        }
        live = 0;
    }
    // 2b. k-way merge in position order; equal positions flip once (union)
    while (live > 0) {
        i64 m = st.cur(0);
        for (i64 i = 1; i < live; ++i) {
            const i64 c = st.cur(i);
            if (c < m) m = c;
        }
        em.add(tbase + m);
        i64 i = 0;
        while (i < live) {
            if (st.cur(i) == m) {
                Gen G = st.get(i);
                const Sub q = make_sub(P, G.s, tile_class(P, G.s, t), t);
                G.cur = advance<W>(P, q, rid, G, lo, hi, tbase, words);
                if (G.cur < 0) {
                    // retire: move the last live generator into slot i, re-check slot i
                    live -= 1;
                    if (i != live) st.put(i, st.get(live));
                    continue;
                }
                st.put(i, G);
            }
            i += 1;
        }
    }
    // 3. the tile's last word
    if (em.cur_word >= 0) em.flush();
    return em.n;
}

__host__ __device__ __forceinline__ Params make_params(
    i64 row_bits, i64 bit_lo, i64 bit_hi, i64 n_tiles, i64 S, i64 bl_stride, const u32* tile_row_id,
    const i32* tile_group, const u8* tile_wl, const u32* sp_key, const u8* sp_thin, const i32* sp_pop,
    const i32* sp_wl, const u8* sp_active, const double* sp_L, const u64* sp_A, const i64* sp_tab,
    const i64* tab_goff, const u64* tab_t, const i32* guide, const i64* bl_off, const i32* bl_cols,
    const double* ln_c, const double* inv_c, double ln2, double ln_2_53) {
    Params P;
    P.row_bits = row_bits;
    P.bit_lo = bit_lo;
    P.bit_hi = bit_hi;
    P.n_tiles = n_tiles;
    P.S = S;
    P.bl_stride = bl_stride;
    P.tile_row_id = tile_row_id;
    P.tile_group = tile_group;
    P.tile_wl = tile_wl;
    P.sp_key = sp_key;
    P.sp_thin = sp_thin;
    P.sp_pop = sp_pop;
    P.sp_wl = sp_wl;
    P.sp_active = sp_active;
    P.sp_L = sp_L;
    P.sp_A = sp_A;
    P.sp_tab = sp_tab;
    P.tab_goff = tab_goff;
    P.tab_t = tab_t;
    P.guide = guide;
    P.bl_off = bl_off;
    P.bl_cols = bl_cols;
    P.ln_c = ln_c;
    P.inv_c = inv_c;
    P.ln2 = ln2;
    P.ln_2_53 = ln_2_53;
    return P;
}

}  // namespace eden

// -------------------------------------------------------------------- kernels
// Common parameter list of the two generation passes (order matters: eden/engine/backends/cuda.py).
#define EDEN_TILE_PARAMS(WT)                                                                          \
    const WT* __restrict__ words, long long row_bits, long long bit_lo, long long bit_hi,             \
        long long n_tiles, long long S, long long bl_stride, const unsigned int* tile_row_id,        \
        const int* tile_group, const unsigned char* tile_wl, const unsigned int* sp_key,             \
        const unsigned char* sp_thin, const int* sp_pop, const int* sp_wl,                           \
        const unsigned char* sp_active, const double* sp_L, const unsigned long long* sp_A,          \
        const long long* sp_tab, const long long* tab_goff, const unsigned long long* tab_t,         \
        const int* guide, const long long* bl_off, const int* bl_cols, const double* ln_c,          \
        const double* inv_c, double ln2, double ln_2_53, long long t_begin, long long t_end,         \
        unsigned int* scratch
#define EDEN_TILE_ARGS                                                                                \
    words, row_bits, bit_lo, bit_hi, n_tiles, S, bl_stride, tile_row_id, tile_group, tile_wl, sp_key, \
        sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off,       \
        bl_cols, ln_c, inv_c, ln2, ln_2_53, t_begin, t_end, scratch
#define EDEN_MAKE_PARAMS                                                                              \
    eden::make_params(row_bits, bit_lo, bit_hi, n_tiles, S, bl_stride, tile_row_id, tile_group,       \
                      tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A, sp_tab,         \
                      tab_goff, tab_t, guide, bl_off, bl_cols, ln_c, inv_c, ln2, ln_2_53)

namespace eden {

// Kernel bodies for one thread (`lane` = global thread index). Host-callable, so
// a host build can run exactly what the kernels run, thread by thread.
template <typename W>
__host__ __device__ __forceinline__ void count_tiles_body(long long lane, EDEN_TILE_PARAMS(W),
                                                         long long* counts) {
    const long long t = t_begin + lane;
    if (t >= t_end) return;
    const Params P = EDEN_MAKE_PARAMS;
    GenStore st;
    st.base = scratch;
    st.S = S;
    st.stride = t_end - t_begin;  // lanes of this launch
    st.lane = lane;
    counts[t] = run_tile<W, int, false>(P, words, t, st, (int*)0, (W*)0);
}

template <typename W, typename I>
__host__ __device__ __forceinline__ void emit_tiles_body(long long lane, EDEN_TILE_PARAMS(W),
                                                        const long long* offsets, I* out_idx,
                                                        W* out_mask) {
    const long long t = t_begin + lane;
    if (t >= t_end) return;
    const Params P = EDEN_MAKE_PARAMS;
    GenStore st;
    st.base = scratch;
    st.S = S;
    st.stride = t_end - t_begin;
    st.lane = lane;
    const long long o = offsets[t];
    run_tile<W, I, true>(P, words, t, st, out_idx + o, out_mask + o);
}

}  // namespace eden

// Pass 1: counts[t] = number of (word, mask) entries of tile t, for t in [t_begin, t_end).
template <typename W>
__global__ void eden_count_tiles(EDEN_TILE_PARAMS(W), long long* counts) {
    eden::count_tiles_body<W>((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_TILE_ARGS, counts);
}

// Pass 2: tile t writes its entries at offsets[t] (exclusive scan of the counts).
template <typename W, typename I>
__global__ void eden_emit_tiles(EDEN_TILE_PARAMS(W), const long long* offsets, I* out_idx, W* out_mask) {
    eden::emit_tiles_body<W, I>((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_TILE_ARGS, offsets,
                                out_idx, out_mask);
}

// words[idx[i]] ^= mask[i], i < n (indices are unique: no atomics needed).
template <typename W, typename I>
__global__ void eden_xor_segments(W* words, const I* idx, const W* mask, long long n) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        words[idx[i]] ^= mask[i];
    }
}

#ifdef EDEN_NVCC_CHECK
// Every instantiation backends/cuda.py asks NVRTC for (its name_expressions).
template __global__ void eden_count_tiles<unsigned char>(EDEN_TILE_PARAMS(unsigned char), long long*);
template __global__ void eden_count_tiles<unsigned short>(EDEN_TILE_PARAMS(unsigned short), long long*);
template __global__ void eden_count_tiles<unsigned int>(EDEN_TILE_PARAMS(unsigned int), long long*);
#define EDEN_INSTANTIATE_WI(WT, IT)                                                                   \
    template __global__ void eden_emit_tiles<WT, IT>(EDEN_TILE_PARAMS(WT), const long long*, IT*, WT*); \
    template __global__ void eden_xor_segments<WT, IT>(WT*, const IT*, const WT*, long long);
EDEN_INSTANTIATE_WI(unsigned char, int)
EDEN_INSTANTIATE_WI(unsigned char, long long)
EDEN_INSTANTIATE_WI(unsigned short, int)
EDEN_INSTANTIATE_WI(unsigned short, long long)
EDEN_INSTANTIATE_WI(unsigned int, int)
EDEN_INSTANTIATE_WI(unsigned int, long long)
#endif
