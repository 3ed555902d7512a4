"""The injection op: one contract, CPU (numba; NumPy oracle) and CUDA backends.

``inject_(tensor, model, seed)`` flips bits of a contiguous tensor in place as
the error model says, placed in DRAM by an address map, and returns a
``FlipLog`` that restores the tensor bit-exactly with ``undo()``.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from eden.dram.address import DEFAULT_ADDRESS_MAP, AddressMap
from eden.errormodels.model import ErrorModel
from eden.formats.storage import StorageFormat, format_of

CORRECTIONS = ("none", "zero", "clamp")
BACKENDS = ("auto", "cpu", "reference", "cuda")


@dataclasses.dataclass(frozen=True)
class Correction:
    """Implausible-value correction applied to corrupted float values (EDEN).

    A corrupted value is implausible when it is NaN, infinite or outside the
    data type's plausible range ``[low, high]``. ``zero`` sets it to 0; ``clamp``
    sets it to the nearer end of the range (NaN -> 0 clamped into the range).

    ``plausible``: the range, as ``(low, high)`` or one number ``b`` meaning
    ``(-b, b)``; default: the clean tensor's own range, min and max over its
    finite values (computed before injection). So a value of a non-negative data
    type (a ReLU output, an image) whose sign bit flipped is implausible.
    """

    mode: str = "none"
    plausible: float | tuple[float, float] | None = None

    def __post_init__(self):
        if self.mode not in CORRECTIONS:
            raise ValueError(f"unknown correction {self.mode!r}; known: {', '.join(CORRECTIONS)}")
        r = self.plausible
        if r is None:
            return
        if isinstance(r, (int, float, np.floating, np.integer)) and not isinstance(r, bool):
            if not (float(r) >= 0 and math.isfinite(float(r))):
                raise ValueError(f"correction bound must be finite and >= 0, got {r!r}")
            r = (-float(r), float(r))
        elif isinstance(r, (tuple, list)) and len(r) == 2:
            lo, hi = (float(v) for v in r)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise ValueError(f"plausible range must be finite with low <= high, got {self.plausible!r}")
            r = (lo, hi)
        else:
            raise TypeError(f"plausible must be None, a bound b >= 0 or a (low, high) pair, got {r!r}")
        object.__setattr__(self, "plausible", r)

    @classmethod
    def coerce(cls, value) -> "Correction":
        if value is None:
            return cls("none")
        if isinstance(value, Correction):
            return value
        if isinstance(value, str):
            return cls(value)
        raise TypeError(f"correction must be None, a mode string or a Correction, got {value!r}")


class FlipLog:
    """What an injection did, and how to take it back.

    Attributes:
        n_words: number of storage words changed.
        n_bits: number of bits that differ from the original (after correction).
        n_error_bits: number of bits the errors flipped (before correction).
        n_corrected: number of values replaced by the correction.
        total_bits: bits of the tensor.
        seed, access, model, backend: how the flips were drawn.
    """

    def __init__(self, target, words, idx, mask, off, cnt, *, fmt: StorageFormat, model: ErrorModel,
                 seed: int, access: int, backend: str, n_corrected: int = 0,
                 error_bits_delta: int = 0):
        self._target = target
        self._words = words
        self._idx, self._mask, self._off, self._cnt = idx, mask, off, cnt
        self.format = fmt
        self.model = model
        self.seed = seed
        self.access = access
        self.backend = backend
        self.n_corrected = n_corrected
        self.total_bits = int(words.size) * fmt.word.itemsize * 8
        self._undone = False
        self._n_bits = None
        self._error_bits_delta = int(error_bits_delta)

    # ------------------------------------------------------------------ queries
    def _flat(self):
        """(idx, mask) of all entries as NumPy arrays, sorted by word index."""
        idx, mask, off, cnt = self._idx, self._mask, self._off, self._cnt
        if self.backend == "cuda":
            from eden.engine.backends import cuda as gpu

            return gpu.to_host_flat(idx, mask, off, cnt)
        if len(cnt) == 1:
            return idx[off[0]:off[0] + cnt[0]].astype(np.int64), mask[off[0]:off[0] + cnt[0]]
        parts = [slice(o, o + c) for o, c in zip(off, cnt)]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, self.format.word)
        return (np.concatenate([idx[p] for p in parts]).astype(np.int64),
                np.concatenate([mask[p] for p in parts]))

    @property
    def n_words(self) -> int:
        return int(np.asarray(self._cnt).sum())

    @property
    def n_bits(self) -> int:
        if self._n_bits is None:
            _, mask = self._flat()
            self._n_bits = popcount(mask)
        return self._n_bits

    @property
    def n_error_bits(self) -> int:
        # the correction kept the difference its replacements made to the bit count
        return self.n_bits + self._error_bits_delta

    @property
    def ber(self) -> float:
        """Realized bit error rate: n_bits / total_bits."""
        return self.n_bits / self.total_bits if self.total_bits else 0.0

    def word_flips(self) -> tuple[np.ndarray, np.ndarray]:
        """(element index int64[k], xor mask[k]): which words changed and which bits."""
        return self._flat()

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(element index, bit index) of every flipped bit, sorted; bit 0 is the LSB."""
        idx, mask = self._flat()
        wb = self.format.word.itemsize * 8
        bits = np.unpackbits(mask.view(np.uint8).reshape(-1, wb // 8), axis=1, bitorder="little")
        rows, cols = np.nonzero(bits)
        return idx[rows], cols.astype(np.int64)

    # ------------------------------------------------------------------- action
    def undo(self) -> None:
        """Restore the tensor bit-exactly (XOR is its own inverse). Once only."""
        if self._undone:
            raise RuntimeError("this FlipLog was already undone")
        if self.backend == "cuda":
            from eden.engine.backends import cuda as gpu

            gpu.xor_segments(self._words, self._idx, self._mask, self._off, self._cnt)
        elif self.backend == "reference":
            idx, mask = self._flat()
            self._words[idx] ^= mask
        else:
            from eden.engine.backends import cpu

            cpu.xor_segments(self._words, self._idx, self._mask, self._off, self._cnt)
        self._undone = True

    @property
    def undone(self) -> bool:
        return self._undone

    def __repr__(self) -> str:
        return (f"FlipLog({self.n_bits} bits in {self.n_words} {self.format.name} words, "
                f"BER {self.ber:.3g}, model {self.model}, seed {self.seed}, access {self.access}, "
                f"{self.backend})")


def _storage_view(tensor):
    """(words view, format, target, device) for a contiguous torch tensor or NumPy array."""
    if isinstance(tensor, np.ndarray):
        fmt = format_of(tensor.dtype)
        if not tensor.flags.c_contiguous:
            raise ValueError("eden.inject_ needs a C-contiguous array; pass np.ascontiguousarray(x) "
                             "and copy the result back")
        if not tensor.flags.writeable:
            raise ValueError("eden.inject_ needs a writeable array")
        return tensor.reshape(-1).view(fmt.word), fmt, "cpu"
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(tensor, torch.Tensor):
        fmt = format_of(tensor.dtype)
        if not tensor.is_contiguous():
            raise ValueError("eden.inject_ needs a contiguous tensor; call .contiguous() first "
                             "(in-place injection into a strided view is not supported)")
        if tensor.requires_grad and tensor.is_leaf and torch.is_grad_enabled():
            raise ValueError("eden.inject_ on a leaf tensor that requires grad: wrap the call in "
                             "torch.no_grad() (it mutates storage in place)")
        flat = tensor.detach().reshape(-1).view(torch.uint8)
        if tensor.device.type == "cpu":
            return flat.numpy().view(fmt.word), fmt, "cpu"
        if tensor.device.type == "cuda":
            return flat, fmt, "cuda"
        raise ValueError(f"eden.inject_ supports CPU and CUDA tensors, got device {tensor.device}")
    raise TypeError(f"eden.inject_ takes a torch.Tensor or numpy.ndarray, got {type(tensor).__name__}")


def _check_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def inject_(tensor, model, seed: int = 0, *, access: int = 0, base_address: int = 0,
            address_map: AddressMap | None = None, correction=None, backend: str = "auto") -> FlipLog:
    """Flip bits of ``tensor`` in place as DRAM with ``model`` would; return the undo log.

    Args:
        tensor: contiguous torch tensor (CPU or CUDA) or NumPy array of float32,
            float16, bfloat16, int32, int16, int8 or uint8 (packed int4).
        model: an ErrorModel, a spec string (``"em0:p=1e-4"``) or an ``.h5`` path.
        seed: device/draw seed. Same seed, model, placement and access -> same bits
            on every backend.
        access: access index; with ``access`` persistence each access redraws errors.
        base_address: byte address of the tensor in the DRAM partition (must be a
            multiple of the element size).
        address_map: DRAM organization and mapping; default: 16 banks x 64Ki rows x 8 KiB.
        correction: None/"none", "zero", "clamp" or a Correction (float formats only).
        backend: "auto" (by device), "cpu" (numba), "reference" (NumPy oracle) or "cuda".

    Returns:
        FlipLog with ``n_bits``, ``positions()`` and ``undo()``.

    Raises:
        TypeError: unsupported tensor type or dtype.
        ValueError: non-contiguous tensor, bad seed/access/address, invalid model,
            a tensor that does not fit the DRAM partition. The tensor is untouched.

    Example:
        >>> x = torch.randn(1000)
        >>> log = inject_(x, "em0:p=1e-3", seed=1)
        >>> log.undo()
    """
    em = ErrorModel.coerce(model)
    seed = _check_int("seed", seed)
    access = _check_int("access", access)
    base_address = _check_int("base_address", base_address)
    corr = Correction.coerce(correction)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    words, fmt, device = _storage_view(tensor)
    if corr.mode != "none" and not fmt.is_float:
        raise ValueError(f"correction {corr.mode!r} applies to float formats, not {fmt.name}")
    if base_address % fmt.word.itemsize:
        raise ValueError(f"base_address {base_address} must be a multiple of the element size "
                         f"({fmt.word.itemsize} bytes for {fmt.name})")
    amap = address_map or DEFAULT_ADDRESS_MAP
    if backend == "auto":
        backend = "cuda" if device == "cuda" else ("reference" if _numba_disabled() else "cpu")
    if (backend == "cuda") != (device == "cuda"):
        raise ValueError(f"backend {backend!r} cannot inject into a tensor on {device}")
    nbytes = int(words.numel()) if device == "cuda" else int(words.nbytes)

    from eden.engine.plan import compile_plan

    weak_lines = None  # the weak-line maps: the oracle's, or the equal compiled ones
    if backend == "cpu":
        from eden.engine.backends import cpu as weak_lines
    plan = compile_plan(em, word_bits=fmt.word.itemsize * 8, nbytes=nbytes, seed=seed, access=access,
                        base_address=base_address, address_map=amap, weak_lines=weak_lines)
    plausible = None
    if corr.mode != "none":
        plausible = corr.plausible if corr.plausible is not None else finite_range(tensor)
    if device == "cuda":
        from eden.engine.backends import cuda as gpu

        words, idx, mask, off, cnt = gpu.inject(plan, words, fmt)
    elif backend == "reference":
        from eden.engine.backends import reference

        idx, mask = reference.sample_flips(plan, words)
        words[idx] ^= mask
        off, cnt = np.zeros(1, np.int64), np.array([len(idx)], np.int64)
    else:
        from eden.engine.backends import cpu

        idx, mask, off, cnt = cpu.inject(plan, words)
    n_corrected = delta = 0
    if plausible is not None:
        n_corrected, delta = _correct(words, idx, mask, off, cnt, fmt, corr.mode, plausible, device)
    return FlipLog(tensor, words, idx, mask, off, cnt, fmt=fmt, model=em, seed=seed, access=access,
                   backend=backend, n_corrected=n_corrected, error_bits_delta=delta)


def _numba_disabled() -> bool:
    return os.environ.get("EDEN_DISABLE_NUMBA", "") not in ("", "0")


def finite_range(tensor) -> tuple[float, float]:
    """(min, max) over the finite values of a float tensor or array ((0.0, 0.0) when none is).

    One read pass when every value is finite. CPU float32/float64 data is
    reduced by NumPy in the calling thread: torch's reductions hand each call
    to its intra-op thread pool, which costs more than the pass itself for the
    many mid-sized feature maps of an emulated forward on a busy machine.
    """
    import torch

    t = tensor if isinstance(tensor, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(tensor))
    t = t.detach()
    if t.numel() == 0:
        return 0.0, 0.0
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and t.is_contiguous():
        a = t.reshape(-1).numpy()
        lo, hi = float(a.min()), float(a.max())
    else:
        lo_t, hi_t = torch.aminmax(t)
        lo, hi = float(lo_t), float(hi_t)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    finite = t[torch.isfinite(t)]
    if not finite.numel():
        return 0.0, 0.0
    lo_t, hi_t = torch.aminmax(finite)
    return float(lo_t), float(hi_t)


def _float_view(bits: np.ndarray, fmt: StorageFormat) -> np.ndarray:
    if fmt.name == "fp32":
        return bits.view(np.float32)
    if fmt.name == "fp16":
        return bits.view(np.float16).astype(np.float32)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)  # bf16


def _float_bits(values: np.ndarray, fmt: StorageFormat) -> np.ndarray:
    if fmt.name == "fp32":
        return values.astype(np.float32).view(np.uint32)
    if fmt.name == "fp16":
        return values.astype(np.float16).view(np.uint16)
    # bf16: round-to-nearest-even from float32 (bound values are representable after rounding)
    u = values.astype(np.float32).view(np.uint32)
    u = u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))
    return (u >> np.uint32(16)).astype(np.uint16)


def popcount(words: np.ndarray) -> int:
    """Set bits in an array of unsigned words."""
    if len(words) == 0:
        return 0
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return int(np.bitwise_count(words).sum(dtype=np.int64))
    return int(np.unpackbits(np.ascontiguousarray(words).view(np.uint8)).sum())


_FORMAT_MAX = {"fp32": float(np.finfo(np.float32).max), "fp16": 65504.0,
               "bf16": float(np.array([0x7F7F0000], np.uint32).view(np.float32)[0])}


def _correct(words, idx, mask, off, cnt, fmt, mode, plausible, device) -> tuple[int, int]:
    """Replace implausible corrupted values among the touched words; keep the log exact.

    ``plausible`` is the (low, high) range. The log's mask of a corrected word
    becomes original ^ corrected, so undo() still restores the original bits.

    Returns:
        (values corrected, bits the errors flipped minus bits that differ now).
    """
    # Compared in float32 (the values are fp32/fp16/bf16); an end beyond the format's largest
    # finite value is pulled in to it (a clamp must not write an infinity).
    fmax = _FORMAT_MAX[fmt.name]
    low, high = (np.float32(min(max(float(v), -fmax), fmax)) for v in plausible)
    if device == "cuda":
        from eden.engine.backends import cuda as gpu

        return gpu.correct(words, idx, mask, off, cnt, fmt, mode, low, high)
    sel = np.concatenate([np.arange(o, o + c) for o, c in zip(off, cnt)]) if len(cnt) else np.zeros(0, int)
    if len(sel) == 0:
        return 0, 0
    widx = idx[sel].astype(np.int64)
    cur = words[widx]
    vals = _float_view(cur, fmt)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(vals) | (vals < low) | (vals > high)
    if not bad.any():
        return 0, 0
    if mode == "zero":
        new_vals = np.zeros(int(bad.sum()), np.float32)
    else:  # clamp: +inf and values above the range -> high, -inf and below -> low, NaN -> 0 clamped
        v = vals[bad]
        nan_to = min(max(np.float32(0), low), high)
        new_vals = np.where(np.isnan(v), nan_to, np.where(v > high, high, low)).astype(np.float32)
    new_bits = _float_bits(new_vals, fmt).astype(words.dtype)
    old_bits = cur[bad]
    words[widx[bad]] = new_bits
    before = popcount(mask[sel[bad]])
    mask[sel[bad]] ^= (old_bits ^ new_bits)
    return int(bad.sum()), before - popcount(mask[sel[bad]])
