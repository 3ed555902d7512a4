"""Compiled CPU backend (numba): the same scheme as ``reference.py``, O(errors).

Stream group by stream group (``plan.py``: runs of tiles walked as one geometric
stream, so a sweep costs O(candidates + groups), not O(tiles)), each sub-pass's draws
are generated in vectorized batches and scanned in order into kept positions; several
sub-passes are united (a bit kept by several flips once); the words are logged as (word
index, xor mask) and XORed. Large jobs run chunks of tiles on numba's threads, small
ones on the calling thread (a parallel region costs more than they do on a busy
machine); the bits are the same either way. The kernels and the details are in
``_cpu_kernels.py``; ``cuda/inject.cu`` computes the same streams.

numba is compiled lazily on first use (``import eden`` stays light). All
floating-point steps are separate IEEE operations (no ``fastmath``), so the
results equal the NumPy oracle bit for bit. The weak-line maps of em1/em2
(``weak_bitlines``, ``weak_wordlines``) have numba versions here too, equal to
``reference.py``'s. Registered as the ``cpu`` backend (``auto``'s choice for CPU tensors
unless ``EDEN_DISABLE_NUMBA`` is set) at the end of this module.
"""

from __future__ import annotations

import functools
import math
import os
import sys

import numpy as np

from eden.engine import rng
from eden.engine.contract import Op, host_read_log, register_backend, register_kernel
from eden.engine.correct import CorrectionMode, correct_segments
from eden.engine.events import merge_events
from eden.engine.plan import Plan
from eden.engine.sampling import STREAM_BITLINES, STREAM_EVENTS, STREAM_WORDLINES, TAG_BITLINE, TAG_WORDLINE, TWO53
from eden.engine.sampling import fixed_bands as _fixed_bands

_KERNELS = None


def kernels():
    global _KERNELS
    if _KERNELS is None:
        from eden.engine.backends import _cpu_kernels as k

        _KERNELS = k
    return _KERNELS


def _threads() -> int:
    import numba

    return numba.get_num_threads()


#: Rough single-thread costs, only to choose serial or parallel execution (results
#: are the same either way): a parallel region waits for its slowest thread, and on
#: a machine with no idle core that can be a whole scheduler time slice (~5 ms).
_NS_PER_GROUP = 30.0
_NS_PER_DRAW = 20.0
_PARALLEL_MIN_NS = 4e6
_XOR_PARALLEL_MIN = 1 << 17
#: From this size on, parallel whatever the load: measured on 2 cores next to one busy
#: process, such a job took as long in parallel as serially (em3 at 1e-2 on 2^26 words:
#: 541 vs 543 ms), and without one half as long (314 vs 526 ms). Below it, a parallel
#: job next to a busy process took 1.5x its serial time (em0 at 1e-4: 19-21 vs 13 ms),
#: so there the load decides. (numba's OpenMP and workqueue layers split a prange
#: statically, so a delayed thread holds up its whole share.)
_PARALLEL_ALWAYS_NS = 4e7
_XOR_PARALLEL_ALWAYS = 1 << 21


def _thread_state(stat: bytes) -> bytes:
    """The state letter of a /proc/<pid>/task/<tid>/stat line. It follows the command
    name, which is in parentheses and may itself hold spaces and parentheses."""
    end = stat.rindex(b")")
    return stat[end + 2:end + 3]


def _runnable() -> int | None:
    """Tasks of other processes running or ready to run right now (Linux), or None.

    Machine-wide runnable tasks (``/proc/loadavg``) minus this process's own runnable
    threads: numba's OpenMP workers spin for a while after a parallel region, and
    counting them would make the next job look like it shares the machine."""
    try:
        with open("/proc/loadavg", "rb") as f:
            total = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None
    ncpu = os.cpu_count() or 1
    if total - 1 < ncpu - 1:
        return total - 1  # idle enough even if no thread of ours runs: skip the per-thread scan
    own = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    own += _thread_state(f.read()) == b"R"
            except (OSError, ValueError):  # the thread ended
                continue
    except OSError:
        return total - 1
    return max(total - max(own, 1), 0)


def _parallel(work: float, minimum: float, always: float) -> bool:
    """Use numba's threads for a job of this size? Only if it is large enough and, for
    jobs below ``always``, if the kernel tells that another core is idle right now
    (other processes' runnable tasks below the cores left besides the calling
    thread's): on a busy machine the extra threads only make a short job wait for
    them. ``numba.set_num_threads(1)`` forces serial execution."""
    if work < minimum or _threads() < 2:
        return False
    if work >= always:
        return True
    others = _runnable()
    return others is None or others < (os.cpu_count() or 1) - 1


def _rates(plan: Plan) -> np.ndarray:
    """Each sub-pass's rate per class, float64[S, 2] (sizes draw batches and the work)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(plan.sp_active != 0, -np.expm1(plan.sp_L), 0.0)


def _expected_draws(plan: Plan, rate: np.ndarray) -> float:
    """Mean number of draws (candidates) over all tiles and sub-passes."""
    total = 0.0
    for s in range(plan.n_subpasses):
        wl, pop = plan.sp_wl[s], plan.sp_pop[s]
        if wl < 0 and pop < 0:
            total += rate[s, 0] * plan.n_tiles * plan.row_bits
            continue
        r = rate[s, plan.tile_wlclass[wl]] if wl >= 0 else rate[s, 0]
        if pop >= 0:
            off = plan.bl_offsets[pop]
            size = (off[1:] - off[:-1])[plan.tile_group]
        else:
            size = plan.row_bits
        total += float(np.sum(r * size))
    return total


def _first_batches(plan: Plan, rate: np.ndarray, batch: int) -> np.ndarray:
    """Draws per tile of each sub-pass int64[S] (a typical tile's expected draws + 1 sigma),
    or 0 for a sub-pass whose stream groups are not all single tiles. The kernels run an
    all-bitline sub-pass with at least ``TILE_MAJOR`` of them fused with the log entries."""
    S = plan.n_subpasses
    nd0 = np.zeros(S, np.int64)
    n_groups = max(plan.bl_offsets.shape[1] - 1, 1)
    for s in range(S):
        if plan.sp_gbits[s].max() > 0:
            continue
        r = rate[s, 0] if plan.sp_active[s, 0] else rate[s, 1]
        pop = plan.sp_pop[s]
        size = plan.row_bits if pop < 0 else (plan.bl_offsets[pop, -1] - plan.bl_offsets[pop, 0]) / n_groups
        e = size * r * 1.02
        nd0[s] = min(int(e + math.sqrt(e)) + 2, batch)
        nd0[s] += nd0[s] & 1
    return nd0


def _launch(plan: Plan, parallel: bool, idx_dtype, k):
    """What a launch needs besides the words, derived from the plan alone and memoized in
    ``plan.derived`` (shared by every access of a cached plan): kernel arguments, tile
    chunks, log offsets per chunk."""
    threads = _threads() if parallel else 1
    key = ("cpu", threads, np.dtype(idx_dtype).str)
    hit = plan.derived.get(key)
    if hit is not None:
        return hit
    T = plan.n_tiles
    wb = plan.word_bits
    rate = plan.derived.get("cpu.rate")
    if rate is None:
        rate = plan.derived["cpu.rate"] = _rates(plan)
    n_chunks = max(1, min(T, 16 * threads)) if parallel else 1
    chunk_tiles = np.linspace(0, T, n_chunks + 1).round().astype(np.int64)
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
    nd0 = _first_batches(plan, rate, k.BATCH)
    hit = (rate, n_chunks, chunk_tiles, chunk_words, row_words, off, nd0)
    plan.derived[key] = hit
    return hit


def _work_ns(plan: Plan) -> float:
    """Estimated single-thread time of an injection (memoized in ``plan.derived``)."""
    w = plan.derived.get("cpu.work_ns")
    if w is None:
        rate = plan.derived.get("cpu.rate")
        if rate is None:
            rate = plan.derived["cpu.rate"] = _rates(plan)
        w = plan.derived["cpu.work_ns"] = (_NS_PER_GROUP * max(len(plan.grp_t0), 1)
                                           + _NS_PER_DRAW * _expected_draws(plan, rate))
    return w


def inject(plan: Plan, words: np.ndarray):
    """Flip ``words`` in place per ``plan``; returns the log as segments.

    Returns:
        (idx, mask, off, cnt): entry ``i`` of segment ``c`` (``off[c] <= i <
        off[c] + cnt[c]``) says ``words[idx[i]]`` was XORed with ``mask[i]``.
        Indices are unique and increase within and across segments.
    """
    k = kernels()
    wb = plan.word_bits
    parallel = _parallel(_work_ns(plan), _PARALLEL_MIN_NS, _PARALLEL_ALWAYS_NS)
    run = k.inject_chunks if parallel else k.inject_chunks_serial
    idx_dtype = np.int32 if len(words) < 2**31 else np.int64
    rate, n_chunks, chunk_tiles, chunk_words, row_words, off, nd0 = _launch(plan, parallel, idx_dtype, k)
    if n_chunks > 1:
        off = off.copy()  # the log keeps its offsets; the memoized ones stay untouched
    idx = np.empty(off[-1], idx_dtype)
    mask = np.empty(off[-1], words.dtype)
    cnt = np.zeros(n_chunks, np.int64)
    # The kernel's arguments but the words and the keys, the same for every access of a plan
    head, tail = plan.derived.get("cpu.args") or _static_args(plan, rate, nd0)
    run(words, wb, plan.row_bits, plan.bit_lo, plan.bit_hi, *head, plan.sp_key, *tail, chunk_tiles, off, idx, mask,
        cnt)
    if (cnt[0] < 0) if n_chunks == 1 else (cnt.min() < 0):
        # rare: re-run each overflowed (untouched) chunk with room for every word
        args = (*head, plan.sp_key, *tail)
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
            k.inject_chunks_serial(words, wb, plan.row_bits, plan.bit_lo, plan.bit_hi, *args,
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
    off = off[:-1]
    if plan.has_events:  # line events (events.py): added after the sub-passes, one segment
        flat_i = np.concatenate([idx[o:o + c] for o, c in zip(off.tolist(), cnt.tolist())])
        flat_m = np.concatenate([mask[o:o + c] for o, c in zip(off.tolist(), cnt.tolist())])
        idx, mask = merge_events(np, words, flat_i, flat_m, line_event_bits(plan), wb)
        return idx, mask, np.zeros(1, np.int64), np.array([len(idx)], np.int64)
    return idx, mask, off, cnt


def _static_args(plan: Plan, rate: np.ndarray, nd0: np.ndarray) -> tuple[tuple, tuple]:
    """The kernel arguments before and after ``sp_key`` (which changes with the access),
    memoized in ``plan.derived`` (shared by every access of a cached plan)."""
    head = (plan.tile_row_id, plan.tile_group, plan.tile_wlclass, plan.grp_off, plan.grp_t0, plan.grp_t1,
            plan.grp_cls)
    tail = (plan.sp_thin, plan.sp_pop, plan.sp_wl, plan.sp_gbits, plan.sp_active, plan.sp_L, rate, nd0, plan.sp_A,
            plan.sp_tab, plan.tab_goff, plan.tab_t, plan.tab_guide, plan.bl_offsets, plan.bl_cols, plan.pop_cum)
    plan.derived["cpu.args"] = (head, tail)
    return head, tail


def xor_segments(words: np.ndarray, idx, mask, off, cnt) -> None:
    """Apply (or undo: XOR is its own inverse) a segment log; in parallel when large."""
    n = len(cnt)
    if n == 0:
        return
    k = kernels()
    if n == 1:  # one segment: the calling thread
        k.xor_segments_serial(words, idx, mask, off, cnt)
        return
    parallel = _parallel(int(np.sum(cnt)), _XOR_PARALLEL_MIN, _XOR_PARALLEL_ALWAYS)
    run = k.xor_segments if parallel else k.xor_segments_serial
    run(words, idx, mask, np.ascontiguousarray(off), cnt)


# ------------------------------------------------------------ line events
def line_event_bits(plan: Plan) -> np.ndarray:
    """``events.line_event_bits`` (the same sorted bits), compiled."""
    bound = plan.derived.get("cpu.ev_bound")
    if bound is None:  # every member of every weak tile-line (the same for every access)
        bound = 0
        for e in range(len(plan.ev_thr)):
            tiles = np.flatnonzero(plan.tile_wlclass[plan.ev_wl[e]] == 1)
            g = plan.tile_group[tiles].astype(np.int64)
            per_group = plan.ev_mem_off[plan.ev_blk_off[e, 1:]] - plan.ev_mem_off[plan.ev_blk_off[e, :-1]]
            bound += int(per_group[g].sum())
        plan.derived["cpu.ev_bound"] = bound
    out = np.empty(bound, np.int64)
    n = kernels().line_event_bits(np.int64(plan.row_bits), np.int64(plan.bit_lo), np.int64(plan.bit_hi),
                                  plan.tile_row_id, plan.tile_group, plan.tile_wlclass, np.uint32(STREAM_EVENTS),
                                  plan.ev_key, plan.ev_thr, plan.ev_wl, plan.ev_block, plan.ev_blk_off, plan.ev_blk,
                                  plan.ev_mem_off, plan.ev_mem, out)
    return np.unique(out[:n])


# ------------------------------------------------------------ weak-line maps
def weak_bitlines(seed: int, component: int, fraction: float, groups: np.ndarray,
                  row_bits: int) -> list[np.ndarray]:
    """``reference.weak_bitlines`` (same lists, bit for bit), compiled."""
    groups = np.asarray(groups, np.int64)
    keys, L, rate, thr = [], [], [], []
    if fraction > 0:
        for bi, (lo, hi) in enumerate(_fixed_bands()):
            if lo >= fraction:
                break
            c = (hi - lo) / (1.0 - lo)
            L.append(-np.inf if c >= 1.0 else float(np.log1p(-c)))
            rate.append(c)
            keys.append(rng.derive_key(seed, component, TAG_BITLINE, bi))
            a = min(1.0, (fraction - lo) / (hi - lo))
            thr.append(min(TWO53, int(np.floor(a * TWO53))))
    if not keys:
        return [np.zeros(0, np.int64) for _ in range(len(groups))]
    k = kernels()
    bitmap = np.zeros((len(groups), (row_bits + 63) // 64), np.uint64)
    k.nested_bitmaps(np.array(keys, np.uint32).reshape(-1, 2), np.array(L, np.float64), np.array(rate, np.float64),
                     np.array(thr, np.uint64), groups, np.int64(row_bits), np.uint32(STREAM_BITLINES), bitmap)
    off, pos = k.bitmap_positions(bitmap, row_bits)
    return [pos[off[i]:off[i + 1]] for i in range(len(groups))]


def weak_wordlines(seed: int, component: int, fraction: float, row_id: np.ndarray) -> np.ndarray:
    """``reference.weak_wordlines`` (same classes, bit for bit), compiled."""
    k0, k1 = rng.derive_key(seed, component, TAG_WORDLINE)
    thr = min(TWO53, int(np.floor(fraction * TWO53)))
    row_id = np.asarray(row_id, np.int64)
    out = np.empty(len(row_id), np.uint8)
    kernels().weak_rows(np.uint32(k0), np.uint32(k1), row_id, np.uint32(STREAM_WORDLINES), np.uint64(thr),
                        out)
    return out


# ------------------------------------------------------------ the backend
def numba_disabled() -> bool:
    """EDEN_DISABLE_NUMBA set (not "" or "0"): ``auto`` uses the NumPy oracle instead."""
    return os.environ.get("EDEN_DISABLE_NUMBA", "") not in ("", "0")


register_backend("cpu", device="cpu", auto_rank=1, usable=lambda: not numba_disabled(),
                 weak_lines=sys.modules[__name__])


@register_kernel(Op.INJECT, "cpu")
def _inject(plan: Plan, words: np.ndarray, fmt):
    return (words, *inject(plan, words))


register_kernel(Op.XOR_LOG, "cpu")(xor_segments)
_correct_numpy = functools.partial(correct_segments, np)


@register_kernel(Op.CORRECT, "cpu")
def correct(words, idx, mask, off, cnt, fmt, mode, low, high):
    """``correct_segments`` (same words, masks and counts), compiled for fp32 and bf16 words;
    other float formats take the NumPy version."""
    if fmt.view not in ("float32", None) or len(cnt) == 0:
        return _correct_numpy(words, idx, mask, off, cnt, fmt, mode, low, high)
    k = kernels()
    shift = np.uint32(32 - fmt.bits)
    low, high = np.float32(low), np.float32(high)
    zero = words.dtype.type(0)
    n_bad, _ = k.correct_log(words, shift, idx, mask, off, cnt, low, high, False, False, zero, zero, zero, zero)
    if n_bad == 0:
        return 0, 0
    # Replacement bits: 0, high, low and NaN's value, rounded into the format (as correct_segments).
    nan_to = min(max(np.float32(0), low), high)
    zero_bits, high_bits, low_bits, nan_bits = fmt.from_float32(np.array([0.0, high, low, nan_to], np.float32))
    n_bad, delta = k.correct_log(words, shift, idx, mask, off, cnt, low, high, True, mode == CorrectionMode.CLAMP,
                                 zero_bits, low_bits, high_bits, nan_bits)
    return int(n_bad), int(delta)
register_kernel(Op.READ_LOG, "cpu")(host_read_log)
