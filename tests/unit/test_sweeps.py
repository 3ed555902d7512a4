"""Clustering and persistence from per-iteration records (eden.dram.fit.unit_stats, sweep_analysis):
the statistics match their closed forms on synthetic records, and the two-level persistence q
planted in records is recovered."""

from __future__ import annotations

import numpy as np
from scipy import stats

from eden.dram.address import DramOrganization
from eden.dram.fit import fit, simulate_records, sweep_analysis, unit_stats
from eden.dram.raw import RawCharacterization, RecordTest
from eden.errormodels.model import ErrorModel

ORG = DramOrganization(banks=2, rows=1024, row_bytes=4096, subarray_rows=512)
UNITS = ORG.banks * ORG.rows * ORG.row_bits // 512


def _two_level(p_weak: float, q: float, seed: int, iterations: int = 2) -> RecordTest:
    """Records of fixed weak cells (density p_weak) each failing with probability q per iteration."""
    rng = np.random.default_rng(seed)
    weak = simulate_records(f"em0:p={p_weak};persistence=fixed", ORG, seed=seed, column_bits=1,
                            record_direction=False)
    cell = (weak.bank * ORG.rows + weak.row) * ORG.row_bits + weak.column
    keys = []
    for it in range(iterations):
        fail = cell[rng.random(cell.size) < q]
        keys.append((fail // 512) * iterations + it)
    uniq, counts = np.unique(np.concatenate(keys), return_counts=True)
    it, unit = uniq % iterations, uniq // iterations
    C = ORG.row_bits // 512
    r_id, col = unit // C, unit % C
    return RecordTest("two-level", bank=r_id // ORG.rows, row=r_id % ORG.rows, column=col, count=counts,
                      column_bits=512, iterations=iterations, iteration=it)


def test_errors_per_faulty_unit_is_the_truncated_binomial_mean():
    p = 2e-3
    t = simulate_records(f"em0:p={p}", ORG, seed=3, column_bits=512, iterations=2, per_iteration=True)
    s = unit_stats(t, ORG)
    want = 512 * p / (1 - (1 - p) ** 512)
    n = sum(s["faulty_units_per_iteration"])
    # mean of n i.i.d. zero-truncated binomials: 6-sigma band
    second = (512 * p * (1 - p) + (512 * p) ** 2) / (1 - (1 - p) ** 512)  # E[X^2 | X >= 1]
    sd = np.sqrt(second - want ** 2) / np.sqrt(n)
    assert abs(s["errors_per_faulty_unit"] - want) < 6 * sd, (s, want)
    # faulty units per iteration ~ Binomial(units, 1 - (1-p)^512)
    pf = 1 - (1 - p) ** 512
    for k in s["faulty_units_per_iteration"]:
        assert stats.binomtest(k, UNITS, pf).pvalue > 1e-6


def test_repeat_fraction_of_access_records_matches_the_independent_rate():
    p = 2e-4
    t = simulate_records(f"em0:p={p}", ORG, seed=5, column_bits=512, iterations=2, per_iteration=True)
    s = unit_stats(t, ORG)
    pf = 1 - (1 - p) ** 512  # chance the unit failed in iteration 0, independent of iteration 1
    n1 = s["faulty_units_per_iteration"][1]
    assert stats.binomtest(round(s["repeat_unit_fraction"] * n1), n1, pf).pvalue > 1e-6


def test_fixed_records_repeat_everything():
    t = simulate_records("em0:p=1e-4;persistence=fixed", ORG, seed=2, column_bits=512, iterations=2,
                         per_iteration=True)
    s = unit_stats(t, ORG)
    assert s["repeat_error_fraction"] == 1.0 and s["repeat_unit_fraction"] == 1.0
    a = sweep_analysis(t, ORG, {"em0": ErrorModel.from_spec("em0:p=1e-4")}, reps=1)
    assert a["predicted"]["em0"]["two_level_q"] == 1.0


def test_two_level_q_is_recovered():
    for q in (0.2, 0.5):
        p_weak = 4e-4
        t = _two_level(p_weak, q, seed=int(q * 10))
        a = sweep_analysis(t, ORG, {"em0": ErrorModel.from_spec(f"em0:p={p_weak * q}")}, reps=2)
        got = a["predicted"]["em0"]["two_level_q"]
        # ~ 2e3 later errors: binomial sd of q about sqrt(q(1-q)/n) ~ 0.011
        n = a["observed"]["errors_per_iteration"][1]
        assert abs(got - q) < 5 * np.sqrt(q * (1 - q) / n) + 0.01, (q, got, a)
        o = a["predicted"]["em0"]["repeat_error_fraction_access"]
        assert o < 0.15 and abs(a["observed"]["repeat_error_fraction"] - (1 - (1 - q) * (1 - o))) < 0.05


def test_fit_reports_sweeps_only_when_asked_and_without_iterations_says_so():
    t = simulate_records("em0:p=1e-4", ORG, seed=1, column_bits=512, iterations=2, per_iteration=True)
    raw = RawCharacterization((t,), ORG)
    plain = fit(raw, gof=False)
    assert plain.sweeps is None and "sweeps" not in plain.to_dict()
    withs = fit(raw, gof=False, sweeps=True)
    d = withs.to_dict()["sweeps"]
    assert set(d["predicted"]) == {c.name for c in withs.candidates}
    assert "clustering and persistence" in withs.format_text(gof_detail=False)
    summed = simulate_records("em0:p=1e-4", ORG, seed=1, column_bits=512, iterations=2)
    a = sweep_analysis(summed, ORG, {"em0": ErrorModel.from_spec("em0:p=1e-4")}, reps=1)
    assert a["observed"]["repeat_error_fraction"] is None and "not identified" in a["notes"][-1]
