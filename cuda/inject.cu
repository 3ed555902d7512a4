// eden CUDA backend: bit-error injection, bit-identical to eden/engine/backends/cpu.py.
//
// This file transliterates the stream-group walk of eden/engine/backends/_cpu_kernels.py
// (``walk_group``; the sampling contract, stream groups included, is in eden/engine/plan.py,
// the NumPy oracle in eden/engine/backends/reference.py, the randomness in
// eden/engine/rng.py). One thread walks one stream group (a run of tiles of one sub-pass
// walked as one geometric stream: about GROUP_TARGET candidates, or one tile at high rates):
//
//   eden_count_groups<W>     pass 1: number of kept bit positions of each group
//   (host: exclusive scan of the counts)
//   eden_emit_groups<W>      pass 2: the same walk, writing the kept tensor-bit positions
//                            at the group's offset (increasing within a sub-pass)
//   (host, backends/cuda.py: union of the sub-passes (sorted unique), then (word, mask)
//   entries by array operations)
//   eden_xor_segments<W, I>  words[idx[i]] ^= mask[i] (inject, undo, redo)
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
// Everything a group needs (device pointers and scalars of eden.engine.plan.Plan;
// array layouts are the C-contiguous NumPy ones).
struct Params {
    i64 row_bits;            // bits per DRAM row
    i64 bit_lo, bit_hi;      // tensor [start, end) in bits from tile 0's row start
    i64 n_tiles;             // pop_cum has n_tiles + 1 columns
    i64 bl_stride;           // row stride of bl_off (n_groups + 1)
    const u32* tile_row_id;  // [n_tiles]
    const i32* tile_group;   // [n_tiles]: (bank, subarray) group of the tile
    const i64* grp_t0;       // [G]: first tile of each stream group
    const i64* grp_t1;       // [G]: end tile (exclusive)
    const u8* grp_cls;       // [G]: weak-wordline class
    const i32* grp_sp;       // [G]: sub-pass
    const u32* sp_key;       // [S, 2]
    const u8* sp_thin;       // [S]
    const i32* sp_pop;       // [S]
    const i32* sp_gbits;     // [S, 2]
    const double* sp_L;      // [S, 2]
    const u64* sp_A;         // [S, 2, 2]
    const i64* sp_tab;       // [S, 2, 2]: (offset, K)
    const i64* tab_goff;     // [S, 2]
    const u64* tab_t;        // concatenated thresholds
    const i32* guide;        // concatenated 4096-entry guides
    const i64* bl_off;       // [n_bl, n_groups + 1]
    const i32* bl_cols;      // concatenated sorted weak bitlines
    const i64* pop_cum;      // [n_bl, n_tiles + 1]: weak-bitline population before each tile
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
// The stream of one group: draws consumed, and the cached second half of the last
// Philox block (non-thin draws use both halves).
struct Gen {
    i64 draw;
    u32 h2, h3;
};

// Per-sub-pass constants of a group (class-resolved).
struct Sub {
    bool thin;
    u32 k0, k1;
    u32 c3;     // counter word 3: the group bits k
    double L;
    u64 A0, A1;
    i64 toff, K, goff;
};

__host__ __device__ __forceinline__ Sub make_sub(const Params& P, i64 s, i64 cls) {
    Sub q;
    q.thin = P.sp_thin[s] != 0;
    q.k0 = P.sp_key[2 * s];
    q.k1 = P.sp_key[2 * s + 1];
    q.c3 = (u32)P.sp_gbits[2 * s + cls];
    q.L = P.sp_L[2 * s + cls];
    q.A0 = P.sp_A[(2 * s + cls) * 2 + 0];
    q.A1 = P.sp_A[(2 * s + cls) * 2 + 1];
    q.toff = P.sp_tab[(2 * s + cls) * 2 + 0];
    q.K = P.sp_tab[(2 * s + cls) * 2 + 1];
    q.goff = P.tab_goff[2 * s + cls];
    return q;
}

// One geometric skip (as double) and the acceptance draw V, from the group's stream
// (counter (draw, row id of the group's first tile, 0, k)).
__host__ __device__ __forceinline__ double draw_skip(const Params& P, const Sub& q, u32 rid, Gen& G,
                                                    u64& v_out) {
    i64 acc = 0;
    for (;;) {
        // 1. one draw: a fresh Philox block, or the cached second half of the last block
        u64 u;
        u64 v = 0;
        u32 x0, x1, x2, x3;
        if (q.thin) {
            philox4x32_10((u32)G.draw, rid, 0u, q.c3, q.k0, q.k1, x0, x1, x2, x3);
            u = u53(x0, x1);
            v = u53(x2, x3);
        } else if (G.draw % 2 == 0) {
            philox4x32_10((u32)(G.draw / 2), rid, 0u, q.c3, q.k0, q.k1, x0, x1, x2, x3);
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

// _cpu_kernels.py walk_group for one whole group: the number of kept tensor-bit
// positions; writes them (increasing) at out[0 ..) when EMIT. Reads words, never writes them.
template <typename W, bool EMIT>
__host__ __device__ i64 walk_group(const Params& P, const W* __restrict__ words, i64 g, i64* out) {
    const i64 WB = (i64)(sizeof(W) * 8);
    const i64 s = (i64)P.grp_sp[g];
    const i64 t0 = P.grp_t0[g];
    const i64 t1 = P.grp_t1[g];
    const i64 cls = (i64)P.grp_cls[g];
    const i32 pop = P.sp_pop[s];
    const i64* cum = pop >= 0 ? P.pop_cum + (i64)pop * (P.n_tiles + 1) : (const i64*)0;
    const i64 c0 = pop < 0 ? t0 * P.row_bits : cum[t0];
    const i64 size = (pop < 0 ? t1 * P.row_bits : cum[t1]) - c0;
    const i64 nbits = P.bit_hi - P.bit_lo;
    const Sub q = make_sub(P, s, cls);
    const u32 rid = P.tile_row_id[t0];
    Gen G;
    G.draw = 0;
    G.h2 = 0;
    G.h3 = 0;
    i64 pos = -1;
    i64 ti = t0;  // tile cursor (weak-bitline populations)
    i64 n = 0;
    if (size <= 0) return 0;
    for (;;) {
        // 1-2. one skip; stop past the group's population
        u64 v = 0;
        const double gs = draw_skip(P, q, rid, G, v);
        if (!(gs < (double)(size - pos - 1))) break;
        pos = pos + (i64)gs + 1;
        // 3. population index -> tile and bit position in the row
        const i64 gp = c0 + pos;
        i64 t, rowpos;
        if (pop < 0) {
            t = gp / P.row_bits;
            rowpos = gp - t * P.row_bits;
        } else {
            if (cum[ti + 1] <= gp) {
                // binary search: the last tile in (ti, t1) with cum[tile] <= gp
                i64 lo = ti + 1, hi = t1 - 1;
                while (lo < hi) {
                    const i64 mid = lo + (hi - lo + 1) / 2;
                    if (cum[mid] <= gp) lo = mid; else hi = mid - 1;
                }
                ti = lo;
            }
            t = ti;
            rowpos = (i64)P.bl_cols[P.bl_off[(i64)pop * P.bl_stride + (i64)P.tile_group[t]] + gp - cum[t]];
        }
        const i64 tb = t * P.row_bits + rowpos - P.bit_lo;
        if (tb < 0 || tb >= nbits) continue;  // outside the tensor (its first and last tiles)
        // 4. data-dependent acceptance on the stored (original) bit
        if (q.thin) {
            const u64 bit = ((u64)words[tb / WB] >> (u64)(tb % WB)) & 1ULL;
            const u64 thr = bit ? q.A1 : q.A0;
            if (!(v < thr)) continue;
        }
        if constexpr (EMIT) out[n] = tb;
        n += 1;
    }
    return n;
}

__host__ __device__ __forceinline__ Params make_params(
    i64 row_bits, i64 bit_lo, i64 bit_hi, i64 n_tiles, i64 bl_stride, const u32* tile_row_id,
    const i32* tile_group, const i64* grp_t0, const i64* grp_t1, const u8* grp_cls, const i32* grp_sp,
    const u32* sp_key, const u8* sp_thin, const i32* sp_pop, const i32* sp_gbits, const double* sp_L,
    const u64* sp_A, const i64* sp_tab, const i64* tab_goff, const u64* tab_t, const i32* guide,
    const i64* bl_off, const i32* bl_cols, const i64* pop_cum, const double* ln_c, const double* inv_c,
    double ln2, double ln_2_53) {
    Params P;
    P.row_bits = row_bits;
    P.bit_lo = bit_lo;
    P.bit_hi = bit_hi;
    P.n_tiles = n_tiles;
    P.bl_stride = bl_stride;
    P.tile_row_id = tile_row_id;
    P.tile_group = tile_group;
    P.grp_t0 = grp_t0;
    P.grp_t1 = grp_t1;
    P.grp_cls = grp_cls;
    P.grp_sp = grp_sp;
    P.sp_key = sp_key;
    P.sp_thin = sp_thin;
    P.sp_pop = sp_pop;
    P.sp_gbits = sp_gbits;
    P.sp_L = sp_L;
    P.sp_A = sp_A;
    P.sp_tab = sp_tab;
    P.tab_goff = tab_goff;
    P.tab_t = tab_t;
    P.guide = guide;
    P.bl_off = bl_off;
    P.bl_cols = bl_cols;
    P.pop_cum = pop_cum;
    P.ln_c = ln_c;
    P.inv_c = inv_c;
    P.ln2 = ln2;
    P.ln_2_53 = ln_2_53;
    return P;
}

}  // namespace eden

// -------------------------------------------------------------------- kernels
// Common parameter list of the two generation passes (order matters: eden/engine/backends/cuda.py).
#define EDEN_GROUP_PARAMS(WT)                                                                         \
    const WT* __restrict__ words, long long row_bits, long long bit_lo, long long bit_hi,             \
        long long n_tiles, long long bl_stride, const unsigned int* tile_row_id,                      \
        const int* tile_group, const long long* grp_t0, const long long* grp_t1,                      \
        const unsigned char* grp_cls, const int* grp_sp, const unsigned int* sp_key,                  \
        const unsigned char* sp_thin, const int* sp_pop, const int* sp_gbits, const double* sp_L,    \
        const unsigned long long* sp_A, const long long* sp_tab, const long long* tab_goff,           \
        const unsigned long long* tab_t, const int* guide, const long long* bl_off,                   \
        const int* bl_cols, const long long* pop_cum, const double* ln_c, const double* inv_c,       \
        double ln2, double ln_2_53, long long g_begin, long long g_end
#define EDEN_GROUP_ARGS                                                                               \
    words, row_bits, bit_lo, bit_hi, n_tiles, bl_stride, tile_row_id, tile_group, grp_t0, grp_t1,     \
        grp_cls, grp_sp, sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_A, sp_tab, tab_goff, tab_t,      \
        guide, bl_off, bl_cols, pop_cum, ln_c, inv_c, ln2, ln_2_53, g_begin, g_end
#define EDEN_MAKE_PARAMS                                                                              \
    eden::make_params(row_bits, bit_lo, bit_hi, n_tiles, bl_stride, tile_row_id, tile_group, grp_t0,  \
                      grp_t1, grp_cls, grp_sp, sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_A, sp_tab, \
                      tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum, ln_c, inv_c, ln2, ln_2_53)

namespace eden {

// Kernel bodies for one thread (`lane` = global thread index; group g_begin + lane).
// Host-callable, so a host build can run exactly what the kernels run, thread by thread.
template <typename W>
__host__ __device__ __forceinline__ void count_groups_body(long long lane, EDEN_GROUP_PARAMS(W),
                                                          long long* counts) {
    const long long g = g_begin + lane;
    if (g >= g_end) return;
    const Params P = EDEN_MAKE_PARAMS;
    counts[g] = walk_group<W, false>(P, words, g, (i64*)0);
}

template <typename W>
__host__ __device__ __forceinline__ void emit_groups_body(long long lane, EDEN_GROUP_PARAMS(W),
                                                         const long long* offsets, long long* out_pos) {
    const long long g = g_begin + lane;
    if (g >= g_end) return;
    const Params P = EDEN_MAKE_PARAMS;
    walk_group<W, true>(P, words, g, out_pos + offsets[g]);
}

}  // namespace eden

// Pass 1: counts[g] = number of kept positions of stream group g, for g in [g_begin, g_end).
template <typename W>
__global__ void eden_count_groups(EDEN_GROUP_PARAMS(W), long long* counts) {
    eden::count_groups_body<W>((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_GROUP_ARGS, counts);
}

// Pass 2: group g writes its kept tensor-bit positions at offsets[g] (exclusive scan of the counts).
template <typename W>
__global__ void eden_emit_groups(EDEN_GROUP_PARAMS(W), const long long* offsets, long long* out_pos) {
    eden::emit_groups_body<W>((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_GROUP_ARGS, offsets,
                              out_pos);
}

// words[idx[i]] ^= mask[i], i < n (indices are unique: no atomics needed).
template <typename W, typename I>
__global__ void eden_xor_segments(W* words, const I* idx, const W* mask, long long n) {
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        words[idx[i]] ^= mask[i];
    }
}

// ------------------------------------------------------------------ line events
// eden/engine/events.py: per tile (one lane each), every weak block of every line-event pass whose row
// is weak draws one Philox block, counter (block, row id, stream, 0) under the pass's key; an event
// (u53 < ev_thr) emits the block's member bits that lie in the tensor. Pass 1 counts them per tile,
// pass 2 writes them at the tile's offset, in (pass, block, member) order; backends/cuda.py unites
// them with the sub-passes' positions. Data-independent: the words are not read.
#define EDEN_EVENT_PARAMS                                                                             \
    long long row_bits, long long bit_lo, long long bit_hi, long long n_tiles, long long blk_stride,  \
        const unsigned int* tile_row_id, const int* tile_group, const unsigned char* tile_wl,         \
        unsigned int stream, long long n_ev, const unsigned int* ev_key,                              \
        const unsigned long long* ev_thr, const int* ev_wl, const int* ev_block,                      \
        const long long* ev_blk_off, const int* ev_blk, const long long* ev_mem_off, const int* ev_mem
#define EDEN_EVENT_ARGS                                                                               \
    row_bits, bit_lo, bit_hi, n_tiles, blk_stride, tile_row_id, tile_group, tile_wl, stream, n_ev,    \
        ev_key, ev_thr, ev_wl, ev_block, ev_blk_off, ev_blk, ev_mem_off, ev_mem

namespace eden {

template <bool EMIT>
__host__ __device__ __forceinline__ i64 tile_events(i64 t, EDEN_EVENT_PARAMS, i64* out) {
    i64 n = 0;
    const i64 nbits = bit_hi - bit_lo;
    const i64 base = t * row_bits - bit_lo;
    const i64 g = tile_group[t];
    for (i64 e = 0; e < n_ev; ++e) {
        if (tile_wl[(i64)ev_wl[e] * n_tiles + t] != 1) continue;
        const i64 block = ev_block[e];
        const i64 j1 = ev_blk_off[e * blk_stride + g + 1];
        for (i64 j = ev_blk_off[e * blk_stride + g]; j < j1; ++j) {
            const i64 b = ev_blk[j];
            const i64 first = base + b * block;
            if (first + block <= 0 || first >= nbits) continue;
            u32 x0, x1, x2, x3;
            philox4x32_10((u32)b, tile_row_id[t], stream, 0u, ev_key[2 * e], ev_key[2 * e + 1], x0, x1, x2, x3);
            if (u53(x0, x1) >= ev_thr[e]) continue;
            for (i64 m = ev_mem_off[j]; m < ev_mem_off[j + 1]; ++m) {
                const i64 bit = base + (i64)ev_mem[m];
                if (bit >= 0 && bit < nbits) {
                    if (EMIT) out[n] = bit;
                    ++n;
                }
            }
        }
    }
    return n;
}

__host__ __device__ __forceinline__ void count_events_body(long long lane, EDEN_EVENT_PARAMS, long long* counts) {
    if (lane >= n_tiles) return;
    counts[lane] = tile_events<false>(lane, EDEN_EVENT_ARGS, (i64*)0);
}

__host__ __device__ __forceinline__ void emit_events_body(long long lane, EDEN_EVENT_PARAMS,
                                                         const long long* offsets, long long* out) {
    if (lane >= n_tiles) return;
    tile_events<true>(lane, EDEN_EVENT_ARGS, out + offsets[lane]);
}

}  // namespace eden

// Pass 1: counts[t] = event bits of tile t in the tensor.
__global__ void eden_count_events(EDEN_EVENT_PARAMS, long long* counts) {
    eden::count_events_body((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_EVENT_ARGS, counts);
}

// Pass 2: tile t writes its event bits at offsets[t] (exclusive scan of the counts).
__global__ void eden_emit_events(EDEN_EVENT_PARAMS, const long long* offsets, long long* out) {
    eden::emit_events_body((long long)blockIdx.x * blockDim.x + threadIdx.x, EDEN_EVENT_ARGS, offsets, out);
}

#ifdef EDEN_NVCC_CHECK
// Every instantiation backends/cuda.py asks NVRTC for (its name_expressions).
#define EDEN_INSTANTIATE_W(WT)                                                                        \
    template __global__ void eden_count_groups<WT>(EDEN_GROUP_PARAMS(WT), long long*);                \
    template __global__ void eden_emit_groups<WT>(EDEN_GROUP_PARAMS(WT), const long long*, long long*);
EDEN_INSTANTIATE_W(unsigned char)
EDEN_INSTANTIATE_W(unsigned short)
EDEN_INSTANTIATE_W(unsigned int)
#define EDEN_INSTANTIATE_WI(WT, IT)                                                                   \
    template __global__ void eden_xor_segments<WT, IT>(WT*, const IT*, const WT*, long long);
EDEN_INSTANTIATE_WI(unsigned char, int)
EDEN_INSTANTIATE_WI(unsigned char, long long)
EDEN_INSTANTIATE_WI(unsigned short, int)
EDEN_INSTANTIATE_WI(unsigned short, long long)
EDEN_INSTANTIATE_WI(unsigned int, int)
EDEN_INSTANTIATE_WI(unsigned int, long long)
#endif
