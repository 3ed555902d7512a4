"""Raw characterization files (eden/dram/raw.py, docs/raw-format.md): round trip and validation."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from eden.dram.address import DramOrganization
from eden.dram.raw import (FORMAT, MeasurementConditions, RawCharacterization, RawFileError, RecordTest, SummaryTest,
                           load_raw)

ORG = DramOrganization(banks=2, rows=16, row_bytes=64, bus_width_bits=64, subarray_rows=8)
PATTERN = np.array([[0xAA] * 64, [0x0F] * 64], np.uint8)


def _bit_test(name="cells", **kw):
    rows = np.array([0, 1, 3, 15])
    bitlines = np.array([1, 4, 511, 0])
    stored = PATTERN[rows % 2, bitlines // 8] >> (bitlines % 8) & 1
    args = {"bank": [0, 1, 1, 0], "row": rows, "column": bitlines, "count": [1, 2, 1, 2], "iterations": 2,
                "direction": stored, "pattern": PATTERN, "data_pattern": "0xAA / 0x0F rows",
                "operating_point": MeasurementConditions(vdd_v=1.2, trcd_ns=10.0, temperature_c=45.0,
                                               refresh_interval_ms=64.0), "device": "chip 7"}
    args.update(kw)
    return RecordTest(name, **args)


def _line_test(name="lines", **kw):
    args = {"bank": [0, 0, 1], "row": [2, 2, 9], "column": [0, 0, 7], "count": [3, 64, 1], "column_bits": 64,
                "iterations": 2, "iteration": [0, 1, 1]}
    args.update(kw)
    return RecordTest(name, **args)


def _summary(name="sum", **kw):
    args = {"quantity": "bit_errors", "value": 12, "units_tested": ORG.capacity_bytes * 8, "iterations": 2}
    args.update(kw)
    return SummaryTest(name, **args)


@pytest.fixture()
def raw_file(tmp_path):
    raw = RawCharacterization((_bit_test(), _line_test(), _summary()), ORG, provenance={"lab": "unit test"})
    path = tmp_path / "raw.h5"
    raw.save(path)
    return path


# ------------------------------------------------------------------ round trip
def test_round_trip_keeps_everything(raw_file):
    raw = load_raw(raw_file)
    assert raw.names == ("cells", "lines", "sum")  # written order
    assert raw.organization == ORG and raw.subarray_rows_known
    assert raw.provenance == {"lab": "unit test"}
    cells, lines, summ = raw.tests
    ref = _bit_test()
    for field in ("bank", "row", "column", "count", "direction"):
        assert np.array_equal(getattr(cells, field), getattr(ref, field)), field
        assert getattr(cells, field).dtype == np.int64
    assert np.array_equal(cells.pattern, PATTERN)
    assert cells.ones_fraction == pytest.approx(0.5)  # derived from the pattern
    assert cells.operating_point == ref.operating_point and cells.device == "chip 7"
    assert cells.iterations == 2 and cells.iteration is None
    assert np.array_equal(lines.iteration, [0, 1, 1]) and lines.column_bits == 64
    assert summ == _summary()
    with h5py.File(raw_file, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["format_version"] == 1
        assert json.loads(f.attrs["provenance"]) == {"lab": "unit test"}
        assert f["tests/cells"].attrs["kind"] == "records"
        assert f["tests/cells/count"].dtype.kind == "u"  # smallest integer dtype
        assert f["tests/sum/value"].shape == ()
        assert "tras_ns" not in f["tests/cells"].attrs  # unknown -> absent, not NaN


def test_unknown_subarray_size_is_not_written(tmp_path):
    path = tmp_path / "r.h5"
    RawCharacterization((_line_test(),), ORG, subarray_rows_known=False).save(path)
    with h5py.File(path, "r") as f:
        assert "subarray_rows" not in f["organization"].attrs
    raw = load_raw(path)
    assert not raw.subarray_rows_known and raw.organization.subarray_rows == DramOrganization().subarray_rows


def test_summary_only_file_needs_no_organization(tmp_path):
    path = tmp_path / "v.h5"
    s = SummaryTest("A1_vdd1.100V", quantity="faulty_unit_fraction", value=0.2, unit_bits=512,
                    operating_point=MeasurementConditions(vdd_v=1.1))
    RawCharacterization((s,), None).save(path)
    raw = load_raw(path)
    assert raw.organization is None and raw.test() == s


def test_no_silent_overwrite(raw_file):
    before = raw_file.read_bytes()
    with pytest.raises(FileExistsError):
        RawCharacterization((_summary(),), None).save(raw_file)
    assert raw_file.read_bytes() == before
    assert sorted(p.name for p in raw_file.parent.iterdir()) == ["raw.h5"]  # no temporary left
    RawCharacterization((_summary(),), None).save(raw_file, overwrite=True)
    assert load_raw(raw_file).names == ("sum",)


def test_test_lookup_lists_names(raw_file):
    raw = load_raw(raw_file)
    with pytest.raises(KeyError, match="choose one of: cells, lines, sum"):
        raw.test()
    with pytest.raises(KeyError, match="no test named 'x'; known: cells, lines, sum"):
        raw.test("x")


# ------------------------------------------------------- in-memory validation
@pytest.mark.parametrize("kw, needle", [
    ({"count": [1, -3, 1, 1]}, "RecordTest 'cells'.count: expected error counts in [1, 2]"),
    ({"count": [1, 3, 1, 1]}, "found 3 at index 1"),
    ({"bank": [0, -1, 0, 0]}, "RecordTest 'cells'.bank: expected bank >= 0"),
    ({"row": [0, 1]}, "RecordTest 'cells'.row: expected one entry per record (4, like bank)"),
    ({"column": [0.5, 1, 2, 3]}, "expected an integer array; found dtype float64"),
    ({"direction": [0, 1, 2, 0], "pattern": None}, "RecordTest 'cells'.direction: expected 1 (stored 1 read as 0)"),
    ({"iterations": 0}, "iterations: expected an integer >= 1; found 0"),
    ({"ones_fraction": 0.3}, "ones_fraction: expected 0.5 (the fraction of ones in pattern); found 0.3"),
    ({"column_bits": 8}, "direction: expected no direction records unless column_bits == 1"),
])
def test_record_test_rejects_bad_fields(kw, needle):
    with pytest.raises(ValueError) as exc:
        _bit_test(**kw)
    assert needle in str(exc.value)


@pytest.mark.parametrize("test, needle", [
    (_line_test(row=[2, 2, 16]), ("RecordTest 'lines'.row: expected values in [0, 16) (organization rows); "
                                 "found 16 at index 2")),
    (_line_test(bank=[0, 0, 2]), "bank: expected values in [0, 2)"),
    (_line_test(column=[0, 0, 8]), ("column: expected values in [0, 8) (column units per row: 512 bits / "
                                   "column_bits 64)")),
    (_line_test(column_bits=3, count=[1, 3, 1]), "column_bits: expected a divisor of the row's 512 bits"),
    (_line_test(iteration=[0, 0, 1]), "column: expected each (bank, row, column, iteration) at most once"),
    (_bit_test(direction=[0, 1, 1, 0]), "direction: expected directions equal to the stored pattern bit"),
])
def test_records_must_lie_in_the_organization(test, needle):
    with pytest.raises(ValueError) as exc:
        RawCharacterization((test,), ORG)
    assert needle in str(exc.value)


def test_records_need_an_organization_and_unique_names():
    with pytest.raises(ValueError, match="need the tested region"):
        RawCharacterization((_line_test(),), None)
    with pytest.raises(ValueError, match="'sum' appears twice"):
        RawCharacterization((_summary(), _summary()), None)
    with pytest.raises(ValueError, match="test name must match"):
        _summary(name="a/b")


@pytest.mark.parametrize("kw, needle", [
    ({"value": -1}, "value: expected a non-negative integer count"),
    ({"value": 1.5}, "value: expected a non-negative integer count"),
    ({"value": 10**12}, "value: expected at most units_tested * iterations"),
    ({"quantity": "faulty_unit_fraction", "value": 1.5, "unit_bits": 512}, "value: expected a fraction in [0, 1]"),
    ({"quantity": "errors"}, "quantity: expected one of bit_errors, faulty_unit_fraction"),
    ({"unit_bits": 512}, "unit_bits: expected 1 for quantity 'bit_errors'"),
    ({"operating_point": MeasurementConditions()}, None),
])
def test_summary_validation(kw, needle):
    if needle is None:
        _summary(**kw)
        return
    with pytest.raises(ValueError) as exc:
        _summary(**kw)
    assert needle in str(exc.value)


@pytest.mark.parametrize("kw, needle", [
    ({"trcd_ns": -1.0}, "MeasurementConditions.trcd_ns: expected a finite number > 0; found -1.0"),
    ({"vdd_v": float("nan")}, "MeasurementConditions.vdd_v"),
    ({"temperature_c": "hot"}, "MeasurementConditions.temperature_c: expected a finite number or None"),
])
def test_operating_point_validation(kw, needle):
    with pytest.raises(ValueError) as exc:
        MeasurementConditions(**kw)
    assert needle in str(exc.value)


def test_operating_point_describe():
    op = MeasurementConditions(vdd_v=1.2, trcd_ns=7.5, refresh_interval_ms=64)
    assert op.describe() == "VDD 1.2 V, tRCD 7.5 ns, refresh 64 ms"
    assert op.to_dict() == {"vdd_v": 1.2, "trcd_ns": 7.5, "refresh_interval_ms": 64.0}


# ------------------------------------------------------------ load validation
def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _replace(f, h5path, data):
    del f[h5path]
    f[h5path] = data


@pytest.mark.parametrize("edit, location, needle", [
    (lambda f: f.attrs.__setitem__("format", "eden.error_model"), "/ (attribute 'format')",
     "expected 'eden.raw_characterization'; found 'eden.error_model'"),
    (lambda f: f.attrs.__delitem__("format"), "/ (attribute 'format')", "found no such attribute"),
    (lambda f: f.attrs.__setitem__("format_version", np.int64(2)), "/ (attribute 'format_version')",
     "found 2, written by a newer eden: upgrade eden"),
    (lambda f: f.attrs.__setitem__("format_version", np.int64(0)), "/ (attribute 'format_version')",
     "unsupported version 0"),
    (lambda f: f.attrs.__setitem__("format_version", 1.0), "/ (attribute 'format_version')",
     "expected an integer format version 1"),
    (lambda f: f.attrs.__setitem__("provenance", "[1]"), "/ (attribute 'provenance')", "expected a JSON object"),
    (lambda f: f.__delitem__("tests"), "/tests", "expected a group of tests; found nothing"),
    (lambda f: f.__delitem__("organization"), "/organization", "expected the tested region"),
    (lambda f: f["organization"].attrs.__setitem__("banks", np.int64(0)), "/organization (attribute 'banks')",
     "expected an integer >= 1; found 0"),
    (lambda f: _replace(f, "tests/cells/row", np.array([0, 1, 3, 16])), "/tests/cells/row",
     ("expected values in [0, 16) (organization rows); found 16 at index 3 (1 such records): a record "
     "outside the declared organization")),
    (lambda f: _replace(f, "tests/lines/bank", np.array([0, 0, 5])), "/tests/lines/bank",
     "expected values in [0, 2) (organization banks); found 5"),
    (lambda f: _replace(f, "tests/cells/count", np.array([1, -3, 1, 1])), "/tests/cells/count",
     "expected error counts in [1, 2] (column_bits=1, summed over 2 iteration(s)); found -3 at index 1"),
    (lambda f: _replace(f, "tests/lines/count", np.array([3, 513, 1])), "/tests/lines/count",
     "expected error counts in [1, 64] (column_bits=64, per iteration); found 513"),
    (lambda f: _replace(f, "tests/cells/count", np.array([1.0, 1, 1, 1])), "/tests/cells/count",
     "expected a 1-D integer dataset; found a dataset of shape (4,) and dtype float64"),
    (lambda f: _replace(f, "tests/cells/count", np.array([1, 1])), "/tests/cells/count",
     "expected one entry per record (4, like bank); found 2 entries"),
    (lambda f: f.__delitem__("tests/cells/column"), "/tests/cells/column", "found nothing"),
    (lambda f: _replace(f, "tests/lines/iteration", np.array([0, 1, 2])), "/tests/lines/iteration",
     "expected iteration indices in [0, 2); found 2"),
    (lambda f: _replace(f, "tests/cells/direction", np.array([1, 1, 1, 1])), "/tests/cells/direction",
     "expected directions equal to the stored pattern bit"),
    (lambda f: f["tests/cells"].attrs.__delitem__("column_bits"), "/tests/cells (attribute 'column_bits')",
     "found no such attribute"),
    (lambda f: f["tests/cells"].attrs.__setitem__("kind", "cells"), "/tests/cells (attribute 'kind')",
     "expected one of 'records', 'summary'"),
    (lambda f: f["tests/cells"].attrs.__setitem__("trcd_ns", -2.0), "/tests/cells (attribute 'trcd_ns')",
     "expected a finite number > 0; found -2.0"),
    (lambda f: f["tests/cells"].attrs.__setitem__("ones_fraction", 0.25), "/tests/cells (attribute 'ones_fraction')",
     "expected 0.5 (the fraction of ones in pattern)"),
    (lambda f: f["tests/cells"].create_dataset("extra", data=1), "/tests/cells/extra", "unexpected member 'extra'"),
    (lambda f: _replace(f, "tests/sum/value", np.float64(-4)), "/tests/sum/value",
     "expected a non-negative integer count of bit errors; found -4.0"),
    (lambda f: f["tests/sum"].attrs.__setitem__("quantity", "ber"), "/tests/sum (attribute 'quantity')",
     "expected one of 'bit_errors', 'faulty_unit_fraction'; found 'ber'"),
])
def test_load_errors_name_file_and_hdf5_path(raw_file, edit, location, needle):
    _edit(raw_file, edit)
    with pytest.raises(RawFileError) as exc:
        load_raw(raw_file)
    msg = str(exc.value)
    assert msg.startswith(f"invalid eden raw characterization file {str(raw_file)!r} at {location}: "), msg
    assert needle in msg, msg
    assert exc.value.location == location and exc.value.file == str(raw_file)


def test_truncated_file(raw_file):
    data = raw_file.read_bytes()
    raw_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(RawFileError) as exc:
        load_raw(raw_file)
    assert f"{str(raw_file)!r} at /: expected an HDF5 file" in str(exc.value)


def test_not_hdf5_and_missing(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("bank row line count\n0 1 2 3\n")
    with pytest.raises(RawFileError, match="not HDF5, or truncated"):
        load_raw(p)
    with pytest.raises(FileNotFoundError):
        load_raw(tmp_path / "missing.h5")
