"""Counter-based randomness shared bit-for-bit by every backend.

Contract (the NumPy code here is the specification; ``_numba.py`` and
``cuda/inject.cu`` transliterate it):

* ``philox4x32_10(c0, c1, c2, c3, k0, k1)``: the Random123 Philox4x32 generator
  with 10 rounds. Pure 32-bit integer arithmetic, hence identical everywhere.
* A *53-bit draw* from two 32-bit words ``(a, b)`` is ``(a << 21) ^ (b >> 11)``,
  an integer in ``[0, 2**53)``.
* ``ln_u53(x)`` is ``ln((x + 1) / 2**53)``, evaluated with a table-driven
  logarithm built only from IEEE-754 ``+ - * /`` on doubles, each rounded
  separately (no fused multiply-add), so NumPy, numba and CUDA (``__dmul_rn``
  and friends) produce the same bits. Relative error < 5e-16.
* Keys are derived on the host with SplitMix64 from Python integers.
"""

from __future__ import annotations

import math

import numpy as np

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

LN2 = 0.6931471805599453
#: ln(2**53), the offset that turns ln(x + 1) into ln((x + 1) / 2**53).
LN_2_53 = 53.0 * LN2
LOG_TABLE_BITS = 8
LOG_TABLE_SIZE = 1 << LOG_TABLE_BITS


def _log_tables() -> tuple[np.ndarray, np.ndarray]:
    """ln(c_i) and 1/c_i for the 256 cell centres c_i = 1 + (i + 0.5)/256."""
    centres = [1.0 + (i + 0.5) / LOG_TABLE_SIZE for i in range(LOG_TABLE_SIZE)]
    ln_c = np.array([math.log(c) for c in centres], dtype=np.float64)
    inv_c = np.array([1.0 / c for c in centres], dtype=np.float64)
    return ln_c, inv_c


LOG_LN_C, LOG_INV_C = _log_tables()


def splitmix64(x: int) -> int:
    """One SplitMix64 step: a bijective 64-bit mixer."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def derive_key(*parts: int) -> tuple[int, int]:
    """Philox key (k0, k1) from a path of non-negative integers (seed, tags...)."""
    h = 0x6A09E667F3BCC908
    for p in parts:
        if p < 0:
            raise ValueError(f"key parts must be non-negative, got {p}")
        # Fold arbitrarily large integers 64 bits at a time.
        while True:
            h = splitmix64(h ^ (p & MASK64))
            p >>= 64
            if p == 0:
                break
    return h & MASK32, (h >> 32) & MASK32


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Vectorized Philox4x32-10. All inputs broadcast; returns four uint32 arrays."""
    c0 = np.asarray(c0, dtype=np.uint64) & MASK32
    c1 = np.asarray(c1, dtype=np.uint64) & MASK32
    c2 = np.asarray(c2, dtype=np.uint64) & MASK32
    c3 = np.asarray(c3, dtype=np.uint64) & MASK32
    k0 = np.asarray(k0, dtype=np.uint64) & MASK32
    k1 = np.asarray(k1, dtype=np.uint64) & MASK32
    m0 = np.uint64(PHILOX_M0)
    m1 = np.uint64(PHILOX_M1)
    s32 = np.uint64(32)
    lo = np.uint64(MASK32)
    for _ in range(PHILOX_ROUNDS):
        p0 = c0 * m0
        p1 = c2 * m1
        n0 = (p1 >> s32) ^ c1 ^ k0
        n1 = p1 & lo
        n2 = (p0 >> s32) ^ c3 ^ k1
        n3 = p0 & lo
        c0, c1, c2, c3 = n0, n1, n2, n3
        k0 = (k0 + np.uint64(PHILOX_W0)) & lo
        k1 = (k1 + np.uint64(PHILOX_W1)) & lo
    return (c0.astype(np.uint32), c1.astype(np.uint32),
            c2.astype(np.uint32), c3.astype(np.uint32))


def u53(a, b):
    """53-bit integer draw from two uint32 words (uint64 array)."""
    a = np.asarray(a, dtype=np.uint64)
    b = np.asarray(b, dtype=np.uint64)
    return (a << np.uint64(21)) ^ (b >> np.uint64(11))


def ln_u53(x):
    """ln((x + 1) / 2**53) for 53-bit integers x, bit-identical to the kernels.

    Steps (each one IEEE-rounded on its own):
      1. y = float(x + 1), exact because x + 1 <= 2**53.
      2. y = m * 2**e with m in [1, 2) (frexp is exact).
      3. i = floor((m - 1) * 256); r = (m - c_i) * (1 / c_i), |r| < 2**-9.
      4. ln(1 + r) by the degree-5 series r - r^2/2 + r^3/3 - r^4/4 + r^5/5 (Horner).
      5. ln y = (e * ln2 + ln c_i) + series; subtract ln(2**53).
    """
    y = np.asarray(x, dtype=np.uint64).astype(np.float64) + 1.0
    m, e = np.frexp(y)
    m = m * 2.0
    e = (e - 1).astype(np.float64)
    i = ((m - 1.0) * 256.0).astype(np.int64)
    c = 1.0 + (i.astype(np.float64) + 0.5) / 256.0
    r = (m - c) * LOG_INV_C[i]
    p = r * 0.2
    p = -0.25 + p
    p = r * p
    p = (1.0 / 3.0) + p
    p = r * p
    p = -0.5 + p
    p = r * p
    p = 1.0 + p
    p = r * p
    out = e * LN2
    out = out + LOG_LN_C[i]
    out = out + p
    return out - LN_2_53
