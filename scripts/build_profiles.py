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

and writes ``dram_profiles/*.json``: a DDR3L base device, one DDR3L profile per
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

from eden.core import io as _io
from eden.errormodels.h5 import read_metadata
from eden.errormodels.model import ErrorModel

PROFILES_DIR = REPO / "dram_profiles"
MODELS_DIR = REPO / "error_models"
DEFAULT_DATA = REPO.parent / "shared" / "data"

LINE_BITS = 512                     # a 64-byte cache line
DIVA_BITS = 8 * 16384 * 8192 * 8    # 2^33: DIMM A-10's tested region (8 banks x 16384 rows x 8 KiB)
DIVA_SWEEPS = 2                     # sweeps over the region per test (scripts/convert_diva.py: record order)
DIVA_CLOCK_NS = 2.5                 # the DIVA platform's command clock (data README)
DIVA_TRCD_NS = (12.5, 10.0, 7.5)    # tRCD 5, 4, 3 cycles
DIVA_MODEL = "diva_ddr3_A10_trcd{:.1f}ns.h5"

DDR3L_VDD_NOM = 1.35
DDR3_VDD_NOM = 1.5
DDR4_VDD_NOM = 1.2
DDR3_TRCD_NOM = 13.75
DDR4_TRCD_NOM = 13.32

TABLE_BEGIN = "<!-- BEGIN profile-table (scripts/build_profiles.py --table docs/profiles.md) -->"
TABLE_END = "<!-- END profile-table -->"

# ----------------------------------------------------------------------------- sources
SOURCES = {
    "voltron_data": {
        "kind": "dataset",
        "citation": "Chang et al., 'Understanding Reduced-Voltage Operation in Modern DRAM Devices', "
                    "SIGMETRICS 2017 (arXiv 1705.10292), public data release: "
                    "voltron-ddr3l/dimm_faulty_cachelines.csv (percentage of 64-byte lines with >= 1 "
                    "flipped bit per DIMM and VDD; 30 DDR3L SO-DIMMs of vendors A, B, C in the file)"},
    "voltron_paper": {
        "kind": "paper",
        "citation": "Chang et al., SIGMETRICS 2017 (arXiv 1705.10292), abstract: '124 real DDR3L "
                    "(low-voltage) DRAM chips' from three vendors; nominal DDR3L VDD 1.35 V",
        "url": "https://arxiv.org/abs/1705.10292"},
    "diva_data": {
        "kind": "dataset",
        "citation": "Lee et al., 'Design-Induced Latency Variation in Modern DRAM Chips', SIGMETRICS 2017 "
                    "(arXiv 1610.09604), public data release: diva-ddr3/vendor{A,B,C}/summary_NN "
                    "(bit errors per DIMM per READ test; tRCD/tRAS/tRP/tWR in 2.5 ns cycles; tREFI 256 ms)"},
    "diva_paper": {
        "kind": "paper",
        "citation": "Lee et al., SIGMETRICS 2017 (arXiv 1610.09604), abstract: '96 DIMMs (768 DRAM chips)'",
        "url": "https://arxiv.org/abs/1610.09604"},
    "diva_fit": {
        "kind": "derivation",
        "citation": "error models fitted by scripts/fit_diva.py to DIMM A-10's per-line error records "
                    "(diva-ddr3/raw/vendorA_rawdata_10_*.gz; tRCD 12.5 and 10 ns) or summary total (7.5 ns); "
                    "each .h5 file carries its provenance, docs/fits.md the fit report"},
    "voltron_em0": {
        "kind": "derivation",
        "citation": "scripts/build_profiles.py: em0 (uniform) error model, persistence 'fixed', with "
                    "p = 1 - (1 - f)^(1/512) where f is the vendor's mean faulty-line fraction at that VDD"},
    "micron_ddr4_module": {
        "kind": "datasheet",
        "citation": "Micron MTA18ASF2G72HZ 16GB (x72, ECC, DR) 260-pin DDR4 SODIMM data sheet "
                    "(asf18c2gx72hz.pdf Rev. F 8/16), Table 15 'DDR4 IDD Specifications and Conditions - 16GB "
                    "(Die Revision B)', DDR4-2400 column: 'Values are for the MT40A1G8 DDR4 SDRAM only and are "
                    "computed from values specified in the 8Gb (1 Gig x 8) component data sheet'. Module = 18 "
                    "devices in 2 ranks; note 1 rows (IDD0, IPP0, IDD4R, IDD4W, IDD5B, IPP5B) have one rank "
                    "active and the other in IDD2P/IPP3N, note 2 rows have all ranks in the condition",
        "url": "https://www.omo-ic.com/pdf/683021/MTA18ASF2G72HZ-2G6E1/P19-P21.html"},
    "micron_ddr4_8gb_notes": {
        "kind": "datasheet",
        "citation": "Micron 8Gb x4/x8/x16 DDR4 SDRAM data sheet, 'Current Specifications - Limits', note 23: "
                    "'IPP3N test and limit is applicable for all IDD2x, IDD3x, IDD4x and IDD8 conditions'",
        "url": "http://www.datasheetandpdf.com/EN/MICRON/334/MT40A2G4PM-083E.htm"},
    "micron_ddr4_4gb_bins": {
        "kind": "datasheet",
        "citation": "Micron 4Gb x4/x8/x16 DDR4 SDRAM data sheet, Table 152 'DDR4-2400 Speed Bins': speed "
                    "grade -083E (16-16-16): tRCD = tRP = 13.32 ns, tRAS min 32 ns, tCK(avg) min 0.833 ns, "
                    "CWL 12 or 16 at tCK 0.833 ns (-083, 17-17-17, has 14.16 ns); Table 157: tRTP = greater of "
                    "4CK or 7.5 ns. JEDEC speed-bin values are density-independent; the 8Gb data sheet's own "
                    "table was not retrieved",
        "url": "http://www.datasheetandpdf.com/EN/MICRON/333/MT40A1G4RH-075E.htm"},
    "micron_ddr4_sodimm": {
        "kind": "datasheet",
        "citation": "Micron DDR4 SODIMM data sheets (e.g. MTA4ATF51264HZ, MTA16ATF2G64HZ): VDD = 1.20 V (NOM), "
                    "VPP = 2.5 V (NOM), fixed burst length BL 8; 8Gb (1 Gig x 8) device: 16 banks "
                    "(4 groups of 4), row address 64K A[15:0], column address 1K"},
    "dramsim3_ddr4": {
        "kind": "memspec",
        "citation": "DRAMsim3 configs/DDR4_8Gb_x8_2400.ini ('DDR4-2400 for Micron MT40A1G8PM-083E'; "
                    "umd-memsys/DRAMsim3): bankgroups 4 x 4 banks, rows 65536, columns 1024, width 8, BL 8, "
                    "tCK 0.833 ns, CWL 16, tRFC 420 tCK ('350ns'), tREFI 9364 tCK (7.8 us); its currents "
                    "(IDD0 48, IDD2P 25, IDD2N 34, IDD3P 37, IDD3N 43, IDD4W 123, IDD4R 135, IDD5 250 mA) "
                    "agree with the module-derived values, IDD6 31 mA vs 30 mA"},
    "dramsys_ddr4": {
        "kind": "memspec",
        "citation": "tukl-msd/DRAMSys configs/memspec/MICRON_4Gb_DDR4-2400_8bit_A.json (commit 2107966; "
                    "as quoted in eden's power-model specification): WR 18 cycles at tCK 0.833 ns (15 ns), "
                    "WL 16"},
    "drampower_ddr3": {
        "kind": "memspec",
        "citation": "DRAMPower memspecs/MICRON_1Gb_DDR3-1600_8bit_G.json (tukl-msd/DRAMPower): 8 banks, "
                    "16384 rows, 1024 columns, width 8, BL 8, 800 MHz; idd0 70, idd2p1 30 (fast exit), "
                    "idd2n 45, idd3p1 35, idd3n 45, idd4r 140, idd4w 145, idd5 170, idd6 8 mA, vdd 1.5 V; "
                    "RAS 28, RFC 88, REFI 6240, RTP 6, WR 12, WL 8 cycles (its RCD/RP are 10 cycles = 12.5 ns, "
                    "the DDR3-1600J bin)"},
    "micron_ddr3_bins": {
        "kind": "datasheet",
        "citation": "Micron DDR3/DDR3L SDRAM data sheets (e.g. MT41K512M8, 4Gb DDR3L), Table 1 'Key Timing "
                    "Parameters': speed grade -125, DDR3-1600, 11-11-11: tRCD = tRP = 13.75 ns",
        "url": "https://pdf.datasheet.directory/a3e91c15/micron.com/MT41K512M8RH-125E.html"},
    "dramsim3_ddr3l": {
        "kind": "memspec",
        "citation": "DRAMsim3 configs/DDR3_4Gb_x16_1600.ini (umd-memsys/DRAMsim3): 8 banks, rows 32768, "
                    "columns 1024, width 16, BL 8, tCK 1.25 ns, CWL 8, tRCD 11, tRP 11, tRAS 28, tRFC 208, "
                    "REFI 6240, tWR 12, tRTP 6 cycles; VDD 1.35 V, IDD0 66, IDD2P 18, IDD2N 32, IDD3P 38, "
                    "IDD3N 47, IDD4W 171, IDD4R 235, IDD5AB 235, IDD6x 20 mA. The file does not name the data "
                    "sheet its currents come from (provenance not verified further)"},
    "derive_voltron_org": {
        "kind": "derivation",
        "citation": "124 chips (paper abstract) / 31 DIMMs (data README) = 4 chips per 64-bit rank, so x16 "
                    "chips; the smallest non-zero faulty-line fraction in the data, 2.98e-8 = 2^-25, implies "
                    ">= 2^25 lines (2 GiB) per DIMM, so 4 x 4Gb x16 chips (8 banks x 32768 rows x 1024 columns)"},
    "derive_diva_org": {
        "kind": "derivation",
        "citation": "768 chips / 96 DIMMs (paper abstract) = 8 chips per 64-bit rank, so x8 chips; the raw "
                    "records of A-10 span banks 0-7, rows 0-16383 and lines 0-127 of 8 KiB rows, i.e. 1 GiB = "
                    "8 x 1Gb x8 chips (8 banks x 16384 rows x 1024 columns)"},
    "derive_ddr4_devices": {
        "kind": "derivation",
        "citation": "one 64-bit rank of x8 chips: 8 devices, rank row = 1024 columns x 64 bits = 8 KiB"},
    "assume_subarray": {
        "kind": "assumption",
        "citation": "assumption: 512 rows per subarray (a common DRAM mat height, eden's default); the "
                    "devices' subarray size is not published"},
    "assume_single_rank": {
        "kind": "assumption",
        "citation": "assumption: one rank (a single-rank device description; multiply for more ranks)"},
    "assume_ipp6n": {
        "kind": "assumption",
        "citation": "assumption: IPP6N = IPP3N (3 mA); no x8 self-refresh IPP value was found. Micron's 8Gb "
                    "x16 die rev. D data sheet (MT40A1G16, note 11) applies the IPP3N limit to IDD6x too"},
    "assume_ddr3_nominal": {
        "kind": "assumption",
        "citation": "assumption: the DIVA DIMMs are DDR3-1600K (11-11-11) parts with nominal tRCD = tRP = "
                    "13.75 ns (the data gives only the tested 12.5/10/7.5 ns), error-free at nominal timing "
                    "with the standard 64 ms refresh (BER 0 by specification, not measured)"},
    "assume_voltron_timing": {
        "kind": "assumption",
        "citation": "assumption: the faulty-line fractions were measured at the nominal tRCD (the data file "
                    "does not state the timing)"},
    "assume_voltron_model": {
        "kind": "assumption",
        "citation": "assumption: reduced-voltage errors are modelled as uniform (em0) over the device with "
                    "'fixed' persistence (the same weak cells fail on every access, nested across VDD); the "
                    "paper's spatial plots show errors clustering in some banks and rows, which the per-DIMM "
                    "data here cannot resolve"},
    "assume_ddr3l_to_ddr4": {
        "kind": "assumption",
        "citation": "assumption: DDR3L error behaviour carried to DDR4 - a DDR3L point measured at VDD v "
                    "(nominal 1.35 V) gives a DDR4 point at v x 1.2/1.35 (same fraction of nominal VDD, "
                    "rounded to 1 mV) with the same error model and BER"},
    "assume_ddr3_to_ddr4": {
        "kind": "assumption",
        "citation": "assumption: DDR3 (DIVA DIMM A-10) reduced-tRCD error behaviour carried to DDR4 - a DDR3 "
                    "point at tRCD t (nominal 13.75 ns) gives a DDR4 point at t x 13.32/13.75 (same fraction "
                    "of nominal tRCD, rounded to 0.01 ns) at nominal VDD, with the same error model and BER"},
    "ddr4_nominal": {
        "kind": "datasheet",
        "citation": "nominal operating point of the data sheet (VDD 1.2 V, tRCD 13.32 ns); error-free by "
                    "specification (BER 0)"},
}


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
            how = (f"mean over vendors of each vendor's DIMM mean: "
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
def cite_all(values: dict, default: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    overrides = overrides or {}
    return {k: overrides.get(k, default) for k in values}


def ddr3l_device() -> dict:
    org = {"banks": 8, "rows": 32768, "row_bytes": 8192, "bus_width_bits": 64, "subarray_rows": 512,
           "device_width_bits": 16}
    power = {"standard": "DDR3", "nbr_of_banks": 8, "nbr_of_devices": 4, "nbr_of_ranks": 1, "burst_length": 8,
             "data_rate": 2, "vdd_v": DDR3L_VDD_NOM, "idd0_ma": 66.0, "idd2n_ma": 32.0, "idd3n_ma": 47.0,
             "idd4r_ma": 235.0, "idd4w_ma": 171.0, "idd5b_ma": 235.0, "idd2p_ma": 18.0, "idd3p_ma": 38.0,
             "idd6n_ma": 20.0}
    timing = {"tck_ns": 1.25, "tras_ns": 35.0, "trp_ns": 13.75, "trcd_ns": DDR3_TRCD_NOM, "trfc1_ns": 260.0,
              "trefi_ns": 7800.0, "trtp_ns": 7.5, "twr_ns": 15.0, "cwl_cycles": 8}
    cite = {}
    cite.update({f"organization.{k}": "derive_voltron_org" for k in org})
    cite["organization.subarray_rows"] = "assume_subarray"
    cite.update({f"power.{k}": "dramsim3_ddr3l" for k in power})
    cite["power.standard"] = "voltron_paper: DDR3L is the low-voltage DDR3 standard"
    cite["power.nbr_of_banks"] = "dramsim3_ddr3l: banks_per_group 8 x bankgroups 1"
    cite["power.nbr_of_devices"] = "derive_voltron_org: 4 x16 chips per rank"
    cite["power.nbr_of_ranks"] = "assume_single_rank"
    cite["power.data_rate"] = "dramsim3_ddr3l: DDR, two transfers per clock"
    cite["power.vdd_v"] = "voltron_paper: nominal DDR3L VDD 1.35 V (also VDD in the DRAMsim3 file)"
    cite["power.idd5b_ma"] = "dramsim3_ddr3l: IDD5AB"
    cite["power.idd6n_ma"] = "dramsim3_ddr3l: IDD6x"
    cite.update({f"timing.{k}": "dramsim3_ddr3l: cycles x tCK 1.25 ns" for k in timing})
    cite["timing.tck_ns"] = "dramsim3_ddr3l: tCK"
    cite["timing.cwl_cycles"] = "dramsim3_ddr3l: CWL"
    return {"organization": org, "power": power, "timing": timing, "cite": cite}


def ddr3_diva_device() -> dict:
    org = {"banks": 8, "rows": 16384, "row_bytes": 8192, "bus_width_bits": 64, "subarray_rows": 512,
           "device_width_bits": 8}
    power = {"standard": "DDR3", "nbr_of_banks": 8, "nbr_of_devices": 8, "nbr_of_ranks": 1, "burst_length": 8,
             "data_rate": 2, "vdd_v": DDR3_VDD_NOM, "idd0_ma": 70.0, "idd2n_ma": 45.0, "idd3n_ma": 45.0,
             "idd4r_ma": 140.0, "idd4w_ma": 145.0, "idd5b_ma": 170.0, "idd2p_ma": 30.0, "idd3p_ma": 35.0,
             "idd6n_ma": 8.0}
    timing = {"tck_ns": 1.25, "tras_ns": 35.0, "trp_ns": DDR3_TRCD_NOM, "trcd_ns": DDR3_TRCD_NOM,
              "trfc1_ns": 110.0, "trefi_ns": 7800.0, "trtp_ns": 7.5, "twr_ns": 15.0, "cwl_cycles": 8}
    cite = {f"organization.{k}": "derive_diva_org" for k in org}
    cite["organization.subarray_rows"] = "assume_subarray"
    cite.update({f"power.{k}": "drampower_ddr3" for k in power})
    cite["power.nbr_of_devices"] = "derive_diva_org: 8 x8 chips per rank"
    cite["power.nbr_of_ranks"] = "assume_single_rank"
    cite["power.idd2p_ma"] = "drampower_ddr3: idd2p1 (fast-exit precharge power-down, DLL on, as DDR4's IDD2P)"
    cite["power.idd3p_ma"] = "drampower_ddr3: idd3p1 (fast-exit active power-down)"
    cite["power.idd5b_ma"] = "drampower_ddr3: idd5"
    cite["power.idd6n_ma"] = "drampower_ddr3: idd6"
    cite.update({f"timing.{k}": "drampower_ddr3: cycles x tCK 1.25 ns (800 MHz)" for k in timing})
    cite["timing.tck_ns"] = "drampower_ddr3: clkMhz 800"
    cite["timing.cwl_cycles"] = "drampower_ddr3: WL"
    cite["timing.trcd_ns"] = "assume_ddr3_nominal: DDR3-1600K bin (micron_ddr3_bins), not the memspec's 12.5 ns"
    cite["timing.trp_ns"] = "assume_ddr3_nominal: DDR3-1600K bin (micron_ddr3_bins), not the memspec's 12.5 ns"
    return {"organization": org, "power": power, "timing": timing, "cite": cite}


def ddr4_device() -> dict:
    org = {"banks": 16, "rows": 65536, "row_bytes": 8192, "bus_width_bits": 64, "subarray_rows": 512,
           "device_width_bits": 8}
    power = {"standard": "DDR4", "nbr_of_banks": 16, "nbr_of_devices": 8, "nbr_of_ranks": 1, "burst_length": 8,
             "data_rate": 2, "vdd_v": DDR4_VDD_NOM, "vpp_v": 2.5,
             "idd0_ma": 48.0, "idd2n_ma": 34.0, "idd3n_ma": 43.0, "idd4r_ma": 135.0, "idd4w_ma": 123.0,
             "idd5b_ma": 250.0, "idd2p_ma": 25.0, "idd3p_ma": 37.0, "idd6n_ma": 30.0,
             "ipp0_ma": 3.0, "ipp2n_ma": 3.0, "ipp3n_ma": 3.0, "ipp4r_ma": 3.0, "ipp4w_ma": 3.0,
             "ipp5b_ma": 28.0, "ipp2p_ma": 3.0, "ipp3p_ma": 3.0, "ipp6n_ma": 3.0}
    timing = {"tck_ns": 0.833, "tras_ns": 32.0, "trp_ns": DDR4_TRCD_NOM, "trcd_ns": DDR4_TRCD_NOM,
              "trfc1_ns": 350.0, "trefi_ns": 7800.0, "trtp_ns": 7.5, "twr_ns": 15.0, "cwl_cycles": 16}
    m = "micron_ddr4_module"
    cite = {
        "organization.banks": "micron_ddr4_sodimm: 4 bank groups x 4 banks (also dramsim3_ddr4)",
        "organization.rows": "micron_ddr4_sodimm: row address 64K (also dramsim3_ddr4)",
        "organization.row_bytes": "derive_ddr4_devices",
        "organization.bus_width_bits": "derive_ddr4_devices",
        "organization.subarray_rows": "assume_subarray",
        "organization.device_width_bits": "micron_ddr4_sodimm: 1 Gig x 8",
        "power.standard": "micron_ddr4_module: DDR4 SDRAM",
        "power.nbr_of_banks": "micron_ddr4_sodimm: 16 banks",
        "power.nbr_of_devices": "derive_ddr4_devices",
        "power.nbr_of_ranks": "assume_single_rank",
        "power.burst_length": "micron_ddr4_sodimm: fixed BL 8",
        "power.data_rate": "micron_ddr4_sodimm: double data rate, two transfers per clock",
        "power.vdd_v": "micron_ddr4_sodimm: VDD 1.20 V (NOM)",
        "power.vpp_v": "micron_ddr4_sodimm: VPP 2.5 V (NOM)",
        "power.idd0_ma": f"{m}: (IDD0 657 mA - 9 x IDD2P 25 mA) / 9",
        "power.idd2n_ma": f"{m}: IDD2N 612 mA / 18",
        "power.idd3n_ma": f"{m}: IDD3N 774 mA / 18",
        "power.idd4r_ma": f"{m}: (IDD4R 1440 mA - 9 x 25 mA) / 9",
        "power.idd4w_ma": f"{m}: (IDD4W 1332 mA - 9 x 25 mA) / 9",
        "power.idd5b_ma": f"{m}: (IDD5B 2475 mA - 9 x 25 mA) / 9",
        "power.idd2p_ma": f"{m}: IDD2P 450 mA / 18",
        "power.idd3p_ma": f"{m}: IDD3P 666 mA / 18",
        "power.idd6n_ma": f"{m}: IDD6N 540 mA / 18 (DRAMsim3 lists 31 mA)",
        "power.ipp0_ma": f"{m}: (IPP0 54 mA - 9 x IPP3N 3 mA) / 9",
        "power.ipp3n_ma": f"{m}: IPP3N 54 mA / 18",
        "power.ipp5b_ma": f"{m}: (IPP5B 279 mA - 9 x IPP3N 3 mA) / 9",
        "power.ipp2n_ma": "micron_ddr4_8gb_notes: IPP3N limit (3 mA) applies to IDD2N",
        "power.ipp2p_ma": "micron_ddr4_8gb_notes: IPP3N limit (3 mA) applies to IDD2P",
        "power.ipp3p_ma": "micron_ddr4_8gb_notes: IPP3N limit (3 mA) applies to IDD3P",
        "power.ipp4r_ma": "micron_ddr4_8gb_notes: IPP3N limit (3 mA) applies to IDD4R",
        "power.ipp4w_ma": "micron_ddr4_8gb_notes: IPP3N limit (3 mA) applies to IDD4W",
        "power.ipp6n_ma": "assume_ipp6n",
        "timing.tck_ns": "micron_ddr4_4gb_bins: tCK(avg) min 0.833 ns at DDR4-2400",
        "timing.tras_ns": "micron_ddr4_4gb_bins: tRAS min 32 ns",
        "timing.trp_ns": "micron_ddr4_4gb_bins: -083E tRP 13.32 ns",
        "timing.trcd_ns": "micron_ddr4_4gb_bins: -083E tRCD 13.32 ns",
        "timing.trfc1_ns": "dramsim3_ddr4: tRFC 420 tCK = 350 ns for 8Gb",
        "timing.trefi_ns": "dramsim3_ddr4: tREFI 9364 tCK = 7.8 us",
        "timing.trtp_ns": "micron_ddr4_4gb_bins: tRTP = greater of 4CK or 7.5 ns",
        "timing.twr_ns": "dramsys_ddr4: WR 18 cycles x 0.833 ns = 15 ns",
        "timing.cwl_cycles": "dramsim3_ddr4: CWL 16 (Micron bins allow 12 or 16 at 0.833 ns)",
    }
    return {"organization": org, "power": power, "timing": timing, "cite": cite}


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
    ddr3l = ddr3l_device()
    all_dimms = sorted({d for levels in voltron.values() for d, _ in levels[DDR3L_VDD_NOM]})
    nominal_ddr3l = {"name": "nominal", "vdd_v": DDR3L_VDD_NOM, "trcd_ns": DDR3_TRCD_NOM, "ber": 0.0,
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
        ops = [nominal, *voltron_ops(points, DDR3_TRCD_NOM, "error model: em0 at the em0-equivalent BER, "
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
        "fitted to its per-line error records.", ddr3_diva_device(), diva_ops,
        extra_sources=("diva_fit", "diva_paper", "micron_ddr3_bins"),
        notes=["Currents: DRAMPower's MICRON_1Gb_DDR3-1600_8bit_G memspec; organization inferred from the DIVA "
               "data (see cite).",
               "The tested points ran with a 256 ms refresh interval; their BERs include the retention errors "
               "that interval causes (the DIVA baseline row at 12.5 ns shows them)."]))

    # DDR4-2400 8Gb x8
    ddr4 = ddr4_device()
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
