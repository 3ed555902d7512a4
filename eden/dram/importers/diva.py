"""DIVA (Lee et al., SIGMETRICS 2017): DDR3 SO-DIMMs at reduced tRCD/tRAS/tRP.

Source: public data release of Lee et al., "Design-Induced Latency Variation in
Modern DRAM Chips: Characterization, Analysis, and Latency Reduction Mechanisms",
SIGMETRICS 2017 (arXiv 1610.09604): 96 DDR3 SO-DIMMs of vendors A, B, C tested on
an FPGA platform (controller clock period 2.5 ns) at reduced tRCD/tRAS/tRP with a
256 ms refresh interval (a copy: ``../shared/data/diva-ddr3``, see its README).

Two importers:

* ``diva``: DIMM A-10 (shipped as ``error_models/raw/diva_ddr3_A10.h5``). Tests
  ``trcd12.5ns`` and ``trcd10.0ns``: the per-64-byte-line error records of
  ``raw/vendorA_rawdata_10_<tRCD>_15_5.gz`` (``bank row line w0..w7 count``; the
  undocumented words are dropped). Each file holds two consecutive sweeps over
  (line, bank, row), which the record order shows (the line index restarts at 0);
  they are kept as iterations 0 and 1. Plus one summary test per line of
  ``vendorA/summary_10`` (total bit errors).
* ``diva-summaries`` (~2 MB, not shipped): one summary test per line of every
  ``vendor?/summary_NN`` (all 96 DIMMs), named like ``A10_trcd12.5ns_tras37.5ns_trp12.5ns``.

Tested region. The A-10 records span banks 0-7, rows 0-16383 and lines 0-127 of
8 KiB rows, i.e. 8 x 16384 x 8 KiB = 2^33 bits, the organization recorded here;
the upstream README gives the same ~8.6e9 bits. Every summary total in the data
is below 0.5 x 2 x 2^33 (the largest is 0.498 of it, at tRCD 5 ns where reads
return noise), consistent with two sweeps of 2^33 bits per test, so summaries
record ``units_tested = 2^33`` and ``iterations = 2``; for DIMMs other than A-10
the region size is this inference, said so in the provenance. Not given by the
source and therefore not recorded: subarray size, temperature, supply voltage,
data pattern (written as "unknown").
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from eden.dram.address import DramOrganization
from eden.dram.importers import Importer, register
from eden.dram.raw import MeasurementConditions, RawCharacterization, RecordTest, SummaryTest
from eden.errors import EdenDataError

CLOCK_NS = 2.5
"""Controller clock period of the testing platform (ns): 1 cycle = 2.5 ns."""
REFRESH_MS = 256.0
ORGANIZATION = DramOrganization(banks=8, rows=16384, row_bytes=8192, bus_width_bits=64)
REGION_BITS = ORGANIZATION.banks * ORGANIZATION.rows * ORGANIZATION.row_bits  # 2**33
SWEEPS = 2
LINE_BITS = 512
CITATION = ("Lee et al., \"Design-Induced Latency Variation in Modern DRAM Chips: Characterization, "
            "Analysis, and Latency Reduction Mechanisms\", SIGMETRICS 2017 (arXiv 1610.09604); "
            "public data release")
RAW_FILES = {5: "vendorA_rawdata_10_5_15_5.gz", 4: "vendorA_rawdata_10_4_15_5.gz"}  # tRCD cycles -> file
# The provenance names the converter that made the shipped files; kept as it was written then so
# that re-importing reproduces them exactly (the shipped files are the reference of the import test).
_CONVERTER = "scripts/convert_diva.py"
_SUMMARY_RE = re.compile(r"^READ\s+(\d+)ms\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*:\s*(\S+)\s+(\S+)\s*(\d*)\s*S?\s*$")


def operating_point(trcd: int, tras: int, trp: int, twr: int, refresh_ms: float = REFRESH_MS) -> MeasurementConditions:
    """Timings in controller cycles -> an MeasurementConditions in ns."""
    return MeasurementConditions(trcd_ns=trcd * CLOCK_NS, tras_ns=tras * CLOCK_NS, trp_ns=trp * CLOCK_NS,
                          twr_ns=twr * CLOCK_NS, refresh_interval_ms=refresh_ms)


def timing_name(trcd: int, tras: int, trp: int) -> str:
    """Test-name part of a timing in cycles: ``trcd12.5ns_tras37.5ns_trp12.5ns``."""
    return f"trcd{trcd * CLOCK_NS:.1f}ns_tras{tras * CLOCK_NS:.1f}ns_trp{trp * CLOCK_NS:.1f}ns"


def read_summary(path: Path) -> list[dict]:
    """Parse one ``summary_NN`` file: one dict per READ line (timings in cycles, errors)."""
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.startswith("READ"):
            continue
        m = _SUMMARY_RE.match(line)
        if not m:
            raise EdenDataError(f"{path}:{lineno}: unexpected summary line {line!r}")
        refresh, trcd, tras, trp, twr = (int(v) for v in m.groups()[:5])
        errors = int(m.group(8)) if m.group(8) else 0  # empty: no errors
        out.append({"refresh_ms": float(refresh), "trcd": trcd, "tras": tras, "trp": trp, "twr": twr,
                    "errors": errors, "line": lineno})
    if not out:
        raise EdenDataError(f"{path}: no READ lines")
    return out


def _summary_test(name: str, row: dict, device: str) -> SummaryTest:
    return SummaryTest(name, quantity="bit_errors", value=row["errors"], unit_bits=1,
                       units_tested=REGION_BITS, iterations=SWEEPS, data_pattern="unknown (not documented upstream)",
                       operating_point=operating_point(row["trcd"], row["tras"], row["trp"], row["twr"],
                                                       row["refresh_ms"]), device=device)


def read_records(path: Path, name: str, trcd: int, twr: int) -> RecordTest:
    """Per-line records of one raw file; the sweep index comes from the record order."""
    try:
        with gzip.open(path, "rt") as fh:
            data = np.loadtxt(fh, usecols=(0, 1, 2, 11), dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise EdenDataError(f"{path}: not a DIVA raw record file (bank row line w0..w7 count): {exc}") from None
    bank, row, line, count = data.T
    sweep = np.concatenate([[0], np.cumsum(np.diff(line) < 0)])  # line index restarts: next sweep
    if sweep.max() + 1 != SWEEPS:
        raise EdenDataError(f"{path}: expected {SWEEPS} sweeps over the lines (line index restarting once), "
                            f"found {sweep.max() + 1}")
    return RecordTest(name, bank=bank, row=row, column=line, count=count, column_bits=LINE_BITS,
                      iterations=SWEEPS, iteration=sweep,
                      data_pattern="unknown (not documented upstream); two sweeps per test",
                      operating_point=operating_point(trcd, 15, 5, twr), device="DIMM A-10 (vendor A)")


def convert_a10(src: Path) -> RawCharacterization:
    """DIMM A-10: per-line records at tRCD 12.5 and 10 ns, and every summary line of the DIMM."""
    summary = read_summary(src / "vendorA" / "summary_10")
    twr = {r["twr"] for r in summary}
    if len(twr) != 1:
        raise EdenDataError(f"{src / 'vendorA' / 'summary_10'}: expected one tWR, found {sorted(twr)}")
    twr = twr.pop()
    tests: list[RecordTest | SummaryTest] = []
    for trcd in sorted(RAW_FILES, reverse=True):
        name = f"trcd{trcd * CLOCK_NS:.1f}ns"
        t = read_records(src / "raw" / RAW_FILES[trcd], name, trcd, twr)
        total = next((r["errors"] for r in summary if (r["trcd"], r["tras"], r["trp"]) == (trcd, 15, 5)), None)
        if t.total_errors != total:
            raise EdenDataError(f"{RAW_FILES[trcd]}: records sum to {t.total_errors} errors, summary_10 says "
                                f"{total}")
        tests.append(t)
    for r in summary:
        tests.append(_summary_test("summary_" + timing_name(r["trcd"], r["tras"], r["trp"]), r,
                                   "DIMM A-10 (vendor A)"))
    provenance = {
        "source": CITATION, "device": "DDR3 SO-DIMM A-10 (vendor A)",
        "files": [f"diva-ddr3/raw/{f}" for f in RAW_FILES.values()] + ["diva-ddr3/vendorA/summary_10"],
        "converter": _CONVERTER,
        "timings": f"controller cycles x {CLOCK_NS} ns; refresh interval {REFRESH_MS:g} ms",
        "records": "one per (bank, row, 64-byte line, sweep) with >= 1 error; count = bit errors in the line "
                   "in that sweep; the eight 64-bit words of the source are undocumented and dropped",
        "iterations": "each raw file holds two consecutive sweeps over (line, bank, row): line order restarts "
                      "once; kept as iterations 0 and 1 (whether they used different data patterns is not "
                      "documented)",
        "region": "8 banks x 16384 rows x 8 KiB = 2^33 bits (the span of the records)",
        "not_recorded": "subarray size, temperature, supply voltage, data pattern",
    }
    return RawCharacterization(tuple(tests), ORGANIZATION, subarray_rows_known=False, provenance=provenance)


def convert_summaries(src: Path) -> RawCharacterization:
    """Every DIMM's summary lines (total bit errors per timing), all 96 DIMMs."""
    tests = []
    for vendor_dir in sorted(src.glob("vendor?")):
        vendor = vendor_dir.name[-1]
        for path in sorted(vendor_dir.glob("summary_*")):
            number = path.name.split("_")[1]
            seen = set()
            for r in read_summary(path):
                name = f"{vendor}{number}_{timing_name(r['trcd'], r['tras'], r['trp'])}"
                if name in seen:
                    raise EdenDataError(f"{path}:{r['line']}: timing listed twice")
                seen.add(name)
                tests.append(_summary_test(name, r, f"DIMM {vendor}-{number} (vendor {vendor})"))
    provenance = {
        "source": CITATION, "converter": _CONVERTER,
        "files": "diva-ddr3/vendor{A,B,C}/summary_NN",
        "timings": f"controller cycles x {CLOCK_NS} ns; refresh interval from the tREFI column",
        "value": "total bit errors of the test (empty in the source: 0)",
        "region": "units_tested = 2^33 bits and iterations = 2 are inferred: they are DIMM A-10's tested "
                  "region and sweeps, and every total in the data is < 0.5 x 2 x 2^33 (largest 0.498), "
                  "which a smaller region could not give at tRCD 5 ns where reads return noise",
        "not_recorded": "subarray size, temperature, supply voltage, data pattern; the 16 S/. flag "
                        "characters of each line (undocumented)",
    }
    return RawCharacterization(tuple(tests), ORGANIZATION, subarray_rows_known=False, provenance=provenance)


A10 = register(Importer(
    "diva", "DIVA DDR3 (SIGMETRICS 2017), DIMM A-10: per-line error records at tRCD 12.5/10 ns and the "
    "DIMM's summary lines", ("raw/" + RAW_FILES[5], "raw/" + RAW_FILES[4], "vendorA/summary_10"),
    convert_a10, shipped="diva_ddr3_A10.h5"))
SUMMARIES = register(Importer(
    "diva-summaries", "DIVA DDR3 (SIGMETRICS 2017): total bit errors of all 96 DIMMs at every timing",
    ("vendorA", "vendorB", "vendorC"), convert_summaries))
