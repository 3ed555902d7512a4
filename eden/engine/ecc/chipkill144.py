"""Chipkill-style SSC (144,128): a Reed-Solomon single-symbol-correcting code over GF(2^8) on a
x4 ECC DIMM (18 devices: 16 data, 2 check), one codeword per two 72-bit beats.

Code: the shortened RS code of 18 symbols of 8 bits (16 data, 2 check) with parity-check matrix
over GF(2^8) (primitive polynomial x^8 + x^4 + x^3 + x^2 + 1, alpha = x)::

    H = [ 1    1      1    ...  1       ]
        [ 1  alpha alpha^2 ... alpha^17 ]

Its minimum distance is 3 (any two columns are independent), so it corrects every error within
one symbol: S0 = e, S1 = alpha^i e locate symbol i and its pattern e. Two erroneous symbols are
never confused with no error; they are *detected* when their syndrome matches no single-symbol
error, and *miscorrected* (a third symbol changes) when it does: the code detects no multi-symbol
error with certainty (it is SSC, not SSC-DSD). The share of doubles it miscorrects is fixed by H
and counted exactly in the tests.

eden uses the code's binary image (144 bits, 16 check bits: column of bit b of symbol i =
(2^b, alpha^i * 2^b)), brought into systematic form by a row transformation (the check bits'
columns become the unit vectors; the code, and which patterns it corrects, do not change).

Layout (the classic x4 chipkill of AMD's DDR3/DDR4 controllers): each x4 device drives 4 lanes of
the 72-bit bus; over two beats it delivers 8 bits, one symbol. A codeword is two beats: 16
consecutive data bytes. Byte ``b`` of beat ``t`` holds the nibbles of devices ``2b`` (low) and
``2b + 1`` (high), so data symbol ``d`` (device d) is bits ``4(d % 2) .. +3`` of bytes ``d // 2``
(beat 0, symbol bits 0-3) and ``8 + d // 2`` (beat 1, symbol bits 4-7). The check symbols (devices
16, 17) are check bits 0-7 and 8-15. A failed device corrupts one symbol: always corrected.
"""

from __future__ import annotations

from eden.engine.ecc.base import Code, Layout, register

_POLY = 0x11D  # x^8 + x^4 + x^3 + x^2 + 1


def gf_mul(a: int, b: int) -> int:
    """Product in GF(2^8) modulo :data:`_POLY`."""
    p = 0
    while b:
        if b & 1:
            p ^= a
        a <<= 1
        if a & 0x100:
            a ^= _POLY
        b >>= 1
    return p


def gf_pow(a: int, e: int) -> int:
    r = 1
    for _ in range(e):
        r = gf_mul(r, a)
    return r


N_SYMBOLS, K_SYMBOLS = 18, 16


def rs_columns() -> list[int]:
    """The binary image of H, not systematic: column of bit ``b`` of symbol ``i`` as a 16-bit integer
    (S0 in bits 0-7, S1 in bits 8-15); symbols in order, 8 bits each."""
    return [(1 << b) | (gf_mul(gf_pow(2, i), 1 << b) << 8) for i in range(N_SYMBOLS) for b in range(8)]


def _systematic(cols: list[int], r: int) -> list[int]:
    """M @ cols with M the GF(2) inverse of the last ``r`` columns (they become the unit vectors)."""
    check = cols[-r:]
    # invert the r x r matrix whose column j is check[j]: Gauss-Jordan on rows [A | I]
    rows = [sum(((check[j] >> i) & 1) << j for j in range(r)) | (1 << (r + i)) for i in range(r)]
    for c in range(r):
        piv = next(i for i in range(c, r) if (rows[i] >> c) & 1)
        rows[c], rows[piv] = rows[piv], rows[c]
        for i in range(r):
            if i != c and (rows[i] >> c) & 1:
                rows[i] ^= rows[c]
    inv_rows = [row >> r for row in rows]  # row i of M as bits over the original syndrome's bits

    def apply(col: int) -> int:
        return sum((bin(inv_rows[i] & col).count("1") & 1) << i for i in range(r))

    return [apply(c) for c in cols]


def _symbols() -> tuple[tuple[int, ...], ...]:
    data = tuple(tuple(8 * (8 * t + d // 2) + 4 * (d % 2) + q for t in (0, 1) for q in range(4))
                 for d in range(K_SYMBOLS))
    check = tuple(tuple(128 + 8 * c + j for j in range(8)) for c in range(N_SYMBOLS - K_SYMBOLS))
    return data + check


def _columns() -> tuple[int, ...]:
    """Systematic binary H, in eden's bit order (data bits 0..127 by byte, then the 16 check bits)."""
    by_symbol_bit = _systematic(rs_columns(), 16)
    cols = [0] * 144
    for s, bits in enumerate(_symbols()):
        for j, pos in enumerate(bits):
            cols[pos] = by_symbol_bit[8 * s + j]
    return tuple(cols)


CODE = register(Code(
    name="chipkill144",
    title="chipkill-style SSC (144,128), RS over GF(2^8), one 8-bit symbol per x4 device over two beats",
    k=128,
    columns=_columns(),
    layout=Layout(line_bytes=16),
    signals_due=True,
    source="Reed-Solomon SSC over GF(2^8), 18 symbols (16 data + 2 check) on 18 x4 devices, two beats per "
           "codeword: the x4 chipkill of AMD's DDR3/DDR4 memory controllers (AMD BKDG for Family 15h; "
           "J. Kim, M. Sullivan, M. Erez, Bamboo ECC, HPCA 2015)",
    symbols=_symbols(),
))
