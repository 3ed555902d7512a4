#!/usr/bin/env python
"""Regenerate eden's shipped DRAM profiles and reduced-voltage error models from public data.

Reads the SAFARI characterization data (``../shared/data``, see its README):

* ``voltron-ddr3l/dimm_faulty_cachelines.csv`` (reduced VDD, DDR3L, vendors A/B/C)
  -> one uniform, fixed-persistence error model per (vendor, VDD) with faults
  (``error_models/voltron_ddr3l_*.h5``) and the DDR3L profiles;
* ``diva-ddr3/vendor*/summary_*`` (reduced tRCD, DDR3) -> the measured BERs of
  DIMM A-10 and the per-vendor spread; the DIVA error models themselves are fitted
  by ``scripts/fit_diva.py`` (``error_models/diva_ddr3_A10_trcd*.h5``) and must
  exist before this script runs;

and the cited device data in ``dram_profiles/datasheets/`` (``<device>.json``:
organization, IDD/IPP currents, voltages and timings from data sheets and
memspecs, each field cited; ``sources.json``: every source by id), and writes
``dram_profiles/*.json``: a DDR3L base device, one DDR3L profile per
vendor, the DIVA DDR3 DIMM, and a DDR4-2400 8Gb x8 device (Micron MT40A1G8) whose
operating points borrow the DDR3L/DDR3 error behaviour (labelled as an
assumption; rule in ``docs/profiles.md``). Every number cites a source in the
profile. Unchanged files are left alone; changed ones need ``--force``.

Usage:
    python scripts/fit_diva.py                     # first (writes the DIVA models)
    python scripts/build_profiles.py [--data DIR] [--force]
    python scripts/build_profiles.py --table docs/profiles.md   # only refresh the BER table
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from eden.core import io as _io  # noqa: E402 (needs the sys.path entry above)
from eden.errormodels.h5 import read_metadata  # noqa: E402 (needs the sys.path entry above)
from eden.errormodels.model import ErrorModel  # noqa: E402 (needs the sys.path entry above)

PROFILES_DIR = REPO / "dram_profiles"
DATASHEETS_DIR = PROFILES_DIR / "datasheets"
MODELS_DIR = REPO / "error_models"
DEFAULT_DATA = REPO.parent / "shared" / "data"

LINE_BITS = 512                     # a 64-byte cache line
DIVA_BITS = 8 * 16384 * 8192 * 8    # 2^33: DIMM A-10's tested region (8 banks x 16384 rows x 8 KiB)
DIVA_SWEEPS = 2                     # sweeps over the region per test (eden/dram/importers/diva.py: record order)
DIVA_CLOCK_NS = 2.5                 # the DIVA platform's command clock (data README)
DIVA_TRCD_NS = (12.5, 10.0, 7.5)    # tRCD 5, 4, 3 cycles
DIVA_MODEL = "diva_ddr3_A10_trcd{:.1f}ns.h5"


TABLE_BEGIN = "<!-- BEGIN profile-table (scripts/build_profiles.py --table docs/profiles.md) -->"
TABLE_END = "<!-- END profile-table -->"

# ----------------------------------------------------------------------------- device data
def read_data_file(path: Path, fmt: str) -> dict:
    """One cited data file of ``dram_profiles/datasheets/`` (format ``fmt``, version 1)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read a JSON data file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != fmt or data.get("format_version") != 1:
        raise SystemExit(f"{path}: expected format {fmt!r} version 1, found {data.get('format')!r} "
                         f"version {data.get('format_version')!r}")
    return data


SOURCES: dict[str, dict] = read_data_file(DATASHEETS_DIR / "sources.json", "eden.dram_sources")["sources"]
"""Every source the profiles cite, by id, in the order profiles list them (``datasheets/sources.json``)."""


def read_device(name: str) -> dict:
    """A device's organization, power, timing and per-field citations (``datasheets/<name>.json``).

    Every citation must name a source of ``sources.json``; the profile loader checks the values
    against the standard's field list when the built profile is loaded.
    """
    path = DATASHEETS_DIR / f"{name}.json"
    data = read_data_file(path, "eden.dram_datasheet")
    for key, value in data["cite"].items():
        sid = value.split(":", 1)[0].strip()
        if sid not in SOURCES:
            raise SystemExit(f"{path}: cite.{key} names source {sid!r}, which sources.json does not list")
    return {k: data[k] for k in ("organization", "power", "timing", "cite")}


DDR3L_DEVICE = read_device("ddr3l-1600-4gb-x16")
DIVA_DEVICE = read_device("ddr3-1600-1gb-x8-diva-a10")
DDR4_DEVICE = read_device("ddr4-2400-8gb-x8")

DDR3L_VDD_NOM = DDR3L_DEVICE["power"]["vdd_v"]
DDR3L_TRCD_NOM = DDR3L_DEVICE["timing"]["trcd_ns"]
DDR3_VDD_NOM = DIVA_DEVICE["power"]["vdd_v"]
DDR3_TRCD_NOM = DIVA_DEVICE["timing"]["trcd_ns"]
DDR4_VDD_NOM = DDR4_DEVICE["power"]["vdd_v"]
DDR4_TRCD_NOM = DDR4_DEVICE["timing"]["trcd_ns"]

MODERN_DEVICES = {name: read_device(name) for name in ("ddr5-4800-16gb-x8", "lpddr4-3200-6gb-x16",
                                                       "lpddr5-drampower-test", "hbm2-1200", "hbm3e-6400")}
"""The DDR5, LPDDR4, LPDDR5, HBM2 and HBM3E devices (no public reduced-VDD/tRCD error data: points transferred)."""
HBM_GUARDBAND = 0.19     # Larimi et al., DATE 2021: no errors down to 19% below nominal VDD
HBM_FLIPS_BELOW = 0.11   # ... bit flips within a further 11% of nominal
DDR3L_LAST_CLEAN_V = 1.30  # the pooled Voltron data's lowest error-free VDD


# ----------------------------------------------------------------------------- data
def read_voltron(data: Path) -> dict[str, dict[float, list[tuple[str, float]]]]:
    """vendor -> vdd -> [(dimm, faulty-line fraction)]."""
    path = data / "voltron-ddr3l" / "dimm_faulty_cachelines.csv"
    out: dict[str, dict[float, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            f = float(row["error_cacheline_percent"]) / 100.0
            if not (0.0 <= f <= 1.0):
                raise SystemExit(f"{path}: faulty-line percentage out of range in {row}")
            out[row["vendor"].strip()][round(float(row["vdd"]), 4)].append((row["dimm_name"].strip(), f))
    return out


def read_diva(data: Path) -> dict[str, dict[str, dict[tuple[int, int, int, int], int]]]:
    """vendor -> dimm number -> (tRCD, tRAS, tRP, tWR) cycles -> bit errors."""
    out: dict[str, dict[str, dict[tuple[int, int, int, int], int]]] = defaultdict(dict)
    for vdir in sorted((data / "diva-ddr3").glob("vendor*")):
        vendor = vdir.name[len("vendor"):]
        for path in sorted(vdir.glob("summary_*")):
            tests = {}
            for line in path.read_text().splitlines():
                parts = line.split()
                if not parts or parts[0] != "READ":
                    continue
                key = tuple(int(x) for x in parts[2:6])
                tail = line.split(":", 1)[1].split()
                count = int(tail[2]) if len(tail) >= 4 and tail[-1] == "S" else 0
                tests[key] = count
            out[vendor][path.name.split("_", 1)[1]] = tests
    return out


#: A DIMM whose faulty-line share sits at 50% (within half a point) has saturated (Voltron vendor C:
#: 49.6-50.0% at <= 1.175 V, on every DIMM at 1.1 V): uniform errors would keep growing towards 100%,
#: so the em0-equivalent BER of its point is a lower bound.
SATURATED_LINE_FRACTION = (0.495, 0.505)


def em0_equivalent(f: float) -> float:
    """Uniform per-bit rate at which a 512-bit line holds >= 1 error with probability f."""
    if f >= 1.0:
        return 1.0
    return -math.expm1(math.log1p(-f) / LINE_BITS)


def fmt_pct(f: float) -> str:
    return f"{100 * f:.3g}%"


# ----------------------------------------------------------------------------- error models
def write_model(name: str, model: ErrorModel, provenance: dict, force: bool, log: list[str]) -> None:
    path = MODELS_DIR / name
    if path.exists():
        try:
            same = (ErrorModel.load(path) == model and read_metadata(path)["provenance"] == provenance)
        except (ValueError, OSError):
            same = False
        if same:
            return
        if not force:
            raise SystemExit(f"{path} exists with different contents; pass --force to replace it")
    model.save(path, provenance=provenance, overwrite=True)
    log.append(f"wrote {path.relative_to(REPO)}")


def voltron_points(vendor_label: str, levels: dict[float, list[tuple[str, float]]], force: bool,
                   log: list[str]) -> list[dict]:
    """DDR3L operating points (below nominal) of one vendor or of all vendors ('pooled'), writing their models.

    One vendor: f is the mean faulty-line fraction of its DIMMs tested at that VDD. Pooled: f is
    the mean over vendors of each vendor's mean, so every vendor weighs 1/3 whatever number of its
    DIMMs ran at that VDD (a plain mean over DIMMs would swing with that number).
    """
    pooled = vendor_label == "pooled"
    points = []
    for vdd in sorted(levels, reverse=True):
        if vdd >= DDR3L_VDD_NOM:
            continue
        dimms = levels[vdd]
        fs = [f for _, f in dimms]
        names = ", ".join(d for d, _ in dimms)
        if pooled:
            by_vendor: dict[str, list[float]] = defaultdict(list)
            for d, fd in dimms:
                by_vendor[d[0]].append(fd)
            means = {v: sum(x) / len(x) for v, x in sorted(by_vendor.items())}
            f = sum(means.values()) / len(means)
            how = ("mean over vendors of each vendor's DIMM mean: "
                   + ", ".join(f"{v} {fmt_pct(m)} ({len(by_vendor[v])} DIMMs)" for v, m in means.items()))
        else:
            f = sum(fs) / len(fs)
            how = f"mean of {len(dimms)} DIMMs: {names}"
        ber = em0_equivalent(f)
        where = f"voltron-ddr3l/dimm_faulty_cachelines.csv, {vendor_label}, vdd {vdd:g}"
        if f == 0.0:
            measured = {"figure": f"no faulty line in {len(dimms)} DIMMs ({names})", "ber": 0.0,
                        "estimator": "no error observed (BER below the test's resolution)", "data": where}
            model_name = None
        else:
            measured = {
                "figure": f"{fmt_pct(f)} of 64-byte lines faulty ({how}; per DIMM {fmt_pct(min(fs))} to "
                          f"{fmt_pct(max(fs))})",
                "ber": ber,
                "estimator": f"em0-equivalent p = 1 - (1 - f)^(1/512) of the {'vendor-weighted ' if pooled else ''}"
                             f"mean faulty-line fraction f; f/512 = {f / LINE_BITS:.3g} is the lower bound (one "
                             "error per faulty line)",
                "data": where,
                "ber_range": [em0_equivalent(min(fs)), em0_equivalent(max(fs))],
            }
            n_sat = sum(SATURATED_LINE_FRACTION[0] <= x <= SATURATED_LINE_FRACTION[1] for x in fs)
            if n_sat:
                measured["lower_bound"] = True
                measured["estimator"] += (f"; LOWER BOUND: the faulty-line share saturates at 50% on {n_sat} of "
                                          f"{len(fs)} DIMMs (uniform errors cannot saturate), so the device's BER "
                                          "is higher")
            tag = vendor_label.replace("vendor ", "vendor")
            model_name = f"voltron_ddr3l_{tag.replace(' ', '')}_vdd{vdd:.3f}.h5"
            model = ErrorModel.from_spec(f"em0:p={ber!r}", persistence="fixed")
            write_model(model_name, model, {
                "source": SOURCES["voltron_data"]["citation"],
                "selection": where, "dimms": [d for d, _ in dimms], "faulty_line_fractions": fs,
                "faulty_line_fraction": f, "averaging": how, "estimator": measured["estimator"],
                "model": "em0 (uniform), persistence fixed",
                "assumptions": [SOURCES["assume_voltron_model"]["citation"],
                                SOURCES["assume_voltron_timing"]["citation"]],
                "generator": "scripts/build_profiles.py",
            }, force, log)
        points.append({"vdd_v": vdd, "ber": ber, "error_model": model_name, "measured": measured,
                       "dimms": len(dimms)})
    return points


def diva_points(diva, models_ok: dict[float, float]) -> list[dict]:
    """Reduced-tRCD points of DIMM A-10 with the per-vendor spread of the same test."""
    points = []
    for trcd_ns in DIVA_TRCD_NS:
        cycles = round(trcd_ns / DIVA_CLOCK_NS)
        key = (cycles, 15, 5, 6)
        count = diva["A"]["10"][key]
        spread, lo_hi = [], None
        for vendor in sorted(diva):
            bers = sorted(t[key] / (DIVA_SWEEPS * DIVA_BITS) for t in diva[vendor].values() if key in t)
            spread.append(f"vendor {vendor} ({len(bers)} DIMMs): min {bers[0]:.3g}, median "
                          f"{statistics.median(bers):.3g}, max {bers[-1]:.3g}")
            if vendor == "A":
                lo_hi = [bers[0], bers[-1]]
        model_name = DIVA_MODEL.format(trcd_ns)
        points.append({
            "trcd_ns": trcd_ns, "ber": models_ok[trcd_ns], "error_model": model_name,
            "measured": {
                "figure": f"{count:,} bit errors in DIMM A-10 at tRCD {cycles} cycles ({trcd_ns:g} ns), "
                          f"tRAS 37.5 ns, tRP 12.5 ns, tREFI 256 ms",
                "ber": count / (DIVA_SWEEPS * DIVA_BITS),
                "estimator": "bit errors / (2 sweeps x 2^33 bits) per bit and access: the test region is 8 banks x "
                             "16384 rows x 8 KiB and each test sweeps it twice (A-10's records restart their line "
                             "order once; no summary total exceeds half of 2 x 2^33), as in scripts/convert_diva.py; "
                             "the data README's rough figure divides by one sweep (2x this). The 256 ms refresh "
                             "interval adds retention errors (the baseline row shows them); the spread assumes the "
                             "same region and sweeps for every DIMM",
                "data": f"diva-ddr3/vendorA/summary_10, row 'READ 256ms {cycles} 15 5 6'",
                "ber_range": lo_hi,
                "spread": "; ".join(spread),
            },
        })
    return points


def diva_model_kind(name: str) -> str:
    """What fit_diva.py selected for a model file ('em1+em2', ...), from its provenance."""
    prov = read_metadata(MODELS_DIR / name)["provenance"]
    selected = prov.get("fit", {}).get("selected") if isinstance(prov.get("fit"), dict) else None
    return selected or "+".join(c.kind for c in ErrorModel.load(MODELS_DIR / name).components)


def check_diva_models() -> dict[float, float]:
    missing = [DIVA_MODEL.format(t) for t in DIVA_TRCD_NS if not (MODELS_DIR / DIVA_MODEL.format(t)).is_file()]
    if missing:
        raise SystemExit("missing DIVA error models in error_models/: " + ", ".join(missing)
                         + "\nrun scripts/fit_diva.py first (it fits them to DIMM A-10's records), "
                           "then rerun scripts/build_profiles.py")
    out = {}
    for t in DIVA_TRCD_NS:
        try:
            out[t] = ErrorModel.load(MODELS_DIR / DIVA_MODEL.format(t)).expected_ber()
        except ValueError as exc:
            raise SystemExit(f"invalid DIVA error model: {exc}\nrerun scripts/fit_diva.py") from None
    return out


# ----------------------------------------------------------------------------- profiles
def op_name_vdd(v: float) -> str:
    return f"vdd-{v:.3f}"


def op_name_trcd(t: float) -> str:
    return f"trcd-{t:.2f}"


def voltron_ops(points: list[dict], trcd_ns: float, note: str) -> list[dict]:
    out = []
    for p in points:
        out.append({"name": op_name_vdd(p["vdd_v"]), "vdd_v": p["vdd_v"], "trcd_ns": trcd_ns, "ber": p["ber"],
                    "error_model": p["error_model"], "source": "voltron_data", "measured": p["measured"],
                    "note": note})
    return out


def ddr4_voltage_ops(points: list[dict], label: str) -> list[dict]:
    out = []
    for p in points:
        v4 = round(p["vdd_v"] * DDR4_VDD_NOM / DDR3L_VDD_NOM, 3)
        out.append({"name": op_name_vdd(v4), "vdd_v": v4, "trcd_ns": DDR4_TRCD_NOM, "ber": p["ber"],
                    "error_model": p["error_model"], "source": "assume_ddr3l_to_ddr4",
                    "measured": p["measured"],
                    "note": f"assumption: DDR3L error behaviour carried to DDR4 ({label} at {p['vdd_v']:g} V "
                            f"-> {p['vdd_v']:g} x 1.2/1.35 = {v4:.3f} V); model and BER unchanged"})
    return out


def ddr4_trcd_ops(points: list[dict]) -> list[dict]:
    out = []
    for p in points:
        t4 = round(p["trcd_ns"] * DDR4_TRCD_NOM / DDR3_TRCD_NOM, 2)
        out.append({"name": op_name_trcd(t4), "vdd_v": DDR4_VDD_NOM, "trcd_ns": t4, "ber": p["ber"],
                    "error_model": p["error_model"], "source": "assume_ddr3_to_ddr4", "measured": p["measured"],
                    "note": f"assumption: DDR3 error behaviour carried to DDR4 (DIVA DIMM A-10 at tRCD "
                            f"{p['trcd_ns']:g} ns -> {p['trcd_ns']:g} x 13.32/13.75 = {t4:.2f} ns); model "
                            "(fitted by scripts/fit_diva.py) and BER unchanged"})
    return out


def lead_vdd(device: dict) -> float:
    """Nominal voltage of the standard's lead rail (the rail an operating point's vdd_v sets)."""
    from eden.dram import standards

    return device["power"][standards.get(device["power"]["standard"]).lead.voltage_field]


def transferred_voltage_ops(points: list[dict], device: dict, std_label: str) -> list[dict]:
    """DDR3L (pooled) reduced-VDD points at the same fraction of nominal on another standard's lead rail."""
    v_nom, t_nom = lead_vdd(device), device["timing"]["trcd_ns"]
    out = []
    for p in points:
        v = round(p["vdd_v"] * v_nom / DDR3L_VDD_NOM, 3)
        out.append({"name": op_name_vdd(v), "vdd_v": v, "trcd_ns": t_nom, "ber": p["ber"],
                    "error_model": p["error_model"], "source": "assume_ddr3l_transfer", "measured": p["measured"],
                    "note": f"ASSUMPTION (no public {std_label} reduced-VDD error data): DDR3L (Voltron, pooled) at "
                            f"{p['vdd_v']:g} V -> {p['vdd_v']:g} x {v_nom:g}/1.35 = {v:.3f} V; model and BER "
                            "unchanged"})
    return out


def transferred_trcd_ops(points: list[dict], device: dict, std_label: str) -> list[dict]:
    """DIVA A-10 reduced-tRCD points at the same fraction of nominal tRCD on another standard."""
    v_nom, t_nom = lead_vdd(device), device["timing"]["trcd_ns"]
    out = []
    for p in points:
        t = round(p["trcd_ns"] * t_nom / DDR3_TRCD_NOM, 2)
        out.append({"name": op_name_trcd(t), "vdd_v": v_nom, "trcd_ns": t, "ber": p["ber"],
                    "error_model": p["error_model"], "source": "assume_ddr3_transfer", "measured": p["measured"],
                    "note": f"ASSUMPTION (no public {std_label} reduced-tRCD error data): DDR3 (DIVA DIMM A-10) at "
                            f"tRCD {p['trcd_ns']:g} ns -> {p['trcd_ns']:g} x {t_nom:g}/13.75 = {t:.2f} ns; model "
                            "(fitted by scripts/fit_diva.py) and BER unchanged"})
    return out


def hbm_voltage_ops(points: list[dict], device: dict, label: str, measured_anchor: bool) -> list[dict]:
    """HBM points: the 19% guardband edge (no errors; Larimi et al.), then DDR3L's curve below its last
    error-free voltage carried below that edge, down to 30% below nominal (the paper's further 11%)."""
    v_nom = lead_vdd(device)
    edge = round((1 - HBM_GUARDBAND) * v_nom, 3)
    anchor = ("Larimi et al. (DATE 2021): no bit errors within the 19% guardband of HBM2" if measured_anchor else
              "ASSUMPTION: HBM2's 19% guardband (Larimi et al., DATE 2021, measured on HBM2) carried to HBM3E")
    out = [{"name": op_name_vdd(edge), "vdd_v": edge, "trcd_ns": device["timing"]["trcd_ns"], "ber": 0.0,
            "error_model": None, "source": "hbm_guardband" if measured_anchor else "assume_ddr3l_to_hbm",
            "measured": {"figure": "guardband of 19% of nominal VDD without bit errors (two HBM2 stacks)",
                         "ber": 0.0, "estimator": "no error observed (paper abstract)",
                         "data": "Larimi et al., DATE 2021 (arXiv 2101.00969), abstract; no dataset is public"},
            "note": f"{anchor}: 0.81 x {v_nom:g} V = {edge:.3f} V"}]
    for p in points:
        if p["vdd_v"] >= DDR3L_LAST_CLEAN_V:
            continue
        below = (DDR3L_LAST_CLEAN_V - p["vdd_v"]) / DDR3L_VDD_NOM
        frac = 1 - HBM_GUARDBAND - below
        if frac < 1 - HBM_GUARDBAND - HBM_FLIPS_BELOW - 0.005:
            continue
        v = round(frac * v_nom, 3)
        out.append({"name": op_name_vdd(v), "vdd_v": v, "trcd_ns": device["timing"]["trcd_ns"], "ber": p["ber"],
                    "error_model": p["error_model"], "source": "assume_ddr3l_to_hbm", "measured": p["measured"],
                    "note": f"ASSUMPTION (the paper's BER curve is only in its figures, not read here): DDR3L "
                            f"(Voltron, pooled) at {p['vdd_v']:g} V, {below:.4f} x 1.35 V below its last "
                            f"error-free 1.30 V -> (0.81 - {below:.4f}) x {v_nom:g} V = {v:.3f} V ({label}); "
                            "model and BER unchanged"})
    return out


def modern_profiles(pooled_points: list[dict], dpoints: list[dict]) -> list[dict]:
    """Profiles of DDR5, LPDDR4, LPDDR5, HBM2 and HBM3E; every point below nominal is labelled."""
    out = []
    extra = ("voltron_data", "diva_data", "diva_fit", "voltron_em0", "assume_voltron_model", "assume_voltron_timing",
             "no_modern_error_data")
    warn = ("Operating points other than nominal are NOT measurements of this device: no public bit-error data "
            "of {std} at reduced VDD or tRCD exists (no_modern_error_data); they carry DDR3L (Voltron) and DDR3 "
            "(DIVA A-10) measurements over by the rules in {rules} (docs/power-standards.md).")
    for name, std, description, notes in (
        ("ddr5-4800-16gb-x8", "DDR5",
         "DDR5-4800B 16Gb x8 device as one 32-bit subchannel of 4 chips (BL16, VDD 1.1 V, VPP 1.8 V; Ramulator2's "
         "default currents) with reduced-VDD and reduced-tRCD points transferred from DDR3L/DDR3 data "
         "(assumptions, labelled per point).",
         ["Currents: Ramulator2's DDR5 default preset (it names no data sheet); IDD5C, IDD2P, IDD3P and IDD6N are "
          "not given, so REFsb, power-down and self-refresh are not reported (no number is invented).",
          "Reduced VDD scales the VDD currents; VPP (1.8 V, wordline pump) stays."]),
        ("lpddr4-3200-6gb-x16", "LPDDR4",
         "LPDDR4-3200 Micron 6Gb, one x16 channel (DRAMSys memspec; VDD1 1.8 V, VDD2 1.1 V) with reduced-VDD2 and "
         "reduced-tRCD points transferred from DDR3L/DDR3 data (assumptions, labelled per point).",
         ["An operating point's vdd_v is VDD2 (array and periphery, most of the current); VDD1 (1.8 V) stays.",
          "D-RaNGe/Solar-DRAM characterised reduced-tRCD activation failures of 282 LPDDR4 devices, but published "
          "no per-tRCD numbers; they are not used."]),
        ("lpddr5-drampower-test", "LPDDR5",
         "LPDDR5 built from DRAMPower v6.2.0's TEST memspec (artificial values, labelled as such: no public LPDDR5 "
         "memspec with data-sheet currents exists) with reduced-VDD2H and reduced-tRCD points transferred from "
         "DDR3L/DDR3 data (assumptions, labelled per point).",
         ["TEST MEMSPEC: the currents are DRAMPower's unit-test values (VDD1 carries all of them, VDD2H/VDD2L "
          "carry none), so lowering VDD2H/VDD2L changes no energy here; use it to exercise LPDDR5's model "
          "(WCK timing, REFp2b, deep sleep), not to predict a device's energy.",
          "An operating point's vdd_v is VDD2H (VDD2L scales with it); VDD1 stays."]),
    ):
        device = MODERN_DEVICES[name]
        nominal = {"name": "nominal", "vdd_v": lead_vdd(device), "trcd_ns": device["timing"]["trcd_ns"], "ber": 0.0,
                   "error_model": None, "source": "standard_nominal"}
        out.append(make_profile(
            name, description, device,
            [nominal, *transferred_voltage_ops(pooled_points, device, std),
             *transferred_trcd_ops(dpoints, device, std)],
            extra_sources=extra,
            notes=[*notes, warn.format(std=std, rules="assume_ddr3l_transfer / assume_ddr3_transfer")]))
    for name, std, measured, description in (
        ("hbm2-1200", "HBM2", True,
         "HBM2 1200 MT/s, one pseudo-channel (HBM-Power: currents measured on an Alveo U55C), with the 19% "
         "undervolting guardband of Larimi et al. (DATE 2021) as an error-free point and DDR3L-shaped bit errors "
         "below it (assumption), plus reduced-tRCD points transferred from DDR3 (assumption)."),
        ("hbm3e-6400", "HBM3E", False,
         "HBM3E 6400 MT/s, one pseudo-channel (HBM-Power: HBM2 currents extrapolated to 6400 MT/s), with HBM2's "
         "undervolting anchors and DDR3L-shaped bit errors below the guardband (assumptions), plus reduced-tRCD "
         "points transferred from DDR3 (assumption)."),
    ):
        device = MODERN_DEVICES[name]
        nominal = {"name": "nominal", "vdd_v": lead_vdd(device), "trcd_ns": device["timing"]["trcd_ns"], "ber": 0.0,
                   "error_model": None, "source": "standard_nominal"}
        out.append(make_profile(
            name, description, device,
            [nominal, *hbm_voltage_ops(pooled_points, device, std, measured),
             *transferred_trcd_ops(dpoints, device, std)],
            extra_sources=(*extra, "larimi_hbm2_undervolt", "hbm_guardband"),
            notes=["One profile is one pseudo-channel (HBM-Power's unit); a stack has pseudo_channels_per_stack of "
                   "them. HBM-Power models no power-down, self-refresh or per-bank refresh.",
                   "HBM-Power fixes rho = 1 and I_beta = IDD2N: fact_rho and ibeta are not read.",
                   warn.format(std=std, rules="hbm_guardband / assume_ddr3l_to_hbm / assume_ddr3_transfer")]))
    return out


def used_sources(profile: dict) -> dict:
    ids = set()
    for value in profile.get("cite", {}).values():
        text = value.split(":", 1)[0].strip()
        ids.add(text)
        for sid in SOURCES:  # sources named inside a citation note are listed too
            if sid in value:
                ids.add(sid)
    for op in profile.get("operating_points", []):
        ids.add(op["source"])
    ids |= set(profile.pop("_extra_sources", ()))
    return {sid: SOURCES[sid] for sid in SOURCES if sid in ids}


def make_profile(name: str, description: str, device: dict | None, ops: list[dict], *, extends: str | None = None,
                 extra_sources=(), notes=()) -> dict:
    prof: dict = {"format": "eden.dram_profile", "format_version": 1, "name": name, "description": description}
    if extends:
        prof["extends"] = extends
    if device:
        prof.update({k: device[k] for k in ("organization", "power", "timing")})
        prof["cite"] = device["cite"]
    prof["operating_points"] = ops
    prof["_extra_sources"] = extra_sources
    sources = used_sources(prof)
    prof["sources"] = sources
    if notes:
        prof["notes"] = list(notes)
    order = ["format", "format_version", "name", "description", "extends", "organization", "power", "timing",
             "operating_points", "sources", "cite", "notes"]
    return {k: prof[k] for k in order if k in prof}


def build(data: Path, force: bool) -> list[str]:
    log: list[str] = []
    diva_bers = check_diva_models()
    if not data.is_dir():
        raise SystemExit(f"data folder {data} not found; pass --data DIR (the shared characterization data)")
    voltron = read_voltron(data)
    diva = read_diva(data)

    profiles: list[dict] = []
    ddr3l = DDR3L_DEVICE
    all_dimms = sorted({d for levels in voltron.values() for d, _ in levels[DDR3L_VDD_NOM]})
    nominal_ddr3l = {"name": "nominal", "vdd_v": DDR3L_VDD_NOM, "trcd_ns": DDR3L_TRCD_NOM, "ber": 0.0,
                     "error_model": None, "source": "voltron_data",
                     "measured": {"figure": f"no faulty line in {len(all_dimms)} DIMMs at 1.35 V", "ber": 0.0,
                                  "estimator": "no error observed",
                                  "data": "voltron-ddr3l/dimm_faulty_cachelines.csv, vdd 1.35"}}
    profiles.append(make_profile(
        "ddr3l-1600-4gb-x16",
        "DDR3L-1600 device of the Voltron study (4 x 4Gb x16 chips, one 64-bit rank, nominal VDD 1.35 V); "
        "nominal operating point only. The per-vendor profiles ddr3l-vendor-{a,b,c} extend it with "
        "measured reduced-VDD points.", ddr3l, [nominal_ddr3l],
        notes=["Currents and timings: DRAMsim3's DDR3_4Gb_x16_1600 (VDD 1.35 V) memspec; organization inferred "
               "from the Voltron data (see cite)."]))

    pooled_levels: dict[float, list] = defaultdict(list)
    common = set.intersection(*(set(levels) for levels in voltron.values()))
    vendor_points = {}
    for vendor in sorted(voltron):
        levels = voltron[vendor]
        for v in common:
            pooled_levels[v].extend(levels[v])
        points = voltron_points(f"vendor {vendor}", levels, force, log)
        vendor_points[vendor] = points
        nominal = dict(nominal_ddr3l)
        nominal["measured"] = {
            "figure": f"no faulty line in {len(levels[DDR3L_VDD_NOM])} vendor-{vendor} DIMMs at 1.35 V",
            "ber": 0.0, "estimator": "no error observed",
            "data": f"voltron-ddr3l/dimm_faulty_cachelines.csv, vendor {vendor}, vdd 1.35"}
        ops = [nominal, *voltron_ops(points, DDR3L_TRCD_NOM, "error model: em0 at the em0-equivalent BER, "
                                     "persistence fixed (assume_voltron_model); measured at nominal tRCD "
                                     "(assume_voltron_timing)")]
        profiles.append(make_profile(
            f"ddr3l-vendor-{vendor.lower()}",
            f"DDR3L-1600 4Gb x16 device (ddr3l-1600-4gb-x16) with the reduced-VDD error behaviour of the "
            f"Voltron study's vendor-{vendor} DIMMs: one operating point per tested VDD, BER from the mean "
            f"faulty-line fraction.", None, ops, extends="ddr3l-1600-4gb-x16",
            extra_sources=("voltron_em0", "assume_voltron_model", "assume_voltron_timing")))
    pooled_points = voltron_points("pooled", {v: pooled_levels[v] for v in sorted(common)}, force, log)

    # DDR3, DIVA DIMM A-10
    dpoints = diva_points(diva, diva_bers)
    diva_ops = [{"name": "nominal", "vdd_v": DDR3_VDD_NOM, "trcd_ns": DDR3_TRCD_NOM, "ber": 0.0,
                 "error_model": None, "source": "assume_ddr3_nominal",
                 "note": "nominal timing (13.75 ns) was not tested by DIVA; error-free by specification"}]
    for p in dpoints:
        diva_ops.append({"name": op_name_trcd(p["trcd_ns"]), "vdd_v": DDR3_VDD_NOM, "trcd_ns": p["trcd_ns"],
                         "ber": p["ber"], "error_model": p["error_model"], "source": "diva_data",
                         "measured": p["measured"],
                         "note": f"model {diva_model_kind(p['error_model'])} fitted by scripts/fit_diva.py "
                                 "(diva_fit; report in docs/fits.md); ber is the model's expected BER"})
    profiles.append(make_profile(
        "ddr3-diva-a10",
        "DDR3-1600 DIMM A-10 of the DIVA study (8 x 1Gb x8 chips, one 64-bit rank, VDD 1.5 V) at reduced "
        "tRCD (12.5, 10 and 7.5 ns; tRAS 37.5 ns, tRP 12.5 ns, tREFI 256 ms in the test), with error models "
        "fitted to its per-line error records.", DIVA_DEVICE, diva_ops,
        extra_sources=("diva_fit", "diva_paper", "micron_ddr3_bins"),
        notes=["Currents: DRAMPower's MICRON_1Gb_DDR3-1600_8bit_G memspec; organization inferred from the DIVA "
               "data (see cite).",
               "The tested points ran with a 256 ms refresh interval; their BERs include the retention errors "
               "that interval causes (the DIVA baseline row at 12.5 ns shows them)."]))

    # DDR4-2400 8Gb x8
    ddr4 = DDR4_DEVICE
    ddr4_nominal = {"name": "nominal", "vdd_v": DDR4_VDD_NOM, "trcd_ns": DDR4_TRCD_NOM, "ber": 0.0,
                    "error_model": None, "source": "ddr4_nominal"}
    ddr4_notes = ["Currents: per-device values derived from Micron's MTA18ASF2G72HZ module table for MT40A1G8 "
                  "(each derivation is in cite). They differ from the 8Gb memspec of eden's power-model golden "
                  "tests (a 4Gb DRAMSys memspec with 8Gb currents substituted, docs/power.md) in "
                  "IDD2P/IDD3P/IDD6N and the IPPs, which come from the data sheet here.",
                  "Timings: speed grade -083E (DDR4-2400, 16-16-16, tRCD 13.32 ns); the -083 grade (CL17) has "
                  "tRCD 14.16 ns: override timing.trcd_ns/trp_ns for it.",
                  "Operating points other than nominal are NOT DDR4 measurements: they carry the DDR3L "
                  "(Voltron) and DDR3 (DIVA A-10) error behaviour to DDR4 by the rule in "
                  "assume_ddr3l_to_ddr4 / assume_ddr3_to_ddr4 (docs/profiles.md)."]
    profiles.append(make_profile(
        "ddr4-2400-8gb-x8",
        "DDR4-2400 8Gb x8 device (Micron MT40A1G8, speed grade -083E, one 64-bit rank of 8 chips, VDD 1.2 V, "
        "VPP 2.5 V) with reduced-VDD points borrowed from the DDR3L data pooled over the three vendors "
        "(each weighing 1/3) and "
        "reduced-tRCD points borrowed from DIVA DIMM A-10 (assumptions, labelled per point).",
        ddr4, [ddr4_nominal, *ddr4_voltage_ops(pooled_points, "Voltron DDR3L, all vendors pooled"),
               *ddr4_trcd_ops(dpoints)],
        extra_sources=("voltron_data", "diva_data", "diva_fit", "voltron_em0", "assume_voltron_model",
                       "assume_voltron_timing"),
        notes=ddr4_notes))
    for vendor, points in sorted(vendor_points.items()):
        profiles.append(make_profile(
            f"ddr4-2400-8gb-x8-vendor-{vendor.lower()}",
            f"ddr4-2400-8gb-x8 with the reduced-VDD points borrowed from the Voltron vendor-{vendor} DDR3L "
            f"DIMMs instead of the pooled ones (assumption, labelled per point); same reduced-tRCD points.",
            None, [ddr4_nominal, *ddr4_voltage_ops(points, f"Voltron DDR3L vendor {vendor}"),
                   *ddr4_trcd_ops(dpoints)], extends="ddr4-2400-8gb-x8",
            extra_sources=("voltron_data", "diva_data", "diva_fit", "voltron_em0", "assume_voltron_model",
                           "assume_voltron_timing")))

    profiles += modern_profiles(pooled_points, dpoints)

    for prof in profiles:
        path = PROFILES_DIR / f"{prof['name']}.json"
        text = json.dumps(prof, indent=2, allow_nan=False) + "\n"
        if path.exists():
            if path.read_text() == text:
                continue
            if not force:
                raise SystemExit(f"{path} exists with different contents; pass --force to replace it")
        _io.write_text(path, text, overwrite=True)
        log.append(f"wrote {path.relative_to(REPO)}")

    from eden.dram.profiles import load_profile

    for prof in profiles:  # what we wrote must load, and every model must match its BER
        load_profile(prof["name"]).check_error_models()
    return log


# ----------------------------------------------------------------------------- table
def profile_table() -> str:
    """Markdown table: BER per operating point of every shipped profile next to its measured figure."""
    from eden.dram.profiles import list_presets, load_profile

    lines = ["| profile | operating point | VDD [V] | tRCD [ns] | BER (model) | measured BER | measured figure "
             "| source |",
             "|---|---|---|---|---|---|---|---|"]
    for name in list_presets():
        prof = load_profile(name)
        for op in prof.operating_points:
            model = prof.error_model(op)
            m = op.measured
            measured_ber = "-" if m is None or m.ber is None else f"{m.ber:.3g}"
            if m is not None and m.ber_range is not None:
                measured_ber += f" ({m.ber_range[0]:.2g}-{m.ber_range[1]:.2g})"
            figure = "-" if m is None else m.figure.replace("|", "/")
            src = prof.sources[op.source]
            label = f"{op.source}{' (ASSUMPTION)' if src.is_assumption else ''}"
            lines.append(f"| {name} | {op.name} | {op.vdd_v:g} | {op.trcd_ns:g} | {model.expected_ber():.3g} "
                         f"| {measured_ber} | {figure} | {label} |")
    diva = load_profile("ddr3-diva-a10")
    lines += ["", "Spread of the DIVA tests over every DIMM in the summaries (BER = bit errors / (2 x 2^33)):", "",
              "| tRCD [ns] | DIMM A-10 | per vendor (DIMMs): min, median, max |", "|---|---|---|"]
    for op in diva.operating_points:
        if op.measured is not None and op.measured.spread:
            lines.append(f"| {op.trcd_ns:g} | {op.measured.ber:.3g} | {op.measured.spread} |")
    return "\n".join(lines)


def write_table(doc: Path) -> None:
    text = doc.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise SystemExit(f"{doc} has no '{TABLE_BEGIN}' ... '{TABLE_END}' block to fill")
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    new = f"{head}{TABLE_BEGIN}\n{profile_table()}\n{TABLE_END}{tail}"
    if new != text:
        _io.write_text(doc, new, overwrite=True)
        print(f"updated the table in {doc}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"characterization data (default {DEFAULT_DATA})")
    ap.add_argument("--force", action="store_true", help="replace shipped files whose contents change")
    ap.add_argument("--table", type=Path, metavar="DOC.md",
                    help="only refresh the BER table in DOC.md from the shipped profiles (no data needed)")
    args = ap.parse_args(argv)
    if args.table:
        write_table(args.table)
        return 0
    for line in build(args.data, args.force):
        print(line)
    print("profiles and error models are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
