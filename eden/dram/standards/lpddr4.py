"""LPDDR4: DRAMPower v6.2.0's core energy model over the VDD1 and VDD2 domains.

Specified in ``/work/shared/power-model-standards.md`` section 3 (tukl-msd/DRAMPower @ tag v6.2.0,
``standards/lpddr4/core_calculation_LPDDR4.cpp``, ``MemSpecLPDDR4.cpp``), per device and domain X::

    I_1   = IDD3N                                            (one bank open)
    I_rho = (B*rho*I_1 + (1 - rho)*IDD2N) / (B*rho + (1 - rho))   (v6.2.0, commit 2a9df93)
    I_B   = I_rho + B*(I_1 - I_rho)                          (all B banks open)
    I_theta  = (IDD0*(t_RP + t_RAS) - I_beta*t_RP) * (1/t_RAS)
    IDD5PB_B = (IDD5PB*(t_REFI/8) - IDD2N*((t_REFI/8) - t_RFCpb)) * (1.0/t_RFCpb)
    E_ACT = V*(I_theta - I_1)*t_RAS          E_PRE = V*(I_beta - IDD2N)*t_RP
    E_RD  = V*(IDD4R - I_1)*(BL//DR)*tCK     E_WR  = V*(IDD4W - I_1)*(BL//DR)*tCK
    E_REFab = sum over B banks of (1.0/B)*V*(IDD5 - I_B)*t_RFC
    E_REFpb = V*(IDD5PB_B - I_1)*t_RFCpb
    P(n open) = V*(I_rho + n*(I_1 - I_rho)); P_PDN_ACT = V*IDD3P, P_PDN_PRE = V*IDD2P, P_SREF = V*IDD6

tRP is ``RPpb`` (``RPab`` is not read), tRFC ``RFCab``, tRFCpb ``RFCpb``. LPDDR4 results of
DRAMPower <= v6.1 differ for rho != 1 (the I_rho of v6.2.0 is used here). Reduced VDD scales
VDD2 (array and periphery, most of the current); VDD1 (1.8 V, pumps) is fixed. tRCD enters no energy.

Partition model: one x16 channel (a die has two) with BL16: 32 bytes per burst; REFab every tREFI.
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards.base import (AUTO_PRECHARGE_PARAMS, CORE_BACKGROUND_STATES, Current, Domain, Param,
                                     RefreshMode, Standard)

CURRENTS = (
    Current("i0", "0", "one-bank ACT-PRE", ("0",)),
    Current("i2n", "2n", "precharged standby", ("2n",)),
    Current("i3n", "3n", "active standby (one bank)", ("3n",)),
    Current("i4r", "4r", "burst read", ("4r",)),
    Current("i4w", "4w", "burst write", ("4w",)),
    Current("i5", "5", "all-bank refresh", ("5",)),
    Current("i5pb", "5pb", "per-bank refresh (average over tREFI/8)", ("5pb",)),
    Current("i6", "6", "self-refresh", ("6",), optional=True),
    Current("i2p", "2p", "precharged power-down", ("2p",), optional=True),
    Current("i3p", "3p", "active power-down", ("3p",), optional=True),
)

COMMANDS = (("act", "ACT"), ("pre", "PRE"), ("rd", "RD"), ("wr", "WR"), ("refab", "REFab (increment)"),
            ("refpb", "REFpb"))
BACKGROUND_STATES = CORE_BACKGROUND_STATES

RFCPB = Param("rfcpb", "trfcpb_ns", "cycles", "per-bank refresh cycle time tRFCpb", ("memtimingspec.RFCpb",), lo=1)
PARAMS = (RFCPB, *AUTO_PRECHARGE_PARAMS)


def domain(name: str, index: str, scales: bool) -> Domain:
    """An LPDDR rail: profile fields ``idd0_vdd2_ma``, DRAMPower JSON ``idd02`` (the domain after the current)."""
    return Domain(name, "idd", scales_with_vdd=scales, currents_may_be_zero=True,
                  field_key="idd{current}_" + name.lower() + "_ma", json_key="idd{current}" + index)


def derived_currents(spec: Any, domain: str) -> dict[str, float]:
    """I_1, I_rho, I_B, I_2, I_theta and IDD5PB_B of one domain [A] (section 3.2)."""
    d = spec.domain(domain)
    tck = spec.tck_s
    t_ras, t_rp = spec.ras * tck, spec.rp * tck
    b, rho = spec.banks, spec.fact_rho
    i_1 = d.i3n
    t1, t2 = b * rho, 1 - rho
    i_rho = (t1 * i_1 + t2 * d.i2n) / (t1 + t2)
    i_b = i_rho + b * (i_1 - i_rho)
    i_2 = i_1 + (i_1 - i_rho)
    i_theta = (d.i0 * (t_rp + t_ras) - d.ibeta * t_rp) * (1 / t_ras)
    out = {"i_rho": i_rho, "i_1": i_1, "i_theta": i_theta, "i_b": i_b, "i_2": i_2}
    if spec.refi is not None:
        t_refi, t_rfcpb = spec.refi * tck, spec.rfcpb * tck
        out["idd5pb_b"] = (d.i5pb * (t_refi / 8) - d.i2n * ((t_refi / 8) - t_rfcpb)) * (1.0 / t_rfcpb)
    return out


def _sum(value: float, times: int) -> float:
    """``value`` added ``times`` times from 0 (DRAMPower books per bank, then sums)."""
    total = 0.0
    for _ in range(times):
        total += value
    return total


def command_energies(spec: Any, *, t_burst: float | None = None, burst_current: str = "i_1",
                     two_bank: bool = False) -> dict[str, dict[str, float]]:
    """Energy of each command per device [J], per domain; REFpb (and REFp2b) need tREFI.

    ``t_burst`` (default (BL//DR)*tCK) and ``burst_current`` (the background subtracted from
    RD/WR) are LPDDR5's hooks; ``two_bank`` adds LPDDR5's REFp2b.
    """
    tck = spec.tck_s
    t_ras, t_rp, t_rfc, t_rfcpb = spec.ras * tck, spec.rp * tck, spec.rfc * tck, spec.rfcpb * tck
    b = spec.banks
    burst = (spec.burst_length // spec.data_rate) * tck if t_burst is None else t_burst
    keys = [key for key, _ in COMMANDS] + (["refp2b"] if two_bank else [])
    out: dict[str, dict[str, float]] = {key: {} for key in keys}
    for d in spec.domains:
        c = derived_currents(spec, d.name)
        out["act"][d.name] = d.v * (c["i_theta"] - c["i_1"]) * t_ras
        out["pre"][d.name] = d.v * (d.ibeta - d.i2n) * t_rp
        out["rd"][d.name] = d.v * (d.i4r - c[burst_current]) * burst
        out["wr"][d.name] = d.v * (d.i4w - c[burst_current]) * burst
        out["refab"][d.name] = _sum((1.0 / b) * d.v * (d.i5 - c["i_b"]) * t_rfc, b)
        if "idd5pb_b" in c:
            out["refpb"][d.name] = d.v * (c["idd5pb_b"] - c["i_1"]) * t_rfcpb
            if two_bank:
                out["refp2b"][d.name] = _sum(0.5 * d.v * (c["idd5pb_b"] - c["i_2"]) * t_rfcpb, 2)
    for key in ("refpb", "refp2b"):
        if key in out and not out[key]:
            del out[key]
    return out


def active_standby_power(spec: Any, open_banks: int) -> dict[str, float]:
    """Power with ``open_banks`` of B banks open [W] per domain; 0 is precharged standby (V*IDD2N)."""
    out = {}
    for d in spec.domains:
        if open_banks == 0:
            out[d.name] = d.v * d.i2n
        else:
            c = derived_currents(spec, d.name)
            out[d.name] = d.v * (c["i_rho"] + open_banks * (c["i_1"] - c["i_rho"]))
    return out


def background_powers(spec: Any, *, deep_sleep: bool = False) -> dict[str, dict[str, float]]:
    """Background power of each state per device [W], per domain; states without their current are left out."""
    out = {
        "precharged_standby": active_standby_power(spec, 0),
        "active_standby_one_bank": active_standby_power(spec, 1),
        "active_standby_all_banks": active_standby_power(spec, spec.banks),
    }
    states = [("power_down_active", "i3p"), ("power_down_precharged", "i2p"), ("self_refresh", "i6")]
    if deep_sleep:
        states.append(("deep_sleep", "i6ds"))
    for key, current in states:
        if all(getattr(d, current) is not None for d in spec.domains):
            out[key] = {d.name: d.v * getattr(d, current) for d in spec.domains}
    return out


TRACE_COMMANDS = ("ACT", "PRE", "PREA", "RD", "RDA", "WR", "WRA", "REFA", "PDEA", "PDXA", "PDEP", "PDXP",
                  "SREFEN", "SREFEX", "REFB")


def precharge_offsets(spec: Any) -> tuple[int, int]:
    """(RD, WR) implicit-precharge offsets [cycles]: RTP (BL16) or 8 + RTP; WL + BL/2 + WR + 1 (JESD209-4 Table 21)."""
    rd = spec.rtp if spec.burst_length == 16 else 8 + spec.rtp
    return rd, spec.wl + spec.burst_length // 2 + spec.wr + 1


STANDARD = Standard(
    name="LPDDR4",
    description="LPDDR4 (JESD209-4), DRAMPower v6.2.0 core equations over VDD1 and VDD2",
    domains=(domain("VDD1", "1", scales=False), domain("VDD2", "2", scales=True)),
    currents=CURRENTS,
    refresh_modes={1: RefreshMode(("5",), ("RFCab",))},
    commands=COMMANDS,
    background_states=BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=background_powers,
    active_standby_power=active_standby_power,
    derived_currents=derived_currents,
    params=PARAMS,
    timing_json={"ras": ("RAS",), "rp": ("RPpb",), "rcd": ("RCD",), "refi": ("REFI",)},
    refresh_command="refab",
    trace_commands=TRACE_COMMANDS,
    precharge_offsets=precharge_offsets,
    model="DRAMPower v6.2.0 (tukl-msd/DRAMPower tag v6.2.0, commit d8b980ab9e725480787b130798ad7ef675517b34)",
    notes=("a partition is one x16 channel (two per die) with BL16: 32 bytes per burst",
           "REFab every tREFI; REFpb (per-bank refresh) is reported per command",
           "reduced VDD scales VDD2 (array and periphery); VDD1 (1.8 V, pumps) stays"),
)
