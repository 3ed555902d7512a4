"""On-die SEC (136,128) of DDR5/LPDDR5 devices: 8 check bits per 128 data bits, single-error
correction only, invisible to the memory controller.

JESD79-5 fixes the code's shape (128 data + 8 parity bits per device burst) but vendors choose
the matrix, and the standard's decoder does not report uncorrectable errors. This is a
shortened Hamming code of that shape: the 128 data columns are the distinct 8-bit values of
weight 2, then 3, then the smallest 44 of weight 4 (increasing order), the check columns the unit
vectors. Any SEC code of this shape corrects every single error; what the matrix decides is the
share of double errors the decoder "corrects" into triples (a double's syndrome, the XOR of two
columns, is another column). Tests count that share exactly for this matrix.

Layout: a x8 device on a 32-bit DDR5 sub-channel holds one byte of every 4-byte beat, and its
16-beat burst is one codeword, so the 4 codewords of a 64-byte line interleave byte by byte.
"""

from __future__ import annotations

from eden.engine.ecc.base import Code, Layout, register

_DATA = tuple(sorted((c for c in range(256) if bin(c).count("1") in (2, 3, 4)),
                     key=lambda c: (bin(c).count("1"), c))[:128])

CODE = register(Code(
    name="ondie136",
    title="on-die SEC (136,128), DDR5/LPDDR5-style, silent on uncorrectable errors",
    k=128,
    columns=_DATA + tuple(1 << j for j in range(8)),
    layout=Layout(line_bytes=64),
    signals_due=False,
    on_die=True,
    source="JESD79-5 (DDR5) on-die ECC shape; matrix: a shortened Hamming code (vendors' matrices differ)",
))
