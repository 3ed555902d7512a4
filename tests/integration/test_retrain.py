"""Curricular retraining: schedules, straight-through updates, gains, checkpoints and resume, bad input."""

import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eden.cli import main
from eden.nn import zoo
from eden.nn.emulate import EmulationPlan, emulate
from eden.nn.evaluate import estimate, evaluate
from eden.workflows.retrain import (Curriculum, RetrainConfig, ToleranceCheck, _check_before, derive_seed,
                                    load_checkpoint, retrain, retrain_table)

REPO = Path(__file__).resolve().parents[2]

# Small data for subprocess runs: 128 training and 128 test digits.
TINY = """
import torch
from torch import nn
from eden.nn import zoo


def train():
    x, y = zoo.digits_split("train")
    return torch.utils.data.TensorDataset(x[:128], y[:128])


def test():
    x, y = zoo.digits_split("test")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:128], y[:128]), batch_size=128)


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
"""


@pytest.fixture()
def tiny(tmp_path):
    (tmp_path / "tinydata.py").write_text(TINY)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    return tmp_path, env


@pytest.fixture(scope="module")
def test_loader():
    return zoo.digits_loader("test", batch_size=512)


def _train_subset(n):
    x, y = zoo.digits_split("train")
    return torch.utils.data.TensorDataset(x[:n], y[:n])


# ------------------------------------------------------------------ curriculum
def test_schedules_rise_to_the_target_and_stay():
    geo = Curriculum(1e-2, epochs=6, schedule="geometric", start_ber=1e-4, ramp_epochs=4)
    assert geo.bers() == pytest.approx([1e-4, 10 ** -3.5, 1e-3, 10 ** -2.5, 1e-2, 1e-2])
    lin = Curriculum(1e-2, epochs=5, schedule="linear", start_ber=2e-3, ramp_epochs=4)
    assert lin.bers() == pytest.approx([2e-3, 4e-3, 6e-3, 8e-3, 1e-2])
    step = Curriculum(1e-2, epochs=8, schedule="step", start_ber=1e-5, ramp_epochs=6, steps=3)
    assert step.bers() == pytest.approx([1e-5, 1e-5, 1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2])
    assert Curriculum(3e-3, epochs=4, schedule="constant").bers() == [3e-3] * 4
    default = Curriculum(0.5, epochs=10)
    assert default.ramp_epochs == 5 and default.start_ber == pytest.approx(5e-3)
    assert default.bers()[5:] == [0.5] * 5 and all(a < b for a, b in zip(default.bers()[:6], default.bers()[1:6]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(target_ber=0.0, epochs=4), r"target_ber must be in \(0, 0.5\]"),
    (dict(target_ber=0.6, epochs=4), r"target_ber must be in \(0, 0.5\]"),
    (dict(target_ber=-1e-3, epochs=4), r"target_ber must be in \(0, 0.5\]"),
    (dict(target_ber=float("nan"), epochs=4), r"target_ber must be in \(0, 0.5\]"),
    (dict(target_ber=1e-2, epochs=4, ramp_epochs=4), "never reaches its target"),
    (dict(target_ber=1e-2, epochs=4, ramp_epochs=9, schedule="linear"), "never reaches its target"),
    (dict(target_ber=1e-2, epochs=1), "at least 2 epochs"),
    (dict(target_ber=1e-2, epochs=4, start_ber=1e-2), "start_ber must be below"),
    (dict(target_ber=1e-2, epochs=4, schedule="constant", start_ber=1e-3), "no start_ber"),
    (dict(target_ber=1e-2, epochs=4, schedule="cubic"), "unknown schedule 'cubic'"),
])
def test_bad_curricula_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Curriculum(**kwargs)


def test_config_checks_and_relative_targets():
    with pytest.raises(ValueError, match="never reaches its target"):
        RetrainConfig("em0:p=1e-3", target_ber="10x", epochs=3, ramp_epochs=3)
    with pytest.raises(ValueError, match="'<k>x'"):
        RetrainConfig("em0:p=1e-3", target_ber="ten")
    with pytest.raises(ValueError, match=r"\(0, 0.5\]"):
        RetrainConfig("em0:p=1e-3", target_ber=0.75)
    with pytest.raises(ValueError, match="unknown optimizer"):
        RetrainConfig("em0:p=1e-3", optimizer="lbfgs")
    with pytest.raises(ValueError, match="correction 'zero' applies to float formats"):
        RetrainConfig("em0:p=1e-3", format="int8", correction="zero")
    cfg = RetrainConfig("em0:p=1e-3", target_ber="10x")
    assert cfg.resolve_target(2e-4) == pytest.approx(2e-3)
    assert cfg.resolve_target(0.2) == 0.5  # capped
    with pytest.raises(ValueError, match="tolerates no BER"):
        cfg.resolve_target(0.0)
    assert RetrainConfig("em0:p=1e-3", target_ber="model").resolve_target(None) == pytest.approx(1e-3)
    assert derive_seed(0, "train", 0, 0, 1) != derive_seed(0, "train", 0, 1, 1)


def test_modes_are_str_enums_with_the_old_spellings():
    from eden.errors import EdenConfigError, EdenTypeError
    from eden.workflows.retrain import LRSchedule, Optimizer, Schedule, ToleranceBaseline

    by_str = RetrainConfig("em0:p=1e-3", target_ber=1e-2, schedule="linear", optimizer="sgd", lr_schedule="constant")
    by_enum = RetrainConfig("em0:p=1e-3", target_ber=1e-2, schedule=Schedule.LINEAR, optimizer=Optimizer.SGD,
                            lr_schedule=LRSchedule.CONSTANT)
    assert by_str == by_enum and by_str.schedule is Schedule.LINEAR and by_str.optimizer == "sgd"
    # records and checkpoints hold the plain spellings (checkpoints load with weights_only=True)
    d = by_enum.to_dict()
    assert (type(d["schedule"]), d["schedule"], d["optimizer"], d["lr_schedule"]) == (str, "linear", "sgd", "constant")
    assert json.loads(json.dumps(d)) == d
    assert Curriculum(1e-2, epochs=4, schedule=Schedule.STEP).to_dict()["schedule"] == "step"
    tol = ToleranceCheck(baseline="original", criterion="ci_low")
    assert tol.baseline is ToleranceBaseline.ORIGINAL and tol.to_dict()["criterion"] == "ci_low"
    with pytest.raises(EdenConfigError, match="unknown schedule 'geometirc'.*did you mean 'geometric'"):
        Curriculum(1e-2, epochs=4, schedule="geometirc")
    with pytest.raises(EdenConfigError, match="unknown criterion 'median'"):
        ToleranceCheck(criterion="median")
    with pytest.raises(EdenTypeError, match="epochs must be an integer"):
        Curriculum(1e-2, epochs=4.0)
    with pytest.raises(EdenConfigError, match="lr must be a number > 0"):
        RetrainConfig("em0:p=1e-3", lr=0)


def test_a_data_type_left_out_of_the_selection_is_stored_in_the_format_without_errors(test_loader):
    cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-2, format="int8", select="!features.0.ifm", epochs=2)
    assert cfg.select == ("*", "!features.0.ifm")
    model = zoo.load_model("digits-lenet")
    resolved = cfg.plan(1e-2).resolve(model)
    assert len(resolved) == 15 and resolved["features.0.ifm"].format == cfg.format
    assert resolved["features.0.ifm"].error_model is None
    assert all(c.error_model is not None for n, c in resolved.items() if n != "features.0.ifm")
    # the plan's errors fall exactly on the data types the selection resolves to
    for sel in (("!features.0.ifm",), ("*.weight", "!features.*", "features.2.weight"), ("classifier.*",)):
        c = RetrainConfig("em0:p=1e-3", target_ber=1e-2, select=sel, epochs=2)
        assert ({n for n, d in c.plan(1e-2).resolve(model).items() if d.error_model is not None}
                == set(EmulationPlan.uniform(None, select=c.select).resolve(model)))
    # a tolerance measured with another selection is not a valid "before"
    tol = ToleranceCheck(seeds=2)
    every = RetrainConfig("em0:p=1e-3", target_ber="10x", epochs=2)
    record = {"format": "eden-tolerance", "coarse": {}, "model": {"fingerprint": "fp"},
              "error_model": every.error_model.to_spec(), "format_spec": str(every.format),
              "correction": every.correction, "target_drop_pp": tol.target_drop_pp, "seeds": list(tol.seeds),
              "criterion": tol.criterion, "resolution_decades": tol.resolution_decades, "ber_range": [tol.ber_min, 0.5]}
    _check_before(record, "fp", every, tol)
    with pytest.raises(ValueError, match=r"select \['\*'\] \(expected \['\*', '!features.0.ifm'\]\)"):
        _check_before(record, "fp", dataclasses.replace(every, select=("!features.0.ifm",)), tol)
    with pytest.raises(ValueError, match="leaves no data type of the model to corrupt"):
        retrain(model, test_loader.dataset, test_loader,
                RetrainConfig("em0:p=1e-3", target_ber=1e-2, select=("*", "!*"), epochs=2),
                tolerance=None)


# --------------------------------------------------------------- training loop
@pytest.mark.parametrize("fmt, correction", [("fp32", "zero"), ("int8", "none")])
def test_updates_are_straight_through_to_the_clean_weights(test_loader, fmt, correction):
    """With a vanishing step the weights stay put: no corrupted value survives a batch."""
    model = zoo.load_model("digits-lenet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = RetrainConfig("em0:p=1e-3", target_ber=0.01, format=fmt, correction=correction, schedule="constant",
                        epochs=1, optimizer="sgd", lr=1e-12, batch_size=64)
    out = retrain(model, _train_subset(128), test_loader, cfg, tolerance=None)
    hist = out.report["history"][0]
    rank = hist["ranks"][0]
    assert hist["skipped_steps"] == 0 and rank["samples"] == 128
    if correction == "none":  # errors really injected at the scheduled BER (weights and IFMs of 2 batches)
        assert abs(rank["flipped_bits"] / rank["bits"] - 0.01) < 0.0005
    else:  # corrected values count every bit that differs from the clean value
        assert rank["flipped_bits"] / rank["bits"] > 0.01
    assert hist["val_at_ber"] < hist["val_clean"]
    for k, v in model.state_dict().items():
        assert torch.allclose(v, before[k], rtol=0, atol=1e-6), k


def test_retraining_matches_the_documented_loop(test_loader):
    """One epoch equals emulate-forward-backward-restore-step over the seed tree's batches."""
    data = _train_subset(96)
    cfg = RetrainConfig("em0:p=1e-3", target_ber=5e-3, format="int8", schedule="constant", epochs=1,
                        batch_size=32, lr=1e-3, lr_schedule="constant", seed=7)
    got = retrain(zoo.load_model("digits-lenet"), data, test_loader, cfg, tolerance=None).model
    ref = zoo.load_model("digits-lenet")
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    perm = torch.randperm(96, generator=torch.Generator().manual_seed(derive_seed(7, "shuffle"))).tolist()
    plan = cfg.plan(5e-3)
    with torch.random.fork_rng(devices=[]):
        for b in range(3):
            x, y = data[perm[32 * b:32 * (b + 1)]]
            ref.train()
            opt.zero_grad()
            with emulate(ref, plan, seed=derive_seed(7, "train", 0, 0, b)):
                torch.nn.functional.cross_entropy(ref(x), y).backward()
            opt.step()
    for (k, a), b in zip(got.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_retraining_raises_accuracy_at_the_trained_ber(test_loader):
    model = zoo.load_model("digits-lenet")
    cfg = RetrainConfig("em0:p=1e-3", target_ber=5e-3, format="fp32", correction="zero", epochs=3,
                        schedule="geometric", start_ber=1e-3, ramp_epochs=1, lr=2e-3, batch_size=128)
    plan = cfg.plan(5e-3)

    def at_ber(m):
        vals = []
        for s in range(4):
            with emulate(m, plan, seed=1000 + s):
                vals.append(evaluate(m, test_loader))
        return estimate(vals)

    before = at_ber(model)
    check = ToleranceCheck(seeds=1, resolution_decades=0.5, ber_min=1e-5)
    record = check.measure(model, test_loader, cfg, model_id="digits-lenet", data_id="digits")
    train = torch.utils.data.TensorDataset(*zoo.digits_split("train"))
    with pytest.raises(ValueError, match="does not match this run: correction 'zero' .expected 'clamp'"):
        retrain(model, train, test_loader, dataclasses.replace(cfg, correction="clamp"), tolerance=check,
                before=record)
    given = {**record, "baseline": {**record["baseline"], "reference_source": "given"}}
    with pytest.raises(ValueError, match="own clean accuracy"):
        retrain(model, train, test_loader, cfg, tolerance=check, before=given)
    with pytest.raises(ValueError, match="does not match this run: seeds"):
        retrain(model, train, test_loader, cfg, tolerance=dataclasses.replace(check, seeds=2), before=record)
    with pytest.raises(ValueError, match="unknown tolerance baseline"):
        dataclasses.replace(check, baseline="shipped")
    out = retrain(model, train, test_loader, cfg, tolerance=dataclasses.replace(check, baseline="original"),
                  before=record, model_id="digits-lenet")
    after = at_ber(out.model)
    assert after.mean > before.mean + 0.03, (before, after)
    rep = out.report
    assert [h["ber"] for h in rep["history"]] == pytest.approx([1e-3, 5e-3, 5e-3])
    assert rep["clean_accuracy"]["after"] == evaluate(model, test_loader)
    tol = rep["tolerance"]
    assert tol["before"]["tolerable_ber"] == record["coarse"]["tolerable_ber"] > 0
    assert tol["after"]["tolerable_ber"] > 0
    # the drop after retraining counts from the original model's clean accuracy
    ref = tol["after"]["baseline"]
    assert ref["reference_source"] == "given" and ref["reference"] == record["baseline"]["clean_in_format"]
    assert ref["threshold"] == pytest.approx(record["baseline"]["threshold"])
    assert tol["gain"] == pytest.approx(tol["after"]["tolerable_ber"] / tol["before"]["tolerable_ber"])
    assert rep["model"]["fingerprint_before"] != rep["model"]["fingerprint_after"]
    assert "tolerable BER" in retrain_table(rep)


def test_checkpoint_conflicts_are_refused_before_writing(tmp_path, test_loader):
    ckpt = tmp_path / "run.ckpt"
    cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-3, schedule="constant", epochs=1, batch_size=64)
    retrain(zoo.load_model("digits-lenet"), _train_subset(64), test_loader, cfg, tolerance=None,
            checkpoint=ckpt, model_id="digits-lenet")
    assert load_checkpoint(ckpt)["epoch"] == 1
    blob = ckpt.read_bytes()
    with pytest.raises(FileExistsError, match="resume"):
        retrain(zoo.load_model("digits-lenet"), _train_subset(64), test_loader, cfg, tolerance=None,
                checkpoint=ckpt, model_id="digits-lenet")
    other = zoo.load_model("digits-lenet")
    with torch.no_grad():
        other.classifier[3].bias.add_(1.0)
    with pytest.raises(ValueError, match="belongs to another model"):
        retrain(other, _train_subset(64), test_loader, cfg, tolerance=None, checkpoint=ckpt, resume=True,
                model_id="digits-lenet")
    with pytest.raises(ValueError, match="other retraining settings.*lr"):
        retrain(zoo.load_model("digits-lenet"), _train_subset(64), test_loader,
                RetrainConfig("em0:p=1e-3", target_ber=1e-3, schedule="constant", epochs=1, batch_size=64, lr=0.1),
                tolerance=None, checkpoint=ckpt, resume=True, model_id="digits-lenet")
    assert ckpt.read_bytes() == blob


# ------------------------------------------------------------------------- CLI
def _cli(*args):
    return CliRunner().invoke(main, ["retrain", "--no-progress", *map(str, args)])


@pytest.mark.parametrize("args, match", [
    (["--target-ber", "0"], r"\(0, 0.5\]"),
    (["--target-ber", "0.7"], r"\(0, 0.5\]"),
    (["--target-ber", "lots"], "'<k>x'"),
    (["--epochs", "4", "--ramp-epochs", "4"], "never reaches its target"),
    (["--schedule", "constant", "--start-ber", "1e-4"], "no start_ber"),
])
def test_cli_bad_input_exits_2(tmp_path, args, match):
    r = _cli("-o", tmp_path / "w.pt", *args)
    assert r.exit_code == 2, r.output
    assert re.search(match, " ".join(r.output.split())), r.output
    assert list(tmp_path.iterdir()) == []


def test_cli_run_outputs_and_refuses_other_models_checkpoint(tiny):
    tmp, env = tiny
    sys.path.insert(0, str(tmp))
    try:
        common = ["--data", "tinydata:test", "--train-data", "tinydata:train", "--no-tolerance", "--epochs", "2",
                  "--ramp-epochs", "1", "--target-ber", "2e-3", "--correction", "zero", "--train-batch-size", "64"]
        out = tmp / "w.pt"
        r = _cli(*common, "-o", out, "--json")
        assert r.exit_code == 0, r.output
        rep = json.loads(r.output)
        assert rep == json.loads((tmp / "w.json").read_text())
        assert [h["ber"] for h in rep["history"]] == pytest.approx([2e-5, 2e-3])
        model = zoo.load_model("digits-lenet", out)  # the weights load with --weights
        assert zoo.fingerprint(model) == rep["model"]["fingerprint_after"]
        ckpt = tmp / "w.pt.ckpt"
        blob = ckpt.read_bytes()
        # existing outputs / checkpoint: refused without --force / --resume
        r = _cli(*common, "-o", out)
        assert r.exit_code == 1 and "exists" in r.output
        # a checkpoint of another model: clear error, nothing written or changed
        out2 = tmp / "other.pt"
        r = _cli(*common, "--model", "tinydata:mlp", "-o", out2, "--checkpoint", ckpt, "--resume")
        assert r.exit_code == 1 and "belongs to another model" in r.output, r.output
        assert ckpt.read_bytes() == blob and not out2.exists() and not (tmp / "other.json").exists()
        # same model, finished checkpoint: --resume only writes the outputs
        out3 = tmp / "again.pt"
        r = _cli(*common, "-o", out3, "--checkpoint", ckpt, "--resume")
        assert r.exit_code == 0, r.output
        assert out3.read_bytes() == out.read_bytes()
    finally:
        sys.path.remove(str(tmp))


def test_cli_trains_at_a_dram_profile_operating_point(tiny):
    from eden.cli._common import resolve_model_choice

    tmp, _ = tiny
    want = resolve_model_choice(None, "ddr3l-vendor-a", "vdd-1.100").model
    sys.path.insert(0, str(tmp))
    try:
        r = _cli("--data", "tinydata:test", "--train-data", "tinydata:train", "--no-tolerance", "--epochs", "2",
                 "--profile", "ddr3l-vendor-a", "--op", "vdd-1.100", "--target-ber", "model", "--format", "int8",
                 "--train-batch-size", "64", "-o", tmp / "op.pt", "--json")
    finally:
        sys.path.remove(str(tmp))
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["curriculum"]["target_ber"] == pytest.approx(want.expected_ber())
    assert rep["config"]["error_model"] == want.to_spec()
    assert rep["error_model_source"]["profile"] == "ddr3l-vendor-a"


# ---------------------------------------------------------------------- resume
def _cmd(out, *extra):
    return [sys.executable, "-m", "eden", "retrain", "--no-progress", "--data", "tinydata:test",
            "--train-data", "tinydata:train", "--no-tolerance", "--format", "int8", "--epochs", "3",
            "--target-ber", "3e-3", "--ramp-epochs", "1", "--train-batch-size", "32", "--seed", "5", "-o", str(out),
            *extra]


def test_resume_after_sigkill_gives_the_same_weights(tiny):
    tmp, env = tiny
    full = tmp / "full.pt"
    r = subprocess.run(_cmd(full), env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    epoch_seconds = min(h["seconds"] for h in json.loads((tmp / "full.json").read_text())["history"])

    # Kill at a random point: after the j-th checkpoint write (1 = before the first epoch,
    # j = after epoch j-1), a random part of an epoch later; the last epoch is still running then.
    rng = random.Random()
    writes_before_kill = rng.randint(1, 3)
    delay = rng.uniform(0, 0.9 * epoch_seconds)
    part, ckpt = tmp / "part.pt", tmp / "part.pt.ckpt"
    proc = subprocess.Popen(_cmd(part), env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen, writes, t0 = None, 0, time.monotonic()
        while writes < writes_before_kill and proc.poll() is None and time.monotonic() - t0 < 300:
            stamp = ckpt.stat().st_mtime_ns if ckpt.exists() else None
            if stamp is not None and stamp != seen:
                seen, writes = stamp, writes + 1
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    where = f"killed after checkpoint write {writes_before_kill} + {delay:.2f}s"
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill ({where})"
    state = load_checkpoint(ckpt)
    assert state["epoch"] < 3 and not part.exists(), where
    assert [p.name for p in tmp.iterdir() if p.name.endswith(".tmp")] == []
    r = subprocess.run(_cmd(part, "--resume"), env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(full, weights_only=True)
    b = torch.load(part, weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resuming from epoch {state['epoch']} ({where})"
    ra, rb = json.loads((tmp / "full.json").read_text()), json.loads((tmp / "part.json").read_text())
    assert [h["loss"] for h in ra["history"]] == [h["loss"] for h in rb["history"]]
    assert ra["model"]["fingerprint_after"] == rb["model"]["fingerprint_after"]


def test_a_run_that_destroys_the_clean_accuracy_warns_and_says_so_in_the_report(test_loader):
    """Retraining can diverge (e.g. far too high a learning rate, or frozen batch-norm
    statistics at a high BER): a warning names the epoch, and the report lists it."""
    from eden.workflows.retrain import DIVERGED_PP, RetrainDivergedWarning

    train = _train_subset(256)
    cfg = RetrainConfig("em0:p=1e-3", target_ber=1e-3, format="fp32", correction="zero", epochs=2,
                        schedule="constant", lr=50.0, optimizer="sgd", batch_size=64)
    model = zoo.load_model("digits-lenet")
    with pytest.warns(RetrainDivergedWarning, match=r"retraining diverged: after epoch 1 .* more than 20 points"):
        out = retrain(model, train, test_loader, cfg, tolerance=None)
    rep = out.report
    before = rep["clean_accuracy"]["before"]
    assert rep["diverged_epochs"] == [h["epoch"] + 1 for h in rep["history"]
                                      if (before - h["val_clean"]) * 100 > DIVERGED_PP]
    assert rep["diverged_epochs"][0] == 1
    assert "warning: diverged" in retrain_table(rep)
    # a sane run: no warning (the test suite turns warnings into errors), nothing listed
    sane = retrain(zoo.load_model("digits-lenet"), train, test_loader,
                   dataclasses.replace(cfg, lr=1e-3, optimizer="adam"), tolerance=None)
    assert sane.report["diverged_epochs"] == []
    assert "diverged" not in retrain_table(sane.report)
