"""One compiled call per injection: the lean path of a small, uncorrected numba injection.

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
one chunk, the serial path ``cpu.inject`` takes for such a job) on the same plan. It applies
where that path is fixed at preparation: the ``cpu`` backend on a CPU tensor, no correction,
no ECC step, a job whose work estimate is below the parallel threshold (so ``cpu.inject``
never runs it on numba's threads), a seed below 2**64. Anything else keeps the ``Injector``.
"""

from __future__ import annotations

import numpy as np

from eden.engine import rng
from eden.engine.backends import cpu
from eden.engine.correct import CorrectionMode
from eden.engine.ops import Injector
from eden.engine.sampling import TAG_ACCESS

_H0 = 0x6A09E667F3BCC908  # rng.derive_key's initial state


class LeanInjection:
    """A prepared :class:`Injector` as one compiled call (see the module docstring).

    ``lean(address, access)``: inject into the ``nwords`` words at ``address`` (a CPU
    tensor's ``data_ptr()``, the Injector's format and size, contiguous, writeable) for one
    access; returns the bits flipped, or None when its log is still outstanding (not undone)
    or would overflow its buffers (words untouched): then call the ``Injector``. ``undo()``
    restores the words of the last injection. ``entries()``: its log, (word index, xor mask),
    as the Injector's ``FlipLog.word_flips()``.
    """

    __slots__ = ("injector", "total_bits", "_call", "_args", "_addr", "_n", "_idx", "_mask", "_nwords", "_proto",
                 "_xor")

    def __init__(self, inj: Injector):
        k = cpu.kernels()
        plan = inj.compiled.plan
        word = np.dtype(inj.format.word)
        self.injector = inj
        self._nwords = inj.nbytes // word.itemsize
        self.total_bits = self._nwords * word.itemsize * 8
        idx_dtype = np.int32 if self._nwords < 2**31 else np.int64
        rate, n_chunks, _, _, _, off, nd0 = cpu._launch(plan, False, idx_dtype, k)
        if n_chunks != 1:  # pragma: no cover - a serial launch is one chunk
            raise ValueError("internal error: a serial launch of more than one chunk")
        head, tail = plan.derived.get("cpu.args") or cpu._static_args(plan, rate, nd0)
        parts = inj.compiled._access_parts
        # access persistence: the keys are derived per call into a buffer of this object's own
        # (the plan's stay untouched); fixed: the plan's keys, no derivation
        keys = np.zeros_like(plan.sp_key) if parts is not None else plan.sp_key
        parts_arr = np.array(parts or (), np.int64).reshape(-1, 2)
        h_seed = rng.splitmix64(_H0 ^ inj.seed)
        self._idx = np.empty(int(off[-1]), idx_dtype)
        self._mask = np.empty(int(off[-1]), word)
        self._proto = np.zeros(0, word)
        self._call = k.inject_lean
        self._args = (self._nwords, self._proto, np.uint64(h_seed), parts_arr, TAG_ACCESS, plan.word_bits,
                      plan.row_bits, plan.bit_lo, plan.bit_hi, plan.n_tiles, *head, keys, *tail, self._idx,
                      self._mask)
        self._xor = k.xor_lean
        self._addr = 0
        self._n = -1  # entries of the outstanding log; -1: none

    def __call__(self, address: int, access: int) -> int | None:
        if self._n >= 0:
            return None
        n, bits = self._call(address, access, *self._args)
        if n < 0:
            return None
        self._addr, self._n = address, n
        return bits

    def undo(self) -> None:
        """Restore the words of the outstanding injection (XOR is its own inverse). Once only."""
        if self._n < 0:
            raise RuntimeError("this lean injection has no outstanding log to undo")
        self._xor(self._addr, self._nwords, self._proto, self._idx, self._mask, self._n)
        self._n = -1

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(word index int64[k], xor mask[k]) of the outstanding log (copies)."""
        n = max(self._n, 0)
        return self._idx[:n].astype(np.int64), self._mask[:n].copy()


def lean_injection(inj: Injector) -> LeanInjection | None:
    """The :class:`LeanInjection` of ``inj``, or None where the lean path does not apply (see the
    module docstring; the ``Injector`` then does the work)."""
    if (inj.backend != "cpu" or inj.device != "cpu" or inj.ecc is not None or inj.thin is not None
            or inj.correction is not CorrectionMode.NONE or inj.seed >= 2**64):
        return None
    if inj.nbytes % np.dtype(inj.format.word).itemsize:
        return None
    if cpu._work_ns(inj.compiled.plan) >= cpu._PARALLEL_MIN_NS:  # may run on numba's threads
        return None
    return LeanInjection(inj)
