"""``eden.engine.group.InjectorGroup``: one engine call for several tensors gives each tensor the
bits, log and correction counts of its own ``Injector``, for every access."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eden import ErrorModel
from eden.engine.group import InjectorGroup
from eden.engine.ops import Injector
from eden.formats import format_of

CASES = [  # (spec, torch dtype, elements, correction)
    ("em0:p=1e-5", torch.float32, 300_000, "zero"),
    ("em0:p=1e-3", torch.float32, 70_000, "none"),
    ("em0:p=0.02", torch.float16, 20_000, "clamp"),
    ("em3:p10=1e-3,p01=1e-5;persistence=fixed", torch.bfloat16, 90_000, "zero"),
    ("em1:fraction=0.02,p=0.05+em0:p=1e-5+em2:fraction=0.2,p=1e-3,p_else=1e-6", torch.int8, 400_000, "none"),
    ("em2:fraction=0.3,p=1e-3,p_else=1e-6", torch.float32, 5, "none"),  # smaller than a row
    ("em0:p=0.0", torch.float32, 1000, "none"),  # no sub-pass at all
]


def _tensor(dtype, n, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.int8:
        return torch.randint(-128, 128, (n,), generator=g, dtype=torch.int8)
    return (torch.randn(n, generator=g) * 2).to(dtype)


def _injectors(cases, seed=3):
    out, base = [], 8192 * 5 + 64
    for spec, dtype, n, mode in cases:
        fmt = format_of(dtype)
        nbytes = n * torch.empty(0, dtype=dtype).element_size()
        out.append(Injector(ErrorModel.from_spec(spec), fmt, nbytes, seed=seed, base_address=base, correction=mode,
                            backend="cpu"))
        base += (nbytes + 8191) // 8192 * 8192 + 8192 * 3 + 128
    return out


def _bits(t):
    return t.view(torch.uint8).numpy().copy()


def _plausible(case, t):
    return (float(t.min()), float(t.max())) if case[3] != "none" else None


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_group_equals_each_injector(backend):
    injs = _injectors(CASES)
    if backend == "reference":  # a group of non-numba injectors: called one by one, same bits
        injs = [Injector(i.model, i.format, i.nbytes, seed=i.seed, base_address=i.base_address,
                         correction=i.correction, backend="reference") for i in injs]
    group = InjectorGroup(injs)
    assert len(group) == len(CASES)
    xs = [_tensor(c[1], c[2], s) for s, c in enumerate(CASES)]
    ys = [x.clone() for x in xs]
    clean = [_bits(x) for x in xs]
    flipped = 0
    for access in (0, 1, 2, 1, 7):
        ranges = [_plausible(c, x) for c, x in zip(CASES, xs)]
        logs = group(xs, [inj.words(x) for inj, x in zip(injs, xs)], access, ranges)
        for inj, y, r in zip(injs, ys, ranges):
            ref = inj(y, inj.words(y), access, r)
            got = logs[injs.index(inj)]
            assert np.array_equal(_bits(xs[injs.index(inj)]), _bits(y))
            gi, gm = got.word_flips()
            ri, rm = ref.word_flips()
            assert np.array_equal(gi, ri) and np.array_equal(gm, rm)
            assert (got.n_bits, got.n_error_bits, got.n_corrected) == (ref.n_bits, ref.n_error_bits, ref.n_corrected)
            assert got.access == access and got.backend == inj.backend
            flipped += got.n_bits
            ref.undo()
        for log in logs:
            log.undo()
        for x, c in zip(xs, clean):
            assert np.array_equal(_bits(x), c)
    assert flipped > 1000


def test_group_log_overflow_falls_back_to_the_injector(monkeypatch):
    """A tensor whose log would not fit its share of the buffer is left untouched by the fused
    call and injected by its Injector: the same bits."""
    injs = _injectors(CASES[:3])
    group = InjectorGroup(injs)
    b = group._buckets[0]
    b.out_off[1:] = np.arange(1, len(b.out_off)) * 2  # room for 2 entries per tensor
    xs = [_tensor(c[1], c[2], s) for s, c in enumerate(CASES[:3])]
    ys = [x.clone() for x in xs]
    ranges = [_plausible(c, x) for c, x in zip(CASES[:3], xs)]
    logs = group(xs, [inj.words(x) for inj, x in zip(injs, xs)], 4, ranges)
    for inj, x, y, r, log in zip(injs, xs, ys, ranges, logs):
        ref = inj(y, inj.words(y), 4, r)
        assert np.array_equal(_bits(x), _bits(y)) and log.n_bits == ref.n_bits > 0
