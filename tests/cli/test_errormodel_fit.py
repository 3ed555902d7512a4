"""`eden errormodel fit` / `show`: exit codes, messages, outputs, no silent overwrite."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from eden.cli import main
from eden.dram.address import DramOrganization
from eden.dram.fit import simulate_records
from eden.dram.raw import MeasurementConditions, RawCharacterization, SummaryTest
from eden.errormodels.model import ErrorModel

ORG = DramOrganization(banks=4, rows=512, row_bytes=2048, subarray_rows=256)


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def raw_file(tmp_path):
    """Two tests: weak bitlines per cell (em1 planted) and a summary."""
    t = simulate_records("em1:fraction=0.02,p=0.02,p_else=1e-6", ORG, seed=0, name="weak_cols",
                         operating_point=MeasurementConditions(trcd_ns=10.0))
    s = SummaryTest("vdd1.200V", quantity="faulty_unit_fraction", value=0.2, unit_bits=512,
                    operating_point=MeasurementConditions(vdd_v=1.2))
    path = tmp_path / "raw.h5"
    RawCharacterization((t, s), ORG, provenance={"source": "synthetic"}).save(path)
    return path


def test_fit_selects_saves_and_reports(raw_file, tmp_path):
    out = tmp_path / "m.h5"
    r = _run("errormodel", "fit", raw_file, "-o", out, "--test", "weak_cols", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["selected"] == "em1" and not report["forced"] and report["output"] == str(out)
    model = ErrorModel.load(out)
    assert model.to_spec() == report["model_spec"] and model.components[0].kind == "em1"
    est = {p["name"]: p for p in next(c for c in report["candidates"] if c["model"] == "em1")["parameters"]}
    assert est["em1.fraction"]["ci"][0] <= 0.02 <= est["em1.fraction"]["ci"][1]
    assert "em3" not in report["excluded"]  # cell-level records with directions: em3 was fitted
    with h5py.File(out, "r") as f:
        prov = json.loads(f.attrs["provenance"])
    assert prov["raw_file"] == "raw.h5" and prov["raw_provenance"] == {"source": "synthetic"}
    # show prints it back, with its fit
    r = _run("errormodel", "show", out, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["fit"]["selected"] == "em1" and info["fit"]["test"] == "weak_cols"
    assert info["spec"] == model.to_spec() and info["provenance"]["raw_test"] == "weak_cols"
    r = _run("errormodel", "show", out)
    assert r.exit_code == 0 and "fitted to test 'weak_cols': em1 (lowest BIC)" in r.output


def test_fit_text_report(raw_file, tmp_path):
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "m.h5", "--test", "weak_cols")
    assert r.exit_code == 0, r.output
    for needle in ("selected (lowest BIC): em1", "99% CI", "goodness of fit per row",
                   "goodness of fit per column", "what the data can and cannot identify", "wrote "):
        assert needle in r.output


def test_model_option_forces(raw_file, tmp_path):
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "m.h5", "--test", "weak_cols",
             "--model", "em2", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["selected"] == "em2" and report["forced"] and len(report["candidates"]) == 1
    assert ErrorModel.load(tmp_path / "m.h5").components[0].kind == "em2"


def test_summary_fit_says_what_it_identifies(raw_file, tmp_path):
    out = tmp_path / "v.h5"
    r = _run("errormodel", "fit", raw_file, "-o", out, "--test", "vdd1.200V", "--persistence", "fixed", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    notes = " ".join(report["identifiability"])
    assert "lower bound" in notes and "uniform-equivalent" in notes
    assert report["data"]["ber_lower_bound"] == pytest.approx(0.2 / 512)
    model = ErrorModel.load(out)
    assert model.persistence == "fixed" and model.components[0].p == pytest.approx(1 - 0.8 ** (1 / 512))
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "w.h5", "--test", "vdd1.200V", "--model", "em2")
    assert r.exit_code == 1 and "cannot fit em2" in r.output and "summary-level" in r.output
    assert not (tmp_path / "w.h5").exists()


def test_no_silent_overwrite(raw_file, tmp_path):
    out = tmp_path / "m.h5"
    out.write_bytes(b"keep me")
    r = _run("errormodel", "fit", raw_file, "-o", out, "--test", "weak_cols")
    assert r.exit_code == 1 and "--force" in r.output and out.read_bytes() == b"keep me"
    r = _run("errormodel", "fit", raw_file, "-o", out, "--test", "weak_cols", "--force")
    assert r.exit_code == 0, r.output
    assert ErrorModel.load(out).components[0].kind == "em1"


def test_test_selection(raw_file, tmp_path):
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "choose one of: weak_cols, vdd1.200V" in r.output
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "m.h5", "--test", "weak")
    assert r.exit_code == 2 and "no test named 'weak'" in r.output
    assert not (tmp_path / "m.h5").exists()


def test_em3_not_identifiable_from_line_records(tmp_path):
    t = simulate_records("em0:p=1e-4", ORG, seed=0, column_bits=512)
    raw = tmp_path / "lines.h5"
    RawCharacterization((t,), ORG).save(raw)
    r = _run("errormodel", "fit", raw, "-o", tmp_path / "m.h5", "--model", "em3")
    assert r.exit_code == 1 and "cannot fit em3" in r.output and "no error direction" in r.output
    r = _run("errormodel", "fit", raw, "-o", tmp_path / "m.h5", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["selected"] == "em0" and "em3" in report["excluded"]


# ------------------------------------------------------------------ bad input
def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(f, h5path, data):
    del f[h5path]
    f[h5path] = data


@pytest.mark.parametrize("edit, location, needle", [
    (lambda f: f.attrs.__setitem__("format_version", np.int64(7)), "/ (attribute 'format_version')",
     "written by a newer eden"),
    (lambda f: _replace(f, "tests/weak_cols/row", f["tests/weak_cols/row"][()].astype(np.int64) + 512),
     "/tests/weak_cols/row", "outside the declared organization"),
    (lambda f: _replace(f, "tests/weak_cols/count", -f["tests/weak_cols/count"][()].astype(np.int64)),
     "/tests/weak_cols/count", "found -1 at index 0"),
    (lambda f: f["organization"].attrs.__delitem__("rows"), "/organization (attribute 'rows')",
     "found no such attribute"),
])
def test_bad_raw_file_names_file_and_field(raw_file, tmp_path, edit, location, needle):
    _edit(raw_file, edit)
    out = tmp_path / "m.h5"
    r = _run("errormodel", "fit", raw_file, "-o", out, "--test", "weak_cols")
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())  # click wraps long messages
    assert str(raw_file) in text and f"at {location}:" in text and needle in text, r.output
    assert not out.exists()


def test_truncated_raw_file(raw_file, tmp_path):
    data = raw_file.read_bytes()
    raw_file.write_bytes(data[: len(data) // 3])
    r = _run("errormodel", "fit", raw_file, "-o", tmp_path / "m.h5")
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and str(raw_file) in text and "at /: expected an HDF5 file" in text


def test_missing_raw_file(tmp_path):
    r = _run("errormodel", "fit", tmp_path / "none.h5", "-o", tmp_path / "m.h5")
    assert r.exit_code == 2 and "does not exist" in r.output
