"""CLI: exit codes, messages, no silent overwrite."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eden.cli import main


@pytest.fixture()
def arr(tmp_path):
    x = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    p = tmp_path / "in.npy"
    np.save(p, x)
    return p, x


def test_inject_writes_output_and_reports(arr, tmp_path):
    inp, x = arr
    out = tmp_path / "out.npy"
    r = CliRunner().invoke(main, ["inject", str(inp), "-o", str(out), "-m", "em0:p=1e-2", "--seed", "3", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    y = np.load(out)
    flipped = int(np.unpackbits((x.view(np.uint32) ^ y.view(np.uint32)).view(np.uint8)).sum())
    assert flipped == info["flipped_bits"] > 0
    assert np.array_equal(np.load(inp), x)  # input file untouched


def test_inject_same_seed_same_bits(arr, tmp_path):
    inp, _ = arr
    outs = []
    for i in range(2):
        out = tmp_path / f"o{i}.npy"
        assert CliRunner().invoke(main, ["inject", str(inp), "-o", str(out), "-m", "em3:p10=1e-2,p01=1e-3",
                                         "--seed", "9"]).exit_code == 0
        outs.append(np.load(out).view(np.uint32))
    assert np.array_equal(*outs)


def test_inject_refuses_overwrite_without_force(arr, tmp_path):
    inp, _ = arr
    out = tmp_path / "out.npy"
    out.write_bytes(b"keep me")
    r = CliRunner().invoke(main, ["inject", str(inp), "-o", str(out), "-m", "em0:p=1e-3"])
    assert r.exit_code != 0 and "--force" in r.output
    assert out.read_bytes() == b"keep me"
    r = CliRunner().invoke(main, ["inject", str(inp), "-o", str(out), "-m", "em0:p=1e-3", "--force"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("spec, needle", [("em0:p=2", "[0, 1]"), ("em9:p=1e-3", "unknown error model"),
                                          ("em0:q=1e-3", "unknown parameter"), ("missing.h5", "missing.h5")])
def test_inject_bad_model_is_usage_error(arr, tmp_path, spec, needle):
    inp, _ = arr
    out = tmp_path / "out.npy"
    r = CliRunner().invoke(main, ["inject", str(inp), "-o", str(out), "-m", spec])
    assert r.exit_code == 2 and needle in r.output
    assert not out.exists()


def test_inject_unsupported_dtype(tmp_path):
    p = tmp_path / "f64.npy"
    np.save(p, np.zeros(8))
    r = CliRunner().invoke(main, ["inject", str(p), "-o", str(tmp_path / "o.npy"), "-m", "em0:p=0.1"])
    assert r.exit_code == 1 and "unsupported dtype float64" in r.output


def test_errormodel_show_json():
    r = CliRunner().invoke(main, ["errormodel", "show", "em1:fraction=0.01,p=0.05", "--json"])
    assert r.exit_code == 0
    info = json.loads(r.output)
    assert info["components"][0]["kind"] == "em1" and abs(info["expected_ber"] - 5e-4) < 1e-12


def test_demo_restores_everything():
    r = CliRunner().invoke(main, ["demo", "--json", "--ber", "1e-3"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 24 and all(row["restored_bit_exact"] for row in rows)
    assert all(row["flipped_bits"] > 0 for row in rows)
    clamp = [r for r in rows if r["format"] == "fp32+clamp"]
    assert all(r["non_finite"] == 0 for r in clamp)


def test_doctor():
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 0 and "cpu kernel (cpu) vs NumPy oracle: bit-identical" in r.output


def test_doctor_checks_every_registered_backend(monkeypatch):
    """A backend whose kernel differs from the oracle by one bit is reported, and doctor fails."""
    from eden.engine import contract
    from eden.engine.contract import Op

    cpu_inject = contract._KERNELS[(Op.INJECT, "cpu")]

    def off_by_one_bit(plan, storage, fmt):
        words, idx, mask, off, cnt = cpu_inject(plan, storage, fmt)
        storage[0] ^= 1  # one more flip than the log and the oracle say
        return words, idx, mask, off, cnt

    monkeypatch.setitem(contract._BACKENDS, "cpu-broken", contract._BACKENDS["cpu"].__class__(
        "cpu-broken", "cpu", -1, lambda: False, lambda: None, None))
    for op in Op:
        monkeypatch.setitem(contract._KERNELS, (op, "cpu-broken"), contract._KERNELS[(op, "cpu")])
    monkeypatch.setitem(contract._KERNELS, (Op.INJECT, "cpu-broken"), off_by_one_bit)
    r = CliRunner().invoke(main, ["doctor"])
    assert r.exit_code == 1
    assert "cpu kernel (cpu) vs NumPy oracle: bit-identical" in r.output
    assert "cpu-broken kernel (cpu) vs NumPy oracle: MISMATCH" in r.output


# ------------------------------------------------------------------ the error boundary
@pytest.mark.parametrize("bug", [KeyError("oops"), RuntimeError("kernel exploded"), ValueError("not eden's")])
def test_a_bug_keeps_its_traceback(monkeypatch, bug):
    import eden.workflows.demo

    def broken(**kwargs):
        raise bug

    monkeypatch.setattr(eden.workflows.demo, "run_demo", broken)
    r = CliRunner().invoke(main, ["demo"])
    assert r.exception is bug  # not turned into SystemExit with a one-line message
    assert "Error:" not in r.output


def test_an_eden_error_is_one_line_with_exit_1(monkeypatch):
    import eden.workflows.demo
    from eden.errors import EdenConfigError

    def bad_input(**kwargs):
        raise EdenConfigError("ber must be in (0, 1], got 7")

    monkeypatch.setattr(eden.workflows.demo, "run_demo", bad_input)
    r = CliRunner().invoke(main, ["demo"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert r.output == "Error: ber must be in (0, 1], got 7\n"


def test_library_input_errors_reach_the_boundary(tmp_path):
    r = CliRunner().invoke(main, ["datatypes", "--model", "digits-lenot"])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)
    assert "unknown model 'digits-lenot'" in r.output and "did you mean 'digits-lenet'" in r.output
    plan = tmp_path / "plan.json"
    plan.write_text("{not json")
    r = CliRunner().invoke(main, ["emulate", "--plan", str(plan)])
    assert r.exit_code == 1 and f"invalid eden file '{plan}' at /: not a readable JSON eden plan" in r.output


@pytest.fixture()
def mnist_factory(tmp_path, monkeypatch):
    """A package.module:factory for a 28x28 model, which the bundled 8x8 digits do not fit."""
    (tmp_path / "eden_test_mnist.py").write_text(
        "import torch\n\n\n"
        "def mlp():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "eden_test_mnist:mlp"


@pytest.mark.parametrize("command, data", [(["datatypes"], "the example input"),
                                           (["emulate", "-m", "em0:p=1e-3", "--seeds", "1"], "the first batch")])
def test_model_that_does_not_fit_the_data(mnist_factory, command, data):
    r = CliRunner().invoke(main, [*command, "--model", mnist_factory])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    line = r.output.strip()
    assert "\n" not in line and line.startswith("Error: model Sequential fails on " + data)
    assert "float32 tensor of shape (359, 1, 8, 8)" in line and "in module '1' (Linear)" in line
    assert "mat1 and mat2 shapes cannot be multiplied" in line


def test_choices_come_from_the_registries(monkeypatch):
    from eden.workflows.mapping import MAPPING_POLICIES

    monkeypatch.setitem(MAPPING_POLICIES, "all_nominal", lambda problem: ([problem.nominal_index]
                                                                          * len(problem.demands), "heuristic", ""))
    r = CliRunner().invoke(main, ["map", "--help"])
    assert r.exit_code == 0 and "[all_nominal|greedy|milp]" in r.output and "[energy|latency]" in r.output
    r = CliRunner().invoke(main, ["run", "--help"])
    assert r.exit_code == 0 and "[all_nominal|greedy|milp]" in r.output
    r = CliRunner().invoke(main, ["map", "--tolerance", __file__, "--objective", "power"])
    assert r.exit_code == 2 and "'power' is not one of 'energy', 'latency'" in r.output


def test_every_command_module_is_registered():
    """A command module (eden/cli/_NAME.py) counts once `eden.cli` imports it: the one registration line."""
    from pathlib import Path

    import click

    import eden.cli

    def walk(command):
        yield command
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield from walk(sub)

    files = {f"eden.cli.{p.stem}" for p in Path(eden.cli.__file__).parent.glob("_*.py")}
    defining = {c.callback.__module__ for c in walk(main) if c.callback is not None}
    assert files - {"eden.cli.__init__", "eden.cli._common"} <= defining, "a command module is not imported"
