"""Characterization: search, EDEN's expected shape, resume, files, bad input (API and CLI)."""

import json
import sys
import types

import pytest
import torch
from click.testing import CliRunner

from eden.cli import main
from eden.nn import zoo
from eden.workflows.characterize import characterize, load_tolerance, save_tolerance, tolerable_bers, tolerance_table


@pytest.fixture(scope="module")
def lenet():
    return zoo.load_model("digits-lenet")


@pytest.fixture(scope="module")
def loader():
    return zoo.digits_loader("test", batch_size=512)


def _coarse(model, loader, **kw):
    args = dict(mode="coarse", seeds=2, resolution_decades=0.5, ber_min=1e-7)
    args.update(kw)
    return characterize(model, loader, "em0:p=1e-3", **args)


def test_correction_raises_fp32_tolerance_by_orders_of_magnitude(lenet, loader):
    none = _coarse(lenet, loader, correction="none")["coarse"]
    zero = _coarse(lenet, loader, correction="zero")["coarse"]
    assert 0 < none["tolerable_ber"] * 30 < zero["tolerable_ber"] < 0.1
    # the bracket is as narrow as asked and the pass/fail points bracket the answer
    lo, hi = zero["bracket"]
    assert lo == zero["tolerable_ber"] and hi / lo <= 10 ** 0.5 * (1 + 1e-9)
    for p in zero["points"]:
        assert p["passed"] == (p["mean"] >= zero_threshold(lenet, loader) - 1e-12)


def zero_threshold(lenet, loader):
    from eden.nn.evaluate import evaluate

    return evaluate(lenet, loader) - 0.01


def test_reference_accuracy_moves_the_threshold(lenet, loader):
    own = _coarse(lenet, loader, format="int8")
    clean = own["baseline"]["clean_in_format"]
    assert own["baseline"]["reference_source"] == "clean_in_format" and own["baseline"]["reference"] == clean
    # a reference 3 pp below the model's own accuracy: the threshold follows it, and a
    # looser threshold can only keep or raise the tolerable BER (same seeds, same points)
    ref = _coarse(lenet, loader, format="int8", reference_accuracy=clean - 0.03)
    b = ref["baseline"]
    assert b["reference_source"] == "given" and b["threshold"] == pytest.approx(clean - 0.04)
    assert b["clean_in_format"] == clean
    assert ref["coarse"]["tolerable_ber"] > own["coarse"]["tolerable_ber"]
    for p in ref["coarse"]["points"]:
        assert p["passed"] == (p["mean"] >= b["threshold"] - 1e-12)
    assert "from the reference accuracy" in tolerance_table(ref)
    with pytest.raises(ValueError, match="reference_accuracy"):
        _coarse(lenet, loader, reference_accuracy=1.5)


def test_fine_grained_joint_and_record(lenet, loader, tmp_path, monkeypatch):
    rec = characterize(lenet, loader, "em0:p=1e-3", format="int8", mode="fine", seeds=2,
                       resolution_decades=0.5, select=["classifier.*"], model_id="digits-lenet",
                       cache_path=tmp_path / "cache.json")
    assert set(rec["fine"]) == {"classifier.1.weight", "classifier.1.bias", "classifier.1.ifm",
                                "classifier.3.weight", "classifier.3.bias", "classifier.3.ifm"}
    assert rec["joint"]["passed"] and rec["joint"]["backoff_factor"] <= 1
    assert rec["select"] == ["classifier.*"]
    tol = tolerable_bers(rec)
    assert set(tol) == {d["name"] for d in rec["datatypes"]}
    sizes = {d["name"]: d["size_bytes"] for d in rec["datatypes"]}
    assert sizes["classifier.1.weight"] == 64 * 256  # int8: one byte per weight
    assert sizes["classifier.1.ifm"] == 256  # per sample
    assert "classifier.1.weight" in tolerance_table(rec)
    # resume: every point comes from the cache (nothing is evaluated), the record is identical (the
    # evaluations it rests on included) but for its time stamp
    from eden.workflows import executor

    calls = []
    monkeypatch.setattr(executor, "evaluate_task", lambda *a: calls.append(a))
    again = characterize(lenet, loader, "em0:p=1e-3", format="int8", mode="fine", seeds=2,
                         resolution_decades=0.5, select=["classifier.*"], model_id="digits-lenet",
                         cache_path=tmp_path / "cache.json")
    monkeypatch.undo()
    assert calls == [] and {**again, "created_utc": 0} == {**rec, "created_utc": 0}
    # a cache from another configuration is refused, not mixed in
    with pytest.raises(ValueError, match="different run"):
        characterize(lenet, loader, "em0:p=1e-3", format="int4", mode="fine", seeds=2,
                     select=["classifier.*"], cache_path=tmp_path / "cache.json")
    path = tmp_path / "tol.json"
    save_tolerance(rec, path)
    assert load_tolerance(path) == json.loads(json.dumps(rec))
    with pytest.raises(FileExistsError):
        save_tolerance(rec, path)
    with pytest.raises(ValueError, match="leaves no data type of the model to characterize"):
        characterize(lenet, loader, "em0:p=1e-3", format="int8", mode="fine", select=["classifier.*", "!*"])


def test_tolerance_file_checks(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"format": "eden-tolerance", "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_tolerance(p)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON"):
        load_tolerance(p)


@pytest.mark.parametrize("drop", [0, 100, -1, 250])
def test_target_drop_outside_range(lenet, loader, drop):
    with pytest.raises(ValueError, match=r"\(0, 100\)"):
        characterize(lenet, loader, "em0:p=1e-3", target_drop_pp=drop)


def test_empty_dataset(lenet):
    with pytest.raises(ValueError, match="no batches"):
        characterize(lenet, [], "em0:p=1e-3")


@pytest.fixture()
def factories(monkeypatch):
    mod = types.ModuleType("eden_test_factories")
    mod.not_a_module = lambda: "oops"
    mod.empty_data = lambda: []
    mod.tiny_model = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    monkeypatch.setitem(sys.modules, "eden_test_factories", mod)
    return mod


def test_cli_bad_inputs(factories, tmp_path):
    r = CliRunner()
    res = r.invoke(main, ["characterize", "--target-drop", "150", "-o", str(tmp_path / "t.json")])
    assert res.exit_code == 2 and "(0, 100)" in res.output
    res = r.invoke(main, ["characterize", "--model", "eden_test_factories:not_a_module",
                          "-o", str(tmp_path / "t.json")])
    assert res.exit_code == 1 and "not a torch.nn.Module" in res.output
    res = r.invoke(main, ["characterize", "--model", "eden_test_factories:tiny_model",
                          "--data", "eden_test_factories:empty_data", "-o", str(tmp_path / "t.json")])
    assert res.exit_code == 1 and "no batches" in res.output
    res = r.invoke(main, ["emulate", "-m", "em0:p=1e-3", "--select", "features.0.wieght"])
    assert res.exit_code == 1 and "did you mean 'features.0.weight'" in res.output
    res = r.invoke(main, ["characterize", "--model", "digits-lenot"])
    assert res.exit_code == 1 and "did you mean 'digits-lenet'" in res.output
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    res = r.invoke(main, ["characterize", "-o", str(existing)])
    assert res.exit_code == 1 and "--force" in res.output and existing.read_text() == "{}"


def test_cli_characterize_writes_tolerance_and_plot(tmp_path):
    out, png = tmp_path / "tol.json", tmp_path / "tol.png"
    res = CliRunner().invoke(main, ["characterize", "--mode", "coarse", "--seeds", "2", "--resolution", "0.5",
                                    "--correction", "zero", "-o", str(out), "--plot", str(png), "--no-progress"])
    assert res.exit_code == 0, res.output
    rec = load_tolerance(out)
    assert rec["model"]["id"] == "digits-lenet" and rec["coarse"]["tolerable_ber"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "tol.json.partial").exists()


# ------------------------------------------------------------------ leave-one-out
LOO_SELECT = ["features.5.weight", "classifier.3.bias"]


@pytest.fixture(scope="module")
def small_loader():
    x, y = zoo.digits_split("test")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:256], y[:256]), batch_size=256)


def test_leave_one_out_a_large_weight_costs_more_than_a_small_bias(lenet, small_loader):
    # fp32 without correction at BER 1e-4: the 18432 weights of features.5 almost surely get an
    # exponent flip (a huge value), the 10 biases of classifier.3 almost surely none.
    rec = characterize(lenet, small_loader, "em0:p=1e-3", mode="leave-one-out", ber=1e-4, seeds=2,
                       select=LOO_SELECT)
    assert "coarse" not in rec and "fine" not in rec
    loo = rec["leave_one_out"]
    assert loo["ber"] == 1e-4 and list(loo["datatypes"]) == LOO_SELECT
    weight, bias = loo["datatypes"]["features.5.weight"], loo["datatypes"]["classifier.3.bias"]
    assert weight["only_cost_pp"] > 20 > 1 > bias["only_cost_pp"]
    assert not weight["only"]["passed"] and bias["only"]["passed"]
    # leaving the weight out leaves only the bias corrupted: that saves what the weight cost
    assert weight["without"] == bias["only"] and bias["without"] == weight["only"]
    assert weight["without_saves_pp"] == pytest.approx((weight["without"]["mean"] - loo["every"]["mean"]) * 100)
    # baseline, then every and each only per seed; with two data types each "without" is the other's
    # "only", the same plan, evaluated once
    assert rec["evaluations"] == 1 + 2 * (1 + len(LOO_SELECT))
    table = tolerance_table(rec)
    assert "leave-one-out at BER 0.0001" in table and "features.5.weight" in table
    with pytest.raises(ValueError, match="neither fine nor coarse"):
        tolerable_bers(rec)


def test_leave_one_out_needs_its_ber_and_only_there(lenet, small_loader):
    with pytest.raises(ValueError, match="ber is the BER of mode 'leave-one-out'"):
        characterize(lenet, small_loader, "em0:p=1e-3", mode="leave-one-out", seeds=1)
    with pytest.raises(ValueError, match="ber is the BER of mode 'leave-one-out'"):
        characterize(lenet, small_loader, "em0:p=1e-3", mode="coarse", ber=1e-3, seeds=1)
    with pytest.raises(ValueError, match=r"ber must be in \(0, 0.5\]"):
        characterize(lenet, small_loader, "em0:p=1e-3", mode="leave-one-out", ber=0.7, seeds=1)
    with pytest.raises(ValueError, match="unknown characterization mode 'leave_one_out'.*did you mean 'leave-one-out'"):
        characterize(lenet, small_loader, "em0:p=1e-3", mode="leave_one_out", ber=1e-3, seeds=1)


def test_modes_and_criteria_are_str_enums_with_the_old_spellings(lenet, small_loader):
    from eden.workflows.characterize import CRITERIA, MODES, CharacterizationMode as Mode, Criterion

    assert MODES == ("coarse", "fine", "both", "leave-one-out") and CRITERIA == ("mean", "ci_low")
    assert Mode("leave-one-out") is Mode.LEAVE_ONE_OUT and Mode.COARSE == "coarse"
    by_enum = _coarse(lenet, small_loader, mode=Mode.COARSE, criterion=Criterion.CI_LOW)
    by_str = _coarse(lenet, small_loader, mode="coarse", criterion="ci_low")
    assert by_enum["criterion"] == "ci_low" and type(by_enum["criterion"]) is str
    assert by_enum["coarse"] == by_str["coarse"]
    with pytest.raises(ValueError, match="unknown criterion 'median'; known: ci_low, mean"):
        _coarse(lenet, small_loader, criterion="median")


def test_cli_characterize_leave_one_out(tmp_path):
    out = tmp_path / "loo.json"
    args = ["characterize", "--mode", "leave-one-out", "--seeds", "1", "--select", "classifier.3.*", "-o", str(out),
            "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "--ber" in res.output and not out.exists()
    res = CliRunner().invoke(main, ["characterize", "--mode", "coarse", "--ber", "1e-3", "-o", str(out)])
    assert res.exit_code == 2 and "--ber" in res.output and not out.exists()
    res = CliRunner().invoke(main, args + ["--ber", "1e-3", "--correction", "zero"])
    assert res.exit_code == 0, res.output
    rec = load_tolerance(out)
    assert set(rec["leave_one_out"]["datatypes"]) == {"classifier.3.weight", "classifier.3.bias", "classifier.3.ifm"}
    assert rec["leave_one_out"]["ber"] == 1e-3 and "leave-one-out at BER 0.001" in res.output
