"""``eden.engine.lean``: one compiled call per injection gives the bits and the log of its
``Injector`` for every access; its numba key derivation equals ``rng.derive_key``; it applies
only where the Injector's path is fixed (cpu, no correction, no ECC, a serial-size job)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eden import ErrorModel
from eden.engine import rng
from eden.engine.backends import cpu
from eden.engine.lean import LeanInjection, lean_group, lean_injection
from eden.engine.ops import Injector
from eden.engine.sampling import TAG_ACCESS
from eden.formats import format_of

CASES = [  # (spec, torch dtype, elements)
    ("em0:p=1e-6", torch.float32, 8 * 64 * 56 * 56),
    ("em0:p=1e-4", torch.float32, 200_000),
    ("em0:p=0.02", torch.float16, 20_000),
    ("em0:p=1e-3;persistence=fixed", torch.float32, 70_000),
    ("em1:fraction=0.02,p=0.05", torch.bfloat16, 90_000),
    ("em2:fraction=0.3,p=1e-3,p_else=1e-6", torch.float32, 150_000),
    ("em3:p10=1e-3,p01=1e-5", torch.float16, 120_000),
    ("em3:p10=1e-3,p01=1e-5;persistence=fixed", torch.bfloat16, 90_000),
    ("em1:fraction=0.02,p=0.05+em0:p=1e-5+em2:fraction=0.2,p=1e-3,p_else=1e-6", torch.float32, 100_000),
    ("em2:fraction=0.5,p=0.05,p_else=0.01", torch.float32, 5),  # smaller than a row
    ("em0:p=0.0", torch.float32, 1000),  # no sub-pass at all
]


def _tensor(dtype, n, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g) * 2).to(dtype)


def _bits(t):
    return t.view(torch.uint8).numpy().copy()


def _injector(spec, dtype, n, seed=11, base=8192 * 7 + 256, **kw):
    nbytes = n * torch.empty(0, dtype=dtype).element_size()
    return Injector(ErrorModel.from_spec(spec), format_of(dtype), nbytes, seed=seed, base_address=base,
                    backend="cpu", **kw)


def test_access_keys_equal_derive_key():
    k = cpu.kernels()
    r = np.random.default_rng(5)
    parts = np.array([[0, 0], [0, 1], [2, 0], [7, 3], [40, 9]], np.int64)
    out = np.zeros((len(parts), 2), np.uint32)
    for t in range(3000):
        seed = int(r.integers(0, 2**63)) if t % 3 else int(r.integers(0, 1000))
        access = int(r.integers(0, 2**63)) if t % 2 else int(r.integers(0, 1000))
        h = rng.splitmix64(0x6A09E667F3BCC908 ^ seed)
        k.access_keys(np.uint64(h), access, parts, TAG_ACCESS, out)
        want = [rng.derive_key(seed, access, ci, pi, TAG_ACCESS) for ci, pi in parts.tolist()]
        assert [tuple(row) for row in out.tolist()] == want, (seed, access)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_lean_equals_injector(case):
    spec, dtype, n = case
    inj = _injector(spec, dtype, n)
    lean = lean_injection(inj)
    assert isinstance(lean, LeanInjection)
    x = _tensor(dtype, n, 1)
    y = x.clone()
    clean = _bits(x)
    flipped = 0
    for access in (0, 1, 2, 1, 7, 2**40 + 3, *range(20, 36)):
        bits = lean(x.data_ptr(), access)
        ref = inj(y, inj.words(y), access)
        assert np.array_equal(_bits(x), _bits(y))
        gi, gm = lean.entries()
        ri, rm = ref.word_flips()
        assert np.array_equal(gi, ri) and np.array_equal(gm, rm)
        assert bits == ref.n_bits and lean.total_bits == ref.total_bits
        flipped += bits
        assert lean(x.data_ptr(), access + 1) is None  # its log is outstanding
        lean.undo()
        ref.undo()
        assert np.array_equal(_bits(x), clean) and np.array_equal(_bits(y), clean)
        with pytest.raises(RuntimeError):
            lean.undo()
    if "p=0.0" not in spec:
        assert flipped > 0  # the comparison saw flips


def test_lean_log_overflow_leaves_words_untouched():
    inj = _injector("em0:p=1e-3", torch.float32, 50_000)
    lean = lean_injection(inj)
    assert lean is not None
    k = cpu.kernels()
    lean._hdr[k.PK_CAP] = 3  # room for 3 entries, ~1600 expected
    x = _tensor(torch.float32, 50_000, 2)
    clean = _bits(x)
    assert lean(x.data_ptr(), 4) is None
    assert np.array_equal(_bits(x), clean)


CORRECT_CASES = [  # (spec, dtype, elements, correction, range): exponent flips make most values implausible
    ("em0:p=1e-3", torch.float32, 60_000, "zero", (-1.5, 1.5)),
    ("em0:p=1e-3", torch.float32, 60_000, "clamp", (-1.5, 1.5)),
    ("em0:p=2e-3", torch.bfloat16, 40_000, "clamp", (-0.7, 2.5)),
    ("em2:fraction=0.3,p=1e-2,p_else=1e-5", torch.bfloat16, 50_000, "zero", (-3.0, 3.0)),
    ("em0:p=1e-3", torch.float32, 30_000, "clamp", (-1e39, 1e39)),  # pulled in to the largest finite value
]


@pytest.mark.parametrize("case", CORRECT_CASES, ids=[f"{c[0]}-{c[1]}-{c[3]}" for c in CORRECT_CASES])
def test_lean_with_correction_equals_injector(case):
    """The packed inject + correct call: the words, the corrected log, the bits and the count of
    corrected values of the Injector, for several accesses and two ranges (the memoized
    replacement words follow the range)."""
    spec, dtype, n, mode, rng_ = case
    inj = _injector(spec, dtype, n, correction=mode)
    lean = lean_injection(inj)
    assert isinstance(lean, LeanInjection)
    x = _tensor(dtype, n, 3)
    y = x.clone()
    clean = _bits(x)
    corrected = 0
    for access, plausible in [(0, rng_), (1, rng_), (5, (rng_[0] / 2, rng_[1] / 3)), (5, rng_), (2**33, rng_)]:
        bits = lean(x.data_ptr(), access, plausible)
        ref = inj(y, inj.words(y), access, plausible)
        assert np.array_equal(_bits(x), _bits(y))
        gi, gm = lean.entries()
        ri, rm = ref.word_flips()
        assert np.array_equal(gi, ri) and np.array_equal(gm, rm)
        assert bits == ref.n_bits and lean.n_corrected == ref.n_corrected
        corrected += lean.n_corrected
        lean.undo()
        ref.undo()
        assert np.array_equal(_bits(x), clean) and np.array_equal(_bits(y), clean)
    assert corrected > 0  # the correction ran


def test_lean_applies_only_where_the_path_is_fixed():
    assert lean_injection(_injector("em0:p=1e-4", torch.float32, 1000)) is not None
    assert lean_injection(_injector("em0:p=1e-4", torch.float32, 1000, correction="zero")) is not None
    assert lean_injection(_injector("em0:p=1e-4", torch.float16, 1000, correction="zero")) is None  # NumPy's
    assert lean_injection(_injector("em0:p=1e-4", torch.float32, 1000, ecc="secded72")) is None
    ref = Injector(ErrorModel.from_spec("em0:p=1e-4"), format_of(torch.float32), 4000, seed=1, base_address=0,
                   backend="reference")
    assert lean_injection(ref) is None
    big = _injector("em0:p=1e-2", torch.float32, 1 << 22)  # ~1.3 M candidates: a parallel-size job
    assert cpu._work_ns(big.compiled.plan) >= cpu._PARALLEL_MIN_NS
    assert lean_injection(big) is None


GROUP_SPECS = ["em0:p=1e-4", "em1:fraction=0.02,p=0.05+em0:p=1e-5", "em3:p10=1e-3,p01=1e-5;persistence=fixed"]


@pytest.mark.parametrize("spec", GROUP_SPECS)
def test_lean_group_same_bits_and_logs_as_each_injector(spec):
    """One packed call for several tensors: per tensor, the words and the log of its Injector,
    for several accesses; the undo restores every tensor exactly."""
    sizes = [70_000, 5, 123_457, 8 * 8192]
    injs = [_injector(spec, torch.float32, n, seed=100 + j, base=j * (1 << 20)) for j, n in enumerate(sizes)]
    group = lean_group(injs)
    assert group is not None
    xs = [_tensor(torch.float32, n, 40 + j) for j, n in enumerate(sizes)]
    clean = [_bits(x) for x in xs]
    seen = 0
    for access in (0, 1, 2, 17, 2**40 + 3):
        ys = [x.clone() for x in xs]
        want = [inj(y, inj.words(y), access) for inj, y in zip(injs, ys)]
        addrs = np.array([x.data_ptr() for x in xs], np.int64)
        bits = group(addrs, access, xs).copy()
        for j, (x, y, log) in enumerate(zip(xs, ys, want)):
            assert np.array_equal(_bits(x), _bits(y)), (access, j)
            assert bits[j] == log.n_bits
            idx, mask = group.entries(j)
            widx, wmask = log.word_flips()
            assert np.array_equal(idx, widx) and np.array_equal(mask, wmask)
            seen += int(bits[j])
        with pytest.raises(RuntimeError):
            group(addrs, access + 1, xs)  # the last call is not undone
        group.undo()
        assert all(np.array_equal(_bits(x), c) for x, c in zip(xs, clean))
        with pytest.raises(RuntimeError):
            group.undo()
    assert seen > 0


def test_lean_group_overflow_is_reported_and_leaves_that_tensor_untouched():
    injs = [_injector("em0:p=1e-3", torch.float32, 50_000, seed=s, base=s << 20) for s in (1, 2, 3)]
    group = lean_group(injs)
    assert group is not None
    k = cpu.kernels()
    group._hdr[1, k.PK_CAP] = 3  # room for 3 entries in tensor 1, ~1600 expected
    xs = [_tensor(torch.float32, 50_000, s) for s in (1, 2, 3)]
    clean = [_bits(x) for x in xs]
    bits = group(np.array([x.data_ptr() for x in xs], np.int64), 4, xs)
    assert bits[1] == -1 and bits[0] > 0 and bits[2] > 0
    assert np.array_equal(_bits(xs[1]), clean[1])
    assert not np.array_equal(_bits(xs[0]), clean[0])
    group.undo()
    assert all(np.array_equal(_bits(x), c) for x, c in zip(xs, clean))


def test_lean_group_applies_only_where_every_member_does():
    ok = [_injector("em0:p=1e-4", torch.float32, 1000, seed=s) for s in (1, 2)]
    assert lean_group(ok) is not None
    assert lean_group([]) is None
    assert lean_group(ok + [_injector("em0:p=1e-4", torch.float32, 1000, correction="zero")]) is None
    assert lean_group(ok + [_injector("em0:p=1e-4", torch.float16, 1000)]) is None  # two word types


def test_lean_correction_memo_tells_signed_zeros_apart():
    """(+0.0, 1.0) and (-0.0, 1.0) are equal floats but give different replacement words (a clamp
    writes -0.0 in the second): the memoized words follow the sign, as the Injector's do."""
    n = 50_000
    inj = _injector("em0:p=1e-2", torch.float32, n, seed=3, base=0, correction="clamp")
    lean = lean_injection(inj)
    assert lean is not None
    x0 = torch.rand(n, generator=torch.Generator().manual_seed(1))
    x = x0.clone()
    lean(x.data_ptr(), 0, (0.0, 1.0))
    lean.undo()
    x = x0.clone()
    bits = lean(x.data_ptr(), 1, (-0.0, 1.0))
    got = _bits(x)
    lean.undo()
    y = x0.clone()
    log = inj(y, inj.words(y), 1, (-0.0, 1.0))
    assert np.array_equal(got, _bits(y)) and bits == log.n_bits and lean.n_corrected == log.n_corrected > 0


def test_lean_holds_its_tensor_until_the_undo():
    inj = _injector("em0:p=1e-3", torch.float32, 10_000)
    lean = lean_injection(inj)
    x = _tensor(torch.float32, 10_000, 1)
    lean(x.data_ptr(), 0, None, x)
    assert lean._held is x  # the memory at the address stays x's while the log is outstanding
    lean.undo()
    assert lean._held is None
