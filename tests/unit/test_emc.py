"""emc (eden/errormodels/components/emc.py): errors where weak rows and weak 64-byte line positions
intersect.

Exact statistics with fixed seeds: the injected flips have the rate table's rate in each line class
(binomial bounds), the errors of a faulty line follow Binomial(512, p) given one (chi-square), the
weak maps are nested in their fractions, the oracle and the numba backend give the same bits (the
CUDA kernels' host build: tests/kernels/test_cuda_host.py), spec and HDF5 round trips, a planted
model's fit recovers it, bad parameters are refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from eden.dram.address import DEFAULT_ADDRESS_MAP, DramOrganization
from eden.dram.fit import RecordStats, fit, simulate_records, unit_stats
from eden.dram.raw import RawCharacterization
from eden.engine.backends import reference
from eden.engine.ops import inject_
from eden.engine.plan import compile_plan
from eden.errormodels.component import WeakLines
from eden.errormodels.components import ClusteredIntersections, component_class
from eden.errormodels.components.emc import LINE_BITS
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError

ALPHA = 1e-6  # two-sided level of every binomial bound here (fixed seeds: deterministic)


def _plan(spec: str, nbytes: int, seed: int = 5, access: int = 0):
    return compile_plan(ErrorModel.from_spec(spec), word_bits=32, nbytes=nbytes, seed=seed, access=access,
                        base_address=0, address_map=DEFAULT_ADDRESS_MAP)


def _weak_cells(plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weak row per tile bool[T], weak bitline bool[T, row_bits], intersection bool[T*row_bits])."""
    T, B = plan.n_tiles, plan.row_bits
    weak_row = plan.tile_wlclass[0].astype(bool)
    weak_bl = np.zeros((T, B), bool)
    for t in range(T):
        g = int(plan.tile_group[t])
        weak_bl[t, plan.bl_cols[plan.bl_offsets[0, g]:plan.bl_offsets[0, g + 1]]] = True
    return weak_row, weak_bl, (weak_bl & weak_row[:, None]).reshape(-1)


def _flipped_bits(plan, words: np.ndarray) -> np.ndarray:
    idx, mask = reference.sample_flips(plan, words)
    flips = np.zeros(words.size * 32, bool)
    bits = np.unpackbits(mask.view(np.uint8), bitorder="little").reshape(-1, 32).astype(bool)
    flips.reshape(-1, 32)[idx] = bits
    return flips


def _inside(lo_hi, k, n):
    lo, hi = stats.binom.interval(1 - ALPHA, n, lo_hi)
    return lo <= k <= hi


def test_rates_per_line_class_are_the_rate_table():
    comp = ClusteredIntersections(line_fraction=0.25, wl_fraction=0.3, p=0.01, p_else=2e-4)
    spec = comp.to_spec()
    plan = _plan(spec, nbytes=512 * DEFAULT_ADDRESS_MAP.organization.row_bytes)
    words = np.random.default_rng(0).integers(0, 2**32, plan.n_tiles * plan.row_bits // 32, dtype=np.uint32)
    flips = _flipped_bits(plan, words)
    weak_row, weak_bl, inter = _weak_cells(plan)
    # the maps are whole line positions and the fractions hold (binomial over lines and rows)
    lines = weak_bl.reshape(plan.n_tiles, -1, LINE_BITS)
    assert np.all(lines.all(axis=2) == lines.any(axis=2)), "weak bitlines come in whole 64-byte lines"
    groups = np.unique(plan.tile_group)
    n_lines = len(groups) * plan.row_bits // LINE_BITS
    weak_lines = sum(int(plan.bl_offsets[0, g + 1] - plan.bl_offsets[0, g]) for g in groups) // LINE_BITS
    assert _inside(0.25, weak_lines, n_lines)
    assert _inside(0.3, int(weak_row.sum()), plan.n_tiles)
    # flips per class: p at the intersections, p_else everywhere else
    for cls, rate in ((inter, comp.rate_table(True, True)[0]), (~inter, comp.rate_table(False, True)[0])):
        n, k = int(cls.sum()), int(flips[cls].sum())
        assert n > 100_000 and _inside(rate, k, n), (rate, k, n)
    assert comp.rate_table(True, False) == comp.rate_table(False, False) == (2e-4, 2e-4)
    # and the mean is what expected_ber says
    model = ErrorModel.from_spec(spec)
    assert model.expected_ber(0.5) == pytest.approx(0.25 * 0.3 * 0.01 + (1 - 0.075) * 2e-4, rel=1e-12)


def test_errors_per_faulty_line_follow_binomial_512_p():
    """p_else = 0: a line of a weak row at a weak position holds Binomial(512, p) errors; a faulty
    one holds k >= 1 with probability pmf(k) / (1 - pmf(0)), mean 512 p / (1 - (1 - p)^512)."""
    p = 0.006
    plan = _plan(f"emc:line_fraction=0.5,wl_fraction=0.5,p={p},p_else=0",
                 nbytes=1024 * DEFAULT_ADDRESS_MAP.organization.row_bytes, seed=11)
    words = np.zeros(plan.n_tiles * plan.row_bits // 32, np.uint32)
    flips = _flipped_bits(plan, words)
    _, _, inter = _weak_cells(plan)
    assert not flips[~inter].any()
    per_line = flips.reshape(-1, LINE_BITS).sum(axis=1)[inter.reshape(-1, LINE_BITS).all(axis=1)]
    faulty = per_line[per_line > 0]
    pmf = stats.binom.pmf(np.arange(LINE_BITS + 1), LINE_BITS, p)
    cond = pmf[1:] / (1 - pmf[0])
    # chi-square over k = 1..7 and >= 8 (every expected count >= 5)
    obs = np.array([np.sum(faulty == k) for k in range(1, 8)] + [np.sum(faulty >= 8)])
    exp = faulty.size * np.append(cond[:7], cond[7:].sum())
    assert exp.min() >= 5
    chi2 = float(np.sum((obs - exp) ** 2 / exp))
    assert stats.chi2.sf(chi2, len(obs) - 1) > ALPHA
    # the fraction of lines that fail at all
    assert _inside(1 - pmf[0], faulty.size, per_line.size)
    # simulate_records (the fit's simulator) gives the same law
    org = DramOrganization(banks=2, rows=1024, row_bytes=8192, subarray_rows=512)
    t = simulate_records(f"emc:line_fraction=0.5,wl_fraction=0.5,p={p},p_else=0", org, seed=3, column_bits=512,
                         iterations=1, per_iteration=True, record_direction=False)
    mean = LINE_BITS * p / (1 - pmf[0])
    sd = np.sqrt((LINE_BITS * p * (1 - p) + (LINE_BITS * p) ** 2) / (1 - pmf[0]) - mean ** 2)
    got = unit_stats(t, org)["errors_per_faulty_unit"]
    assert abs(got - mean) < 6 * sd / np.sqrt(t.n_records)


def test_weak_maps_are_nested_in_their_fractions():
    nbytes = 256 * DEFAULT_ADDRESS_MAP.organization.row_bytes
    prev = None
    for f in (0.05, 0.2, 0.6):
        _, weak_bl, _ = _weak_cells(_plan(f"emc:line_fraction={f},wl_fraction={f},p=0.01", nbytes))
        weak_row = _plan(f"emc:line_fraction={f},wl_fraction={f},p=0.01", nbytes).tile_wlclass[0].astype(bool)
        if prev is not None:
            assert np.all(weak_bl >= prev[0]) and np.all(weak_row >= prev[1])
            assert weak_bl.sum() > prev[0].sum() and weak_row.sum() > prev[1].sum()
        prev = (weak_bl, weak_row)
    # keyed per component: the same component at index 1 draws other maps
    a = _plan("emc:line_fraction=0.3,wl_fraction=0.3,p=0.01", nbytes)
    b = _plan("em0:p=0+emc:line_fraction=0.3,wl_fraction=0.3,p=0.01", nbytes)
    assert not np.array_equal(a.tile_wlclass[0], b.tile_wlclass[0])


@pytest.mark.parametrize("persistence", ["", ";persistence=fixed"])
def test_oracle_equals_numba(persistence):
    pytest.importorskip("numba")
    spec = "emc:line_fraction=0.2,wl_fraction=0.25,p=0.03,p_else=1e-5+em1:fraction=0.01,p=1e-3" + persistence
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(600_000).astype(np.float32))
    outs = []
    for backend in ("reference", "cpu"):
        y = x.clone()
        log = inject_(y, spec, seed=9, access=3, base_address=8192 * 5 + 128, backend=backend)
        outs.append((y.numpy().view(np.uint32).copy(), log.n_bits))
    assert outs[0][1] > 1000
    assert np.array_equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]


def test_spec_and_hdf5_round_trip(tmp_path):
    model = ErrorModel.from_spec("emc:line_fraction=0.125,wl_fraction=0.0926,p=0.0016383,p_else=3.75e-07")
    assert ErrorModel.from_spec(model.to_spec()) == model
    path = tmp_path / "emc.h5"
    model.save(path)
    assert ErrorModel.load(path) == model
    comp = model.components[0]
    assert comp.weak_lines is WeakLines.BOTH and component_class("emc") is ClusteredIntersections
    assert comp.weak_fractions() == {WeakLines.BITLINES: 0.125, WeakLines.WORDLINES: 0.0926}
    scaled = comp.scaled(2.0)
    assert (scaled.line_fraction, scaled.wl_fraction, scaled.p) == (0.125, 0.0926, 2 * 0.0016383)


def test_bad_parameters_are_refused():
    with pytest.raises(EdenConfigError, match=r"emc.p .* must be >= emc.p_else"):
        ErrorModel.from_spec("emc:line_fraction=0.1,wl_fraction=0.1,p=1e-5,p_else=1e-3")
    with pytest.raises(EdenConfigError, match="emc.line_fraction"):
        ErrorModel.from_spec("emc:line_fraction=1.5,wl_fraction=0.1,p=1e-3")
    with pytest.raises(EdenConfigError, match="unknown parameter 'bl_fraction' for emc"):
        ErrorModel.from_spec("emc:bl_fraction=0.1")
    with pytest.raises(EdenConfigError, match="emc needs rows of whole 512-bit lines"):
        simulate_records("emc:line_fraction=0.5,wl_fraction=0.5,p=0.01", DramOrganization(banks=1, rows=16,
                                                                                         row_bytes=32))


def test_fit_recovers_a_planted_model_and_is_selected():
    truth = ClusteredIntersections(line_fraction=0.125, wl_fraction=0.1, p=0.004, p_else=2e-7)
    org = DramOrganization(banks=2, rows=4096, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((truth,)), org, seed=21, column_bits=512, iterations=2)
    raw = RawCharacterization((t,), org)
    r = fit(raw, gof=False)
    assert r.selected == "emc"
    best = r.candidate("emc")
    for name in ("line_fraction", "wl_fraction", "p", "p_else"):
        e = best.estimate(f"emc.{name}")
        assert e.contains(getattr(truth, name)), (e, getattr(truth, name))
    assert best.loglik > r.candidate("em1+em2").loglik
    # records finer than a line cannot hold whole line positions: excluded, with the reason
    fine = simulate_records(ErrorModel((truth,)), DramOrganization(banks=1, rows=512, row_bytes=8192), seed=2,
                            column_bits=64)
    r2 = fit(RawCharacterization((fine,), DramOrganization(banks=1, rows=512, row_bytes=8192)), gof=False)
    assert "emc" in r2.excluded and "64-bit unit" in r2.excluded["emc"]


def test_goodness_of_fit_margins_have_the_model_means():
    comp = ClusteredIntersections(line_fraction=0.25, wl_fraction=0.2, p=0.01, p_else=1e-6)
    org = DramOrganization(banks=2, rows=2048, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((comp,)), org, seed=4, column_bits=512, iterations=2)
    st = RecordStats(t, org)
    rows, cols = ClusteredIntersections.simulate_margins((comp,), st, np.random.default_rng(0))
    mean = comp.mean_flip_rate(0) * org.row_bits * 2
    assert rows.sum() == cols.sum() or abs(rows.sum() - cols.sum()) < 6 * np.sqrt(rows.sum() + cols.sum())
    assert abs(rows.mean() - mean) < 6 * np.sqrt(rows.var() / rows.size)


def test_a_component_with_both_maps_must_say_their_fractions():
    import dataclasses

    from eden.errormodels.component import Component, SubPass, fraction_param

    @dataclasses.dataclass(frozen=True)
    class Both(Component):
        kind = "both_test"
        weak_lines = WeakLines.BOTH
        share: float = fraction_param("a fraction")

        def rate_table(self, weak_bitline, weak_wordline):
            return (0.0, 0.0)

        def sub_passes(self):
            return (SubPass(((0.0, 0.0), (0.0, 0.0))),)

    with pytest.raises(NotImplementedError, match="Both draws both weak-line maps: it must define weak_fractions"):
        Both(0.5).weak_fractions()
