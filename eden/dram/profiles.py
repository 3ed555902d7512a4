"""DRAM device profiles: organization, timings, currents and operating points.

A profile describes one DRAM device (a rank of identical chips): its
organization, its nominal timings (ns) and IDD/IPP currents and supply voltages
under DRAMPower memspec names with units in the field names, and its
**operating points**: (``vdd_v``, ``trcd_ns``) pairs, each with the error model
eden injects there and that model's expected BER. Every profile has an
operating point named ``nominal`` (the datasheet VDD and tRCD) with BER 0.

Profiles are JSON files, read and checked only by this module. eden ships named
presets in ``dram_profiles/`` (:func:`list_presets`); a user file may
``extend`` a preset and override some fields; :func:`load_profile` also takes
checked ``overrides``. Either way the result is resolved once into a complete,
validated :class:`DramProfile`. Layout (format version 1)::

    {
      "format": "eden.dram_profile", "format_version": 1,
      "name": "my-device", "description": "...",
      "extends": "ddr4-2400-8gb-x8",          # optional: a preset name or a .json path
      "organization": {"banks": 16, "rows": 65536, "row_bytes": 8192,
                       "bus_width_bits": 64, "subarray_rows": 512, "device_width_bits": 8},
      "power": {"standard": "DDR4", "vdd_v": 1.2, "idd0_ma": 48, ...},
      "timing": {"tck_ns": 0.833, "trcd_ns": 13.32, ...},
      "operating_points": [
        {"name": "nominal", "vdd_v": 1.2, "trcd_ns": 13.32, "ber": 0.0,
         "error_model": null, "source": "jedec"},
        {"name": "vdd-1.100", "vdd_v": 1.1, "trcd_ns": 13.32, "ber": 1.2e-5,
         "error_model": "some_model.h5", "source": "my_measurement",
         "measured": {"figure": "...", "ber": 1.2e-5, "estimator": "...", "data": "..."}}
      ],
      "sources": {"jedec": {"kind": "standard", "citation": "JESD79-4 ..."}, ...},
      "cite": {"power.idd0_ma": "jedec: how the number was read", ...},
      "notes": ["free text"]
    }

Rules (checked on load; errors name the file, the field, what was expected and
what was found, with a "did you mean" for misspelled keys):

* Unknown keys anywhere are rejected; every field of ``organization``,
  ``power`` and ``timing`` is required unless listed as optional
  (``ibeta_vdd_ma``, ``ibeta_vpp_ma``, ``fact_rho``); DDR4 needs ``vpp_v`` and
  every ``ipp*_ma``, DDR3 must not have them.
* Every number is cited: ``cite`` holds one entry per field,
  ``"<source id>"`` or ``"<source id>: <note>"``, and every operating point
  names its ``source``. Sources of kind ``assumption`` mark assumptions.
* ``error_model`` of an operating point is ``null`` (BER 0), an error-model
  spec (``"em0:p=1e-5"``), a bare ``.h5`` file name (looked up in eden's
  ``error_models/``) or a ``.h5`` path with a ``/`` (relative to the profile
  file). ``ber`` must equal the model's ``expected_ber()``; this is checked when
  the model is loaded (:meth:`DramProfile.error_model`).

Operating-point specs (:meth:`DramProfile.operating_point`): an operating point
name (``"nominal"``, ``"vdd-1.100"``) or ``key=value`` pairs ``vdd=1.1``,
``trcd=10``, ``vdd=1.1,trcd=10`` (units ``V``/``ns`` may be appended); an
omitted key means its nominal value. Values match within 0.5 mV and 5 ps.

Example:
    >>> p = load_profile("ddr4-2400-8gb-x8")                # doctest: +SKIP
    >>> op = p.operating_point("vdd=1.022")                  # doctest: +SKIP
    >>> em = p.error_model(op)                               # doctest: +SKIP
    >>> em.expected_ber() == op.ber                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from eden.core.validate import Mode, check_int, check_number, did_you_mean
from eden.dram import standards
from eden.dram.address import DramOrganization
from eden.dram.standards.base import Field
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError, EdenError, EdenFileError, EdenTypeError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "SOURCE_KINDS", "SourceKind", "NOMINAL",
    "ProfileError", "UnknownProfileError", "FieldError",
    "Source", "Measurement", "OperatingPoint", "Organization", "PowerSpec", "TimingSpec",
    "DramProfile", "list_presets", "load_profile", "parse_op_spec", "preset_path",
]

FORMAT = "eden.dram_profile"
"""Value of the ``format`` key of every profile file."""

FORMAT_VERSION = 1
"""Layout version this module writes; it reads versions 1..FORMAT_VERSION."""



class SourceKind(Mode):
    """What a profile source is; ``assumption`` marks numbers that rest on an assumption."""

    DATASHEET = "datasheet"
    MEMSPEC = "memspec"
    STANDARD = "standard"
    DATASET = "dataset"
    PAPER = "paper"
    DERIVATION = "derivation"
    ASSUMPTION = "assumption"


SOURCE_KINDS = SourceKind.values()
NOMINAL = "nominal"
"""Name of the operating point at the datasheet VDD and tRCD (BER 0)."""

VDD_TOLERANCE_V = 5e-4
TRCD_TOLERANCE_NS = 5e-3
BER_RTOL = 1e-9
BER_ATOL = 1e-15
"""Tolerance between an operating point's ``ber`` and its model's ``expected_ber()``: relative, plus
an absolute slack for the rounding of ``1 - (1 - p)`` inside ``expected_ber`` (a few ulps of 1.0)."""

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SECTIONS = ("organization", "power", "timing")
_TOP_KEYS = ("format", "format_version", "name", "description", "extends", *_SECTIONS,
             "operating_points", "sources", "cite", "notes")


# --------------------------------------------------------------------------- errors
class FieldError(ValueError):
    """A bad value in a profile record; ``field`` is its dotted path (``power.idd0_ma``)."""

    def __init__(self, field: str, detail: str) -> None:
        self.field = field
        self.detail = detail
        super().__init__(f"{field}: {detail}")

    def __reduce__(self):
        return (type(self), (self.field, self.detail))


class ProfileError(EdenFileError):
    """A DRAM profile file (or a request against it) is invalid.

    Attributes:
        file: the profile file at fault (``"<in memory>"`` for profiles built in code).
        field: dotted path of the offending field (``"power.idd0_ma"``,
            ``"operating_points['vdd-1.100'].ber"``, ``"/"`` for the whole file);
            also ``location``, as for every :class:`~eden.errors.EdenFileError`.
        detail: what was expected and what was found.
    """

    kind = "DRAM profile"

    def __init__(self, file: os.PathLike | str | None, field: str, detail: str) -> None:
        super().__init__("<in memory>" if file is None else file, field, detail)
        self.field = field
        # the profile's own wording: "DRAM profile <file>: <field>: <detail>"
        self.args = (f"DRAM profile {self.file}: {field}: {detail}",)


class UnknownProfileError(EdenConfigError):
    """A profile name that is neither a preset nor an existing file."""


# --------------------------------------------------------------------------- value checks
def _number(field: str, value: Any, *, integer: bool = False, lo: float | None = 0.0,
            lo_open: bool = True, hi: float | None = None) -> float | int:
    """A profile number checked by ``eden.core.validate`` (JSON's ``16.0`` counts as the integer 16).

    Raises:
        FieldError: at ``field``, with what was expected and what was found.
    """
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        if integer:
            return check_int(field, value, lo=None if lo is None else math.floor(lo) + (1 if lo_open else 0),
                             hi=None if hi is None else math.floor(hi))
        return check_number(field, value, lo=-math.inf if lo is None else lo, lo_open=lo_open,
                            hi=math.inf if hi is None else hi)
    except EdenError as exc:
        raise FieldError(field, str(exc).removeprefix(f"{field} ")) from None


def _text(field: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise FieldError(field, f"expected a {'' if allow_empty else 'non-empty '}string, found {value!r}")
    return value


def _check_keys(prefix: str, mapping: Any, allowed, required=()) -> Mapping:
    """Reject unknown keys (with a suggestion) and report the first missing required one.

    ``prefix`` is the dotted path of the mapping (``"power"``), ``""`` at top level.
    """
    def where(key):
        return f"{prefix}.{key}" if prefix else str(key)

    if not isinstance(mapping, Mapping):
        raise FieldError(prefix or "/", f"expected an object (JSON mapping), found {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            raise FieldError(where(key), f"unknown key; expected one of {', '.join(allowed)}"
                             f"{did_you_mean(key, allowed)}")
    for key in required:
        if key not in mapping:
            raise FieldError(where(key), "missing required key")
    return mapping


# --------------------------------------------------------------------------- section records
def _spec(kind: str, unit: str, doc: str):
    """A required dataclass field carrying its type (``"float"``/``"int"``), unit and meaning."""
    return dataclasses.field(metadata={"kind": kind, "unit": unit, "doc": doc})


_S = TypeVar("_S", bound="_Section")


@dataclasses.dataclass(frozen=True)
class _Section:
    """A flat profile section: every field required, typed, unit-suffixed and > 0."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = _number(f"{self.section}.{f.name}", getattr(self, f.name), integer=f.metadata["kind"] == "int")
            object.__setattr__(self, f.name, value)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def field_info(cls) -> dict[str, Mapping[str, Any]]:
        return {f.name: f.metadata for f in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls: type[_S], mapping: Mapping[str, Any]) -> _S:
        _check_keys(cls.section, mapping, cls.field_names())
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in mapping]
        if missing:
            name = missing[0]
            rest = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
            raise FieldError(f"{cls.section}.{name}",
                             f"missing required field ({cls.field_info()[name]['doc']}){rest}")
        return cls(**dict(mapping))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class Organization(DramOrganization):
    """A profile's geometry: the :class:`~eden.dram.address.DramOrganization` fields plus the chip width.

    Every field is required in a profile (the base class's defaults do not apply).
    ``row_bytes`` is the rank-level row (columns x bus width / 8), e.g. 8192 for
    a 64-bit rank of x8 chips with 1024 columns.
    """

    section: ClassVar[str] = "organization"
    CHIP_WIDTHS: ClassVar[tuple[int, ...]] = (4, 8, 16, 32, 64)  # 64: an HBM2 pseudo-channel
    device_width_bits: int = dataclasses.field(
        kw_only=True, metadata={"unit": "bit", "doc": "data width of one chip (x4/x8/x16/x32)"})

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _number(f"organization.{f.name}", getattr(self, f.name), integer=True))
        if self.device_width_bits not in self.CHIP_WIDTHS:
            raise FieldError("organization.device_width_bits", f"expected one of "
                             f"{', '.join(map(str, self.CHIP_WIDTHS))}, found {self.device_width_bits!r}")
        if self.bus_width_bits % self.device_width_bits:
            raise FieldError("organization.bus_width_bits", f"expected a multiple of device_width_bits "
                             f"({self.device_width_bits}), found {self.bus_width_bits}")
        try:
            super().__post_init__()
        except ValueError as exc:
            raise FieldError("organization", str(exc)) from None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def field_info(cls) -> dict[str, Mapping[str, Any]]:
        return {f.name: {"kind": "int", **f.metadata} for f in dataclasses.fields(cls)}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Organization:
        _check_keys(cls.section, mapping, cls.field_names())
        missing = [name for name in cls.field_names() if name not in mapping]
        if missing:
            rest = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
            raise FieldError(f"organization.{missing[0]}",
                             f"missing required field ({cls.field_info()[missing[0]]['doc']}){rest}")
        return cls(**dict(mapping))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.field_names()}

    def to_address(self) -> DramOrganization:
        """The geometry the address map and error injection use."""
        return self.geometry()

    @property
    def devices_per_rank(self) -> int:
        return self.bus_width_bits // self.device_width_bits


def _standard_fields() -> dict[str, dict[str, Field]]:
    """Standard name -> its ``power`` fields (``eden.dram.standards``), by field name."""
    return {name: {f.name: f for f in standards.get(name).fields()} for name in standards.names()}


class PowerSpec:
    """The ``power`` section: the memspec fields of the profile's standard (mA, V).

    The field list is the standard's (``eden.dram.standards.get(standard).fields()``):
    for DDR4 the VDD and VPP domains (``vdd_v``, ``idd*_ma``, ``vpp_v``,
    ``ipp*_ma``), for DDR3 VDD alone; optional ``ibeta_<domain>_ma`` (DRAMPower
    iBeta, default the domain's ``0`` current) and ``fact_rho`` (DRAMPower
    factRho, default 1). Fields read as attributes (``power.vdd_v``); an
    optional field that is absent reads as None.

    Raises:
        FieldError: unknown standard or key (with a suggestion), a field of
            another standard (``vpp_v`` on DDR3), a missing required field, or
            a value out of the field's bounds.
    """

    section: ClassVar[str] = "power"

    def __init__(self, **values: Any) -> None:
        known = standards.names()
        standard = values.get("standard")
        if standard is None:
            raise FieldError("power.standard", f"missing required field (one of {', '.join(known)})")
        if not isinstance(standard, str) or standard not in known:
            raise FieldError("power.standard", f"expected one of {', '.join(known)}, found {standard!r}"
                             f"{did_you_mean(standard, known)}")
        fields = _standard_fields()[standard]
        for key in values:
            if key in fields:
                continue
            owners = [name for name, table in _standard_fields().items() if key in table]
            if owners:
                lacking = [d.name for o in owners if (d := standards.get(o).domain_of_field(key)) is not None
                           and d.name not in standards.get(standard).domain_names]
                what = f"it has no {lacking[0]} domain" if lacking else f"it is a field of {', '.join(owners)}"
                raise FieldError(f"power.{key}", f"expected no {key} for {standard} ({what}); remove it")
            raise FieldError(f"power.{key}", f"unknown key; expected one of {', '.join(fields)}"
                             f"{did_you_mean(key, fields)}")
        missing = [name for name, f in fields.items() if f.required and name not in values]
        if missing:
            rest = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
            raise FieldError(f"power.{missing[0]}", f"missing required field for {standard} "
                             f"({fields[missing[0]].doc}){rest}")
        checked: dict[str, Any] = {}
        for name, f in fields.items():
            if name not in values:
                continue
            where = f"power.{name}"
            if f.kind == "str":
                checked[name] = _text(where, values[name])
            elif f.kind == "bool":
                if not isinstance(values[name], bool):
                    raise FieldError(where, f"expected true or false, found {values[name]!r}")
                checked[name] = values[name]
            else:
                checked[name] = _number(where, values[name], integer=f.kind == "int", lo=f.lo, lo_open=f.lo_open,
                                        hi=f.hi)
        object.__setattr__(self, "_values", MappingProxyType(checked))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        if name in _standard_fields()[values["standard"]]:
            return None  # an optional field left out
        if name == "vdd_v":  # the operating voltage: the lead domain's (LPDDR4 VDD2, LPDDR5 VDD2H)
            return values[standards.get(values["standard"]).lead.voltage_field]
        raise AttributeError(f"PowerSpec has no field {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PowerSpec) and dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"PowerSpec({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Every ``power`` field of any registered standard (a file's keys are checked against these)."""
        return tuple(dict.fromkeys(n for table in _standard_fields().values() for n in table))

    @classmethod
    def field_info(cls) -> dict[str, Mapping[str, Any]]:
        return {n: {"kind": f.kind, "unit": f.unit, "doc": f.doc}
                for table in _standard_fields().values() for n, f in table.items()}

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> PowerSpec:
        if not isinstance(mapping, Mapping):
            raise FieldError("power", f"expected an object (JSON mapping), found {type(mapping).__name__}")
        return cls(**dict(mapping))

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


@dataclasses.dataclass(frozen=True)
class TimingSpec(_Section):
    """Nominal timings in ns (``cwl_cycles`` in clock cycles)."""

    section: ClassVar[str] = "timing"
    tck_ns: float = _spec("float", "ns", "clock period tCK")
    tras_ns: float = _spec("float", "ns", "ACT-to-PRE tRAS")
    trp_ns: float = _spec("float", "ns", "PRE period tRP")
    trcd_ns: float = _spec("float", "ns", "nominal ACT-to-RD/WR tRCD")
    trfc1_ns: float = _spec("float", "ns", "refresh cycle time tRFC1")
    trefi_ns: float = _spec("float", "ns", "average refresh interval tREFI")
    trtp_ns: float = _spec("float", "ns", "RD-to-PRE tRTP")
    twr_ns: float = _spec("float", "ns", "write recovery tWR")
    cwl_cycles: int = _spec("int", "cycles", "CAS write latency CWL")


_SECTION_TYPES: dict[str, type[Organization] | type[PowerSpec] | type[TimingSpec]] = {
    "organization": Organization, "power": PowerSpec, "timing": TimingSpec}


def _all_fields() -> list[str]:
    return [f"{s}.{n}" for s, t in _SECTION_TYPES.items() for n in t.field_names()]


# --------------------------------------------------------------------------- sources, points
@dataclasses.dataclass(frozen=True)
class Source:
    """Where numbers come from. ``kind`` ``assumption`` marks an assumption (its ``citation`` says what)."""

    kind: SourceKind
    citation: str
    url: str = ""

    _KEYS: ClassVar[tuple[str, ...]] = ("kind", "citation", "url")

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise FieldError("kind", f"expected one of {', '.join(SOURCE_KINDS)}, found {self.kind!r}"
                             f"{did_you_mean(self.kind, SOURCE_KINDS)}")
        object.__setattr__(self, "kind", SourceKind(self.kind))
        _text("citation", self.citation)
        _text("url", self.url, allow_empty=True)

    @property
    def is_assumption(self) -> bool:
        return self.kind is SourceKind.ASSUMPTION

    def to_dict(self) -> dict[str, str]:
        d = {"kind": self.kind, "citation": self.citation}
        if self.url:
            d["url"] = self.url
        return d


@dataclasses.dataclass(frozen=True)
class Measurement:
    """The measured figure an operating point's BER came from.

    Attributes:
        figure: the measurement in words, e.g. ``"29.1% of 64-byte lines faulty
            (mean of 9 DIMMs)"``.
        ber: the BER the measurement gives under ``estimator`` (None when the
            point was not measured).
        estimator: how ``ber`` follows from the raw figure.
        data: file and selection the figure was computed from.
        ber_range: (low, high) spread of the same estimate over DIMMs, or None.
        spread: the spread in words (e.g. per vendor), or "".
        lower_bound: ``ber`` is only a lower bound: the measured figure saturates (e.g. the
            share of faulty 64-byte lines stops near 50% on a device, which uniform errors cannot
            do), so the device's errors are at least this many, not this many. Mapping can treat
            such points conservatively (``eden map --lower-bounds avoid``).
    """

    figure: str
    ber: float | None
    estimator: str
    data: str
    ber_range: tuple[float, float] | None = None
    spread: str = ""
    lower_bound: bool = False

    _KEYS: ClassVar[tuple[str, ...]] = ("figure", "ber", "estimator", "data", "ber_range", "spread", "lower_bound")

    def __post_init__(self) -> None:
        _text("figure", self.figure)
        if self.ber is not None:
            object.__setattr__(self, "ber", _number("ber", self.ber, lo=0.0, lo_open=False, hi=1.0))
        _text("estimator", self.estimator)
        _text("data", self.data)
        if self.ber_range is not None:
            r = self.ber_range
            if not isinstance(r, (list, tuple)) or len(r) != 2:
                raise FieldError("ber_range", f"expected [low, high], found {r!r}")
            lo = _number("ber_range[0]", r[0], lo=0.0, lo_open=False, hi=1.0)
            hi = _number("ber_range[1]", r[1], lo=0.0, lo_open=False, hi=1.0)
            if lo > hi:
                raise FieldError("ber_range", f"expected low <= high, found {list(r)!r}")
            object.__setattr__(self, "ber_range", (lo, hi))
        _text("spread", self.spread, allow_empty=True)
        if not isinstance(self.lower_bound, bool):
            raise FieldError("lower_bound", f"expected true or false, found {self.lower_bound!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Measurement:
        _check_keys("", mapping, cls._KEYS, required=("figure", "ber", "estimator", "data"))
        return cls(**dict(mapping))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"figure": self.figure, "ber": self.ber, "estimator": self.estimator,
                             "data": self.data}
        if self.ber_range is not None:
            d["ber_range"] = list(self.ber_range)
        if self.spread:
            d["spread"] = self.spread
        if self.lower_bound:
            d["lower_bound"] = True
        return d


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """One (VDD, tRCD) setting of a device with its error model and expected BER.

    Attributes:
        name: unique within the profile (lower case, digits, ``.``, ``_``, ``-``).
        vdd_v: supply voltage [V].
        trcd_ns: tRCD [ns].
        ber: the error model's expected BER (0 only for error-free points).
        error_model: None (no errors), an error-model spec, or an ``.h5`` file
            (a bare name lives in eden's ``error_models/``; a path with ``/`` is
            relative to the profile file).
        source: id of the profile source the point comes from.
        measured: the measured figure the BER came from (None if not measured).
        note: free text (how the point was derived).
    """

    name: str
    vdd_v: float
    trcd_ns: float
    ber: float
    error_model: str | None
    source: str
    measured: Measurement | None = None
    note: str = ""

    _KEYS: ClassVar[tuple[str, ...]] = ("name", "vdd_v", "trcd_ns", "ber", "error_model", "source",
                                        "measured", "note")

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise FieldError("name", f"expected lower-case letters, digits, '.', '_', '-' "
                             f"(starting with a letter or digit), found {self.name!r}")
        object.__setattr__(self, "vdd_v", _number("vdd_v", self.vdd_v))
        object.__setattr__(self, "trcd_ns", _number("trcd_ns", self.trcd_ns))
        object.__setattr__(self, "ber", _number("ber", self.ber, lo=0.0, lo_open=False, hi=1.0))
        if self.error_model is not None:
            _text("error_model", self.error_model)
        if (self.ber == 0.0) != (self.error_model is None):
            raise FieldError("error_model", "expected null exactly when ber is 0, found "
                             f"ber={self.ber!r} with error_model={self.error_model!r}")
        _text("source", self.source)
        if self.measured is not None and not isinstance(self.measured, Measurement):
            raise FieldError("measured", f"expected a Measurement, found {type(self.measured).__name__}")
        _text("note", self.note, allow_empty=True)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> OperatingPoint:
        _check_keys("", mapping, cls._KEYS, required=("name", "vdd_v", "trcd_ns", "ber", "error_model", "source"))
        kwargs = dict(mapping)
        if kwargs.get("measured") is not None:
            try:
                kwargs["measured"] = Measurement.from_mapping(kwargs["measured"])
            except FieldError as exc:
                raise FieldError("measured" if exc.field == "/" else f"measured.{exc.field}", exc.detail) from None
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "vdd_v": self.vdd_v, "trcd_ns": self.trcd_ns,
                             "ber": self.ber, "error_model": self.error_model, "source": self.source}
        if self.measured is not None:
            d["measured"] = self.measured.to_dict()
        if self.note:
            d["note"] = self.note
        return d

    def describe(self) -> str:
        return f"{self.name} (vdd_v {self.vdd_v:g} V, trcd_ns {self.trcd_ns:g} ns, BER {self.ber:.3g})"


# --------------------------------------------------------------------------- op specs
_OP_KEYS = {"vdd": "vdd_v", "vdd_v": "vdd_v", "trcd": "trcd_ns", "trcd_ns": "trcd_ns"}
_OP_UNITS = {"vdd_v": "v", "trcd_ns": "ns"}


def parse_op_spec(spec: str) -> dict[str, float]:
    """Parse ``"vdd=1.15"``, ``"trcd=10ns"``, ``"vdd=1.15,trcd=10"`` into ``{"vdd_v": .., "trcd_ns": ..}``.

    Only the keys given appear in the result.

    Raises:
        ValueError: not ``key=value`` pairs, an unknown key (with a suggestion),
            a key given twice, or a value that is not a positive number.
    """
    if not isinstance(spec, str) or "=" not in spec:
        raise EdenConfigError(f"operating-point spec {spec!r} must be key=value pairs such as 'vdd=1.15', "
                         "'trcd=10' or 'vdd=1.15,trcd=10', or an operating point name")
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise EdenConfigError(f"'{item}' in operating-point spec {spec!r} must be key=value")
        if key not in _OP_KEYS:
            raise EdenConfigError(f"unknown key {key!r} in operating-point spec {spec!r}; known: vdd, trcd"
                             f"{did_you_mean(key, list(_OP_KEYS))}")
        field = _OP_KEYS[key]
        if field in out:
            raise EdenConfigError(f"{key} given twice in operating-point spec {spec!r}")
        text = value.strip().lower()
        unit = _OP_UNITS[field]
        if text.endswith(unit):
            text = text[: -len(unit)].strip()
        try:
            number = float(text)
        except ValueError:
            raise EdenConfigError(f"{key} in operating-point spec {spec!r} must be a number "
                             f"(optionally followed by {unit.upper() if unit == 'v' else unit}), "
                             f"found {value.strip()!r}") from None
        if not (math.isfinite(number) and number > 0):
            raise EdenConfigError(f"{key} in operating-point spec {spec!r} must be > 0, found {value.strip()!r}")
        out[field] = number
    if not out:
        raise EdenConfigError(f"operating-point spec {spec!r} names no vdd or trcd")
    return out


# --------------------------------------------------------------------------- the profile
@dataclasses.dataclass(frozen=True)
class DramProfile:
    """One DRAM device, resolved: every field present and checked.

    Build with :func:`load_profile` (presets, files, overrides) or directly; the
    constructor validates everything (raising :class:`FieldError`, which the
    loader turns into a :class:`ProfileError` naming the file).

    Attributes:
        name: profile name (a preset's file stem).
        description: one paragraph.
        organization, power, timing: the device sections.
        operating_points: tuple, ``nominal`` included.
        sources: source id -> :class:`Source`.
        cite: ``"section.field"`` -> ``"<source id>[: note]"`` for every field.
        notes: free text.
        path: the file it was loaded from (None if built in code).
        bases: files it extends, nearest first.
    """

    name: str
    description: str
    organization: Organization
    power: PowerSpec
    timing: TimingSpec
    operating_points: tuple[OperatingPoint, ...]
    sources: Mapping[str, Source]
    cite: Mapping[str, str]
    notes: tuple[str, ...] = ()
    path: str | None = dataclasses.field(default=None, compare=False)
    bases: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    origins: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise FieldError("name", f"expected lower-case letters, digits, '.', '_', '-', found {self.name!r}")
        _text("description", self.description)
        for section, cls in _SECTION_TYPES.items():
            if not isinstance(getattr(self, section), cls):
                raise FieldError(section, f"expected a {cls.__name__}, found {type(getattr(self, section)).__name__}")
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "cite", MappingProxyType(dict(self.cite)))
        object.__setattr__(self, "operating_points", tuple(self.operating_points))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "origins", MappingProxyType(dict(self.origins)))
        for sid, src in self.sources.items():
            if not isinstance(src, Source):
                raise FieldError(f"sources.{sid}", f"expected a Source, found {type(src).__name__}")
        for note in self.notes:
            _text("notes", note)
        self._check_cross_section()
        self._check_citations()
        self._check_operating_points()

    # ------------------------------------------------------------ validation
    def _check_cross_section(self) -> None:
        org, pw = self.organization, self.power
        if pw.nbr_of_banks != org.banks:
            raise FieldError("power.nbr_of_banks", f"expected organization.banks ({org.banks}), "
                             f"found {pw.nbr_of_banks}")
        if pw.nbr_of_devices != org.devices_per_rank:
            raise FieldError("power.nbr_of_devices", f"expected organization.bus_width_bits / "
                             f"device_width_bits ({org.devices_per_rank}), found {pw.nbr_of_devices}")

    def _check_citations(self) -> None:
        fields = set(_all_fields())
        for key, value in self.cite.items():
            if key not in fields:
                raise FieldError(f"cite.{key}", f"unknown field; expected 'section.field'{did_you_mean(key, fields)}")
            self._cited_source(f"cite.{key}", value)
        for section in _SECTION_TYPES:
            for name, value in getattr(self, section).to_dict().items():
                if f"{section}.{name}" not in self.cite:
                    raise FieldError(f"cite.{section}.{name}", f"missing citation for {section}.{name} = "
                                     f"{value!r}; every number needs '<source id>[: note]'")

    def _cited_source(self, where: str, value: Any) -> str:
        text = _text(where, value)
        sid = text.split(":", 1)[0].strip()
        if sid not in self.sources:
            raise FieldError(where, f"unknown source id {sid!r}; known: {', '.join(self.sources)}"
                             f"{did_you_mean(sid, self.sources)}")
        return sid

    def _check_operating_points(self) -> None:
        ops = self.operating_points
        seen: dict[str, int] = {}
        for i, op in enumerate(ops):
            if not isinstance(op, OperatingPoint):
                raise FieldError(f"operating_points[{i}]", f"expected an OperatingPoint, found {type(op).__name__}")
            where = f"operating_points[{op.name!r}]"
            if op.name in seen:
                raise FieldError(f"{where}.name", f"duplicate operating point name (also entry {seen[op.name]})")
            seen[op.name] = i
            if op.source not in self.sources:
                raise FieldError(f"{where}.source", f"unknown source id {op.source!r}; known: "
                                 f"{', '.join(self.sources)}{did_you_mean(op.source, self.sources)}")
            for other in ops[:i]:
                if self._same_setting(op, other.vdd_v, other.trcd_ns):
                    raise FieldError(f"{where}", f"same (vdd_v, trcd_ns) as {other.name!r} "
                                     f"({other.vdd_v:g} V, {other.trcd_ns:g} ns); settings must be unique")
        if NOMINAL not in seen:
            raise FieldError("operating_points", f"missing the {NOMINAL!r} operating point (vdd_v = power.vdd_v, "
                             "trcd_ns = timing.trcd_ns, ber 0, error_model null)")
        nom = ops[seen[NOMINAL]]
        where = f"operating_points[{NOMINAL!r}]"
        if nom.ber != 0.0:
            raise FieldError(f"{where}.ber", f"expected 0 for the nominal point, found {nom.ber!r}")
        if abs(nom.vdd_v - self.power.vdd_v) > 1e-12:
            raise FieldError(f"{where}.vdd_v", f"expected power.vdd_v ({self.power.vdd_v:g}), found {nom.vdd_v:g}")
        if abs(nom.trcd_ns - self.timing.trcd_ns) > 1e-12:
            raise FieldError(f"{where}.trcd_ns", f"expected timing.trcd_ns ({self.timing.trcd_ns:g}), "
                             f"found {nom.trcd_ns:g}")

    @staticmethod
    def _same_setting(op: OperatingPoint, vdd_v: float, trcd_ns: float) -> bool:
        return abs(op.vdd_v - vdd_v) <= VDD_TOLERANCE_V and abs(op.trcd_ns - trcd_ns) <= TRCD_TOLERANCE_NS

    # ------------------------------------------------------------ lookups
    def _file_of(self, field: str) -> str | None:
        key = field.split("[", 1)[0]
        return self.origins.get(key, self.path)

    def _error(self, field: str, detail: str) -> ProfileError:
        return ProfileError(self._file_of(field) or f"<profile {self.name}>", field, detail)

    @property
    def nominal(self) -> OperatingPoint:
        """The nominal operating point (BER 0)."""
        return next(op for op in self.operating_points if op.name == NOMINAL)

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(op.name for op in self.operating_points)

    def operating_point(self, spec: str | OperatingPoint) -> OperatingPoint:
        """The operating point a spec names (see module docs for the spec syntax).

        Raises:
            ProfileError: no such operating point (names the profile file, lists
                what exists, suggests the nearest), or a malformed spec.
        """
        if isinstance(spec, OperatingPoint):
            if spec not in self.operating_points:
                raise self._error("operating_points", f"{spec.name!r} is not an operating point of this profile")
            return spec
        if not isinstance(spec, str) or not spec.strip():
            raise self._error("operating_points", f"expected an operating point name or 'vdd=..,trcd=..', "
                              f"found {spec!r}")
        spec = spec.strip()
        if "=" not in spec:
            for op in self.operating_points:
                if op.name == spec:
                    return op
            hint = did_you_mean(spec, self.op_names) or "."
            raise self._error("operating_points", f"no operating point named {spec!r}{hint} "
                              f"Available: {self._available()}")
        try:
            want = parse_op_spec(spec)
        except ValueError as exc:
            raise self._error("operating_points", str(exc)) from None
        vdd = want.get("vdd_v", self.power.vdd_v)
        trcd = want.get("trcd_ns", self.timing.trcd_ns)
        for op in self.operating_points:
            if self._same_setting(op, vdd, trcd):
                return op
        nearest = min(self.operating_points,
                      key=lambda o: abs(o.vdd_v - vdd) / self.power.vdd_v + abs(o.trcd_ns - trcd) / self.timing.trcd_ns)
        raise self._error("operating_points", f"no operating point at vdd_v={vdd:g} V, trcd_ns={trcd:g} ns "
                          f"(from {spec!r}; omitted keys take the nominal value); nearest: {nearest.describe()}. "
                          f"Available: {self._available()}")

    def _available(self) -> str:
        return "; ".join(f"{op.name} (vdd={op.vdd_v:g},trcd={op.trcd_ns:g})" for op in self.operating_points)

    def error_model_path(self, op: str | OperatingPoint) -> Path | None:
        """The ``.h5`` file of an operating point's model, or None (no file: null or a spec)."""
        op = self.operating_point(op)
        ref = op.error_model
        if ref is None or not ref.endswith((".h5", ".hdf5")):
            return None
        if "/" in ref or os.sep in ref:
            base = Path(self._file_of("operating_points") or ".").parent
            return (base / ref).resolve()
        from eden.core.resources import resource_dir

        return resource_dir("error_models") / ref

    def error_model(self, op: str | OperatingPoint) -> ErrorModel:
        """The error model eden injects at an operating point.

        ``nominal`` and other error-free points give ``em0:p=0.0``. The model's
        ``expected_ber()`` is checked against the point's ``ber``.

        Raises:
            ProfileError: unknown operating point, a missing or invalid model
                file, or a model whose expected BER is not the point's ``ber``.
        """
        op = self.operating_point(op)
        field = f"operating_points[{op.name!r}].error_model"
        if op.error_model is None:
            return ErrorModel.uniform(0.0)
        path = self.error_model_path(op)
        try:
            model = ErrorModel.load(path) if path is not None else ErrorModel.from_spec(op.error_model)
        except FileNotFoundError:
            assert path is not None  # only ErrorModel.load reads a file
            hint = ("run scripts/fit_diva.py, then scripts/build_profiles.py" if Path(path).name.startswith("diva_")
                    else "run scripts/build_profiles.py to regenerate it")
            raise self._error(field, f"expected an error-model file at {path}; not found ({hint})") from None
        except (ValueError, TypeError) as exc:
            raise self._error(field, f"expected a valid error model; {exc}") from None
        got = model.expected_ber()
        if abs(got - op.ber) > BER_RTOL * op.ber + BER_ATOL:
            raise self._error(field, f"expected a model with expected BER {op.ber!r} (the point's ber); "
                              f"found {got!r} in {path or op.error_model} (rebuild the profile with "
                              "scripts/build_profiles.py)")
        return model

    def check_error_models(self) -> None:
        """Load every operating point's model (raises :class:`ProfileError` on the first bad one)."""
        for op in self.operating_points:
            self.error_model(op)

    # ------------------------------------------------------------ views
    def memspec_fields(self) -> dict[str, Any]:
        """Flat power + timing fields (and ``name``), the mapping ``MemSpec.from_fields`` reads."""
        return {"name": self.name, **self.power.to_dict(), **self.timing.to_dict()}

    def assumptions(self) -> list[tuple[str, str]]:
        """``(where, text)`` for every field and operating point resting on an assumption source."""
        out = []
        for key, value in self.cite.items():
            sid = value.split(":", 1)[0].strip()
            if self.sources[sid].is_assumption:
                out.append((key, f"{self.sources[sid].citation}" + (f" ({value.split(':', 1)[1].strip()})"
                                                                    if ":" in value else "")))
        for op in self.operating_points:
            if self.sources[op.source].is_assumption:
                out.append((f"operating_points[{op.name!r}]", self.sources[op.source].citation))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The complete resolved record (no ``extends``): loading it gives an equal profile."""
        d: dict[str, Any] = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
                             "description": self.description}
        for section in _SECTION_TYPES:
            d[section] = getattr(self, section).to_dict()
        d["operating_points"] = [op.to_dict() for op in self.operating_points]
        d["sources"] = {sid: src.to_dict() for sid, src in self.sources.items()}
        d["cite"] = dict(self.cite)
        if self.notes:
            d["notes"] = list(self.notes)
        return d

    @classmethod
    def load(cls, name_or_path: os.PathLike | str, overrides: Mapping[str, Any] | None = None) -> DramProfile:
        """Same as :func:`load_profile`."""
        return load_profile(name_or_path, overrides)


# --------------------------------------------------------------------------- files
def _presets_dir() -> Path:
    from eden.core.resources import resource_dir

    return resource_dir("dram_profiles")


def list_presets() -> list[str]:
    """Names of the profiles eden ships (``dram_profiles/*.json``), sorted."""
    return sorted(p.stem for p in _presets_dir().glob("*.json"))


def preset_path(name: str) -> Path:
    """The file of a shipped preset.

    Raises:
        UnknownProfileError: no such preset (lists the known ones, suggests the nearest).
    """
    path = _presets_dir() / f"{name}.json"
    if not path.is_file():
        known = list_presets()
        raise UnknownProfileError(f"unknown DRAM profile {name!r}; known presets: {', '.join(known)}"
                                  f"{did_you_mean(name, known)} (or give a path to a .json profile file)")
    return path


def _resolve(name_or_path: os.PathLike | str, relative_to: Path | None = None) -> Path:
    text = os.fspath(name_or_path)
    looks_like_path = text.endswith(".json") or "/" in text or os.sep in text
    if looks_like_path:
        path = Path(text)
        if relative_to is not None and not path.is_absolute():
            path = relative_to / path
        if not path.is_file():
            raise UnknownProfileError(f"DRAM profile file {os.fspath(path)!r} not found")
        return path
    return preset_path(text)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ProfileError(path, "/", f"expected a JSON object; found invalid JSON ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(path, "/", f"expected UTF-8 JSON text; found undecodable bytes ({exc})") from None
    if not isinstance(data, dict):
        raise ProfileError(path, "/", f"expected a JSON object; found {type(data).__name__}")
    return data


def _check_header(path: Path, data: Mapping[str, Any]) -> None:
    try:
        _check_keys("", data, _TOP_KEYS, required=("format", "format_version", "name", "description"))
    except FieldError as exc:
        raise ProfileError(path, exc.field, exc.detail) from None
    if data["format"] != FORMAT:
        raise ProfileError(path, "format", f"expected {FORMAT!r}; found {data['format']!r}")
    version = data["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProfileError(path, "format_version", f"expected an integer 1..{FORMAT_VERSION}; found {version!r}")
    if version > FORMAT_VERSION:
        raise ProfileError(path, "format_version", f"expected 1..{FORMAT_VERSION}; found {version}, written by a "
                           "newer eden: upgrade eden to read this file")
    if version < 1:
        raise ProfileError(path, "format_version", f"expected 1..{FORMAT_VERSION}; found {version}")
    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ProfileError(path, "name", f"expected lower-case letters, digits, '.', '_', '-'; found {name!r}")
    if path.parent.resolve() == _presets_dir().resolve() and name != path.stem:
        raise ProfileError(path, "name", f"expected {path.stem!r} (a preset's name is its file name); found {name!r}")


def _raw_sections(path: Path, data: Mapping[str, Any]) -> None:
    """Key checks of one file's own sections (so errors name the file that has the key)."""
    try:
        for section, cls in _SECTION_TYPES.items():
            if section in data:
                _check_keys(section, data[section], cls.field_names())
        for key in ("sources", "cite"):
            if key in data and not isinstance(data[key], Mapping):
                raise FieldError(key, f"expected an object, found {type(data[key]).__name__}")
        for sid, src in data.get("sources", {}).items():
            _check_keys(f"sources.{sid}", src, Source._KEYS, required=("kind", "citation"))
        if "operating_points" in data and not isinstance(data["operating_points"], list):
            raise FieldError("operating_points", f"expected a list, found {type(data['operating_points']).__name__}")
        if "notes" in data and not (isinstance(data["notes"], list)
                                    and all(isinstance(n, str) for n in data["notes"])):
            raise FieldError("notes", "expected a list of strings")
        if "extends" in data and not isinstance(data["extends"], str):
            raise FieldError("extends", f"expected a preset name or a .json path, found {data['extends']!r}")
        for section in _SECTION_TYPES:
            for name in data.get(section, {}):
                if "extends" in data and f"{section}.{name}" not in data.get("cite", {}):
                    raise FieldError(f"cite.{section}.{name}", f"{section}.{name} is set in this file, so its "
                                     "citation must be too (the base file's citation describes the base value)")
    except FieldError as exc:
        raise ProfileError(path, exc.field, exc.detail) from None


def _load_merged(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A file merged onto its bases: (record, origins field->file, base files nearest first)."""
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(os.fspath(p) for p in (*chain, resolved))
        raise ProfileError(path, "extends", f"expected no cycle; found {cycle}")
    data = _read_json(path)
    _check_header(path, data)
    _raw_sections(path, data)
    here = os.fspath(path)
    bases: list[str] = []
    if "extends" in data:
        try:
            base_path = _resolve(data["extends"], relative_to=path.parent)
        except UnknownProfileError as exc:
            raise ProfileError(path, "extends", str(exc)) from None
        merged, origins, deeper = _load_merged(base_path, (*chain, resolved))
        bases = [os.fspath(base_path), *deeper]
    else:
        merged = {s: {} for s in (*_SECTION_TYPES, "sources", "cite")}
        origins = {}
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in merged.items()}
    for key in ("name", "description", "notes"):
        if key in data:
            merged[key] = data[key]
    for section in (*_SECTION_TYPES, "sources", "cite"):
        for name, value in data.get(section, {}).items():
            merged[section][name] = value
            origins[f"{section}.{name}"] = here
    if "operating_points" in data:
        merged["operating_points"] = data["operating_points"]
        origins["operating_points"] = here
    for key in ("name", "description", "notes"):
        if key in data:
            origins[key] = here
    return merged, origins, bases


_OVERRIDE_SOURCE = "override"


def _apply_overrides(merged: dict[str, Any], origins: dict[str, str], overrides: Mapping[str, Any],
                     path: Path) -> None:
    fields = _all_fields()
    ops = [dict(op) if isinstance(op, Mapping) else op for op in merged.get("operating_points", [])]
    for key, value in overrides.items():
        if not isinstance(key, str) or key not in fields:
            raise ProfileError(path, f"overrides[{key!r}]", f"unknown field; expected 'section.field' "
                               f"(e.g. timing.trcd_ns){did_you_mean(str(key), fields)}")
        section, name = key.split(".", 1)
        meta = _SECTION_TYPES[section].field_info()[name]
        if isinstance(value, str) and meta["kind"] != "str":
            text = value.strip()
            try:
                value = int(text) if meta["kind"] == "int" else float(text)
            except ValueError:
                kind = "an integer" if meta["kind"] == "int" else "a number"
                raise ProfileError(path, f"overrides[{key!r}]", f"expected {kind}; found {value!r}") from None
        merged.setdefault(section, {})[name] = value
        merged.setdefault("cite", {})[key] = f"{_OVERRIDE_SOURCE}: set when loading the profile"
        origins[key] = f"{os.fspath(path)} (with overrides)"
        origins[f"cite.{key}"] = origins[key]
        if key in ("power.vdd_v", "timing.trcd_ns"):  # the nominal point follows its fields
            for op in ops:
                if isinstance(op, dict) and op.get("name") == NOMINAL:
                    op["vdd_v" if key == "power.vdd_v" else "trcd_ns"] = value
    merged["operating_points"] = ops
    merged.setdefault("sources", {})[_OVERRIDE_SOURCE] = {
        "kind": "assumption", "citation": "value overridden when the profile was loaded (not from the profile file)"}


def load_profile(name_or_path: os.PathLike | str, overrides: Mapping[str, Any] | None = None) -> DramProfile:
    """Load a preset (by name) or a profile file, resolve ``extends``, apply overrides, validate.

    Args:
        name_or_path: a preset name (:func:`list_presets`) or a path to a
            ``.json`` profile file.
        overrides: ``{"section.field": value}`` applied after ``extends``
            (values may be strings, converted to the field's type); the
            ``nominal`` point follows ``power.vdd_v`` and ``timing.trcd_ns``.
            Each override is cited to the ``override`` assumption source.

    Returns:
        The resolved, validated profile.

    Raises:
        UnknownProfileError: unknown preset name or missing file (with suggestions).
        ProfileError: invalid file or override; the message names the file,
            the field, what was expected and what was found.
    """
    path = _resolve(name_or_path)
    merged, origins, bases = _load_merged(path, ())
    if overrides:
        if not isinstance(overrides, Mapping):
            raise EdenTypeError(f"overrides must be a mapping of 'section.field' to value, "
                                f"got {type(overrides).__name__}")
        _apply_overrides(merged, origins, overrides, path)
    top = os.fspath(path)

    def fail(exc: FieldError, prefix: str = ""):
        field = prefix + exc.field
        key = field.split("[", 1)[0]
        file = origins.get(key) or origins.get(".".join(field.split(".")[:2])) or top
        return ProfileError(file, field, exc.detail)

    sections: dict[str, Organization | PowerSpec | TimingSpec] = {}
    for section, cls in _SECTION_TYPES.items():
        try:
            sections[section] = cls.from_mapping(merged.get(section, {}))
        except FieldError as exc:
            err = fail(exc)
            if err.file == top and bases and "missing" in exc.detail:
                err = ProfileError(top, err.field, f"{exc.detail}; set neither here nor in "
                                   f"{', '.join(bases)}")
            raise err from None
    sources = {}
    for sid, src in merged.get("sources", {}).items():
        try:
            sources[sid] = Source(**src)
        except FieldError as exc:
            raise ProfileError(origins.get(f"sources.{sid}", top), f"sources.{sid}.{exc.field}", exc.detail) from None
        except TypeError as exc:
            raise ProfileError(origins.get(f"sources.{sid}", top), f"sources.{sid}", str(exc)) from None
    ops = []
    op_file = origins.get("operating_points", top)
    for i, raw in enumerate(merged.get("operating_points", [])):
        label = raw.get("name") if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) else i
        try:
            ops.append(OperatingPoint.from_mapping(raw))
        except FieldError as exc:
            raise ProfileError(op_file, f"operating_points[{label!r}].{exc.field}", exc.detail) from None
    try:
        return DramProfile(
            name=merged["name"], description=merged["description"],
            organization=cast(Organization, sections["organization"]), power=cast(PowerSpec, sections["power"]),
            timing=cast(TimingSpec, sections["timing"]), operating_points=tuple(ops), sources=sources,
            cite=merged.get("cite", {}), notes=tuple(merged.get("notes", ())), path=top, bases=tuple(bases),
            origins={**origins, "operating_points": op_file})
    except FieldError as exc:
        raise fail(exc) from None
