"""What a storage format is: the word the engine flips, its bit layout, coding and plausible values.

A :class:`StorageFormat` describes how one kind of value sits in DRAM:

* ``word``: the unsigned word the injection engine flips (``uint8``/``uint16``/``uint32``...);
  ``values_per_word`` values share one word (packed int4: two per byte, low nibble first);
* the bit layout: sign/exponent/mantissa widths for floats (:class:`BitLayout`), code width and
  signedness for integers; they add up to the word width;
* coding: ``encode``/``decode`` between values and words (NumPy), plus quantize/dequantize
  primitives for integer codes (:class:`IntFormat`);
* plausible values (floats): the float32 view used by implausible-value correction, the largest
  finite value, and the rule "NaN, infinite or outside [low, high] is implausible";
* quantization granularity (:class:`Granularity`, torchao's ``block_size``) and the metadata a
  quantized tensor carries (:class:`MetadataField`: scales, zero points, shared exponents) with
  where it lives (:class:`MetadataLocation`): per-tensor and per-channel scales stay in reliable
  memory, outside the injected words; the group-wise scales of ``int4:group=G`` and the shared
  scales of the MX formats are stored in DRAM with the values (:mod:`eden.formats.blocks`).

The float views and ``from_float32`` use array methods only (``view``, ``astype``, shifts), so
they take NumPy and CuPy arrays alike: the CPU and CUDA correction paths share them.
One format per file in this package; ``eden/formats/__init__.py`` registers the built-in ones.
"""

from __future__ import annotations

import abc
import dataclasses
import math

import numpy as np

from eden.core.validate import Mode, check_int
from eden.errors import EdenConfigError


class Granularity(Mode):
    """How many values share one set of quantization metadata (torchao's ``block_size``)."""

    TENSOR = "tensor"    # one scale for the whole tensor
    CHANNEL = "channel"  # one per index along the channel axis
    GROUP = "group"      # one per ``group_size`` consecutive values along the last axis
    BLOCK = "block"      # one per ``group_size`` consecutive values of the flattened tensor

    def block_size(self, shape: tuple[int, ...], *, channel_axis: int = 0,
                   group_size: int | None = None) -> tuple[int, ...]:
        """The block of values that share metadata, as torchao's ``block_size`` tuple.

        Args:
            shape: the tensor's shape.
            channel_axis: the channel axis (``CHANNEL``).
            group_size: values per group/block (``GROUP``, ``BLOCK``); must divide the last
                axis (``GROUP``) or the element count (``BLOCK``).

        Returns:
            one entry per axis; ``BLOCK`` returns ``(group_size,)`` over the flattened tensor.

        Example:
            >>> Granularity.CHANNEL.block_size((64, 3, 3, 3))
            (1, 3, 3, 3)
        """
        shape = tuple(int(s) for s in shape)
        if self is Granularity.TENSOR:
            return shape
        if self is Granularity.CHANNEL:
            if not -len(shape) <= channel_axis < len(shape):
                raise EdenConfigError(f"channel_axis {channel_axis} is out of range for shape {shape}")
            axis = channel_axis % len(shape)
            return tuple(1 if d == axis else s for d, s in enumerate(shape))
        g = check_int("group_size", group_size, lo=1)
        assert g is not None  # not optional: check_int returned an int
        n = shape[-1] if self is Granularity.GROUP and shape else math.prod(shape)
        if n % g:
            where = "the last axis" if self is Granularity.GROUP else "the element count"
            raise EdenConfigError(f"group_size {g} must divide {where} ({n}) of shape {shape}")
        if self is Granularity.GROUP:
            return (*(1 for _ in shape[:-1]), g)
        return (g,)


class MetadataLocation(Mode):
    """Where a format's metadata is stored: reliable memory (never injected) or the DRAM it describes."""

    RELIABLE = "reliable"
    DRAM = "dram"


@dataclasses.dataclass(frozen=True)
class MetadataField:
    """One piece of metadata that decoding needs besides the words.

    Attributes:
        name: ``scale``, ``zero_point``, ``shared_exponent``...
        dtype: its NumPy dtype name as stored (``float32``).
        per: which values share one entry (a :class:`Granularity`; the format's granularity
            option when ``None``).
        location: where it lives: reliable memory, or the DRAM of the values (group-wise and MX
            formats), where it takes errors too.
    """

    name: str
    dtype: str
    per: Granularity | None = None
    location: MetadataLocation = MetadataLocation.RELIABLE


@dataclasses.dataclass(frozen=True)
class BitLayout:
    """Widths of a float's fields, most significant first: sign, exponent, mantissa (bits)."""

    sign: int
    exponent: int
    mantissa: int

    @property
    def bits(self) -> int:
        return self.sign + self.exponent + self.mantissa


@dataclasses.dataclass(frozen=True)
class StorageFormat(abc.ABC):
    """A storage format: the injected word and how values map onto it.

    Attributes:
        name: registry name (``fp32``, ``int4``...).
        word: the unsigned NumPy dtype the engine flips.
        bits: stored bits per value (4 for packed int4).
        numpy_dtypes, torch_dtypes: dtype names whose arrays/tensors are stored in this format
            (``"float32"``; torch names without ``torch.``); empty when the format is only reached
            through another's words (packed int4 is injected as ``uint8``).
        numeric: usable as a DNN numeric format (``eden.nn.quant.NumericFormat``).
        description: one line for listings.
        granularities: granularities its quantization supports (none for floats stored as
            themselves).
        metadata: what decoding needs besides the words, with where it lives.
    """

    name: str
    word: np.dtype
    bits: int
    numpy_dtypes: tuple[str, ...] = ()
    torch_dtypes: tuple[str, ...] = ()
    numeric: bool = False
    description: str = ""
    granularities: tuple[Granularity, ...] = ()
    metadata: tuple[MetadataField, ...] = ()

    is_float = False  # implausible-value correction applies (FloatFormat)

    def __post_init__(self):
        object.__setattr__(self, "word", np.dtype(self.word))
        if self.word.kind != "u":
            raise EdenConfigError(f"format {self.name!r}: word must be an unsigned integer dtype, got {self.word}")
        if self.word_bits % self.bits:
            raise EdenConfigError(f"format {self.name!r}: {self.bits}-bit values do not tile "
                                  f"{self.word_bits}-bit words")

    @property
    def word_bits(self) -> int:
        return self.word.itemsize * 8

    @property
    def values_per_word(self) -> int:
        return self.word_bits // self.bits

    @property
    @abc.abstractmethod
    def layout_bits(self) -> int:
        """Bits the value layout declares per word (the registry checks it equals ``word_bits``)."""

    def storage_bytes(self, numel: int) -> int:
        """Bytes ``numel`` values occupy in DRAM (metadata excluded)."""
        return (numel * self.bits + 7) // 8

    @abc.abstractmethod
    def encode(self, values: np.ndarray) -> np.ndarray:
        """Values -> words (flat, ``word`` dtype)."""

    @abc.abstractmethod
    def decode(self, words: np.ndarray, count: int | None = None) -> np.ndarray:
        """Words -> the first ``count`` values (all when None)."""


@dataclasses.dataclass(frozen=True)
class FloatFormat(StorageFormat):
    """A float type stored as itself; implausible-value correction applies.

    Attributes:
        layout: sign/exponent/mantissa widths.
        view: NumPy dtype the words are reinterpreted as (``float32``, ``float16``); ``None``
            for bf16, the upper half of a float32 (its words are shifted into place).
    """

    layout: BitLayout = BitLayout(1, 8, 23)
    view: str | None = "float32"

    is_float = True

    @property
    def layout_bits(self) -> int:
        return self.layout.bits

    @property
    def max_finite(self) -> float:
        """Largest finite value: all-ones exponent but one, all-ones mantissa (as float32)."""
        e, m = self.layout.exponent, self.layout.mantissa
        top = (((1 << e) - 2) << m) | ((1 << m) - 1)
        return float(self.to_float32(np.array([top], self.word))[0])

    def to_float32(self, words):
        """Words (NumPy or CuPy) -> their values as float32 (exact for fp32/fp16/bf16)."""
        if self.view is None:  # the upper 16 bits of a float32
            return (words.astype(np.uint32) << np.uint32(32 - self.bits)).view(np.float32)
        return words.view(self.view).astype(np.float32, copy=False)

    def from_float32(self, values):
        """float32 values (NumPy or CuPy) -> words, rounded to nearest even."""
        v = values.astype(np.float32)
        if self.view is None:  # drop the low half with round-to-nearest-even
            shift = np.uint32(32 - self.bits)
            u = v.view(np.uint32)
            u = u + np.uint32((1 << (int(shift) - 1)) - 1) + ((u >> shift) & np.uint32(1))
            return (u >> shift).astype(self.word)
        return v.astype(self.view).view(self.word)

    def encode(self, values: np.ndarray) -> np.ndarray:
        return self.from_float32(np.asarray(values, np.float32).reshape(-1))

    def decode(self, words: np.ndarray, count: int | None = None) -> np.ndarray:
        return self.to_float32(np.asarray(words, self.word).reshape(-1))[:count]

    def plausible_bounds(self, low: float, high: float) -> tuple[np.float32, np.float32]:
        """(low, high) as float32, each pulled in to the finite range (a clamp never writes an infinity)."""
        fmax = self.max_finite
        return tuple(np.float32(min(max(float(v), -fmax), fmax)) for v in (low, high))

    @staticmethod
    def implausible(xp, values, low, high):
        """NaN, infinite, or outside ``[low, high]``: boolean array (``xp``: NumPy or CuPy)."""
        with np.errstate(invalid="ignore"):
            return ~xp.isfinite(values) | (values < low) | (values > high)


class QuantScheme(Mode):
    """How float values map to integer codes."""

    SYMMETRIC = "symmetric"  # q = round(x / s), codes in [-(2^(b-1) - 1), 2^(b-1) - 1]
    AFFINE = "affine"        # q = round(x / s) + z, codes in [-2^(b-1), 2^(b-1) - 1]


_QUANT_METADATA = (MetadataField("scale", "float32"), MetadataField("zero_point", "float32"))
#: Group-wise codes (``eden.formats.group``): an fp16/bf16 scale (and zero point) per group, in DRAM.
GROUP_METADATA = (MetadataField("group_scale", "float16|bfloat16", Granularity.GROUP, MetadataLocation.DRAM),
                  MetadataField("group_zero_point", "float16|bfloat16", Granularity.GROUP, MetadataLocation.DRAM))
GROUPED = (Granularity.TENSOR, Granularity.CHANNEL, Granularity.GROUP)


@dataclasses.dataclass(frozen=True)
class IntFormat(StorageFormat):
    """Integer codes, ``values_per_word`` per word, low bits first (two's complement when signed).

    Quantized DNN data carry a scale (and a zero point for affine codes) per tensor or per
    channel; both stay in reliable memory (:data:`metadata`).
    """

    granularities: tuple[Granularity, ...] = (Granularity.TENSOR, Granularity.CHANNEL)
    metadata: tuple[MetadataField, ...] = _QUANT_METADATA
    signed: bool = True

    @property
    def layout_bits(self) -> int:
        return self.bits * self.values_per_word

    @property
    def code_dtype(self) -> str:
        """Dtype name of unpacked codes: the narrowest integer type that holds them (int4 -> int8)."""
        return _code_dtype(self.bits, self.signed)

    def code_range(self, scheme: QuantScheme | str = QuantScheme.SYMMETRIC) -> tuple[int, int]:
        """(lowest, highest) code: symmetric codes leave out the most negative one."""
        if not self.signed:
            return 0, (1 << self.bits) - 1
        qmax = (1 << (self.bits - 1)) - 1
        return (-qmax if QuantScheme(scheme) is QuantScheme.SYMMETRIC else -qmax - 1), qmax

    def quantize(self, x: np.ndarray, scale, zero_point=None) -> np.ndarray:
        """Codes ``clamp(round(x / scale) (+ zero_point))`` (symmetric without a zero point), int64."""
        q = np.round(np.asarray(x, np.float32) / np.asarray(scale, np.float32))
        scheme = QuantScheme.SYMMETRIC if zero_point is None else QuantScheme.AFFINE
        if zero_point is not None:
            q = q + np.asarray(zero_point, np.float32)
        lo, hi = self.code_range(scheme)
        return np.clip(q, lo, hi).astype(np.int64)

    def dequantize(self, codes: np.ndarray, scale, zero_point=None) -> np.ndarray:
        """Values ``(codes (- zero_point)) * scale`` as float32."""
        q = np.asarray(codes, np.float32)
        if zero_point is not None:
            q = q - np.asarray(zero_point, np.float32)
        return (q * np.asarray(scale, np.float32)).astype(np.float32)

    def pack(self, codes, *, check: bool = True):
        """Codes (NumPy array or torch tensor of integers) -> words of the same library.

        ``values_per_word`` codes share a word, the first in the lowest bits; the count must
        be a multiple of ``values_per_word``. ``check`` verifies the codes fit the width.
        """
        flat = codes.reshape(-1)
        n = int(flat.shape[0])
        k = self.values_per_word
        if n % k:
            raise EdenConfigError(f"{self.name}: packing needs a multiple of {k} codes, got {n}")
        if check and n:
            lo, hi = self.code_range(QuantScheme.AFFINE)
            if int(flat.min()) < lo or int(flat.max()) > hi:
                raise EdenConfigError(f"{self.name}: codes must be in [{lo}, {hi}]")
        u = _astype(flat, "int16" if self.bits < 16 else "int64") & ((1 << self.bits) - 1)
        if k == 1:
            return _astype(u, self.word.name)
        out = u[0::k]
        for j in range(1, k):  # code j of each word goes to bits [j * bits, (j + 1) * bits)
            out = out | (u[j::k] << (j * self.bits))
        return _astype(out, self.word.name)

    def unpack(self, words, count: int | None = None):
        """Words (NumPy array or torch tensor) -> the first ``count`` codes, sign-extended when signed."""
        w = words.reshape(-1)
        k = self.values_per_word
        wide = "int16" if self.word_bits < 16 else "int64"
        if k == 1:
            parts = _astype(w, wide)
        else:
            w = _astype(w, wide)
            nib = (1 << self.bits) - 1
            cols = [(w >> (j * self.bits)) & nib for j in range(k)]
            parts = _stack_columns(cols)
        if self.signed:  # two's complement of a `bits`-wide field: (x ^ sign) - sign
            sign = 1 << (self.bits - 1)
            parts = (parts ^ sign) - sign
        return _astype(parts[:count], self.code_dtype)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Integer codes -> words (see :meth:`pack`)."""
        return self.pack(np.asarray(values))

    def decode(self, words: np.ndarray, count: int | None = None) -> np.ndarray:
        return self.unpack(np.asarray(words, self.word), count)


def _code_dtype(bits: int, signed: bool) -> str:
    size = 8 if bits <= 8 else 16 if bits <= 16 else 32 if bits <= 32 else 64
    return f"{'' if signed else 'u'}int{size}"


def _astype(a, dtype: str):
    """``a`` converted to the dtype named ``dtype``, NumPy array or torch tensor alike
    (integer conversions wrap modulo 2^bits in both)."""
    if isinstance(a, np.ndarray):
        return a.astype(dtype)
    import torch

    return a.to(getattr(torch, dtype))


def _stack_columns(cols):
    """Interleave equal-length columns: out[i * k + j] = cols[j][i] (NumPy or torch)."""
    if isinstance(cols[0], np.ndarray):
        return np.stack(cols, axis=1).reshape(-1)
    import torch

    return torch.stack(cols, dim=1).reshape(-1)
