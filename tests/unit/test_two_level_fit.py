"""Two-level persistence in the fit: simulated records (exact statistics), q identified from records
per iteration, the report, the saved file, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.stats as st
from click.testing import CliRunner

from eden.cli import main
from eden.dram.address import DramOrganization
from eden.dram.fit import FitError, fit, fit_test, read_fit_report, save_fit, simulate_records, two_level_q, unit_stats
from eden.dram.raw import MeasurementConditions, RawCharacterization
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError

ALPHA = 1e-3
ORG = DramOrganization(banks=2, rows=2048, row_bytes=1024, subarray_rows=256)
TL = ";persistence=two_level,q="


def assert_binomial(k: int, n: int, p: float, what: str) -> None:
    lo, hi = int(st.binom.ppf(ALPHA / 2, n, p)), int(st.binom.isf(ALPHA / 2, n, p))
    assert lo <= k <= hi, f"{what}: {k} of {n} at p={p:g} (mean {n * p:.1f}); exact interval [{lo}, {hi}]"


def _cells(t, it):
    sel = t.iteration == it
    return set(((t.bank[sel] * ORG.rows + t.row[sel]) * ORG.row_bits + t.column[sel]).tolist())


@pytest.mark.parametrize("q", [0.05, 0.3])
def test_simulated_records_rates_and_cell_repeats(q):
    p = 1e-3
    t = simulate_records(f"em0:p={p}{TL}{q}", ORG, seed=4, iterations=3, per_iteration=True)
    n = ORG.capacity_bytes * 8
    for it in range(3):
        assert_binomial(len(_cells(t, it)), n, p, f"errors of iteration {it}")
    c0, c1, c2 = (_cells(t, i) for i in range(3))
    assert_binomial(len(c1 & c0), len(c1), q, "errors of iteration 1 that failed in iteration 0")
    assert_binomial(len(c2 & c0 & c1), len(c2 & c1), q, "errors of iterations 1, 2 that failed in 0")
    assert (t.count == 1).all()


def test_simulated_q_one_is_fixed():
    spec = "em1:fraction=0.05,p=0.01,p_else=1e-5+em2:fraction=0.1,p=2e-3"
    a = simulate_records(spec + TL + "1", ORG, seed=7, iterations=2, per_iteration=True, column_bits=512)
    b = simulate_records(spec + ";persistence=fixed", ORG, seed=7, iterations=2, per_iteration=True, column_bits=512)
    for f in ("bank", "row", "column", "count", "iteration"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_two_level_q_formula():
    assert two_level_q(0.169, 0.127) == pytest.approx(1 - 0.831 / 0.873)
    assert two_level_q(0.342, 0.63) is None and two_level_q(0.3, 0.3) is None and two_level_q(0.5, 1.0) is None
    assert two_level_q(1.0, 0.2) == 1.0


def _raw(spec: str, seed: int = 2) -> RawCharacterization:
    rec = simulate_records(spec, ORG, seed=seed, iterations=2, per_iteration=True, column_bits=512, name="t",
                           operating_point=MeasurementConditions(trcd_ns=10.0))
    return RawCharacterization((rec,), ORG)


#: Candidates whose persistence is the model's alone. emg's slot events at fixed weak slots (groups of
#: one bit) are themselves fixed weak cells failing per access, i.e. two-level persistence inside the
#: component, so on two-level data it wins by BIC (asserted below); q is identified for the others.
PER_CELL = ("em0", "em1", "em2", "em1+em2", "emc", "eml")


def test_fit_identifies_q_and_predicts_the_repeat_fraction(tmp_path):
    raw = _raw("em2:fraction=0.05,p=2e-3,p_else=1e-4" + TL + "0.3")
    assert fit(raw, gof=False).selected == "emg"
    r = fit(raw, persistence="two_level", gof=False, sweep_reps=4, models=PER_CELL)
    assert r.selected == "em2" and r.model.persistence == "two_level"
    assert abs(r.model.q - 0.3) < 0.05, r.model.q
    obs = r.sweeps["observed"]["repeat_error_fraction"]
    d = r.sweeps["predicted"]["em2"]
    assert d["two_level_q"] == r.model.q
    runs = d["repeat_error_fraction_two_level_runs"]
    assert len(runs) == 4 and abs(d["repeat_error_fraction_two_level"] - obs) < 0.03, (runs, obs)
    assert abs(d["repeat_error_fraction_access"] - obs) > 0.15  # access alone does not explain it
    text = r.format_text()
    assert "persistence two_level, q = " in text and "Not identified: whether a repeat is the same cell" in text
    assert "repeat (two-level)" in text
    assert not any("not identified from summed counts" in n for n in r.identifiability)
    # the per-access BER of the fitted model is the fitted rate; the file keeps q and the report
    path = tmp_path / "m.h5"
    save_fit(r, path)
    m = ErrorModel.load(path)
    assert m == r.model and m.q == r.model.q
    rep = read_fit_report(path)
    assert rep["q"] == r.model.q and rep["persistence"] == "two_level"


def test_given_q_is_reported_as_given():
    raw = _raw("em0:p=1e-3")
    r = fit(raw, persistence="two_level", q=0.2, gof=False)
    assert all(c.model.q == 0.2 and c.model.persistence == "two_level" for c in r.candidates)
    assert any("q = 0.2 as given, not identified" in n for n in r.identifiability)
    with pytest.raises(EdenConfigError, match="needs q"):
        fit_test(raw.test("t"), ORG, persistence="two_level")
    with pytest.raises(EdenConfigError, match="option q"):
        fit(raw, persistence="two_level", q=1.5, gof=False)


def test_no_q_fits_when_the_selected_model_repeats_more_than_the_data():
    """Weak rows that fail in both iterations of the fitted em2, but the data's iteration 1 is in
    other rows: no q in (0, 1] can lower the repeat fraction, and the fit says so."""
    rec = _raw("em2:fraction=0.05,p=0.01").test("t")
    moved = dataclasses.replace(rec, row=np.where(rec.iteration == 1, (rec.row + 977) % ORG.rows, rec.row))
    raw = RawCharacterization((moved,), ORG)
    with pytest.raises(FitError, match=r"no two_level q in \(0, 1\] fits the selected em2"):
        fit(raw, persistence="two_level", gof=False)


def test_records_without_iterations_cannot_identify_q():
    rec = simulate_records("em0:p=1e-3", ORG, seed=1, iterations=2, column_bits=512, name="t")
    with pytest.raises(FitError, match="identified only from records per iteration"):
        fit(RawCharacterization((rec,), ORG), persistence="two_level", gof=False)


def test_cli_fit_and_show(tmp_path):
    path = tmp_path / "raw.h5"
    _raw("em2:fraction=0.05,p=2e-3,p_else=1e-4" + TL + "0.3").save(path)
    out = tmp_path / "m.h5"
    run = CliRunner().invoke
    r = run(main, ["errormodel", "fit", str(path), "-o", str(out), "--persistence", "two_level", "--model", "em2",
                   "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["persistence"] == "two_level" and 0.2 < report["q"] < 0.4
    r = run(main, ["errormodel", "show", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["q"] == report["q"]
    r = run(main, ["errormodel", "show", str(out)])
    assert "persistence: two_level (q = " in r.output and "weak map: em2:" in r.output
    r = run(main, ["errormodel", "fit", str(path), "-o", str(tmp_path / "g.h5"), "--persistence", "two_level",
                   "--q", "0.5", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["q"] == 0.5
    r = run(main, ["errormodel", "fit", str(path), "-o", str(tmp_path / "x.h5"), "--q", "0.5"])
    assert r.exit_code == 2 and "--q applies only with --persistence two_level" in r.output
    assert unit_stats(RawCharacterization.load(path).test("t"), ORG)["repeat_error_fraction"] > 0.3
