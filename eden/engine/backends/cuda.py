"""CUDA backend (CuPy): the kernels of ``cuda/inject.cu``, bit-identical to ``cpu.py``.

The only module that imports CuPy, and only inside functions (``import eden``
stays light). Kernels are compiled once per device with NVRTC and run on
PyTorch's current stream, so they order correctly with the caller's work.

Flow of ``inject``: upload the plan (one host-to-device copy), count the kept bit
positions of every stream group (one thread per group: ``plan.py``), scan the counts,
emit the positions at the scanned offsets, unite the sub-passes (sorted unique; a single
sub-pass's positions are already sorted), build the (word, mask) entries with array
operations, then XOR the words. Both generation passes only read the tensor, so
data-dependent acceptance always sees the original bits.

Registered as the ``cuda`` backend (CUDA tensors) when eden's engine loads; CuPy is imported
and checked only when a CUDA tensor is injected.
"""

from __future__ import annotations

import contextlib

import numpy as np

from eden.engine import rng
from eden.engine.contract import BackendUnavailableError, Op, register_backend, register_kernel
from eden.engine.correct import correct_segments
from eden.engine.events import merge_words
from eden.engine.sampling import STREAM_EVENTS
from eden.engine.plan import Plan
from eden.errors import EdenConfigError

_WORD_CTYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int"}
_INDEX_CTYPES = {4: "int", 8: "long long"}
_BLOCK = 128
_MODULES: dict[int, object] = {}


def _name_expressions() -> list[str]:
    names = []
    for w in _WORD_CTYPES.values():
        names.append(f"eden_count_groups<{w}>")
        names.append(f"eden_emit_groups<{w}>")
        for i in _INDEX_CTYPES.values():
            names.append(f"eden_xor_segments<{w}, {i}>")
    return names + ["eden_count_events", "eden_emit_events"]


def _cupy():
    """CuPy, or a BackendUnavailableError that says what to do."""
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError("eden's CUDA backend needs CuPy: install eden[cuda] (cupy-cuda12x/13x) "
                                      "or move the tensor to the CPU (tensor.cpu()) before injecting") from exc
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise BackendUnavailableError(f"eden's CUDA backend found no usable CUDA device ({exc}); install "
                                      f"eden[cuda] (cupy-cuda12x/13x) matching your driver or move the tensor "
                                      f"to the CPU (tensor.cpu())") from exc
    if n == 0:
        raise BackendUnavailableError("eden's CUDA backend found no CUDA device: install eden[cuda] "
                                      "(cupy-cuda12x/13x) on a GPU machine or move the tensor to the CPU "
                                      "(tensor.cpu())")
    return cupy


_READY: list[bool] = []  # one True once CuPy and a device were found


def _require() -> None:
    if not _READY:
        _cupy()
        _READY.append(True)


register_backend("cuda", device="cuda", require=_require)


def _module(device_id: int):
    """The compiled RawModule for one device (memoized)."""
    mod = _MODULES.get(device_id)
    if mod is None:
        cupy = _cupy()
        from eden.core.resources import resource_path

        code = resource_path("cuda", "inject.cu").read_text(encoding="utf-8")
        with cupy.cuda.Device(device_id):
            mod = cupy.RawModule(code=code, options=("--std=c++17", "-fmad=false"),
                                 name_expressions=_name_expressions())
            mod.compile()
        _MODULES[device_id] = mod
    return mod


def _kernel(device_id: int, name: str):
    return _module(device_id).get_function(name)


@contextlib.contextmanager
def _on_device(device_id: int):
    """Make ``device_id`` and PyTorch's current stream on it CuPy's current ones."""
    cupy = _cupy()
    import torch

    stream = torch.cuda.current_stream(device_id)
    with cupy.cuda.Device(device_id), cupy.cuda.ExternalStream(stream.cuda_stream):
        yield cupy


def _device_of(arr) -> int:
    return int(arr.device.id)


def _as_cupy(cupy, tensor):
    """A CuPy array sharing the torch tensor's memory (DLPack: stream-ordered, no host sync)."""
    try:
        return cupy.from_dlpack(tensor)
    except (AttributeError, TypeError, BufferError):  # older CuPy / torch
        return cupy.asarray(tensor)


def _grid(n: int) -> tuple[int]:
    return (max(1, (int(n) + _BLOCK - 1) // _BLOCK),)


def _upload(cupy, arrays):
    """Copy host arrays to the device in one transfer; returns device views in order."""
    host = []
    offsets = []
    total = 0
    for a, dt in arrays:
        b = np.ascontiguousarray(a, dtype=dt).reshape(-1)
        offsets.append(total)
        host.append(b)
        total += (b.nbytes + 15) // 16 * 16
    buf = np.zeros(max(total, 16), np.uint8)
    for o, b in zip(offsets, host):
        buf[o:o + b.nbytes] = b.view(np.uint8)
    dev = cupy.asarray(buf)
    return [dev[o:o + b.nbytes].view(b.dtype) for o, b in zip(offsets, host)]


def pack_positions(xp, pos, word_bits: int, idx_dt, wdt):
    """(idx, mask) log entries of sorted unique tensor-bit positions: one entry per word,
    its mask the OR (here: the sum, the bits being distinct) of its bits. ``xp``: CuPy."""
    n = int(pos.size)
    if n == 0:
        return xp.zeros(0, idx_dt), xp.zeros(0, wdt)
    wsh = int(word_bits).bit_length() - 1
    w = pos >> wsh
    new = xp.empty(n, bool)
    new[0] = True
    new[1:] = w[1:] != w[:-1]
    starts = xp.flatnonzero(new)
    bit = (pos & (word_bits - 1)).astype(xp.uint64)
    csum = xp.cumsum(xp.left_shift(xp.ones(n, xp.uint64), bit))
    last = xp.empty(starts.size, xp.int64)
    last[:-1] = starts[1:] - 1
    last[-1] = n - 1
    before = xp.zeros(starts.size, xp.uint64)
    before[1:] = csum[last[:-1]]
    return w[starts].astype(idx_dt), (csum[last] - before).astype(wdt)


@register_kernel(Op.INJECT, "cuda")
def inject(plan: Plan, flat, fmt):
    """Flip the CUDA tensor ``flat`` (a flat uint8 view of its storage) per ``plan``.

    Returns:
        (words, idx, mask, off, cnt): ``words`` is a CuPy view of the storage as
        ``fmt.word``; ``idx``/``mask`` are CuPy arrays of the log (word indices
        increasing); ``off``/``cnt`` are NumPy int64 segment arrays (one segment).

    Line events (``plan.has_events``, ``eden/engine/events.py``): after the sub-passes, two
    more passes (``eden_count_events``, ``eden_emit_events``: one thread per tile) list the event
    bits, which are merged into the flipped words and the log (``events.merge_words``).
    """
    words, idx, mask, off, cnt = _inject_subpasses(plan, flat, fmt)
    if plan.has_events and plan.n_tiles and int(words.size):
        device_id = int(flat.device.index if flat.device.index is not None else 0)
        with _on_device(device_id) as cupy:
            pos = _event_positions(cupy, device_id, plan)
            if int(pos.size):
                ew, em = pack_positions(cupy, pos, plan.word_bits, idx.dtype, words.dtype)
                idx, mask = merge_words(cupy, words, idx, mask, ew, em)
        cnt = np.array([int(idx.size)], np.int64)
    return words, idx, mask, off, cnt


def _event_positions(cupy, device_id: int, plan: Plan):
    """Sorted unique tensor-bit positions of the plan's line events (``events.line_event_bits``),
    drawn by the event kernels."""
    (tile_row_id, tile_group, tile_wl, ev_key, ev_thr, ev_wl, ev_block, ev_blk_off, ev_blk, ev_mem_off,
     ev_mem) = _upload(cupy, [
        (plan.tile_row_id, np.uint32), (plan.tile_group, np.int32), (plan.tile_wlclass, np.uint8),
        (plan.ev_key, np.uint32), (plan.ev_thr, np.uint64), (plan.ev_wl, np.int32), (plan.ev_block, np.int32),
        (plan.ev_blk_off, np.int64), (plan.ev_blk, np.int32), (plan.ev_mem_off, np.int64), (plan.ev_mem, np.int32)])
    i64 = np.int64
    T = int(plan.n_tiles)
    # Must match EDEN_EVENT_PARAMS in cuda/inject.cu.
    args = (i64(plan.row_bits), i64(plan.bit_lo), i64(plan.bit_hi), i64(T), i64(plan.ev_blk_off.shape[1]),
            tile_row_id, tile_group, tile_wl, np.uint32(STREAM_EVENTS), i64(len(plan.ev_thr)), ev_key, ev_thr, ev_wl,
            ev_block, ev_blk_off, ev_blk, ev_mem_off, ev_mem)
    counts = cupy.empty(T, np.int64)
    _kernel(device_id, "eden_count_events")(_grid(T), (_BLOCK,), args + (counts,))
    ends = cupy.cumsum(counts)
    n = int(ends[-1])
    if n == 0:
        return cupy.zeros(0, np.int64)
    pos = cupy.empty(n, np.int64)
    _kernel(device_id, "eden_emit_events")(_grid(T), (_BLOCK,), args + (ends - counts, pos))
    return cupy.unique(pos)


def _inject_subpasses(plan: Plan, flat, fmt):
    """:func:`inject` without the line events."""
    device_id = int(flat.device.index if flat.device.index is not None else 0)
    wdt = np.dtype(fmt.word)
    if wdt.itemsize not in _WORD_CTYPES:
        raise EdenConfigError(f"the CUDA backend flips 8-, 16- and 32-bit words, not {fmt.name}'s {wdt}: "
                              "inject on the CPU (tensor.cpu())")
    with _on_device(device_id) as cupy:
        words = _as_cupy(cupy, flat).view(wdt)
        n_words = int(words.size)
        idx_dt = np.dtype(np.int32 if n_words < 2**31 else np.int64)
        G = int(len(plan.grp_t0))
        off = np.zeros(1, np.int64)
        if G == 0 or n_words == 0:
            return (words, cupy.zeros(0, idx_dt), cupy.zeros(0, wdt), off, np.zeros(1, np.int64))
        w_ct = _WORD_CTYPES[wdt.itemsize]
        i_ct = _INDEX_CTYPES[idx_dt.itemsize]
        count_k = _kernel(device_id, f"eden_count_groups<{w_ct}>")
        emit_k = _kernel(device_id, f"eden_emit_groups<{w_ct}>")
        xor_k = _kernel(device_id, f"eden_xor_segments<{w_ct}, {i_ct}>")

        (tile_row_id, tile_group, grp_t0, grp_t1, grp_cls, grp_sp, sp_key, sp_thin, sp_pop, sp_gbits, sp_L,
         sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, pop_cum, ln_c, inv_c) = _upload(cupy, [
            (plan.tile_row_id, np.uint32), (plan.tile_group, np.int32), (plan.grp_t0, np.int64),
            (plan.grp_t1, np.int64), (plan.grp_cls, np.uint8), (plan.grp_sp, np.int32),
            (plan.sp_key, np.uint32), (plan.sp_thin, np.uint8), (plan.sp_pop, np.int32),
            (plan.sp_gbits, np.int32), (plan.sp_L, np.float64), (plan.sp_A, np.uint64),
            (plan.sp_tab, np.int64), (plan.tab_goff, np.int64), (plan.tab_t, np.uint64),
            (plan.tab_guide, np.int32), (plan.bl_offsets, np.int64), (plan.bl_cols, np.int32),
            (plan.pop_cum, np.int64), (rng.LOG_LN_C, np.float64), (rng.LOG_INV_C, np.float64)])
        i64 = np.int64
        # Must match EDEN_GROUP_PARAMS in cuda/inject.cu.
        common = (words, i64(plan.row_bits), i64(plan.bit_lo), i64(plan.bit_hi), i64(plan.n_tiles),
                  i64(plan.bl_offsets.shape[1]), tile_row_id, tile_group, grp_t0, grp_t1, grp_cls, grp_sp,
                  sp_key, sp_thin, sp_pop, sp_gbits, sp_L, sp_A, sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols,
                  pop_cum, ln_c, inv_c, np.float64(rng.LN2), np.float64(rng.LN_2_53), i64(0), i64(G))
        # pass 1: kept positions per group
        counts = cupy.empty(G, np.int64)
        count_k(_grid(G), (_BLOCK,), common + (counts,))
        # exclusive scan -> each group's offset
        ends = cupy.cumsum(counts)
        n = int(ends[-1])
        offsets = ends - counts
        if n == 0:
            return (words, cupy.zeros(0, idx_dt), cupy.zeros(0, wdt), off, np.zeros(1, np.int64))
        # pass 2: the positions (reads original bits only)
        pos = cupy.empty(n, np.int64)
        emit_k(_grid(G), (_BLOCK,), common + (offsets, pos))
        # union of the sub-passes (one sub-pass: already sorted and unique)
        if int(np.count_nonzero(np.diff(plan.grp_off))) > 1:
            pos = cupy.unique(pos)
        idx, mask = pack_positions(cupy, pos, plan.word_bits, idx_dt, wdt)
        m = int(idx.size)
        # flip the words, after every group was generated
        xor_k(_grid(min(m, 1 << 20)), (_BLOCK,), (words, idx, mask, i64(m)))
        return words, idx, mask, off, np.array([m], np.int64)


@register_kernel(Op.XOR_LOG, "cuda")
def xor_segments(words, idx, mask, off, cnt) -> None:
    """words[idx] ^= mask over every segment (undo / redo: XOR is its own inverse)."""
    device_id = _device_of(words)
    wdt = np.dtype(words.dtype)
    with _on_device(device_id):
        xor_k = _kernel(device_id, f"eden_xor_segments<{_WORD_CTYPES[wdt.itemsize]}, "
                                   f"{_INDEX_CTYPES[np.dtype(idx.dtype).itemsize]}>")
        for o, c in zip(np.asarray(off).tolist(), np.asarray(cnt).tolist()):
            if c > 0:
                xor_k(_grid(min(c, 1 << 20)), (_BLOCK,),
                      (words, idx[o:o + c], mask[o:o + c], np.int64(c)))


def _segments(cupy, a, off, cnt):
    parts = [a[o:o + c] for o, c in zip(np.asarray(off).tolist(), np.asarray(cnt).tolist())]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return a[:0]
    return cupy.concatenate(parts)


@register_kernel(Op.READ_LOG, "cuda")
def to_host_flat(idx, mask, off, cnt):
    """(idx int64, mask) of all log entries as NumPy arrays, sorted by word index."""
    device_id = _device_of(idx)
    with _on_device(device_id) as cupy:
        stream = cupy.cuda.get_current_stream()
        i = cupy.asnumpy(_segments(cupy, idx, off, cnt), stream=stream)
        m = cupy.asnumpy(_segments(cupy, mask, off, cnt), stream=stream)
        stream.synchronize()
    return i.astype(np.int64), m


@register_kernel(Op.CORRECT, "cuda")
def correct(words, idx, mask, off, cnt, fmt, mode, low, high) -> tuple[int, int]:
    """The correction on the device (:func:`eden.engine.correct.correct_segments` with CuPy):
    the same values and log update as the CPU path."""
    with _on_device(_device_of(words)) as cupy:
        return correct_segments(cupy, words, idx, mask, off, cnt, fmt, mode, low, high)
