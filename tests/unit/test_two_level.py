"""Two-level persistence (EDEN's model): fixed weak cells, each failing with probability q per access.

Exact statistics at ALPHA = 1e-3 with fixed seeds (as tests/unit/test_statistics.py): the per-access
BER, the share of a second access's errors that repeat the first's (binomial in q given the errors),
the weak map's coverage over many accesses; then the identities: failing cells inside the weak map,
q = 1 equals ``fixed`` bit for bit, numba equals the NumPy oracle (also grouped, with ECC), spec and
HDF5 round trips, and errors naming the field for a bad q.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.stats as st
import torch

from eden import AddressMap, DramOrganization, ErrorModel, inject_
from eden.engine import twolevel
from eden.engine.ecc import get_code
from eden.engine.group import InjectorGroup
from eden.engine.lean import lean_injection
from eden.engine.ops import Injector
from eden.errormodels import h5 as _h5
from eden.errors import EdenConfigError
from eden.formats import format_of

ALPHA = 1e-3
SMALL_MAP = AddressMap(DramOrganization(banks=4, rows=4096, row_bytes=1024, subarray_rows=64))
TL = ";persistence=two_level,q="


def assert_binomial(k: int, n: int, p: float, what: str) -> None:
    lo, hi = int(st.binom.ppf(ALPHA / 2, n, p)), int(st.binom.isf(ALPHA / 2, n, p))
    assert lo <= k <= hi, f"{what}: {k} of {n} at p={p:g} (mean {n * p:.1f}); exact interval [{lo}, {hi}]"


def _tensor(n_bits: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    raw = np.random.default_rng(seed).integers(0, 256, n_bits // 8, dtype=np.uint8)
    return torch.from_numpy(raw).view(dtype)


def _raw(t: torch.Tensor) -> np.ndarray:
    return t.reshape(-1).view(torch.uint8).numpy().copy()


def _bits(x: torch.Tensor, spec: str, seed: int, backend: str = "cpu", **kw) -> np.ndarray:
    """Sorted tensor-bit indices flipped in a copy of ``x`` (checked against the tensor itself)."""
    y = x.clone()
    log = inject_(y, spec, seed, backend=backend, **kw)
    pos = np.flatnonzero(np.unpackbits(_raw(x) ^ _raw(y), bitorder="little"))
    e, b = log.positions()
    assert np.array_equal(pos, e * (log.format.word.itemsize * 8) + b)
    log.undo()
    assert np.array_equal(_raw(y), _raw(x))
    return pos


# ---------------------------------------------------------------- model, spec
def test_spec_round_trip_and_both_option_separators():
    a = ErrorModel.from_spec("em0:p=1e-4;persistence=two_level,q=0.05")
    b = ErrorModel.from_spec("em0:p=1e-4;persistence=two_level;q=0.05")
    assert a == b and a.q == 0.05 and a.persistence == "two_level"
    assert a.to_spec() == "em0:p=0.0001;persistence=two_level,q=0.05"
    assert ErrorModel.from_spec(a.to_spec()) == a
    assert ErrorModel.coerce(str(a)) == a
    assert a.weak_map() == ErrorModel.from_spec("em0:p=0.002;persistence=fixed")
    assert ErrorModel.from_spec("em0:p=1e-4").weak_map() == ErrorModel.from_spec("em0:p=1e-4")
    # an overriding persistence drops the spec's q; scaling keeps it
    assert ErrorModel.from_spec(str(a), persistence="access") == ErrorModel.from_spec("em0:p=1e-4")
    assert a.scaled(2.0) == ErrorModel.from_spec("em0:p=2e-4" + TL + "0.05")


@pytest.mark.parametrize("spec,text", [
    ("em0:p=1e-4;persistence=two_level", r"needs option q in \(0, 1\]"),
    ("em0:p=1e-4;persistence=two_level,q=0", r"option q .* must be in \(0, 1\], got 0"),
    ("em0:p=1e-4;persistence=two_level,q=1.5", r"option q .* must be in \(0, 1\], got 1.5"),
    ("em0:p=1e-4;persistence=two_level,q=-0.1", r"option q .* must be in \(0, 1\]"),
    ("em0:p=1e-4;persistence=two_level,q=nan", r"option q .* must be in \(0, 1\]"),
    ("em0:p=1e-4;persistence=two_level,q=abc", r"option q in .* must be a number in \(0, 1\], got 'abc'"),
    ("em0:p=1e-4;q=0.5", r"option q .* applies only to persistence=two_level, not access"),
    ("em0:p=1e-4;persistence=fixed,q=0.5", r"option q .* applies only to persistence=two_level, not fixed"),
    ("em0:p=1e-4;persistence=two_level,q=0.1,q=0.2", r"option 'q' given twice"),
    ("em0:p=1e-4;persistence=two_levels,q=0.1", r"two_level"),
])
def test_bad_q_names_the_field(spec, text):
    with pytest.raises(EdenConfigError, match=text):
        ErrorModel.from_spec(spec)


def test_constructor_checks_q():
    comps = ErrorModel.from_spec("em0:p=1e-4").components
    with pytest.raises(EdenConfigError, match="needs option q"):
        ErrorModel(comps, "two_level")
    with pytest.raises(EdenConfigError, match="applies only to persistence=two_level"):
        ErrorModel(comps, "fixed", 0.5)
    assert ErrorModel(comps, "two_level", 1).q == 1.0


def test_expected_ber_and_cell_rates():
    m = ErrorModel.from_spec("em0:p=1e-4" + TL + "0.05")
    assert m.expected_ber() == pytest.approx(1e-4, rel=1e-12)
    # a union: q times the weak map's union (within O(r_i r_j / q) of the access model's)
    u = ErrorModel.from_spec("em1:fraction=0.1,p=0.01+em0:p=1e-3" + TL + "0.2")
    w1, w0 = 0.01 / 0.2, 1e-3 / 0.2
    exact = 0.2 * (0.1 * (1 - (1 - w1) * (1 - w0)) + 0.9 * w0)
    assert u.expected_ber() == pytest.approx(exact, rel=1e-12)
    assert u.cell_rate((True, False), (False, False)) == pytest.approx(0.2 * (1 - (1 - w1) * (1 - w0)), rel=1e-12)
    access = ErrorModel.from_spec("em1:fraction=0.1,p=0.01+em0:p=1e-3")
    assert abs(u.expected_ber() - access.expected_ber()) < 0.1 * 0.01 * 1e-3 / 0.2 * 2
    # rates above q saturate (weak for sure, failing with q); at_ber scales within the model
    assert ErrorModel.from_spec("em0:p=0.5" + TL + "0.1").expected_ber() == pytest.approx(0.1)
    assert u.at_ber(2e-3).expected_ber() == pytest.approx(2e-3, rel=1e-9)
    assert u.at_ber(2e-3).q == 0.2


# --------------------------------------------------------------------- HDF5
def test_hdf5_round_trip_and_show(tmp_path):
    m = ErrorModel.from_spec("em1:fraction=0.02,p=0.01+em2:fraction=0.1,p=1e-3" + TL + "0.048")
    path = tmp_path / "m.h5"
    m.save(path)
    assert ErrorModel.load(path) == m
    meta = _h5.read_metadata(path)
    assert meta["persistence"] == "two_level" and meta["q"] == 0.048 and meta["spec"] == m.to_spec()
    with h5py.File(path, "r") as f:
        assert f.attrs["persistence_q"] == 0.048
    # files of the other modes carry no q (as files written before two_level existed)
    old = tmp_path / "old.h5"
    ErrorModel.from_spec("em0:p=1e-4;persistence=fixed").save(old)
    with h5py.File(old, "r") as f:
        assert "persistence_q" not in f.attrs
    assert ErrorModel.load(old).q is None and _h5.read_metadata(old)["q"] is None


@pytest.mark.parametrize("mutate,text", [
    (lambda f: f.attrs.__delitem__("persistence_q"), r"attribute 'persistence_q'.*found no such attribute"),
    (lambda f: f.attrs.__setitem__("persistence_q", 0.0), r"attribute 'persistence_q'.*in \(0, 1\]"),
    (lambda f: f.attrs.__setitem__("persistence_q", "x"), r"attribute 'persistence_q'"),
    (lambda f: f.attrs.__setitem__("persistence", "fixed"), r"persistence_q.*belongs to 'two_level'"),
])
def test_malformed_q_in_hdf5_names_file_and_attribute(tmp_path, mutate, text):
    path = tmp_path / "bad.h5"
    ErrorModel.from_spec("em0:p=1e-4" + TL + "0.5").save(path)
    with h5py.File(path, "r+") as f:
        mutate(f)
    with pytest.raises(_h5.ErrorModelFileError, match=r"bad\.h5") as e:
        ErrorModel.load(path)
    assert e.match(text)


# --------------------------------------------------------------- statistics
@pytest.mark.parametrize("p,q", [(1e-3, 0.1), (2e-4, 0.048), (0.01, 0.5)])
def test_per_access_ber_is_the_models_rate(p, q):
    x = _tensor(1 << 23, seed=11)
    n = x.numel() * 32
    for access in (0, 5):
        pos = _bits(x, f"em0:p={p!r}{TL}{q!r}", 17, access=access)
        assert_binomial(len(pos), n, p, f"two_level em0 p={p:g} q={q:g} access {access}")


def test_per_access_rates_of_a_data_dependent_model():
    x = _tensor(1 << 23, seed=12)
    stored = np.unpackbits(_raw(x), bitorder="little")
    pos = _bits(x, "em3:p10=4e-3,p01=1e-3" + TL + "0.25", 5, access=3)
    ones = int(stored.sum())
    k1 = int(stored[pos].sum())
    assert_binomial(k1, ones, 4e-3, "1->0 flips")
    assert_binomial(len(pos) - k1, stored.size - ones, 1e-3, "0->1 flips")


@pytest.mark.parametrize("spec,q", [("em0:p=2e-3", 0.05), ("em0:p=2e-3", 0.3),
                                    ("em1:fraction=0.05,p=0.01,p_else=1e-4+em2:fraction=0.1,p=2e-3", 0.169),
                                    ("emc:line_fraction=0.1,wl_fraction=0.1,p=0.01,p_else=1e-4", 0.2)])
def test_repeat_fraction_is_q(spec, q):
    """Given access 1's errors, each is a weak cell that failed on access 0 with probability q
    (independent draws): the number that repeat is binomial(|errors of access 1|, q)."""
    x = _tensor(1 << 23, seed=13, dtype=torch.float16)
    a0 = _bits(x, f"{spec}{TL}{q!r}", 21, access=0, address_map=SMALL_MAP)
    a1 = _bits(x, f"{spec}{TL}{q!r}", 21, access=1, address_map=SMALL_MAP)
    assert len(a1) > 1000
    both = len(np.intersect1d(a0, a1, assume_unique=True))
    assert_binomial(both, len(a1), q, f"{spec} q={q}: errors of access 1 that failed on access 0")


@pytest.mark.parametrize("spec", ["em0:p=2e-3" + TL + "0.2",
                                  "em1:fraction=0.05,p=0.01+em3:p10=1e-3,p01=1e-4" + TL + "0.3"])
def test_failing_cells_are_the_weak_map_and_cover_it(spec):
    """Every error of every access is a cell of the weak map (the fixed map of weak_map()); over A
    accesses each weak cell fails at least once with probability 1 - (1 - q)^A."""
    m = ErrorModel.from_spec(spec)
    x = _tensor(1 << 22, seed=14)
    weak = _bits(x, m.weak_map().to_spec(), 9, address_map=SMALL_MAP, access=77)
    seen = np.zeros(0, np.int64)
    A = 6
    for access in range(A):
        pos = _bits(x, spec, 9, address_map=SMALL_MAP, access=access)
        assert np.isin(pos, weak).all(), f"access {access}: errors outside the weak map"
        seen = np.union1d(seen, pos)
    assert_binomial(len(seen), len(weak), 1 - (1 - m.q) ** A, f"weak cells seen failing in {A} accesses")


@pytest.mark.parametrize("spec", ["em0:p=1e-3", "em1:fraction=0.02,p=0.05,p_else=1e-5+em2:fraction=0.1,p=1e-3",
                                  "em3:p10=1e-2,p01=1e-4", "em0:p=0.4"])
def test_q_one_is_fixed_bit_for_bit(spec):
    x = _tensor(1 << 20, seed=15, dtype=torch.bfloat16)
    for access in (0, 3):
        for backend in ("cpu", "reference"):
            a = _bits(x, spec + TL + "1", 4, backend=backend, access=access, address_map=SMALL_MAP, base_address=2048)
            b = _bits(x, spec + ";persistence=fixed", 4, backend=backend, access=access, address_map=SMALL_MAP,
                      base_address=2048)
            assert len(a) > 0 and np.array_equal(a, b), (spec, access, backend)


def test_fails_is_a_function_of_seed_access_and_position():
    """The oracle draw: Philox of the global bit address under key (seed, access); a weak map split
    into any pieces (any chunking, any word size) gets the same draws."""
    addr = np.arange(1 << 16, dtype=np.uint64) * np.uint64(977) + np.uint64(1 << 33)
    f = twolevel.fails(addr, seed=5, access=2, q=0.3)
    assert_binomial(int(f.sum()), f.size, 0.3, "fails() acceptance")
    assert np.array_equal(f[100:900], twolevel.fails(addr[100:900], seed=5, access=2, q=0.3))
    g = twolevel.fails(addr, seed=5, access=3, q=0.3)
    assert_binomial(int((f & g).sum()), f.size, 0.09, "two accesses both fail")
    assert twolevel.fails(addr, seed=5, access=2, q=1.0).all()
    # the same bits as uint8 words at base 8 or as uint32 words at base 8
    rng = np.random.default_rng(0)
    m8 = (rng.random(4000) < 0.3).astype(np.uint8) * rng.integers(1, 256, 4000).astype(np.uint8)
    i8 = np.flatnonzero(m8)
    k8, d8 = twolevel.split_entries(i8, m8[i8], 1, base_address=8, seed=1, access=4, q=0.4)
    m32 = m8.view(np.uint32)
    i32 = np.flatnonzero(m32)
    k32, d32 = twolevel.split_entries(i32, m32[i32], 4, base_address=8, seed=1, access=4, q=0.4)
    kept8 = np.zeros(4000, np.uint8)
    kept8[i8] = k8
    kept32 = np.zeros(1000, np.uint32)
    kept32[i32] = k32
    assert np.array_equal(kept8.view(np.uint32), kept32)
    assert np.array_equal(k32 ^ d32, m32[i32])


# ------------------------------------------------------------- backends, paths
CASES = [
    ("float32", "em0:p=1e-3" + TL + "0.1", 0, 0),
    ("float16", "em1:fraction=0.02,p=0.02,p_else=1e-5+em2:fraction=0.1,p=1e-3" + TL + "0.05", 2 * 77, 3),
    ("int8", "em3:p10=1e-3,p01=1e-4+em0:p=1e-5" + TL + "0.5", 1024 * 7 + 5, 1),
    ("int32", "em0:p=1e-5" + TL + "0.169", 4 * 5, 9),  # low rates: multi-tile stream groups
    ("bfloat16", "em0:p=0.3" + TL + "0.6", 0, 2),  # dense: single-tile groups
    ("float32", "emc:line_fraction=0.1,wl_fraction=0.1,p=0.01,p_else=1e-5" + TL + "0.3", 4 * 3, 2),
]


@pytest.mark.parametrize("name,spec,base,access", CASES, ids=[c[0] + "-" + c[1] for c in CASES])
def test_numba_equals_reference(name, spec, base, access):
    dtype = getattr(torch, name)
    n = 60_000 if "0.3" in spec else 200_000
    x = _tensor(n * torch.empty(0, dtype=dtype).element_size() * 8, seed=16, dtype=dtype)
    kw = dict(access=access, base_address=base, address_map=SMALL_MAP)
    a, b = x.clone(), x.clone()
    la = inject_(a, spec, 1234, backend="cpu", **kw)
    lb = inject_(b, spec, 1234, backend="reference", **kw)
    assert la.n_bits > 0 and np.array_equal(_raw(a), _raw(b))
    ia, ma = la.word_flips()
    ib, mb = lb.word_flips()
    assert np.array_equal(ia, ib) and np.array_equal(ma, mb)


@pytest.mark.parametrize("ecc", ["secded72", "ondie136", "chipkill144"])
def test_ecc_on_two_level_numba_equals_reference(ecc):
    spec = "em0:p=2e-3" + TL + "0.2"
    x = _tensor(1 << 20, seed=17)
    a, b = x.clone(), x.clone()
    la = inject_(a, spec, 3, backend="cpu", access=4, ecc=ecc)
    lb = inject_(b, spec, 3, backend="reference", access=4, ecc=ecc)
    assert np.array_equal(_raw(a), _raw(b)) and la.ecc == lb.ecc
    assert la.ecc.raw_check_bit_errors > 0
    # the check bits follow the two-level model too: per-access rate p
    r = get_code(ecc).r
    assert_binomial(la.ecc.raw_check_bit_errors, la.ecc.codewords * r, 2e-3, "raw check-bit errors")
    la.undo()
    assert np.array_equal(_raw(a), _raw(x))


def test_group_and_injector_paths_equal_inject():
    specs = ["em0:p=1e-3" + TL + "0.1", "em2:fraction=0.2,p=1e-3" + TL + "0.3", "em0:p=1e-4"]
    xs = [_tensor(8 * 40_000 * 4, seed=20 + i) for i in range(3)]
    injs, base = [], 8192
    for spec, x in zip(specs, xs):
        injs.append(Injector(ErrorModel.from_spec(spec), format_of(x.dtype), x.numel() * 4, seed=6,
                             base_address=base, backend="cpu"))
        base += x.numel() * 4 + 8192
    assert lean_injection(injs[0]) is None and lean_injection(injs[1]) is None  # the thinning runs per Injector
    group = InjectorGroup(injs)
    for access in (0, 1):
        ys = [x.clone() for x in xs]
        logs = group(ys, [y.numpy().view(np.uint32) for y in ys], access)
        for inj, x, y, log in zip(injs, xs, ys, logs):
            z = x.clone()
            ref = inject_(z, inj.model, 6, access=access, base_address=inj.base_address, backend="reference")
            assert np.array_equal(_raw(y), _raw(z))
            assert np.array_equal(log.word_flips()[0], ref.word_flips()[0])
            assert log.n_bits == ref.n_bits > 0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_numba_draws_equal_the_numpy_specification(dtype):
    rng = np.random.default_rng(1)
    n = 50_000
    full = rng.integers(0, 2**63, n, dtype=np.uint64) | (rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63))
    single = np.uint64(1) << rng.integers(0, 64, n, dtype=np.uint64)
    m = np.where(rng.random(n) < 0.7, single, full).astype(dtype)
    m = m[m != 0]
    idx = np.sort(rng.choice(10**9, m.size, replace=False)).astype(np.int64)
    size = np.dtype(dtype).itemsize
    a = twolevel.split_entries(idx, m, size, base_address=1 << 31, seed=3, access=5, q=0.3, impl="numpy")
    b = twolevel.split_entries(idx, m, size, base_address=1 << 31, seed=3, access=5, q=0.3, impl="numba")
    assert a[0].dtype == b[0].dtype == dtype
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(a[0] ^ a[1], m) and 0 < np.count_nonzero(a[0]) < m.size
