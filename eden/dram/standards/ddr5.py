"""DDR5: DRAMPower v6.2.0's core energy model over the VDD and VPP domains.

Specified in ``/work/shared/power-model-standards.md`` section 2 (tukl-msd/DRAMPower @ tag v6.2.0,
``standards/ddr5/core_calculation_DDR5.cpp``, ``MemSpecDDR5.cpp``), per device and per domain X
(each with its own V and currents; VPP is a full domain)::

    t_RAS = RAS*tCK, t_RP = RP*tCK, t_RFC = RFC*tCK, t_RFCsb = RFCsb*tCK
    I_rho   = rho*(I_3N - I_2N) + I_2N
    I_theta = (I_0*(t_RP + t_RAS) - I_beta*t_RP) * (1/t_RAS)
    I_1     = (1.0/B)*(I_3N + (B - 1)*I_rho)          one bank open
    I_BG    = I_rho + (I_1 - I_rho)*BG                 one bank open per bank group
    E_ACT   = V*(I_theta - I_1)*t_RAS                  E_PRE = V*(I_beta - I_2N)*t_RP
    E_RD    = V*(I_4R - I_3N)*(double(BL)/DR)*tCK      E_WR  = V*(I_4W - I_3N)*(BL//DR)*tCK
    E_REFab = V*(I_5X - I_3N)*t_RFC                    (sum over the B banks of (1/B)*...)
    E_REFsb = V*(I_5C - I_BG)*t_RFCsb                  (BG banks, one per group, each (1/BG)*...)
    P(n open) = V*(I_rho + n*(I_1 - I_rho));  P_PDN_ACT = V*I_3P, P_PDN_PRE = V*I_2P, P_SREF = V*I_6N

``RefMode`` 2 reads ``idd5f``/``ipp5f`` and ``RFC2_slr``, anything else ``idd5b``/``ipp5b`` and
``RFC1_slr`` (the ``_slr`` names; ``RFC1`` without the suffix is not read by DRAMPower).
Reduced VDD scales the VDD currents; VPP (1.8 V) is fixed. tRCD enters no energy.

Partition model: a DDR5 DIMM has two independent 32-bit subchannels, each a rank of x8 (or x4)
devices with BL16; eden's partition is one subchannel (64 bytes per burst).
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards import base
from eden.dram.standards.base import CORE_BACKGROUND_STATES, Current, Domain, Param, RefreshMode, Standard

CURRENTS = (
    Current("i0", "0", "one-bank ACT-PRE", ("0",)),
    Current("i2n", "2n", "precharged standby", ("2n",)),
    Current("i3n", "3n", "active standby", ("3n",)),
    Current("i4r", "4r", "burst read", ("4r",)),
    Current("i4w", "4w", "burst write", ("4w",)),
    Current("i5x", "5b", "all-bank refresh"),  # JSON name per refresh mode
    Current("i5c", "5c", "same-bank refresh", ("5c",), optional=True),
    Current("i6n", "6n", "self-refresh", ("6n",), optional=True),
    Current("i2p", "2p", "precharged power-down", ("2p",), optional=True),
    Current("i3p", "3p", "active power-down", ("3p",), optional=True),
)

COMMANDS = (("act", "ACT"), ("pre", "PRE"), ("rd", "RD"), ("wr", "WR"), ("refab", "REFab (increment)"),
            ("refsb", "REFsb"))
BACKGROUND_STATES = CORE_BACKGROUND_STATES

PARAMS = (
    Param("bank_groups", "nbr_of_bank_groups", "int", "bank groups per device (DRAMPower nbrOfBankGroups)",
          ("memarchitecturespec.nbrOfBankGroups",), lo=1),
    Param("rfcsb", "trfcsb_ns", "cycles", "same-bank refresh cycle time tRFCsb",
          ("memtimingspec.RFCsb_slr",), lo=1),
    *base.AUTO_PRECHARGE_PARAMS,
)


def _i_rho(spec: Any, d: Any) -> float:
    return spec.fact_rho * (d.i3n - d.i2n) + d.i2n


def derived_currents(spec: Any, domain: str) -> dict[str, float]:
    """I_rho, I_1, I_theta and I_BG of one domain [A] (section 2.2)."""
    d = spec.domain(domain)
    t_ras, t_rp = spec.ras * spec.tck_s, spec.rp * spec.tck_s
    b = spec.banks
    i_rho = _i_rho(spec, d)
    i_theta = (d.i0 * (t_rp + t_ras) - d.ibeta * t_rp) * (1 / t_ras)
    i_1 = (1.0 / b) * (d.i3n + (b - 1) * i_rho)
    i_bg = i_rho + (i_1 - i_rho) * spec.bank_groups
    return {"i_rho": i_rho, "i_1": i_1, "i_theta": i_theta, "i_bg": i_bg}


def command_energies(spec: Any) -> dict[str, dict[str, float]]:
    """Energy of each command per device [J], per domain; REFsb only when every IDD5C is given."""
    tck = spec.tck_s
    t_ras, t_rp, t_rfc, t_rfcsb = spec.ras * tck, spec.rp * tck, spec.rfc * tck, spec.rfcsb * tck
    bl, dr, b, bg = spec.burst_length, spec.data_rate, spec.banks, spec.bank_groups
    out: dict[str, dict[str, float]] = {key: {} for key, _ in COMMANDS}
    for d in spec.domains:
        c = derived_currents(spec, d.name)
        out["act"][d.name] = d.v * (c["i_theta"] - c["i_1"]) * t_ras
        out["pre"][d.name] = d.v * (d.ibeta - d.i2n) * t_rp
        out["rd"][d.name] = d.v * (d.i4r - d.i3n) * (float(bl) / dr) * tck
        out["wr"][d.name] = d.v * (d.i4w - d.i3n) * (bl // dr) * tck  # integer BL/DR, as DRAMPower
        per_bank = (1.0 / b) * d.v * (d.i5x - d.i3n) * t_rfc
        total = 0.0
        for _ in range(b):  # DRAMPower books it per bank and sums
            total += per_bank
        out["refab"][d.name] = total
        if d.i5c is not None:
            per_sb = d.v * (d.i5c - c["i_bg"]) * t_rfcsb * (1.0 / bg)
            total = 0.0
            for _ in range(bg):
                total += per_sb
            out["refsb"][d.name] = total
    if len(out["refsb"]) != len(spec.domains):
        del out["refsb"]
    return out


def active_standby_power(spec: Any, open_banks: int) -> dict[str, float]:
    """Power with ``open_banks`` of B banks open [W] per domain; 0 is precharged standby (V*I_2N)."""
    out = {}
    for d in spec.domains:
        if open_banks == 0:
            out[d.name] = d.v * d.i2n
        else:
            c = derived_currents(spec, d.name)
            out[d.name] = d.v * (c["i_rho"] + open_banks * (c["i_1"] - c["i_rho"]))
    return out


def background_powers(spec: Any) -> dict[str, dict[str, float]]:
    """Background power of each state per device [W], per domain; states without their current are left out."""
    out = {
        "precharged_standby": active_standby_power(spec, 0),
        "active_standby_one_bank": active_standby_power(spec, 1),
        "active_standby_all_banks": active_standby_power(spec, spec.banks),
    }
    for key, current in (("power_down_active", "i3p"), ("power_down_precharged", "i2p"), ("self_refresh", "i6n")):
        if all(getattr(d, current) is not None for d in spec.domains):
            out[key] = {d.name: d.v * getattr(d, current) for d in spec.domains}
    return out


TRACE_COMMANDS = ("ACT", "PRE", "PREA", "RD", "RDA", "WR", "WRA", "REFA", "PDEA", "PDXA", "PDEP", "PDXP",
                  "SREFEN", "SREFEX", "PRESB", "REFSB")


def precharge_offsets(spec: Any) -> tuple[int, int]:
    """(RD, WR) implicit-precharge offsets [cycles]: RTP; BL/DR + WL + WR (``MemSpecDDR5.cpp``)."""
    return spec.rtp, spec.burst_length // spec.data_rate + spec.wl + spec.wr


STANDARD = Standard(
    name="DDR5",
    description="DDR5 (JESD79-5), DRAMPower v6.2.0 core equations over VDD and VPP",
    domains=(Domain("VDD", "idd", scales_with_vdd=True),
             Domain("VPP", "ipp", scales_with_vdd=False, currents_may_be_zero=True)),
    currents=CURRENTS,
    refresh_modes={1: RefreshMode(("5b",), ("RFC1_slr",)), 2: RefreshMode(("5f",), ("RFC2_slr",))},
    commands=COMMANDS,
    background_states=BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=background_powers,
    active_standby_power=active_standby_power,
    derived_currents=derived_currents,
    params=PARAMS,
    timing_json={"ras": ("RAS",), "rp": ("RP",), "rcd": ("RCD",), "refi": ("REFI1", "REFI")},
    refresh_command="refab",
    trace_commands=TRACE_COMMANDS,
    precharge_offsets=precharge_offsets,
    model="DRAMPower v6.2.0 (tukl-msd/DRAMPower tag v6.2.0, commit d8b980ab9e725480787b130798ad7ef675517b34)",
    notes=("a partition is one 32-bit subchannel (two per DIMM), a rank of devices with BL16: 64 bytes per burst",
           "REFab every tREFI (3.9 us in normal refresh mode); REFsb (same-bank refresh) is reported per command",
           "reduced VDD scales the VDD currents; VPP (1.8 V) stays"),
)
