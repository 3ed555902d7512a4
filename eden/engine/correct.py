"""Implausible-value correction of a flip log, written once for NumPy and CuPy arrays.

EDEN's correction: a corrupted float value is implausible when it is NaN, infinite or outside
the plausible range ``[low, high]``; ``zero`` replaces it by 0, ``clamp`` by the nearer end of
the range (NaN -> 0 clamped into the range). The log's mask of a corrected word becomes
original ^ corrected, so ``undo()`` still restores the original bits. The float view and the
replacement bits come from the storage format (:class:`eden.formats.base.FloatFormat`), so every
backend computes the same words.
"""

from __future__ import annotations

import numpy as np

from eden.core.validate import Mode
from eden.formats.base import FloatFormat


class CorrectionMode(Mode):
    """What happens to an implausible corrupted value; equal to (and printed as) its string."""

    NONE = "none"
    ZERO = "zero"
    CLAMP = "clamp"


def popcount(words) -> int:
    """Set bits in an array of unsigned words (NumPy)."""
    if len(words) == 0:
        return 0
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0
        return int(np.bitwise_count(words).sum(dtype=np.int64))
    return int(np.unpackbits(np.ascontiguousarray(words).view(np.uint8)).sum())


def correct_segments(xp, words, idx, mask, off, cnt, fmt: FloatFormat, mode: CorrectionMode,
                     low: np.float32, high: np.float32) -> tuple[int, int]:
    """Correct the logged words in place; ``xp`` is the arrays' module (NumPy or CuPy).

    Args:
        words, idx, mask, off, cnt: the tensor's words and the flip log (segments).
        fmt: the words' float format.
        mode: ``zero`` or ``clamp``.
        low, high: the plausible range as float32, within the format's finite range.

    Returns:
        (values corrected, bits the errors flipped minus bits that differ now).
    """
    to_host = getattr(xp, "asnumpy", np.asarray)
    ranges = [(int(o), int(c)) for o, c in zip(np.asarray(off).tolist(), np.asarray(cnt).tolist())]
    if not sum(c for _, c in ranges):
        return 0, 0
    # entry positions in the log arrays (for the mask update)
    pos = xp.concatenate([xp.arange(o, o + c, dtype=np.int64) for o, c in ranges])
    widx = idx[pos].astype(np.int64)
    cur = words[widx]
    bad = xp.nonzero(fmt.implausible(xp, fmt.to_float32(cur), low, high))[0]
    n_bad = int(bad.size)
    if n_bad == 0:
        return 0, 0
    # Replacement bits: 0, high, low and NaN's value, rounded into the format on the host.
    nan_to = min(max(np.float32(0), low), high)
    zero_bits, high_bits, low_bits, nan_bits = (
        int(b) for b in fmt.from_float32(np.array([0.0, high, low, nan_to], np.float32)))
    if mode == CorrectionMode.ZERO:
        new_bits = xp.full(n_bad, zero_bits, dtype=words.dtype)
    else:  # clamp: above the range (or +inf) -> high, below (or -inf) -> low, NaN -> nan_to
        v = fmt.to_float32(cur[bad])
        new_bits = xp.full(n_bad, low_bits, dtype=words.dtype)
        with np.errstate(invalid="ignore"):
            new_bits[v > high] = high_bits
        new_bits[xp.isnan(v)] = nan_bits
    old_bits = cur[bad]
    words[widx[bad]] = new_bits
    mpos = pos[bad]
    before = popcount(to_host(mask[mpos]))
    mask[mpos] = mask[mpos] ^ (old_bits ^ new_bits)
    return n_bad, before - popcount(to_host(mask[mpos]))
