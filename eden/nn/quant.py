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
(possibly corrupted) codes with the clean scales.

Example:
    >>> fmt = NumericFormat.parse("int8:affine,channel")
    >>> enc = fmt.encode(w, channel_axis=0)
    >>> inject_(enc.storage, "em0:p=1e-4", seed=1)
    >>> w_hat = fmt.decode(enc)
"""

from __future__ import annotations

import dataclasses
import difflib
import math

import torch

FLOAT_FORMATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
INT_FORMATS = {"int16": (16, torch.int16), "int8": (8, torch.int8), "int4": (4, torch.int8)}
SCHEMES = ("symmetric", "affine")
GRANULARITIES = ("tensor", "channel")


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
        name: fp32, fp16, bf16, int16, int8 or int4.
        scheme: symmetric or affine (integer formats only).
        granularity: tensor or channel (integer formats only).
    """

    name: str = "fp32"
    scheme: str = "symmetric"
    granularity: str = "tensor"

    def __post_init__(self):
        known = (*FLOAT_FORMATS, *INT_FORMATS)
        if self.name not in known:
            close = difflib.get_close_matches(str(self.name), known, n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise ValueError(f"unknown numeric format {self.name!r}{hint}; known: {', '.join(known)}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown quantization scheme {self.scheme!r}; known: {', '.join(SCHEMES)}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown quantization granularity {self.granularity!r}; "
                             f"known: {', '.join(GRANULARITIES)}")
        if self.is_float and (self.scheme, self.granularity) != ("symmetric", "tensor"):
            raise ValueError(f"{self.name} is a float format: quantization options do not apply")

    @classmethod
    def parse(cls, spec: "str | NumericFormat") -> "NumericFormat":
        """``"int8"``, ``"int8:affine"``, ``"int4:symmetric,channel"``, ``"bf16"``."""
        if isinstance(spec, NumericFormat):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"a numeric format is a string like 'int8:affine,channel', got {spec!r}")
        name, _, opts = spec.strip().partition(":")
        kwargs = {}
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            if opt in SCHEMES:
                kwargs["scheme"] = opt
            elif opt in GRANULARITIES:
                kwargs["granularity"] = opt
            else:
                raise ValueError(f"unknown option {opt!r} in numeric format {spec!r}; options: "
                                 f"{', '.join(SCHEMES + GRANULARITIES)}")
        return cls(name.strip(), **kwargs)

    def __str__(self) -> str:
        if self.is_float:
            return self.name
        return f"{self.name}:{self.scheme},{self.granularity}"

    @property
    def is_float(self) -> bool:
        return self.name in FLOAT_FORMATS

    @property
    def bits(self) -> int:
        """Stored bits per value."""
        if self.is_float:
            return torch.finfo(FLOAT_FORMATS[self.name]).bits
        return INT_FORMATS[self.name][0]

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
            raise TypeError(f"numeric formats encode float tensors, got {x.dtype}")
        x = x.detach()
        if self.is_float:
            return Encoded(x.to(FLOAT_FORMATS[self.name]).contiguous().clone()
                           if x.dtype == FLOAT_FORMATS[self.name] else
                           x.to(FLOAT_FORMATS[self.name]).contiguous(),
                           None, None, tuple(x.shape), x.dtype)
        bits, code_dtype = INT_FORMATS[self.name]
        xf = x.float()
        per_channel = self.granularity == "channel" and channel_axis is not None and xf.dim() > channel_axis
        if per_channel:
            dims = [d for d in range(xf.dim()) if d != channel_axis]
            lo = xf.amin(dim=dims, keepdim=True) if dims else xf
            hi = xf.amax(dim=dims, keepdim=True) if dims else xf
        else:
            lo, hi = xf.min().reshape(1), xf.max().reshape(1)
        qmax = 2 ** (bits - 1) - 1
        if self.scheme == "symmetric":
            scale = torch.maximum(lo.abs(), hi.abs()) / qmax
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero = None
            q = torch.clamp(torch.round(xf / scale), -qmax, qmax)
        else:
            qmin = -qmax - 1
            lo = torch.minimum(lo, torch.zeros_like(lo))  # 0 must be exact
            hi = torch.maximum(hi, torch.zeros_like(hi))
            scale = (hi - lo) / (qmax - qmin)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            zero = torch.clamp(qmin - torch.round(lo / scale), qmin, qmax)
            q = torch.clamp(torch.round(xf / scale) + zero, qmin, qmax)
        codes = q.to(code_dtype).contiguous()
        storage = _pack_int4(codes) if self.name == "int4" else codes
        return Encoded(storage, scale, zero, tuple(x.shape), x.dtype)

    def decode(self, enc: Encoded, out: torch.Tensor | None = None) -> torch.Tensor:
        """Values from (possibly corrupted) storage; into ``out`` when given."""
        if self.is_float:
            vals = enc.storage.reshape(enc.shape).to(enc.dtype)
        else:
            codes = _unpack_int4(enc.storage, math.prod(map(int, enc.shape))) if self.name == "int4" else enc.storage
            q = codes.reshape(enc.shape).float()
            if enc.zero_point is not None:
                q = q - enc.zero_point
            vals = (q * enc.scale).to(enc.dtype)
        if out is None:
            return vals
        out.copy_(vals)
        return out


def _pack_int4(codes: torch.Tensor) -> torch.Tensor:
    flat = codes.reshape(-1)
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    u = (flat.to(torch.int16) & 0xF).to(torch.uint8)
    return (u[0::2] | (u[1::2] << 4)).contiguous()


def _unpack_int4(packed: torch.Tensor, numel: int) -> torch.Tensor:
    p = packed.reshape(-1)
    lo = (p & 0xF).to(torch.int8)
    hi = (p >> 4).to(torch.int8)
    out = torch.stack([lo, hi], dim=1).reshape(-1)[:numel]
    return torch.where(out > 7, out - 16, out)


def numeric_format(spec) -> NumericFormat:
    """Coerce a spec string or NumericFormat (alias of :meth:`NumericFormat.parse`)."""
    return NumericFormat.parse(spec)
