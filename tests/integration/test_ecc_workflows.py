"""ECC through the workflows: retraining injects post-ECC errors, mapping compares like with like and
charges the check bits, `eden retrain / map / run --ecc` carry the code into every record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eden.cli import main
from eden.dram.profiles import load_profile
from eden.errors import EdenConfigError, EdenDataError
from eden.nn import zoo
from eden.nn.emulate import emulate
from eden.workflows.deploy import DeployOptions, deploy, report_table
from eden.workflows.retrain import RetrainConfig, ToleranceCheck, _check_before, derive_seed, retrain, retrain_table

ROOT = Path(__file__).resolve().parents[2]
RECORD = json.loads((ROOT / "docs" / "tolerance_digits-lenet_em0_fp32_zero.json").read_text())


@pytest.fixture(scope="module")
def test_loader():
    x, y = zoo.digits_split("test")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:64], y[:64]), batch_size=64)


def _train_subset(n):
    x, y = zoo.digits_split("train")
    return torch.utils.data.TensorDataset(x[:n], y[:n])


# ------------------------------------------------------------------ retraining
def test_config_carries_the_code():
    cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-2, ecc="secded72")
    (k0, clean), *bad = cfg.plan(1e-3).entries
    assert k0 == "*" and clean.ecc == "none" and clean.error_model is None  # no errors, no ECC
    assert bad and all(c.ecc == "secded72" and c.error_model is not None for _, c in bad)
    assert cfg.to_dict()["ecc"] == "secded72"
    assert "ecc" not in RetrainConfig("em0:p=1e-3", target_ber=1e-2).to_dict()  # checkpoints keep their keys
    with pytest.raises(EdenConfigError, match="secded72"):
        RetrainConfig("em0:p=1e-3", target_ber=1e-2, ecc="secdd")


def test_a_retraining_epoch_trains_on_post_ecc_errors(test_loader):
    """One epoch with ECC equals the documented loop run under the ECC plan (post-ECC errors in the forward
    pass), and at a raw BER of 1e-3 the forward passes saw far fewer flipped bits than without ECC."""
    data = _train_subset(64)
    out = {}
    for ecc in ("none", "secded72"):
        cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-3, format="int8", schedule="constant", epochs=1,
                            batch_size=32, lr=1e-3, lr_schedule="constant", seed=3, ecc=ecc)
        res = retrain(zoo.load_model("digits-lenet"), data, test_loader, cfg, tolerance=None)
        out[ecc] = res
    flips = {k: sum(r["flipped_bits"] for r in v.report["history"][0]["ranks"]) for k, v in out.items()}
    assert 0 < flips["secded72"] < 0.2 * flips["none"]
    assert out["secded72"].report["config"]["ecc"] == "secded72" and "ECC secded72" in retrain_table(
        out["secded72"].report)
    # the documented loop under the ECC plan gives the same weights
    cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-3, format="int8", schedule="constant", epochs=1,
                        batch_size=32, lr=1e-3, lr_schedule="constant", seed=3, ecc="secded72")
    ref = zoo.load_model("digits-lenet")
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(derive_seed(3, "shuffle"))).tolist()
    plan = cfg.plan(1e-3)
    with torch.random.fork_rng(devices=[]):
        for b in range(2):
            x, y = data[perm[32 * b:32 * (b + 1)]]
            ref.train()
            opt.zero_grad()
            with emulate(ref, plan, seed=derive_seed(3, "train", 0, 0, b)):
                torch.nn.functional.cross_entropy(ref(x), y).backward()
            opt.step()
    for (k, a), b in zip(out["secded72"].model.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_a_tolerance_before_with_another_code_is_refused():
    cfg = RetrainConfig("em0:p=1e-3", target_ber="10x", ecc="secded72")
    check = ToleranceCheck(seeds=2)
    rec = {"format": "eden-tolerance", "coarse": {}, "baseline": {}, "model": {"fingerprint": "f"},
           "error_model": cfg.error_model.to_spec(), "format_spec": "fp32", "correction": "none",
           "target_drop_pp": 1.0, "seeds": [0, 1], "criterion": "mean", "resolution_decades": 0.1,
           "ber_range": [1e-9], "select": ["*"]}
    with pytest.raises(EdenDataError, match="ecc 'none'"):
        _check_before(rec, "f", cfg, check)
    _check_before({**rec, "ecc": "secded72"}, "f", cfg, check)  # the same code: accepted


def test_cli_retrain_with_ecc(tmp_path):
    data = tmp_path / "eccdata.py"
    data.write_text("import torch\nfrom eden.nn import zoo\n\n\ndef train():\n    x, y = zoo.digits_split('train')\n"
                    "    return torch.utils.data.TensorDataset(x[:64], y[:64])\n\n\ndef test():\n"
                    "    x, y = zoo.digits_split('test')\n    return torch.utils.data.DataLoader("
                    "torch.utils.data.TensorDataset(x[:64], y[:64]), batch_size=64)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        r = CliRunner().invoke(main, ["retrain", "--data", "eccdata:test", "--train-data", "eccdata:train",
                                      "--no-tolerance", "--epochs", "2", "--ramp-epochs", "1", "--target-ber", "2e-3",
                                      "--ecc", "ondie136", "--train-batch-size", "64", "--no-progress",
                                      "-o", str(tmp_path / "w.pt")])
        assert r.exit_code == 0, r.output
        rep = json.loads((tmp_path / "w.json").read_text())
        assert rep["config"]["ecc"] == "ondie136" and "ECC ondie136" in r.output
        r = CliRunner().invoke(main, ["retrain", "--ecc", "secded27", "-o", str(tmp_path / "x.pt")])
        assert r.exit_code == 2 and "secded72" in r.output
    finally:
        sys.path.remove(str(tmp_path))


# ------------------------------------------------------------------ mapping
@pytest.fixture(scope="module")
def plain():
    return deploy(RECORD, load_profile("ddr4-2400-8gb-x8"), options=DeployOptions(policy="greedy"))


def test_mapping_with_secded_charges_its_check_bits(plain):
    """The same tolerances with SECDED: the same mapping (every cost x 9/8), the energy x 9/8 exactly."""
    rep = deploy({**RECORD, "ecc": "secded72"}, load_profile("ddr4-2400-8gb-x8"),
                 options=DeployOptions(policy="greedy"))
    assert [r["partition"] for r in rep["datatypes"]] == [r["partition"] for r in plain["datatypes"]]
    for key in ("energy_nominal_j", "energy_mapped_j"):
        assert rep["totals"][key] == pytest.approx(plain["totals"][key] * 1.125, rel=1e-12)
    assert rep["totals"]["energy_saving_fraction"] == pytest.approx(plain["totals"]["energy_saving_fraction"],
                                                                   rel=1e-12)
    assert rep["totals"]["access_time_mapped_s"] == plain["totals"]["access_time_mapped_s"]
    a = rep["assumptions"]["ecc"]
    assert a["code"] == a["tolerance_measured_with"] == "secded72" and a["energy"]["placement"] == "rank"
    assert rep["options"]["ecc"] == "secded72" and rep["tolerance"]["ecc"] == "secded72"
    text = report_table(rep)
    assert "ECC: secded72 on the memory" in text and "ECC secded72 (raw BERs)" in text
    assert plain["assumptions"]["ecc"]["code"] == "none" and "ECC: none" in report_table(plain)
    s = rep["assumptions"]["energy_saving_by_alpha"]
    assert s["1"] == pytest.approx(rep["totals"]["energy_saving_fraction"], rel=1e-12)


def test_mapping_with_on_die_sec_charges_the_array(plain):
    rep = deploy({**RECORD, "ecc": "ondie136"}, load_profile("ddr4-2400-8gb-x8"),
                 options=DeployOptions(policy="greedy"))
    r = rep["totals"]["energy_nominal_j"] / plain["totals"]["energy_nominal_j"]
    assert 1.0 < r < 1.0625 and rep["assumptions"]["ecc"]["energy"]["placement"] == "on-die"


def test_mapping_compares_like_with_like():
    prof = load_profile("ddr4-2400-8gb-x8")
    with pytest.raises(EdenDataError, match="characterized with ECC 'none'.*secded72"):
        deploy(RECORD, prof, options=DeployOptions(policy="greedy", ecc="secded72"))
    with pytest.raises(EdenDataError, match="characterized with ECC 'secded72'"):
        deploy({**RECORD, "ecc": "secded72"}, prof, options=DeployOptions(policy="greedy", ecc="none"))
    rep = deploy({**RECORD, "ecc": "secded72"}, prof, options=DeployOptions(policy="greedy", ecc="secded72"))
    assert rep["options"]["ecc"] == "secded72"
    with pytest.raises(EdenConfigError, match="ECC DIMM"):  # no x72 ECC DIMM for LPDDR4
        deploy({**RECORD, "ecc": "secded72"}, load_profile("lpddr4-3200-6gb-x16"),
               options=DeployOptions(policy="greedy"))


def test_cli_map_ecc(tmp_path):
    tol = tmp_path / "tol.json"
    tol.write_text(json.dumps({**RECORD, "ecc": "secded72"}))
    r = CliRunner().invoke(main, ["map", "--tolerance", str(tol), "--no-validate", "--policy", "greedy",
                                  "-o", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    assert "ECC: secded72 on the memory" in r.output
    rep = json.loads((tmp_path / "m.json").read_text())
    assert rep["assumptions"]["ecc"]["code"] == "secded72"
    r2 = CliRunner().invoke(main, ["report", str(tmp_path / "m.json")])
    assert r2.exit_code == 0 and "ECC: secded72 on the memory" in r2.output
    r = CliRunner().invoke(main, ["map", "--tolerance", str(tol), "--no-validate", "--ecc", "none",
                                  "-o", str(tmp_path / "m2.json")])
    assert r.exit_code == 1 and "characterized with ECC 'secded72'" in r.output
    assert not (tmp_path / "m2.json").exists()


# ------------------------------------------------------------------ eden run
def test_cli_run_with_ecc(tmp_path):
    """`eden run --ecc secded72`: characterization, retraining and validation with the code, every record
    names it, the energy carries its check bits (x 9/8 exactly), another code in the same directory is refused.
    The same run takes per-batch correction bounds (`--correction-bounds batch`, not the default): no record
    carries calibrated ranges, and the mappings say so."""
    run_dir = tmp_path / "run"
    fast = ["--seeds", "1", "--resolution", "0.5", "--retrain-epochs", "2", "--no-progress",
            "--correction-bounds", "batch"]
    res = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir), "--ecc", "secded72", *fast])
    assert res.exit_code == 0, res.output
    for n in ("tolerance_before.json", "tolerance_after.json"):
        assert "correction_bounds" not in json.loads((run_dir / n).read_text())
    assert "each batch's own" in json.loads((run_dir / "mapping.json").read_text())["assumptions"]["correction_bound"]
    assert "correction_bounds" not in json.loads((run_dir / "run.json").read_text())["config"]  # as runs always had
    assert "ECC secded72 (BERs are raw, before ECC)" in res.output and "ECC: secded72 on the memory" in res.output
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["config"]["ecc"] == "secded72"
    for name in ("tolerance_before.json", "tolerance_after.json"):
        assert json.loads((run_dir / name).read_text())["ecc"] == "secded72", name
    assert json.loads((run_dir / "retrain_report.json").read_text())["config"]["ecc"] == "secded72"
    for name in ("mapping.json", "mapping_baseline.json"):
        m = json.loads((run_dir / name).read_text())
        assert m["assumptions"]["ecc"]["code"] == "secded72" and m["options"]["ecc"] == "secded72"
        rec = json.loads((run_dir / ("tolerance_after.json" if name == "mapping.json" else
                                     "tolerance_before.json")).read_text())
        rec.pop("ecc")
        plain = deploy(rec, load_profile(m["profile"]), options=DeployOptions(policy="milp"))
        assert m["totals"]["energy_nominal_j"] == pytest.approx(1.125 * plain["totals"]["energy_nominal_j"],
                                                                rel=1e-12)
    res = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir), "--ecc", "ondie136", *fast])
    assert res.exit_code == 1 and "other settings" in res.output and "ecc" in res.output
