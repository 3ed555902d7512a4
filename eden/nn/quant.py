"""Numeric formats of DNN data: how a float tensor is stored as bits in DRAM.

A :class:`NumericFormat` turns a float tensor into its *storage* (the words in
DRAM, which the injection engine flips) plus exact metadata (scales and zero
points, kept in reliable memory), and back:

* ``fp32``, ``fp16``, ``bf16``: the values as stored in that float type.
* ``int16``, ``int8``, ``int4``: integer codes by symmetric (``q = round(x/s)``,
  codes in ``[-(2^(b-1)-1), 2^(b-1)-1]``) or affine (``q = round(x/s) + z``, codes
  in ``[-2^(b-1), 2^(b-1)-1]``) quantization, per tensor or per channel (axis 0
  of weights, axis 1 of feature maps). int4 packs two codes per byte, low nibble
  first (an odd count is padded with one code 0, which is never read back).

Bits are flipped in the storage; :meth:`NumericFormat.decode` dequantizes the
(possibly corrupted) codes with the clean scales. Names, bit widths, code ranges,
packing and granularities come from the storage-format registry (:mod:`eden.formats`);
this module adds the torch side (per-tensor/per-channel scales computed in torch, on
the tensor's device).

Example:
    >>> fmt = NumericFormat.parse("int8:affine,channel")
    >>> enc = fmt.encode(w, channel_axis=0)
    >>> inject_(enc.storage, "em0:p=1e-4", seed=1)
    >>> w_hat = fmt.decode(enc)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any, cast

import torch

from eden.core.validate import unknown_name
from eden.errors import EdenConfigError, EdenTypeError
from eden.formats import FORMATS, Granularity, IntFormat, QuantScheme, StorageFormat, get_format

SCHEMES = tuple(s.value for s in QuantScheme)


def numeric_formats() -> dict[str, StorageFormat]:
    """The registered formats usable as DNN numeric formats, by name (e.g. for a CLI's choices)."""
    return {name: f for name, f in FORMATS.items() if f.numeric}


def _torch_dtype(fmt: StorageFormat) -> torch.dtype:
    return getattr(torch, fmt.torch_dtypes[0])


class _FloatDtypes(Mapping):
    """Numeric float format name -> the torch dtype its values are stored as (live registry view)."""

    def __getitem__(self, name: str) -> torch.dtype:
        fmt = FORMATS.get(name)
        if fmt is None or not (fmt.numeric and fmt.is_float):
            raise KeyError(name)
        return _torch_dtype(fmt)

    def __iter__(self) -> Iterator[str]:
        return iter([n for n, f in numeric_formats().items() if f.is_float])

    def __len__(self) -> int:
        return sum(1 for _ in self)


FLOAT_FORMATS: Mapping[str, torch.dtype] = _FloatDtypes()
#: Granularities some registered numeric format supports, in :class:`Granularity` order.
GRANULARITIES = tuple(g.value for g in Granularity
                      if any(g in f.granularities for f in numeric_formats().values()))


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A tensor as stored: ``storage`` holds the DRAM words (contiguous).

    Attributes:
        storage: the stored words (float tensor for float formats; int16/int8
            codes, or packed uint8 for int4).
        scale, zero_point: quantization metadata (None for float formats);
            broadcastable to ``shape`` for per-channel quantization.
        shape, dtype: shape and float dtype of the original tensor.
    """

    storage: torch.Tensor
    scale: torch.Tensor | None
    zero_point: torch.Tensor | None
    shape: tuple[int, ...]
    dtype: torch.dtype


@dataclasses.dataclass(frozen=True)
class NumericFormat:
    """How one data type is stored in DRAM.

    Attributes:
        name: a registered numeric format (:func:`numeric_formats`): fp32, fp16, bf16,
            int16, int8, int4.
        scheme: a :class:`~eden.formats.QuantScheme` or its string, symmetric or affine
            (integer formats only).
        granularity: a :class:`~eden.formats.Granularity` or its string, one the format
            supports: tensor or channel (integer formats only).
    """

    name: str = "fp32"
    scheme: QuantScheme = QuantScheme.SYMMETRIC
    granularity: Granularity = Granularity.TENSOR

    def __post_init__(self):
        known = numeric_formats()
        if self.name not in known:
            raise unknown_name("numeric format", self.name, known)
        try:
            object.__setattr__(self, "scheme", QuantScheme(self.scheme))
        except ValueError:
            raise unknown_name("quantization scheme", self.scheme, SCHEMES) from None
        try:
            object.__setattr__(self, "granularity", Granularity(self.granularity))
        except ValueError:
            raise unknown_name("quantization granularity", self.granularity, GRANULARITIES) from None
        if self.is_float:
            if (self.scheme, self.granularity) != (QuantScheme.SYMMETRIC, Granularity.TENSOR):
                raise EdenConfigError(f"{self.name} is a float format: quantization options do not apply")
        elif self.granularity not in self.storage.granularities:
            raise EdenConfigError(f"{self.name} quantizes per "
                                  f"{' or '.join(g.value for g in self.storage.granularities)}, "
                                  f"not per {self.granularity.value}")

    @classmethod
    def parse(cls, spec: str | NumericFormat) -> NumericFormat:
        """``"int8"``, ``"int8:affine"``, ``"int4:symmetric,channel"``, ``"bf16"``."""
        if isinstance(spec, NumericFormat):
            return spec
        if not isinstance(spec, str):
            raise EdenTypeError(f"a numeric format is a string like 'int8:affine,channel', got {spec!r}")
        name, _, opts = spec.strip().partition(":")
        kwargs: dict[str, Any] = {}
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            if opt in SCHEMES:
                kwargs["scheme"] = opt
            elif opt in GRANULARITIES:
                kwargs["granularity"] = opt
            else:
                raise EdenConfigError(f"unknown option {opt!r} in numeric format {spec!r}; options: "
                                      f"{', '.join(SCHEMES + GRANULARITIES)}")
        return cls(name.strip(), **kwargs)

    def __str__(self) -> str:
        if self.is_float:
            return self.name
        return f"{self.name}:{self.scheme},{self.granularity}"

    @property
    def storage(self) -> StorageFormat:
        """The registered storage format (bit layout, packing, plausible values)."""
        return get_format(self.name)

    @property
    def is_float(self) -> bool:
        return self.storage.is_float

    @property
    def bits(self) -> int:
        """Stored bits per value."""
        return self.storage.bits

    def storage_bytes(self, numel: int) -> int:
        """Bytes one tensor of ``numel`` values occupies in DRAM (metadata excluded)."""
        return (numel * self.bits + 7) // 8

    # ------------------------------------------------------------------ coding
    def encode(self, x: torch.Tensor, *, channel_axis: int | None = 0) -> Encoded:
        """Store ``x`` (a float tensor) in this format. ``x`` itself is never modified.

        Args:
            x: float tensor.
            channel_axis: axis of per-channel scales (0 for weights, 1 for
                feature maps); per-tensor when None or ``x`` has fewer dims.
        """
        if not torch.is_floating_point(x):
            raise EdenTypeError(f"numeric formats encode float tensors, got {x.dtype}")
        x = x.detach()
        fmt = self.storage
        if fmt.is_float:
            dt = _torch_dtype(fmt)
            return Encoded(x.to(dt).contiguous().clone() if x.dtype == dt else x.to(dt).contiguous(),
                           None, None, tuple(x.shape), x.dtype)
        fmt = cast(IntFormat, fmt)
        xf = x.float()
        per_channel = (self.granularity is Granularity.CHANNEL and channel_axis is not None
                       and xf.dim() > channel_axis)
        if per_channel:
            dims = [d for d in range(xf.dim()) if d != channel_axis]
            lo = xf.amin(dim=dims, keepdim=True) if dims else xf
            hi = xf.amax(dim=dims, keepdim=True) if dims else xf
        else:
            lo, hi = xf.min().reshape(1), xf.max().reshape(1)
        qmin, qmax = fmt.code_range(self.scheme)
        if self.scheme is QuantScheme.SYMMETRIC:
            scale = torch.maximum(lo.abs(), hi.abs()) / qmax
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero = None
            q = torch.clamp(torch.round(xf / scale), qmin, qmax)
        else:
            lo = torch.minimum(lo, torch.zeros_like(lo))  # 0 must be exact
            hi = torch.maximum(hi, torch.zeros_like(hi))
            scale = (hi - lo) / (qmax - qmin)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
            q = torch.clamp(torch.round(xf / scale) + zero, qmin, qmax)
        codes = q.to(getattr(torch, fmt.code_dtype)).contiguous()
        if fmt.values_per_word > 1:  # packed: pad to whole words with code 0 (never read back)
            flat = codes.reshape(-1)
            pad = -flat.numel() % fmt.values_per_word
            storage = fmt.pack(torch.cat([flat, flat.new_zeros(pad)]) if pad else flat, check=False)
        else:
            storage = codes
        return Encoded(storage, scale, zero, tuple(x.shape), x.dtype)

    def decode(self, enc: Encoded, out: torch.Tensor | None = None) -> torch.Tensor:
        """Values from (possibly corrupted) storage; into ``out`` when given."""
        fmt = self.storage
        if fmt.is_float:
            vals = enc.storage.reshape(enc.shape).to(enc.dtype)
        else:
            fmt = cast(IntFormat, fmt)
            codes = (fmt.unpack(enc.storage, math.prod(map(int, enc.shape))) if fmt.values_per_word > 1
                     else enc.storage)
            q = codes.reshape(enc.shape).float()
            if enc.zero_point is not None:
                q = q - enc.zero_point
            vals = (q * cast(torch.Tensor, enc.scale)).to(enc.dtype)  # integer formats carry a scale
        if out is None:
            return vals
        out.copy_(vals)
        return out


def numeric_format(spec) -> NumericFormat:
    """Coerce a spec string or NumericFormat (alias of :meth:`NumericFormat.parse`)."""
    return NumericFormat.parse(spec)
