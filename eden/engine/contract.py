"""The engine's op contract: each op declared once, each backend registers its kernels.

Four ops make an injection (bitsandbytes style: one declaration, ``backends/<name>.py``
implementations registered with :func:`register_kernel`):

=========  ==============================================  ====================================
op         signature                                       returns
=========  ==============================================  ====================================
inject     ``(plan, storage, fmt)``                        ``(words, idx, mask, off, cnt)``
xor_log    ``(words, idx, mask, off, cnt)``                ``None``
correct    ``(words, idx, mask, off, cnt, fmt, mode,       ``(n_corrected, bits delta)``
           low, high)``
read_log   ``(idx, mask, off, cnt)``                       ``(idx int64[k], mask[k])`` NumPy
=========  ==============================================  ====================================

``inject`` flips ``storage`` (the backend's view of the tensor: NumPy words on the CPU, a flat
``uint8`` torch tensor on CUDA) in place per the compiled plan and returns the words as the
backend's array plus the log as segments: entry ``i`` of segment ``c`` (``off[c] <= i <
off[c] + cnt[c]``) says ``words[idx[i]]`` was XORed with ``mask[i]``; indices increase within
and across segments, so the same plan gives the same entries on every backend (the NumPy
``reference`` backend is the oracle). ``xor_log`` applies the log again (undo: XOR is its own
inverse). ``correct`` replaces implausible corrupted float values among the logged words (see
:mod:`eden.engine.correct`) and folds the change into the masks. ``read_log`` brings the log
to the host, sorted by word index.

A backend is registered with :func:`register_backend` (its device, how to tell whether it can
run, and the weak-line maps its plans use) and must register a kernel for every op.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from eden.core.registry import Registry
from eden.core.validate import Mode, unknown_name
from eden.errors import EdenConfigError, EdenError


class BackendUnavailableError(EdenError, RuntimeError):
    """A backend that cannot run here (CuPy or a GPU missing); the message says how to fix it."""


class Op(Mode):
    """The engine's ops (module docstring: signatures and contracts)."""

    INJECT = "inject"
    XOR_LOG = "xor_log"
    CORRECT = "correct"
    READ_LOG = "read_log"


def _check_segments(idx, mask, off, cnt) -> None:
    if len(off) != len(cnt):
        raise ValueError(f"internal error: {len(off)} segment offsets for {len(cnt)} counts")
    if len(idx) != len(mask):
        raise ValueError(f"internal error: {len(idx)} log indices for {len(mask)} masks")


def _check_inject(plan, storage, fmt) -> None:
    if plan.word_bits != fmt.word_bits:
        raise ValueError(f"internal error: plan word_bits {plan.word_bits} != {fmt.name}'s {fmt.word_bits}")


def _check_xor(words, idx, mask, off, cnt) -> None:
    _check_segments(idx, mask, off, cnt)


def _check_correct(words, idx, mask, off, cnt, fmt, mode, low, high) -> None:
    _check_segments(idx, mask, off, cnt)
    if not fmt.is_float:
        raise EdenConfigError(f"correction applies to float formats, not {fmt.name}")
    if not low <= high:
        raise ValueError(f"internal error: plausible range ({low}, {high}) is empty")


def _check_read(idx, mask, off, cnt) -> None:
    _check_segments(idx, mask, off, cnt)


_CHECKS: dict[Op, Callable[..., None]] = {
    Op.INJECT: _check_inject, Op.XOR_LOG: _check_xor, Op.CORRECT: _check_correct, Op.READ_LOG: _check_read,
}


@dataclasses.dataclass(frozen=True)
class Backend:
    """A registered backend.

    Attributes:
        name: what ``inject_(..., backend=name)`` selects.
        device: the tensors it injects into (``"cpu"``, ``"cuda"``: torch's device type).
        auto_rank: ``backend="auto"`` takes the usable backend of the tensor's device with
            the highest rank.
        usable: () -> bool, cheap: may ``auto`` pick it now (False e.g. under EDEN_DISABLE_NUMBA).
        require: () -> None, raises :class:`BackendUnavailableError` saying how to get the
            backend working (or to force the CPU path); called before each injection.
        weak_lines: the module whose ``weak_bitlines``/``weak_wordlines`` compile its plans
            (None: the oracle's; any choice gives the same maps).
    """

    name: str
    device: str
    auto_rank: int
    usable: Callable[[], bool]
    require: Callable[[], None]
    weak_lines: Any


def _always() -> bool:
    return True


def _nothing() -> None:
    return None


_BACKENDS: Registry[Backend] = Registry("backend")
_KERNELS: dict[tuple[Op, str], Callable] = {}
AUTO = "auto"


def register_backend(name: str, *, device: str, auto_rank: int = 0, usable: Callable[[], bool] | None = None,
                     require: Callable[[], None] | None = None, weak_lines: Any = None) -> Backend:
    """Declare a backend (its kernels follow with :func:`register_kernel`)."""
    if name == AUTO:
        raise ValueError("'auto' chooses a backend; it cannot be registered as one")
    return _BACKENDS.add(name, Backend(name, device, auto_rank, usable or _always, require or _nothing, weak_lines))


def register_kernel(op: Op | str, backend: str) -> Callable[[Callable], Callable]:
    """Decorator: ``fn`` implements ``op`` on ``backend`` (registered before)."""
    op = Op(op)
    _BACKENDS.lookup(backend)  # registered before its kernels

    def deco(fn: Callable) -> Callable:
        if (op, backend) in _KERNELS:
            raise ValueError(f"backend {backend!r} already has a {op} kernel")
        _KERNELS[(op, backend)] = fn
        return fn
    return deco


def registered_backends() -> tuple[Backend, ...]:
    """Every registered backend, in registration order (``eden doctor`` checks each against the oracle)."""
    return tuple(_BACKENDS.values())


def backend_names() -> tuple[str, ...]:
    """What ``backend=`` accepts: ``"auto"`` and every registered backend."""
    return (AUTO, *_BACKENDS)


def select(name: str, device: str) -> Backend:
    """The backend ``name`` (or the ``auto`` choice) for a tensor on ``device``, ready to run.

    Raises:
        EdenConfigError: unknown name, or a backend for another device.
        BackendUnavailableError: the backend cannot run here (from its ``require``).
    """
    if name == AUTO:
        ranked = sorted((b for b in _BACKENDS.values() if b.device == device), key=lambda b: -b.auto_rank)
        if not ranked:
            raise EdenConfigError(f"no registered backend injects into tensors on {device}; "
                                  f"registered: {', '.join(_BACKENDS)}")
        be = next((b for b in ranked if b.usable()), ranked[-1])
    else:
        if not isinstance(name, str) or name not in _BACKENDS:
            raise unknown_name("backend", name, backend_names())
        be = _BACKENDS[name]
        if be.device != device:
            raise EdenConfigError(f"backend {name!r} injects into tensors on {be.device}, this one is on {device}: "
                                  f"move the tensor (tensor.to({be.device!r})) or pick another backend")
    be.require()
    return be


def call(op: Op, backend: str, *args):
    """Run ``op`` on ``backend`` after the op's argument checks."""
    _CHECKS[op](*args)
    fn = _KERNELS.get((op, backend))
    if fn is None:
        raise ValueError(f"internal error: backend {backend!r} registered no {op} kernel")
    return fn(*args)


def kernel(op: Op, backend: str) -> Callable:
    """The kernel of ``op`` on ``backend`` itself, without the per-call argument checks: for a
    prepared injection (``ops.Injector``) that established the checks' invariants once."""
    fn = _KERNELS.get((op, backend))
    if fn is None:
        raise ValueError(f"internal error: backend {backend!r} registered no {op} kernel")
    return fn


def host_read_log(idx, mask, off, cnt) -> tuple[np.ndarray, np.ndarray]:
    """``read_log`` for backends whose logs are NumPy arrays."""
    if len(cnt) == 1:
        return idx[off[0]:off[0] + cnt[0]].astype(np.int64), mask[off[0]:off[0] + cnt[0]]
    if not len(cnt):
        return np.zeros(0, np.int64), mask[:0]
    parts = [slice(o, o + c) for o, c in zip(off, cnt)]
    return np.concatenate([idx[p] for p in parts]).astype(np.int64), np.concatenate([mask[p] for p in parts])
