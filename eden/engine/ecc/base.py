"""What an ECC code is: a binary linear code, its parity-check matrix, its decoder and its layout.

A code protects ``k`` data bits with ``r`` check bits (``n = k + r`` bits a codeword). It is
given by the columns of its parity-check matrix H (column ``i`` is an ``r``-bit integer: the
syndrome of a single error at bit ``i``; data bits are positions ``0..k-1``, check bits
``k..n-1``, whose columns are the unit vectors). Encoding and decoding follow from H:

* the syndrome of a codeword with error pattern ``e`` is ``H e``, the XOR of the columns of the
  erroneous bits: it does not depend on the data (a linear code), so a codeword without raw
  errors needs no decoding and the cost stays O(errors);
* the decoder looks the syndrome up in its table: 0 -> nothing to do (no error, or an error
  pattern that is itself a codeword: undetected); the column of bit ``i`` -> flip bit ``i``
  (a correction when ``i`` was the only error, else a miscorrection); anything else -> a
  detected, uncorrectable error (DUE), handled by the :class:`DuePolicy`.

Symbol codes (chipkill-style) decode by symbol rather than by bit: they would override
:meth:`Code.decode`, and :mod:`eden.engine.ecc.apply` would have to take several flipped bits per
codeword (today: one). The layout says which bytes of the address space form one codeword
(:class:`Layout`), as the standard lays a codeword over the bus and its bursts.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property

import numpy as np

from eden.core.registry import Registry
from eden.core.validate import Mode, unknown_name


class DuePolicy(Mode):
    """What happens to the data of a codeword whose error the code detects but cannot correct."""

    LEAVE = "leave"  # pass the data on with its raw errors (counted)
    ZERO = "zero"    # the controller zeroes the codeword's data bytes (codes that signal a DUE only)


class Outcome(Mode):
    """Decode outcome of a codeword with at least one raw error."""

    CORRECTED = "corrected"        # exactly its raw error was undone
    DETECTED = "detected"          # syndrome matches no correctable pattern (DUE; on-die: silent)
    MISCORRECTED = "miscorrected"  # the decoder flipped a bit that was not the (only) error
    UNDETECTED = "undetected"      # the error pattern is a codeword: syndrome 0


OUTCOMES = tuple(Outcome)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which bytes of the (linear) address space form a codeword's data.

    The address space is cut into ``line_bytes`` lines; each line holds ``line_bytes * 8 / k``
    codewords whose bytes interleave with stride ``codewords per line``: byte ``o`` of a line
    belongs to codeword ``o % S`` of the line, as its byte ``o // S`` (S codewords per line).

    * SECDED (72,64) on a 72-bit DIMM bus: one codeword per 64-bit beat, 8 consecutive bytes
      (``line_bytes=8``).
    * DDR5 on-die SEC (136,128) of a x8 device on a 32-bit sub-channel: each device holds one
      byte of every 4-byte beat, and its 16-beat burst (128 bits) is one codeword: the 4
      codewords of a 64-byte line interleave byte by byte (``line_bytes=64``).
    """

    line_bytes: int

    def codewords_per_line(self, k: int) -> int:
        return self.line_bytes * 8 // k


@dataclasses.dataclass(frozen=True, eq=False)
class Code:
    """A binary linear SEC/SECDED code (see the module docs).

    Attributes:
        name: registry name (``secded72``).
        title: one line for reports.
        k: data bits of a codeword (a multiple of 8).
        columns: the ``n`` columns of H as ``r``-bit integers, data bits first, then the check
            bits' unit vectors.
        layout: the codeword's bytes in the address space.
        signals_due: whether a detected error reaches the controller (rank-level ECC); on-die
            SEC detects nothing it can report: its uncorrectable errors pass silently.
        source: where the code and its matrix come from.
    """

    name: str
    title: str
    k: int
    columns: tuple[int, ...]
    layout: Layout
    signals_due: bool
    source: str

    def __post_init__(self) -> None:
        n, r = len(self.columns), len(self.columns) - self.k
        if self.k % 8 or r <= 0 or r % 8 or len(set(self.columns)) != n or 0 in self.columns:
            raise ValueError(f"code {self.name}: k={self.k} bits (a multiple of 8), {r} check bits "
                             "(a positive multiple of 8) and distinct non-zero columns are required")
        if any(c >> r for c in self.columns):
            raise ValueError(f"code {self.name}: a column has more than {r} bits")
        if tuple(self.columns[self.k:]) != tuple(1 << j for j in range(r)):
            raise ValueError(f"code {self.name}: the check bits' columns must be the unit vectors, in order")
        if self.layout.line_bytes * 8 % self.k:
            raise ValueError(f"code {self.name}: a line of {self.layout.line_bytes} bytes holds no whole codewords")

    @property
    def n(self) -> int:
        return len(self.columns)

    @property
    def r(self) -> int:
        return self.n - self.k

    @property
    def overhead(self) -> float:
        """Check bits per data bit (the storage the code costs)."""
        return self.r / self.k

    @cached_property
    def column_array(self) -> np.ndarray:
        return np.array(self.columns, np.int64)

    @cached_property
    def syndrome_table(self) -> np.ndarray:
        """int64[2**r]: the bit a syndrome corrects, -1 for none (0 -> -1: nothing to do)."""
        t = np.full(1 << self.r, -1, np.int64)
        t[self.column_array] = np.arange(self.n)
        return t

    # ------------------------------------------------------------------ coding
    def encode(self, data: np.ndarray) -> np.ndarray:
        """Check bits of codewords: ``data`` uint8[m, k/8] (byte j holds data bits 8j..8j+7,
        LSB first) -> uint8[m, r/8] (check bit j at bit j % 8 of byte j // 8)."""
        m = data.shape[0]
        bits = np.unpackbits(np.ascontiguousarray(data, np.uint8), axis=1, bitorder="little")  # (m, k)
        h = ((self.column_array[: self.k, None] >> np.arange(self.r)) & 1).astype(np.uint8)  # (k, r)
        # parity of each check row: H_data d (mod 2), by integer matmul of 0/1 (k <= 2**20)
        check = (bits.astype(np.int32) @ h.astype(np.int32)) & 1
        return np.packbits(check.astype(np.uint8).reshape(m, self.r), axis=1, bitorder="little")

    def decode(self, syndrome: np.ndarray, n_errors: np.ndarray, first_pos: np.ndarray):
        """Decode codewords from their syndromes.

        Args:
            syndrome: int64[m] XOR of the columns of each codeword's erroneous bits.
            n_errors: int64[m] raw errors of each codeword (>= 1).
            first_pos: int64[m] position of one erroneous bit of each codeword (for the single
                error case).

        Returns:
            (outcome uint8[m] as indexes into :data:`OUTCOMES`, flip int64[m]: the bit the
            decoder flips, -1 for none).
        """
        flip = self.syndrome_table[syndrome]
        flip[syndrome == 0] = -1
        out = np.full(syndrome.shape, OUTCOMES.index(Outcome.DETECTED), np.uint8)
        out[syndrome == 0] = OUTCOMES.index(Outcome.UNDETECTED)
        has = flip >= 0
        ok = has & (n_errors == 1) & (flip == first_pos)
        out[ok] = OUTCOMES.index(Outcome.CORRECTED)
        out[has & ~ok] = OUTCOMES.index(Outcome.MISCORRECTED)
        return out, flip

    def describe(self) -> str:
        return f"{self.name}: {self.title} ({self.n},{self.k})"


_CODES: Registry[Code] = Registry("ECC code")

#: The name that means no ECC (not a code in the registry).
NONE = "none"


def register(code: Code) -> Code:
    """Make ``code`` known by its name (``--ecc``, ``inject_(..., ecc=)``, reports)."""
    if not isinstance(code, Code):
        raise TypeError(f"register expects a Code, got {code!r}")
    if code.name == NONE:
        raise ValueError(f"{NONE!r} is reserved: it means no ECC")
    return _CODES.add(code.name, code)


def code_names() -> tuple[str, ...]:
    """``none`` and the registered codes, in registration order (the CLI's choices)."""
    return (NONE, *_CODES)


def get_code(name) -> Code | None:
    """The registered code ``name`` (a :class:`Code` passes through); ``None``/``"none"`` -> None."""
    if name is None or isinstance(name, Code):
        return name
    if name == NONE:
        return None
    if isinstance(name, str) and name in _CODES:
        return _CODES[name]
    raise unknown_name("ECC code", name, code_names())
