"""DRAM profiles: shipped presets, operating-point lookup, checked files, overrides, extends."""

import copy
import json
import math
import re

import pytest

from eden.dram.profiles import (FORMAT, NOMINAL, DramProfile, OperatingPoint, ProfileError, UnknownProfileError,
                                list_presets, load_profile, parse_op_spec, preset_path)
from eden.errormodels.model import ErrorModel

PRESETS = list_presets()
DDR4 = "ddr4-2400-8gb-x8"
POWER_FIELDS_DDR4 = {
    "standard", "nbr_of_banks", "nbr_of_devices", "nbr_of_ranks", "burst_length", "data_rate", "vdd_v", "vpp_v",
    *(f"{p}{s}_ma" for p in ("idd", "ipp") for s in ("0", "2n", "3n", "4r", "4w", "5b", "2p", "3p", "6n"))}
TIMING_FIELDS = {"tck_ns", "tras_ns", "trp_ns", "trcd_ns", "trfc1_ns", "trefi_ns", "trtp_ns", "twr_ns", "cwl_cycles"}


def raw_preset(name=DDR4):
    return json.loads(preset_path(name).read_text())


def write(tmp_path, data, name="mine.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


# ----------------------------------------------------------------------------- shipped presets
def test_shipped_presets_cover_the_issue():
    assert {"ddr3l-vendor-a", "ddr3l-vendor-b", "ddr3l-vendor-c", "ddr3-diva-a10", DDR4} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_loads_with_nominal_and_consistent_models(name):
    prof = load_profile(name)
    assert prof.name == name and prof.path.endswith(f"{name}.json")
    nom = prof.nominal
    assert nom.name == NOMINAL and nom.ber == 0.0 and nom.error_model is None
    assert (nom.vdd_v, nom.trcd_ns) == (prof.power.vdd_v, prof.timing.trcd_ns)
    assert prof.error_model(nom).expected_ber() == 0.0
    for op in prof.operating_points:
        model = prof.error_model(op)  # loads the .h5 and checks ber == expected_ber
        assert math.isclose(model.expected_ber(), op.ber, rel_tol=1e-9, abs_tol=1e-15)
        assert prof.operating_point(op.name) is op
        assert prof.operating_point(f"vdd={op.vdd_v},trcd={op.trcd_ns}") is op


@pytest.mark.parametrize("name", PRESETS)
def test_preset_every_number_is_cited(name):
    prof = load_profile(name)
    for section in ("organization", "power", "timing"):
        for field in getattr(prof, section).to_dict():
            sid = prof.cite[f"{section}.{field}"].split(":", 1)[0]
            assert sid in prof.sources, (section, field)
    for op in prof.operating_points:
        assert op.source in prof.sources


@pytest.mark.parametrize("name", PRESETS)
def test_preset_resolved_record_round_trips(name, tmp_path):
    prof = load_profile(name)
    record = prof.to_dict()
    assert "extends" not in record and record["format"] == FORMAT
    again = load_profile(write(tmp_path, record))
    assert again == prof


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith("ddr4")])
def test_ddr4_borrowed_points_are_labelled_and_follow_the_scaling_rule(name):
    prof = load_profile(name)
    assert prof.power.standard == "DDR4"
    assert set(prof.power.to_dict()) == POWER_FIELDS_DDR4 and set(prof.timing.to_dict()) == TIMING_FIELDS
    assert any(where == "power.ipp6n_ma" for where, _ in prof.assumptions())
    for op in prof.operating_points:
        if op.name == NOMINAL:
            continue
        assert prof.sources[op.source].is_assumption and "assumption" in op.note
        data = op.measured.data
        if op.trcd_ns == prof.timing.trcd_ns:  # borrowed from a DDR3L VDD point (nominal 1.35 V)
            vdd_ddr3l = float(re.search(r"vdd ([0-9.]+)$", data).group(1))
            assert op.vdd_v == round(vdd_ddr3l * 1.2 / 1.35, 3)
        else:  # borrowed from a DIVA tRCD point (nominal 13.75 ns), in 2.5 ns cycles
            cycles = int(re.search(r"READ 256ms (\d) 15 5 6", data).group(1))
            assert op.vdd_v == 1.2 and op.trcd_ns == round(cycles * 2.5 * 13.32 / 13.75, 2)


def test_ddr4_currents_are_the_module_table_derivation():
    pw = load_profile(DDR4).power
    # MTA18ASF2G72HZ Table 15 (DDR4-2400): 18 devices, note-1 rows have 9 active + 9 in IDD2P/IPP3N
    idd2p, ipp3n = 450 / 18, 54 / 18
    assert (pw.idd2p_ma, pw.ipp3n_ma) == (idd2p, ipp3n)
    assert pw.idd0_ma == 657 / 9 - idd2p and pw.idd4r_ma == 1440 / 9 - idd2p and pw.idd5b_ma == 2475 / 9 - idd2p
    assert pw.ipp0_ma == 54 / 9 - ipp3n and pw.ipp5b_ma == 279 / 9 - ipp3n
    assert (pw.idd2n_ma, pw.idd3n_ma, pw.idd3p_ma, pw.idd6n_ma) == (612 / 18, 774 / 18, 666 / 18, 540 / 18)


@pytest.mark.parametrize("name", ["ddr3l-vendor-a", "ddr3l-vendor-b", "ddr3l-vendor-c"])
def test_ddr3l_points_carry_their_measurement(name):
    prof = load_profile(name)
    assert prof.power.standard == "DDR3" and prof.power.vdd_v == 1.35 and prof.bases
    reduced = [op for op in prof.operating_points if op.name != NOMINAL]
    assert reduced and any(op.ber > 0 for op in reduced)
    for op in reduced:
        assert op.vdd_v < 1.35 and op.trcd_ns == prof.timing.trcd_ns
        m = op.measured
        assert m.ber == op.ber
        if op.ber > 0:
            lo, hi = m.ber_range
            assert lo <= op.ber <= hi and "f/512" in m.estimator
            assert prof.error_model(op).persistence == "fixed"


@pytest.mark.parametrize("name", [n for n in PRESETS if n.startswith(("ddr3l", "ddr4"))])
def test_ber_does_not_grow_with_vdd(name):
    prof = load_profile(name)
    vdd_points = sorted((op.vdd_v, op.ber) for op in prof.operating_points if op.trcd_ns == prof.timing.trcd_ns)
    bers = [ber for _, ber in vdd_points]
    assert bers == sorted(bers, reverse=True), vdd_points


def test_diva_points_and_spread():
    prof = load_profile("ddr3-diva-a10")
    assert prof.power.vdd_v == 1.5 and "vpp_v" not in prof.power.to_dict()
    points = {op.trcd_ns: op for op in prof.operating_points}
    assert set(points) == {13.75, 12.5, 10.0, 7.5}
    bers = [points[t].measured.ber for t in (12.5, 10.0, 7.5)]
    assert bers == sorted(bers) and bers[-1] > 0.3  # more errors at shorter tRCD; 7.5 ns saturates
    for t in (12.5, 10.0, 7.5):
        m = points[t].measured
        assert m.ber_range[0] <= m.ber <= m.ber_range[1]
        assert all(f"vendor {v}" in m.spread for v in "ABC")
        assert points[t].error_model == f"diva_ddr3_A10_trcd{t:.1f}ns.h5"


def test_memspec_fields_feed_the_power_model():
    from eden.power.memspec import MemSpec

    for name in PRESETS:
        prof = load_profile(name)
        spec = MemSpec.from_fields(prof.memspec_fields(), source=prof.path)
        assert spec is not None


def test_organization_drives_the_address_map():
    org = load_profile("ddr3-diva-a10").organization.to_address()
    assert (org.banks, org.rows, org.row_bytes) == (8, 16384, 8192) and org.capacity_bytes == 1 << 30


# ----------------------------------------------------------------------------- operating-point specs
@pytest.mark.parametrize("spec, want", [
    ("vdd=1.15", {"vdd_v": 1.15}), ("VDD=1.15V", {"vdd_v": 1.15}), ("trcd=10ns", {"trcd_ns": 10.0}),
    ("vdd=1.15, trcd=10", {"vdd_v": 1.15, "trcd_ns": 10.0}),
    ("vdd_v=1.2,trcd_ns=13.32", {"vdd_v": 1.2, "trcd_ns": 13.32}),
])
def test_parse_op_spec(spec, want):
    assert parse_op_spec(spec) == want


@pytest.mark.parametrize("spec, needle", [
    ("vd=1.1", "did you mean 'vdd'"), ("vdd=abc", "must be a number"), ("vdd=-1", "must be > 0"),
    ("trcd=1,trcd=2", "given twice"), ("nominal", "key=value"), ("vdd", "key=value"), ("vdd=1,", None),
])
def test_parse_op_spec_errors(spec, needle):
    if needle is None:
        assert parse_op_spec(spec) == {"vdd_v": 1.0}
        return
    with pytest.raises(ValueError, match=re.escape(needle)):
        parse_op_spec(spec)


def test_operating_point_lookup():
    prof = load_profile(DDR4)
    assert prof.operating_point("nominal") is prof.nominal
    assert prof.operating_point("trcd=13.32") is prof.nominal
    assert prof.operating_point("vdd=1.2,trcd=13.32") is prof.nominal
    trcd_ops = [op for op in prof.operating_points if op.trcd_ns != prof.timing.trcd_ns]
    assert prof.operating_point(f"trcd={trcd_ops[0].trcd_ns}ns") is trcd_ops[0]
    vdd_ops = [op for op in prof.operating_points if op.vdd_v != prof.power.vdd_v]
    assert prof.operating_point(f"vdd={vdd_ops[-1].vdd_v + 0.0004}") is vdd_ops[-1]  # 0.5 mV tolerance


@pytest.mark.parametrize("spec, needles", [
    ("nomnal", ["did you mean 'nominal'", "Available:"]),
    ("vdd=1.03", ["no operating point at vdd_v=1.03 V", "nearest:"]),
    ("vdd=1.2,trcd=12", ["trcd_ns=12 ns"]),
    ("vd=1.1", ["did you mean 'vdd'"]),
])
def test_operating_point_errors_name_file_and_field(spec, needles):
    prof = load_profile(DDR4)
    with pytest.raises(ProfileError) as info:
        prof.operating_point(spec)
    err = info.value
    assert err.file == prof.path and err.field == "operating_points"
    for needle in needles:
        assert needle in str(err)


def test_unknown_preset_suggests():
    with pytest.raises(UnknownProfileError, match="did you mean 'ddr4-2400-8gb-x8'"):
        load_profile("ddr4-2400-8gb")
    with pytest.raises(UnknownProfileError, match="not found"):
        load_profile("no/such/profile.json")


# ----------------------------------------------------------------------------- bad files
def _mutated(tmp_path, mutate, name=DDR4):
    data = copy.deepcopy(raw_preset(name))
    mutate(data)
    return write(tmp_path, data)


@pytest.mark.parametrize("mutate, field, needle", [
    (lambda d: d["power"].pop("idd0_ma"), "power.idd0_ma", "missing required field"),
    (lambda d: d["power"].pop("ipp5b_ma"), "power.ipp5b_ma", "missing required field for DDR4"),
    (lambda d: d["power"].pop("vpp_v"), "power.vpp_v", "missing required field for DDR4"),
    (lambda d: d["power"].__setitem__("idd0_mA", 48), "power.idd0_mA", "did you mean 'idd0_ma'"),
    (lambda d: d["timing"].__setitem__("trcd", 13.32), "timing.trcd", "did you mean 'trcd_ns'"),
    (lambda d: d.__setitem__("operatingpoints", []), "operatingpoints", "did you mean 'operating_points'"),
    (lambda d: d["power"].__setitem__("standard", "DDR6"), "power.standard", "did you mean"),
    (lambda d: d["power"].__setitem__("idd0_ma", "48"), "power.idd0_ma", "must be a number, got '48'"),
    (lambda d: d["power"].__setitem__("idd0_ma", -1), "power.idd0_ma", "> 0"),
    (lambda d: d["organization"].__setitem__("banks", 8), "power.nbr_of_banks", "organization.banks"),
    (lambda d: d["power"].__setitem__("fact_rho", 1.5), "power.fact_rho", "must be in [0, 1], got 1.5"),
    (lambda d: d.__setitem__("format", "eden.error_model"), "format", "eden.dram_profile"),
    (lambda d: d.__setitem__("format_version", 99), "format_version", "upgrade eden"),
    (lambda d: d["cite"].pop("power.idd2n_ma"), "cite.power.idd2n_ma", "missing citation"),
    (lambda d: d["cite"].__setitem__("power.idd2n_ma", "micron_module: x"), "cite.power.idd2n_ma",
     "did you mean 'micron_ddr4_module'"),
    (lambda d: d["cite"].__setitem__("power.idd9_ma", "micron_ddr4_module"), "cite.power.idd9_ma", "unknown field"),
    (lambda d: d["sources"]["assume_ipp6n"].__setitem__("kind", "guess"), "sources.assume_ipp6n.kind",
     "expected one of"),
    (lambda d: d["operating_points"].pop(0), "operating_points", "missing the 'nominal'"),
    (lambda d: d["operating_points"][0].__setitem__("vdd_v", 1.1), "operating_points['nominal'].vdd_v",
     "power.vdd_v"),
    (lambda d: d["operating_points"][1].__setitem__("sorce", "x"), "operating_points['vdd-1.156'].sorce",
     "did you mean 'source'"),
    (lambda d: d["operating_points"][1].__setitem__("source", "voltron"), "operating_points['vdd-1.156'].source",
     "unknown source id"),
    (lambda d: d["operating_points"][2].__setitem__("error_model", None), "operating_points['vdd-1.111'].error_model",
     "null exactly when ber is 0"),
    (lambda d: d["operating_points"][2].__setitem__("name", "vdd-1.156"), "operating_points['vdd-1.156'].name",
     "duplicate"),
    (lambda d: d["operating_points"][2].__setitem__("vdd_v", 1.1562), "operating_points['vdd-1.111']",
     "same (vdd_v, trcd_ns)"),
    (lambda d: d["operating_points"][2]["measured"].__setitem__("figur", "x"),
     "operating_points['vdd-1.111'].measured.figur", "did you mean 'figure'"),
])
def test_bad_file_errors_name_file_field_and_fix(tmp_path, mutate, field, needle):
    path = _mutated(tmp_path, mutate)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert err.file == str(path) and err.field == field, str(err)
    assert needle in err.detail
    assert str(path) in str(err) and field in str(err)


def test_invalid_json_and_wrong_top_level(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ProfileError, match="invalid JSON") as info:
        load_profile(bad)
    assert info.value.field == "/"
    bad.write_text("[]")
    with pytest.raises(ProfileError, match="expected a JSON object"):
        load_profile(bad)


def test_ddr3_profile_rejects_vpp(tmp_path):
    path = _mutated(tmp_path, lambda d: d["power"].__setitem__("vpp_v", 2.5), name="ddr3-diva-a10")
    with pytest.raises(ProfileError, match="no VPP domain") as info:
        load_profile(path)
    assert info.value.field == "power.vpp_v"


def test_missing_error_model_file_names_file_and_fix(tmp_path):
    data = raw_preset()
    data["operating_points"][2]["error_model"] = "./gone.h5"
    prof = load_profile(write(tmp_path, data))
    with pytest.raises(ProfileError, match="not found") as info:
        prof.error_model("vdd-1.111")
    assert info.value.field == "operating_points['vdd-1.111'].error_model" and info.value.file == prof.path


def test_model_ber_mismatch_is_an_error(tmp_path):
    data = raw_preset()
    op = data["operating_points"][2]
    ErrorModel.from_spec(f"em0:p={2 * op['ber']!r}").save(tmp_path / "other.h5")
    op["error_model"] = "./other.h5"
    prof = load_profile(write(tmp_path, data))
    with pytest.raises(ProfileError, match="expected a model with expected BER"):
        prof.error_model(op["name"])
    op["error_model"] = f"em0:p={op['ber']!r}"  # an inline spec works too
    prof = load_profile(write(tmp_path, data))
    assert prof.error_model(op["name"]).components[0].p == op["ber"]


# ----------------------------------------------------------------------------- extends and overrides
def _child(**extra):
    return {"format": FORMAT, "format_version": 1, "name": "my-dimm", "description": "my measured DIMM",
            "extends": DDR4, **extra}


def test_extends_merges_and_requires_citations(tmp_path):
    base = load_profile(DDR4)
    path = write(tmp_path, _child(power={"idd0_ma": 50.0}))
    with pytest.raises(ProfileError, match="its citation must be too") as info:
        load_profile(path)
    assert info.value.field == "cite.power.idd0_ma"
    path = write(tmp_path, _child(power={"idd0_ma": 50.0}, cite={"power.idd0_ma": "bench: my IDD0 test"},
                                  sources={"bench": {"kind": "dataset", "citation": "my lab bench"}}))
    prof = load_profile(path)
    assert prof.power.idd0_ma == 50.0 and prof.power.idd2n_ma == base.power.idd2n_ma
    assert prof.operating_points == base.operating_points and prof.bases == (base.path,)
    assert prof.cite["power.idd0_ma"].startswith("bench")


def test_extends_errors(tmp_path):
    with pytest.raises(ProfileError, match="did you mean 'ddr4-2400-8gb-x8'") as info:
        load_profile(write(tmp_path, _child(extends="ddr4-2400")))
    assert info.value.field == "extends"
    a = _child(name="a", extends="b.json")
    b = _child(name="b", extends="a.json")
    write(tmp_path, a, "a.json")
    write(tmp_path, b, "b.json")
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(tmp_path / "a.json")


def test_missing_field_without_base_names_the_file(tmp_path):
    data = raw_preset()
    del data["timing"]
    path = write(tmp_path, data)
    with pytest.raises(ProfileError, match="missing required field") as info:
        load_profile(path)
    assert info.value.file == str(path) and info.value.field.startswith("timing.")


def test_overrides_are_checked_and_move_the_nominal_point():
    prof = load_profile(DDR4, {"timing.trcd_ns": "14.16", "timing.trp_ns": 14.16})
    assert prof.timing.trcd_ns == 14.16 and prof.nominal.trcd_ns == 14.16
    assert prof.sources[prof.cite["timing.trcd_ns"].split(":")[0]].is_assumption
    assert load_profile(DDR4).timing.trcd_ns == 13.32  # the preset is unchanged
    with pytest.raises(ProfileError, match="did you mean 'timing.trcd_ns'"):
        load_profile(DDR4, {"timing.trcd": 14})
    with pytest.raises(ProfileError, match="expected a number"):
        load_profile(DDR4, {"timing.trcd_ns": "fast"})
    with pytest.raises(ProfileError, match="no VPP domain") as info:
        load_profile("ddr3-diva-a10", {"power.vpp_v": 2.5})
    assert "with overrides" in info.value.file


def test_dataclasses_validate_directly():
    with pytest.raises(ValueError, match="ber"):
        OperatingPoint("x", 1.2, 13.0, 1.5, "em0:p=1e-3", "s")
    with pytest.raises(ValueError, match="name"):
        OperatingPoint("Bad Name", 1.2, 13.0, 0.0, None, "s")
    prof = load_profile(DDR4)
    import dataclasses

    with pytest.raises(ValueError, match="nominal"):
        dataclasses.replace(prof, operating_points=prof.operating_points[1:])
    assert isinstance(prof, DramProfile)
