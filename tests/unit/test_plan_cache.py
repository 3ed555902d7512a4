"""Cached plans (``eden.engine.plan.cached_plan``) give the bits of fresh ones, for every access.

A ``CompiledPlan`` is compiled once per placement and only recomputes the per-access
Philox keys; these tests compare it with ``compile_plan`` field by field and by the
injected bits (oracle and numba), for access counters 0..K, error models with weak lines
(em1 bitlines, em2 wordlines), data-dependent acceptance (em3), fixed persistence, and
several storage formats.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from eden import AddressMap, DramOrganization, ErrorModel
from eden.engine.backends import cpu, reference
from eden.engine.contract import host_read_log
from eden.engine.plan import cached_plan, compile_plan
from eden.formats import format_of

K = 6  # access counters 0..K
MAP = AddressMap(DramOrganization(banks=4, rows=512, row_bytes=1024, subarray_rows=64))
SPECS = [
    "em0:p=1e-3",
    "em0:p=0.02",  # table method
    "em1:fraction=0.05,p=0.05,p_else=1e-4",
    "em2:fraction=0.25,p=1e-2,p_else=1e-4",
    "em3:p10=1e-2,p01=1e-4",
    "em1:fraction=0.02,p=0.05+em0:p=1e-4+em3:p10=1e-3,p01=1e-5+em2:fraction=0.2,p=3e-3",
    "em0:p=1e-5+em2:fraction=0.3,p=1e-3,p_else=1e-6",  # stream groups of several tiles
]
PERSISTENCE = {"access": "", "fixed": ";persistence=fixed"}
DTYPES = [np.float32, np.float16, np.int8]


def _fields_equal(a, b) -> None:
    for f in dataclasses.fields(a):
        if not f.compare:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def _data(dtype, n, seed):
    return np.random.default_rng(seed).integers(0, 256, n * np.dtype(dtype).itemsize, dtype=np.uint8).view(dtype)


@pytest.mark.parametrize("persistence", list(PERSISTENCE))
@pytest.mark.parametrize("spec", SPECS)
def test_cached_plan_equals_fresh_plan(spec, persistence):
    model = ErrorModel.from_spec(spec + PERSISTENCE[persistence])
    kw = dict(word_bits=32, nbytes=3 * 1024 + 400, seed=5, base_address=2 * 1024 + 12, address_map=MAP)
    cp = cached_plan(model, weak_lines=cpu, **kw)
    assert cp is cached_plan(model, weak_lines=cpu, **kw)  # compiled once
    assert cp.per_access == (persistence == "access")
    # out of order and repeated: the memo of the last access must not leak into another
    for access in [0, 1, 2, 3, 4, 5, K, 2, 2, 0]:
        _fields_equal(cp.at(access), compile_plan(model, access=access, **kw))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("persistence", list(PERSISTENCE))
@pytest.mark.parametrize("spec", SPECS)
def test_cached_plan_gives_the_same_bits(spec, persistence, dtype):
    model = ErrorModel.from_spec(spec + PERSISTENCE[persistence])
    fmt = format_of(np.dtype(dtype))
    clean = _data(fmt.word, 4096 // np.dtype(dtype).itemsize * 5 + 3, 1)
    base = 1024 * 3 + 4 * 3
    kw = dict(word_bits=fmt.word_bits, nbytes=clean.nbytes, seed=9, base_address=base, address_map=MAP)
    cp = cached_plan(model, weak_lines=cpu, **kw)
    for access in range(K + 1):
        ri, rm = reference.sample_flips(compile_plan(model, access=access, **kw), clean)
        ref = clean.copy()
        ref[ri] ^= rm
        for plan in (cp.at(access), cp.at(access)):  # the second: the memoized plan and launch
            got = clean.copy()
            gi, gm = host_read_log(*cpu.inject(plan, got))
            assert np.array_equal(gi, ri) and np.array_equal(gm, rm)
            assert np.array_equal(got, ref)


def test_inject_uses_the_cache_and_matches_fresh_plans():
    """The public op (cached plans) against a fresh plan per access, on the oracle."""
    import eden

    model = ErrorModel.from_spec("em2:fraction=0.25,p=1e-2,p_else=1e-4+em3:p10=1e-2,p01=1e-4")
    clean = _data(np.float32, 3000, 2)
    for access in range(K + 1):
        x = clean.copy()
        log = eden.inject_(x, model, 4, access=access, base_address=2048, address_map=MAP, backend="cpu")
        ref = clean.copy()
        ri, rm = reference.sample_flips(compile_plan(model, word_bits=32, nbytes=clean.nbytes, seed=4,
                                                     access=access, base_address=2048, address_map=MAP),
                                        ref.view(np.uint32))
        ref.view(np.uint32)[ri] ^= rm
        assert np.array_equal(x.view(np.uint32), ref.view(np.uint32))
        log.undo()
        assert np.array_equal(x.view(np.uint32), clean.view(np.uint32))
