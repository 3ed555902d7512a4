"""Group-wise integer quantization: int4/int8 codes, one fp16/bf16 scale (and zero point) per group.

Every ``group`` consecutive values of a tensor's channel (the flattened values of one index of
axis 0: an output channel of a weight, a sample of a feature map) share a scale ``s`` and, for
asymmetric (affine) codes, a zero point ``z``; both are stored in fp16 or bf16, in the same DRAM
as the codes, and take errors. The scale is rounded to its storage format first and the codes
are computed with the rounded scale (rounded up, so no value is clipped), so a clean read-back
is exactly ``(q - z) * s``:

* symmetric: ``s = max|x| / qmax``, ``q = clamp(round(x / s), -qmax, qmax)``;
* asymmetric: ``s = (max(x, 0) - min(x, 0)) / (qmax - qmin)``, ``z = clamp(qmin - round(min(x, 0)
  / s), qmin, qmax)`` (an integer, exact in fp16/bf16), ``q = clamp(round(x / s) + z, qmin,
  qmax)``, as eden's per-tensor affine codes.

Codes are two's complement, int4 two per byte (low nibble first). An all-zero group gets the
scale 1; a scale beyond the storage format's range is clamped into it. ``nf4`` codes index the 16
NormalFloat levels (:mod:`eden.formats.nf4`) with ``s = max|x|`` (symmetric only): the nearest
level of ``x / s``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.formats.base import FloatFormat, IntFormat, QuantScheme
from eden.formats.blocks import BlockCodec, BlockLayout, Placement
from eden.formats.registry import get_format

#: The formats a group's scale and zero point may be stored in.
SCALE_FORMATS = ("fp16", "bf16")


@dataclasses.dataclass(frozen=True)
class GroupQuant(BlockCodec):
    """Group-wise quantization of one integer format.

    Attributes:
        codes: the integer format of the codes (``int4``, ``int8``).
        group: values per group.
        scheme: symmetric or affine (asymmetric: a zero point per group).
        scale_format: ``fp16`` or ``bf16``, of the scales and zero points.
        placement: where the metadata sits (:class:`Placement`).
    """

    codes: IntFormat
    group: int
    scheme: QuantScheme = QuantScheme.SYMMETRIC
    scale_format: str = "fp16"
    placement: Placement = Placement.SEPARATE

    @property
    def layout(self) -> BlockLayout:  # type: ignore[override]  # BlockCodec's attribute, computed
        widths = (2, 2) if self.scheme is QuantScheme.AFFINE else (2,)
        return BlockLayout(self.codes.bits, self.group, widths, self.placement)

    @property
    def _sfmt(self) -> FloatFormat:
        fmt = get_format(self.scale_format)
        assert isinstance(fmt, FloatFormat)
        return fmt

    def _round_scale(self, s: np.ndarray) -> np.ndarray:
        """Scales (float64) -> their storage words, rounded up (the codes then cover the group's
        range without clipping), never 0 or beyond the format's range."""
        fmt = self._sfmt
        tiny = float(fmt.to_float32(np.array([1], fmt.word))[0])  # the smallest positive value
        s = np.clip(np.where(s > 0, s, 1.0), tiny, fmt.max_finite)
        words = fmt.from_float32(s.astype(np.float32))
        below = (fmt.to_float32(words).astype(np.float64) < s) & (words < fmt.from_float32(np.float32(fmt.max_finite)))
        return (words + below.astype(words.dtype)).astype(words.dtype)  # the next larger positive value

    @property
    def levels(self) -> np.ndarray | None:
        """The code book of ``nf4`` (None for integer codes)."""
        if self.codes.name != "nf4":
            return None
        from eden.formats.nf4 import NF4_LEVELS

        return NF4_LEVELS

    def encode_blocks(self, x):
        # Scales come from the finite values; +-inf saturates to the end codes, NaN reads back as 0
        # (integer codes have no NaN: a NaN input, e.g. downstream of an uncorrected error).
        x = np.asarray(x, np.float32).astype(np.float64)
        nan = np.isnan(x)
        x = np.where(nan, 0.0, x)
        xf = np.where(np.isfinite(x), x, 0.0)
        qmin, qmax = self.codes.code_range(self.scheme)
        fmt = self._sfmt
        levels = self.levels
        if levels is not None:  # nearest NF4 level of x / absmax
            sw = self._round_scale(np.abs(xf).max(axis=1))
            s = fmt.to_float32(sw).astype(np.float64)
            mids = (levels[1:].astype(np.float64) + levels[:-1]) / 2
            return np.searchsorted(mids, x / s[:, None]).astype(np.uint8), [sw]
        if self.scheme is QuantScheme.SYMMETRIC:
            sw = self._round_scale(np.abs(xf).max(axis=1) / qmax)
            s = fmt.to_float32(sw).astype(np.float64)
            q = np.clip(np.round(x / s[:, None]), qmin, qmax)
            fields = [sw]
        else:
            lo = np.minimum(xf.min(axis=1), 0.0)
            hi = np.maximum(xf.max(axis=1), 0.0)
            sw = self._round_scale((hi - lo) / (qmax - qmin))
            s = fmt.to_float32(sw).astype(np.float64)
            z = np.clip(qmin - np.round(lo / s), qmin, qmax)
            q = np.clip(np.round(x / s[:, None]) + z[:, None], qmin, qmax)
            q = np.where(nan, z[:, None], q)
            fields = [sw, fmt.from_float32(z.astype(np.float32))]
        mask = (1 << self.codes.bits) - 1
        return (q.astype(np.int64) & mask).astype(np.uint8), fields

    def field_values(self, fields):
        with np.errstate(invalid="ignore"):  # a corrupted word may be a signalling NaN
            return [self._sfmt.to_float32(np.asarray(f, self._sfmt.word)).astype(np.float64) for f in fields]

    def dequantize(self, codes, meta):
        bits = self.codes.bits
        q = np.asarray(codes).astype(np.int64)
        levels = self.levels
        if levels is not None:
            with np.errstate(invalid="ignore", over="ignore"):
                return (levels[q].astype(np.float64) * meta[0][:, None]).astype(np.float32)
        q = np.where(q >= 1 << (bits - 1), q - (1 << bits), q).astype(np.float64)  # sign-extend
        if self.scheme is QuantScheme.AFFINE:
            q = q - meta[1][:, None]
        with np.errstate(invalid="ignore", over="ignore"):
            return (q * meta[0][:, None]).astype(np.float32)
