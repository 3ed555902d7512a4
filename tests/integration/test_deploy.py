"""Deployment: partitions from a profile, energy-optimal mapping, validation by emulation, reports."""

import csv
import io
import json

import pytest
import torch
from click.testing import CliRunner

from eden.cli import main
from eden.dram.profiles import load_profile
from eden.nn import zoo
from eden.nn.emulate import datatypes
from eden.workflows.deploy import DeployOptions, deploy, partitions_from_profile
from eden.workflows.mapping import MappingInfeasibleError, Partition


@pytest.fixture(scope="module")
def lenet():
    return zoo.load_model("digits-lenet")


@pytest.fixture(scope="module")
def profile():
    return load_profile("ddr4-2400-8gb-x8")


def make_record(model, tolerable, *, fmt="fp32", correction="zero", threshold=0.9761):
    """A tolerance record like `eden characterize --mode fine` writes, with chosen tolerable BERs."""
    x, _ = zoo.digits_split("test")
    dts = datatypes(model, x[:1])
    return {
        "format": "eden-tolerance", "format_version": 1,
        "model": {"id": "digits-lenet", "fingerprint": zoo.fingerprint(model), "datatypes": [d.name for d in dts]},
        "data": {"id": "digits", "batch_size": 1}, "metric": "top1", "criterion": "mean", "target_drop_pp": 1.0,
        "error_model": "em0:p=0.001", "format_spec": fmt, "correction": correction, "seeds": [0, 1],
        "baseline": {"clean_fp32": 0.9861, "clean_in_format": 0.9861, "threshold": threshold},
        "datatypes": [{"name": d.name, "kind": d.kind, "shape": list(d.shape), "numel": d.numel,
                       "size_bytes": d.size_bytes(fmt), "per_sample": d.kind == "ifm", "format": fmt} for d in dts],
        "fine": {d.name: {"tolerable_ber": tolerable(d), "accuracy": None, "points": [], "bracket": [0, None]}
                 for d in dts},
        "joint": {"passed": False},
    }


def test_partitions_cover_every_operating_point(profile):
    parts = partitions_from_profile(profile)
    assert {p.name for p in parts} == set(profile.op_names)
    nominal = [p for p in parts if p.nominal]
    assert len(nominal) == 1 and nominal[0].ber == 0
    cap = profile.organization.to_address().capacity_bytes
    assert sum(p.capacity_bytes for p in parts) == cap
    with pytest.raises(ValueError, match="no bank"):
        partitions_from_profile(profile, partition_banks=2)


def test_mapping_respects_tolerance_and_saves_energy(lenet, profile):
    rec = make_record(lenet, lambda d: 0.0 if d.name == "features.0.ifm" else 2e-4)
    rep = deploy(rec, profile)
    by_name = {r["name"]: r for r in rep["datatypes"]}
    for r in rep["datatypes"]:
        assert r["partition_ber"] <= r["tolerable_ber"]
    # an intolerant data type still gets the error-free reduced-VDD point (VDD 1.156 V, BER 0)
    assert by_name["features.0.ifm"]["partition"] == "vdd-1.156"
    assert by_name["classifier.1.weight"]["partition"] != "nominal"
    t = rep["totals"]
    assert 0 < t["energy_mapped_j"] < t["energy_nominal_j"]
    assert t["energy_saving_fraction"] == pytest.approx(1 - t["energy_mapped_j"] / t["energy_nominal_j"])
    assert rep["validation"] == {"validated": False, "reason": "no model given"}
    json.dumps(rep, allow_nan=False)  # serialisable
    milp = deploy(rec, profile, options=DeployOptions(policy="milp"))
    assert milp["totals"]["energy_mapped_j"] <= t["energy_mapped_j"] * (1 + 1e-12)
    lat = deploy(rec, profile, options=DeployOptions(objective="latency"))
    assert lat["totals"]["access_time_mapped_s"] < lat["totals"]["access_time_nominal_s"]
    assert any(r["partition"].startswith("trcd-") for r in lat["datatypes"])


def test_target_no_partition_meets_falls_back_to_nominal(lenet):
    vendor_c = load_profile("ddr3l-vendor-c")
    # keep the points with errors (BER >= 1.2e-4): an IFM tolerating 1e-6 fits none of them
    parts = [p for p in partitions_from_profile(vendor_c) if p.ber > 0 or p.nominal]
    rec = make_record(lenet, lambda d: 1e-6 if d.kind == "ifm" else 1e-3)
    rep = deploy(rec, vendor_c, partitions=parts)
    ifms = [r for r in rep["datatypes"] if r["kind"] == "ifm"]
    assert ifms and all(r["partition"] == "nominal" and r["fallback"] for r in ifms)
    assert set(rep["fallbacks"]) == {r["name"] for r in ifms}
    assert all(r["partition"] != "nominal" for r in rep["datatypes"] if r["kind"] == "weight")


def test_validation_by_emulation_backs_off_an_over_optimistic_mapping(lenet, profile):
    # Pretend every data type tolerates anything: minimizing latency puts them at tRCD 7.27 ns (BER 0.37);
    # emulation shows the target fails, and back-off moves data types to safer partitions.
    rec = make_record(lenet, lambda d: 0.5)
    parts = [p for p in partitions_from_profile(profile) if p.name in ("trcd-7.27", "trcd-12.11", "nominal")]
    x, y = zoo.digits_split("test")
    small = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:96], y[:96]), batch_size=96)
    rep = deploy(rec, profile, model=lenet, loader=small, seeds=2, options=DeployOptions(objective="latency"),
                 partitions=parts)
    v = rep["validation"]
    assert v["validated"] and len(v["backoff_steps"]) > 0
    assert v["passed"] == (v["accuracy"]["mean"] >= v["threshold"] - 1e-12)


def test_record_of_another_model_is_refused(lenet, profile):
    other = zoo.load_model("digits-resnet")
    rec = make_record(lenet, lambda d: 1e-4)
    with pytest.raises(ValueError, match="another model"):
        deploy(rec, profile, model=other, loader=zoo.digits_loader("test"), seeds=1)


def test_capacities_too_small(lenet, profile):
    rec = make_record(lenet, lambda d: 1e-3)
    tiny = [Partition("vdd-1.000", 3.3e-4, 1024, vdd_v=1.0, trcd_ns=13.32),
            Partition("nominal", 0.0, 1024, nominal=True, vdd_v=1.2, trcd_ns=13.32)]
    with pytest.raises(MappingInfeasibleError, match="bytes"):
        deploy(rec, profile, partitions=tiny)


def test_bad_options():
    for kw in ({"batch_size": 0}, {"memory_bound_fraction": 0}, {"alpha": -1}, {"tolerance": "best"},
               {"objective": "power"}, {"partition_banks": 0}):
        with pytest.raises(ValueError):
            DeployOptions(**kw)


def test_modes_are_str_enums_that_take_their_strings():
    from eden.errors import EdenConfigError
    from eden.workflows.deploy import Objective, ToleranceSource

    opts = DeployOptions(objective="latency", tolerance="fine")
    assert opts.objective is Objective.LATENCY and opts.objective == "latency"
    assert opts.tolerance is ToleranceSource.FINE and f"{opts.tolerance}" == "fine"
    assert DeployOptions(objective=Objective.LATENCY, tolerance="fine") == opts  # member or string: the same
    assert json.loads(json.dumps({"o": opts.objective})) == {"o": "latency"}  # reports keep the spelling
    with pytest.raises(EdenConfigError, match="unknown objective 'power'; known: energy, latency"):
        DeployOptions(objective="power")
    with pytest.raises(EdenConfigError, match="unknown tolerance source 'best'; known: coarse, fine, joint"):
        DeployOptions(tolerance="best")
    with pytest.raises(EdenConfigError, match="unknown mapping policy 'mlip'.*did you mean 'milp'"):
        DeployOptions(policy="mlip")


def test_cli_map_and_report(lenet, tmp_path):
    rec = make_record(lenet, lambda d: 1e-4)
    tol = tmp_path / "tol.json"
    tol.write_text(json.dumps(rec))
    out = tmp_path / "mapping.json"
    r = CliRunner()
    res = r.invoke(main, ["map", "--tolerance", str(tol), "-o", str(out), "--seeds", "2", "--policy", "greedy"])
    assert res.exit_code == 0, res.output
    assert "energy per inference" in res.output and "accuracy under the mapping" in res.output
    res = r.invoke(main, ["map", "--tolerance", str(tol), "-o", str(out), "--no-validate"])
    assert res.exit_code == 1 and "--force" in res.output
    res = r.invoke(main, ["report", str(out), "--csv"])
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert res.exit_code == 0 and len(rows) == len(rec["datatypes"]) and "partition" in rows[0]
    res = r.invoke(main, ["report", str(out), "--json"])
    assert json.loads(res.output)["format"] == "eden-deployment"
    png = tmp_path / "m.png"
    res = r.invoke(main, ["report", str(out), "--plot", str(png)])
    assert res.exit_code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    res = r.invoke(main, ["map", "--tolerance", str(tol), "--profile", "ddr4-2400-8gb-x9", "--no-validate",
                          "-o", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "ddr4-2400-8gb-x8" in res.output


def test_record_at_target_rereads_the_fine_points(lenet):
    from eden.workflows.deploy import record_at_target

    rec = make_record(lenet, lambda d: 1e-4)
    for r in rec["fine"].values():
        r["points"] = [{"ber": 1e-4, "mean": 0.985}, {"ber": 1e-3, "mean": 0.980}, {"ber": 1e-2, "mean": 0.95}]
    loose = record_at_target(rec, 5.0)
    tight = record_at_target(rec, 0.5)
    name = "classifier.1.weight"
    assert loose["fine"][name]["tolerable_ber"] == 1e-2 and tight["fine"][name]["tolerable_ber"] == 1e-4
    assert record_at_target(rec, 1.0)["fine"][name]["tolerable_ber"] == 1e-3
    assert rec["fine"][name]["tolerable_ber"] == 1e-4  # the original is untouched
