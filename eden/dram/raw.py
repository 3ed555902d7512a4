"""Raw DRAM characterization data: profiled bit-error maps in a versioned HDF5 layout.

A *raw characterization file* holds what a DRAM testing platform measured, before
any model is fitted to it (``eden errormodel fit`` turns it into an
:class:`~eden.errormodels.model.ErrorModel`). This module is the only code that reads
or writes these files; the layout is documented in ``docs/raw-format.md``::

    /                     attrs: format="eden.raw_characterization", format_version=1,
                                 eden_version, created_utc, provenance (JSON object)
    /organization         attrs: banks, rows, row_bytes, bus_width_bits[, subarray_rows]
    /tests/<name>         attrs: kind ("records" | "summary"), device, data_pattern,
                                 [ones_fraction], [iterations], operating point
                                 ([vdd_v], [trcd_ns], [trp_ns], [tras_ns], [twr_ns],
                                  [temperature_c], [refresh_interval_ms])
      records:  attr column_bits; datasets bank, row, column, count[, iteration]
                [, direction][, pattern]
      summary:  attrs quantity, unit_bits; datasets value[, units_tested]

Two kinds of test:

* :class:`RecordTest`: one error record per failing *column unit* of a row:
  ``column_bits`` consecutive bitlines (1: a single cell, 512: a 64-byte line).
  Bitline numbering follows :mod:`eden.dram.address`: bit ``k`` of byte ``b`` of a
  row is bitline ``8*b + k``, so column unit ``c`` holds bitlines
  ``c*column_bits .. (c+1)*column_bits - 1``. The whole declared organization is
  the tested region: every cell was tested in each of the ``iterations``.
* :class:`SummaryTest`: a region-level number only (total bit errors, or the
  fraction of units with at least one error), for sources that publish no
  per-cell data. It is kept as what it is, never expanded into fake records.

Loading validates everything and raises :class:`RawFileError`, whose message
names the file, the HDF5 path inside it, what was expected and what was found.
Writes are atomic and never replace an existing file unless asked to.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

import h5py
import numpy as np

from eden._version import __version__
from eden.core.io import write_with
from eden.dram.address import DramOrganization
from eden.core.hdf5 import as_str as _as_str
from eden.core.hdf5 import check_header
from eden.core.hdf5 import describe as _describe
from eden.core.hdf5 import describe_node as _describe_node
from eden.core.hdf5 import is_integer as _is_integer
from eden.errormodels.h5 import provenance_text as _provenance_json
from eden.errors import EdenConfigError, EdenDataError, EdenFileError, EdenFileNotFoundError, EdenTypeError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MeasurementConditions",
    "RawCharacterization",
    "RawFileError",
    "RecordTest",
    "SummaryTest",
    "load_raw",
    "save_raw",
]

FORMAT = "eden.raw_characterization"
"""Value of the root ``format`` attribute of every raw characterization file."""

FORMAT_VERSION = 1
"""Layout version this module writes; it reads versions 1..FORMAT_VERSION."""


SUMMARY_QUANTITIES = ("bit_errors", "faulty_unit_fraction")
"""``bit_errors``: total bit errors in the region, summed over iterations.
``faulty_unit_fraction``: fraction of units (``unit_bits`` bits each) with >= 1 error."""

DIRECTION_1TO0 = 1
"""``direction`` value of a stored 1 read as 0 (em3's ``p10``)."""
DIRECTION_0TO1 = 0
"""``direction`` value of a stored 0 read as 1 (em3's ``p01``)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_ORG_FIELDS = ("banks", "rows", "row_bytes", "bus_width_bits")


class UnknownTestError(EdenConfigError, KeyError):
    """No test of that name in a raw file (also a ``KeyError``, as a lookup by name)."""

    __str__ = Exception.__str__  # the message as written, not KeyError's repr of it


class RawFileError(EdenFileError):
    """An HDF5 file is not a valid eden raw characterization file (file, location, detail)."""

    kind = "eden raw characterization"


class _FieldError(ValueError):
    """A field of a test failed validation; ``field`` maps to an HDF5 member.

    ``expected`` and ``found`` are phrases; ``attribute`` says whether the field
    is stored as an HDF5 attribute (else a dataset) of the test group.
    """

    def __init__(self, field: str, expected: str, found: str, *, attribute: bool = False,
                 owner: str = "") -> None:
        self.field = field
        self.expected = expected
        self.found = found
        self.attribute = attribute
        self.detail = f"expected {expected}; found {found}"
        prefix = f"{owner}.{field}: " if owner else f"{field}: "
        super().__init__(prefix + self.detail)

    def owned(self, owner: str) -> _FieldError:
        return _FieldError(self.field, self.expected, self.found, attribute=self.attribute, owner=owner)


# ------------------------------------------------------------------ dataclasses
def _number(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def _optional_number(name: str, value, *, positive: bool) -> float | None:
    if value is None:
        return None
    need = "a finite number > 0" if positive else "a finite number"
    if not _number(value):
        raise _FieldError(name, f"{need} or None", repr(value), attribute=True)
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise _FieldError(name, need, repr(value), attribute=True)
    return value


@dataclasses.dataclass(frozen=True)
class MeasurementConditions:
    """Where a test ran: supply voltage, timings, temperature, refresh interval.

    ``None`` means "not recorded by the source"; nothing is guessed.

    Attributes:
        vdd_v: DRAM supply voltage (V).
        trcd_ns: ACT-to-READ/WRITE delay (ns).
        trp_ns: PRE-to-ACT delay (ns).
        tras_ns: ACT-to-PRE delay (ns).
        twr_ns: write recovery time (ns).
        temperature_c: DRAM temperature (degrees Celsius).
        refresh_interval_ms: time between refreshes of a row (ms).

    Example:
        >>> MeasurementConditions(trcd_ns=10.0, refresh_interval_ms=256.0).describe()
        'tRCD 10 ns, refresh 256 ms'
    """

    vdd_v: float | None = None
    trcd_ns: float | None = None
    trp_ns: float | None = None
    tras_ns: float | None = None
    twr_ns: float | None = None
    temperature_c: float | None = None
    refresh_interval_ms: float | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            try:
                value = _optional_number(f.name, getattr(self, f.name), positive=f.name != "temperature_c")
            except _FieldError as exc:
                raise exc.owned("MeasurementConditions") from None
            object.__setattr__(self, f.name, value)

    def to_dict(self) -> dict[str, float]:
        """The recorded fields only (unknown ones left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) is not None}

    def describe(self) -> str:
        """Short human-readable form, e.g. ``"VDD 1.2 V, tRCD 10 ns"``."""
        labels = (("vdd_v", "VDD", "V"), ("trcd_ns", "tRCD", "ns"), ("tras_ns", "tRAS", "ns"),
                  ("trp_ns", "tRP", "ns"), ("twr_ns", "tWR", "ns"), ("temperature_c", "T", "C"),
                  ("refresh_interval_ms", "refresh", "ms"))
        parts = [f"{label} {getattr(self, name):g} {unit}" for name, label, unit in labels
                 if getattr(self, name) is not None]
        return ", ".join(parts) if parts else "operating point not recorded"


def _check_name(name) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise EdenConfigError(f"test name must match {_NAME_RE.pattern} (letters, digits, '._+-'; it is an "
                         f"HDF5 group name), got {name!r}")
    return name


def _check_text(name: str, value) -> str:
    if not isinstance(value, str):
        raise _FieldError(name, "a string", repr(value), attribute=True)
    return value


def _check_int(name: str, value, *, minimum: int, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise _FieldError(name, f"an integer >= {minimum}", repr(value), attribute=True)
    return int(value)


def _check_fraction(name: str, value) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0.0 <= float(value) <= 1.0:
        raise _FieldError(name, "a number in [0, 1]", repr(value), attribute=True)
    return float(value)


def _as_index_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise _FieldError(name, "a 1-D integer array", f"shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise _FieldError(name, "an integer array", f"dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise _FieldError(name, "values that fit int64", f"{int(arr.max())}")
    out = arr.astype(np.int64, copy=True)
    out.setflags(write=False)
    return out


def _first_bad(mask: np.ndarray, values: np.ndarray) -> str:
    i = int(np.flatnonzero(mask)[0])
    return f"{int(values[i])} at index {i} ({int(mask.sum())} such records)"


@dataclasses.dataclass(frozen=True, eq=False)
class RecordTest:
    """Error records of one test: one row per failing (bank, row, column unit).

    The tested region is the file's whole :class:`~eden.dram.address.DramOrganization`;
    every cell of it was tested in each of the ``iterations`` with
    ``data_pattern``. Records are checked against the organization when they are
    put into a :class:`RawCharacterization`.

    Attributes:
        name: Test name (an HDF5 group name: letters, digits, ``._+-``).
        bank: int64[n], bank of each record, in ``[0, banks)``.
        row: int64[n], row (wordline) within the bank, in ``[0, rows)``.
        column: int64[n], column unit within the row, in
            ``[0, row_bits // column_bits)``; with ``column_bits == 1`` it is the
            bitline (``8*byte + bit``, as in :mod:`eden.dram.address`).
        count: int64[n], bit errors observed in the unit: with ``iteration``
            given, in that iteration (``1..column_bits``); without it, summed over
            all iterations (``1..column_bits*iterations``). For single cells this
            is how often the cell failed.
        column_bits: Bitlines per column unit (1 = per cell, 512 = 64-byte line);
            divides the row's bit count.
        iterations: Number of times the region was tested (>= 1).
        iteration: Optional int64[n] in ``[0, iterations)``: the iteration each
            record belongs to (records then are per iteration).
        direction: Optional int64[n] (only with ``column_bits == 1``): 1 = a stored
            1 read as 0, 0 = a stored 0 read as 1.
        pattern: Optional uint8[P, row_bytes]: the bytes written; row ``r`` of every
            bank held ``pattern[r % P]``. Then ``direction`` must agree with it.
        data_pattern: Free-text description of the data written (``"unknown"`` if
            the source does not say).
        ones_fraction: Fraction of stored ones (needed to fit em3); derived from
            ``pattern`` when that is given.
        operating_point: Voltage, timings, temperature, refresh interval.
        device: Free-text device label (e.g. ``"DIMM A-10"``).

    Example:
        >>> t = RecordTest("t1", bank=[0], row=[5], column=[3], count=[1])
        >>> t.n_records, t.total_errors
        (1, 1)
    """

    kind: ClassVar[str] = "records"

    name: str
    bank: Any
    row: Any
    column: Any
    count: Any
    column_bits: int = 1
    iterations: int = 1
    iteration: Any = None
    direction: Any = None
    pattern: Any = None
    data_pattern: str = "unknown"
    ones_fraction: float | None = None
    operating_point: MeasurementConditions = MeasurementConditions()
    device: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        try:
            self._validate()
        except _FieldError as exc:
            raise exc.owned(f"RecordTest {self.name!r}") from None

    def _validate(self) -> None:
        def set_(k: str, v: Any) -> None:
            object.__setattr__(self, k, v)

        set_("column_bits", _check_int("column_bits", self.column_bits, minimum=1))
        set_("iterations", _check_int("iterations", self.iterations, minimum=1))
        set_("data_pattern", _check_text("data_pattern", self.data_pattern))
        set_("device", _check_text("device", self.device))
        if not isinstance(self.operating_point, MeasurementConditions):
            raise _FieldError("operating_point", "an MeasurementConditions", repr(self.operating_point), attribute=True)
        arrays = {}
        for name in ("bank", "row", "column", "count"):
            arrays[name] = _as_index_array(name, getattr(self, name))
        n = arrays["bank"].size
        for name in ("iteration", "direction"):
            if getattr(self, name) is not None:
                arrays[name] = _as_index_array(name, getattr(self, name))
        for name, arr in arrays.items():
            if arr.size != n:
                raise _FieldError(name, f"one entry per record ({n}, like bank)", f"{arr.size} entries")
            set_(name, arr)
        for name in ("bank", "row", "column"):
            bad = arrays[name] < 0
            if bad.any():
                raise _FieldError(name, f"{name} >= 0", _first_bad(bad, arrays[name]))
        per_iteration = self.iteration is not None
        cap = self.column_bits * (1 if per_iteration else self.iterations)
        bad = (arrays["count"] < 1) | (arrays["count"] > cap)
        if bad.any():
            what = "per iteration" if per_iteration else f"summed over {self.iterations} iteration(s)"
            raise _FieldError("count", f"error counts in [1, {cap}] (column_bits={self.column_bits}, {what})",
                              _first_bad(bad, arrays["count"]))
        if per_iteration:
            bad = (self.iteration < 0) | (self.iteration >= self.iterations)
            if bad.any():
                raise _FieldError("iteration", f"iteration indices in [0, {self.iterations})",
                                  _first_bad(bad, self.iteration))
        if self.direction is not None:
            if self.column_bits != 1:
                raise _FieldError("direction", "no direction records unless column_bits == 1 (a direction "
                                  "belongs to one cell)", f"column_bits={self.column_bits}")
            bad = (self.direction != DIRECTION_0TO1) & (self.direction != DIRECTION_1TO0)
            if bad.any():
                raise _FieldError("direction", "1 (stored 1 read as 0) or 0 (stored 0 read as 1)",
                                  _first_bad(bad, self.direction))
        if self.pattern is not None:
            pat = np.asarray(self.pattern)
            if pat.ndim != 2 or pat.shape[0] < 1 or pat.dtype != np.uint8:
                raise _FieldError("pattern", "a uint8 array of shape (P, row_bytes), P >= 1",
                                  f"shape {pat.shape} and dtype {pat.dtype}")
            pat = pat.copy()
            pat.setflags(write=False)
            set_("pattern", pat)
            ones = float(np.unpackbits(pat).mean())
            if self.ones_fraction is not None and (not _number(self.ones_fraction) or not math.isclose(
                    float(self.ones_fraction), ones, rel_tol=0, abs_tol=1e-12)):
                raise _FieldError("ones_fraction", f"{ones!r} (the fraction of ones in pattern)",
                                  repr(self.ones_fraction), attribute=True)
            set_("ones_fraction", ones)
        set_("ones_fraction", _check_fraction("ones_fraction", self.ones_fraction))

    # ------------------------------------------------------------------ queries
    @property
    def n_records(self) -> int:
        return int(self.bank.size)

    @property
    def total_errors(self) -> int:
        """Bit errors in all records, summed over iterations."""
        return int(self.count.sum())

    def stored_bits(self, row: np.ndarray, bitline: np.ndarray) -> np.ndarray:
        """Stored bit of cells (row within bank, bitline) under ``pattern`` (int64 0/1).

        Raises:
            ValueError: The test has no ``pattern``.
        """
        if self.pattern is None:
            raise EdenDataError(f"test {self.name!r} has no pattern: stored bits are not known")
        row = np.asarray(row, np.int64)
        bitline = np.asarray(bitline, np.int64)
        byte = self.pattern[row % self.pattern.shape[0], bitline // 8]
        return ((byte >> (bitline % 8)) & 1).astype(np.int64)

    def check_against(self, org: DramOrganization) -> None:
        """Raise ``_FieldError`` unless every record lies inside ``org``, once."""
        if org.row_bits % self.column_bits:
            raise _FieldError("column_bits", f"a divisor of the row's {org.row_bits} bits (organization "
                              f"row_bytes={org.row_bytes})", str(self.column_bits), attribute=True)
        units = org.row_bits // self.column_bits
        for name, limit, what in (("bank", org.banks, "organization banks"),
                                  ("row", org.rows, "organization rows"),
                                  ("column", units, (f"column units per row: {org.row_bits} bits / "
                                   f"column_bits {self.column_bits}"))):
            values = getattr(self, name)
            bad = values >= limit
            if bad.any():
                raise _FieldError(name, f"values in [0, {limit}) ({what})",
                                  f"{_first_bad(bad, values)}: a record outside the declared organization")
        if self.pattern is not None and self.pattern.shape[1] != org.row_bytes:
            raise _FieldError("pattern", f"shape (P, {org.row_bytes}) (organization row_bytes)",
                              f"shape {self.pattern.shape}")
        key = (self.bank * org.rows + self.row) * units + self.column
        if self.iteration is not None:
            key = key * self.iterations + self.iteration
        if key.size:
            order = np.argsort(key, kind="stable")
            dup = np.flatnonzero(np.diff(key[order]) == 0)
            if dup.size:
                i = int(order[dup[0] + 1])
                per = ", iteration)" if self.iteration is not None else ")"
                raise _FieldError("column", f"each (bank, row, column{per} at most once",
                                  f"a repeated record at index {i} (bank {int(self.bank[i])}, row "
                                  f"{int(self.row[i])}, column {int(self.column[i])}; {dup.size} repeats)")
        if self.direction is not None and self.pattern is not None:
            stored = self.stored_bits(self.row, self.column)
            bad = stored != self.direction
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise _FieldError("direction", "directions equal to the stored pattern bit of each cell",
                                  f"direction {int(self.direction[i])} at index {i} where the pattern stores "
                                  f"{int(stored[i])} ({int(bad.sum())} such records)")


@dataclasses.dataclass(frozen=True)
class SummaryTest:
    """A region-level measurement without per-cell or per-line records.

    Attributes:
        name: Test name (an HDF5 group name).
        quantity: ``"bit_errors"`` (total bit errors in the region, summed over
            iterations; ``unit_bits`` must be 1) or ``"faulty_unit_fraction"``
            (fraction of units of ``unit_bits`` bits with at least one error).
        value: The measured number (a count, or a fraction in [0, 1]).
        unit_bits: Bits per unit (1 for ``bit_errors``; 512 for 64-byte lines).
        units_tested: Number of units in the tested region, None if the source
            does not say.
        iterations: Times the region was tested, None if not known.
        data_pattern, ones_fraction, operating_point, device: As in RecordTest.

    Example:
        >>> s = SummaryTest("v", quantity="faulty_unit_fraction", value=0.2, unit_bits=512)
        >>> s.value
        0.2
    """

    kind: ClassVar[str] = "summary"

    name: str
    quantity: str
    value: float
    unit_bits: int = 1
    units_tested: int | None = None
    iterations: int | None = None
    data_pattern: str = "unknown"
    ones_fraction: float | None = None
    operating_point: MeasurementConditions = MeasurementConditions()
    device: str = ""

    def __post_init__(self) -> None:
        _check_name(self.name)
        try:
            self._validate()
        except _FieldError as exc:
            raise exc.owned(f"SummaryTest {self.name!r}") from None

    def _validate(self) -> None:
        def set_(k: str, v: Any) -> None:
            object.__setattr__(self, k, v)

        if self.quantity not in SUMMARY_QUANTITIES:
            raise _FieldError("quantity", f"one of {', '.join(SUMMARY_QUANTITIES)}", repr(self.quantity),
                              attribute=True)
        set_("unit_bits", _check_int("unit_bits", self.unit_bits, minimum=1))
        set_("units_tested", _check_int("units_tested", self.units_tested, minimum=1, optional=True))
        set_("iterations", _check_int("iterations", self.iterations, minimum=1, optional=True))
        set_("data_pattern", _check_text("data_pattern", self.data_pattern))
        set_("device", _check_text("device", self.device))
        set_("ones_fraction", _check_fraction("ones_fraction", self.ones_fraction))
        if not isinstance(self.operating_point, MeasurementConditions):
            raise _FieldError("operating_point", "an MeasurementConditions", repr(self.operating_point), attribute=True)
        v = self.value
        if not _number(v) or not math.isfinite(float(v)):
            raise _FieldError("value", "a finite number", repr(v))
        v = float(v)
        if self.quantity == "bit_errors":
            if self.unit_bits != 1:
                raise _FieldError("unit_bits", "1 for quantity 'bit_errors'", str(self.unit_bits), attribute=True)
            if v < 0 or v != int(v):
                raise _FieldError("value", "a non-negative integer count of bit errors", repr(v))
            if self.units_tested is not None and self.iterations is not None \
                    and v > self.units_tested * self.iterations:
                raise _FieldError("value", f"at most units_tested * iterations = "
                                  f"{self.units_tested * self.iterations} bit errors", f"{v:.0f}")
        elif not 0.0 <= v <= 1.0:
            raise _FieldError("value", "a fraction in [0, 1]", repr(v))
        set_("value", v)


Test = RecordTest | SummaryTest


@dataclasses.dataclass(frozen=True, eq=False)
class RawCharacterization:
    """A set of tests on DRAM with one tested region (the organization).

    Attributes:
        tests: The tests, at least one, with unique names.
        organization: The tested region (banks, rows, row size, bus width,
            subarray rows). Required when there is a :class:`RecordTest`; may be
            None for files holding only summaries of unknown regions.
        subarray_rows_known: False when ``organization.subarray_rows`` is not from
            the source (then it is eden's default, an assumption that fits state).
        provenance: JSON-serialisable mapping: where the data came from.

    Example:
        >>> from eden.dram.address import DramOrganization
        >>> org = DramOrganization(banks=1, rows=8, row_bytes=64)
        >>> raw = RawCharacterization((RecordTest("t", [0], [1], [2], [1]),), org)
        >>> raw.names
        ('t',)
    """

    tests: tuple
    organization: DramOrganization | None = None
    subarray_rows_known: bool = True
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        tests = tuple(self.tests)
        if not tests:
            raise EdenConfigError("a RawCharacterization needs at least one test")
        seen = set()
        for t in tests:
            if not isinstance(t, (RecordTest, SummaryTest)):
                raise EdenTypeError(f"tests must be RecordTest or SummaryTest, got {type(t).__name__}")
            if t.name in seen:
                raise EdenConfigError(f"test names must be unique; {t.name!r} appears twice")
            seen.add(t.name)
        object.__setattr__(self, "tests", tests)
        if self.organization is not None and not isinstance(self.organization, DramOrganization):
            raise EdenTypeError(f"organization must be a DramOrganization or None, got {self.organization!r}")
        if not isinstance(self.subarray_rows_known, bool):
            raise EdenTypeError(f"subarray_rows_known must be a bool, got {self.subarray_rows_known!r}")
        _provenance_json(self.provenance)  # JSON-serialisable mapping, else TypeError
        object.__setattr__(self, "provenance", dict(self.provenance))
        for t in tests:
            if isinstance(t, RecordTest):
                if self.organization is None:
                    raise EdenConfigError(f"test {t.name!r} has error records, which need the tested region: "
                                     "pass organization=DramOrganization(...)")
                try:
                    t.check_against(self.organization)
                except _FieldError as exc:
                    raise exc.owned(f"RecordTest {t.name!r}") from None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tests)

    def test(self, name: str | None = None) -> Test:
        """The test called ``name``; with None, the only test.

        Raises:
            KeyError: No such test, or ``name`` is None and there are several;
                the message lists the names.
        """
        if name is None:
            if len(self.tests) == 1:
                return self.tests[0]
            raise UnknownTestError(f"the file holds {len(self.tests)} tests; choose one of: {', '.join(self.names)}")
        for t in self.tests:
            if t.name == name:
                return t
        raise UnknownTestError(f"no test named {name!r}; known: {', '.join(self.names)}")

    def save(self, path: os.PathLike | str, *, overwrite: bool = False) -> None:
        """Write to ``path`` (atomic; see :func:`save_raw`)."""
        save_raw(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: os.PathLike | str) -> RawCharacterization:
        """Read and validate ``path`` (see :func:`load_raw`)."""
        return load_raw(path)


# --------------------------------------------------------------------- writing
_OP_FIELDS = tuple(f.name for f in dataclasses.fields(MeasurementConditions))


def save_raw(raw: RawCharacterization, path: os.PathLike | str, *, overwrite: bool = False) -> None:
    """Write ``raw`` in the raw characterization HDF5 layout (docs/raw-format.md).

    Record arrays are stored in the smallest integer dtype that holds them, gzip
    compressed; the file goes to a temporary file in the target directory and is
    moved into place, so readers never see a partial file.

    Args:
        raw: The characterization data.
        path: Destination file (conventionally ``*.h5``).
        overwrite: Replace an existing file. Without it an existing file is left
            untouched and FileExistsError is raised.

    Raises:
        TypeError: ``raw`` is not a RawCharacterization.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    if not isinstance(raw, RawCharacterization):
        raise EdenTypeError(f"save_raw expects a RawCharacterization, got {type(raw).__name__}")
    provenance_json = _provenance_json(raw.provenance)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "x") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["eden_version"] = __version__
            f.attrs["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            f.attrs["provenance"] = provenance_json
            if raw.organization is not None:
                g = f.create_group("organization")
                for name in _ORG_FIELDS:
                    g.attrs[name] = np.int64(getattr(raw.organization, name))
                if raw.subarray_rows_known:
                    g.attrs["subarray_rows"] = np.int64(raw.organization.subarray_rows)
            tests = f.create_group("tests", track_order=True)  # loads keep the written order
            for t in raw.tests:
                _write_test(tests.create_group(t.name), t)

    write_with(path, write, overwrite=overwrite, what="raw characterization file")


def _small_int(arr: np.ndarray) -> np.ndarray:
    if arr.size == 0:
        return arr.astype(np.uint8)
    if int(arr.min()) >= 0:
        return arr.astype(np.min_scalar_type(int(arr.max())))
    return arr.astype(np.int64)


def _write_test(g: h5py.Group, t: Test) -> None:
    g.attrs["kind"] = t.kind
    g.attrs["device"] = t.device
    g.attrs["data_pattern"] = t.data_pattern
    if t.ones_fraction is not None:
        g.attrs["ones_fraction"] = np.float64(t.ones_fraction)
    if t.iterations is not None:
        g.attrs["iterations"] = np.int64(t.iterations)
    for name, value in t.operating_point.to_dict().items():
        g.attrs[name] = np.float64(value)
    if isinstance(t, SummaryTest):
        g.attrs["quantity"] = t.quantity
        g.attrs["unit_bits"] = np.int64(t.unit_bits)
        g.create_dataset("value", data=np.float64(t.value))
        if t.units_tested is not None:
            g.create_dataset("units_tested", data=np.int64(t.units_tested))
        return
    g.attrs["column_bits"] = np.int64(t.column_bits)
    for name in ("bank", "row", "column", "count", "iteration", "direction"):
        arr = getattr(t, name)
        if arr is None:
            continue
        data = _small_int(arr)
        opts = {"compression": "gzip", "compression_opts": 6, "shuffle": True} if data.size >= 1024 else {}
        g.create_dataset(name, data=data, **opts)
    if t.pattern is not None:
        g.create_dataset("pattern", data=t.pattern)


# --------------------------------------------------------------------- reading
def load_raw(path: os.PathLike | str) -> RawCharacterization:
    """Read and validate a raw characterization file written by :func:`save_raw`.

    Args:
        path: The HDF5 file.

    Returns:
        The stored RawCharacterization.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RawFileError: The file is not a readable HDF5 file or not a valid raw
            characterization file (wrong format or version, missing or malformed
            member, record outside the declared organization, negative or
            impossible count, ...); the message names the file, the HDF5 path
            inside it, what was expected and what was found.
    """
    p = Path(os.fspath(path))
    if not p.exists():
        raise EdenFileNotFoundError(errno.ENOENT, "raw characterization file not found", str(p))
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise RawFileError(path, "/", f"expected an HDF5 file; found a file h5py cannot open "
                           f"(not HDF5, or truncated): {exc}") from None
    with f:
        _check_header(f, path)
        provenance = _read_provenance(f, path)
        org, sub_known = _read_organization(f, path)
        tests = _read_tests(f, path, org)
    try:
        return RawCharacterization(tuple(tests), org, sub_known, provenance)
    except (TypeError, ValueError) as exc:  # cross-test checks not covered above
        raise RawFileError(path, "/tests", f"expected a valid set of tests; {exc}") from None


def _loc(h5path: str, attr: str | None = None) -> str:
    return f"{h5path} (attribute {attr!r})" if attr else h5path


def _check_header(f: h5py.File, path) -> None:
    check_header(f, path, format=FORMAT, version=FORMAT_VERSION, error=RawFileError)


def _read_provenance(f: h5py.File, path) -> dict:
    if "provenance" not in f.attrs:
        return {}
    raw = f.attrs["provenance"]
    text = _as_str(raw)
    try:
        value = json.loads(text) if text is not None else None
    except json.JSONDecodeError as exc:
        raise RawFileError(path, _loc("/", "provenance"), f"expected a JSON object; found invalid JSON ({exc})") \
            from None
    if not isinstance(value, dict):
        raise RawFileError(path, _loc("/", "provenance"), f"expected a JSON object; found {_describe(raw)}")
    return value


@overload
def _int_attr(node, name: str, loc: str, path, *, minimum: int, required: Literal[True] = ...) -> int: ...
@overload
def _int_attr(node, name: str, loc: str, path, *, minimum: int, required: bool) -> int | None: ...
def _int_attr(node, name: str, loc: str, path, *, minimum: int, required: bool = True) -> int | None:
    if name not in node.attrs:
        if required:
            raise RawFileError(path, _loc(loc, name), f"expected an integer >= {minimum}; found no such attribute")
        return None
    value = node.attrs[name]
    if not _is_integer(value) or int(value) < minimum:
        raise RawFileError(path, _loc(loc, name), f"expected an integer >= {minimum}; found {_describe(value)}")
    return int(value)


def _read_organization(f: h5py.File, path) -> tuple[DramOrganization | None, bool]:
    loc = "/organization"
    if "organization" not in f:
        return None, True
    g = f["organization"]
    if not isinstance(g, h5py.Group):
        raise RawFileError(path, loc, f"expected a group; found {_describe_node(g)}")
    values = {name: _int_attr(g, name, loc, path, minimum=1) for name in _ORG_FIELDS}
    sub = _int_attr(g, "subarray_rows", loc, path, minimum=1, required=False)
    if sub is not None:
        values["subarray_rows"] = sub
    try:
        return DramOrganization(**values), sub is not None
    except ValueError as exc:
        raise RawFileError(path, loc, f"expected a valid DRAM organization; {exc}") from None


def _read_tests(f: h5py.File, path, org) -> list:
    loc = "/tests"
    group = f.get("tests")
    if group is None:
        raise RawFileError(path, loc, "expected a group of tests; found nothing")
    if not isinstance(group, h5py.Group):
        raise RawFileError(path, loc, f"expected a group of tests; found {_describe_node(group)}")
    if not len(group):
        raise RawFileError(path, loc, "expected at least one test; found none")
    return [_read_test(group[name], f"{loc}/{name}", name, path, org) for name in group]


def _str_attr(node, name: str, loc: str, path, *, choices=None, default=None) -> str:
    if name not in node.attrs:
        if default is not None:
            return default
        want = f"one of {', '.join(map(repr, choices))}" if choices else "a string"
        raise RawFileError(path, _loc(loc, name), f"expected {want}; found no such attribute")
    value = _as_str(node.attrs[name])
    if value is None or (choices and value not in choices):
        want = f"one of {', '.join(map(repr, choices))}" if choices else "a string"
        raise RawFileError(path, _loc(loc, name), f"expected {want}; found {_describe(node.attrs[name])}")
    return value


def _float_attr(node, name: str, loc: str, path) -> float | None:
    if name not in node.attrs:
        return None
    value = node.attrs[name]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RawFileError(path, _loc(loc, name), f"expected a float64 number; found {_describe(value)}")
    return float(value)


def _read_array(node, name: str, loc: str, path, *, required: bool) -> np.ndarray | None:
    ploc = f"{loc}/{name}"
    if name not in node:
        if required:
            raise RawFileError(path, ploc, "expected a 1-D integer dataset; found nothing")
        return None
    ds = node[name]
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iu":
        raise RawFileError(path, ploc, f"expected a 1-D integer dataset; found {_describe_node(ds)}")
    try:
        return ds[()]
    except (OSError, ValueError) as exc:
        raise RawFileError(path, ploc, f"expected readable data; found an unreadable dataset "
                           f"(truncated or corrupt file?): {exc}") from None


def _read_scalar(node, name: str, loc: str, path, *, required: bool, integer: bool = False):
    ploc = f"{loc}/{name}"
    if name not in node:
        if required:
            raise RawFileError(path, ploc, "expected a scalar number dataset; found nothing")
        return None
    ds = node[name]
    kinds = "iu" if integer else "fiu"
    if not isinstance(ds, h5py.Dataset) or ds.shape != () or ds.dtype.kind not in kinds:
        want = "a scalar integer dataset" if integer else "a scalar number dataset (float64)"
        raise RawFileError(path, ploc, f"expected {want}; found {_describe_node(ds)}")
    try:
        value = ds[()]
    except (OSError, ValueError) as exc:
        raise RawFileError(path, ploc, f"expected readable data; found an unreadable dataset: {exc}") from None
    return int(value) if integer else float(value)


def _read_test(node, loc: str, name: str, path, org) -> Test:
    if not isinstance(node, h5py.Group):
        raise RawFileError(path, loc, f"expected a test group; found {_describe_node(node)}")
    if not _NAME_RE.match(name):
        raise RawFileError(path, loc, f"expected a test name matching {_NAME_RE.pattern}; found {name!r}")
    kind = _str_attr(node, "kind", loc, path, choices=("records", "summary"))
    common: dict[str, Any] = {
        "data_pattern": _str_attr(node, "data_pattern", loc, path, default="unknown"),
        "device": _str_attr(node, "device", loc, path, default=""),
        "ones_fraction": _float_attr(node, "ones_fraction", loc, path),
    }
    try:
        common["operating_point"] = MeasurementConditions(**{k: _float_attr(node, k, loc, path) for k in _OP_FIELDS})
    except _FieldError as exc:
        raise RawFileError(path, _loc(loc, exc.field), exc.detail) from None
    if kind == "summary":
        allowed = {"value", "units_tested"}
        kwargs = dict(common,
                      quantity=_str_attr(node, "quantity", loc, path, choices=SUMMARY_QUANTITIES),
                      unit_bits=_int_attr(node, "unit_bits", loc, path, minimum=1),
                      iterations=_int_attr(node, "iterations", loc, path, minimum=1, required=False),
                      value=_read_scalar(node, "value", loc, path, required=True),
                      units_tested=_read_scalar(node, "units_tested", loc, path, required=False, integer=True))
        cls: type[SummaryTest] | type[RecordTest] = SummaryTest
    else:
        if org is None:
            raise RawFileError(path, "/organization", f"expected the tested region (a group) because test "
                               f"{loc} holds error records; found nothing")
        allowed = {"bank", "row", "column", "count", "iteration", "direction", "pattern"}
        kwargs = dict(common,
                      column_bits=_int_attr(node, "column_bits", loc, path, minimum=1),
                      iterations=_int_attr(node, "iterations", loc, path, minimum=1))
        for field in ("bank", "row", "column", "count"):
            kwargs[field] = _read_array(node, field, loc, path, required=True)
        for field in ("iteration", "direction"):
            kwargs[field] = _read_array(node, field, loc, path, required=False)
        if "pattern" in node:
            ds = node["pattern"]
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.dtype != np.uint8:
                raise RawFileError(path, f"{loc}/pattern", "expected a 2-D uint8 dataset (P, row_bytes); "
                                   f"found {_describe_node(ds)}")
            kwargs["pattern"] = ds[()]
        cls = RecordTest
    for member in node:
        if member not in allowed:
            raise RawFileError(path, f"{loc}/{member}", f"expected only the {kind} members "
                               f"{', '.join(sorted(allowed))}; found unexpected member {member!r}")
    try:
        test = cls(name, **kwargs)
        if isinstance(test, RecordTest):
            test.check_against(org)
    except _FieldError as exc:
        raise RawFileError(path, _loc(loc, exc.field) if exc.attribute else f"{loc}/{exc.field}",
                           exc.detail) from None
    except ValueError as exc:
        raise RawFileError(path, loc, f"expected a valid {kind} test; {exc}") from None
    return test
