"""Traffic -> commands, latency and energy (eden/power/traffic.py).

The open-page simulation is checked against a naive per-burst row-buffer
simulator; energies against hand formulas and the section 8 table of
/work/shared/power-model.md (DRAMPower golden numbers, 1e-9 relative).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from eden.dram.address import AddressMap, DramOrganization
from eden.power.memspec import MemSpec, background_powers, command_energies
from eden.power.traffic import (AccessModel, CommandCounts, DataTypeTraffic, RowBufferPolicy, command_counts,
                                energy_report, inference_traffic, latency_report)

REL = 1e-9
PJ = 1e-12


def close(got: float, want: float) -> bool:
    return got == want if want == 0 else abs(got - want) <= REL * abs(want)


# MICRON_4Gb_DDR4-2400_8bit_A (DRAMSys) and the 8Gb variant of power-model.md section 6, as profile fields.
FIELDS_4GB = {
    "standard": "DDR4", "name": "MICRON_4Gb_DDR4-2400_8bit_A", "nbr_of_banks": 16, "nbr_of_devices": 8,
    "nbr_of_ranks": 1, "burst_length": 8, "data_rate": 2, "vdd_v": 1.2, "vpp_v": 2.5,
    "idd0_ma": 60.75, "idd2n_ma": 38.25, "idd3n_ma": 44.0, "idd4r_ma": 184.5, "idd4w_ma": 168.75,
    "idd5b_ma": 118.0, "idd2p_ma": 17.0, "idd3p_ma": 22.5, "idd6n_ma": 20.25,
    "ipp0_ma": 4.05, "ipp2n_ma": 0, "ipp3n_ma": 0, "ipp4r_ma": 0, "ipp4w_ma": 0, "ipp5b_ma": 0,
    "ipp2p_ma": 17.0, "ipp3p_ma": 22.5, "ipp6n_ma": 2.6,
    "tck_ns": 0.833, "tras_ns": 32.0, "trp_ns": 13.32, "trcd_ns": 13.32, "trfc1_ns": 260.0, "trefi_ns": 3898.44,
}
FIELDS_8GB = dict(FIELDS_4GB, name="MT40A1G8", idd0_ma=48.0, idd2n_ma=34.0, idd3n_ma=43.0, idd4r_ma=135.0,
                  idd4w_ma=123.0, idd5b_ma=250.0, ipp0_ma=3.0, trfc1_ns=349.86)
SPEC_4GB = MemSpec.from_fields(FIELDS_4GB, source="4Gb")
SPEC_8GB = MemSpec.from_fields(FIELDS_8GB, source="8Gb")
RANK = DramOrganization(banks=16, rows=32768, row_bytes=8192, bus_width_bits=64)
TINY = DramOrganization(banks=4, rows=64, row_bytes=1024, bus_width_bits=64, subarray_rows=16)  # 16 bursts/row


# ---------------------------------------------------------------- records
def test_traffic_record_defaults_and_validation():
    t = DataTypeTraffic("conv1.ifm", bytes_read=300, bytes_written=100)
    assert t.footprint_bytes == 300 and t.to_dict()["footprint_bytes"] == 300
    assert DataTypeTraffic("w", np.int64(5), 0).bytes_read == 5
    with pytest.raises(ValueError, match=r"DataTypeTraffic\('w'\).bytes_read must be an integer >= 0, got -1"):
        DataTypeTraffic("w", -1, 0)
    with pytest.raises(TypeError, match="bytes_written must be an integer, got 1.5"):
        DataTypeTraffic("w", 1, 1.5)
    with pytest.raises(TypeError, match="must be an integer, got True"):
        DataTypeTraffic("w", True, 0)
    with pytest.raises(ValueError, match="non-empty string"):
        DataTypeTraffic("", 1, 0)
    with pytest.raises(ValueError, match="footprint_bytes must be > 0"):
        DataTypeTraffic("w", 1, 0, footprint_bytes=0)


def test_inference_traffic_weights_once_ifms_per_sample():
    got = inference_traffic([("conv1.ifm", "ifm", 1000), ("conv1.weight", "weight", 300),
                             ("conv2.ifm", "ifm", 500), ("conv2.weight", "weight", 200)],
                            batch_size=4, consumers={"conv2.ifm": 2})
    assert [(t.name, t.bytes_read, t.bytes_written, t.footprint_bytes) for t in got] == [
        ("conv1.ifm", 4000, 4000, 4000), ("conv1.weight", 300, 0, 300),
        ("conv2.ifm", 4000, 2000, 2000), ("conv2.weight", 200, 0, 200)]
    assert inference_traffic([("w", "weight", 10)], batch_size=2, weight_reads=2)[0].bytes_read == 20
    with pytest.raises(ValueError, match="unknown kind of tensor 'x' 'bias'; known: ifm, weight"):
        inference_traffic([("x", "bias", 1)], batch_size=1)
    with pytest.raises(ValueError, match="consumers given for unknown tensors \\['y'\\]"):
        inference_traffic([("x", "ifm", 1)], batch_size=1, consumers={"y": 2})
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        inference_traffic([], batch_size=0)


def test_policy_and_model_validation():
    with pytest.raises(ValueError, match="unknown RowBufferPolicy.kind .*; known: closed_page, open_page"):
        RowBufferPolicy("adaptive")
    with pytest.raises(ValueError, match="applies to open_page only"):
        RowBufferPolicy("closed_page", hit_rate=0.5)
    with pytest.raises(ValueError, match=r"hit_rate must be in \[0, 1\], got 1.5"):
        RowBufferPolicy(hit_rate=1.5)
    with pytest.raises(ValueError, match=r"miss_overlap must be in \[0, 1\]"):
        AccessModel(miss_overlap=-0.1)
    with pytest.raises(ValueError, match="unknown AccessModel.scheme .*; known: bank_row, row_bank"):
        AccessModel(scheme="xor")
    with pytest.raises(ValueError, match="unknown AccessModel.timing_granularity .*; known: cycle, ns"):
        AccessModel(timing_granularity="ps")
    with pytest.raises(TypeError, match="refresh must be a bool"):
        AccessModel(refresh=1)
    d = AccessModel().to_dict()
    assert d["policy"]["kind"] == "open_page" and "computed from the access order" in d["policy"]["description"]


# ---------------------------------------------------------------- commands
def _naive_misses(traffic, org, scheme, bases, burst):
    """Per-burst open-page simulation: one open row per bank, writes then reads, wrapping passes."""
    amap = AddressMap(org, scheme)
    open_row = {}
    out = {}
    for t in traffic:
        misses = 0
        for total in (t.bytes_written, t.bytes_read):
            done = 0
            while done < total:
                pass_bytes = min(t.footprint_bytes, total - done)
                for off in range(0, pass_bytes, burst):
                    bank, row, _ = amap.locate(bases[t.name] + off)
                    if open_row.get(bank) != row:
                        misses += 1
                        open_row[bank] = row
                done += pass_bytes
        out[t.name] = misses
    return out


def test_open_page_hand_example():
    # 6 rows on 4 banks (row_bank): pass 1 misses 6; it leaves rows 1,1,0,0 open in banks 0..3,
    # so passes 2 and 3 hit banks 2 and 3 and miss 4 each: 6 + 4 + 4 = 14 ACTs for 3 passes.
    t = DataTypeTraffic("x", bytes_read=3 * 6 * 1024, bytes_written=0, footprint_bytes=6 * 1024)
    c = command_counts([t], TINY)["x"]
    assert (c.rd, c.wr, c.act, c.pre, c.base_address) == (3 * 6 * 16, 0, 14.0, 14.0, 0)
    assert c.hit_rate == 1 - 14 / 288
    # 3 rows fit in 4 banks: written once, read back twice: only the first pass misses
    small = DataTypeTraffic("y", bytes_read=2 * 3072, bytes_written=3072, footprint_bytes=3072)
    assert command_counts([small], TINY)["y"].act == 3.0
    # bank_row: consecutive rows share bank 0, nothing survives a pass
    assert command_counts([t], TINY, scheme="bank_row")["x"].act == 18.0


@pytest.mark.parametrize("scheme", ["row_bank", "bank_row"])
@pytest.mark.parametrize("layout", ["row_aligned", "packed"])
@pytest.mark.parametrize("seed", range(4))
def test_open_page_simulation_matches_naive_oracle(scheme, layout, seed):
    rng = np.random.default_rng(seed)
    traffic = []
    for i in range(int(rng.integers(1, 6))):
        fp = int(rng.integers(1, 9000))
        traffic.append(DataTypeTraffic(f"t{i}", bytes_read=int(rng.integers(0, 4)) * fp + int(rng.integers(0, fp)),
                                       bytes_written=int(rng.integers(0, 3)) * fp, footprint_bytes=fp))
    counts = command_counts(traffic, TINY, scheme=scheme, layout=layout)
    bases = {k: c.base_address for k, c in counts.items()}
    assert _naive_misses(traffic, TINY, scheme, bases, 64) == {k: int(c.act) for k, c in counts.items()}
    for t in traffic:
        c = counts[t.name]
        assert c.rd == sum(-(-n // 64) for n in _pass_sizes(t.bytes_read, t.footprint_bytes))
        assert c.wr == sum(-(-n // 64) for n in _pass_sizes(t.bytes_written, t.footprint_bytes))
    if layout == "row_aligned":
        assert all(b % 1024 == 0 for b in bases.values())


def _pass_sizes(total, footprint):
    full, rest = divmod(total, footprint)
    return [footprint] * full + ([rest] if rest else [])


def test_given_base_addresses_share_rows_across_data_types():
    # a and b in the same 1 KiB row: b's read hits the row a left open
    a, b = DataTypeTraffic("a", 512, 0), DataTypeTraffic("b", 512, 0)
    counts = command_counts([a, b], TINY, base_addresses={"a": 0, "b": 512})
    assert (counts["a"].act, counts["b"].act) == (1.0, 0.0)
    assert command_counts([a, b], TINY)["b"].act == 1.0  # row-aligned default: b starts a new row
    assert command_counts([a, b], TINY, layout="packed")["b"].act == 0.0
    with pytest.raises(ValueError, match="not a multiple of the 64-byte burst"):
        command_counts([a, b], TINY, base_addresses={"a": 0, "b": 100})
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        command_counts([a, b], TINY, base_addresses={"a": 0})
    with pytest.raises(ValueError, match="data type 'a' .* does not fit the DRAM partition"):
        command_counts([a], TINY, base_addresses={"a": TINY.capacity_bytes})


def test_closed_page_given_hit_rate_and_partial_bursts():
    t = DataTypeTraffic("x", bytes_read=100, bytes_written=64)  # 2 read bursts (partial counts whole), 1 write
    assert command_counts([t], TINY, policy=RowBufferPolicy("closed_page"))["x"] == CommandCounts(
        "x", rd=2, wr=1, act=3.0, pre=3.0, base_address=None)
    c = command_counts([t], TINY, policy=RowBufferPolicy(hit_rate=0.75))["x"]
    assert (c.act, c.pre, c.hit_rate) == (0.75, 0.75, 0.75)
    huge = DataTypeTraffic("huge", TINY.capacity_bytes + 1, 0)
    with pytest.raises(ValueError, match="does not fit"):
        command_counts([huge], TINY)
    assert command_counts([huge], TINY, policy=RowBufferPolicy(hit_rate=0.5))["huge"].act > 0  # no placement
    with pytest.raises(ValueError, match="appears twice"):
        command_counts([t, t], TINY)


# ---------------------------------------------------------------- latency
def test_latency_hand_numbers():
    counts = {"x": CommandCounts("x", rd=100, wr=0, act=10.0, pre=10.0)}
    tck = SPEC_4GB.tck_s
    # nominal: 100 bursts * 4 tCK + 10 misses * (RP 16 + RCD 16) = 720 tCK; 10 ns -> ceil(12.005 - 0.025) = 12
    rep = latency_report(counts, SPEC_4GB, trcd_ns=10.0, memory_bound_fraction=0.5)
    assert (rep.rcd_nominal_cycles, rep.rcd_cycles, rep.bursts, rep.row_misses) == (16, 12, 100, 10.0)
    assert close(rep.access_time_nominal_s, 720 * tck) and close(rep.access_time_s, 680 * tck)
    assert close(rep.saved_s, 40 * tck)
    assert close(rep.speedup, 1 / (0.5 + 0.5 * 680 / 720))
    ns = latency_report(counts, SPEC_4GB, trcd_ns=10.0, model=AccessModel(timing_granularity="ns"))
    assert ns.rcd_cycles is None and close(ns.saved_s, 10 * (16 * tck - 10e-9))
    assert close(ns.speedup, 720 * tck / ns.access_time_s)  # f = 1: speedup = time ratio
    half = latency_report(counts, SPEC_4GB, trcd_ns=10.0, model=AccessModel(miss_overlap=0.5))
    assert close(half.saved_s, 20 * tck) and close(half.access_time_nominal_s, 560 * tck)
    same = latency_report(counts, SPEC_4GB)
    assert same.saved_s == 0 and same.speedup == 1.0
    json.dumps(rep.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match=r"memory_bound_fraction must be in \[0, 1\]"):
        latency_report(counts, SPEC_4GB, memory_bound_fraction=1.5)
    with pytest.raises(ValueError, match="trcd_ns must be a number > 0 and finite"):
        latency_report(counts, SPEC_4GB, trcd_ns=0.0)


# ---------------------------------------------------------------- energy
SECTION8 = [  # (spec, alpha, vdd, total pJ per 64 B read, saving %, saving +REF %)
    ("4Gb", 0.0, 1.15, 7090.2565125, "3.904709", "3.910211"),
    ("4Gb", 0.0, 1.10, 6802.15305, "7.809417", "7.820422"),
    ("4Gb", 0.0, 1.05, 6514.0495875, "11.714126", "11.730633"),
    ("4Gb", 1.0, 1.15, 6814.1573609375, "7.646721", "7.657497"),
    ("4Gb", 1.0, 1.10, 6273.96336875, "14.968050", "14.989143"),
    ("4Gb", 1.0, 1.05, 5757.7779984375, "21.963986", "21.994938"),
    ("8Gb", 0.0, 1.15, 4883.33755, "3.884872", "3.914379"),
    ("8Gb", 0.0, 1.10, 4685.9582, "7.769744", "7.828758"),
    ("8Gb", 0.0, 1.05, 4488.57885, "11.654616", "11.743136"),
    ("8Gb", 1.0, 1.15, 4694.1823395833, "7.607874", "7.665658"),
    ("8Gb", 1.0, 1.10, 4324.0960583333, "14.892009", "15.005119"),
    ("8Gb", 1.0, 1.05, 3970.45805625, "21.852405", "22.018381"),
]
NOMINAL = {"4Gb": (7378.359975, 7536.669276), "8Gb": (5080.7169, 5674.940654)}


@pytest.mark.parametrize("device, alpha, vdd, total, saving, saving_ref", SECTION8,
                         ids=[f"{r[0]}-a{r[1]}-{r[2]}" for r in SECTION8])
def test_energy_report_reproduces_section8(device, alpha, vdd, total, saving, saving_ref):
    """64-byte reads back to back at hit rate 7/8 on a rank of 8 devices: the data bus is 100 % busy
    (misses fully overlapped), background is active standby for 4 tCK per read, no power-down."""
    spec = {"4Gb": SPEC_4GB, "8Gb": SPEC_8GB}[device]
    reads = 64
    traffic = [DataTypeTraffic("stream", bytes_read=64 * reads, bytes_written=0)]
    for refresh, want_saving in ((False, saving), (True, saving_ref)):
        model = AccessModel(policy=RowBufferPolicy(hit_rate=7 / 8), miss_overlap=1.0, refresh=refresh)
        rep = energy_report(traffic, spec, RANK, vdd_v=vdd, alpha=alpha, model=model)
        nominal_per_read = rep.nominal.total.total / reads / PJ
        assert abs(nominal_per_read - NOMINAL[device][refresh]) <= (5e-7 if refresh else REL * nominal_per_read)
        if not refresh:
            assert close(rep.operating.total.total, total * PJ * reads)
        assert f"{100 * rep.saving_fraction:.6f}" == want_saving
        assert rep.law == spec.at_vdd(vdd, alpha).law and rep.vdd_v == vdd
        assert close(rep.run_time_s, reads * 4 * spec.tck_s) and rep.run_time_s == rep.run_time_nominal_s


def _conv_traffic():
    return inference_traffic([("c1.ifm", "ifm", 150528), ("c1.weight", "weight", 9408),
                              ("c2.ifm", "ifm", 200704), ("fc.weight", "weight", 2_048_000)], batch_size=2)


def test_reduced_trcd_saves_time_not_command_energy():
    traffic = _conv_traffic()
    rep = energy_report(traffic, SPEC_4GB, RANK, trcd_ns=10.0, memory_bound_fraction=0.4)
    nom, op = rep.nominal, rep.operating
    for comp in ("act", "pre", "rd", "wr"):  # same VDD: per-command energies identical
        assert getattr(op, comp) == getattr(nom, comp)
    ratio = rep.run_time_s / rep.run_time_nominal_s
    assert ratio < 1 and close(op.background.total, nom.background.total * ratio)
    assert close(op.refresh.total, nom.refresh.total * ratio)
    lat = rep.latency
    assert close(rep.run_time_nominal_s, lat.access_time_nominal_s / 0.4)
    assert close(rep.run_time_nominal_s - rep.run_time_s, lat.saved_s)
    assert close(lat.saved_s, lat.row_misses * 4 * SPEC_4GB.tck_s)  # 16 -> 12 cycles per miss
    assert close(lat.speedup, rep.run_time_nominal_s / rep.run_time_s)


def test_energy_report_hand_accounting_and_attribution():
    traffic = _conv_traffic()
    rep = energy_report(traffic, SPEC_4GB, RANK, vdd_v=1.1, trcd_ns=10.0, memory_bound_fraction=0.5, samples=2)
    counts = command_counts(traffic, RANK)
    for state, spec, run_time in (("nominal", SPEC_4GB, rep.run_time_nominal_s),
                                  ("operating", SPEC_4GB.at_vdd(1.1), rep.run_time_s)):
        e, p, n = command_energies(spec), background_powers(spec), 8
        dyn = sum(c.act * e.act.total + c.pre * e.pre.total + c.rd * e.rd.total + c.wr * e.wr.total
                  for c in counts.values()) * n
        bg = p.active_standby_all_banks.total * run_time * n  # open page, idle rows open
        ref = run_time / (4680 * spec.tck_s) * e.refa.total * n
        got = getattr(rep, state)
        assert close(got.dynamic.total, dyn) and close(got.background.total, bg) and close(got.refresh.total, ref)
        assert close(got.total.total, dyn + bg + ref)
        # per data type: dynamic is theirs, shared energy split by access time; sums equal the total
        parts = [getattr(d, state) for d in rep.data_types]
        assert close(sum(b.total.total for b in parts), got.total.total)
    assert [d.counts for d in rep.data_types] == list(counts.values())
    d = rep.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert "IDD(V) = IDD_nominal * (V / 1.2 V) ** 1" in text and d["samples"] == 2
    assert close(d["per_sample_j"]["operating"], rep.operating.total.total / 2)
    desc = rep.describe()
    assert "law: " + rep.law in desc and "c2.ifm" in desc and "speedup" in desc


def test_energy_report_given_run_time_and_idle_states():
    t = [DataTypeTraffic("x", bytes_read=64 * 1000, bytes_written=0)]
    rep = energy_report(t, SPEC_4GB, RANK, run_time_s=1e-3, memory_bound_fraction=0.25,
                        model=AccessModel(idle_rows_open=False, refresh=False))
    p = background_powers(SPEC_4GB)
    busy = rep.latency.access_time_nominal_s
    want = (p.active_standby_all_banks.total * busy + p.precharged_standby.total * (1e-3 - busy)) * 8
    assert rep.run_time_nominal_s == 1e-3 and close(rep.nominal.background.total, want)
    assert rep.refreshes == 0 and rep.nominal.refresh.total == 0
    closed = energy_report(t, SPEC_4GB, RANK, run_time_s=1e-3, model=AccessModel(
        policy=RowBufferPolicy("closed_page"), refresh=False))
    want = (p.active_standby_one_bank.total * closed.latency.access_time_nominal_s
            + p.precharged_standby.total * (1e-3 - closed.latency.access_time_nominal_s)) * 8
    assert close(closed.nominal.background.total, want) and closed.data_types[0].counts.act == 1000
    with pytest.raises(ValueError, match="shorter than the DRAM access time"):
        energy_report(t, SPEC_4GB, RANK, run_time_s=1e-9)
    with pytest.raises(ValueError, match=r"memory_bound_fraction must be in \(0, 1\]"):
        energy_report(t, SPEC_4GB, RANK, memory_bound_fraction=0.0)


def test_energy_report_needs_refi_for_refresh_and_handles_ddr3(tmp_path):
    no_refi = MemSpec.from_fields({k: v for k, v in FIELDS_4GB.items() if k != "trefi_ns"})
    t = [DataTypeTraffic("x", bytes_read=6400, bytes_written=640)]
    with pytest.raises(ValueError, match="has no tREFI"):
        energy_report(t, no_refi, RANK)
    assert energy_report(t, no_refi, RANK, model=AccessModel(refresh=False)).nominal.refresh.total == 0
    ddr3 = MemSpec.from_fields({**{k: v for k, v in FIELDS_4GB.items() if not k.startswith(("ipp", "vpp"))},
                                "standard": "DDR3"})
    rep = energy_report(t, ddr3, RANK, vdd_v=1.1)
    assert rep.operating.total.vpp is None and rep.saving_fraction > 0
    path = tmp_path / "report.json"
    rep.save(path)
    assert json.loads(path.read_text())["standard"] == "DDR3"
    with pytest.raises(FileExistsError):
        rep.save(path)
    empty = energy_report([DataTypeTraffic("none", 0, 0)], SPEC_4GB, RANK)
    assert empty.saving_fraction is None and empty.nominal.total.total == 0
