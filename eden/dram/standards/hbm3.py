"""HBM3 / HBM3E: HBM-Power's HBM3 model (HBM2's equations, ``hbm2.py``, with a split read rail).

HBM-Power (``standards/hbm3/core_calculation_HBM3.cpp``, ``MemSpecHBM3.h``,
``src/cli/main/HBM3_runner.cpp``) runs HBM2's equations per pseudo-channel with HBM3's defaults
(dataRate 4, 32-bit PCs, BL8, 16 channels x 2 PCs per stack) and one difference: with the
data-pattern model on, a read's energy is split between the DQ rail VDDQ and the core VDD::

    f_dq = dq*c_dq / pj(knobs)
    E_RD = V_RD*(IDD4R_eff - IDD3N1)*(BL/DR)*tCK,   V_RD = VDDQ*f_dq + VDD*(1 - f_dq)

eden books the VDDQ*f_dq part under VDDQ and the rest under VDD (their sum is E_RD). VDDQ
carries no current of its own (``vddq_v`` only; HBM-Power's default VDDQ = VDD). HBM3E's
currents in HBM-Power are HBM2 measurements **extrapolated** to 6400 MT/s. Reduced VDD scales
VDD; VDDQ is fixed.

Partition model: one pseudo-channel (32 per stack), 32 bits wide with BL8: 32 bytes per burst.
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards import hbm2
from eden.dram.standards.base import Domain, RefreshMode, Standard


def read_voltage_split(spec: Any) -> dict[str, float]:
    """Share of the read energy per domain: VDDQ f_dq, VDD 1 - f_dq (all VDD with the pattern model off)."""
    if not spec.dp_enabled:
        return {"VDD": 1.0}
    f_dq = spec.dp_dq * spec.dp_c_dq / hbm2.pattern_energy(spec, spec.dp_dq, spec.dp_tsv, spec.dp_bg)
    return {"VDD": 1.0 - f_dq, "VDDQ": f_dq}


def command_energies(spec: Any) -> dict[str, dict[str, float]]:
    """HBM2's per-PC energies with the read split over VDDQ and VDD."""
    tck = spec.tck_s
    burst = (float(spec.burst_length) / spec.data_rate) * tck
    out = hbm2.command_energies(spec)
    d = hbm2.core_domain(spec)
    rd = (hbm2.derived_currents(spec, d.name)["idd4r_eff"] - d.i3n1) * burst
    out["rd"] = {x.name: 0.0 for x in spec.domains}
    for name, share in read_voltage_split(spec).items():
        out["rd"][name] = spec.domain(name).v * share * rd
    return out


STANDARD = Standard(
    name="HBM3",
    description="HBM3/HBM3E (JESD238), HBM-Power's HBM3 core equations (DRAMPower 5.4.1 fork) per pseudo-channel "
                "over VDD, reads split with VDDQ",
    domains=(Domain("VDD", "idd", scales_with_vdd=True), Domain("VDDQ", "iddq", scales_with_vdd=False, carries=())),
    currents=hbm2.CURRENTS,
    refresh_modes={1: RefreshMode(("5b",), ("nRFC",))},
    commands=hbm2.COMMANDS,
    background_states=hbm2.BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=hbm2.background_powers,
    active_standby_power=hbm2.active_standby_power,
    derived_currents=hbm2.derived_currents,
    params=hbm2.params(32),
    timing_json=hbm2.HBM_TIMING_JSON,
    refresh_command="refab",
    model="HBM-Power (CMU-SAFARI/HBM-Power commit 318d3d1f7ae8664800f369147d76a23073e2156b, a fork of DRAMPower 5.4.1)",
    notes=("a partition is one pseudo-channel (32 per stack), 32 bits wide with BL8: 32 bytes per burst",
           "REFab every tREFI; HBM-Power has no power-down, self-refresh or per-bank refresh",
           "reduced VDD scales the core rail VDD; VDDQ (reads' DQ share) stays"),
)
