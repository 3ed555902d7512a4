"""The OCP Microscaling (MX) formats, v1.0: blocks of 32 elements sharing one E8M0 scale.

``mxfp8_e4m3``, ``mxfp8_e5m2``, ``mxfp6_e3m2``, ``mxfp6_e2m3``, ``mxfp4`` (e2m1) and ``mxint8``.
A block of 32 values ``V`` is stored as a shared scale ``X = 2^e`` (E8M0: one byte, ``e =
code - 127``, code 255 = NaN) and 32 elements ``P`` with ``V ~ X * P`` (section 6.3 of the
specification):

* ``e = floor(log2(max |V|)) - emax_elem`` (``emax_elem``: exponent of the element format's
  largest normal; 8, 15, 4, 2, 2 and 0 for MXINT8), clamped to [-127, 127]; an all-zero block
  gets code 0; a block holding a NaN or an infinity gets the NaN scale (0xFF, every element
  reads back as NaN);
* ``P = quantize(V / X)``: rounded to nearest even, finite values beyond the element format's
  largest normal clamped to it. MXINT8 elements are 8-bit two's complement with an implicit
  scale of 2^-6 (1.6 fixed point), clamped to [-127, 127]; the code -128 reads back as -2.

The scale and the elements are in DRAM and both take errors; where the scales sit (one array
after the elements, or interleaved before each block) is the :class:`~eden.formats.blocks.Placement`.
The flattened tensor is cut into blocks in memory order; the last block is padded with zeros
(stored, never read back).
"""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np

from eden.formats.base import Granularity, MetadataField, MetadataLocation, StorageFormat
from eden.formats.blocks import BlockCodec, BlockLayout, Placement
from eden.formats.minifloat import E2M1, E2M3, E3M2, E4M3, E5M2, MiniFloat
from eden.formats.registry import register_format

BLOCK = 32
SCALE_BIAS = 127
SCALE_NAN = 0xFF


def e8m0_values(codes) -> np.ndarray:
    """E8M0 scale codes -> 2^(code - 127) as float64; NaN for 0xFF."""
    c = np.asarray(codes).astype(np.int64)
    return np.where(c == SCALE_NAN, np.nan, np.ldexp(1.0, c - SCALE_BIAS))


@dataclasses.dataclass(frozen=True)
class MXFormat(StorageFormat, BlockCodec):
    """One MX format: its element code (``None``: MXINT8), 32-element blocks, an E8M0 scale.

    ``word`` is ``uint8``: the engine flips the bytes of the whole buffer, elements and scales.
    ``bits`` is the element width (6 for MXFP6, packed four per three bytes).
    """

    element: MiniFloat | None = None
    placement: Placement = Placement.SEPARATE

    def __post_init__(self):  # elements are a bit stream: 6-bit ones do not tile a byte
        object.__setattr__(self, "word", np.dtype(self.word))
        object.__setattr__(self, "placement", Placement(self.placement))

    @property
    def layout_bits(self) -> int:
        return self.word_bits

    @property
    def layout(self) -> BlockLayout:  # type: ignore[override]  # BlockCodec's attribute, computed
        return BlockLayout(self.bits, BLOCK, (1,), self.placement)

    def placed(self, placement: Placement | str) -> MXFormat:
        """This format with its scales at ``placement``."""
        return dataclasses.replace(self, placement=Placement(placement))

    @property
    def emax(self) -> int:
        """``emax_elem``: the exponent of the element format's largest normal."""
        return 0 if self.element is None else self.element.emax

    @property
    def max_element(self) -> float:
        return 127 / 64 if self.element is None else self.element.max_finite

    def storage_bytes(self, numel: int) -> int:
        """Bytes of ``numel`` values: whole blocks of elements plus one scale byte each."""
        return self.layout.nbytes(self.n_blocks(numel))

    def encode_blocks(self, x):
        x = np.asarray(x, np.float32)
        a = np.abs(x.astype(np.float64))
        special = ~np.isfinite(a).all(axis=1)
        amax = np.where(np.isfinite(a), a, 0.0).max(axis=1)
        _, ex = np.frexp(amax)
        e = np.clip(np.where(amax > 0, ex - 1 - self.emax, -SCALE_BIAS), -SCALE_BIAS, SCALE_BIAS)
        scale = np.where(special, SCALE_NAN, e + SCALE_BIAS).astype(np.uint8)
        with np.errstate(invalid="ignore"):
            v = np.where(special[:, None], 0.0, np.ldexp(x.astype(np.float64), -e[:, None]))
        if self.element is None:
            codes = (np.clip(np.round(v * 64), -127, 127).astype(np.int64) & 0xFF).astype(np.uint8)
        else:
            codes = self.element.encode(v.astype(np.float32))
        return codes, [scale]

    def element_values(self, codes) -> np.ndarray:
        """Element codes -> element values (before the scale), float64."""
        c = np.asarray(codes)
        if self.element is None:
            return c.astype(np.int8).astype(np.float64) / 64
        return self.element.table[c.astype(np.intp)].astype(np.float64)

    def field_values(self, fields):
        return [e8m0_values(fields[0])]

    def dequantize(self, codes, meta):
        with np.errstate(invalid="ignore", over="ignore"):
            return (self.element_values(codes) * meta[0][:, None]).astype(np.float32)

    def encode(self, values: np.ndarray) -> np.ndarray:
        return self.encode_values(values)[0]

    def decode(self, words: np.ndarray, count: int | None = None) -> np.ndarray:
        words = np.asarray(words, np.uint8).reshape(-1)
        if count is None:
            count = words.size // self.layout.block_bytes * BLOCK
        return self.decode_values(words, count)[0]


_META = (MetadataField("scale", "e8m0", Granularity.BLOCK, MetadataLocation.DRAM),)


def _mx(name: str, element: MiniFloat | None, bits: int, what: str) -> MXFormat:
    return cast(MXFormat, register_format(MXFormat(
        name, np.dtype(np.uint8), bits, numeric=True, granularities=(Granularity.BLOCK,), metadata=_META,
        description=f"OCP MX {what}: blocks of 32, one E8M0 scale each, in DRAM", element=element)))


MXFP8_E4M3 = _mx("mxfp8_e4m3", E4M3, 8, "fp8 e4m3 elements")
MXFP8_E5M2 = _mx("mxfp8_e5m2", E5M2, 8, "fp8 e5m2 elements")
MXFP6_E3M2 = _mx("mxfp6_e3m2", E3M2, 6, "fp6 e3m2 elements")
MXFP6_E2M3 = _mx("mxfp6_e2m3", E2M3, 6, "fp6 e2m3 elements")
MXFP4 = _mx("mxfp4", E2M1, 4, "fp4 e2m1 elements")
MXINT8 = _mx("mxint8", None, 8, "int8 elements (scale 2^-6)")
