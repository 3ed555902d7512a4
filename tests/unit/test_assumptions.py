"""Every energy result states its assumptions: the saving at both ends of the VDD law's alpha range,
measured vs transferred operating points, lower-bound (saturated) points, the partition model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eden.dram.profiles import Measurement, load_profile
from eden.errors import EdenConfigError
from eden.workflows.deploy import DeployOptions, deploy, report_table

ROOT = Path(__file__).resolve().parents[2]
RECORD = json.loads((ROOT / "docs" / "tolerance_digits-lenet_em0_fp32_zero.json").read_text())


@pytest.fixture(scope="module")
def pooled():
    return deploy(RECORD, load_profile("ddr4-2400-8gb-x8"), options=DeployOptions(policy="greedy"))


def test_saving_is_given_at_both_ends_of_alpha(pooled):
    a = pooled["assumptions"]
    s = a["energy_saving_by_alpha"]
    assert a["alpha_range"] == [0.0, 1.0] and set(s) == {"0", "1"}
    assert s["1"] == pytest.approx(pooled["totals"]["energy_saving_fraction"], rel=1e-12)
    assert 0 < s["0"] < s["1"]  # with IDD independent of VDD only the V factor of P = V I is saved
    text = report_table(pooled)
    assert "assumptions:" in text and "at alpha 0" in text and "partitions:" in text


def test_alpha_in_between_is_reported_too():
    rep = deploy(RECORD, load_profile("ddr4-2400-8gb-x8"), options=DeployOptions(policy="greedy", alpha=0.5))
    s = rep["assumptions"]["energy_saving_by_alpha"]
    assert set(s) == {"0", "0.5", "1"} and s["0"] < s["0.5"] < s["1"]
    assert s["0.5"] == pytest.approx(rep["totals"]["energy_saving_fraction"], rel=1e-12)


def test_points_say_transferred_pooled_and_lower_bound(pooled):
    pts = {p["name"]: p for p in pooled["assumptions"]["operating_points"]}
    assert pts and all(p["transferred"] and p["pooled"] for p in pts.values())
    assert pts["vdd-0.978"]["ber_is_lower_bound"]  # vendor C saturates at 50% on all 7 DIMMs at 1.1 V
    assert "vdd-1.111" not in pts or not pts["vdd-1.111"]["ber_is_lower_bound"]


def test_lower_bound_flags_follow_the_saturated_measurements():
    prof = load_profile("ddr3l-vendor-c")
    flags = {op.name: op.measured.lower_bound for op in prof.operating_points if op.measured is not None}
    assert flags["vdd-1.100"] and flags["vdd-1.125"] and not flags["vdd-1.200"] and not flags["vdd-1.250"]
    assert not any(op.measured.lower_bound for op in load_profile("ddr3l-vendor-b").operating_points
                   if op.measured is not None)


def test_avoiding_lower_bounds_maps_nothing_there():
    prof = load_profile("ddr4-2400-8gb-x8-vendor-c")
    rep = deploy(RECORD, prof, options=DeployOptions(policy="greedy", lower_bounds="avoid"))
    used = {r["partition"] for r in rep["datatypes"]}
    lower = {op.name for op in prof.operating_points if op.measured is not None and op.measured.lower_bound}
    assert lower and not used & lower
    assert not any(p["ber_is_lower_bound"] for p in rep["assumptions"]["operating_points"])
    with pytest.raises(EdenConfigError, match="lower-bound policy"):
        DeployOptions(lower_bounds="ignore")


def test_measurement_lower_bound_round_trips_and_is_checked():
    m = Measurement("50% of lines", 1e-3, "em0-equivalent", "x.csv", lower_bound=True)
    assert m.to_dict()["lower_bound"] is True and Measurement.from_mapping(m.to_dict()) == m
    assert "lower_bound" not in Measurement("f", 1e-3, "e", "d").to_dict()
    with pytest.raises(ValueError, match="lower_bound"):
        Measurement("f", 1e-3, "e", "d", lower_bound="yes")


def test_run_summary_prints_the_assumptions_and_why_retraining_adds_little(pooled):
    from eden.workflows.pipeline import _assumption_lines, _share_note

    lines = _assumption_lines({"without_retraining": pooled["assumptions"], "with_retraining": pooled["assumptions"]})
    text = "\n".join(lines)
    assert "with retraining, VDD law" in text and "without retraining: energy saved" in text and "alpha 0" in text
    assert "TRANSFERRED" in text and "partitions:" in text
    assert "older eden" in _assumption_lines({})[0]
    # the pooled profile's mapping already uses its deepest point (0.978 V): nothing deeper to unlock
    used = {r["partition"] for r in pooled["datatypes"]}
    note = _share_note(pooled, 0.004)
    assert ("vdd-0.978" in used) == (note is not None)
    assert _share_note(pooled, 0.5) is None


def test_validation_emulates_with_the_records_ecc():
    from eden.workflows.deploy import emulation_plan

    prof = load_profile("ddr4-2400-8gb-x8-vendor-c")
    assignment = {d["name"]: "vdd-1.111" for d in RECORD["datatypes"]}
    plain = emulation_plan(RECORD, prof, assignment)
    assert all(cfg.ecc == "none" for _, cfg in plain.entries)
    coded = emulation_plan({**RECORD, "ecc": "secded72"}, prof, assignment)
    assert all(cfg.ecc == "secded72" for key, cfg in coded.entries if key != "*")
