"""LPDDR5: DRAMPower v6.2.0's core energy model over the VDD1, VDD2H and VDD2L domains.

Specified in ``/work/shared/power-model-standards.md`` section 4 (tukl-msd/DRAMPower @ tag v6.2.0,
``standards/lpddr5/core_calculation_LPDDR5.cpp``, ``MemSpecLPDDR5.cpp``). The currents I_1, I_rho,
I_B, I_theta and IDD5PB_B are LPDDR4's (``lpddr4.py``), plus ``I_2 = I_1 + (I_1 - I_rho)`` (two
banks open). What differs::

    tWCK  = tCK / WCK2CK
    E_RD  = V*(IDD4R - I_x)*(BL//DR)*tWCK    E_WR = V*(IDD4W - I_x)*(BL//DR)*tWCK
            I_x = I_2 in bank-group mode (16 banks, 4 groups), I_1 in 16B and 8B mode
    E_REFp2b = sum over its 2 banks of 0.5*V*(IDD5PB_B - I_2)*t_RFCpb
    P_DSM    = V*IDD6DS                      (deep sleep, inside self-refresh)

tRCD is ``RCD_S`` (the ``RCD`` field is not read by DRAMPower), tRP ``RPpb``. The bank
architecture is (16 banks, 0-1 groups) 16B, (16, 4) BG, (8, 0-1) 8B; other combinations are
refused (DRAMPower forces 16B). Reduced VDD scales the core rails VDD2H and VDD2L together
(VDD2H is the operating point's ``vdd_v``); VDD1 (1.8 V) is fixed. tRCD enters no energy.

Partition model: one x16 channel with BL16 (32 bytes per burst; BL32 is 64 bytes); a burst
occupies BL/(DR*WCK:CK) clock cycles.
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards import lpddr4
from eden.dram.standards.base import Current, Param, RefreshMode, Standard
from eden.errors import EdenConfigError

CURRENTS = (*lpddr4.CURRENTS, Current("i6ds", "6ds", "deep sleep", ("6ds",), optional=True))
COMMANDS = (*lpddr4.COMMANDS, ("refp2b", "REFp2b"))
BACKGROUND_STATES = (*lpddr4.BACKGROUND_STATES, ("deep_sleep", "deep sleep"))

PARAMS = (
    Param("bank_groups", "nbr_of_bank_groups", "int", "bank groups (DRAMPower nbrOfBankGroups; 0 or 1: none)",
          ("memarchitecturespec.nbrOfBankGroups",), lo=0),
    Param("wck2ck", "wck2ck", "int", "WCK:CK frequency ratio (DRAMPower WCK2CK: 2 or 4)",
          ("memtimingspec.WCK2CK",), lo=1),
    lpddr4.RFCPB,
    Param("rtp", "trtp_ns", "cycles", "RD-to-PRE tRBTP (the implicit precharge of RDA)", ("memtimingspec.RBTP",),
          default=0, section="timing"),
    *lpddr4.AUTO_PRECHARGE_PARAMS[1:],
)


def bank_architecture(spec: Any) -> str:
    """``"16B"``, ``"BG"`` or ``"8B"`` from (banks, bank groups).

    As ``MemSpecLPDDR5.cpp`` for the JEDEC modes (16 banks with 0-1 groups: 16B, 16 with 4: BG,
    8 with 0-1: 8B). Any other bank count with more than one group is read as BG mode (DRAMPower's
    unit tests set such memspecs and force BG); anything else is refused (DRAMPower prints an error
    and falls back to 16B).
    """
    b, bg = spec.banks, spec.bank_groups
    if b == 16 and bg in (0, 1):
        return "16B"
    if bg > 1:
        return "BG"
    if b == 8:
        return "8B"
    raise EdenConfigError(f"{spec.source or spec.name or 'LPDDR5 memspec'}: nbrOfBanks/nbrOfBankGroups "
                          f"{b}/{bg} is no LPDDR5 bank architecture (16/0-1: 16B, 16/4: BG, 8/0-1: 8B)")


def burst_cycles(spec: Any) -> float:
    """Clock cycles of one burst on the data bus: BL/(DR*WCK:CK) (integer, as DRAMPower's tBurst)."""
    return float(spec.burst_length // (spec.data_rate * spec.wck2ck))


def command_energies(spec: Any) -> dict[str, dict[str, float]]:
    """Energy of each command per device [J], per domain (section 4.3)."""
    t_wck = spec.tck_s / spec.wck2ck
    burst = (spec.burst_length // spec.data_rate) * t_wck
    current = "i_2" if bank_architecture(spec) == "BG" else "i_1"
    return lpddr4.command_energies(spec, t_burst=burst, burst_current=current, two_bank=True)


def background_powers(spec: Any) -> dict[str, dict[str, float]]:
    bank_architecture(spec)
    return lpddr4.background_powers(spec, deep_sleep=True)


TRACE_COMMANDS = (*lpddr4.TRACE_COMMANDS, "REFP2B", "DSMEN", "DSMEX")


def precharge_offsets(spec: Any) -> tuple[int, int]:
    """(RD, WR) implicit-precharge offsets [cycles]: tBurst + RBTP; WL + tBurst + 1 + WR (``MemSpecLPDDR5.cpp``)."""
    t_burst = spec.burst_length // (spec.data_rate * spec.wck2ck)
    return t_burst + spec.rtp, spec.wl + t_burst + 1 + spec.wr


STANDARD = Standard(
    name="LPDDR5",
    description="LPDDR5 (JESD209-5), DRAMPower v6.2.0 core equations over VDD1, VDD2H and VDD2L",
    domains=(lpddr4.domain("VDD1", "1", scales=False), lpddr4.domain("VDD2H", "2h", scales=True),
             lpddr4.domain("VDD2L", "2l", scales=True)),
    currents=CURRENTS,
    refresh_modes={1: RefreshMode(("5",), ("RFCab",))},
    commands=COMMANDS,
    background_states=BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=background_powers,
    active_standby_power=lpddr4.active_standby_power,
    derived_currents=lpddr4.derived_currents,
    params=PARAMS,
    timing_json={"ras": ("RAS",), "rp": ("RPpb",), "rcd": ("RCD_S",), "refi": ("REFI",)},
    refresh_command="refab",
    trace_commands=TRACE_COMMANDS,
    precharge_offsets=precharge_offsets,
    model="DRAMPower v6.2.0 (tukl-msd/DRAMPower tag v6.2.0, commit d8b980ab9e725480787b130798ad7ef675517b34)",
    burst_cycles=burst_cycles,
    notes=("a partition is one x16 channel with BL16 (32 bytes per burst); a burst takes BL/(DR*WCK:CK) clocks",
           "REFab every tREFI; REFpb and REFp2b (per-bank, two-bank refresh) are reported per command",
           "reduced VDD scales the core rails VDD2H and VDD2L together; VDD1 (1.8 V) stays"),
)
