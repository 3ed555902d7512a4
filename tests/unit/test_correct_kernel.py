"""The CPU backend's compiled correction equals ``correct.correct_segments`` (NumPy) exactly."""

from __future__ import annotations

import numpy as np
import pytest

from eden.engine.backends import cpu
from eden.engine.correct import CorrectionMode, correct_segments
from eden.formats import get_format


@pytest.mark.parametrize("mode", [CorrectionMode.ZERO, CorrectionMode.CLAMP])
@pytest.mark.parametrize("name", ["fp32", "bf16", "fp16"])
def test_compiled_correction_equals_numpy(name, mode):
    fmt = get_format(name)
    rng = np.random.default_rng(3)
    n = 5000
    clean = fmt.from_float32(rng.normal(0.0, 2.0, n).astype(np.float32))
    idx = np.sort(rng.choice(n, 700, replace=False)).astype(np.int32)
    wb = fmt.word.itemsize * 8
    # flips anywhere, so NaN, infinities, huge and tiny values all occur
    mask = (np.uint64(1) << rng.integers(0, wb, len(idx)).astype(np.uint64)).astype(fmt.word)
    mask |= (np.uint64(1) << rng.integers(0, wb, len(idx)).astype(np.uint64)).astype(fmt.word)
    mask[::7] = fmt.word.type(np.iinfo(fmt.word).max >> 1) ^ clean[idx[::7]]  # -> NaN/inf patterns
    mask[mask == 0] = 1
    off = np.array([0, 300], np.int64)
    cnt = np.array([300, len(idx) - 300], np.int64)
    for low, high in ((-3.0, 4.0), (0.0, 0.0), (-1e-3, 65504.0)):
        lo, hi = fmt.plausible_bounds(low, high)
        results = []
        for fn in (cpu.correct, lambda *a: correct_segments(np, *a)):
            words = clean.copy()
            words[idx] ^= mask
            m = mask.copy()
            counts = fn(words, idx, m, off, cnt, fmt, mode, lo, hi)
            results.append((words, m, tuple(int(c) for c in counts)))
        (w1, m1, c1), (w2, m2, c2) = results
        assert c1 == c2 and c1[0] > 0
        assert np.array_equal(w1, w2) and np.array_equal(m1, m2)
        # undo still restores the clean words
        w1[idx] ^= m1
        assert np.array_equal(w1, clean)
