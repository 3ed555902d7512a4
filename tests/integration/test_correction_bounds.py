"""Calibrated correction bounds: profiled ranges, their use by the emulation, plans and records."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from eden.dram.profiles import load_profile
from eden.errors import EdenConfigError, EdenDataError
from eden.nn.emulate import DataTypeConfig, EmulationPlan, calibrate_bounds, emulate
from eden.workflows.characterize import record_bounds
from eden.workflows.deploy import emulation_plan


def _mlp():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _finite_minmax(t):
    a = t.detach().numpy().ravel()
    a = a[np.isfinite(a)]
    return float(a.min()), float(a.max())


def test_calibrated_bounds_are_the_hand_computed_finite_min_max():
    model = _mlp()
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(4, 6, generator=g) * (i + 1), torch.zeros(4)) for i in range(3)]
    batches[1][0][0, 0] = math.inf  # non-finite values do not count
    bounds = calibrate_bounds(model, batches, batches=2)
    used = torch.cat([b[0] for b in batches[:2]])  # the third batch (widest) is not calibrated on
    hidden = torch.relu(model[0](used))
    assert bounds["0.ifm"] == _finite_minmax(used)
    assert bounds["2.ifm"] == _finite_minmax(hidden)
    assert bounds["0.weight"] == _finite_minmax(model[0].weight)
    assert bounds["2.bias"] == _finite_minmax(model[2].bias)
    assert bounds["0.ifm"] != _finite_minmax(torch.cat([b[0] for b in batches]))  # the 3rd batch was wider
    assert calibrate_bounds(model, batches, batches=2) == bounds  # deterministic
    assert list(calibrate_bounds(model, batches, names="*.ifm", batches=2)) == ["0.ifm", "2.ifm"]


def test_calibration_refuses_an_empty_set_and_unknown_names():
    model = _mlp()
    with pytest.raises(EdenDataError, match="no batches"):
        calibrate_bounds(model, [])
    with pytest.raises(EdenConfigError, match="unknown data type"):
        calibrate_bounds(model, [(torch.zeros(2, 6),)], names="5.ifm")


def _seen(model, plan, x, name, seed=3, grad=False):
    """What module ``name`` reads (its input after the emulation's hook) and the emulation's stats."""
    seen = []
    mod = model.get_submodule(name[:-len(".ifm")])
    with emulate(model, plan, seed=seed) as emu:
        h = mod.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().clone()))
        try:
            if grad:
                model(x.clone().requires_grad_(True))  # the copy path (_corrupt_ifm), not the fast one
            else:
                with torch.no_grad():
                    model(x)
        finally:
            h.remove()
    return seen[0], emu.stats[name]


@pytest.mark.parametrize("grad", [False, True])
@pytest.mark.parametrize("correction", ["zero", "clamp"])
def test_calibrated_bound_corrects_values_the_batch_bound_lets_through(correction, grad):
    model = _mlp()
    x = torch.linspace(-1, 1, 6 * 4000).reshape(4000, 6)
    low, high = -0.5, 0.5  # narrower than the batch's own [-1, 1]
    em = "em0:p=2e-2"
    calibrated = EmulationPlan({"0.ifm": DataTypeConfig(em, "fp32", correction, bounds=(low, high))})
    per_batch = EmulationPlan({"0.ifm": DataTypeConfig(em, "fp32", correction)})
    got, stats = _seen(model, calibrated, x, "0.ifm", grad=grad)
    ref, ref_stats = _seen(model, per_batch, x, "0.ifm", grad=grad)
    hit = got != x
    assert hit.sum() > 100
    # every corrupted value read back lies in the calibrated range (zero: 0; clamp: the nearer end)
    assert bool(((got[hit] >= low) & (got[hit] <= high)).all())
    if correction == "clamp":
        assert bool(((got[hit] == low) | (got[hit] == high) | (ref[hit] == got[hit])).all())
    # the same raw flips (same seed and address): the per-batch bound let corrupted values in (0.5, 1] through
    through = (ref != x) & torch.isfinite(ref) & ((ref.abs() > high) & (ref.abs() <= 1))
    assert through.sum() > 0
    assert stats.corrected_values > ref_stats.corrected_values
    assert bool(((ref[ref != x] >= -1) & (ref[ref != x] <= 1)).all())  # the per-batch bound holds there


def test_fast_and_copy_paths_read_the_same_bits_with_calibrated_bounds():
    model = _mlp()
    x = torch.linspace(-1, 1, 6 * 500).reshape(500, 6)
    plan = EmulationPlan({"0.ifm": DataTypeConfig("em0:p=1e-2", "fp32", "zero", bounds=(-0.25, 0.75))})
    a, _ = _seen(model, plan, x, "0.ifm")
    b, _ = _seen(model, plan, x, "0.ifm", grad=True)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))


def test_weights_use_calibrated_bounds():
    model = _mlp()
    clean = model[0].weight.detach().clone()
    low, high = -0.01, 0.01
    plan = EmulationPlan({"0.weight": DataTypeConfig("em0:p=5e-2", "fp32", "zero", bounds=(low, high))})
    with emulate(model, plan, seed=2):
        with torch.no_grad():
            model(torch.zeros(1, 6))
        w = model[0].weight.detach().clone()
    hit = w != clean
    assert hit.sum() > 0
    assert bool(((w[hit] >= low) & (w[hit] <= high)).all())
    assert torch.equal(model[0].weight, clean)  # restored


def test_plan_json_round_trip_keeps_bounds_and_per_batch_plans_keep_their_keys():
    plan = EmulationPlan({"*": DataTypeConfig(None, "fp32", "zero"),
                          "0.ifm": DataTypeConfig("em0:p=1e-3", "fp32", "clamp", bounds=(-1.5, 2.25))})
    d = plan.to_dict()
    assert d["entries"][1]["bounds"] == [-1.5, 2.25]
    assert "bounds" not in d["entries"][0]
    back = EmulationPlan.from_dict(d)
    assert back == plan and back.entries[1][1].bounds == (-1.5, 2.25)


@pytest.mark.parametrize("bounds, match", [
    ([2.0, 1.0], "above"), ([0.0, math.inf], "finite"), ([math.nan, 1.0], "finite"), ([1.0], "pair"),
    ("0,1", "pair"), ([True, 2.0], "pair"),
])
def test_bad_bounds_name_the_data_type(bounds, match):
    with pytest.raises(EdenConfigError, match=rf"plan entry '0\.ifm'.*{match}"):
        EmulationPlan({"0.ifm": {"error_model": "em0:p=1e-3", "correction": "zero", "bounds": bounds}})
    rec = {"correction_bounds": {"source": "calibrated", "bounds": {"conv1.ifm": bounds}}}
    with pytest.raises(EdenConfigError, match=rf"data type 'conv1\.ifm'.*{match}"):
        record_bounds(rec)


def test_bounds_need_a_correction():
    with pytest.raises(EdenConfigError, match="need a correction"):
        DataTypeConfig("em0:p=1e-3", "fp32", "none", bounds=(0.0, 1.0))


def test_validation_plans_take_the_records_bounds():
    profile = load_profile("ddr4-2400-8gb-x8")
    op = next(o for o in profile.operating_points if o.ber > 0)
    base = {"format_spec": "fp32", "correction": "zero"}
    rec = dict(base, correction_bounds={"source": "calibrated", "batches": 4, "calibration_data": "digits:train",
                                        "bounds": {"0.ifm": [-1.0, 2.0]}})
    cfgs = dict(emulation_plan(rec, profile, {"0.ifm": op.name, "0.weight": op.name}).entries)
    assert cfgs["0.ifm"].bounds == (-1.0, 2.0)
    assert cfgs["0.weight"].bounds is None  # not calibrated: per batch
    assert record_bounds(base) is None
    assert all(c.bounds is None for _, c in emulation_plan(base, profile, {"0.ifm": op.name}).entries)


def test_characterize_stores_calibrated_bounds_and_uses_them(tmp_path):
    from eden.workflows.characterize import characterize

    model = _mlp()
    g = torch.Generator().manual_seed(7)
    data = [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(3)]
    calib = [(torch.randn(16, 6, generator=g) * 2, torch.zeros(16, dtype=torch.long)) for _ in range(2)]
    common = dict(mode="coarse", seeds=1, resolution_decades=1.0, correction="zero")
    rec = characterize(model, data, "em0:p=1e-3", correction_bounds="calibrated", calibration_loader=calib,
                       calibration_batches=2, calibration_id="calib", cache_path=tmp_path / "c.json", **common)
    cb = rec["correction_bounds"]
    assert cb["source"] == "calibrated" and cb["batches"] == 2 and cb["calibration_data"] == "calib"
    assert record_bounds(rec) == calibrate_bounds(model, calib, batches=2)
    # the evaluated plans (the cache's keys) gave every corrupted data type its calibrated bounds
    text = (tmp_path / "c.json").read_text()
    assert text.count('\\"bounds\\": [') >= len(cb["bounds"])
    assert "correction_bounds" not in characterize(model, data, "em0:p=1e-3", cache_path=tmp_path / "d.json",
                                                   **common)
    assert '\\"bounds\\"' not in (tmp_path / "d.json").read_text()
    with pytest.raises(EdenConfigError, match="need a correction"):
        characterize(model, data, "em0:p=1e-3", mode="coarse", seeds=1, correction_bounds="calibrated")
    with pytest.raises(EdenConfigError, match="correction bounds"):
        characterize(model, data, "em0:p=1e-3", correction_bounds="profiled", **common)
