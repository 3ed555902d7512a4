"""Check bits in the power model (eden.power.ecc): exact factors per energy component, nothing else
changes (commands, time), DDR5's on-die ECC already in its IDDs, rank-level codes refused where no
ECC DIMM exists."""

from __future__ import annotations

import dataclasses

import pytest

from eden.dram.profiles import load_profile
from eden.errors import EdenConfigError
from eden.power.ecc import COMPONENTS, ecc_energy
from eden.power.memspec import MemSpec
from eden.power.traffic import AccessModel, EnergyBreakdown, energy_report, inference_traffic

TRAFFIC = inference_traffic([("w", "weight", 300_000), ("x", "ifm", 70_000), ("y", "ifm", 9_000)], batch_size=2)


def _report(profile: str, ecc: str, **kw):
    p = load_profile(profile)
    return energy_report(TRAFFIC, MemSpec.from_profile(p), p.organization.to_address(), vdd_v=kw.pop("vdd", None),
                         model=AccessModel(ecc=ecc), memory_bound_fraction=0.5, **kw)


def _components(b: EnergyBreakdown) -> dict[str, float]:
    return {c: getattr(b, c).total for c in COMPONENTS}


EXPECTED = {  # factor per component: rank-level x72/64 = x144/128 everywhere; on-die x136/128 on the array
    "secded72": dict.fromkeys(COMPONENTS, 72 / 64),
    "chipkill144": dict.fromkeys(COMPONENTS, 144 / 128),
    "ondie136": {**dict.fromkeys(COMPONENTS, 136 / 128), "background": 1.0},
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_component_scales_by_the_codes_factor(code):
    base = _report("ddr4-2400-8gb-x8", "none", vdd=1.1)
    got = _report("ddr4-2400-8gb-x8", code, vdd=1.1)
    # no extra commands, bursts or time
    assert dataclasses.replace(got.latency, model=base.model) == base.latency
    for which in ("nominal", "operating"):
        b, g = _components(getattr(base, which)), _components(getattr(got, which))
        for c in COMPONENTS:
            assert g[c] == pytest.approx(b[c] * EXPECTED[code][c], rel=1e-13, abs=0), (which, c)
        # per data type too (they sum to the totals)
        for db, dg in zip(base.data_types, got.data_types, strict=True):
            assert dg.counts == db.counts
            for c in COMPONENTS:
                assert getattr(getattr(dg, which), c).total == pytest.approx(
                    getattr(getattr(db, which), c).total * EXPECTED[code][c], rel=1e-13, abs=0)
    # per domain as well: a factor of the rank, not of one supply
    for (n1, v1), (n2, v2) in zip(base.nominal.rd.values, got.nominal.rd.values, strict=True):
        assert n1 == n2 and (v1 is None) == (v2 is None)
        if v1 is not None:
            assert v2 == pytest.approx(v1 * EXPECTED[code]["rd"], rel=1e-13)
    assert f"ECC {code}" in got.describe()


def test_the_factors_in_numbers():
    """SECDED on a x8 rank: 9 devices instead of 8 -> exactly 1.125 of the total; on-die: between 1 and 1.0625."""
    base = _report("ddr4-2400-8gb-x8", "none")
    sec = _report("ddr4-2400-8gb-x8", "secded72")
    ondie = _report("ddr4-2400-8gb-x8", "ondie136")
    assert sec.nominal.total.total / base.nominal.total.total == pytest.approx(1.125, rel=1e-13)
    b = _components(base.nominal)
    want = sum(b[c] for c in COMPONENTS if c != "background") * 1.0625 + b["background"]
    assert ondie.nominal.total.total == pytest.approx(want, rel=1e-13)
    assert 1.0 < ondie.nominal.total.total / base.nominal.total.total < 1.0625
    assert base.devices == 8 and ecc_energy("secded72", "DDR4").factor("act") * base.devices == 9.0


def test_ddr5_idds_include_on_die_ecc_and_rank_codes_need_an_ecc_dimm():
    base = _report("ddr5-4800-16gb-x8", "none")
    ondie = _report("ddr5-4800-16gb-x8", "ondie136")
    assert ondie.nominal == base.nominal and ondie.operating == base.operating
    assert "include" in ecc_energy("ondie136", "DDR5").note
    for prof in ("ddr5-4800-16gb-x8", "lpddr4-3200-6gb-x16", "hbm2-1200"):
        with pytest.raises(EdenConfigError, match="ECC DIMM"):
            _report(prof, "secded72")
    # on-die SEC on a standard without it built in: charged
    lp = _report("lpddr4-3200-6gb-x16", "ondie136")
    assert lp.nominal.total.total > _report("lpddr4-3200-6gb-x16", "none").nominal.total.total


def test_access_model_keys_and_bad_codes():
    assert "ecc" not in AccessModel().to_dict()  # reports without ECC keep their keys
    assert AccessModel(ecc="secded72").to_dict()["ecc"] == "secded72"
    with pytest.raises(EdenConfigError, match="secded72"):
        AccessModel(ecc="secded27")
    assert ecc_energy(None, "DDR4").is_identity and ecc_energy("none", "DDR4").to_dict()["placement"] == "none"
    assert dataclasses.replace(AccessModel(), ecc="ondie136").ecc == "ondie136"
