"""What a DRAM standard declares: memspec fields, voltage domains, currents, commands, energies.

A standard is one :class:`Standard` record built in one module (``ddr4.py``,
``ddr3.py``) and registered by one line in ``eden/dram/standards/__init__.py``
(as Ramulator 2's ``src/dram/impl/<std>.cpp`` and DRAMPower's
``standards/<std>/``). Everything standard-specific lives in that record:

* its **voltage domains** keyed by name (:class:`Domain`: DDR4 VDD and VPP,
  DDR3 VDD; LPDDR5 would be VDD1, VDD2H, VDD2L, VDDQ), each saying whether
  it scales when VDD is lowered (``MemSpec.at_vdd``);
* the **currents** each domain carries (:class:`Current`), their DRAM-profile
  field suffix (``idd0_ma``) and DRAMPower JSON names (``idd0``);
* its **memspec fields** (:meth:`Standard.fields`: the DRAM profile's
  ``power`` section and the flat fields ``MemSpec.from_fields`` reads, with
  units, required/optional and meaning), derived from the domains and currents;
* its **refresh modes** (JSON names of the refresh current and tRFC per mode);
* its **command set** and **background states**, with the functions that give
  their per-domain energies [J] and powers [W] from a memspec.

This module imports nothing from the power model: the energy functions take
the memspec (``eden.power.memspec.MemSpec``) as an argument and read its
attributes (``banks``, ``tck_s``, ``ras``, ``rp``, ``rfc``, ``burst_length``,
``data_rate``, ``fact_rho``, ``domains``), so the profile loader (this layer)
and the power model (the layer above) read one description.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Field", "Current", "Domain", "RefreshMode", "Param", "Standard", "COMMON_FIELDS", "TIMING_FIELDS",
           "REPORT_NAMES"]

PerDomainValues = Mapping[str, float]
"""Domain name -> value of one quantity (J or W), as a standard's energy functions return it."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One flat memspec field of a DRAM profile, named with its unit (``idd0_ma``, ``vdd_v``).

    Attributes:
        name: the field name; the suffix is the unit.
        unit: the unit in words (``"mA"``, ``"V"``, ``"ns"``, ``""``).
        doc: what the field means.
        kind: ``"float"``, ``"int"`` or ``"str"``.
        required: False for optional fields (their default is stated in ``doc``).
        lo, lo_open, hi: bounds of a number (``lo_open``: ``> lo``, else ``>= lo``).
    """

    name: str
    unit: str
    doc: str
    kind: str = "float"
    required: bool = True
    lo: float | None = 0.0
    lo_open: bool = True
    hi: float | None = None


@dataclasses.dataclass(frozen=True)
class Current:
    """One current every domain of a standard carries.

    Attributes:
        key: attribute name on ``VoltageDomain`` (``"i0"``).
        suffix: profile field suffix: field ``f"{domain.prefix}{suffix}_ma"`` (``idd0_ma``).
        meaning: what it measures (``"one-bank ACT-PRE"``).
        json: DRAMPower JSON suffixes, first preferred: key ``f"{domain.prefix}{s}"``
            (``("6n", "6")`` reads ``idd6n`` or DRAMSys' DDR3 ``idd6``). Empty for
            the refresh current, whose JSON name depends on the refresh mode.
        optional: a DRAM profile may leave it out (its value is then None and the
            commands and states that need it are not reported); DRAMPower JSON
            memspecs must still give it (DRAMPower reads every current).
    """

    key: str
    suffix: str
    meaning: str
    json: tuple[str, ...] = ()
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class Domain:
    """One supply domain (rail) of a standard.

    The voltage is field ``<name>_v`` (``vdd_v``) and JSON ``<name>`` (``vdd``),
    I_beta is ``ibeta_<name>_ma`` / ``iBeta_<name>`` (lower-case name); current
    names follow the two templates (``{prefix}`` and ``{current}``, the
    :class:`Current` suffix): DDR's ``idd0_ma`` / ``idd0`` by default, DRAMPower's
    LPDDR names put the domain after the current (``json_key="idd{current}2h"``
    reads ``idd02h``).

    Attributes:
        name: ``"VDD"``, ``"VPP"``, ``"VDD2H"``, ...; upper case, unique in the standard.
        prefix: current prefix in profile fields and JSON (``"idd"``, ``"ipp"``).
        scales_with_vdd: its currents follow ``IDD(V) = IDD_nominal * (V/V_nominal) ** alpha``
            when ``MemSpec.at_vdd`` lowers VDD; False: unchanged (DDR4's VPP).
        currents_may_be_zero: currents are ``>= 0`` (True) or ``> 0`` (False);
            the VPP standby currents of the Micron DDR4 memspecs are 0.
        field_key: template of a current's profile field.
        json_key: template of a current's DRAMPower JSON key.
        carries: keys of the currents this domain carries (None: every current of the
            standard; ``()``: a voltage only, as HBM3's VDDQ, whose share of the read
            energy the standard computes from the VDD currents).
    """

    name: str
    prefix: str
    scales_with_vdd: bool
    currents_may_be_zero: bool = False
    field_key: str = "{prefix}{current}_ma"
    json_key: str = "{prefix}{current}"
    carries: tuple[str, ...] | None = None

    @property
    def voltage_field(self) -> str:
        """Profile field of the voltage (``vdd_v``)."""
        return f"{self.name.lower()}_v"

    @property
    def json_voltage(self) -> str:
        """DRAMPower JSON key of the voltage (``vdd``)."""
        return self.name.lower()

    @property
    def beta_field(self) -> str:
        """Profile field of DRAMPower's I_beta (``ibeta_vdd_ma``), optional, default ``{prefix}0_ma``."""
        return f"ibeta_{self.name.lower()}_ma"

    @property
    def json_beta(self) -> str:
        return f"iBeta_{self.name.lower()}"

    def carried(self, currents: tuple[Current, ...]) -> tuple[Current, ...]:
        """The currents of ``currents`` this domain carries, in their order."""
        return currents if self.carries is None else tuple(c for c in currents if c.key in self.carries)

    def current_field(self, current: Current) -> str:
        """Profile field of ``current`` in this domain (``idd0_ma``)."""
        return self.field_key.format(prefix=self.prefix, current=current.suffix)

    def current_json(self, suffix: str) -> str:
        """DRAMPower JSON key of a current suffix in this domain (``idd0``, ``idd5B``)."""
        return self.json_key.format(prefix=self.prefix, current=suffix)


@dataclasses.dataclass(frozen=True)
class RefreshMode:
    """JSON names of one refresh mode's current (suffix after the domain prefix) and tRFC."""

    current_json: tuple[str, ...]
    rfc_json: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Param:
    """A standard-specific memspec parameter beyond the common set (DDR5's tRFCsb, LPDDR5's WCK:CK ratio).

    ``MemSpec`` stores it under ``key`` (``spec.rfcsb``, ``spec.param("rfcsb")``); a DRAM
    profile gives it as the ``power`` field ``field``; a DRAMPower JSON memspec as one of
    ``json`` (``"section.key"``, first present wins).

    Attributes:
        key: the memspec attribute name.
        field: the profile field (unit-suffixed: ``trfcsb_ns``, ``wck2ck``).
        kind: ``"cycles"`` (a timing: ns in profiles, rounded up to whole clocks; cycles in
            JSON), ``"int"``, ``"float"`` or ``"bool"``.
        doc: what it means.
        json: DRAMPower JSON locations, ``"memtimingspec.RFCsb_slr"``.
        default: the value when absent (None: required).
        lo: lower bound of a number (inclusive).
        section: the DRAM profile section holding ``field``: ``"power"`` (listed by
            :meth:`Standard.fields`) or ``"timing"`` (a field every profile's timing section
            has: ``trtp_ns``, ``twr_ns``, ``cwl_cycles``).
    """

    key: str
    field: str
    kind: str
    doc: str
    json: tuple[str, ...] = ()
    default: Any = None
    lo: float | None = 0.0
    section: str = "power"

    @property
    def unit(self) -> str:
        return {"cycles": "ns"}.get(self.kind, "")

    def as_field(self) -> Field:
        """The profile ``power`` field of this parameter."""
        kind = {"cycles": "float", "bool": "str"}.get(self.kind, self.kind)
        if self.kind == "bool":
            return Field(self.field, "", f"{self.doc} (true/false)", kind="bool", required=self.default is None,
                         lo=None)
        return Field(self.field, self.unit, self.doc + ("" if self.default is None else f" (optional, default "
                                                         f"{self.default!r})"),
                     kind=kind, required=self.default is None, lo=self.lo, lo_open=self.kind == "cycles")


#: The background states DRAMPower reports for every standard (key, label); a standard lists
#: these (HBM-Power: the first three) plus its own (LPDDR5: deep sleep).
STANDBY_STATES: tuple[tuple[str, str], ...] = (
    ("precharged_standby", "precharged standby"),
    ("active_standby_one_bank", "active standby, 1 bank"),
    ("active_standby_all_banks", "active standby, all banks"),
)
CORE_BACKGROUND_STATES: tuple[tuple[str, str], ...] = (
    *STANDBY_STATES,
    ("power_down_active", "power-down active"),
    ("power_down_precharged", "power-down precharged"),
    ("self_refresh", "self-refresh"),
)

AUTO_PRECHARGE_PARAMS: tuple[Param, ...] = (
    Param("rtp", "trtp_ns", "cycles", "RD-to-PRE tRTP (the implicit precharge of RDA)", ("memtimingspec.RTP",),
          default=0, section="timing"),
    Param("wl", "cwl_cycles", "int", "write latency WL/CWL (the implicit precharge of WRA)", ("memtimingspec.WL",),
          default=0, section="timing"),
    Param("wr", "twr_ns", "cycles", "write recovery tWR (the implicit precharge of WRA)", ("memtimingspec.WR",),
          default=0, section="timing"),
)
"""Timings only command traces read (the auto-precharge offsets); a profile's timing section has them."""


COMMON_FIELDS: tuple[Field, ...] = (
    Field("standard", "", "memory standard (a registered name, eden.dram.standards.names())", kind="str"),
    Field("nbr_of_banks", "", "banks per device (DRAMPower nbrOfBanks)", kind="int"),
    Field("nbr_of_devices", "", "devices per rank (DRAMPower nbrOfDevices)", kind="int"),
    Field("nbr_of_ranks", "", "ranks (DRAMPower nbrOfRanks)", kind="int"),
    Field("burst_length", "", "burst length BL", kind="int"),
    Field("data_rate", "", "transfers per clock (2 for DDR)", kind="int"),
)
"""Architecture fields every standard's ``power`` section starts with."""

FACT_RHO = Field("fact_rho", "", "DRAMPower factRho in [0, 1] (optional, default 1)", required=False,
                 lo_open=False, hi=1.0)

TIMING_FIELDS: tuple[Field, ...] = (
    Field("tck_ns", "ns", "clock period tCK"),
    Field("tras_ns", "ns", "ACT-to-PRE tRAS, rounded up to cycles"),
    Field("trp_ns", "ns", "PRE period tRP, rounded up to cycles"),
    Field("trcd_ns", "ns", "nominal ACT-to-RD/WR tRCD, rounded up to cycles"),
    Field("trfc1_ns", "ns", "refresh cycle time tRFC1, rounded up to cycles"),
    Field("trefi_ns", "ns", "average refresh interval tREFI, rounded down to cycles (optional for the "
          "power model; needed for refresh energy)", required=False),
)
"""Timing fields the power model reads (the DRAM profile's ``timing`` section holds them and more)."""

REPORT_NAMES: Mapping[str, str] = {
    "act": "ACT", "pre": "PRE", "rd": "RD", "wr": "WR", "refa": "REFab", "refab": "REFab", "refsb": "REFsb",
    "refpb": "REFpb", "refp2b": "REFp2b", "refresh_window": "REF_window",
    "precharged_standby": "P_PRE_STBY", "active_standby_one_bank": "P_ACT_STBY_1",
    "active_standby_all_banks": "P_ACT_STBY_ALL", "power_down_active": "P_PDN_ACT",
    "power_down_precharged": "P_PDN_PRE", "self_refresh": "P_SREF", "deep_sleep": "P_DSM",
}
"""The names ``eden power`` reports commands and background states under (DRAMPower's / the issue's)."""


@dataclasses.dataclass(frozen=True)
class Standard:
    """One DRAM standard, as its module declares it (see the module docstring).

    Attributes:
        name: the registered name (``"DDR4"``), the value of a profile's ``power.standard``
            and of a DRAMPower JSON's ``memoryType``.
        description: one line (the DRAMPower equations it follows).
        domains: its supply domains, in report order; the first is the VDD that
            ``MemSpec.at_vdd`` sets.
        currents: the currents every domain carries.
        refresh_modes: refresh mode (DRAMPower ``RefMode``) -> JSON names; profiles
            describe mode 1.
        commands: ``(key, label)`` of every per-command energy, in report order.
        background_states: ``(key, label)`` of every background power, in report order.
        command_energies: ``memspec -> {command key: {domain: J}}``, per device.
        background_powers: ``memspec -> {state key: {domain: W}}``, per device.
        active_standby_power: ``(memspec, open_banks) -> {domain: W}``, per device;
            ``open_banks = 0`` is precharged standby.
        derived_currents: ``(memspec, domain) -> {name: A}`` (DRAMPower's I_rho, I_1, I_theta).
        reported_as_null: domains the standard lacks that reports still list, as
            null, so that its reports share a layout with a related standard's
            (DDR3 reports VPP as null next to DDR4's VPP).
        params: standard-specific memspec parameters (:class:`Param`): DDR5's bank groups
            and tRFCsb, LPDDR's tRFCpb, LPDDR5's WCK:CK ratio, HBM's data-pattern model.
        timing_json: DRAMPower JSON names (in ``memtimingspec``) of the common timings
            ``ras``, ``rp``, ``rcd``, ``refi`` (LPDDR reads tRP from ``RPpb``, LPDDR5 tRCD
            from ``RCD_S``); tRFC comes from the refresh mode.
        refresh_command: the command key of the all-bank refresh the traffic model books
            every tREFI (DDR3/DDR4 ``refa``, the others ``refab``).
        burst_cycles: ``memspec -> clock cycles of one RD/WR burst`` (default BL/DR;
            LPDDR5 BL/(DR*WCK:CK)), the data-bus time the traffic and latency models charge.
        lead_domain: the domain whose voltage an operating point's ``vdd_v`` names (default:
            the first domain that scales with VDD: DDR's VDD, LPDDR4's VDD2, LPDDR5's VDD2H).
        notes: how the standard maps onto eden's partition model (one line each).
        model: the pinned model the equations replicate (``"DRAMPower v6.2.0"``).
        trace_commands: DRAMPower command names a command trace of this standard may hold
            (``eden.power.trace``; empty: no trace support).
        precharge_offsets: ``memspec -> (RD, WR)`` cycles from an RDA/WRA to its implicit
            precharge (DRAMPower's prechargeOffsetRD/WR), for command traces.
    """

    name: str
    description: str
    domains: tuple[Domain, ...]
    currents: tuple[Current, ...]
    refresh_modes: Mapping[int, RefreshMode]
    commands: tuple[tuple[str, str], ...]
    background_states: tuple[tuple[str, str], ...]
    command_energies: Callable[[Any], Mapping[str, PerDomainValues]]
    background_powers: Callable[[Any], Mapping[str, PerDomainValues]]
    active_standby_power: Callable[[Any, int], PerDomainValues]
    derived_currents: Callable[[Any, str], Mapping[str, float]]
    reported_as_null: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    timing_json: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: {"ras": ("RAS",), "rp": ("RP",), "rcd": ("RCD",), "refi": ("REFI",)})
    refresh_command: str = "refa"
    burst_cycles: Callable[[Any], float] | None = None
    lead_domain: str | None = None
    notes: tuple[str, ...] = ()
    model: str = ""
    trace_commands: tuple[str, ...] = ()
    precharge_offsets: Callable[[Any], tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        names = [d.name for d in self.domains]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"Standard {self.name!r}: domains must be non-empty and unique, got {names}")
        if 1 not in self.refresh_modes:
            raise ValueError(f"Standard {self.name!r}: refresh mode 1 (the profiles' mode) must be declared")
        if self.lead_domain is not None and self.lead_domain not in names:
            raise ValueError(f"Standard {self.name!r}: lead_domain {self.lead_domain!r} is not one of {names}")
        if self.lead_domain is None and not any(d.scales_with_vdd for d in self.domains):
            raise ValueError(f"Standard {self.name!r}: no domain scales with VDD; name a lead_domain")
        keys = [p.key for p in self.params]
        if len(set(keys)) != len(keys):
            raise ValueError(f"Standard {self.name!r}: parameter keys must be unique, got {keys}")

    @property
    def lead(self) -> Domain:
        """The domain an operating point's ``vdd_v`` sets (see ``lead_domain``)."""
        name = self.lead_domain or next(d.name for d in self.domains if d.scales_with_vdd)
        return next(d for d in self.domains if d.name == name)

    @property
    def lead_index(self) -> int:
        return self.domain_names.index(self.lead.name)

    def currents_of(self, domain: Domain) -> tuple[Current, ...]:
        """The currents ``domain`` carries."""
        return domain.carried(self.currents)

    def param(self, key: str) -> Param:
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    @property
    def domain_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)

    def domain_of_field(self, field: str) -> Domain | None:
        """The domain a ``power`` field belongs to (``vpp_v``, ``ipp0_ma``, ``ibeta_vpp_ma`` -> VPP), else None."""
        for d in self.domains:
            if field == d.voltage_field or (self.currents_of(d) and field in (
                    d.beta_field, *(d.current_field(c) for c in self.currents_of(d)))):
                return d
        return None

    def fields(self) -> tuple[Field, ...]:
        """The ``power`` section of a DRAM profile of this standard, in file order."""
        out = list(COMMON_FIELDS)
        for d in self.domains:
            out.append(Field(d.voltage_field, "V", f"nominal {d.name}"))
            for c in self.currents_of(d):
                out.append(Field(d.current_field(c), "mA", f"{d.prefix.upper()}{c.suffix.upper()} {c.meaning} "
                                 f"current{' (optional: commands needing it are not reported)' if c.optional else ''}",
                                 required=not c.optional, lo_open=not d.currents_may_be_zero))
        for d in self.domains:
            if not self.currents_of(d):
                continue
            out.append(Field(d.beta_field, "mA", f"DRAMPower iBeta_{d.name.lower()} (optional, default "
                             f"{d.current_field(self.currents[0])})", required=False,
                             lo_open=not d.currents_may_be_zero))
        out.append(FACT_RHO)
        out.extend(p.as_field() for p in self.params if p.section == "power")
        return tuple(out)

    def field_table(self) -> dict[str, tuple[str, ...]]:
        """``{"required": names, "optional": names}`` of the flat fields ``MemSpec.from_fields`` reads.

        The ``power`` fields plus :data:`TIMING_FIELDS` and an optional ``name``.
        """
        required = [f.name for f in self.fields() if f.required]
        optional = ["name"] + [f.name for f in self.fields() if not f.required]
        # timing fields after the power fields, optional ones with the optional group
        required += [f.name for f in TIMING_FIELDS if f.required]
        optional += [f.name for f in TIMING_FIELDS if not f.required]
        optional += [p.field for p in self.params if p.section == "timing"]
        return {"required": tuple(required), "optional": tuple(optional)}
