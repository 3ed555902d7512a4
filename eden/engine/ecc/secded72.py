"""SECDED (72,64): the Hsiao odd-weight-column code of ECC DIMMs (one codeword per 72-bit beat).

Hsiao's construction (IBM J. Res. Dev. 14(4), 1970): every column of H has odd weight, so a
single error has an odd-weight syndrome and a double error a non-zero even-weight one, which
matches no column: doubles are always detected. The 64 data columns are the 56 columns of
weight 3 (in increasing order) and the 8 cyclic shifts of ``0b00011111`` (weight 5), which
gives every check row the same weight (26): the balanced matrix Hsiao recommends. Triple
errors are detected unless their syndrome happens to be a column (then miscorrected, a fourth
bit flips): the share is fixed by this matrix, and tests count it exactly.
"""

from __future__ import annotations

from eden.engine.ecc.base import Code, Layout, register

_WEIGHT3 = tuple(c for c in range(256) if bin(c).count("1") == 3)
_WEIGHT5 = tuple(((0b00011111 << s) | (0b00011111 >> (8 - s))) & 0xFF for s in range(8))

CODE = register(Code(
    name="secded72",
    title="SECDED Hsiao (72,64), rank-level, one codeword per 64-bit beat",
    k=64,
    columns=_WEIGHT3 + _WEIGHT5 + tuple(1 << j for j in range(8)),
    layout=Layout(line_bytes=8),
    signals_due=True,
    source="M. Y. Hsiao, A class of optimal minimum odd-weight-column SEC-DED codes, IBM J. Res. Dev. 1970",
))
