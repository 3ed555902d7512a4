"""Numeric formats of DNN data: how a float tensor is stored as bits in DRAM.

A :class:`NumericFormat` turns a float tensor into its *storage* (the words in
DRAM, which the injection engine flips) plus exact metadata (scales and zero
points, kept in reliable memory), and back:

* ``fp32``, ``fp16``, ``bf16``: the values as stored in that float type.
* ``fp8_e4m3``, ``fp8_e5m2``: torch's ``float8_e4m3fn`` / ``float8_e5m2``, saturating at
  the largest finite value.
* ``int16``, ``int8``, ``int4``: integer codes by symmetric (``q = round(x/s)``,
  codes in ``[-(2^(b-1)-1), 2^(b-1)-1]``) or affine (``q = round(x/s) + z``, codes
  in ``[-2^(b-1), 2^(b-1)-1]``) quantization, per tensor or per channel (axis 0
  of weights, axis 1 of feature maps). int4 packs two codes per byte, low nibble
  first (an odd count is padded with one code 0, which is never read back).
* ``int4:group=G``, ``int8:group=G`` (``,asym``; ``,scale=bf16``): group-wise codes with an
  fp16/bf16 scale (and zero point) per group of ``G`` values of a channel
  (:mod:`eden.formats.group`), stored in DRAM with the codes.
* ``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4``, ``mxint8``: the OCP
  MX formats, 32 elements per E8M0 scale (:mod:`eden.formats.mx`), scales in DRAM.

Bits are flipped in the storage. Per-tensor and per-channel scales are clean (reliable
memory): :meth:`NumericFormat.decode` dequantizes the (possibly corrupted) codes with them.
The storage of a block format (group-wise, MX) is one byte buffer holding the elements and
their metadata (``separate``: metadata after the elements; ``interleaved``: before each block),
so the metadata takes errors too, unless the format says ``no-metadata-errors``: then the
metadata keeps its place in DRAM (the same addresses, the same draws for the elements) but
reads back clean, and its bits are left out of the statistics (:meth:`NumericFormat.read_back`).

Names, bit widths, code ranges, packing and granularities come from the storage-format registry (:mod:`eden.formats`);
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

import numpy as np

from eden.core.validate import check_int, unknown_name
from eden.engine.correct import popcount
from eden.errors import EdenConfigError, EdenTypeError
from eden.formats import FORMATS, Granularity, IntFormat, QuantScheme, StorageFormat, get_format
from eden.formats.blocks import BlockCodec, Calibration, Placement
from eden.formats.group import SCALE_FORMATS, GroupQuant
from eden.formats.minifloat import MiniFloatFormat
from eden.formats.mx import MXFormat

SCHEMES = tuple(s.value for s in QuantScheme)
#: Short spellings of the schemes in format strings.
SCHEME_ALIASES = {"sym": QuantScheme.SYMMETRIC, "asym": QuantScheme.AFFINE}
PLACEMENTS = tuple(p.value for p in Placement)
NO_METADATA_ERRORS = "no-metadata-errors"


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
class BlockState:
    """What a block format's encoding keeps in reliable memory (a few numbers and the clean
    metadata bytes), beside the storage.

    Attributes:
        calibration: the clean tensor's value range and each metadata field's range (for
            correction).
        metadata_mask: bool per storage byte, True for metadata bytes.
        clean_metadata: the clean metadata bytes, in buffer order (read back instead of the
            stored ones when the format keeps metadata error-free).
    """

    calibration: Calibration
    metadata_mask: np.ndarray
    clean_metadata: np.ndarray


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A tensor as stored: ``storage`` holds the DRAM words (contiguous).

    Attributes:
        storage: the stored words (float tensor for float formats; int16/int8
            codes, or packed uint8 for int4; for block formats, one uint8 buffer of
            elements and metadata).
        scale, zero_point: per-tensor/per-channel quantization metadata in reliable memory
            (None for float and block formats); broadcastable to ``shape`` for per-channel
            quantization.
        shape, dtype: shape and float dtype of the original tensor.
        block: the reliable-memory side of a block format's encoding (None otherwise).
    """

    storage: torch.Tensor
    scale: torch.Tensor | None
    zero_point: torch.Tensor | None
    shape: tuple[int, ...]
    dtype: torch.dtype
    block: BlockState | None = None


@dataclasses.dataclass(frozen=True)
class ReadBack:
    """What reading a corrupted tensor back cost: the statistics of one injection.

    Attributes:
        n_bits: bits that differ from the clean storage and reach the values (metadata
            flips are left out when the format keeps metadata error-free).
        total_bits: stored bits that take errors (elements plus metadata, or elements only).
        n_corrected: values the correction replaced (in the engine or on decoding).
    """

    n_bits: int
    total_bits: int
    n_corrected: int


@dataclasses.dataclass(frozen=True)
class NumericFormat:
    """How one data type is stored in DRAM.

    Attributes:
        name: a registered numeric format (:func:`numeric_formats`): fp32, fp16, bf16,
            fp8_e4m3, fp8_e5m2, int16, int8, int4, and the MX formats mxfp8_e4m3, mxfp8_e5m2,
            mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8.
        scheme: a :class:`~eden.formats.QuantScheme` or its string, symmetric or affine
            (integer formats only).
        granularity: a :class:`~eden.formats.Granularity` or its string, one the format
            supports: tensor, channel or group (integer formats; MX formats are per block).
        group_size: values per group (``group`` granularity; giving it selects ``group``).
        scale_format: ``fp16`` or ``bf16``: how group scales and zero points are stored.
        placement: where a block format's metadata sits (``separate`` or ``interleaved``).
        metadata_errors: False keeps a block format's metadata error-free (``no-metadata-errors``).
        flat: group-wise only: groups run over the flattened tensor and may straddle channels
            (the last one padded, as MX blocks); without it a group must lie within one channel.
    """

    name: str = "fp32"
    scheme: QuantScheme = QuantScheme.SYMMETRIC
    granularity: Granularity = Granularity.TENSOR
    group_size: int | None = None
    scale_format: str = "fp16"
    placement: Placement = Placement.SEPARATE
    metadata_errors: bool = True
    flat: bool = False

    def __post_init__(self):
        known = numeric_formats()
        if self.name not in known:
            raise unknown_name("numeric format", self.name, known)
        try:
            object.__setattr__(self, "scheme", QuantScheme(SCHEME_ALIASES.get(self.scheme, self.scheme)))
        except ValueError:
            raise unknown_name("quantization scheme", self.scheme, SCHEMES) from None
        try:
            object.__setattr__(self, "granularity", Granularity(self.granularity))
        except ValueError:
            raise unknown_name("quantization granularity", self.granularity, GRANULARITIES) from None
        try:
            object.__setattr__(self, "placement", Placement(self.placement))
        except ValueError:
            raise unknown_name("metadata placement", self.placement, PLACEMENTS) from None
        if self.scale_format not in SCALE_FORMATS:
            raise unknown_name("scale format", self.scale_format, SCALE_FORMATS)
        if not isinstance(self.metadata_errors, bool):
            raise EdenTypeError(f"metadata_errors must be True or False, got {self.metadata_errors!r}")
        storage = self.storage
        if self.group_size is not None:
            object.__setattr__(self, "group_size", check_int("group size", self.group_size, lo=1))
            if self.granularity is Granularity.TENSOR:
                object.__setattr__(self, "granularity", Granularity.GROUP)
        if isinstance(storage, MXFormat):
            object.__setattr__(self, "granularity", Granularity.BLOCK)
            if self.scheme is not QuantScheme.SYMMETRIC or self.group_size is not None:
                raise EdenConfigError(f"{self.name} is an MX format: blocks of 32 with a shared scale; "
                                      "scheme and group options do not apply")
        elif self.is_float:
            if (self.scheme, self.granularity) != (QuantScheme.SYMMETRIC, Granularity.TENSOR):
                raise EdenConfigError(f"{self.name} is a float format: quantization options do not apply")
        elif self.granularity not in storage.granularities:
            hint = f" ('{self.name}:group=G')" if Granularity.GROUP in storage.granularities else ""
            raise EdenConfigError(f"{self.name} quantizes per "
                                  f"{' or '.join(g.value for g in storage.granularities)}, "
                                  f"not per {self.granularity.value}{hint}")
        elif self.granularity is Granularity.GROUP and self.group_size is None:
            raise EdenConfigError(f"{self.name} per group needs its size: '{self.name}:group=G' (e.g. group=128)")
        if self.name == "nf4" and self.scheme is not QuantScheme.SYMMETRIC:
            raise EdenConfigError("nf4 scales each group by its absmax: it has no asymmetric (affine) form")
        if self.flat and self.granularity is not Granularity.GROUP:
            raise EdenConfigError(f"{self.name}: 'flat' applies to group-wise formats (':group=G,flat')")
        if self.codec is None and (self.placement is not Placement.SEPARATE or not self.metadata_errors
                                   or self.scale_format != "fp16"):
            raise EdenConfigError(f"{self} keeps no metadata in DRAM: metadata placement, scale format and "
                                  f"{NO_METADATA_ERRORS} apply to group-wise (':group=G') and MX formats")
        if self.codec is not None:
            self.codec.layout  # noqa: B018 (checks that a group fills whole bytes)

    @classmethod
    def parse(cls, spec: str | NumericFormat) -> NumericFormat:
        """``"int8"``, ``"int8:affine"``, ``"int4:symmetric,channel"``, ``"bf16"``, ``"fp8_e4m3"``,
        ``"int4:group=128,asym"``, ``"int8:group=32,scale=bf16,interleaved"``, ``"int4:group=128,flat"``,
        ``"mxfp4"``,
        ``"mxfp8_e4m3:interleaved,no-metadata-errors"``."""
        if isinstance(spec, NumericFormat):
            return spec
        if not isinstance(spec, str):
            raise EdenTypeError(f"a numeric format is a string like 'int8:affine,channel', got {spec!r}")
        name, _, opts = spec.strip().partition(":")
        kwargs: dict[str, Any] = {}
        for opt in filter(None, (o.strip() for o in opts.split(","))):
            key, eq, value = opt.partition("=")
            if opt in SCHEMES or opt in SCHEME_ALIASES:
                kwargs["scheme"] = opt
            elif opt in GRANULARITIES:
                kwargs["granularity"] = opt
            elif opt in PLACEMENTS:
                kwargs["placement"] = opt
            elif opt == NO_METADATA_ERRORS:
                kwargs["metadata_errors"] = False
            elif opt == "flat":
                kwargs["flat"] = True
            elif eq and key == "group":
                try:
                    kwargs["group_size"] = int(value)
                except ValueError:
                    raise EdenConfigError(f"group size in numeric format {spec!r} must be an integer, "
                                          f"got {value!r}") from None
            elif eq and key == "scale":
                kwargs["scale_format"] = value
            else:
                raise EdenConfigError(f"unknown option {opt!r} in numeric format {spec!r}; options: "
                                      f"{', '.join(SCHEMES + tuple(SCHEME_ALIASES) + GRANULARITIES)}, group=G, "
                                      f"scale={'|'.join(SCALE_FORMATS)}, flat, {', '.join(PLACEMENTS)}, "
                                      f"{NO_METADATA_ERRORS}")
        return cls(name.strip(), **kwargs)

    def __str__(self) -> str:
        if self.is_float:
            return self.name
        extra = ""
        if self.placement is not Placement.SEPARATE:
            extra += f",{self.placement}"
        if not self.metadata_errors:
            extra += f",{NO_METADATA_ERRORS}"
        if isinstance(self.storage, MXFormat):
            return f"{self.name}:{extra[1:]}" if extra else self.name
        if self.granularity is Granularity.GROUP:
            scale = f",scale={self.scale_format}" if self.scale_format != "fp16" else ""
            flat = ",flat" if self.flat else ""
            return f"{self.name}:group={self.group_size},{self.scheme}{scale}{flat}{extra}"
        return f"{self.name}:{self.scheme},{self.granularity}"

    def without_metadata_errors(self) -> NumericFormat:
        """This format with its DRAM metadata kept error-free (itself when it has none)."""
        return dataclasses.replace(self, metadata_errors=False) if self.codec is not None else self

    @property
    def storage(self) -> StorageFormat:
        """The registered storage format (bit layout, packing, plausible values)."""
        return get_format(self.name)

    @property
    def is_float(self) -> bool:
        return self.storage.is_float

    @property
    def codec(self) -> BlockCodec | None:
        """The block numerics when metadata is stored in DRAM (group-wise, MX), else None."""
        fmt = self.storage
        if isinstance(fmt, MXFormat):
            return fmt.placed(self.placement)
        if self.granularity is Granularity.GROUP and self.group_size is not None:
            return GroupQuant(cast(IntFormat, fmt), self.group_size, self.scheme, self.scale_format, self.placement)
        return None

    @property
    def corrects(self) -> bool:
        """Implausible-value correction applies: float formats (in the engine) and block
        formats (on decoding, metadata included)."""
        return self.is_float or self.codec is not None

    @property
    def bits(self) -> int:
        """Stored bits per value (elements only)."""
        return self.storage.bits

    def storage_bytes(self, numel: int) -> int:
        """Bytes one tensor of ``numel`` values occupies in DRAM, metadata stored in DRAM included
        (block formats: whole blocks, the last one padded)."""
        codec = self.codec
        if codec is not None:
            return codec.layout.nbytes(codec.n_blocks(numel)) if numel else 0
        return (numel * self.bits + 7) // 8

    # ------------------------------------------------------------------ coding
    def encode(self, x: torch.Tensor, *, channel_axis: int | None = 0) -> Encoded:
        """Store ``x`` (a float tensor) in this format. ``x`` itself is never modified.

        Args:
            x: float tensor.
            channel_axis: axis of per-channel scales (0 for weights, 1 for
                feature maps); per-tensor when None or ``x`` has fewer dims.

        Raises:
            EdenTypeError: ``x`` is not a float tensor.
            EdenConfigError: a group size that does not divide the channel (the values of
                one index of axis 0).
        """
        if not torch.is_floating_point(x):
            what = "a block format encodes" if self.codec is not None else "numeric formats encode"
            raise EdenTypeError(f"{self}: {what} float tensors, got {x.dtype} (an integer tensor "
                                "is stored as itself: inject into it directly)")
        x = x.detach()
        fmt = self.storage
        if self.codec is not None:
            return self._encode_blocks(x)
        if fmt.is_float:
            dt = _torch_dtype(fmt)
            if isinstance(fmt, MiniFloatFormat):  # saturating, as the MX and OCP fp8 SAT conversions
                m = fmt.max_finite  # (+-inf stays infinite where the code has infinities: e5m2)
                y = torch.clamp(x, -m, m)
                if fmt.code.inf_code is not None:
                    y = torch.where(torch.isinf(x), x, y)
                return Encoded(y.to(dt).contiguous(), None, None, tuple(x.shape), x.dtype)
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

    def _encode_blocks(self, x: torch.Tensor) -> Encoded:
        """Block formats: the NumPy numerics of :mod:`eden.formats` on the host; the buffer goes
        back to ``x``'s device."""
        codec = cast(BlockCodec, self.codec)
        shape = tuple(int(s) for s in x.shape)
        if self.group_size is not None and not self.flat:
            per_channel = x.numel() // shape[0] if len(shape) > 1 and shape[0] else x.numel()
            if per_channel % self.group_size:
                raise EdenConfigError(
                    f"{self}: group size {self.group_size} does not divide the channel: a tensor of shape "
                    f"{list(shape)} has {per_channel} values per channel (index of axis 0); use a group size "
                    f"that divides {per_channel}, ',flat' (groups over the flattened tensor), or another format "
                    "for this data type")
        values = x.float().reshape(-1).cpu().numpy()
        buf, calibration = codec.encode_values(values)
        mask = codec.layout.metadata_mask(codec.n_blocks(values.size))
        state = BlockState(calibration, mask, buf[mask])
        return Encoded(torch.from_numpy(buf).to(x.device), None, None, shape, x.dtype, state)

    def decode(self, enc: Encoded, out: torch.Tensor | None = None, *, correction: str = "none",
               plausible: tuple[float, float] | None = None) -> torch.Tensor:
        """Values from (possibly corrupted) storage; into ``out`` when given.

        ``correction`` (``zero``/``clamp``) applies to block formats here (metadata out of its
        calibrated range, then implausible values; ``plausible``: the value range, default the
        clean tensor's); float formats are corrected in the engine, on the words.
        """
        return self._decode(enc, out, correction, plausible)[0]

    def _decode(self, enc: Encoded, out: torch.Tensor | None, correction: str,
                plausible: tuple[float, float] | None) -> tuple[torch.Tensor, int]:
        fmt = self.storage
        n_corrected = 0
        codec = self.codec
        if codec is not None:
            state = enc.block
            if state is None:
                raise EdenConfigError(f"{self}: this Encoded was not made by a block format's encode")
            buf = enc.storage.detach().reshape(-1).cpu().numpy()
            if not self.metadata_errors:
                buf = buf.copy()
                buf[state.metadata_mask] = state.clean_metadata
            flat, n_corrected = codec.decode_values(buf, math.prod(enc.shape), correction=correction,
                                                    plausible=plausible, calibration=state.calibration)
            vals = torch.from_numpy(flat).reshape(enc.shape).to(device=enc.storage.device, dtype=enc.dtype)
        elif fmt.is_float:
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
            return vals, n_corrected
        out.copy_(vals)
        return out, n_corrected

    def read_back(self, enc: Encoded, log, *, correction: str = "none",
                  plausible: tuple[float, float] | None = None,
                  out: torch.Tensor | None = None) -> tuple[torch.Tensor, ReadBack]:
        """Decode a corrupted encoding and account for the injection that corrupted it.

        Args:
            enc: the encoding, its ``storage`` corrupted by the injection ``log``.
            log: the :class:`~eden.engine.ops.FlipLog` of that injection (None: no injection).
            correction, plausible: as :meth:`decode` (block formats; float formats were
                corrected in the engine).
            out: decode into this tensor.

        Returns:
            (values, :class:`ReadBack`): with metadata errors off, the metadata's flips are
            left out of ``n_bits`` and its bits out of ``total_bits``.
        """
        vals, n_corrected = self._decode(enc, out, correction, plausible)
        if log is None:
            return vals, ReadBack(0, 0, n_corrected)
        n_bits, total = log.n_bits, log.total_bits
        if self.codec is not None and not self.metadata_errors:
            mask = cast(BlockState, enc.block).metadata_mask
            idx, flips = log.word_flips()
            n_bits = popcount(np.ascontiguousarray(flips[~mask[idx]]))
            total = int((~mask).sum()) * 8
        return vals, ReadBack(n_bits, total, log.n_corrected + n_corrected)


def numeric_format(spec) -> NumericFormat:
    """Coerce a spec string or NumericFormat (alias of :meth:`NumericFormat.parse`)."""
    return NumericFormat.parse(spec)
