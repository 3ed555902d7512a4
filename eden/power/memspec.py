"""DRAM core power model: one device's memspec under a registered DRAM standard.

A :class:`MemSpec` is one device's core memspec (per-device currents per voltage domain, voltages
and timings, DRAMPower's variables) for a standard of :mod:`eden.dram.standards`. From it,
:func:`command_energies` gives the energy of each of the standard's commands per voltage domain and
:func:`background_powers` its standby, power-down and self-refresh powers, both **per device** and
with the standard's own equations (DDR4: DRAMPower 5's ``core_calculation_DDR4.cpp``, written out in
``eden/dram/standards/ddr4.py``; DDR3: the same over the VDD domain alone). No tRCD term appears in
any energy: tRCD only changes *time* (see ``eden.power.traffic``). Rank totals are the per-device
values times ``devices``.

Reduced VDD (:meth:`MemSpec.at_vdd`): every current of a domain the standard scales with VDD
(DDR4/DDR3: VDD; ``iBeta`` included) follows ``IDD(V) = IDD_nominal * (V / V_nominal) ** alpha``
(default ``alpha = 1``: currents proportional to VDD, that domain's energy ~ V^2; ``alpha = 0``:
currents fixed, energy ~ V). The other domains (DDR4's VPP) are unchanged. Every result carries the
law as a ``law`` string.

Two constructors:

* :meth:`MemSpec.from_drampower_json`: DRAMPower/DRAMSys JSON
  (``memarchitecturespec``, ``mempowerspec``, ``memtimingspec``,
  ``bankwisespec``; currents in A, ``tCK`` in s, other timings in cycles).
* :meth:`MemSpec.from_fields`: eden's flat DRAM-profile fields with units in the
  names (the standard's ``field_table()``; :data:`FIELDS_DDR4`, :data:`FIELDS_DDR3` are DDR4's
  and DDR3's, kept for callers that used them): currents in mA, voltages in
  V, timings in ns. ``tck_ns`` becomes ``tCK = tck_ns / 1e9`` s; every other
  timing becomes whole clock cycles by :func:`ns_to_cycles`: minimum delays
  (``tras_ns, trp_ns, trcd_ns, trfc1_ns``) round **up**,
  ``ceil(t/tCK - 0.025)``; ``trefi_ns`` (a maximum average interval) rounds
  **down**, ``floor(t/tCK + 0.025)``. The 0.025-cycle guard band absorbs
  floating-point noise and the 2-3 decimals datasheets print, so 32 ns, 13.32
  ns, 13.328 ns and 260 ns at tCK 0.833 ns give RAS 39, RP 16, RP 16, RFC1 313.

Example:
    >>> spec = MemSpec.from_fields(fields, source="dram_profiles/x.json")  # doctest: +SKIP
    >>> e = command_energies(spec.at_vdd(1.05))                              # doctest: +SKIP
    >>> e.act.total, e.law                                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eden.core.validate import Mode, check_int, check_number, did_you_mean
from eden.dram import standards
from eden.dram.standards.base import TIMING_FIELDS, Standard
from eden.errors import EdenConfigError, EdenTypeError

__all__ = [
    "FIELDS_DDR4", "FIELDS_DDR3", "Rounding", "ns_to_cycles",
    "VoltageDomain", "MemSpec", "PerDomain", "DerivedCurrents",
    "CommandEnergies", "BackgroundPowers",
    "command_energies", "background_powers", "active_standby_power",
]

GUARD_BAND_CYCLES = 0.025
"""Fraction of a clock cycle tolerated when converting ns to cycles (see :func:`ns_to_cycles`)."""


class Rounding(Mode):
    """How :func:`ns_to_cycles` rounds: up for minimum delays, down for maximum intervals."""

    UP = "up"
    DOWN = "down"


def ns_to_cycles(t_ns: float, tck_ns: float, *, rounding: Rounding = Rounding.UP) -> int:
    """Whole clock cycles of a timing given in ns.

    Args:
        t_ns: the timing [ns], >= 0.
        tck_ns: clock period [ns], > 0.
        rounding: ``"up"`` for minimum delays (tRAS, tRP, tRCD, tRFC):
            ``ceil(t/tCK - 0.025)``; ``"down"`` for maximum intervals (tREFI):
            ``floor(t/tCK + 0.025)``. The 0.025-cycle guard band absorbs
            floating-point noise and datasheet rounding.

    Returns:
        The number of cycles (int).

    Example:
        >>> ns_to_cycles(13.32, 0.833), ns_to_cycles(32.0, 0.833), ns_to_cycles(3898.44, 0.833, rounding="down")
        (16, 39, 4680)
    """
    t_ns = check_number("ns_to_cycles: t_ns", t_ns)
    tck_ns = check_number("ns_to_cycles: tck_ns", tck_ns)
    if tck_ns <= 0:
        raise EdenConfigError(f"ns_to_cycles: tck_ns must be > 0, got {tck_ns!r}")
    if t_ns < 0:
        raise EdenConfigError(f"ns_to_cycles: t_ns must be >= 0, got {t_ns!r}")
    rounding = Rounding.coerce(rounding, "rounding")
    ratio = t_ns / tck_ns
    if rounding is Rounding.UP:
        return max(0, math.ceil(ratio - GUARD_BAND_CYCLES))
    return math.floor(ratio + GUARD_BAND_CYCLES)


# ----------------------------------------------------------------------------- memspec
@dataclasses.dataclass(frozen=True)
class VoltageDomain:
    """Voltage and per-device currents of one supply domain (DRAMPower's ``iXX*``).

    The current names are the standard's (``eden.dram.standards``); for DDR3/DDR4:
    ``i0`` (IXX0, one-bank ACT-PRE), ``i2n`` (precharged standby), ``i3n``
    (active standby, DRAMPower's ``I_B``), ``i4r``/``i4w`` (burst read/write),
    ``i5x`` (burst refresh of the refresh mode), ``i2p``/``i3p`` (power-down),
    ``i6n`` (self-refresh), and ``ibeta`` (I_beta of ACT/PRE; defaults to ``i0``).
    Each is readable as an attribute (``domain.i0``).

    Attributes:
        name: the domain (``"VDD"``, ``"VPP"``, ...).
        v: supply voltage [V], > 0.
        currents: ``((name, A), ...)``, every current >= 0 A (a mapping is accepted).
    """

    name: str
    v: float
    currents: tuple[tuple[str, float | None], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise EdenTypeError(f"VoltageDomain.name must be a non-empty string, got {self.name!r}")
        owner = f"VoltageDomain[{self.name}]"
        object.__setattr__(self, "v", check_number(f"{owner}.v", self.v))
        if self.v <= 0:
            raise EdenConfigError(f"{owner}.v must be > 0 V, got {self.v!r}")
        items = self.currents.items() if isinstance(self.currents, Mapping) else self.currents
        currents = []
        for key, value in items:
            if value is not None:  # None: an optional current the source does not give
                value = check_number(f"{owner}.{key}", value)
                if value < 0:
                    raise EdenConfigError(f"{owner}.{key} must be >= 0 A, got {value!r}")
            currents.append((str(key), value))
        object.__setattr__(self, "currents", tuple(currents))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        for name, value in object.__getattribute__(self, "currents"):
            if name == key:
                return value
        raise AttributeError(f"VoltageDomain[{self.name}] has no current {key!r}")

    def replace(self, **changes: float) -> VoltageDomain:
        """This domain with some currents (or ``v``) changed, checked again."""
        v = changes.pop("v", self.v)
        unknown = [k for k in changes if k not in dict(self.currents)]
        if unknown:
            raise EdenConfigError(f"VoltageDomain[{self.name}] has no current {unknown[0]!r}"
                                  f"{did_you_mean(unknown[0], dict(self.currents))}")
        return VoltageDomain(self.name, v, tuple((k, changes.get(k, x)) for k, x in self.currents))

    def scaled(self, v: float, alpha: float) -> VoltageDomain:
        """This domain at voltage ``v`` with every current times ``(v / self.v) ** alpha``."""
        factor = (v / self.v) ** alpha
        return VoltageDomain(self.name, v, tuple((k, None if x is None else x * factor) for k, x in self.currents))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "v": self.v, **dict(self.currents)}


@dataclasses.dataclass(frozen=True)
class DerivedCurrents:
    """DRAMPower's derived currents of one domain [A] (power-model.md section 3)."""

    i_rho: float
    i_1: float
    i_theta: float


@dataclasses.dataclass(frozen=True)
class MemSpec:
    """One DRAM device's core memspec under a registered standard (``eden.dram.standards``).

    All currents and energies are per device; a rank has ``devices`` devices.

    Attributes:
        standard: a registered standard name (``"DDR4"``, ``"DDR3"``).
        banks: banks per device (B).
        burst_length: BL.
        data_rate: DR (2 for DDR).
        tck_s: clock period [s].
        ras, rp, rcd, rfc: tRAS, tRP, tRCD, tRFC (of the chosen refresh mode) [cycles].
        refi: tREFI [cycles], or None when the memspec does not give it (the
            core model never reads it; the traffic model needs it for refresh).
        domains: the standard's supply domains at the operating voltage, in
            its order (DDR4: VDD, VPP; DDR3: VDD).
        fact_rho: DRAMPower's ``factRho`` (bank-wise share of active standby), in [0, 1].
        devices: devices per rank (``nbrOfDevices``).
        ranks: ranks (``nbrOfRanks``).
        refresh_mode: the standard's refresh mode (DDR4 ``RefMode`` 1, 2 or 4)
            that chose ``i5x``/``rfc``.
        name: memspec id.
        nominal_domains: the nominal domains when this memspec was scaled by
            :meth:`at_vdd`, else None.
        alpha: exponent of the VDD law when scaled, else None.
        params: the standard's own parameters (``Standard.params``: DDR5 ``bank_groups``
            and ``rfcsb``, LPDDR ``rfcpb``, LPDDR5 ``wck2ck``, ...) as ``((key, value), ...)``
            in its order; each also reads as an attribute (``spec.rfcsb``).
        source: where the memspec came from (file or description); not compared.
    """

    standard: str
    banks: int
    burst_length: int
    data_rate: int
    tck_s: float
    ras: int
    rp: int
    rcd: int
    rfc: int
    refi: int | None
    domains: tuple[VoltageDomain, ...]
    fact_rho: float = 1.0
    devices: int = 1
    ranks: int = 1
    refresh_mode: int = 1
    name: str = ""
    nominal_domains: tuple[VoltageDomain, ...] | None = None
    alpha: float | None = None
    params: tuple[tuple[str, Any], ...] = ()
    source: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        std = standards.get(self.standard)
        for name in ("banks", "burst_length", "data_rate", "ras", "rp", "rfc", "devices", "ranks"):
            object.__setattr__(self, name, check_int(f"MemSpec.{name}", getattr(self, name), lo=1))
        # tRCD enters no energy; DRAMPower's LPDDR5 test memspec has RCD_S = 0
        object.__setattr__(self, "rcd", check_int("MemSpec.rcd", self.rcd, lo=0))
        params = dict(self.params.items() if isinstance(self.params, Mapping) else self.params)
        want = [p.key for p in std.params]
        if sorted(params) != sorted(want):
            raise EdenConfigError(f"MemSpec.params: {std.name} has the parameters {', '.join(want) or 'none'}, "
                                  f"got {', '.join(params) or 'none'}")
        object.__setattr__(self, "params", tuple((k, params[k]) for k in want))
        object.__setattr__(self, "refi", check_int("MemSpec.refi", self.refi, lo=1, optional=True))
        if self.refresh_mode not in std.refresh_modes:
            raise EdenConfigError(f"MemSpec.refresh_mode must be one of {', '.join(map(str, std.refresh_modes))} "
                                  f"for {std.name}, got {self.refresh_mode!r}")
        object.__setattr__(self, "tck_s", check_number("MemSpec.tck_s", self.tck_s))
        if self.tck_s <= 0:
            raise EdenConfigError(f"MemSpec.tck_s must be > 0 s, got {self.tck_s!r}")
        object.__setattr__(self, "fact_rho", check_number("MemSpec.fact_rho", self.fact_rho, lo=0.0, hi=1.0))
        object.__setattr__(self, "domains", self._checked_domains("domains", self.domains, std))
        if (self.nominal_domains is None) != (self.alpha is None):
            raise EdenConfigError("MemSpec.nominal_domains and MemSpec.alpha are set together (by at_vdd), got "
                                  f"nominal_domains={self.nominal_domains!r}, alpha={self.alpha!r}")
        if self.alpha is not None:
            object.__setattr__(self, "nominal_domains",
                               self._checked_domains("nominal_domains", self.nominal_domains, std))
            object.__setattr__(self, "alpha", check_number("MemSpec.alpha", self.alpha, lo=0.0))

    @staticmethod
    def _checked_domains(label: str, domains: Any, std: Standard) -> tuple[VoltageDomain, ...]:
        """``domains`` as a tuple that has exactly the standard's domains and currents, in its order."""
        domains = tuple(domains) if isinstance(domains, (tuple, list)) else domains
        want = std.domain_names
        if (not isinstance(domains, tuple) or not all(isinstance(d, VoltageDomain) for d in domains)
                or tuple(d.name for d in domains) != want):
            found = ([getattr(d, "name", type(d).__name__) for d in domains] if isinstance(domains, tuple)
                     else type(domains).__name__)
            raise EdenTypeError(f"MemSpec.{label} must be VoltageDomains named {', '.join(want)} for {std.name}, "
                                f"got {found}")
        for d, decl in zip(domains, std.domains, strict=True):
            carried = std.currents_of(decl)
            keys = tuple(c.key for c in carried) + (("ibeta",) if carried else ())
            if tuple(k for k, _ in d.currents) != keys:
                raise EdenConfigError(f"MemSpec.{label}: {std.name} domain {d.name} carries the currents "
                                      f"{', '.join(keys)}, got {', '.join(k for k, _ in d.currents)}")
        return domains

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key in ("params", "standard"):
            raise AttributeError(key)
        for name, value in object.__getattribute__(self, "params"):
            if name == key:
                return value
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def param(self, key: str) -> Any:
        """The standard's parameter ``key`` (``Standard.params``)."""
        for name, value in self.params:
            if name == key:
                return value
        raise EdenConfigError(f"{self.standard} memspec has no parameter {key!r}; known: "
                              f"{', '.join(n for n, _ in self.params) or 'none'}")

    # ------------------------------------------------------------------ derived
    @property
    def burst_time_s(self) -> float:
        """Data-bus time of one RD/WR burst [s]: BL/DR clocks, or the standard's rule (LPDDR5: WCK)."""
        std = self.spec
        if std.burst_cycles is None:
            return (float(self.burst_length) / self.data_rate) * self.tck_s
        return std.burst_cycles(self) * self.tck_s

    @property
    def spec(self) -> Standard:
        """The registered standard this memspec follows."""
        return standards.get(self.standard)

    @property
    def tck_ns(self) -> float:
        return self.tck_s * 1e9

    @property
    def vdd(self) -> VoltageDomain:
        """The domain :meth:`at_vdd` sets: the standard's lead domain (VDD for DDR, VDD2 for LPDDR4, ...)."""
        return self.domains[self.spec.lead_index]

    @property
    def vpp(self) -> VoltageDomain | None:
        """The VPP domain, None when the standard has none (DDR3)."""
        return next((d for d in self.domains if d.name == "VPP"), None)

    @property
    def vdd_nominal(self) -> VoltageDomain | None:
        """The nominal lead domain when scaled by :meth:`at_vdd`, else None."""
        return None if self.nominal_domains is None else self.nominal_domains[self.spec.lead_index]

    @property
    def nominal_vdd_v(self) -> float:
        return (self.vdd_nominal or self.vdd).v

    @property
    def law(self) -> str:
        """The VDD law this memspec is evaluated under, as one line of text."""
        std = self.spec
        scaling = [d.name for d in std.domains if d.scales_with_vdd]
        fixed = "".join(f"; {d.name} {d.v:g} V unchanged" for d, decl in zip(self.domains, std.domains, strict=True)
                        if not decl.scales_with_vdd)
        lead = self.vdd.name
        if self.alpha is None:
            return (f"nominal {lead} {self.vdd.v:g} V (reduced {lead} would follow IDD(V) = IDD_nominal * "
                    f"(V / {self.vdd.v:g} V) ** alpha){fixed}")
        nominal_domain = self.vdd_nominal
        assert nominal_domain is not None  # __post_init__: alpha and nominal_domains are set together
        nominal = nominal_domain.v
        betas = ", ".join(f"iBeta_{n.lower()}" for n in scaling)
        return (f"{lead} {self.vdd.v:g} V from nominal {nominal:g} V: IDD(V) = IDD_nominal * "
                f"(V / {nominal:g} V) ** {self.alpha:g} for every {' and '.join(scaling)} current incl. {betas}, "
                f"so {'/'.join(scaling)}-domain energy ~ V ** {1 + self.alpha:g}{fixed}; no tRCD term in any energy")

    def domain(self, name: str) -> VoltageDomain:
        """The domain ``name`` (case-insensitive)."""
        key = str(name).upper()
        for d in self.domains:
            if d.name == key:
                return d
        known = [d.name for d in self.domains]
        raise EdenConfigError(f"{self.standard} memspec has no domain {name!r}; known: {', '.join(known)}"
                              f"{did_you_mean(key, known)}")

    def derived_currents(self, domain: str = "VDD") -> DerivedCurrents:
        """DRAMPower's I_rho, I_1 and I_theta of ``domain`` (``"VDD"``, ``"VPP"``, ...) [A]."""
        return DerivedCurrents(**self.spec.derived_currents(self, self.domain(domain).name))

    # ------------------------------------------------------------------ operating point
    def at_vdd(self, vdd_v: float, alpha: float = 1.0) -> MemSpec:
        """This memspec at a reduced (or raised) VDD.

        The lead domain (``Standard.lead``: VDD for DDR, VDD2 for LPDDR4, VDD2H for LPDDR5) is
        set to ``vdd_v``; every other domain the
        standard declares as scaling with VDD moves by the same ratio; the
        currents of each scaled domain (``iBeta`` included) become
        ``I_nominal * (V / V_nominal) ** alpha``. Other domains (DDR4's VPP)
        and all timings are unchanged. Scaling always starts from the nominal
        currents, so ``spec.at_vdd(1.1).at_vdd(1.05) == spec.at_vdd(1.05)``.

        Args:
            vdd_v: operating VDD [V], > 0.
            alpha: current exponent, >= 0 (1: IDD ~ VDD, energy ~ V^2; 0: IDD fixed).

        Returns:
            The scaled MemSpec (``nominal_domains`` and ``alpha`` record the law).
        """
        vdd_v = check_number("MemSpec.at_vdd: vdd_v", vdd_v)
        alpha = check_number("MemSpec.at_vdd: alpha", alpha)
        if vdd_v <= 0:
            raise EdenConfigError(f"MemSpec.at_vdd: vdd_v must be > 0 V, got {vdd_v!r}")
        if alpha < 0:
            raise EdenConfigError(f"MemSpec.at_vdd: alpha must be >= 0, got {alpha!r}")
        nominal = self.nominal_domains or self.domains
        lead = self.spec.lead_index
        ratio = vdd_v / nominal[lead].v
        scaled = tuple(d if not decl.scales_with_vdd else d.scaled(vdd_v if i == lead else d.v * ratio, alpha)
                       for i, (d, decl) in enumerate(zip(nominal, self.spec.domains, strict=True)))
        return dataclasses.replace(self, domains=scaled, nominal_domains=nominal, alpha=alpha)

    def nominal(self) -> MemSpec:
        """This memspec at its nominal VDD (itself when not scaled)."""
        if self.nominal_domains is None:
            return self
        return dataclasses.replace(self, domains=self.nominal_domains, nominal_domains=None, alpha=None)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (currents in A, tCK in s, timings in cycles)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("domains", "nominal_domains"):
            out[key] = None if out[key] is None else [d.to_dict() for d in out[key]]
        out["law"] = self.law
        return out

    def to_fields(self) -> dict[str, Any]:
        """The memspec as eden's flat profile fields (inverse of :meth:`from_fields`).

        Currents in mA (A * 1000), timings in ns (cycles * tck_ns); converting
        back gives the same cycles and currents to within a rounding error.
        Only nominal memspecs (not scaled by :meth:`at_vdd`) can be written.
        """
        if self.alpha is not None:
            raise EdenConfigError("MemSpec.to_fields: scaled memspecs have no profile form; "
                                  "use .nominal().to_fields()")
        if self.refresh_mode != 1:
            raise EdenConfigError(f"MemSpec.to_fields: profiles describe refresh mode 1, this memspec uses "
                                  f"{self.refresh_mode}")

        def clean(x: float) -> float:  # drop the float noise of unit conversion (0.8330000000000001)
            return float(f"{x:.15g}")

        std = self.spec
        tck_ns = clean(self.tck_s * 1e9)
        out: dict[str, Any] = {"standard": self.standard, "name": self.name, "nbr_of_banks": self.banks,
                               "nbr_of_devices": self.devices, "nbr_of_ranks": self.ranks,
                               "burst_length": self.burst_length, "data_rate": self.data_rate}
        for decl, dom in zip(std.domains, self.domains, strict=True):
            out[decl.voltage_field] = dom.v
            for c in std.currents_of(decl):
                if getattr(dom, c.key) is not None:
                    out[decl.current_field(c)] = clean(getattr(dom, c.key) * 1000.0)
            if std.currents_of(decl):
                out[decl.beta_field] = clean(dom.ibeta * 1000.0)
        out["fact_rho"] = self.fact_rho
        for p in std.params:
            value = self.param(p.key)
            out[p.field] = clean(value * tck_ns) if p.kind == "cycles" else value
        out["tck_ns"] = tck_ns
        for key, attr in _FIELD_TIMINGS:
            out[key] = clean(getattr(self, attr) * tck_ns)
        if self.refi is not None:
            out["trefi_ns"] = clean(self.refi * tck_ns)
        return out

    def describe(self) -> str:
        lines = [f"{self.name or 'memspec'} ({self.standard}, {self.banks} banks, {self.devices} devices/rank, "
                 f"tCK {self.tck_s * 1e9:.6g} ns, RAS {self.ras} RP {self.rp} RCD {self.rcd} RFC {self.rfc} "
                 f"REFI {self.refi}, rho {self.fact_rho:g})", f"law: {self.law}"]
        if self.params:
            lines.append("  " + ", ".join(f"{k} {v}" for k, v in self.params))
        for d in self.domains:
            lines.append(f"  {d.name} {d.v:g} V: " + ", ".join(
                f"{n} {'n/a' if x is None else f'{x * 1e3:.6g} mA'}" for n, x in d.currents))
        return "\n".join(lines)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_drampower_json(cls, spec: Mapping[str, Any] | str | os.PathLike,
                            *, source: str | None = None) -> MemSpec:
        """Read a DRAMPower / DRAMSys JSON memspec of a registered standard (DDR4, DDR3).

        Args:
            spec: the parsed JSON (with or without the outer ``"memspec"`` key)
                or the path of a JSON file.
            source: name for error messages (defaults to the path, or ``"<memspec dict>"``).

        Returns:
            The MemSpec at the file's (nominal) VDD.

        Raises:
            EdenConfigError: a field the core model reads is missing (the message
                names the section, the field, the file and close misspellings)
                or has a bad value; unknown ``memoryType``.
            EdenFileNotFoundError: the path does not exist.

        Fields read (section 2 of power-model.md): ``memoryId``, ``memoryType``
        (the standard); ``memarchitecturespec``: ``nbrOfBanks, nbrOfDevices``
        (values < 1 are raised to 1, as DRAMPower does), ``nbrOfRanks``
        (default 1), ``burstLength, dataRate, RefMode`` (when the standard has
        several refresh modes; others count as mode 1, as DRAMPower does);
        ``mempowerspec``: per domain its voltage (``vdd``, ``vpp``) and
        currents (``idd0 ... idd6n``, ``ipp0 ...``; the refresh current by
        refresh mode, ``idd5B|idd5F2|idd5F4``), optional ``iBeta_vdd`` /
        ``iBeta_vpp`` (default the domain's ``0`` current); ``memtimingspec``:
        ``tCK, RAS, RP, RCD`` and the mode's tRFC (``RFC1|RFC2|RFC4``),
        optional ``REFI`` (0 = absent); ``bankwisespec.factRho`` (default 1).
        The standard module lists alternative names (DDR3: ``idd5``, ``idd6``,
        ``idd2p1``/``idd3p1``, ``RFC``).
        """
        if isinstance(spec, (str, os.PathLike)):
            path = Path(os.fspath(spec))
            source = source or str(path)
            try:
                with open(path, encoding="utf-8") as fh:
                    spec = json.load(fh)
            except FileNotFoundError:
                from eden.errors import EdenFileNotFoundError

                raise EdenFileNotFoundError(f"memspec file {source!r} not found") from None
            except json.JSONDecodeError as exc:
                raise EdenConfigError(f"{source}: not valid JSON ({exc})") from None
        source = source or "<memspec dict>"
        if not isinstance(spec, Mapping):
            raise EdenTypeError(f"{source}: a memspec must be a JSON object, got {type(spec).__name__}")
        root = spec.get("memspec", spec)
        if not isinstance(root, Mapping):
            raise EdenTypeError(f"{source}: 'memspec' must be a JSON object, got {type(root).__name__}")
        return _from_json(root, source)

    @classmethod
    def from_profile(cls, profile: Any) -> MemSpec:
        """The memspec of a DRAM profile (``eden.dram.profiles.DramProfile``) at its nominal VDD.

        The profile's ``power`` section was checked against the same standard's
        field list when it was loaded; its ``timing`` section gives the timings.
        """
        return cls.from_fields(profile.memspec_fields(), source=str(profile.path or profile.name))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], source: str = "<fields>", *,
                    strict: bool = False) -> MemSpec:
        """Build a MemSpec from eden's flat, unit-suffixed DRAM-profile fields.

        Args:
            fields: mapping with the names of the standard's field table
                (``eden.dram.standards.get(standard).field_table()``;
                :data:`FIELDS_DDR4`, :data:`FIELDS_DDR3`), the standard chosen
                by ``standard``. Currents in mA, voltages in V, timings in ns
                (see the module docstring for the ns -> cycles rule). ``None``
                values count as absent.
            source: where the fields came from (file name), quoted in errors.
            strict: reject every key that is not a memspec field. When false
                (profiles carry other keys too), only keys that look like a
                misspelling of an absent memspec field, or that belong to
                another standard, are rejected.

        Returns:
            The MemSpec at the nominal VDD.

        Raises:
            EdenConfigError: unknown standard, missing required fields (all
                listed, with "did you mean" for misspelled keys), fields of
                another standard (``vpp_v``/``ipp*`` on DDR3), or bad values.
            EdenTypeError: a non-numeric value.
        """
        return _from_fields(fields, source, strict)


# ----------------------------------------------------------------------------- field tables
_FIELD_TIMINGS = (("tras_ns", "ras"), ("trp_ns", "rp"), ("trcd_ns", "rcd"), ("trfc1_ns", "rfc"))
"""Timing fields -> MemSpec cycle attributes (minimum delays, rounded up)."""

FIELDS_DDR4: dict[str, tuple[str, ...]] = standards.get("DDR4").field_table()
"""Exact field names :meth:`MemSpec.from_fields` reads for DDR4 (the standard's field table)."""
FIELDS_DDR3: dict[str, tuple[str, ...]] = standards.get("DDR3").field_table()
"""Exact field names :meth:`MemSpec.from_fields` reads for DDR3 (no VPP)."""


def _field_docs(std: Standard) -> dict[str, str]:
    docs = {"name": "memspec id (optional)"}
    for f in (*std.fields(), *TIMING_FIELDS):
        docs[f.name] = f"{f.doc} [{f.unit}]" if f.unit else f.doc
    return docs


def _from_fields(fields: Mapping[str, Any], source: str, strict: bool) -> MemSpec:
    if not isinstance(fields, Mapping):
        raise EdenTypeError(f"{source}: memspec fields must be a mapping, got {type(fields).__name__}")
    present = {k: v for k, v in fields.items() if v is not None}
    standard = present.get("standard")
    if standard is None:
        raise EdenConfigError(f"{source}: missing field 'standard' (memory standard, one of "
                              f"{', '.join(standards.names())})"
                              f"{did_you_mean('standard', [k for k in present if isinstance(k, str)], cutoff=0.75)}")
    try:
        std = standards.get(standard)
    except EdenConfigError as exc:
        raise EdenConfigError(f"{source}: field 'standard': {exc}") from None
    table = std.field_table()
    docs = _field_docs(std)
    known = set(table["required"]) | set(table["optional"])
    unknown = [k for k in present if k not in known]
    problems = []
    others = {f.name: name for name in standards.names() if name != std.name  # other standards' power fields
              for f in standards.get(name).fields() if f.name not in known}
    foreign = [k for k in unknown if k in others]
    if foreign:
        lacking = sorted({d.name for k in foreign if (d := standards.get(others[k]).domain_of_field(k)) is not None
                          and d.name not in std.domain_names})
        what = f"no {', '.join(lacking)} domain" if lacking else "no such fields"
        problems.append(f"{std.name} has {what}; remove {', '.join(repr(k) for k in foreign)}")
    unknown = [k for k in unknown if k not in others]
    missing = [k for k in table["required"] if k not in present]
    absent = [k for k in (*table["required"], *table["optional"]) if k not in present]
    for key in unknown:
        hint = did_you_mean(str(key).lower(), absent if not strict else known, n=2, cutoff=0.75)
        if strict or hint:
            problems.append(f"unknown field {key!r}{hint}")
    for key in missing:
        problems.append(f"missing field {key!r} ({docs[key]})")
    if problems:
        raise EdenConfigError(f"{source}: bad {std.name} memspec fields: " + "; ".join(problems))

    bounds = {f.name: f for f in std.fields()}

    def num(key: str) -> float:
        return check_number(f"{source}: field {key!r}", present[key])

    def bounded(key: str) -> float:
        """A power field within the standard's bounds (``> 0`` or ``>= 0``, ``<= hi``)."""
        f = bounds[key]
        assert f.lo is not None  # every power field of a standard has a lower bound
        value = num(key)
        low_bad = value < f.lo or (f.lo_open and value == f.lo)
        if low_bad or (f.hi is not None and value > f.hi):
            span = (f"in [{f.lo:g}, {f.hi:g}]" if f.hi is not None
                    else f"{'>' if f.lo_open else '>='} {f.lo:g}{' ' + f.unit if f.unit else ''}")
            raise EdenConfigError(f"{source}: field {key!r} must be {span}, got {present[key]!r}")
        return value

    def integer(key: str) -> int:
        return check_int(f"{source}: field {key!r}", present[key], lo=1)

    tck_ns = num("tck_ns")
    if tck_ns <= 0:
        raise EdenConfigError(f"{source}: field 'tck_ns' must be > 0, got {present['tck_ns']!r}")
    cycles = {}
    for key, attr in _FIELD_TIMINGS:
        t = num(key)
        if t <= 0:
            raise EdenConfigError(f"{source}: field {key!r} must be > 0 ns, got {present[key]!r}")
        cycles[attr] = ns_to_cycles(t, tck_ns, rounding=Rounding.UP)
        if cycles[attr] < 1:
            raise EdenConfigError(f"{source}: field {key!r} = {t} ns is less than one clock ({tck_ns} ns)")
    refi = None
    if "trefi_ns" in present:
        t = num("trefi_ns")
        refi = ns_to_cycles(t, tck_ns, rounding=Rounding.DOWN) if t > 0 else 0
        if refi < 1:
            raise EdenConfigError(f"{source}: field 'trefi_ns' must be at least one clock, "
                                  f"got {present['trefi_ns']!r}")

    domains = []
    for decl in std.domains:
        carried = std.currents_of(decl)
        if not carried:
            domains.append(VoltageDomain(decl.name, bounded(decl.voltage_field), ()))
            continue
        # mA -> A: exact operands, one correctly rounded result
        currents: list[tuple[str, float | None]] = [
            (c.key, bounded(decl.current_field(c)) / 1000.0 if decl.current_field(c) in present else None)
            for c in carried]
        beta = bounded(decl.beta_field) / 1000.0 if decl.beta_field in present else currents[0][1]
        domains.append(VoltageDomain(decl.name, bounded(decl.voltage_field), (*currents, ("ibeta", beta))))

    params = []
    for p in std.params:
        if p.field not in present:
            value = p.default  # fields() made it required when it has no default
        elif p.kind == "cycles":
            t = num(p.field)
            if t <= 0:
                raise EdenConfigError(f"{source}: field {p.field!r} must be > 0 ns, got {present[p.field]!r}")
            value = max(1, ns_to_cycles(t, tck_ns, rounding=Rounding.UP))
        elif p.kind == "bool":
            value = present[p.field]
            if not isinstance(value, bool):
                raise EdenTypeError(f"{source}: field {p.field!r} must be true or false, got {value!r}")
        else:
            value = _param_value(p, present[p.field], f"{source}: field {p.field!r}")
        params.append((p.key, value))

    name = present.get("name", "")
    if not isinstance(name, str):
        raise EdenTypeError(f"{source}: field 'name' must be a string, got {name!r}")
    try:
        return MemSpec(
            standard=std.name, banks=integer("nbr_of_banks"), burst_length=integer("burst_length"),
            data_rate=integer("data_rate"), tck_s=tck_ns / 1e9, refi=refi, domains=tuple(domains),
            fact_rho=bounded("fact_rho") if "fact_rho" in present else 1.0,
            devices=integer("nbr_of_devices"), ranks=integer("nbr_of_ranks"),
            name=name, source=source, ras=cycles["ras"], rp=cycles["rp"], rcd=cycles["rcd"], rfc=cycles["rfc"],
            params=tuple(params))
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise EdenConfigError(f"{source}: {exc}") from None


def _json_keys_read(std: Standard) -> frozenset[str]:
    """JSON names the loader reads for ``std``; a missing field's "did you mean" never suggests one."""
    keys = {"nbrOfBanks", "nbrOfDevices", "nbrOfRanks", "burstLength", "dataRate", "RefMode", "tCK", "factRho"}
    for names in std.timing_json.values():
        keys.update(names)
    for p in std.params:
        keys.update(j.split(".", 1)[1] for j in p.json)
    for mode in std.refresh_modes.values():
        keys.update(mode.rfc_json)
    for d in std.domains:
        keys.update((d.json_voltage, d.json_beta))
        for c in std.currents_of(d):
            suffixes = c.json or tuple(s for m in std.refresh_modes.values() for s in m.current_json)
            keys.update(d.current_json(s) for s in suffixes)
    return frozenset(keys)


def _from_json(root: Mapping[str, Any], source: str) -> MemSpec:
    def section(name: str, required: bool = True) -> Mapping[str, Any]:
        value = root.get(name)
        if value is None:
            if not required:
                return {}
            raise EdenConfigError(f"{source}: missing section {name!r}{did_you_mean(name, list(root), cutoff=0.75)}")
        if not isinstance(value, Mapping):
            raise EdenTypeError(f"{source}: section {name!r} must be a JSON object, got {type(value).__name__}")
        return value

    def get(sec_name: str, sec: Mapping[str, Any], keys: Iterable[str], meaning: str,
            default: Any = None, required: bool = True) -> tuple[str, Any]:
        """(label, value) of the first of ``keys`` present in ``sec``."""
        keys = tuple(keys)
        for key in keys:
            if sec.get(key) is not None:
                return f"{source}: {sec_name}.{key}", sec[key]
        if not required:
            return f"{source}: {sec_name}.{keys[0]}", default
        alts = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        candidates = [k for k in sec if isinstance(k, str) and k not in read]
        raise EdenConfigError(f"{source}: missing field '{sec_name}.{keys[0]}'{alts}: {meaning}"
                              f"{did_you_mean(keys[0], candidates, n=2, cutoff=0.75)}")

    def num(sec_name: str, sec: Mapping[str, Any], keys: Iterable[str], meaning: str) -> float:
        return check_number(*get(sec_name, sec, keys, meaning))

    def integer(sec_name: str, sec: Mapping[str, Any], keys: Iterable[str], meaning: str,
                minimum: int | None = 1, **kw) -> int:
        return check_int(*get(sec_name, sec, keys, meaning, **kw), lo=minimum)

    standard = root.get("memoryType")
    if standard is None:
        raise EdenConfigError(f"{source}: missing field 'memoryType' (the standard: "
                              f"{', '.join(standards.names())})"
                              f"{did_you_mean('memoryType', list(root), cutoff=0.75)}")
    try:
        std = standards.get(standard)
    except EdenConfigError as exc:
        raise EdenConfigError(f"{source}: memoryType: {exc}") from None
    read = _json_keys_read(std)
    arch, power, timing = section("memarchitecturespec"), section("mempowerspec"), section("memtimingspec")
    bankwise = section("bankwisespec", required=False)

    ref_mode = 1
    if len(std.refresh_modes) > 1:
        _, ref_mode = get("memarchitecturespec", arch, ("RefMode",), "refresh mode", default=1, required=False)
        ref_mode = ref_mode if isinstance(ref_mode, int) and not isinstance(ref_mode, bool) else 1
        ref_mode = ref_mode if ref_mode in std.refresh_modes else 1  # DRAMPower: anything else is mode 1
    mode = std.refresh_modes[ref_mode]

    def domain(decl) -> VoltageDomain:
        currents: list[tuple[str, float | None]] = []
        if not std.currents_of(decl):
            v = num("mempowerspec", power, (decl.json_voltage,), f"{decl.name} supply voltage [V]")
            return VoltageDomain(decl.name, v, ())
        for c in std.currents_of(decl):
            keys = [decl.current_json(s) for s in (c.json or mode.current_json)]
            value = num("mempowerspec", power, keys, f"{decl.prefix.upper()}{c.suffix.upper()} current [A]")
            if value < 0:
                raise EdenConfigError(f"{source}: mempowerspec.{keys[0]} must be >= 0 A, got {value!r}")
            currents.append((c.key, value))
        raw_beta = power.get(decl.json_beta)
        beta = (currents[0][1] if raw_beta is None
                else check_number(f"{source}: mempowerspec.{decl.json_beta}", raw_beta))
        assert beta is not None  # JSON currents are all given (checked above)
        if beta < 0:
            raise EdenConfigError(f"{source}: mempowerspec.{decl.json_beta} must be >= 0 A, got {beta!r}")
        v = num("mempowerspec", power, (decl.json_voltage,), f"{decl.name} supply voltage [V]")
        try:
            return VoltageDomain(decl.name, v, (*currents, ("ibeta", beta)))
        except ValueError as exc:
            raise EdenConfigError(f"{source}: {exc}") from None

    domains = tuple(domain(decl) for decl in std.domains)
    a = "memarchitecturespec"
    banks = integer(a, arch, ("nbrOfBanks",), "banks per device")
    devices = integer(a, arch, ("nbrOfDevices",), "devices per rank", minimum=None)
    ranks = integer(a, arch, ("nbrOfRanks",), "ranks", default=1, required=False)
    bl = integer(a, arch, ("burstLength",), "burst length")
    dr = integer(a, arch, ("dataRate",), "data rate")
    tck = num("memtimingspec", timing, ("tCK",), "clock period [s]")
    refi = integer("memtimingspec", timing, std.timing_json["refi"], "refresh interval [cycles]", minimum=0,
                   default=0, required=False) or None
    rho = bankwise.get("factRho")
    rho = 1.0 if rho is None else check_number(f"{source}: bankwisespec.factRho", rho)
    t = "memtimingspec"
    names = std.timing_json
    params = []
    sections = {"memarchitecturespec": arch, "memtimingspec": timing, "mempowerspec": power,
                "bankwisespec": bankwise}
    for p in std.params:
        value: Any = None
        label = f"{source}: {p.json[0] if p.json else p.field}"
        for loc in p.json:
            sec_name, key = loc.split(".", 1)
            if sections[sec_name].get(key) is not None:
                value, label = sections[sec_name][key], f"{source}: {loc}"
                break
        if value is None:
            if p.default is None:
                alts = f" (or {', '.join(repr(j) for j in p.json[1:])})" if len(p.json) > 1 else ""
                raise EdenConfigError(f"{source}: missing field '{p.json[0]}'{alts}: {p.doc}")
            value = p.default
        params.append((p.key, _param_value(p, value, label)))
    try:
        return MemSpec(
            standard=std.name, banks=banks, burst_length=bl, data_rate=dr, tck_s=tck,
            ras=integer(t, timing, names["ras"], "tRAS [cycles]"), rp=integer(t, timing, names["rp"], "tRP [cycles]"),
            rcd=integer(t, timing, names["rcd"], "tRCD [cycles]", minimum=0),
            rfc=integer(t, timing, mode.rfc_json, "tRFC [cycles]"),
            refi=refi, domains=domains, fact_rho=rho, devices=max(devices, 1), ranks=ranks,
            refresh_mode=ref_mode, name=str(root.get("memoryId", "")), params=tuple(params), source=source)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise EdenConfigError(f"{source}: {exc}") from None


def _param_value(p: Any, value: Any, label: str) -> Any:
    """A standard parameter's value from a JSON memspec (cycles, ints, floats, bools), checked."""
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise EdenTypeError(f"{label} must be true or false, got {value!r}")
        return value
    if p.kind in ("cycles", "int"):
        return check_int(label, value, lo=None if p.lo is None else math.ceil(p.lo))
    return check_number(label, value, lo=-math.inf if p.lo is None else p.lo)


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class PerDomain:
    """A quantity split by supply domain (J or W), keyed by domain name.

    ``values`` is ``((domain, value), ...)`` in the standard's order; a value of
    None marks a domain the standard lacks but its reports list (DDR3's VPP,
    ``Standard.reported_as_null``). ``q["VDD"]``, ``q.vdd`` and ``q.vpp`` read
    one domain (``vpp`` is None when absent); ``total`` sums the present ones.
    """

    values: tuple[tuple[str, float | None], ...]

    def __post_init__(self) -> None:
        items = self.values.items() if isinstance(self.values, Mapping) else self.values
        object.__setattr__(self, "values", tuple((str(k), v) for k, v in items))

    def __getitem__(self, domain: str) -> float | None:
        for name, value in self.values:
            if name == domain:
                return value
        raise KeyError(domain)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.values)

    @property
    def vdd(self) -> float:
        value = self["VDD"]
        assert value is not None  # every standard has a VDD domain
        return value

    @property
    def vpp(self) -> float | None:
        return dict(self.values).get("VPP")

    @property
    def total(self) -> float:
        present = [v for _, v in self.values if v is not None]
        total = present[0]
        for v in present[1:]:
            total = total + v
        return total

    def scaled(self, k: float) -> PerDomain:
        return PerDomain(tuple((n, None if v is None else v * k) for n, v in self.values))

    def __add__(self, other: PerDomain) -> PerDomain:
        if not isinstance(other, PerDomain):
            return NotImplemented
        if [(n, v is None) for n, v in self.values] != [(n, v is None) for n, v in other.values]:
            raise EdenConfigError(f"cannot add quantities of different domains: {self.names} and {other.names}")
        return PerDomain(tuple((n, None if a is None or b is None else a + b)  # both or neither, checked above
                               for (n, a), (_, b) in zip(self.values, other.values, strict=True)))

    def zero(self) -> PerDomain:
        """A quantity of the same domains, 0 in each present one."""
        return PerDomain(tuple((n, None if v is None else 0.0) for n, v in self.values))

    def to_dict(self) -> dict[str, float | None]:
        return {**{n.lower(): v for n, v in self.values}, "total": self.total}


def _per_domain(memspec: MemSpec, values: Mapping[str, float]) -> PerDomain:
    """A standard's ``{domain: value}`` as a :class:`PerDomain` (null for ``reported_as_null``)."""
    std = memspec.spec
    return PerDomain((*((d, values[d]) for d in std.domain_names), *((d, None) for d in std.reported_as_null)))


def _table(rows: list[tuple[str, PerDomain]], scale: float, unit: str) -> list[str]:
    names = rows[0][1].names
    out = [f"  {'':<26}" + "".join(f"{n:>16}" for n in names) + f"{'total':>16}  [{unit}]"]
    for label, q in rows:
        cells = "".join(f"{'-' if v is None else f'{v * scale:.10g}':>16}" for _, v in q.values)
        out.append(f"  {label:<26}{cells}{q.total * scale:>16.10g}")
    return out


class _Rows:
    """Named per-domain rows of a standard (commands or background states), readable as attributes."""

    _KIND = ""

    def __init__(self, rows: tuple[tuple[str, str, PerDomain], ...], law: str, memspec: str = "") -> None:
        self.rows = rows
        self.law = law
        self.memspec = memspec

    def __getattr__(self, key: str) -> PerDomain:
        if key.startswith("_") or key in ("rows", "law", "memspec"):
            raise AttributeError(key)
        for name, _, value in self.rows:
            if name == key:
                return value
        raise AttributeError(f"{type(self).__name__} has no {self._KIND} {key!r}; known: "
                             f"{', '.join(n for n, _, _ in self.rows)}")

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and (self.rows, self.law, self.memspec)
                == (other.rows, other.law, other.memspec))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, _, v in self.rows)}, law={self.law!r})"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.rows)


class CommandEnergies(_Rows):
    """Energy of each command of the standard per device [J], per domain.

    One :class:`PerDomain` per command key of the standard, readable as an
    attribute. DDR3/DDR4 (``eden.dram.standards.ddr4``): ``act`` E_ACT =
    V*(I_theta - I_1)*t_RAS; ``pre`` E_PRE = V*(I_beta - I_2N)*t_RP; ``rd``
    E_RD = V*(I_4R - I_3N)*(BL/DR)*tCK; ``wr`` E_WR = V*(I_4W - I_3N)*(BL//DR)*tCK
    (integer division, as DRAMPower); ``refa`` E_REFA = V*(I_5X - I_3N)*t_RFC
    (the increment over the active-standby background DRAMPower also books);
    ``refresh_window`` V*I_5X*t_RFC. ``law`` is the memspec's VDD law.
    """

    _KIND = "command"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": "J per command per device", "memspec": self.memspec, "law": self.law}
        out.update({key: q.to_dict() for key, _, q in self.rows})
        return out

    def describe(self) -> str:
        return "\n".join([f"per-command core energy per device ({self.memspec})", f"law: {self.law}",
                          *_table([(label, q) for _, label, q in self.rows], 1e12, "pJ")])


class BackgroundPowers(_Rows):
    """Background power of each state of the standard per device [W], per domain.

    DDR3/DDR4: ``precharged_standby`` V*I_2N; ``active_standby_one_bank``
    V*(I_rho + (I_3N - I_rho)/B); ``active_standby_all_banks`` V*I_3N;
    ``power_down_active`` V*I_3P; ``power_down_precharged`` V*I_2P;
    ``self_refresh`` V*I_6N.
    """

    _KIND = "background state"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": "W per device", "memspec": self.memspec, "law": self.law}
        out.update({key: q.to_dict() for key, _, q in self.rows})
        return out

    def describe(self) -> str:
        return "\n".join([f"background power per device ({self.memspec})", f"law: {self.law}",
                          *_table([(label, q) for _, label, q in self.rows], 1e3, "mW")])


def command_energies(memspec: MemSpec) -> CommandEnergies:
    """Per-command core energies of one device [J], per domain, by the memspec's standard.

    Args:
        memspec: the device, at its operating VDD (see :meth:`MemSpec.at_vdd`).

    Returns:
        :class:`CommandEnergies`; multiply by ``memspec.devices`` for a rank.

    Example:
        >>> e = command_energies(spec)          # doctest: +SKIP
        >>> round(e.act.total * 1e12, 6)        # 4Gb DDR4-2400 memspec  # doctest: +SKIP
        981.919575
    """
    if not isinstance(memspec, MemSpec):
        raise EdenTypeError(f"command_energies: memspec must be a MemSpec, got {type(memspec).__name__}")
    std = memspec.spec
    values = std.command_energies(memspec)  # a command whose optional currents are absent is left out
    return CommandEnergies(tuple((key, label, _per_domain(memspec, values[key])) for key, label in std.commands
                                 if key in values), law=memspec.law, memspec=memspec.name)


def active_standby_power(memspec: MemSpec, open_banks: int) -> PerDomain:
    """Active-standby power of one device with ``open_banks`` of B banks open [W].

    DDR3/DDR4: ``V*(I_rho + n*(I_3N - I_rho)/B)`` per domain; equals ``V*I_3N``
    when ``n = B`` or ``fact_rho = 1``. ``open_banks = 0`` is precharged
    standby (``V*I_2N``), as DRAMPower books a rank with no open bank.
    """
    n = check_int("active_standby_power: open_banks", open_banks, lo=0)
    if n > memspec.banks:
        raise EdenConfigError(f"active_standby_power: open_banks must be <= {memspec.banks} banks, got {n}")
    return _per_domain(memspec, memspec.spec.active_standby_power(memspec, n))


def background_powers(memspec: MemSpec) -> BackgroundPowers:
    """Background powers of one device [W], per domain, by the memspec's standard.

    Args:
        memspec: the device, at its operating VDD.

    Returns:
        :class:`BackgroundPowers`; multiply by ``memspec.devices`` for a rank.
    """
    if not isinstance(memspec, MemSpec):
        raise EdenTypeError(f"background_powers: memspec must be a MemSpec, got {type(memspec).__name__}")
    std = memspec.spec
    values = std.background_powers(memspec)
    return BackgroundPowers(tuple((key, label, _per_domain(memspec, values[key]))
                                  for key, label in std.background_states if key in values),
                            law=memspec.law, memspec=memspec.name)


def device_summary(memspec: MemSpec) -> dict[str, Any]:
    """Per-command energies [pJ] and background powers [mW] of one device, in total and per domain.

    The layout ``eden power --json`` prints: ``standard``, ``model`` (the pinned equations),
    ``energy_pJ`` (command name -> per-device total: ``ACT, PRE, RD, WR, REFab``, and
    ``REFsb``/``REFpb``/``REFp2b`` where the standard has them), ``power_mW`` (state name ->
    per-device total: ``P_PRE_STBY, P_ACT_STBY_1, P_ACT_STBY_ALL``, ``P_PDN_ACT, P_PDN_PRE,
    P_SREF``, ``P_DSM``), ``by_domain`` (the same per voltage domain), ``not_available`` (names the
    memspec cannot give, with why), ``devices`` (per rank) and ``law``.
    """
    from eden.dram.standards.base import REPORT_NAMES

    std = memspec.spec
    e, b = command_energies(memspec), background_powers(memspec)
    out: dict[str, Any] = {"standard": std.name, "model": std.model, "memspec": memspec.name,
                           "source": memspec.source, "devices": memspec.devices, "ranks": memspec.ranks,
                           "law": memspec.law, "energy_pJ": {}, "power_mW": {},
                           "by_domain": {"energy_pJ": {}, "power_mW": {}}, "not_available": {}}
    for rows, all_keys, unit, scale in ((e, std.commands, "energy_pJ", 1e12), (b, std.background_states,
                                                                               "power_mW", 1e3)):
        present = set(rows.keys)
        for key, label in all_keys:
            name = REPORT_NAMES.get(key, key)
            if key not in present:
                out["not_available"][name] = (f"{label}: a current it needs is not given"
                                              if key not in ("refpb", "refp2b") or memspec.refi is not None
                                              else f"{label}: needs tREFI (IDD5PB is averaged over tREFI/8)")
                continue
            q = getattr(rows, key)
            out[unit][name] = q.total * scale
            out["by_domain"][unit][name] = {d: None if v is None else v * scale for d, v in q.values}
    if "pseudo_channels" in dict(memspec.params):
        out["per"] = "pseudo-channel"
        out["pseudo_channels_per_stack"] = memspec.pseudo_channels
    else:
        out["per"] = "device"
    return out
