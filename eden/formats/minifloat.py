"""Small floats (fp8, fp6, fp4): their codes, values and rounding, in NumPy.

A :class:`MiniFloat` is a float code of ``1 + ebits + mbits`` bits with bias ``2^(ebits-1) - 1``
and one of three rules for the top of the range (the OCP 8-bit floating point and MX v1.0
specifications):

* ``ieee`` (``e5m2``): the all-ones exponent holds +-infinity (mantissa 0) and NaN;
* ``fn`` (``e4m3fn``: "finite, NaN"): only ``S.1111.111`` is NaN; no infinity;
* ``finite`` (the MX elements ``e3m2``, ``e2m3``, ``e2m1``): every code is a number.

:meth:`MiniFloat.quantize` rounds float32 values to the code's values, to nearest even, and
saturates finite values beyond the largest normal to it (MX v1.0 section 6.3: "clamped to the
maximum normal"; the ``SAT`` conversion of the OCP fp8 specification); NaN stays NaN where the
code has one. The value table of every code is built once from the fields (at most 256
entries), so decoding is one lookup, for NumPy and CuPy arrays alike (:meth:`MiniFloat.values`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from eden.core.validate import Mode
from eden.formats.base import BitLayout, FloatFormat


class Specials(Mode):
    """What the all-ones exponent of a small float holds."""

    IEEE = "ieee"      # infinities and NaNs (e5m2)
    FN = "fn"          # one NaN (all-ones exponent and mantissa), no infinity (e4m3fn)
    FINITE = "finite"  # numbers only (MX fp6/fp4 elements)


@dataclasses.dataclass(frozen=True)
class MiniFloat:
    """A small float code: sign, ``ebits`` exponent bits, ``mbits`` mantissa bits.

    Example:
        >>> E4M3 = MiniFloat("e4m3", 4, 3, Specials.FN)
        >>> E4M3.max_finite, E4M3.emax
        (448.0, 8)
    """

    name: str
    ebits: int
    mbits: int
    specials: Specials = Specials.FINITE

    @property
    def bits(self) -> int:
        return 1 + self.ebits + self.mbits

    @property
    def layout(self) -> BitLayout:
        return BitLayout(1, self.ebits, self.mbits)

    @property
    def bias(self) -> int:
        return (1 << (self.ebits - 1)) - 1

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal value (subnormals share it)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest normal value (``emax_elem`` of the MX specification)."""
        top = (1 << self.ebits) - (2 if self.specials is Specials.IEEE else 1)
        return top - self.bias

    @functools.cached_property
    def table(self) -> np.ndarray:
        """float32 value of every code (index = code); NaN for NaN codes."""
        codes = np.arange(1 << self.bits, dtype=np.int64)
        sign = np.where(codes >> (self.bits - 1), -1.0, 1.0)
        e = (codes >> self.mbits) & ((1 << self.ebits) - 1)
        m = codes & ((1 << self.mbits) - 1)
        mag = np.where(e == 0, np.ldexp(m.astype(np.float64), self.emin - self.mbits),
                       np.ldexp(1.0 + m / (1 << self.mbits), e - self.bias))
        top_e = (1 << self.ebits) - 1
        if self.specials is Specials.IEEE:
            mag = np.where((e == top_e) & (m == 0), np.inf, mag)
            mag = np.where((e == top_e) & (m != 0), np.nan, mag)
        elif self.specials is Specials.FN:
            mag = np.where((e == top_e) & (m == (1 << self.mbits) - 1), np.nan, mag)
        out = (sign * mag).astype(np.float32)
        out.flags.writeable = False
        return out

    @functools.cached_property
    def _positive(self) -> np.ndarray:
        """Finite non-negative values in code order (codes 0, 1, ...: increasing)."""
        half = self.table[: 1 << (self.bits - 1)]
        return half[np.isfinite(half)]

    @property
    def max_finite(self) -> float:
        return float(self._positive[-1])

    @property
    def nan_code(self) -> int | None:
        """The code written for NaN (all ones but the sign), None when the code has no NaN."""
        return None if self.specials is Specials.FINITE else (1 << (self.bits - 1)) - 1

    @property
    def inf_code(self) -> int | None:
        return ((1 << self.ebits) - 1) << self.mbits if self.specials is Specials.IEEE else None

    def values(self, codes):
        """Codes (NumPy or CuPy integer array) -> float32 values."""
        if isinstance(codes, np.ndarray):
            return self.table[codes.astype(np.intp)]
        import cupy  # a CuPy array: the CUDA correction path

        return cupy.asarray(self.table)[codes.astype(np.intp)]

    def quantize(self, x) -> np.ndarray:
        """float32 values rounded to this code's values (nearest even, saturating), as float32.

        NaN stays NaN; +-infinity stays infinite for ``ieee`` codes and saturates otherwise.
        """
        x = np.asarray(x, np.float32)
        a = np.abs(x).astype(np.float64)  # exact; scaling by powers of two stays exact
        with np.errstate(invalid="ignore", over="ignore"):
            _, ex = np.frexp(np.where(np.isfinite(a), a, 0.0))
            e = np.maximum(ex - 1, self.emin)  # floor(log2 a), never below the subnormals' exponent
            step = np.ldexp(1.0, e - self.mbits)
            q = np.minimum(np.round(a / step) * step, self.max_finite)  # np.round: half to even
            q = np.where(np.isinf(a), np.inf if self.specials is Specials.IEEE else self.max_finite, q)
            q = np.where(np.isnan(a), np.nan, q)
        return np.copysign(q, x).astype(np.float32)

    def encode(self, x) -> np.ndarray:
        """float32 values -> codes (uint8), rounded as :meth:`quantize`; NaN -> the NaN code
        (0 for codes without one); -0.0 keeps its sign."""
        q = self.quantize(x)
        mag = np.abs(q)
        finite = np.isfinite(q)
        idx = np.searchsorted(self._positive, np.where(finite, mag, 0.0)).astype(np.uint8)
        if self.specials is Specials.IEEE:
            idx = np.where(np.isinf(q), np.uint8(((1 << self.ebits) - 1) << self.mbits), idx)
        nan_code = self.nan_code
        if nan_code is not None:
            idx = np.where(np.isnan(q), np.uint8(nan_code), idx)
        neg = np.signbit(q) & ~np.isnan(q)
        return (idx | (neg.astype(np.uint8) << np.uint8(self.bits - 1))).astype(np.uint8)


E4M3 = MiniFloat("e4m3", 4, 3, Specials.FN)
E5M2 = MiniFloat("e5m2", 5, 2, Specials.IEEE)
E3M2 = MiniFloat("e3m2", 3, 2, Specials.FINITE)
E2M3 = MiniFloat("e2m3", 2, 3, Specials.FINITE)
E2M1 = MiniFloat("e2m1", 2, 1, Specials.FINITE)


@dataclasses.dataclass(frozen=True)
class MiniFloatFormat(FloatFormat):
    """An 8-bit float stored as itself (fp8): one code per byte, values from :class:`MiniFloat`.

    ``view`` names the code (no NumPy dtype reinterprets the words): the float views go through
    the code's value table, so correction takes the NumPy/CuPy path of ``correct_segments``.
    """

    code: MiniFloat = E4M3

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "layout", self.code.layout)

    @property
    def max_finite(self) -> float:
        return self.code.max_finite

    def to_float32(self, words):
        return self.code.values(words)

    def from_float32(self, values):
        return self.code.encode(np.asarray(values, np.float32)).astype(self.word)
