"""DRAM core power model: DRAMPower 5's DDR4 equations, DDR3 as the VDD domain alone.

A :class:`MemSpec` is one device's core memspec (per-device currents, voltages
and timings, DRAMPower's variables). From it, :func:`command_energies` gives the
energy of each command (ACT, PRE, RD, WR, REFA) per voltage domain and
:func:`background_powers` the standby, power-down and self-refresh powers, both
**per device** and exactly as DRAMPower 5 computes them
(``core_calculation_DDR4.cpp``; specified in ``/work/shared/power-model.md``):

    t_RAS = RAS*tCK,  t_RP = RP*tCK,  t_RFC = RFC*tCK
    I_rho   = rho*(I_3N - I_2N) + I_2N
    I_theta = (I_0*(t_RP + t_RAS) - I_beta*t_RP) * (1/t_RAS)
    I_1     = (1.0/B) * (I_3N + (B - 1)*I_rho)
    E_ACT  = V*(I_theta - I_1)*t_RAS        E_PRE = V*(I_beta - I_2N)*t_RP
    E_RD   = V*(I_4R - I_3N)*(BL/DR)*tCK    E_WR  = V*(I_4W - I_3N)*(BL//DR)*tCK
    E_REFA = V*(I_5X - I_3N)*t_RFC          (the increment over active standby)
    P_precharged = V*I_2N,  P_active(n open) = V*(I_rho + n*(I_3N - I_rho)/B)

summed over the VDD and VPP domains (DDR3 has no VPP; its domain is ``None``).
No tRCD term appears in any energy: tRCD only changes *time* (see
``eden.power.traffic``). Rank totals are the per-device values times ``devices``.

Reduced VDD (:meth:`MemSpec.at_vdd`): every VDD-domain current, ``iBeta_vdd``
included, follows ``IDD(V) = IDD_nominal * (V / V_nominal) ** alpha``
(default ``alpha = 1``: currents proportional to VDD, VDD-domain energy ~ V^2;
``alpha = 0``: currents fixed, energy ~ V). VPP is unchanged. Every result
carries the law as a ``law`` string.

Two constructors:

* :meth:`MemSpec.from_drampower_json`: DRAMPower/DRAMSys JSON
  (``memarchitecturespec``, ``mempowerspec``, ``memtimingspec``,
  ``bankwisespec``; currents in A, ``tCK`` in s, other timings in cycles).
* :meth:`MemSpec.from_fields`: eden's flat DRAM-profile fields with units in the
  names (:data:`FIELDS_DDR4`, :data:`FIELDS_DDR3`): currents in mA, voltages in
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
import difflib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "STANDARDS", "FIELDS_DDR4", "FIELDS_DDR3", "ns_to_cycles",
    "VoltageDomain", "MemSpec", "PerDomain", "DerivedCurrents",
    "CommandEnergies", "BackgroundPowers",
    "command_energies", "background_powers", "active_standby_power",
]

STANDARDS = ("DDR4", "DDR3")
GUARD_BAND_CYCLES = 0.025
"""Fraction of a clock cycle tolerated when converting ns to cycles (see :func:`ns_to_cycles`)."""

_CURRENTS = ("i0", "i2n", "i3n", "i4r", "i4w", "i5x", "i2p", "i3p", "i6n", "ibeta")


# ----------------------------------------------------------------------------- helpers
def _number(label: str, value: Any) -> float:
    """``value`` as a finite float; errors name ``label`` (e.g. ``"MemSpec.tck_s"``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{label} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{label} must be finite, got {value!r}")
    return value


def _integer(label: str, value: Any, minimum: int | None = 1) -> int:
    """``value`` as an int >= ``minimum`` (None: no bound); errors name ``label``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{label} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{label} must be >= {minimum}, got {value!r}")
    return int(value)


def _did_you_mean(key: str, candidates) -> str:
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=2, cutoff=0.75)
    return f"; did you mean {' or '.join(repr(lowered[c]) for c in close)}?" if close else ""


def ns_to_cycles(t_ns: float, tck_ns: float, *, rounding: str = "up") -> int:
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
    t_ns = _number("ns_to_cycles: t_ns", t_ns)
    tck_ns = _number("ns_to_cycles: tck_ns", tck_ns)
    if tck_ns <= 0:
        raise ValueError(f"ns_to_cycles: tck_ns must be > 0, got {tck_ns!r}")
    if t_ns < 0:
        raise ValueError(f"ns_to_cycles: t_ns must be >= 0, got {t_ns!r}")
    ratio = t_ns / tck_ns
    if rounding == "up":
        return max(0, math.ceil(ratio - GUARD_BAND_CYCLES))
    if rounding == "down":
        return math.floor(ratio + GUARD_BAND_CYCLES)
    raise ValueError(f"ns_to_cycles: rounding must be 'up' or 'down', got {rounding!r}")


# ----------------------------------------------------------------------------- memspec
@dataclasses.dataclass(frozen=True)
class VoltageDomain:
    """Voltage and per-device currents of one supply domain (DRAMPower's ``iXX*``).

    Attributes:
        name: ``"VDD"`` or ``"VPP"``.
        v: supply voltage [V], > 0.
        i0: IXX0, one bank ACT-PRE cycling [A].
        i2n: IXX2N, precharged standby [A].
        i3n: IXX3N, active standby [A] (DRAMPower's ``I_B``).
        i4r: IXX4R, burst read [A].
        i4w: IXX4W, burst write [A].
        i5x: IXX5B (or 5F2/5F4, per refresh mode), burst refresh [A].
        i2p: IXX2P, precharged power-down [A].
        i3p: IXX3P, active power-down [A].
        i6n: IXX6N, self-refresh [A].
        ibeta: I_beta of ACT/PRE [A]; DRAMPower defaults it to ``i0``.
    """

    name: str
    v: float
    i0: float
    i2n: float
    i3n: float
    i4r: float
    i4w: float
    i5x: float
    i2p: float
    i3p: float
    i6n: float
    ibeta: float

    def __post_init__(self) -> None:
        if self.name not in ("VDD", "VPP"):
            raise ValueError(f"VoltageDomain.name must be 'VDD' or 'VPP', got {self.name!r}")
        owner = f"VoltageDomain[{self.name}]"
        object.__setattr__(self, "v", _number(f"{owner}.v", self.v))
        if self.v <= 0:
            raise ValueError(f"{owner}.v must be > 0 V, got {self.v!r}")
        for name in _CURRENTS:
            value = _number(f"{owner}.{name}", getattr(self, name))
            if value < 0:
                raise ValueError(f"{owner}.{name} must be >= 0 A, got {value!r}")
            object.__setattr__(self, name, value)

    def scaled(self, v: float, alpha: float) -> "VoltageDomain":
        """This domain at voltage ``v`` with every current times ``(v / self.v) ** alpha``."""
        factor = (v / self.v) ** alpha
        return dataclasses.replace(self, v=v, **{n: getattr(self, n) * factor for n in _CURRENTS})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DerivedCurrents:
    """DRAMPower's derived currents of one domain [A] (power-model.md section 3)."""

    i_rho: float
    i_1: float
    i_theta: float


@dataclasses.dataclass(frozen=True)
class MemSpec:
    """One DRAM device's core memspec (DDR4: VDD and VPP; DDR3: VDD only).

    All currents and energies are per device; a rank has ``devices`` devices.

    Attributes:
        standard: ``"DDR4"`` or ``"DDR3"``.
        banks: banks per device (B).
        burst_length: BL.
        data_rate: DR (2 for DDR).
        tck_s: clock period [s].
        ras, rp, rcd, rfc: tRAS, tRP, tRCD, tRFC (of the chosen refresh mode) [cycles].
        refi: tREFI [cycles], or None when the memspec does not give it (the
            core model never reads it; the traffic model needs it for refresh).
        vdd: the VDD domain at the operating voltage.
        vpp: the VPP domain (DDR4), None for DDR3.
        fact_rho: DRAMPower's ``factRho`` (bank-wise share of active standby), in [0, 1].
        devices: devices per rank (``nbrOfDevices``).
        ranks: ranks (``nbrOfRanks``).
        refresh_mode: DDR4 ``RefMode`` (1, 2 or 4) that chose ``i5x``/``rfc``.
        name: memspec id.
        vdd_nominal: the nominal VDD domain when this memspec was scaled by
            :meth:`at_vdd`, else None.
        alpha: exponent of the VDD law when scaled, else None.
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
    vdd: VoltageDomain
    vpp: VoltageDomain | None
    fact_rho: float = 1.0
    devices: int = 1
    ranks: int = 1
    refresh_mode: int = 1
    name: str = ""
    vdd_nominal: VoltageDomain | None = None
    alpha: float | None = None
    source: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.standard not in STANDARDS:
            raise ValueError(f"MemSpec.standard must be one of {', '.join(STANDARDS)}, got {self.standard!r}")
        for name in ("banks", "burst_length", "data_rate", "ras", "rp", "rcd", "rfc", "devices", "ranks"):
            object.__setattr__(self, name, _integer(f"MemSpec.{name}", getattr(self, name)))
        if self.refi is not None:
            object.__setattr__(self, "refi", _integer("MemSpec.refi", self.refi))
        if self.refresh_mode not in (1, 2, 4):
            raise ValueError(f"MemSpec.refresh_mode must be 1, 2 or 4, got {self.refresh_mode!r}")
        object.__setattr__(self, "tck_s", _number("MemSpec.tck_s", self.tck_s))
        if self.tck_s <= 0:
            raise ValueError(f"MemSpec.tck_s must be > 0 s, got {self.tck_s!r}")
        rho = _number("MemSpec.fact_rho", self.fact_rho)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"MemSpec.fact_rho must be in [0, 1], got {self.fact_rho!r}")
        object.__setattr__(self, "fact_rho", rho)
        if not isinstance(self.vdd, VoltageDomain) or self.vdd.name != "VDD":
            raise TypeError(f"MemSpec.vdd must be a VoltageDomain named 'VDD', got {self.vdd!r}")
        if self.standard == "DDR4":
            if not isinstance(self.vpp, VoltageDomain) or self.vpp.name != "VPP":
                raise TypeError(f"MemSpec.vpp must be a VoltageDomain named 'VPP' for DDR4, got {self.vpp!r}")
        elif self.vpp is not None:
            raise ValueError(f"MemSpec.vpp must be None for {self.standard} (no VPP domain), got {self.vpp!r}")
        if (self.vdd_nominal is None) != (self.alpha is None):
            raise ValueError("MemSpec.vdd_nominal and MemSpec.alpha are set together (by at_vdd), got "
                             f"vdd_nominal={self.vdd_nominal!r}, alpha={self.alpha!r}")
        if self.alpha is not None:
            if not isinstance(self.vdd_nominal, VoltageDomain) or self.vdd_nominal.name != "VDD":
                raise TypeError(f"MemSpec.vdd_nominal must be a VoltageDomain named 'VDD', got {self.vdd_nominal!r}")
            alpha = _number("MemSpec.alpha", self.alpha)
            if alpha < 0:
                raise ValueError(f"MemSpec.alpha must be >= 0, got {self.alpha!r}")
            object.__setattr__(self, "alpha", alpha)

    # ------------------------------------------------------------------ derived
    @property
    def tck_ns(self) -> float:
        return self.tck_s * 1e9

    @property
    def domains(self) -> tuple[VoltageDomain, ...]:
        """The supply domains: (VDD, VPP) for DDR4, (VDD,) for DDR3."""
        return (self.vdd,) if self.vpp is None else (self.vdd, self.vpp)

    @property
    def nominal_vdd_v(self) -> float:
        return (self.vdd_nominal or self.vdd).v

    @property
    def law(self) -> str:
        """The VDD law this memspec is evaluated under, as one line of text."""
        vpp = "" if self.vpp is None else f"; VPP {self.vpp.v:g} V unchanged"
        if self.alpha is None:
            return (f"nominal VDD {self.vdd.v:g} V (reduced VDD would follow IDD(V) = IDD_nominal * "
                    f"(V / {self.vdd.v:g} V) ** alpha){vpp}")
        return (f"VDD {self.vdd.v:g} V from nominal {self.vdd_nominal.v:g} V: IDD(V) = IDD_nominal * "
                f"(V / {self.vdd_nominal.v:g} V) ** {self.alpha:g} for every VDD current incl. iBeta_vdd, "
                f"so VDD-domain energy ~ V ** {1 + self.alpha:g}{vpp}; no tRCD term in any energy")

    def derived_currents(self, domain: str = "VDD") -> DerivedCurrents:
        """DRAMPower's I_rho, I_1 and I_theta of ``domain`` ("VDD" or "VPP") [A]."""
        d = self._domain(domain)
        t_ras, t_rp = self.ras * self.tck_s, self.rp * self.tck_s
        rho, b = self.fact_rho, self.banks
        i_rho = rho * (d.i3n - d.i2n) + d.i2n
        i_theta = (d.i0 * (t_rp + t_ras) - d.ibeta * t_rp) * (1 / t_ras)
        i_1 = (1.0 / b) * (d.i3n + (b - 1) * (rho * (d.i3n - d.i2n) + d.i2n))
        return DerivedCurrents(i_rho=i_rho, i_1=i_1, i_theta=i_theta)

    def _domain(self, domain: str) -> VoltageDomain:
        key = str(domain).upper()
        if key == "VDD":
            return self.vdd
        if key == "VPP" and self.vpp is not None:
            return self.vpp
        known = ", ".join(d.name for d in self.domains)
        raise ValueError(f"{self.standard} memspec has no domain {domain!r}; known: {known}")

    # ------------------------------------------------------------------ operating point
    def at_vdd(self, vdd_v: float, alpha: float = 1.0) -> "MemSpec":
        """This memspec at a reduced (or raised) VDD.

        Every VDD-domain current (``idd*`` and ``iBeta_vdd``) becomes
        ``I_nominal * (vdd_v / V_nominal) ** alpha``; VPP and all timings are
        unchanged. Scaling always starts from the nominal currents, so
        ``spec.at_vdd(1.1).at_vdd(1.05) == spec.at_vdd(1.05)``.

        Args:
            vdd_v: operating VDD [V], > 0.
            alpha: current exponent, >= 0 (1: IDD ~ VDD, energy ~ V^2; 0: IDD fixed).

        Returns:
            The scaled MemSpec (``vdd_nominal`` and ``alpha`` record the law).
        """
        vdd_v = _number("MemSpec.at_vdd: vdd_v", vdd_v)
        alpha = _number("MemSpec.at_vdd: alpha", alpha)
        if vdd_v <= 0:
            raise ValueError(f"MemSpec.at_vdd: vdd_v must be > 0 V, got {vdd_v!r}")
        if alpha < 0:
            raise ValueError(f"MemSpec.at_vdd: alpha must be >= 0, got {alpha!r}")
        nominal = self.vdd_nominal or self.vdd
        return dataclasses.replace(self, vdd=nominal.scaled(vdd_v, alpha), vdd_nominal=nominal, alpha=alpha)

    def nominal(self) -> "MemSpec":
        """This memspec at its nominal VDD (itself when not scaled)."""
        if self.vdd_nominal is None:
            return self
        return dataclasses.replace(self, vdd=self.vdd_nominal, vdd_nominal=None, alpha=None)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (currents in A, tCK in s, timings in cycles)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("vdd", "vpp", "vdd_nominal"):
            out[key] = None if out[key] is None else out[key].to_dict()
        out["law"] = self.law
        return out

    def to_fields(self) -> dict[str, Any]:
        """The memspec as eden's flat profile fields (inverse of :meth:`from_fields`).

        Currents in mA (A * 1000), timings in ns (cycles * tck_ns); converting
        back gives the same cycles and currents to within a rounding error.
        Only nominal memspecs (not scaled by :meth:`at_vdd`) can be written.
        """
        if self.alpha is not None:
            raise ValueError("MemSpec.to_fields: scaled memspecs have no profile form; use .nominal().to_fields()")
        if self.refresh_mode != 1:
            raise ValueError(f"MemSpec.to_fields: profiles describe refresh mode 1, this memspec uses "
                             f"{self.refresh_mode}")
        def clean(x: float) -> float:  # drop the float noise of unit conversion (0.8330000000000001)
            return float(f"{x:.15g}")

        tck_ns = clean(self.tck_s * 1e9)
        out: dict[str, Any] = {"standard": self.standard, "name": self.name, "nbr_of_banks": self.banks,
                               "nbr_of_devices": self.devices, "nbr_of_ranks": self.ranks,
                               "burst_length": self.burst_length, "data_rate": self.data_rate}
        for prefix, dom in (("idd", self.vdd), ("ipp", self.vpp)):
            if dom is None:
                continue
            out["vdd_v" if prefix == "idd" else "vpp_v"] = dom.v
            for suffix, attr in _FIELD_CURRENTS:
                out[f"{prefix}{suffix}_ma"] = clean(getattr(dom, attr) * 1000.0)
            out[f"ibeta_{dom.name.lower()}_ma"] = clean(dom.ibeta * 1000.0)
        out["fact_rho"] = self.fact_rho
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
        for d in self.domains:
            lines.append(f"  {d.name} {d.v:g} V: " + ", ".join(
                f"{n} {getattr(d, n) * 1e3:.6g} mA" for n in _CURRENTS))
        return "\n".join(lines)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_drampower_json(cls, spec: Mapping[str, Any] | str | os.PathLike,
                            *, source: str | None = None) -> "MemSpec":
        """Read a DRAMPower / DRAMSys JSON memspec (DDR4 or DDR3).

        Args:
            spec: the parsed JSON (with or without the outer ``"memspec"`` key)
                or the path of a JSON file.
            source: name for error messages (defaults to the path, or ``"<memspec dict>"``).

        Returns:
            The MemSpec at the file's (nominal) VDD.

        Raises:
            ValueError: a field the core model reads is missing (the message
                names the section, the field, the file and close misspellings)
                or has a bad value; unknown ``memoryType``.
            FileNotFoundError: the path does not exist.

        Fields read (section 2 of power-model.md): ``memoryId``, ``memoryType``;
        ``memarchitecturespec``: ``nbrOfBanks, nbrOfDevices`` (values < 1 are
        raised to 1, as DRAMPower does), ``nbrOfRanks`` (default 1),
        ``burstLength, dataRate, RefMode`` (DDR4, default 1); ``mempowerspec``:
        ``vdd, idd0, idd2n, idd3n, idd4r, idd4w, idd5B|idd5F2|idd5F4, idd2p,
        idd3p, idd6n``, optional ``iBeta_vdd`` (default ``idd0``), and for DDR4
        ``vpp`` and the matching ``ipp*`` and ``iBeta_vpp``; ``memtimingspec``:
        ``tCK, RAS, RP, RCD, RFC1|RFC2|RFC4``, optional ``REFI`` (0 = absent);
        ``bankwisespec.factRho`` (default 1). DDR3 files (DRAMSys) name some
        fields differently; also accepted: ``idd5`` for ``idd5B``, ``idd6`` for
        ``idd6n``, ``idd2p1``/``idd3p1`` (fast-exit power-down) for
        ``idd2p``/``idd3p``, and ``RFC`` for ``RFC1``.
        """
        if isinstance(spec, (str, os.PathLike)):
            path = Path(os.fspath(spec))
            source = source or str(path)
            try:
                with open(path, encoding="utf-8") as fh:
                    spec = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{source}: not valid JSON ({exc})") from None
        source = source or "<memspec dict>"
        if not isinstance(spec, Mapping):
            raise TypeError(f"{source}: a memspec must be a JSON object, got {type(spec).__name__}")
        root = spec.get("memspec", spec)
        if not isinstance(root, Mapping):
            raise TypeError(f"{source}: 'memspec' must be a JSON object, got {type(root).__name__}")
        return _from_json(root, source)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], source: str = "<fields>", *,
                    strict: bool = False) -> "MemSpec":
        """Build a MemSpec from eden's flat, unit-suffixed DRAM-profile fields.

        Args:
            fields: mapping with the names of :data:`FIELDS_DDR4` or
                :data:`FIELDS_DDR3` (chosen by ``standard``). Currents in mA,
                voltages in V, timings in ns (see the module docstring for the
                ns -> cycles rule). ``None`` values count as absent.
            source: where the fields came from (file name), quoted in errors.
            strict: reject every key that is not a memspec field. When false
                (profiles carry other keys too), only keys that look like a
                misspelling of an absent memspec field are rejected.

        Returns:
            The MemSpec at the nominal VDD.

        Raises:
            ValueError: missing required fields (all listed, with "did you
                mean" for misspelled keys), fields foreign to the standard
                (``vpp_v``/``ipp*`` on DDR3), or bad values.
            TypeError: a non-numeric value.
        """
        return _from_fields(fields, source, strict)


# ----------------------------------------------------------------------------- field tables
_FIELD_CURRENTS = (("0", "i0"), ("2n", "i2n"), ("3n", "i3n"), ("4r", "i4r"), ("4w", "i4w"),
                   ("5b", "i5x"), ("2p", "i2p"), ("3p", "i3p"), ("6n", "i6n"))
_FIELD_TIMINGS = (("tras_ns", "ras"), ("trp_ns", "rp"), ("trcd_ns", "rcd"), ("trfc1_ns", "rfc"))

_FIELD_DOCS: dict[str, str] = {
    "standard": "memory standard, 'DDR4' or 'DDR3'",
    "name": "memspec id (optional)",
    "nbr_of_banks": "banks per device",
    "nbr_of_devices": "devices per rank",
    "nbr_of_ranks": "ranks",
    "burst_length": "burst length BL",
    "data_rate": "data rate DR (2 for DDR)",
    "vdd_v": "VDD [V]",
    "vpp_v": "VPP [V] (DDR4)",
    "fact_rho": "DRAMPower factRho in [0, 1] (optional, default 1)",
    "tck_ns": "clock period tCK [ns]",
    "tras_ns": "tRAS [ns], rounded up to cycles",
    "trp_ns": "tRP [ns], rounded up to cycles",
    "trcd_ns": "nominal tRCD [ns], rounded up to cycles",
    "trfc1_ns": "tRFC1 [ns], rounded up to cycles",
    "trefi_ns": "tREFI [ns], rounded down to cycles (optional; needed for refresh energy)",
    "ibeta_vdd_ma": "I_beta of the VDD domain [mA] (optional, default idd0_ma)",
    "ibeta_vpp_ma": "I_beta of the VPP domain [mA] (optional, default ipp0_ma)",
}
_CURRENT_MEANING = {"0": "one-bank ACT-PRE", "2n": "precharged standby", "3n": "active standby",
                    "4r": "burst read", "4w": "burst write", "5b": "burst refresh",
                    "2p": "precharged power-down", "3p": "active power-down", "6n": "self-refresh"}
for _s, _m in _CURRENT_MEANING.items():
    _FIELD_DOCS[f"idd{_s}_ma"] = f"IDD{_s.upper()} {_m} current [mA]"
    _FIELD_DOCS[f"ipp{_s}_ma"] = f"IPP{_s.upper()} {_m} current [mA] (DDR4)"

_REQUIRED_COMMON = ("standard", "nbr_of_banks", "nbr_of_devices", "nbr_of_ranks", "burst_length",
                    "data_rate", "vdd_v", *(f"idd{s}_ma" for s, _ in _FIELD_CURRENTS),
                    "tck_ns", *(k for k, _ in _FIELD_TIMINGS))
_REQUIRED_DDR4 = ("vpp_v", *(f"ipp{s}_ma" for s, _ in _FIELD_CURRENTS))
_OPTIONAL_COMMON = ("name", "ibeta_vdd_ma", "fact_rho", "trefi_ns")
_OPTIONAL_DDR4 = ("ibeta_vpp_ma",)

FIELDS_DDR4: dict[str, tuple[str, ...]] = {
    "required": _REQUIRED_COMMON + _REQUIRED_DDR4, "optional": _OPTIONAL_COMMON + _OPTIONAL_DDR4}
"""Exact field names :meth:`MemSpec.from_fields` reads for DDR4."""
FIELDS_DDR3: dict[str, tuple[str, ...]] = {"required": _REQUIRED_COMMON, "optional": _OPTIONAL_COMMON}
"""Exact field names :meth:`MemSpec.from_fields` reads for DDR3 (no VPP)."""


def _from_fields(fields: Mapping[str, Any], source: str, strict: bool) -> MemSpec:
    if not isinstance(fields, Mapping):
        raise TypeError(f"{source}: memspec fields must be a mapping, got {type(fields).__name__}")
    present = {k: v for k, v in fields.items() if v is not None}
    standard = present.get("standard")
    if standard not in STANDARDS:
        if standard is None:
            raise ValueError(f"{source}: missing field 'standard' ({_FIELD_DOCS['standard']})"
                             f"{_did_you_mean('standard', [k for k in present if isinstance(k, str)])}")
        raise ValueError(f"{source}: field 'standard' must be one of {', '.join(STANDARDS)}, got {standard!r}")
    table = FIELDS_DDR4 if standard == "DDR4" else FIELDS_DDR3
    known = set(table["required"]) | set(table["optional"])
    unknown = [k for k in present if k not in known]
    problems = []
    if standard == "DDR3":
        foreign = [k for k in unknown if k in FIELDS_DDR4["required"] or k in FIELDS_DDR4["optional"]]
        if foreign:
            problems.append(f"DDR3 has no VPP domain; remove {', '.join(repr(k) for k in foreign)}")
        unknown = [k for k in unknown if k not in foreign]
    missing = [k for k in table["required"] if k not in present]
    absent = [k for k in (*table["required"], *table["optional"]) if k not in present]
    for key in unknown:
        hint = _did_you_mean(str(key), absent if not strict else known)
        if strict or hint:
            problems.append(f"unknown field {key!r}{hint}")
    for key in missing:
        problems.append(f"missing field {key!r} ({_FIELD_DOCS[key]})")
    if problems:
        raise ValueError(f"{source}: bad {standard} memspec fields: " + "; ".join(problems))

    def num(key: str) -> float:
        return _number(f"{source}: field {key!r}", present[key])

    def integer(key: str) -> int:
        return _integer(f"{source}: field {key!r}", present[key])

    def current(key: str) -> float:
        value = num(key)
        if value < 0:
            raise ValueError(f"{source}: field {key!r} must be >= 0 mA, got {present[key]!r}")
        return value / 1000.0  # exact operands -> one correctly rounded result

    tck_ns = num("tck_ns")
    if tck_ns <= 0:
        raise ValueError(f"{source}: field 'tck_ns' must be > 0, got {present['tck_ns']!r}")
    cycles = {}
    for key, attr in _FIELD_TIMINGS:
        t = num(key)
        if t <= 0:
            raise ValueError(f"{source}: field {key!r} must be > 0 ns, got {present[key]!r}")
        cycles[attr] = ns_to_cycles(t, tck_ns, rounding="up")
        if cycles[attr] < 1:
            raise ValueError(f"{source}: field {key!r} = {t} ns is less than one clock ({tck_ns} ns)")
    refi = None
    if "trefi_ns" in present:
        t = num("trefi_ns")
        refi = ns_to_cycles(t, tck_ns, rounding="down") if t > 0 else 0
        if refi < 1:
            raise ValueError(f"{source}: field 'trefi_ns' must be at least one clock, got {present['trefi_ns']!r}")

    def domain(prefix: str, name: str, v_key: str) -> VoltageDomain:
        currents = {attr: current(f"{prefix}{suffix}_ma") for suffix, attr in _FIELD_CURRENTS}
        beta_key = f"ibeta_{name.lower()}_ma"
        currents["ibeta"] = current(beta_key) if beta_key in present else currents["i0"]
        try:
            return VoltageDomain(name=name, v=num(v_key), **currents)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc} (field {v_key!r})") from None

    fact_rho = num("fact_rho") if "fact_rho" in present else 1.0
    name = present.get("name", "")
    if not isinstance(name, str):
        raise TypeError(f"{source}: field 'name' must be a string, got {name!r}")
    try:
        return MemSpec(
            standard=standard, banks=integer("nbr_of_banks"), burst_length=integer("burst_length"),
            data_rate=integer("data_rate"), tck_s=tck_ns / 1e9, refi=refi,
            vdd=domain("idd", "VDD", "vdd_v"),
            vpp=domain("ipp", "VPP", "vpp_v") if standard == "DDR4" else None,
            fact_rho=fact_rho, devices=integer("nbr_of_devices"), ranks=integer("nbr_of_ranks"),
            name=name, source=source, **cycles)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: {exc}") from None


_JSON_KEYS_READ = frozenset({
    "nbrOfBanks", "nbrOfDevices", "nbrOfRanks", "burstLength", "dataRate", "RefMode", "vdd", "vpp",
    *(f"{p}{s}" for p in ("idd", "ipp") for s in ("0", "2n", "3n", "4r", "4w", "5B", "5F2", "5F4", "2p", "3p", "6n")),
    "idd5", "idd6", "idd2p1", "idd3p1", "iBeta_vdd", "iBeta_vpp", "tCK", "RAS", "RP", "RCD", "RFC", "RFC1",
    "RFC2", "RFC4", "REFI", "factRho"})
"""JSON names the loader reads; a missing field's "did you mean" never suggests one of them."""


def _from_json(root: Mapping[str, Any], source: str) -> MemSpec:
    def section(name: str, required: bool = True) -> Mapping[str, Any]:
        value = root.get(name)
        if value is None:
            if not required:
                return {}
            raise ValueError(f"{source}: missing section {name!r}{_did_you_mean(name, list(root))}")
        if not isinstance(value, Mapping):
            raise TypeError(f"{source}: section {name!r} must be a JSON object, got {type(value).__name__}")
        return value

    def get(sec_name: str, sec: Mapping[str, Any], keys: tuple[str, ...], meaning: str,
            default: Any = None, required: bool = True) -> tuple[str, Any]:
        """(label, value) of the first of ``keys`` present in ``sec``."""
        for key in keys:
            if sec.get(key) is not None:
                return f"{source}: {sec_name}.{key}", sec[key]
        if not required:
            return f"{source}: {sec_name}.{keys[0]}", default
        alts = f" (or {', '.join(repr(k) for k in keys[1:])})" if len(keys) > 1 else ""
        candidates = [k for k in sec if isinstance(k, str) and k not in _JSON_KEYS_READ]
        raise ValueError(f"{source}: missing field '{sec_name}.{keys[0]}'{alts}: {meaning}"
                         f"{_did_you_mean(keys[0], candidates)}")

    def num(sec_name: str, sec: Mapping[str, Any], keys: tuple[str, ...], meaning: str) -> float:
        return _number(*get(sec_name, sec, keys, meaning))

    def integer(sec_name: str, sec: Mapping[str, Any], keys: tuple[str, ...], meaning: str,
                minimum: int | None = 1, **kw) -> int:
        return _integer(*get(sec_name, sec, keys, meaning, **kw), minimum)

    standard = root.get("memoryType")
    if standard is None:
        raise ValueError(f"{source}: missing field 'memoryType' (DDR4 or DDR3)"
                         f"{_did_you_mean('memoryType', list(root))}")
    if standard not in STANDARDS:
        raise ValueError(f"{source}: memoryType {standard!r} is not supported; known: {', '.join(STANDARDS)}")
    arch, power, timing = section("memarchitecturespec"), section("mempowerspec"), section("memtimingspec")
    bankwise = section("bankwisespec", required=False)
    ddr3 = standard == "DDR3"

    ref_mode = 1
    if not ddr3:
        _, ref_mode = get("memarchitecturespec", arch, ("RefMode",), "refresh mode", default=1, required=False)
        ref_mode = ref_mode if isinstance(ref_mode, int) and not isinstance(ref_mode, bool) else 1
        ref_mode = ref_mode if ref_mode in (2, 4) else 1  # DRAMPower: anything else is mode 1
    i5_keys = {1: ("idd5B", "idd5") if ddr3 else ("idd5B",), 2: ("idd5F2",), 4: ("idd5F4",)}[ref_mode]
    rfc_keys = {1: ("RFC1", "RFC") if ddr3 else ("RFC1",), 2: ("RFC2",), 4: ("RFC4",)}[ref_mode]

    def domain(name: str, prefix: str, v_key: str) -> VoltageDomain:
        alias = {"5x": i5_keys if prefix == "idd" else tuple("ipp" + k[3:] for k in i5_keys)}
        if ddr3:
            alias.update({"6n": ("idd6n", "idd6"), "2p": ("idd2p", "idd2p1"), "3p": ("idd3p", "idd3p1")})
        currents = {}
        for suffix in ("0", "2n", "3n", "4r", "4w", "5x", "2p", "3p", "6n"):
            keys = alias.get(suffix, (f"{prefix}{suffix}",))
            value = num("mempowerspec", power, keys, f"{prefix.upper()}{suffix.upper()} current [A]")
            if value < 0:
                raise ValueError(f"{source}: mempowerspec.{keys[0]} must be >= 0 A, got {value!r}")
            currents[f"i{suffix}"] = value
        beta_key = f"iBeta_{name.lower()}"
        beta = power.get(beta_key)
        currents["ibeta"] = currents["i0"] if beta is None else _number(f"{source}: mempowerspec.{beta_key}", beta)
        if currents["ibeta"] < 0:
            raise ValueError(f"{source}: mempowerspec.{beta_key} must be >= 0 A, got {beta!r}")
        v = num("mempowerspec", power, (v_key,), f"{name} supply voltage [V]")
        try:
            return VoltageDomain(name=name, v=v, **currents)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    vdd = domain("VDD", "idd", "vdd")
    vpp = None if ddr3 else domain("VPP", "ipp", "vpp")
    a = "memarchitecturespec"
    banks = integer(a, arch, ("nbrOfBanks",), "banks per device")
    devices = integer(a, arch, ("nbrOfDevices",), "devices per rank", minimum=None)
    ranks = integer(a, arch, ("nbrOfRanks",), "ranks", default=1, required=False)
    bl = integer(a, arch, ("burstLength",), "burst length")
    dr = integer(a, arch, ("dataRate",), "data rate")
    tck = num("memtimingspec", timing, ("tCK",), "clock period [s]")
    refi = integer("memtimingspec", timing, ("REFI",), "refresh interval [cycles]", minimum=0,
                   default=0, required=False) or None
    rho = bankwise.get("factRho")
    rho = 1.0 if rho is None else _number(f"{source}: bankwisespec.factRho", rho)
    t = "memtimingspec"
    try:
        return MemSpec(
            standard=standard, banks=banks, burst_length=bl, data_rate=dr, tck_s=tck,
            ras=integer(t, timing, ("RAS",), "tRAS [cycles]"), rp=integer(t, timing, ("RP",), "tRP [cycles]"),
            rcd=integer(t, timing, ("RCD",), "tRCD [cycles]"), rfc=integer(t, timing, rfc_keys, "tRFC [cycles]"),
            refi=refi, vdd=vdd, vpp=vpp, fact_rho=rho, devices=max(devices, 1), ranks=ranks,
            refresh_mode=ref_mode, name=str(root.get("memoryId", "")), source=source)
    except ValueError as exc:
        if str(exc).startswith(source):
            raise
        raise ValueError(f"{source}: {exc}") from None


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class PerDomain:
    """A quantity split by supply domain (J or W); ``vpp`` is None for DDR3."""

    vdd: float
    vpp: float | None

    @property
    def total(self) -> float:
        return self.vdd if self.vpp is None else self.vdd + self.vpp

    def scaled(self, k: float) -> "PerDomain":
        return PerDomain(self.vdd * k, None if self.vpp is None else self.vpp * k)

    def __add__(self, other: "PerDomain") -> "PerDomain":
        if not isinstance(other, PerDomain):
            return NotImplemented
        if (self.vpp is None) != (other.vpp is None):
            raise ValueError("cannot add a DDR3 (VDD only) and a DDR4 (VDD+VPP) quantity")
        return PerDomain(self.vdd + other.vdd, None if self.vpp is None else self.vpp + other.vpp)

    @classmethod
    def zero(cls, has_vpp: bool) -> "PerDomain":
        return cls(0.0, 0.0 if has_vpp else None)

    def to_dict(self) -> dict[str, float | None]:
        return {"vdd": self.vdd, "vpp": self.vpp, "total": self.total}


def _per_domain(spec: MemSpec, fn) -> PerDomain:
    values = [fn(d, spec.derived_currents(d.name)) for d in spec.domains]
    return PerDomain(values[0], values[1] if len(values) > 1 else None)


def _table(rows: list[tuple[str, PerDomain]], scale: float, unit: str) -> list[str]:
    out = [f"  {'':<26}{'VDD':>16}{'VPP':>16}{'total':>16}  [{unit}]"]
    for label, q in rows:
        vpp = "-" if q.vpp is None else f"{q.vpp * scale:.10g}"
        out.append(f"  {label:<26}{q.vdd * scale:>16.10g}{vpp:>16}{q.total * scale:>16.10g}")
    return out


@dataclasses.dataclass(frozen=True)
class CommandEnergies:
    """Energy of one command per device [J], per domain.

    Attributes:
        act: E_ACT = V*(I_theta - I_1)*t_RAS.
        pre: E_PRE = V*(I_beta - I_2N)*t_RP.
        rd: E_RD = V*(I_4R - I_3N)*(BL/DR)*tCK (BL/DR in floating point).
        wr: E_WR = V*(I_4W - I_3N)*(BL//DR)*tCK (integer division, as DRAMPower).
        refa: E_REFA = V*(I_5X - I_3N)*t_RFC, DRAMPower's refresh energy (the
            increment over the active-standby background it also books for t_RFC).
        refresh_window: V*I_5X*t_RFC, a refresh including that background.
        law: the VDD law of the memspec.
        memspec: the memspec's name.
    """

    act: PerDomain
    pre: PerDomain
    rd: PerDomain
    wr: PerDomain
    refa: PerDomain
    refresh_window: PerDomain
    law: str
    memspec: str = ""

    _ROWS = (("act", "ACT"), ("pre", "PRE"), ("rd", "RD"), ("wr", "WR"), ("refa", "REFA (increment)"),
             ("refresh_window", "refresh incl. background"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": "J per command per device", "memspec": self.memspec, "law": self.law}
        out.update({key: getattr(self, key).to_dict() for key, _ in self._ROWS})
        return out

    def describe(self) -> str:
        return "\n".join([f"per-command core energy per device ({self.memspec})", f"law: {self.law}",
                          *_table([(label, getattr(self, key)) for key, label in self._ROWS], 1e12, "pJ")])


@dataclasses.dataclass(frozen=True)
class BackgroundPowers:
    """Background power per device [W], per domain.

    Attributes:
        precharged_standby: all banks closed, V*I_2N.
        active_standby_one_bank: one bank open, V*(I_rho + (I_3N - I_rho)/B).
        active_standby_all_banks: all banks open, V*I_3N.
        power_down_active: V*I_3P.
        power_down_precharged: V*I_2P.
        self_refresh: V*I_6N.
        law: the VDD law of the memspec.
        memspec: the memspec's name.
    """

    precharged_standby: PerDomain
    active_standby_one_bank: PerDomain
    active_standby_all_banks: PerDomain
    power_down_active: PerDomain
    power_down_precharged: PerDomain
    self_refresh: PerDomain
    law: str
    memspec: str = ""

    _ROWS = (("precharged_standby", "precharged standby"), ("active_standby_one_bank", "active standby, 1 bank"),
             ("active_standby_all_banks", "active standby, all banks"), ("power_down_active", "power-down active"),
             ("power_down_precharged", "power-down precharged"), ("self_refresh", "self-refresh"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": "W per device", "memspec": self.memspec, "law": self.law}
        out.update({key: getattr(self, key).to_dict() for key, _ in self._ROWS})
        return out

    def describe(self) -> str:
        return "\n".join([f"background power per device ({self.memspec})", f"law: {self.law}",
                          *_table([(label, getattr(self, key)) for key, label in self._ROWS], 1e3, "mW")])


def command_energies(memspec: MemSpec) -> CommandEnergies:
    """Per-command core energies of one device [J], per domain (DRAMPower 5, DDR4 equations).

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
        raise TypeError(f"command_energies: memspec must be a MemSpec, got {type(memspec).__name__}")
    tck = memspec.tck_s
    t_ras, t_rp, t_rfc = memspec.ras * tck, memspec.rp * tck, memspec.rfc * tck
    bl, dr = memspec.burst_length, memspec.data_rate
    return CommandEnergies(
        act=_per_domain(memspec, lambda d, c: d.v * (c.i_theta - c.i_1) * t_ras),
        pre=_per_domain(memspec, lambda d, c: d.v * (d.ibeta - d.i2n) * t_rp),
        rd=_per_domain(memspec, lambda d, c: d.v * (d.i4r - d.i3n) * (float(bl) / dr) * tck),
        wr=_per_domain(memspec, lambda d, c: d.v * (d.i4w - d.i3n) * (bl // dr) * tck),
        refa=_per_domain(memspec, lambda d, c: d.v * (d.i5x - d.i3n) * t_rfc),
        refresh_window=_per_domain(memspec, lambda d, c: d.v * d.i5x * t_rfc),
        law=memspec.law, memspec=memspec.name)


def active_standby_power(memspec: MemSpec, open_banks: int) -> PerDomain:
    """Active-standby power of one device with ``open_banks`` of B banks open [W].

    ``V*(I_rho + n*(I_3N - I_rho)/B)`` per domain; equals ``V*I_3N`` when
    ``n = B`` or ``fact_rho = 1``. ``open_banks = 0`` is precharged standby
    (``V*I_2N``), as DRAMPower books a rank with no open bank.
    """
    n = _integer("active_standby_power: open_banks", open_banks, minimum=0)
    if n > memspec.banks:
        raise ValueError(f"active_standby_power: open_banks must be <= {memspec.banks} banks, got {n}")
    if n == 0:
        return _per_domain(memspec, lambda d, c: d.v * d.i2n)
    b = memspec.banks
    return _per_domain(memspec, lambda d, c: d.v * (c.i_rho + n * (d.i3n - c.i_rho) / b))


def background_powers(memspec: MemSpec) -> BackgroundPowers:
    """Background powers of one device [W], per domain (DRAMPower 5, DDR4 equations).

    Args:
        memspec: the device, at its operating VDD.

    Returns:
        :class:`BackgroundPowers`; multiply by ``memspec.devices`` for a rank.
    """
    if not isinstance(memspec, MemSpec):
        raise TypeError(f"background_powers: memspec must be a MemSpec, got {type(memspec).__name__}")
    return BackgroundPowers(
        precharged_standby=_per_domain(memspec, lambda d, c: d.v * d.i2n),
        active_standby_one_bank=active_standby_power(memspec, 1),
        active_standby_all_banks=active_standby_power(memspec, memspec.banks),
        power_down_active=_per_domain(memspec, lambda d, c: d.v * d.i3p),
        power_down_precharged=_per_domain(memspec, lambda d, c: d.v * d.i2p),
        self_refresh=_per_domain(memspec, lambda d, c: d.v * d.i6n),
        law=memspec.law, memspec=memspec.name)
