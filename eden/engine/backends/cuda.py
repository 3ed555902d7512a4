"""CUDA backend (CuPy): the kernels of ``cuda/inject.cu``, bit-identical to ``cpu.py``.

The only module that imports CuPy, and only inside functions (``import eden``
stays light). Kernels are compiled once per device with NVRTC and run on
PyTorch's current stream, so they order correctly with the caller's work.

Flow of ``inject``: upload the plan (one host-to-device copy), count the
(word, mask) entries of every tile, scan the counts, emit the entries at the
scanned offsets, then XOR the words. Both generation passes only read the
tensor, so data-dependent acceptance always sees the original bits.

Registered as the ``cuda`` backend (CUDA tensors) when eden's engine loads; CuPy is imported
and checked only when a CUDA tensor is injected.
"""

from __future__ import annotations

import contextlib

import numpy as np

from eden.engine import rng
from eden.engine.contract import BackendUnavailableError, Op, register_backend, register_kernel
from eden.engine.correct import correct_segments
from eden.engine.plan import Plan
from eden.errors import EdenConfigError

_WORD_CTYPES = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int"}
_INDEX_CTYPES = {4: "int", 8: "long long"}
#: Generator-state scratch per launch (bytes); tiles are launched in batches under it.
_SCRATCH_BYTES = 128 << 20
_GEN_FIELDS = 6  # 32-bit words of generator state per live sub-pass (cuda/inject.cu GenStore)
_BLOCK = 128
_MODULES: dict[int, object] = {}


def _name_expressions() -> list[str]:
    names = []
    for w in _WORD_CTYPES.values():
        names.append(f"eden_count_tiles<{w}>")
        for i in _INDEX_CTYPES.values():
            names.append(f"eden_emit_tiles<{w}, {i}>")
            names.append(f"eden_xor_segments<{w}, {i}>")
    return names


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


@register_kernel(Op.INJECT, "cuda")
def inject(plan: Plan, flat, fmt):
    """Flip the CUDA tensor ``flat`` (a flat uint8 view of its storage) per ``plan``.

    Returns:
        (words, idx, mask, off, cnt): ``words`` is a CuPy view of the storage as
        ``fmt.word``; ``idx``/``mask`` are CuPy arrays of the log (word indices
        increasing); ``off``/``cnt`` are NumPy int64 segment arrays (one segment).
    """
    device_id = int(flat.device.index if flat.device.index is not None else 0)
    wdt = np.dtype(fmt.word)
    if wdt.itemsize not in _WORD_CTYPES:
        raise EdenConfigError(f"the CUDA backend flips 8-, 16- and 32-bit words, not {fmt.name}'s {wdt}: "
                              "inject on the CPU (tensor.cpu())")
    if plan.row_bits >= 2**31:
        raise EdenConfigError(f"rows of {plan.row_bits} bits are too long for the CUDA backend (< 2**31)")
    with _on_device(device_id) as cupy:
        words = _as_cupy(cupy, flat).view(wdt)
        n_words = int(words.size)
        idx_dt = np.dtype(np.int32 if n_words < 2**31 else np.int64)
        T = int(plan.n_tiles)
        S = int(plan.n_subpasses)
        off = np.zeros(1, np.int64)
        if T <= 0 or S == 0 or n_words == 0:
            return (words, cupy.zeros(0, idx_dt), cupy.zeros(0, wdt), off, np.zeros(1, np.int64))
        w_ct = _WORD_CTYPES[wdt.itemsize]
        i_ct = _INDEX_CTYPES[idx_dt.itemsize]
        count_k = _kernel(device_id, f"eden_count_tiles<{w_ct}>")
        emit_k = _kernel(device_id, f"eden_emit_tiles<{w_ct}, {i_ct}>")
        xor_k = _kernel(device_id, f"eden_xor_segments<{w_ct}, {i_ct}>")

        (tile_row_id, tile_group, tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A, sp_tab,
         tab_goff, tab_t, guide, bl_off, bl_cols, ln_c, inv_c) = _upload(cupy, [
            (plan.tile_row_id, np.uint32), (plan.tile_group, np.int32), (plan.tile_wlclass, np.uint8),
            (plan.sp_key, np.uint32), (plan.sp_thin, np.uint8), (plan.sp_pop, np.int32),
            (plan.sp_wl, np.int32), (plan.sp_active, np.uint8), (plan.sp_L, np.float64),
            (plan.sp_A, np.uint64), (plan.sp_tab, np.int64), (plan.tab_goff, np.int64),
            (plan.tab_t, np.uint64), (plan.tab_guide, np.int32), (plan.bl_offsets, np.int64),
            (plan.bl_cols, np.int32), (rng.LOG_LN_C, np.float64), (rng.LOG_INV_C, np.float64)])
        i64 = np.int64
        # Must match EDEN_TILE_PARAMS in cuda/inject.cu (then t_begin, t_end, scratch).
        common = (words, i64(plan.row_bits), i64(plan.bit_lo), i64(plan.bit_hi),
                  i64(plan.tile_wlclass.shape[1]), i64(S), i64(plan.bl_offsets.shape[1]),
                  tile_row_id, tile_group, tile_wl, sp_key, sp_thin, sp_pop, sp_wl, sp_active, sp_L, sp_A,
                  sp_tab, tab_goff, tab_t, guide, bl_off, bl_cols, ln_c, inv_c,
                  np.float64(rng.LN2), np.float64(rng.LN_2_53))
        # Tiles per launch: the live-generator scratch of a launch stays under _SCRATCH_BYTES.
        batch = int(max(1, min(T, _SCRATCH_BYTES // (4 * _GEN_FIELDS * S))))
        scratch = cupy.empty(_GEN_FIELDS * S * batch, np.uint32)
        batches = [(b, min(T, b + batch)) for b in range(0, T, batch)]

        # pass 1: entries per tile
        counts = cupy.empty(T, np.int64)
        for b0, b1 in batches:
            count_k(_grid(b1 - b0), (_BLOCK,), common + (i64(b0), i64(b1), scratch, counts))
        # exclusive scan -> each tile's offset in the log
        ends = cupy.cumsum(counts)
        n = int(ends[-1])
        offsets = ends - counts
        idx = cupy.empty(n, idx_dt)
        mask = cupy.empty(n, wdt)
        if n > 0:
            # pass 2: write the entries (reads original bits only)
            for b0, b1 in batches:
                emit_k(_grid(b1 - b0), (_BLOCK,),
                       common + (i64(b0), i64(b1), scratch, offsets, idx, mask))
            # 4. flip the words, after every tile was generated
            xor_k(_grid(min(n, 1 << 20)), (_BLOCK,), (words, idx, mask, i64(n)))
        return words, idx, mask, off, np.array([n], np.int64)


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
