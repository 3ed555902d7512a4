"""One compiled call per injection: the lean path of a small numba injection.

An emulated forward pass injects into every IFM once and undoes it after the layer ran. Right
after a convolution every piece of Python runs cold (10-20x slower than in a loop,
``docs/performance.md``), so an :class:`~eden.engine.ops.Injector` call's argument handling,
plan lookup, Python key derivation, NumPy views and log objects cost far more than the
injection itself at low error rates. :class:`LeanInjection` (made by :func:`lean_injection`
from an ``Injector`` where it applies) runs one compiled call per injection: it reaches the
tensor's words by address, derives the access keys itself (SplitMix64 in numba,
``_cpu_kernels.access_keys``), injects with launch constants prepared once, logs into buffers
of its own and returns the bits flipped; :meth:`LeanInjection.undo` is one call too.

Same bits and same log as ``Injector.__call__`` (tested): the same kernel (``run_tiles`` on
one chunk, the serial path ``cpu.inject`` takes for such a job) on the same plan, and for a
correcting fp32/bf16 injection the same correction kernel (``correct_log``) in the same call.
It applies where that path is fixed at preparation: the ``cpu`` backend on a CPU tensor, no
ECC step, no two-level step (``Injector.thin``), a job whose work estimate is below the
parallel threshold (so ``cpu.inject`` never runs it on numba's threads), a seed below 2**64, no
correction or one of fp32/bf16 words.
Anything else keeps the ``Injector``.

*Packed* calls: everything a call needs but the address and the access sits in one int64
header row (``_cpu_kernels.PK_*``: scalars, then the address and length of every plan array,
the key buffer and the log buffers), so each call passes four arguments: numba's dispatcher
checks every argument's type on every call, and with the ~38 arrays of a plan that cost more
than a low-rate injection inside a forward pass. :class:`LeanGroup` packs several injections
(every in-place weight of a model) into one call and one undo.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from eden.engine import rng
from eden.engine.backends import cpu
from eden.engine.correct import CorrectionMode
from eden.engine.ops import Injector
from eden.engine.sampling import TAG_ACCESS
from eden.formats.base import FloatFormat

_H0 = 0x6A09E667F3BCC908  # rng.derive_key's initial state


def _pack(inj: Injector, row: np.ndarray) -> list:
    """Fill header row ``row`` (``_cpu_kernels.PK_*``) with ``inj``'s launch: the plan's arrays,
    its key buffer and log buffers. Returns the arrays the row points into (keep them alive)."""
    k = cpu.kernels()
    plan = inj.compiled.plan
    word = np.dtype(inj.format.word)
    nwords = inj.nbytes // word.itemsize
    rate, n_chunks, _, _, _, off, nd0 = cpu._launch(plan, False, np.int64, k)
    if n_chunks != 1:  # pragma: no cover - a serial launch is one chunk
        raise ValueError("internal error: a serial launch of more than one chunk")
    parts = inj.compiled._access_parts
    # access persistence: the keys are derived per call into a buffer of this row's own
    # (the plan's stay untouched); fixed: a copy of the plan's keys, never written
    keys = np.zeros_like(plan.sp_key) if parts is not None else plan.sp_key.copy()
    cap = int(off[-1])
    arrays = dict(
        tile_row_id=(plan.tile_row_id, np.uint32), tile_group=(plan.tile_group, np.int32),
        tile_wl=(plan.tile_wlclass, np.uint8), grp_off=(plan.grp_off, np.int64), grp_t0=(plan.grp_t0, np.int64),
        grp_t1=(plan.grp_t1, np.int64), grp_cls=(plan.grp_cls, np.uint8), sp_key=(keys, np.uint32),
        sp_thin=(plan.sp_thin, np.uint8), sp_pop=(plan.sp_pop, np.int32), sp_wl=(plan.sp_wl, np.int32),
        sp_gbits=(plan.sp_gbits, np.int32), sp_active=(plan.sp_active, np.uint8), sp_L=(plan.sp_L, np.float64),
        sp_rate=(rate, np.float64), sp_nd0=(nd0, np.int64), sp_A=(plan.sp_A, np.uint64),
        sp_tab=(plan.sp_tab, np.int64), tab_goff=(plan.tab_goff, np.int64), tab_t=(plan.tab_t, np.uint64),
        guide=(plan.tab_guide, np.int32), bl_off=(plan.bl_offsets, np.int64), bl_cols=(plan.bl_cols, np.int32),
        pop_cum=(plan.pop_cum, np.int64), parts=(np.array(parts or (), np.int64).reshape(-1, 2), np.int64),
        out_idx=(np.empty(cap, np.int64), np.int64), out_mask=(np.empty(cap, word), word))
    keep = []
    row[:] = 0
    for i, name in enumerate(k.PK_ARRAYS):
        a, dt = arrays[name]
        a = np.ascontiguousarray(a, dtype=cast(Any, dt))
        if name == "sp_key" and a is not keys:  # pragma: no cover - keys are made uint32 and contiguous
            raise ValueError("internal error: the packed key buffer is not the plan's layout")
        keep.append(a)
        row[k.PK_ARR + 2 * i] = a.ctypes.data
        row[k.PK_ARR + 2 * i + 1] = a.size
    S, T = plan.n_subpasses, plan.n_tiles
    row[k.PK_WB], row[k.PK_ROW_BITS], row[k.PK_BIT_LO], row[k.PK_BIT_HI] = (plan.word_bits, plan.row_bits,
                                                                          plan.bit_lo, plan.bit_hi)
    row[k.PK_T], row[k.PK_S] = T, S
    row[k.PK_NWL], row[k.PK_NBL], row[k.PK_BLS] = (plan.tile_wlclass.shape[0], plan.bl_offsets.shape[0],
                                                   plan.bl_offsets.shape[1])
    row[k.PK_NWORDS] = nwords
    row[k.PK_HSEED] = np.array(rng.splitmix64(_H0 ^ inj.seed), np.uint64).view(np.int64)
    row[k.PK_TAG] = TAG_ACCESS
    row[k.PK_NPARTS] = len(parts or ())
    row[k.PK_CAP] = cap
    row[k.PK_N] = -1
    return keep


def _applies(inj: Injector) -> bool:
    """Whether the packed path gives ``inj``'s bits and log (see the module docstring)."""
    if (inj.backend != "cpu" or inj.device != "cpu" or inj.ecc is not None or inj.thin is not None
            or inj.seed >= 2**64):
        return False
    if inj.compiled.plan.has_events:  # line events are added by cpu.inject, not the packed kernel
        return False
    # correction: where the cpu backend corrects in numba (fp32, bf16: cpu.correct)
    if inj.correction is not CorrectionMode.NONE and getattr(inj.format, "view", "") not in ("float32", None):
        return False
    if inj.nbytes % np.dtype(inj.format.word).itemsize:
        return False
    return cpu._work_ns(inj.compiled.plan) < cpu._PARALLEL_MIN_NS  # else it may run on numba's threads


class LeanInjection:
    """A prepared :class:`Injector` as one compiled call (see the module docstring).

    ``lean(address, access)``: inject into the ``nwords`` words at ``address`` (a CPU
    tensor's ``data_ptr()``, the Injector's format and size, contiguous, writeable) for one
    access; returns the bits flipped, or None when its log is still outstanding (not undone)
    or would overflow its buffers (words untouched): then call the ``Injector``. ``undo()``
    restores the words of the last injection. ``entries()``: its log, (word index, xor mask),
    as the Injector's ``FlipLog.word_flips()``.
    """

    __slots__ = ("injector", "total_bits", "n_corrected", "_call", "_xor", "_hdr", "_keep", "_proto", "_out", "_n",
                 "_correct", "_shift", "_fmax", "_rep", "_held")

    def __init__(self, inj: Injector):
        k = cpu.kernels()
        word = np.dtype(inj.format.word)
        self.injector = inj
        self.total_bits = inj.nbytes * 8
        self._hdr = np.zeros(k.PK_WIDTH, np.int64)
        self._keep = _pack(inj, self._hdr)
        self._out = self._keep[k.PK_ARRAYS.index("out_idx")], self._keep[k.PK_ARRAYS.index("out_mask")]
        self._proto = np.zeros(0, word)
        self._call = k.inject_packed
        self._xor = k.xor_packed
        self._n = -1  # entries of the outstanding log; -1: none
        self.n_corrected = 0  # values the last call's correction replaced
        # correction (Injector.log, cpu.correct): the range pulled in to the format's finite
        # values, replacement words from the format's rounding, memoized for the last range
        self._correct = None if inj.correction is CorrectionMode.NONE else k.inject_packed_correct
        if self._correct is not None:
            fmt = cast(FloatFormat, inj.format)
            self._shift = np.uint32(32 - fmt.bits)
            self._fmax = fmt.max_finite
        self._rep: tuple = (None, None)
        self._held: object = None

    def __call__(self, address: int, access: int, plausible: tuple[float, float] | None = None,
                 hold: object = None) -> int | None:
        """Inject (and correct, when the Injector corrects: ``plausible`` is then its range). ``hold``:
        the tensor at ``address``, kept until the undo (its memory must stay the tensor's)."""
        if self._n >= 0:
            return None
        if self._correct is None:
            n, bits = self._call(address, access, self._hdr, self._proto)
        else:
            if plausible is None:
                raise ValueError("internal error: a correcting lean injection needs the plausible range")
            rep = self._rep
            # keyed with the ends' signs: -0.0 == 0.0, but their replacement words differ
            memo = (*plausible, math.copysign(1.0, plausible[0]), math.copysign(1.0, plausible[1]))
            if rep[0] != memo:
                fmax = self._fmax
                low, high = (np.float32(min(max(float(v), -fmax), fmax)) for v in plausible)
                if not low <= high:
                    raise ValueError(f"internal error: plausible range ({low}, {high}) is empty")
                nan_to = min(max(np.float32(0), low), high)
                fmt = cast(FloatFormat, self.injector.format)
                words = fmt.from_float32(np.array([0.0, low, high, nan_to], np.float32))
                rep = self._rep = (memo, (low, high, words))
            low, high, words = rep[1]
            n, bits, self.n_corrected = self._correct(address, access, self._hdr, self._proto, self._shift, low, high,
                                                      self.injector.correction is CorrectionMode.CLAMP, words)
        if n < 0:
            return None
        self._n = n
        self._held = hold
        return bits

    def undo(self) -> None:
        """Restore the words of the outstanding injection (XOR is its own inverse). Once only."""
        if self._n < 0:
            raise RuntimeError("this lean injection has no outstanding log to undo")
        self._xor(self._hdr, self._proto)
        self._n = -1
        self._held = None

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(word index int64[k], xor mask[k]) of the outstanding log (copies)."""
        n = max(self._n, 0)
        return self._out[0][:n].copy(), self._out[1][:n].copy()


def lean_injection(inj: Injector) -> LeanInjection | None:
    """The :class:`LeanInjection` of ``inj``, or None where the lean path does not apply (see the
    module docstring; the ``Injector`` then does the work)."""
    return LeanInjection(inj) if _applies(inj) else None


class LeanGroup:
    """Several prepared :class:`Injector` objects of one word type as one compiled call per
    access, and one per undo (e.g. every weight of a model on every forward pass).

    ``group(addrs, access, tensors)``: inject into tensor ``j`` at ``addrs[j]`` (int64 array
    of ``data_ptr()`` values of ``tensors``, in the injectors' order; the group holds
    ``tensors`` until the undo, so the memory stays theirs) for ``access``; returns int64 bits
    flipped per tensor, -1 where the tensor's log would overflow (its words untouched: call
    its ``Injector``). ``undo()`` restores every tensor of the last call; ``outstanding`` says
    whether one is pending. Same bits and logs as each ``Injector`` (tested).
    """

    __slots__ = ("injectors", "total_bits", "outstanding", "_hdr", "_keep", "_proto", "_bits", "_call", "_xor",
                 "_held")

    def __init__(self, injectors):
        k = cpu.kernels()
        self.injectors = tuple(injectors)
        word = np.dtype(self.injectors[0].format.word)
        self._hdr = np.zeros((len(self.injectors), k.PK_WIDTH), np.int64)
        self._keep = [_pack(inj, self._hdr[j]) for j, inj in enumerate(self.injectors)]
        self.total_bits = [inj.nbytes * 8 for inj in self.injectors]
        self._proto = np.zeros(0, word)
        self._bits = np.zeros(len(self.injectors), np.int64)
        self._call = k.inject_packed_many
        self._xor = k.xor_packed_many
        self.outstanding = False
        self._held: object = None

    def __call__(self, addrs: np.ndarray, access: int, tensors) -> np.ndarray:
        if self.outstanding:
            raise RuntimeError("this lean group's last injection is not undone")
        if addrs.dtype != np.int64 or addrs.shape != (len(self.injectors),):
            raise ValueError(f"internal error: {len(self.injectors)} int64 addresses expected")
        self._call(addrs, access, self._hdr, self._proto, self._bits)
        self._held = tensors
        self.outstanding = True
        return self._bits

    def undo(self) -> None:
        """Restore every tensor of the outstanding call (those that overflowed were untouched)."""
        if not self.outstanding:
            raise RuntimeError("this lean group has no outstanding injection to undo")
        self._xor(self._hdr, self._proto)
        self.outstanding = False
        self._held = None

    def entries(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(word index int64[k], xor mask[k]) of tensor ``j``'s outstanding log (copies)."""
        k = cpu.kernels()
        n = max(int(self._hdr[j, k.PK_N]), 0) if self.outstanding else 0
        keep = self._keep[j]
        return keep[k.PK_ARRAYS.index("out_idx")][:n].copy(), keep[k.PK_ARRAYS.index("out_mask")][:n].copy()


def lean_group(injectors) -> LeanGroup | None:
    """The :class:`LeanGroup` of ``injectors``, or None unless the packed path applies to every
    one of them, none corrects, and all have one word type (see the module docstring)."""
    injectors = list(injectors)
    if not injectors or not all(_applies(inj) and inj.correction is CorrectionMode.NONE for inj in injectors):
        return None
    if len({np.dtype(inj.format.word) for inj in injectors}) != 1:
        return None
    return LeanGroup(injectors)
