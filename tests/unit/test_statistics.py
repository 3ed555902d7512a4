"""Statistical proof of the injection: realized rates, placement, persistence, determinism.

Every test uses fixed seeds and exact acceptance regions at significance
ALPHA = 1e-3 (two-sided exact binomial / hypergeometric intervals, chi-square
p-values), so a correct engine fails any single check with probability < 1e-3
and, the seeds being fixed, the outcome is reproducible. The heavy checks run
on tensors of >= 2**24 bits through the public ``eden.inject_`` with the numba
CPU backend and are marked ``slow`` (they still run in CI).

Bit numbering used throughout: tensor bit ``i`` is bit ``i % 8`` (LSB first) of
byte ``i // 8``; for a word of ``wb`` bits, bit ``b`` of element ``e`` is tensor
bit ``e * wb + b`` (little-endian storage).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import torch

import eden
from eden import AddressMap, DramOrganization, ErrorModel, inject_
from eden.engine.backends import reference
from eden.engine.plan import compile_plan

ALPHA = 1e-3
BITS = 2 ** 24                       # >= 1e7 bits per statistical tensor
SMALL_ORG = DramOrganization(banks=4, rows=4096, row_bytes=1024, subarray_rows=64)
SMALL_MAP = AddressMap(SMALL_ORG)

DTYPES = {
    "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
}


# --------------------------------------------------------------------- helpers
def binom_interval(n: int, p: float) -> tuple[int, int]:
    """Exact two-sided binomial acceptance interval [lo, hi] at level ALPHA."""
    return int(st.binom.ppf(ALPHA / 2, n, p)), int(st.binom.isf(ALPHA / 2, n, p))


def assert_binomial(k: int, n: int, p: float, what: str) -> None:
    lo, hi = binom_interval(n, p)
    assert lo <= k <= hi, (f"{what}: observed {k} of n={n} at p={p:g} (mean {n * p:.2f}); "
                           f"exact {1 - ALPHA:.1%} acceptance interval [{lo}, {hi}]")


def word_bits(dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size() * 8


def random_tensor(dtype, n_bits: int, seed: int, ones: float = 0.5) -> torch.Tensor:
    """A 1-D tensor of ``n_bits`` i.i.d. random bits (each 1 with probability ``ones``)."""
    rng = np.random.default_rng(seed)
    nbytes = n_bits // 8
    if ones == 0.5:
        raw = rng.integers(0, 256, nbytes, dtype=np.uint8)
    else:
        raw = np.packbits(rng.random(n_bits) < ones, bitorder="little")
    return torch.from_numpy(raw).view(dtype)


def raw_bytes(t: torch.Tensor) -> np.ndarray:
    return t.reshape(-1).view(torch.uint8).numpy().copy()


def tensor_bits(raw: np.ndarray) -> np.ndarray:
    """Tensor bits (uint8 0/1) of raw bytes, in tensor-bit order."""
    return np.unpackbits(raw, bitorder="little")


def flipped_bits(log) -> np.ndarray:
    """Sorted tensor-bit indices flipped according to the log."""
    elem, bit = log.positions()
    return elem * (log.format.word.itemsize * 8) + bit


def changed_bits(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Sorted tensor-bit indices that differ between two raw byte images."""
    return np.flatnonzero(np.unpackbits(before ^ after, bitorder="little"))


def inject_checked(x, model, seed, **kw):
    """inject_ on the numba CPU backend; check the log against the real bit changes."""
    before = raw_bytes(x)
    log = inject_(x, model, seed, backend="cpu", **kw)
    assert log.backend == "cpu"
    after = raw_bytes(x)
    pos = flipped_bits(log)
    assert np.array_equal(pos, changed_bits(before, after)), "FlipLog.positions() disagrees with the tensor"
    assert log.n_bits == len(pos)
    assert log.total_bits == before.size * 8
    return log, pos, before


def tile_of_bits(plan, tbits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tile, bit position within the row) of tensor bits, per the plan's geometry."""
    g = np.asarray(tbits, np.int64) + plan.bit_lo
    return g // plan.row_bits, g % plan.row_bits


def weak_bitline_cells(plan, m: int = 0) -> np.ndarray:
    """Boolean mask over tensor bits: True on the weak bitlines of em1 component ``m``."""
    n = plan.bit_hi - plan.bit_lo
    mask = np.zeros(n, bool)
    for t in range(plan.n_tiles):
        g = plan.tile_group[t]
        cols = plan.bl_cols[plan.bl_offsets[m, g]:plan.bl_offsets[m, g + 1]].astype(np.int64)
        tb = t * plan.row_bits + cols - plan.bit_lo
        mask[tb[(tb >= 0) & (tb < n)]] = True
    return mask


# ------------------------------------------------------------------ em0: rate
EM0_PS = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 0.5]


@pytest.mark.slow
@pytest.mark.parametrize("i,p", list(enumerate(EM0_PS)), ids=[f"p={p:g}" for p in EM0_PS])
def test_em0_realized_ber(i, p):
    # p=1e-7 needs 2**27 bits for an expected count of ~13
    n_elems = 2 ** 22 if p < 1e-6 else BITS // 32
    x = random_tensor(torch.float32, n_elems * 32, seed=100 + i)
    log, pos, _ = inject_checked(x, f"em0:p={p!r}", seed=1000 + i)
    assert log.total_bits == n_elems * 32
    assert_binomial(log.n_bits, log.total_bits, p, f"em0 p={p:g} flipped bits")


EM0_FIXED_PS = [1e-5, 1e-3, 0.05, 0.3, 0.7]


@pytest.mark.slow
@pytest.mark.parametrize("i,p", list(enumerate(EM0_FIXED_PS)), ids=[f"p={p:g}" for p in EM0_FIXED_PS])
def test_em0_realized_ber_fixed(i, p):
    x = random_tensor(torch.float32, BITS, seed=200 + i)
    log, _, _ = inject_checked(x, f"em0:p={p!r};persistence=fixed", seed=2000 + i, access=3)
    assert_binomial(log.n_bits, log.total_bits, p, f"em0 fixed p={p:g} flipped bits")


@pytest.mark.parametrize("persistence", ["access", "fixed"])
def test_em0_extremes(persistence):
    x = random_tensor(torch.float32, 2 ** 16 * 32, seed=7)
    before = raw_bytes(x)
    log = inject_(x, f"em0:p=0.0;persistence={persistence}", 3, backend="cpu")
    assert log.n_bits == 0 and np.array_equal(raw_bytes(x), before)
    log = inject_(x, f"em0:p=1.0;persistence={persistence}", 3, backend="cpu")
    assert log.n_bits == log.total_bits
    assert np.array_equal(raw_bytes(x), ~before)


# ------------------------------------------------------- em0: bit positions
@pytest.mark.slow
@pytest.mark.parametrize("i,name", list(enumerate(["float32", "float16", "bfloat16", "int16", "int8", "uint8"])))
def test_em0_bit_positions_uniform(i, name):
    dtype = DTYPES[name]
    wb = word_bits(dtype)
    x = random_tensor(dtype, BITS, seed=300 + i)
    log, _, _ = inject_checked(x, "em0:p=1e-3", seed=3000 + i)
    _, bit = log.positions()
    counts = np.bincount(bit, minlength=wb)
    assert len(counts) == wb
    res = st.chisquare(counts)
    assert res.pvalue > ALPHA, f"{name}: flips per bit position not uniform: {counts.tolist()} (p={res.pvalue:.2g})"
    assert_binomial(log.n_bits, log.total_bits, 1e-3, f"{name} em0 flipped bits")


# ------------------------------------------------------------ em1: bitlines
def _check_plan_bitlines(plan, seed, fraction, base, nbytes):
    """The plan's per-tile weak bitlines = reference.weak_bitlines keyed by the (bank, subarray)
    that the address map gives the tile's bits."""
    org = SMALL_ORG
    first_bits = np.maximum(np.arange(plan.n_tiles) * plan.row_bits - plan.bit_lo, 0)
    loc = SMALL_MAP.locate_bits(base, first_bits)
    gglobal = loc["bank"] * org.subarrays + loc["subarray"]
    groups = np.unique(gglobal)
    lists = reference.weak_bitlines(seed, 0, fraction, groups, org.row_bits)
    assert plan.bl_offsets.shape[1] == len(groups) + 1
    for t in range(plan.n_tiles):
        g = plan.tile_group[t]
        cols = plan.bl_cols[plan.bl_offsets[0, g]:plan.bl_offsets[0, g + 1]]
        expect = lists[int(np.searchsorted(groups, gglobal[t]))]
        assert np.array_equal(cols, expect), f"tile {t}: plan weak bitlines differ from the group's map"
    allcols = plan.bl_cols[plan.bl_offsets[0, 0]:plan.bl_offsets[0, -1]]
    assert allcols.min() >= 0 and allcols.max() < org.row_bits
    return len(groups)


EM1_CASES = [  # (p_else, persistence, seed)
    (1e-4, "access", 11), (0.0, "access", 12), (1e-4, "fixed", 13), (0.0, "fixed", 14),
]


@pytest.mark.slow
@pytest.mark.parametrize("p_else,persistence,seed", EM1_CASES)
def test_em1_weak_bitlines(p_else, persistence, seed):
    fraction, p = 0.01, 0.05
    base = 4 * 12345                             # starts mid-row: partial first and last tiles
    model = ErrorModel.from_spec(f"em1:fraction={fraction},p={p},p_else={p_else!r};persistence={persistence}")
    x = random_tensor(torch.float32, BITS, seed=seed)
    nbytes = x.numel() * 4
    log, pos, _ = inject_checked(x, model, seed, access=2, base_address=base, address_map=SMALL_MAP)
    plan = compile_plan(model, word_bits=32, nbytes=nbytes, seed=seed, access=2, base_address=base,
                        address_map=SMALL_MAP)
    n_groups = _check_plan_bitlines(plan, seed, fraction, base, nbytes)

    # fraction of weak bitlines over the (bank, subarray) groups the tensor touches
    n_bl = int(plan.bl_offsets[0, -1] - plan.bl_offsets[0, 0])
    assert_binomial(n_bl, n_groups * plan.row_bits, fraction, "weak bitlines")

    weak = weak_bitline_cells(plan)
    # weak cells in the tensor = sum over tiles of the weak bitlines inside the tensor's range
    n_weak = 0
    for t in range(plan.n_tiles):
        g = plan.tile_group[t]
        cols = plan.bl_cols[plan.bl_offsets[0, g]:plan.bl_offsets[0, g + 1]]
        lo = max(plan.bit_lo - t * plan.row_bits, 0)
        hi = min(plan.bit_hi - t * plan.row_bits, plan.row_bits)
        n_weak += int(np.count_nonzero((cols >= lo) & (cols < hi)))
    assert n_weak == int(weak.sum())
    n_strong = log.total_bits - n_weak

    on_weak = int(weak[pos].sum())
    on_strong = len(pos) - on_weak
    assert_binomial(on_weak, n_weak, p, "flips on weak bitlines")
    if p_else == 0.0:
        assert on_strong == 0, f"{on_strong} flips outside the weak bitlines with p_else=0"
    else:
        assert_binomial(on_strong, n_strong, p_else, "flips on strong bitlines")


# ----------------------------------------------------------- em2: wordlines
EM2_CASES = [(1e-4, "access", 21), (0.0, "access", 22), (1e-4, "fixed", 23), (0.0, "fixed", 24)]


@pytest.mark.slow
@pytest.mark.parametrize("p_else,persistence,seed", EM2_CASES)
def test_em2_weak_wordlines(p_else, persistence, seed):
    fraction, p = 0.05, 0.01
    base = 2 * 777777
    org = SMALL_ORG
    model = ErrorModel.from_spec(f"em2:fraction={fraction},p={p},p_else={p_else!r};persistence={persistence}")
    x = random_tensor(torch.int16, BITS, seed=seed)
    nbytes = x.numel() * 2
    log, pos, _ = inject_checked(x, model, seed, access=5, base_address=base, address_map=SMALL_MAP)
    plan = compile_plan(model, word_bits=16, nbytes=nbytes, seed=seed, access=5, base_address=base,
                        address_map=SMALL_MAP)

    # the plan's weak rows are the map keyed by the address map's row ids
    first_bits = np.maximum(np.arange(plan.n_tiles) * plan.row_bits - plan.bit_lo, 0)
    row_id = SMALL_MAP.locate_bits(base, first_bits)["row_id"]
    assert np.array_equal(plan.tile_row_id.astype(np.int64), row_id)
    assert len(np.unique(row_id)) == plan.n_tiles
    weak_rows = plan.tile_wlclass[0].astype(bool)
    assert np.array_equal(weak_rows, reference.weak_wordlines(seed, 0, fraction, row_id).astype(bool))

    # weak-row fraction: over the tensor's rows and over the whole device
    assert_binomial(int(weak_rows.sum()), plan.n_tiles, fraction, "weak rows of the tensor")
    all_rows = reference.weak_wordlines(seed, 0, fraction, np.arange(org.banks * org.rows))
    assert_binomial(int(all_rows.sum()), org.banks * org.rows, fraction, "weak rows of the device")

    t_all = np.arange(plan.n_tiles)
    lo = np.maximum(plan.bit_lo - t_all * plan.row_bits, 0)
    hi = np.minimum(plan.bit_hi - t_all * plan.row_bits, plan.row_bits)
    n_weak = int((hi - lo)[weak_rows].sum())
    n_strong = log.total_bits - n_weak
    assert n_weak > 0

    tile, _ = tile_of_bits(plan, pos)
    on_weak = int(weak_rows[tile].sum())
    on_strong = len(pos) - on_weak
    assert_binomial(on_weak, n_weak, p, "flips on weak wordlines")
    if p_else == 0.0:
        assert on_strong == 0, f"{on_strong} flips outside the weak wordlines with p_else=0"
    else:
        assert_binomial(on_strong, n_strong, p_else, "flips on strong wordlines")


# ------------------------------------------------------ em3: data dependent
EM3_CASES = [  # (p10, p01, persistence, dtype, ones fraction, seed)
    (1e-2, 1e-4, "access", "uint8", 0.3, 31),
    (1e-2, 0.0, "access", "float32", 0.7, 32),
    (1e-2, 1e-4, "fixed", "bfloat16", 0.5, 33),
    (1e-2, 0.0, "fixed", "int8", 0.4, 34),
]


@pytest.mark.slow
@pytest.mark.parametrize("p10,p01,persistence,name,ones,seed", EM3_CASES)
def test_em3_direction_rates(p10, p01, persistence, name, ones, seed):
    x = random_tensor(DTYPES[name], BITS, seed=seed, ones=ones)
    log, pos, before = inject_checked(x, f"em3:p10={p10!r},p01={p01!r};persistence={persistence}", seed)
    stored = tensor_bits(before)
    n1 = int(stored.sum())
    n0 = stored.size - n1
    f10 = int(stored[pos].sum())           # stored 1 read as 0
    f01 = len(pos) - f10                   # stored 0 read as 1
    assert_binomial(f10, n1, p10, "em3 1->0 flips")
    if p01 == 0.0:
        assert f01 == 0, f"{f01} 0->1 flips with p01=0"
    else:
        assert_binomial(f01, n0, p01, "em3 0->1 flips")


# ------------------------------------------------------------ composite union
@pytest.mark.slow
@pytest.mark.parametrize("persistence,seed", [("access", 41), ("fixed", 42)])
def test_composite_union_rates(persistence, seed):
    p0, p10 = 1e-3, 1e-2
    x = random_tensor(torch.uint8, BITS, seed=seed, ones=0.4)
    log, pos, before = inject_checked(x, f"em0:p={p0}+em3:p10={p10},p01=0;persistence={persistence}", seed)
    stored = tensor_bits(before)
    n1 = int(stored.sum())
    n0 = stored.size - n1
    f1 = int(stored[pos].sum())
    f0 = len(pos) - f1
    assert_binomial(f1, n1, 1.0 - (1.0 - p0) * (1.0 - p10), "union flips of stored 1s")
    assert_binomial(f0, n0, 1.0 - (1.0 - p0) * (1.0 - 0.0), "union flips of stored 0s")


# ---------------------------------------------------------------- persistence
@pytest.mark.slow
@pytest.mark.parametrize("spec", ["em0:p=1e-2", "em3:p10=2e-2,p01=1e-2"])
def test_access_persistence_redraws_independently(spec):
    x = random_tensor(torch.float32, BITS, seed=51)
    clean = x.clone()
    sets = []
    for access in (0, 1):
        y = clean.clone()
        _, pos, _ = inject_checked(y, spec, 77, access=access)
        sets.append(pos)
    a, b = sets
    assert not np.array_equal(a, b)
    n = clean.numel() * 32
    overlap = len(np.intersect1d(a, b, assume_unique=True))
    if spec.startswith("em0"):
        # uniform cells: given |A| and |B|, the overlap is hypergeometric under independence
        lo = int(st.hypergeom.ppf(ALPHA / 2, n, len(a), len(b)))
        hi = int(st.hypergeom.isf(ALPHA / 2, n, len(a), len(b)))
        assert lo <= overlap <= hi, f"overlap {overlap} of |A|={len(a)}, |B|={len(b)}: expected [{lo}, {hi}]"
    else:
        # data-dependent: P(both) per cell = q^2 with q its direction's rate
        stored = tensor_bits(raw_bytes(clean))
        n1 = int(stored.sum())
        both1 = int(stored[np.intersect1d(a, b, assume_unique=True)].sum())
        assert_binomial(both1, n1, 2e-2 ** 2, "1->0 flips on both accesses")
        assert_binomial(overlap - both1, n - n1, 1e-2 ** 2, "0->1 flips on both accesses")


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["em0:p=1e-3", "em3:p10=1e-2,p01=1e-3",
                                  "em1:fraction=0.01,p=0.05,p_else=1e-4",
                                  "em2:fraction=0.05,p=0.01,p_else=1e-4"])
def test_fixed_persistence_same_for_every_access(spec):
    x = random_tensor(torch.float16, BITS, seed=61)
    clean = x.clone()
    ref = None
    for access in (0, 1, 9, 123456):
        y = clean.clone()
        log, pos, _ = inject_checked(y, spec + ";persistence=fixed", 88, access=access, address_map=SMALL_MAP)
        assert log.n_bits > 0
        if ref is None:
            ref = (pos, raw_bytes(y))
        else:
            assert np.array_equal(pos, ref[0]), f"access {access}: fixed map changed"
            assert np.array_equal(raw_bytes(y), ref[1])


def _fixed_sets(x_clean, specs, seed):
    out = []
    for spec in specs:
        y = x_clean.clone()
        _, pos, _ = inject_checked(y, spec + ";persistence=fixed", seed, access=4)
        out.append(pos)
    return out


@pytest.mark.slow
def test_fixed_persistence_nested_em0():
    ps = [1e-3, 2e-3, 1e-2, 0.3, 0.6]
    x = random_tensor(torch.float32, BITS, seed=71)
    sets = _fixed_sets(x, [f"em0:p={p}" for p in ps], seed=99)
    n = x.numel() * 32
    for (p1, a), (p2, b) in zip(zip(ps, sets), zip(ps[1:], sets[1:])):
        assert np.isin(a, b, assume_unique=True).all(), f"fixed map at p={p1} not inside the map at p={p2}"
        # cells outside A are i.i.d.: P(fail at p2 | not at p1) = (p2 - p1) / (1 - p1)
        assert_binomial(len(b) - len(a), n - len(a), (p2 - p1) / (1 - p1), f"cells added from p={p1} to {p2}")


@pytest.mark.slow
def test_fixed_persistence_nested_em3():
    x = random_tensor(torch.int8, BITS, seed=72, ones=0.5)
    rates = [(1e-3, 1e-4), (2e-3, 3e-4), (2e-2, 3e-4), (2e-2, 2e-2)]
    sets = _fixed_sets(x, [f"em3:p10={a},p01={b}" for a, b in rates], seed=98)
    for i in range(len(sets) - 1):
        assert np.isin(sets[i], sets[i + 1], assume_unique=True).all(), f"em3 fixed map {rates[i]} not nested"
    stored = tensor_bits(raw_bytes(x))
    n1 = int(stored.sum())
    a, b = sets[0], sets[1]
    added = np.setdiff1d(b, a, assume_unique=True)
    a1, add1 = int(stored[a].sum()), int(stored[added].sum())
    (q1, r1), (q2, r2) = rates[0], rates[1]
    assert_binomial(add1, n1 - a1, (q2 - q1) / (1 - q1), "em3 1->0 cells added")
    assert_binomial(len(added) - add1, stored.size - n1 - (len(a) - a1), (r2 - r1) / (1 - r1),
                    "em3 0->1 cells added")


# ---------------------------------------------------------------- determinism
def test_same_seed_same_bits_different_seed_differs():
    x = random_tensor(torch.float32, 2 ** 17 * 32, seed=81)
    clean = x.clone()
    images = {}
    for seed in (5, 5, 6):
        y = clean.clone()
        inject_(y, "em1:fraction=0.01,p=0.05,p_else=1e-4+em0:p=1e-3", seed, backend="cpu")
        images.setdefault(seed, []).append(raw_bytes(y))
    assert np.array_equal(images[5][0], images[5][1])
    assert not np.array_equal(images[5][0], images[6][0])
    assert not np.array_equal(images[5][0], raw_bytes(clean))


REF_CASES = [  # (dtype, spec, address map, base address, access)
    ("float32", "em0:p=1e-3", None, 0, 0),
    ("float16", "em0:p=0.05", SMALL_MAP, 6, 1),
    ("bfloat16", "em1:fraction=0.02,p=0.05,p_else=1e-4", SMALL_MAP, 2 * 1000, 0),
    ("int8", "em2:fraction=0.1,p=0.02,p_else=1e-4", SMALL_MAP, 4099, 2),
    ("uint8", "em3:p10=1e-2,p01=1e-3", SMALL_MAP, 0, 0),
    ("int16", "em0:p=1e-3+em3:p10=1e-2,p01=0;persistence=fixed", SMALL_MAP, 2 * 333, 7),
    ("int32", "em1:fraction=0.01,p=0.1+em2:fraction=0.05,p=0.01+em0:p=1e-5", SMALL_MAP, 4 * 3, 3),
    ("float32", "em0:p=0.3;persistence=fixed", SMALL_MAP, 0, 0),
    ("float32", "em1:fraction=0.02,p=0.5,p_else=1e-3;persistence=fixed", SMALL_MAP, 4 * 77, 4),
    # low rates: stream groups of many tiles (plan.py), cut by classes and partial tiles
    ("float32", "em0:p=1e-5", SMALL_MAP, 4 * 5, 1),
    ("int8", "em2:fraction=0.1,p=1e-3,p_else=1e-6", SMALL_MAP, 3, 0),
    ("float16", "em1:fraction=0.05,p=1e-3,p_else=1e-6;persistence=fixed", SMALL_MAP, 2 * 7, 2),
    ("bfloat16", "em3:p10=1e-4,p01=1e-5", SMALL_MAP, 0, 3),
    ("int32", "em1:fraction=0.01,p=1e-3,p_else=1e-7+em0:p=1e-5+em2:fraction=0.2,p=1e-4;persistence=fixed",
     SMALL_MAP, 8, 1),
    ("int8", "em1:fraction=0.0003,p=0.3,p_else=1e-6+em0:p=1e-5", SMALL_MAP, 1024 * 7 + 5, 2),  # empty weak lists
]


@pytest.mark.parametrize("name,spec,amap,base,access", REF_CASES, ids=[f"{c[0]}-{c[1]}" for c in REF_CASES])
def test_numba_equals_reference(name, spec, amap, base, access):
    dtype = DTYPES[name]
    n_elems = 100_000 if "0.3" not in spec else 30_000
    x = random_tensor(dtype, n_elems * word_bits(dtype), seed=91)
    clean = x.clone()
    kw = dict(access=access, base_address=base, address_map=amap)
    a, b = clean.clone(), clean.clone()
    la = inject_(a, spec, 1234, backend="cpu", **kw)
    lb = inject_(b, spec, 1234, backend="reference", **kw)
    assert la.backend == "cpu" and lb.backend == "reference"
    assert la.n_bits > 0
    assert np.array_equal(raw_bytes(a), raw_bytes(b)), f"numba and reference differ for {spec} on {name}"
    ia, ma = la.word_flips()
    ib, mb = lb.word_flips()
    assert np.array_equal(ia, ib) and np.array_equal(ma, mb)
    assert la.n_bits == lb.n_bits


# ------------------------------------------------------------- stream groups
# Low rates walk runs of tiles as one stream (plan.py's stream groups). Any fixed set of
# disjoint windows of i.i.d. cells has independent binomial counts; the groups' own windows,
# windows across their boundaries, and the distances from a boundary to the nearest flips
# are where a wrong concatenation (a lost or repeated draw, a reset at a tile or group
# boundary) would show.
GROUP_CASES = [  # (spec, population, p, seed): population "all" or "weak" (em1's weak cells)
    ("em0:p=1e-4", "all", 1e-4, 1),
    ("em0:p=3e-4", "all", 3e-4, 2),
    ("em0:p=3e-4;persistence=fixed", "all", 3e-4, 3),
    ("em1:fraction=0.05,p=4e-3,p_else=0", "weak", 4e-3, 4),
]
GROUP_BITS = 2 ** 26


def _windows_check(counts: np.ndarray, sizes: np.ndarray, p: float, what: str) -> None:
    """Counts in disjoint windows: each in its exact binomial interval (Bonferroni over the
    windows), their total binomial, and their dispersion sum (k - np)^2 / (np(1-p)) inside the
    two-sided chi-square(len) acceptance region (too even counts fail too)."""
    n = len(counts)
    assert n >= 20, f"{what}: only {n} windows"
    lo = st.binom.ppf(ALPHA / (2 * n), sizes, p)
    hi = st.binom.isf(ALPHA / (2 * n), sizes, p)
    bad = np.flatnonzero((counts < lo) | (counts > hi))
    assert not len(bad), f"{what}: window {bad[0]} has {counts[bad[0]]} of {sizes[bad[0]]} (p={p:g})"
    assert_binomial(int(counts.sum()), int(sizes.sum()), p, f"{what}: total")
    x2 = float(np.sum((counts - sizes * p) ** 2 / (sizes * p * (1 - p))))
    assert st.chi2.ppf(ALPHA / 2, n) <= x2 <= st.chi2.isf(ALPHA / 2, n), f"{what}: dispersion {x2:.1f} over {n}"


def _geometric_check(d: np.ndarray, p: float, what: str) -> None:
    """Distances d >= 0 ~ Geometric(p) on {0, 1, ...}: chi-square over near-equiprobable bins
    (at least 8 expected per bin)."""
    assert len(d) >= 30, f"{what}: only {len(d)} distances"
    bins = min(12, len(d) // 8)
    q = np.arange(1, bins) / bins
    edges = np.unique(np.ceil(np.log1p(-q) / np.log1p(-p)).astype(np.int64))
    probs = -np.diff(np.concatenate([[1.0], (1 - p) ** edges.astype(float), [0.0]]))
    obs = np.bincount(np.searchsorted(edges, d, side="right"), minlength=len(probs))
    res = st.chisquare(obs, probs * len(d))
    assert res.pvalue > ALPHA, f"{what}: {obs.tolist()} vs {np.round(probs * len(d), 1).tolist()} (p={res.pvalue:.2g})"


@pytest.mark.slow
@pytest.mark.parametrize("spec,population,p,seed", GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_stream_groups_counts_positions_and_boundaries(spec, population, p, seed):
    model = ErrorModel.from_spec(spec)
    x = random_tensor(torch.float32, GROUP_BITS, seed=500 + seed)
    _, pos, _ = inject_checked(x, model, seed, access=1, address_map=SMALL_MAP)
    plan = compile_plan(model, word_bits=32, nbytes=GROUP_BITS // 8, seed=seed, access=1, base_address=0,
                        address_map=SMALL_MAP)
    # the sub-pass at rate p (fixed: the band holding p); its groups span several tiles
    s = int(np.argmax(plan.sp_gbits.max(axis=1))) if plan.n_subpasses == 1 else next(
        i for i in range(plan.n_subpasses) if plan.sp_L[i].min() < 0 and -np.expm1(plan.sp_L[i].min()) >= p / 2)
    g0, g1 = plan.grp_off[s], plan.grp_off[s + 1]
    start = plan.grp_t0[g0:g1] * plan.row_bits  # base address 0: tensor bit = tile * row_bits + rowpos
    end = plan.grp_t1[g0:g1] * plan.row_bits
    assert plan.sp_gbits[s].max() >= 3 and len(start) >= 20, "the test needs multi-tile stream groups"
    cells = np.ones(GROUP_BITS, bool) if population == "all" else weak_bitline_cells(plan)
    ccum = np.concatenate([[0], np.cumsum(cells)])
    pcum = np.searchsorted(pos, np.arange(GROUP_BITS + 1))  # flips before each bit
    assert cells[pos].all(), "flips outside the population"

    # 1. counts per group
    _windows_check(pcum[end] - pcum[start], ccum[end] - ccum[start], p, f"{spec}: flips per group")
    # 2. counts across group boundaries: half a (smallest) group on each side
    b = start[1:]
    w = int(np.min(end - start)) // 2
    _windows_check(pcum[b + w] - pcum[b - w], ccum[b + w] - ccum[b - w], p, f"{spec}: flips across boundaries")
    # 3. positions within full-size groups: uniform over the group's cells
    full = (end - start) == (end - start).max()
    k = np.searchsorted(start, pos, side="right") - 1
    sel = full[k]
    rel = (ccum[pos[sel]] - ccum[start[k[sel]]]) / (ccum[end[k[sel]]] - ccum[start[k[sel]]])
    obs = np.bincount((rel * 32).astype(np.int64), minlength=32)
    res = st.chisquare(obs)
    assert res.pvalue > ALPHA, f"{spec}: positions within groups not uniform: {obs.tolist()} (p={res.pvalue:.2g})"
    # 4. no boundary bias: the distance (in population cells) from a boundary to the first flip
    # after it and from the last flip before it are Geometric(p) (boundaries with >= 60/p
    # cells on that side: censoring below e^-60)
    margin = 60.0 / p
    after = b[(ccum[-1] - ccum[b]) >= margin]
    nxt = pos[np.searchsorted(pos, after)]
    _geometric_check(ccum[nxt] - ccum[after], p, f"{spec}: first flip after a group boundary")
    before = b[ccum[b] >= margin]
    prv = pos[np.searchsorted(pos, before) - 1]
    _geometric_check(ccum[before] - ccum[prv] - 1, p, f"{spec}: last flip before a group boundary")


def test_stream_groups_of_fixed_maps_do_not_depend_on_the_rate():
    """Fixed persistence: a band's stream groups depend on its rate and the weak-wordline
    classes, never on q, so the bands shared by two rates walk the same streams (nesting)."""
    plans = [compile_plan(ErrorModel.from_spec(f"em2:fraction=0.2,p={p},p_else={p / 10};persistence=fixed"),
                          word_bits=32, nbytes=1 << 22, seed=3, access=0, base_address=1000, address_map=SMALL_MAP)
             for p in (1e-5, 1e-3)]
    a, b = plans
    assert a.n_subpasses < b.n_subpasses
    for s in range(a.n_subpasses):
        assert np.array_equal(a.sp_key[s], b.sp_key[s]) and np.array_equal(a.sp_gbits[s], b.sp_gbits[s])
        ga = slice(a.grp_off[s], a.grp_off[s + 1])
        gb = slice(b.grp_off[s], b.grp_off[s + 1])
        # at the lower rate a class may be inactive in a band: its groups are dropped, the rest equal
        keep = np.isin(b.grp_t0[gb], a.grp_t0[ga])
        assert np.array_equal(a.grp_t0[ga], b.grp_t0[gb][keep]) and np.array_equal(a.grp_t1[ga], b.grp_t1[gb][keep])
    assert a.sp_gbits.max() > 0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["em0", "em2"])
def test_fixed_persistence_nested_low_rates(family):
    """Nested fixed maps at rates where stream groups span many tiles (and, em2, split at
    weak-wordline class changes)."""
    ps = [1e-6, 4e-6, 3e-5, 2e-4]
    specs = ([f"em0:p={p}" for p in ps] if family == "em0"
             else [f"em2:fraction=0.2,p={p * 10},p_else={p}" for p in ps])
    x = random_tensor(torch.float32, GROUP_BITS, seed=73)
    sets = []
    for spec in specs:
        y = x.clone()
        _, pos, _ = inject_checked(y, spec + ";persistence=fixed", 97, access=4, address_map=SMALL_MAP)
        sets.append(pos)
    n = GROUP_BITS
    for i in range(len(ps) - 1):
        a, b = sets[i], sets[i + 1]
        assert len(a) > 0 and np.isin(a, b, assume_unique=True).all(), f"{family}: map at {ps[i]} not nested"
        if family == "em0":
            p1, p2 = ps[i], ps[i + 1]
            assert_binomial(len(b) - len(a), n - len(a), (p2 - p1) / (1 - p1), f"cells added from {p1} to {p2}")


# ----------------------------------------------------------------------- undo
@pytest.mark.parametrize("name", list(DTYPES))
def test_undo_restores_every_format(name):
    dtype = DTYPES[name]
    x = random_tensor(dtype, 2 ** 16 * word_bits(dtype), seed=101)   # includes NaN/inf patterns
    before = raw_bytes(x)
    log = inject_(x, "em0:p=1e-2+em3:p10=1e-2,p01=1e-3", 3, backend="cpu")
    assert log.n_bits > 0 and not np.array_equal(raw_bytes(x), before)
    log.undo()
    assert log.undone
    assert np.array_equal(raw_bytes(x), before)
    with pytest.raises(RuntimeError):
        log.undo()
    assert np.array_equal(raw_bytes(x), before)


@pytest.mark.parametrize("mode", ["zero", "clamp"])
@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16"])
def test_undo_with_correction(name, mode):
    dtype = DTYPES[name]
    x = (torch.randn(2 ** 16, generator=torch.Generator().manual_seed(5)) * 3).to(dtype)
    before = raw_bytes(x)
    lo, hi = float(x.float().min()), float(x.float().max())
    log = inject_(x, "em0:p=1e-2", 17, backend="cpu", correction=mode)
    assert log.n_corrected > 0
    xf = x.float()
    assert torch.isfinite(xf).all() and ((xf >= lo) & (xf <= hi)).all(), "implausible values survived correction"
    # the log describes the corrected tensor exactly
    assert np.array_equal(flipped_bits(log), changed_bits(before, raw_bytes(x)))
    log.undo()
    assert np.array_equal(raw_bytes(x), before)
    with pytest.raises(RuntimeError):
        log.undo()


def test_undo_numpy_and_reference_backend():
    rng = np.random.default_rng(3)
    arr = rng.standard_normal(50_000).astype(np.float32)
    before = arr.copy()
    for backend in ("cpu", "reference"):
        log = eden.inject_(arr, "em0:p=1e-2", 9, backend=backend, correction="clamp")
        assert log.n_bits > 0 and not np.array_equal(arr.view(np.uint32), before.view(np.uint32))
        log.undo()
        assert np.array_equal(arr.view(np.uint32), before.view(np.uint32))
        with pytest.raises(RuntimeError):
            log.undo()
