"""``eden.engine.ops.finite_range``: the (min, max) of the finite values, by the order keys of the
words (serial and on numba's threads), equals the float reduction for every float dtype, with
infinities, NaNs, signed zeros and no finite value at all."""

from __future__ import annotations

import pytest
import torch

import eden.engine.ops as ops
from eden.engine.ops import finite_range


def _reference(t: torch.Tensor) -> tuple[float, float]:
    f = t[torch.isfinite(t)].double()
    return (0.0, 0.0) if f.numel() == 0 else (float(f.min()), float(f.max()))


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_finite_range_equals_the_float_reduction(dtype, threads, monkeypatch):
    if threads:  # every call on numba's threads, whatever the size and load
        monkeypatch.setattr(ops, "_MINMAX_PARALLEL_MIN", 0)
        monkeypatch.setattr(ops, "_MINMAX_PARALLEL_ALWAYS", 0)
    g = torch.Generator().manual_seed(3)
    for trial in range(150):
        n = int(torch.randint(1, 5000, (1,), generator=g))
        x = (torch.randn(n, generator=g) * 10.0 ** float(torch.randint(-4, 5, (1,), generator=g))).to(dtype)
        if trial % 5 == 1:
            x[torch.randint(0, n, (3,), generator=g)] = float("inf")
        if trial % 5 == 2:
            x[torch.randint(0, n, (3,), generator=g)] = float("-inf")
        if trial % 5 == 3:
            x[torch.randint(0, n, (2,), generator=g)] = float("nan")
        if trial % 7 == 0:
            x = x.abs() if trial % 2 else -x.abs()  # one sign only
        got = finite_range(x)
        assert got == _reference(x), (trial, got, _reference(x))
    assert finite_range(torch.tensor([float("nan"), float("inf")], dtype=dtype)) == (0.0, 0.0)
    lo, hi = finite_range(torch.tensor([-0.0, 0.0, -0.0], dtype=dtype))
    assert lo == 0.0 and hi == 0.0
    big = torch.tensor([-3.0e38, 3.0e38], dtype=torch.float32).to(dtype) if dtype != torch.float16 else \
        torch.tensor([-65504.0, 65504.0], dtype=dtype)  # the largest finite values
    assert finite_range(big) == _reference(big)


def test_finite_range_non_contiguous_and_numpy_inputs():
    x = torch.randn(64, 33)
    assert finite_range(x.t()) == _reference(x)
    assert finite_range(x.numpy()) == _reference(x)
    assert finite_range(torch.zeros(0)) == (0.0, 0.0)
