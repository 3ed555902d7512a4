"""`eden profiles ...` and `--profile/--op` wherever an error model is accepted: exit codes and messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eden.cli import main
from eden.dram.profiles import list_presets, load_profile

DDR4 = "ddr4-2400-8gb-x8"


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_profiles_list_shows_every_preset():
    r = run("profiles", "list")
    assert r.exit_code == 0, r.output
    for name in list_presets():
        assert name in r.output
    r = run("profiles", "list", "--json")
    entries = json.loads(r.output)
    assert [e["name"] for e in entries] == list_presets()
    ddr4 = next(e for e in entries if e["name"] == DDR4)
    assert ddr4["standard"] == "DDR4" and ddr4["operating_points"][0]["name"] == "nominal"


def test_profiles_show_summary_and_resolved():
    r = run("profiles", "show", "ddr3l-vendor-c")
    assert r.exit_code == 0, r.output
    assert "extends" in r.output and "vdd-1.100" in r.output and "--resolved" in r.output
    r = run("profiles", "show", DDR4, "--resolved")
    assert r.exit_code == 0, r.output
    for needle in ("idd0_ma", "micron_ddr4_module", "assumptions", "assume_ddr3l_to_ddr4", "em0:p="):
        assert needle in r.output


def test_profiles_show_json_stored_vs_resolved():
    stored = json.loads(run("profiles", "show", "ddr3l-vendor-a", "--json").output)
    assert stored["extends"] == "ddr3l-1600-4gb-x16" and "power" not in stored
    resolved = json.loads(run("profiles", "show", "ddr3l-vendor-a", "--resolved", "--json").output)
    assert "extends" not in resolved and resolved["power"]["vdd_v"] == 1.35
    assert resolved == load_profile("ddr3l-vendor-a").to_dict()


def test_profiles_show_set_overrides():
    r = run("profiles", "show", DDR4, "--set", "timing.trcd_ns=14.16", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output)
    assert rec["timing"]["trcd_ns"] == 14.16 and rec["operating_points"][0]["trcd_ns"] == 14.16
    r = run("profiles", "show", DDR4, "--set", "timing.trcd=14")
    assert r.exit_code == 2 and "did you mean 'timing.trcd_ns'" in r.output
    r = run("profiles", "show", DDR4, "--set", "no-equals")
    assert r.exit_code == 2 and "KEY=VALUE" in r.output


def test_profiles_show_unknown_and_bad_file(tmp_path):
    r = run("profiles", "show", "ddr4-2400")
    assert r.exit_code == 2 and "did you mean 'ddr4-2400-8gb-x8'" in r.output
    bad = tmp_path / "bad.json"
    data = load_profile(DDR4).to_dict()
    del data["power"]["idd0_ma"]
    bad.write_text(json.dumps(data))
    r = run("profiles", "show", str(bad))
    assert r.exit_code == 2 and str(bad) in r.output and "power.idd0_ma" in r.output


# ----------------------------------------------------------------------------- inject --profile/--op
@pytest.fixture()
def arr(tmp_path):
    x = np.random.default_rng(0).standard_normal(1 << 15).astype(np.float32)
    p = tmp_path / "in.npy"
    np.save(p, x)
    return p, x


def test_inject_with_profile_and_op(arr, tmp_path):
    inp, x = arr
    prof = load_profile(DDR4)
    op = max(prof.operating_points, key=lambda o: o.ber if o.ber < 0.01 else 0.0)
    out = tmp_path / "out.npy"
    r = run("inject", str(inp), "-o", str(out), "--profile", DDR4, "--op", f"vdd={op.vdd_v},trcd={op.trcd_ns}",
            "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["profile"] == DDR4 and info["op"] == op.name and info["op_ber"] == op.ber
    assert abs(info["expected_ber"] - op.ber) <= 1e-9 * op.ber + 1e-15
    flipped = int(np.unpackbits((x.view(np.uint32) ^ np.load(out).view(np.uint32)).view(np.uint8)).sum())
    assert flipped == info["flipped_bits"] > 0


def test_inject_with_profile_uses_its_model_and_geometry(arr, tmp_path):
    from eden.dram.address import AddressMap
    from eden.engine.ops import inject_

    inp, _ = arr
    prof = load_profile("ddr3l-vendor-c")
    op = prof.operating_point("vdd=1.2")
    out = tmp_path / "out.npy"
    assert run("inject", str(inp), "-o", str(out), "--profile", "ddr3l-vendor-c", "--op", op.name).exit_code == 0
    y = np.load(inp)
    inject_(y, prof.error_model(op), seed=0, address_map=AddressMap(prof.organization.to_address()))
    assert np.array_equal(np.load(out).view(np.uint32), y.view(np.uint32))


def test_inject_nominal_op_flips_nothing(arr, tmp_path):
    inp, x = arr
    out = tmp_path / "out.npy"
    r = run("inject", str(inp), "-o", str(out), "--profile", "ddr3-diva-a10", "--op", "nominal", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["flipped_bits"] == 0 and np.array_equal(np.load(out), x)


@pytest.mark.parametrize("args, needle", [
    (["-m", "em0:p=1e-3", "--profile", DDR4, "--op", "nominal"], "not both"),
    (["--op", "nominal"], "give --profile too"),
    (["--profile", DDR4], "needs --op"),
    ([], "give an error model"),
    (["--profile", "ddr4-2400", "--op", "nominal"], "did you mean 'ddr4-2400-8gb-x8'"),
    (["--profile", DDR4, "--op", "nomnal"], "did you mean 'nominal'"),
    (["--profile", DDR4, "--op", "vdd=1.03"], "no operating point at vdd_v=1.03 V"),
    (["--profile", DDR4, "--op", "vd=1.0"], "did you mean 'vdd'"),
])
def test_inject_bad_profile_combinations_are_usage_errors(arr, tmp_path, args, needle):
    inp, _ = arr
    out = tmp_path / "out.npy"
    r = run("inject", str(inp), "-o", str(out), *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert not out.exists()


def test_inject_bad_op_names_the_profile_file(arr, tmp_path):
    inp, _ = arr
    r = run("inject", str(inp), "-o", str(tmp_path / "o.npy"), "--profile", DDR4, "--op", "trcd=5")
    assert r.exit_code == 2 and load_profile(DDR4).path in r.output.replace("\n", "")


def test_errormodel_show_accepts_profile_and_op():
    r = CliRunner()
    res = r.invoke(main, ["errormodel", "show", "--profile", "ddr3-diva-a10", "--op", "trcd=10", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert abs(info["expected_ber"] - 1.94e-4) < 1e-6 and {c["kind"] for c in info["components"]} == {"em1", "em2"}
    res = r.invoke(main, ["errormodel", "show"])
    assert res.exit_code == 2 and "--profile NAME with --op OP" in res.output
    res = r.invoke(main, ["errormodel", "show", "em0:p=1e-3", "--profile", "ddr3-diva-a10"])
    assert res.exit_code == 2 and "not both" in res.output
