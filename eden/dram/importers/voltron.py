"""Voltron (Chang et al., SIGMETRICS 2017): DDR3L SO-DIMMs at reduced supply voltage.

Source: public data release of Chang et al., "Understanding Reduced-Voltage
Operation in Modern DRAM Devices: Experimental Characterization, Analysis, and
Mechanisms", SIGMETRICS 2017 (arXiv 1705.10292): DDR3L SO-DIMMs (nominal VDD
1.35 V) of vendors A, B, C (a copy: ``../shared/data/voltron-ddr3l``).

``dimm_faulty_cachelines.csv`` gives, per DIMM and supply voltage, only the
percentage of 64-byte cache lines with at least one flipped bit. That is what
is recorded, as it is: one *summary* test per (DIMM, VDD) with quantity
``faulty_unit_fraction``, ``unit_bits = 512`` and ``vdd_v``; no per-cell or
per-line records are invented. Fitting such a test identifies only a lower
bound on the BER (f/512) and a uniform-equivalent BER (see ``eden errormodel
fit``). Not given by the file and therefore not recorded: the number of lines
tested, iterations, organization, timings, temperature, data pattern. (Every
percentage in the file is a multiple of 100/2^25, which suggests 2^25 lines or
an average over two 2^24-line tests; being an inference, it is noted in the
provenance but not used.)

``retention_time_profile.csv`` (bit-error counts per bank at a temperature and
refresh interval) is not converted: it does not give the number of bits tested,
so no rate can be derived from it.

Importer ``voltron``: tests named ``A1_vdd1.100V``; shipped as
``error_models/raw/voltron_ddr3l_faulty_lines.h5``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from eden.dram.importers import Importer, register
from eden.dram.raw import MeasurementConditions, RawCharacterization, SummaryTest
from eden.errors import EdenDataError

CITATION = ("Chang et al., \"Understanding Reduced-Voltage Operation in Modern DRAM Devices: Experimental "
            "Characterization, Analysis, and Mechanisms\", SIGMETRICS 2017 (arXiv 1705.10292); public data "
            "release")
LINE_BITS = 512
CSV_NAME = "dimm_faulty_cachelines.csv"
COLUMNS = ("dimm_name", "vdd", "vendor", "error_cacheline_percent")
# Kept as written when the shipped file was made, so that re-importing reproduces it exactly.
_CONVERTER = "scripts/convert_voltron.py"


def read_faulty_lines(path: Path) -> list[SummaryTest]:
    """One summary test per CSV row; errors name the file and line."""
    tests, seen = [], set()
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise EdenDataError(f"{path}: expected columns {', '.join(COLUMNS)}; found {reader.fieldnames}")
        for lineno, row in enumerate(reader, 2):
            try:
                vdd = float(row["vdd"])
                percent = float(row["error_cacheline_percent"])
            except (TypeError, ValueError):
                raise EdenDataError(f"{path}:{lineno}: vdd and error_cacheline_percent must be numbers, got "
                                    f"{row['vdd']!r}, {row['error_cacheline_percent']!r}") from None
            if not 0.0 <= percent <= 100.0:
                raise EdenDataError(f"{path}:{lineno}: error_cacheline_percent must be in [0, 100], got {percent}")
            name = f"{row['dimm_name']}_vdd{vdd:.3f}V"
            if name in seen:
                raise EdenDataError(f"{path}:{lineno}: DIMM {row['dimm_name']} at {vdd} V listed twice")
            seen.add(name)
            tests.append(SummaryTest(
                name, quantity="faulty_unit_fraction", value=percent / 100.0, unit_bits=LINE_BITS,
                units_tested=None, iterations=None, data_pattern="unknown (not in the data file)",
                operating_point=MeasurementConditions(vdd_v=vdd),
                device=f"DDR3L SO-DIMM {row['dimm_name']} (vendor {row['vendor']})"))
    if not tests:
        raise EdenDataError(f"{path}: no data rows")
    return tests


def convert(src: Path) -> RawCharacterization:
    """One summary test per (DIMM, VDD) of ``dimm_faulty_cachelines.csv``."""
    tests = read_faulty_lines(src / CSV_NAME)
    provenance = {
        "source": CITATION, "file": f"voltron-ddr3l/{CSV_NAME}",
        "converter": _CONVERTER,
        "quantity": "fraction of 64-byte cache lines with >= 1 bit error, per DIMM and supply voltage "
                    "(error_cacheline_percent / 100); nominal VDD of DDR3L is 1.35 V",
        "identifies": "a lower bound on the BER (f/512) and a uniform-equivalent BER only",
        "not_recorded": "lines tested, iterations, organization, timings, temperature, data pattern",
        "observation": "every percentage is a multiple of 100/2^25 (2^25 lines, or two 2^24-line tests "
                       "averaged): an inference, not used",
    }
    return RawCharacterization(tuple(tests), None, provenance=provenance)


FAULTY_LINES = register(Importer(
    "voltron", "Voltron DDR3L (SIGMETRICS 2017): fraction of faulty 64-byte lines per DIMM and supply voltage",
    (CSV_NAME,), convert, shipped="voltron_ddr3l_faulty_lines.h5"))
