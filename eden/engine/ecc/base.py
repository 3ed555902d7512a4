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

Symbol codes (chipkill-style) correct by symbol rather than by bit: ``symbols`` groups the ``n``
bits into equal symbols (a DRAM chip's bits of one codeword), and the decoder corrects every
non-zero error pattern within one symbol whose syndrome it finds in its table (a bit code is the
case of one-bit symbols). The same table serves both: syndrome -> (symbol, pattern) or none.
The layout says which bytes of the address space form one codeword (:class:`Layout`), as the
standard lays a codeword over the bus and its bursts.
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
    * chipkill-style SSC (144,128) on a x4 DIMM: one codeword per two 72-bit beats, 16
      consecutive bytes (``line_bytes=16``).
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
        on_die: the check bits are cells of each device's own array (on-die ECC), not extra
            devices of the rank on extra bus lanes (rank-level ECC): what the power model charges
            for them (:mod:`eden.power.ecc`).
        source: where the code and its matrix come from.
        symbols: the bit positions of each symbol (equal widths, every bit in exactly one); the
            decoder corrects any non-zero pattern within one symbol. ``None``: one-bit symbols
            (a SEC/SECDED bit code).
    """

    name: str
    title: str
    k: int
    columns: tuple[int, ...]
    layout: Layout
    signals_due: bool
    source: str
    symbols: tuple[tuple[int, ...], ...] | None = None
    on_die: bool = False

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
        if self.symbols is not None:
            widths = {len(s) for s in self.symbols}
            flat = sorted(b for s in self.symbols for b in s)
            if len(widths) != 1 or flat != list(range(n)) or not 1 <= min(widths) <= 16:
                raise ValueError(f"code {self.name}: symbols must be equal-width (1..16 bits) groups covering "
                                 f"each of the {n} bits once")
        # every correctable pattern must have its own syndrome (else the decoder is ambiguous)
        self._corrections  # noqa: B018  (raises ValueError)

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

    @property
    def symbol_bits(self) -> np.ndarray:
        """int64[S, w]: the bit positions of each of the ``S`` symbols of ``w`` bits (w = 1: a bit code)."""
        return self._corrections[3]

    @property
    def symbol_width(self) -> int:
        return int(self.symbol_bits.shape[1])

    @cached_property
    def syndrome_table(self) -> np.ndarray:
        """int64[2**r]: the bit a syndrome corrects, -1 for none (0 -> -1: nothing to do); bit codes."""
        if self.symbol_width != 1:
            raise ValueError(f"code {self.name} corrects symbols, not bits: use correction_table")
        t = np.full(1 << self.r, -1, np.int64)
        t[self.column_array] = np.arange(self.n)
        return t

    @cached_property
    def _corrections(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(table int64[2**r]: syndrome -> correctable pattern or -1, the patterns' symbols int64[E] and
        bit patterns int64[E] over the symbol's bits, symbol bits int64[S, w])."""
        if self.symbols is None:
            sb = np.arange(self.n, dtype=np.int64)[:, None]
        else:
            sb = np.array(self.symbols, np.int64)
        n_sym, w = sb.shape
        pats = np.arange(1, 1 << w, dtype=np.int64)
        grid = np.zeros((n_sym, pats.size), np.int64)
        cols = self.column_array[sb]  # (S, w)
        for j in range(w):
            grid ^= np.where(((pats >> j) & 1)[None, :] == 1, cols[:, j:j + 1], 0)
        syn = grid.reshape(-1)
        if np.unique(syn).size != syn.size or (syn == 0).any():
            raise ValueError(f"code {self.name}: two correctable patterns share a syndrome (or one is a codeword)")
        table = np.full(1 << self.r, -1, np.int64)
        table[syn] = np.arange(syn.size)
        return table, np.repeat(np.arange(n_sym, dtype=np.int64), pats.size), np.tile(pats, n_sym), sb

    @property
    def correction_table(self) -> np.ndarray:
        """int64[2**r]: syndrome -> index of the correctable error pattern (:meth:`correction_bits`), -1 none."""
        return self._corrections[0]

    def correction_bits(self, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, bit position) of every bit the corrections ``entry`` (int64[m], -1: none) flip."""
        _, esym, epat, sb = self._corrections
        rows = np.flatnonzero(entry >= 0)
        e = entry[rows]
        sel = ((epat[e][:, None] >> np.arange(sb.shape[1])) & 1).astype(bool)
        r, j = np.nonzero(sel)
        return rows[r], sb[esym[e][r], j]

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

    def decode(self, syndrome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode codewords from their syndromes (int64[m], the XOR of the columns of each codeword's
        erroneous bits).

        Returns:
            (outcome uint8[m] as indexes into :data:`OUTCOMES`, entry int64[m]: the correction the
            decoder applies (:meth:`correction_bits`), -1 for none). A codeword with a correction is
            marked ``CORRECTED`` here; the caller, which knows the raw pattern, turns it into
            ``MISCORRECTED`` when the correction is not exactly that pattern.
        """
        entry = self.correction_table[syndrome]
        entry[syndrome == 0] = -1
        out = np.full(syndrome.shape, OUTCOMES.index(Outcome.DETECTED), np.uint8)
        out[syndrome == 0] = OUTCOMES.index(Outcome.UNDETECTED)
        out[entry >= 0] = OUTCOMES.index(Outcome.CORRECTED)
        return out, entry

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
