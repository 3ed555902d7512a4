"""numba version of two-level persistence's per-cell draw (``eden/engine/twolevel.py``, whose NumPy
``fails`` is the specification): the kept bits of (word index, xor mask) entries of a weak map, one
Philox draw per set bit, bit-identical to the NumPy path (tested). Module-level for numba's disk cache."""

from __future__ import annotations

import numba as nb
import numpy as np

from eden.engine.backends._cpu_kernels import philox, u53

_LO32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@nb.njit(cache=True, nogil=True)
def kept_bits(idx, mask, word_bits, base_bits, k0, k1, threshold, kept):
    """``kept[e]``: the bits of ``mask[e]`` (uint64) whose cell at global bit address
    ``base_bits + idx[e] * word_bits + bit`` fails (53-bit draw below ``threshold``)."""
    z = np.uint32(0)
    for e in range(idx.size):
        m = mask[e]
        out = np.uint64(0)
        while m != 0:
            low = m & (~m + np.uint64(1))
            b = np.uint64(0)
            t = low
            while t > np.uint64(1):
                t >>= np.uint64(1)
                b += np.uint64(1)
            a = base_bits + np.uint64(idx[e]) * word_bits + b
            w0, w1, _, _ = philox(np.uint32(a & _LO32), np.uint32(a >> _S32), z, z, k0, k1)
            if u53(w0, w1) < threshold:
                out |= low
            m ^= low
        kept[e] = out
