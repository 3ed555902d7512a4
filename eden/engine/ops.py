"""The injection op: ``inject_`` checks its arguments, picks a backend and returns a ``FlipLog``.

``inject_(tensor, model, seed)`` flips bits of a contiguous tensor in place as
the error model says, placed in DRAM by an address map, and returns a
``FlipLog`` that restores the tensor bit-exactly with ``undo()``. The work is
done by the engine ops of the chosen backend (:mod:`eden.engine.contract`);
this module never names a backend.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import cast

import numpy as np

from eden.core.validate import check_int, check_number, unknown_name
from eden.dram.address import DEFAULT_ADDRESS_MAP, AddressMap

# Importing the backends registers them (a new backend: one module in backends/ + its name here).
from eden.engine.backends import cpu, cuda, reference  # noqa: F401
from eden.engine.contract import AUTO, Op, call, kernel, select
from eden.engine.correct import CorrectionMode, popcount
from eden.engine.plan import cached_plan
from eden.engine.twolevel import thin_log
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError, EdenTypeError
from eden.formats import StorageFormat, format_of
from eden.formats.base import FloatFormat

#: The correction modes' spellings (``CorrectionMode`` values).
CORRECTIONS = tuple(m.value for m in CorrectionMode)


@dataclasses.dataclass(frozen=True)
class Correction:
    """Implausible-value correction applied to corrupted float values (EDEN).

    A corrupted value is implausible when it is NaN, infinite or outside the
    data type's plausible range ``[low, high]``. ``zero`` sets it to 0; ``clamp``
    sets it to the nearer end of the range (NaN -> 0 clamped into the range).

    ``mode``: a :class:`CorrectionMode` or its string (``"none"``, ``"zero"``, ``"clamp"``).
    ``plausible``: the range, as ``(low, high)`` or one number ``b`` meaning
    ``(-b, b)``; default: the clean tensor's own range, min and max over its
    finite values (computed before injection). So a value of a non-negative data
    type (a ReLU output, an image) whose sign bit flipped is implausible.
    """

    mode: CorrectionMode | str = CorrectionMode.NONE
    plausible: float | tuple[float, float] | None = None

    def __post_init__(self):
        try:
            object.__setattr__(self, "mode", CorrectionMode(self.mode))
        except (ValueError, TypeError):
            raise unknown_name("correction", self.mode, CORRECTIONS) from None
        r = self.plausible
        if r is None:
            return
        if isinstance(r, (int, float, np.floating, np.integer)) and not isinstance(r, bool):
            b = check_number("correction bound", r, lo=0.0)
            r = (-b, b)
        elif isinstance(r, (tuple, list)) and len(r) == 2:
            lo, hi = (check_number(f"plausible {end}", v) for end, v in zip(("low", "high"), r))
            if lo > hi:
                raise EdenConfigError(f"plausible range must have low <= high, got {self.plausible!r}")
            r = (lo, hi)
        else:
            raise EdenTypeError(f"plausible must be None, a bound b >= 0 or a (low, high) pair, got {r!r}")
        object.__setattr__(self, "plausible", r)

    @classmethod
    def coerce(cls, value) -> Correction:
        if value is None:
            return cls(CorrectionMode.NONE)
        if isinstance(value, Correction):
            return value
        if isinstance(value, str):
            return cls(value)
        raise EdenTypeError(f"correction must be None, a mode string or a Correction, got {value!r}")


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

    __slots__ = ("_target", "_words", "_idx", "_mask", "_off", "_cnt", "format", "model", "seed", "access",
                 "backend", "n_corrected", "total_bits", "_undone", "_n_bits", "_error_bits_delta", "_xor", "ecc")

    def __init__(self, target, words, idx, mask, off, cnt, *, fmt: StorageFormat, model: ErrorModel,
                 seed: int, access: int, backend: str, n_corrected: int = 0,
                 error_bits_delta: int = 0, xor=None, ecc=None):
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
        self._n_bits: int | None = None
        self._error_bits_delta = int(error_bits_delta)
        # the backend's xor kernel itself, for a log whose segments its maker vouches for
        # (``Injector``); otherwise ``undo`` goes through the op's argument checks
        self._xor = xor
        self.ecc = ecc  # EccStats of the ECC step (eden.engine.ecc.apply), None without ECC

    # ------------------------------------------------------------------ queries
    def _flat(self):
        """(idx, mask) of all entries as NumPy arrays, sorted by word index."""
        return call(Op.READ_LOG, self.backend, self._idx, self._mask, self._off, self._cnt)

    @property
    def n_words(self) -> int:
        return int(np.asarray(self._cnt).sum())

    @property
    def n_bits(self) -> int:
        if self._n_bits is None:
            if isinstance(self._mask, np.ndarray):  # host log: count the segments where they are
                m, off, cnt = self._mask, self._off, self._cnt
                if len(cnt) == 1:
                    self._n_bits = popcount(m[off[0]:off[0] + cnt[0]])
                else:
                    off, cnt = np.asarray(off), np.asarray(cnt)
                    self._n_bits = sum(popcount(m[o:o + c]) for o, c in zip(off.tolist(), cnt.tolist()))
            else:
                self._n_bits = popcount(self._flat()[1])
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
        if self._xor is not None:
            self._xor(self._words, self._idx, self._mask, self._off, self._cnt)
        else:
            call(Op.XOR_LOG, self.backend, self._words, self._idx, self._mask, self._off, self._cnt)
        self._undone = True

    @property
    def undone(self) -> bool:
        return self._undone

    def __repr__(self) -> str:
        return (f"FlipLog({self.n_bits} bits in {self.n_words} {self.format.name} words, "
                f"BER {self.ber:.3g}, model {self.model}, seed {self.seed}, access {self.access}, "
                f"{self.backend})")


def _storage_view(tensor):
    """(storage, format, device, nbytes) for a contiguous torch tensor or NumPy array.

    ``storage`` is what the backends' ``inject`` takes: the NumPy words of a CPU tensor, the
    flat ``uint8`` view of a CUDA tensor.
    """
    if isinstance(tensor, np.ndarray):
        fmt = format_of(tensor.dtype)
        if not tensor.flags.c_contiguous:
            raise EdenConfigError("eden.inject_ needs a C-contiguous array; pass np.ascontiguousarray(x) "
                                  "and copy the result back")
        if not tensor.flags.writeable:
            raise EdenConfigError("eden.inject_ needs a writeable array")
        words = tensor.reshape(-1).view(fmt.word)
        return words, fmt, "cpu", int(words.nbytes)
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(tensor, torch.Tensor):
        fmt = format_of(tensor.dtype)
        if not tensor.is_contiguous():
            raise EdenConfigError("eden.inject_ needs a contiguous tensor; call .contiguous() first "
                                  "(in-place injection into a strided view is not supported)")
        if tensor.requires_grad and tensor.is_leaf and torch.is_grad_enabled():
            raise EdenConfigError("eden.inject_ on a leaf tensor that requires grad: wrap the call in "
                                  "torch.no_grad() (it mutates storage in place)")
        flat = tensor.detach().reshape(-1).view(torch.uint8)
        if tensor.device.type == "cpu":
            return flat.numpy().view(fmt.word), fmt, "cpu", int(flat.numel())
        return flat, fmt, tensor.device.type, int(flat.numel())
    raise EdenTypeError(f"eden.inject_ takes a torch.Tensor or numpy.ndarray, got {type(tensor).__name__}")


def inject_(tensor, model, seed: int = 0, *, access: int = 0, base_address: int = 0,
            address_map: AddressMap | None = None, correction=None, backend: str = AUTO,
            ecc=None, ecc_policy: str = "leave") -> FlipLog:
    """Flip bits of ``tensor`` in place as DRAM with ``model`` would; return the undo log.

    Args:
        tensor: contiguous torch tensor (CPU or CUDA) or NumPy array of a registered
            storage format's dtype: float32, float16, bfloat16, int32, int16, int8 or
            uint8 (packed int4).
        model: an ErrorModel, a spec string (``"em0:p=1e-4"``) or an ``.h5`` path.
        seed: device/draw seed. Same seed, model, placement and access -> same bits
            on every backend.
        access: access index; with ``access`` persistence each access redraws errors (with
            ``two_level``, which of the fixed weak cells fail).
        base_address: byte address of the tensor in the DRAM partition (must be a
            multiple of the element size).
        address_map: DRAM organization and mapping; default: 16 banks x 64Ki rows x 8 KiB.
        correction: None/"none", "zero", "clamp" (or a CorrectionMode) or a Correction
            (float formats only).
        backend: "auto" (the best usable backend for the tensor's device), or a registered
            backend: "cpu" (numba), "reference" (NumPy oracle), "cuda" (CuPy).
        ecc: None/"none" or a registered ECC code (``"secded72"``, ``"ondie136"``): the raw
            errors are drawn over data and check bits and decoded per codeword
            (:mod:`eden.engine.ecc.apply`) before correction; ``log.ecc`` holds the counts.
        ecc_policy: what a detected uncorrectable codeword's data become: ``"leave"`` or ``"zero"``.

    Returns:
        FlipLog with ``n_bits``, ``positions()`` and ``undo()``.

    Raises:
        EdenTypeError: unsupported tensor type or dtype, or a bad argument type.
        EdenConfigError: non-contiguous tensor, bad seed/access/address, invalid model,
            unknown backend or correction, a tensor that does not fit the DRAM partition.
        BackendUnavailableError: the backend cannot run here (no CuPy or GPU for a CUDA
            tensor). In every case the tensor is untouched.

    Example:
        >>> x = torch.randn(1000)
        >>> log = inject_(x, "em0:p=1e-3", seed=1)
        >>> log.undo()
    """
    em = ErrorModel.coerce(model)
    seed = check_int("seed", seed, lo=0)
    access = check_int("access", access, lo=0)
    base_address = check_int("base_address", base_address, lo=0)
    corr = Correction.coerce(correction)
    words, fmt, device, nbytes = _storage_view(tensor)
    inj = Injector(em, fmt, nbytes, seed=seed, base_address=base_address, address_map=address_map,
                   correction=corr.mode, backend=backend, device=device, ecc=ecc, ecc_policy=ecc_policy)
    plausible: tuple[float, float] | None = None
    if corr.mode is not CorrectionMode.NONE:  # Correction made ``plausible`` a (low, high) pair
        plausible = cast(tuple, corr.plausible) if corr.plausible is not None else finite_range(tensor)
    return inj(tensor, words, access, plausible)


class Injector:
    """``inject_`` prepared for one placement: checked, its backend chosen and its plan compiled once.

    A model that injects into the same tensors again and again (emulation: every weight and
    IFM on every forward pass) builds one per data type and placement; each call then costs
    the draws and the log, not the argument checks, the plan or the backend choice. Calls
    give the same bits as ``inject_`` with the same arguments.

    Args:
        model: the error model.
        fmt: the storage format of the words.
        nbytes: bytes of the tensor.
        seed, base_address, address_map, backend: as for :func:`inject_`.
        correction: the :class:`CorrectionMode` (the range is given per call).
        device: the tensors' device type (``"cpu"``, ``"cuda"``).

    Raises:
        EdenConfigError, BackendUnavailableError: as :func:`inject_`.
    """

    __slots__ = ("model", "format", "nbytes", "seed", "base_address", "correction", "backend", "device",
                 "compiled", "_inject", "_correct", "_fmax", "_xor", "_word", "_direct", "ecc", "_ecc_args",
                 "thin")

    def __init__(self, model: ErrorModel, fmt: StorageFormat, nbytes: int, *, seed: int, base_address: int,
                 address_map: AddressMap | None = None, correction: CorrectionMode | str = CorrectionMode.NONE,
                 backend: str = AUTO, device: str = "cpu", ecc=None, ecc_policy: str = "leave"):
        mode = CorrectionMode(correction)
        if mode is not CorrectionMode.NONE and not fmt.is_float:
            raise EdenConfigError(f"correction '{mode}' applies to float formats, not {fmt.name}")
        if base_address % fmt.word.itemsize:
            raise EdenConfigError(f"base_address {base_address} must be a multiple of the element size "
                                  f"({fmt.word.itemsize} bytes for {fmt.name})")
        be = select(backend, device)
        self.model, self.format, self.nbytes, self.seed = model, fmt, nbytes, seed
        self.base_address, self.correction, self.backend, self.device = base_address, mode, be.name, device
        self.compiled = cached_plan(model, word_bits=fmt.word_bits, nbytes=nbytes, seed=seed,
                                    base_address=base_address, address_map=address_map or DEFAULT_ADDRESS_MAP,
                                    weak_lines=be.weak_lines)
        self._inject = kernel(Op.INJECT, be.name)
        self._xor = kernel(Op.XOR_LOG, be.name)
        self._word = fmt.word
        self._direct = device == "cpu"
        self._correct = kernel(Op.CORRECT, be.name) if mode is not CorrectionMode.NONE else None
        # (float formats only: checked above)
        self._fmax = cast(FloatFormat, fmt).max_finite if mode is not CorrectionMode.NONE else 0.0
        self.ecc, self._ecc_args = ecc_step(ecc, ecc_policy, model, fmt, nbytes, seed, base_address,
                                            address_map or DEFAULT_ADDRESS_MAP)
        # two_level persistence: the kernel draws the weak map; which weak cells fail on an access
        # is decided on the log (eden.engine.twolevel), before ECC and correction
        self.thin = None if model.q is None else functools.partial(
            thin_log, backend=be.name, itemsize=fmt.word.itemsize, base_address=base_address, seed=seed,
            q=model.q)

    def words(self, tensor):
        """The storage view ``__call__`` takes, of a contiguous torch tensor of this format,
        ``nbytes`` long, on this device (the caller made sure of all three)."""
        if self._direct and not tensor.requires_grad:
            try:  # the same view in fewer steps, for the dtypes NumPy has
                return tensor.numpy().reshape(-1).view(self._word)
            except TypeError:  # bfloat16, float8: NumPy has no such dtype
                self._direct = False
        import torch

        flat = tensor.detach().reshape(-1).view(torch.uint8)
        return flat.numpy().view(self._word) if self.device == "cpu" else flat

    def __call__(self, target, words, access: int, plausible: tuple[float, float] | None = None) -> FlipLog:
        """Inject into ``words`` (the backend's storage view of ``target``, ``nbytes`` long) for
        one access; ``plausible``: the correction's (low, high) range (needed when correcting)."""
        words, idx, mask, off, cnt = self._inject(self.compiled.at(access), words, self.format)
        return self.log(target, words, idx, mask, off, cnt, access, plausible)

    def log(self, target, words, idx, mask, off, cnt, access: int,
            plausible: tuple[float, float] | None = None) -> FlipLog:
        """The :class:`FlipLog` of entries this injector's kernel wrote into ``words`` for
        ``access``, after the ECC step and the correction (what ``__call__`` returns; also for
        logs drawn by several injectors in one call, ``eden.engine.group``)."""
        fmt = self.format
        ecc_stats = None
        if self.thin is not None:  # two_level: the weak cells that fail on this access, O(weak-map flips)
            idx, mask, off, cnt = self.thin(words, idx, mask, off, cnt, access=access)
        if self.ecc is not None:  # decode per codeword, O(errors), on the host from the log
            idx, mask, off, cnt, ecc_stats = self.ecc(words, idx, mask, off, cnt, backend=self.backend,
                                                      access=access, **self._ecc_args)
        n_corrected = delta = 0
        if self._correct is not None:
            if plausible is None:
                raise ValueError("internal error: a correcting Injector needs the plausible range")
            # Compared in float32 (fp32/fp16/bf16 values); an end beyond the format's largest
            # finite value is pulled in to it (a clamp must not write an infinity):
            # ``fmt.plausible_bounds`` with the format's largest value computed once.
            fmax = self._fmax
            low, high = (np.float32(min(max(float(v), -fmax), fmax)) for v in plausible)
            if not low <= high:
                raise ValueError(f"internal error: plausible range ({low}, {high}) is empty")
            n_corrected, delta = self._correct(words, idx, mask, off, cnt, fmt, self.correction, low, high)
        return FlipLog(target, words, idx, mask, off, cnt, fmt=fmt, model=self.model, seed=self.seed,
                       access=access, backend=self.backend, n_corrected=n_corrected, error_bits_delta=delta,
                       xor=self._xor, ecc=ecc_stats)


def ecc_step(ecc, policy, model, fmt, nbytes, seed, base_address, address_map):
    """(the ECC step, its fixed arguments) of an Injector; (None, {}) without ECC."""
    from eden.engine.ecc import DuePolicy, get_code

    code = get_code(ecc)
    if code is None:
        return None, {}
    from eden.engine.ecc.apply import apply_ecc

    return functools.partial(apply_ecc, code, DuePolicy.coerce(policy, "ECC DUE policy")), dict(
        itemsize=fmt.word.itemsize, model=model, seed=seed, base_address=base_address, nbytes=nbytes,
        address_map=address_map)


#: Per float dtype name: (signed int dtype of its words, key of +infinity) for ``finite_range``.
_KEYED = {"float64": ("int64", 0x7FF0000000000000), "float32": ("int32", 0x7F800000),
          "float16": ("int16", 0x7C00), "bfloat16": ("int16", 0x7F80)}


#: ``finite_range`` reduces on numba's threads from this many values (when a core is idle) and
#: from the second size on whatever the load (a feature map of a batch of 32 images is 10^7+).
_MINMAX_PARALLEL_MIN = 1 << 20
_MINMAX_PARALLEL_ALWAYS = 1 << 24


def finite_range(tensor) -> tuple[float, float]:
    """(min, max) over the finite values of a float tensor or array ((0.0, 0.0) when none is).

    One read pass when every value is finite. Contiguous CPU fp64/fp32/fp16/bf16 data is
    reduced in the calling thread by one compiled pass over the words' order keys
    (``_cpu_kernels.minmax_keys``: half the time of NumPy's separate min and max passes), on
    numba's threads only for large tensors (``cpu._parallel``): torch's reductions hand each
    call to its intra-op thread pool, which costs more than the pass itself for the many
    mid-sized feature maps of an emulated forward on a busy machine.
    """
    import torch

    t = tensor if isinstance(tensor, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(tensor))
    t = t.detach()
    if t.numel() == 0:
        return 0.0, 0.0
    keyed = _KEYED.get(str(t.dtype).rpartition(".")[2])
    if keyed is not None and t.device.type == "cpu" and t.is_contiguous():
        from eden.engine.backends import cpu

        int_name, inf_key = keyed
        words = t.reshape(-1).view(getattr(torch, int_name)).numpy()
        maxpos = (1 << (words.itemsize * 8 - 1)) - 1
        k = cpu.kernels()
        if cpu._parallel(words.size, _MINMAX_PARALLEL_MIN, _MINMAX_PARALLEL_ALWAYS):
            lo_k, hi_k = (int(v) for v in k.minmax_keys_parallel(words, maxpos, 4 * cpu._threads()))
        else:
            lo_k, hi_k = (int(v) for v in k.minmax_keys(words, maxpos))
        if lo_k >= -inf_key and hi_k < inf_key:  # all finite
            keys = torch.tensor([lo_k, hi_k], dtype=getattr(torch, int_name))
            back = keys ^ ((keys >> (words.itemsize * 8 - 1)) & maxpos)
            lo, hi = back.view(t.dtype).tolist()
            return float(lo), float(hi)
        lo, hi = -math.inf, math.inf  # (some value is not finite: the pass below)
    else:
        if t.element_size() == 1:  # fp8: torch reduces it only as a wider float (exact)
            t = t.float()
        lo_t, hi_t = torch.aminmax(t)
        lo, hi = float(lo_t), float(hi_t)
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    finite = t[torch.isfinite(t)]
    if not finite.numel():
        return 0.0, 0.0
    lo_t, hi_t = torch.aminmax(finite)
    return float(lo_t), float(hi_t)
