"""`eden run`: the whole pipeline end to end on the bundled default (small settings), and resume."""

import json

import pytest
from click.testing import CliRunner

from eden.cli import main
from eden.workflows.pipeline import STAGES, RunConfig, run_pipeline

FAST = ["--seeds", "2", "--resolution", "0.5", "--retrain-epochs", "2", "--no-progress"]


def test_run_end_to_end_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir), *FAST])
    assert res.exit_code == 0, res.output
    for name in ("summary.json", "report.md", "tolerance_before.json", "tolerance_after.json", "mapping.json",
                 "mapping_baseline.json", "retrained.pt", "mapping.png"):
        assert (run_dir / name).exists(), name
    s = json.loads((run_dir / "summary.json").read_text())
    for key in ("without_retraining", "with_retraining"):
        row = s[key]
        assert 0 < row["energy_saving_fraction"] < 1
        assert row["energy_mapped_j"] < row["energy_nominal_j"]
        assert row["accuracy_under_mapping"]["values"] and len(row["accuracy_under_mapping"]["values"]) == 2
    assert "energy saved vs nominal" in res.output and "EDEN (MICRO 2019)" in res.output
    # calibrated correction bounds, the default with a correction: each characterization profiles its
    # own network's ranges (before and after retraining); the mapping states them
    cbs = [json.loads((run_dir / n).read_text())["correction_bounds"] for n in ("tolerance_before.json",
                                                                              "tolerance_after.json")]
    assert all(cb["source"] == "calibrated" and cb["batches"] == 4 and cb["bounds"] for cb in cbs)
    assert cbs[0]["bounds"] != cbs[1]["bounds"]  # the retrained network's own ranges
    assert "calibrated" in json.loads((run_dir / "mapping.json").read_text())["assumptions"]["correction_bound"]
    assert json.loads((run_dir / "run.json").read_text())["config"]["correction_bounds"] == "calibrated"

    # resume: every stage is found finished, nothing is recomputed, the summary is the same
    logs = []
    again = run_pipeline(run_dir, RunConfig(seeds=2, resolution_decades=0.5, retrain_epochs=2), progress=False,
                         log=logs.append)
    assert sum("done, resumed" in m for m in logs) == len(STAGES)
    assert again["with_retraining"] == s["with_retraining"]

    # other settings in the same directory are refused, nothing is overwritten
    before = (run_dir / "summary.json").read_bytes()
    res = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir), "--seeds", "3", "--no-progress"])
    assert res.exit_code == 1 and "other settings" in res.output and "seeds" in res.output
    assert (run_dir / "summary.json").read_bytes() == before


def test_run_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an eden run directory"):
        run_pipeline(tmp_path, RunConfig(seeds=1), progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match=r"\(0, 100\)"):
        RunConfig(target_drop_pp=0)
    with pytest.raises(ValueError, match="retrain_batch_size"):
        RunConfig(retrain_batch_size=0)
    with pytest.raises(ValueError, match="range of a correction"):
        RunConfig(correction="none", correction_bounds="calibrated")
    with pytest.raises(ValueError, match="correction_bounds"):
        RunConfig(correction_bounds="sometimes")
    with pytest.raises(ValueError, match="calibration_batches"):
        RunConfig(correction_bounds="calibrated", calibration_batches=0)
    assert RunConfig().correction_bounds == "calibrated" and RunConfig(correction="none").correction_bounds == "batch"
    res = CliRunner().invoke(main, ["run", "--run-dir", str(tmp_path / "r"), "--correction", "none",
                                    "--correction-bounds", "calibrated"])
    assert res.exit_code == 2 and "range of a correction" in res.output
