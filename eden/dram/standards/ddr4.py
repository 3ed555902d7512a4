"""DDR4: DRAMPower 5's core energy model over the VDD and VPP domains.

Specified in ``/work/shared/power-model.md`` (``core_calculation_DDR4.cpp``),
per device and per domain X (each with its own V and currents)::

    t_RAS = RAS*tCK,  t_RP = RP*tCK,  t_RFC = RFC*tCK
    I_rho   = rho*(I_3N - I_2N) + I_2N
    I_theta = (I_0*(t_RP + t_RAS) - I_beta*t_RP) * (1/t_RAS)
    I_1     = (1.0/B) * (I_3N + (B - 1)*I_rho)
    E_ACT  = V*(I_theta - I_1)*t_RAS        E_PRE = V*(I_beta - I_2N)*t_RP
    E_RD   = V*(I_4R - I_3N)*(BL/DR)*tCK    E_WR  = V*(I_4W - I_3N)*(BL//DR)*tCK
    E_REFA = V*(I_5X - I_3N)*t_RFC          (the increment over active standby)
    P_precharged = V*I_2N,  P_active(n open) = V*(I_rho + n*(I_3N - I_rho)/B)

No tRCD term appears in any energy. Operation order is DRAMPower 5.x's, so
results are bit-identical to it (and goldens recorded before the registry).
Reduced VDD scales the VDD currents; VPP is unchanged.
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards.base import CORE_BACKGROUND_STATES, Current, Domain, RefreshMode, Standard

CURRENTS = (
    Current("i0", "0", "one-bank ACT-PRE", ("0",)),
    Current("i2n", "2n", "precharged standby", ("2n",)),
    Current("i3n", "3n", "active standby", ("3n",)),
    Current("i4r", "4r", "burst read", ("4r",)),
    Current("i4w", "4w", "burst write", ("4w",)),
    Current("i5x", "5b", "burst refresh"),  # JSON name per refresh mode (REFRESH_MODES)
    Current("i2p", "2p", "precharged power-down", ("2p",)),
    Current("i3p", "3p", "active power-down", ("3p",)),
    Current("i6n", "6n", "self-refresh", ("6n",)),
)
"""The DDR-family current set (IDD0 ... IDD6N); DRAMPower's I_beta is carried by every domain too."""

COMMANDS = (("act", "ACT"), ("pre", "PRE"), ("rd", "RD"), ("wr", "WR"), ("refa", "REFA (increment)"),
            ("refresh_window", "refresh incl. background"))
"""Per-command energies: ``refa`` is DRAMPower's E_REFA (the increment over the active-standby
background it also books for t_RFC); ``refresh_window`` = V*I_5X*t_RFC, a refresh including it."""

BACKGROUND_STATES = CORE_BACKGROUND_STATES


def derived_currents(spec: Any, domain: str) -> dict[str, float]:
    """DRAMPower's I_rho, I_1 and I_theta of one domain [A] (power-model.md section 3)."""
    d = spec.domain(domain)
    t_ras, t_rp = spec.ras * spec.tck_s, spec.rp * spec.tck_s
    rho, b = spec.fact_rho, spec.banks
    i_rho = rho * (d.i3n - d.i2n) + d.i2n
    i_theta = (d.i0 * (t_rp + t_ras) - d.ibeta * t_rp) * (1 / t_ras)
    i_1 = (1.0 / b) * (d.i3n + (b - 1) * (rho * (d.i3n - d.i2n) + d.i2n))
    return {"i_rho": i_rho, "i_1": i_1, "i_theta": i_theta}


def command_energies(spec: Any) -> dict[str, dict[str, float]]:
    """Energy of each command per device [J], per domain (keys of :data:`COMMANDS`)."""
    tck = spec.tck_s
    t_ras, t_rp, t_rfc = spec.ras * tck, spec.rp * tck, spec.rfc * tck
    bl, dr = spec.burst_length, spec.data_rate
    out: dict[str, dict[str, float]] = {key: {} for key, _ in COMMANDS}
    for d in spec.domains:
        c = derived_currents(spec, d.name)
        out["act"][d.name] = d.v * (c["i_theta"] - c["i_1"]) * t_ras
        out["pre"][d.name] = d.v * (d.ibeta - d.i2n) * t_rp
        out["rd"][d.name] = d.v * (d.i4r - d.i3n) * (float(bl) / dr) * tck
        out["wr"][d.name] = d.v * (d.i4w - d.i3n) * (bl // dr) * tck  # integer BL/DR, as DRAMPower
        out["refa"][d.name] = d.v * (d.i5x - d.i3n) * t_rfc
        out["refresh_window"][d.name] = d.v * d.i5x * t_rfc
    return out


def active_standby_power(spec: Any, open_banks: int) -> dict[str, float]:
    """Power with ``open_banks`` of B banks open [W] per domain; 0 open banks is precharged standby."""
    n, b = open_banks, spec.banks
    out = {}
    for d in spec.domains:
        if n == 0:
            out[d.name] = d.v * d.i2n
        else:
            i_rho = derived_currents(spec, d.name)["i_rho"]
            out[d.name] = d.v * (i_rho + n * (d.i3n - i_rho) / b)
    return out


def background_powers(spec: Any) -> dict[str, dict[str, float]]:
    """Background power of each state per device [W], per domain (keys of :data:`BACKGROUND_STATES`)."""
    return {
        "precharged_standby": {d.name: d.v * d.i2n for d in spec.domains},
        "active_standby_one_bank": active_standby_power(spec, 1),
        "active_standby_all_banks": active_standby_power(spec, spec.banks),
        "power_down_active": {d.name: d.v * d.i3p for d in spec.domains},
        "power_down_precharged": {d.name: d.v * d.i2p for d in spec.domains},
        "self_refresh": {d.name: d.v * d.i6n for d in spec.domains},
    }


STANDARD = Standard(
    name="DDR4",
    description="DDR4 (JESD79-4), DRAMPower 5 core equations over VDD and VPP",
    domains=(Domain("VDD", "idd", scales_with_vdd=True),
             Domain("VPP", "ipp", scales_with_vdd=False, currents_may_be_zero=True)),
    currents=CURRENTS,
    refresh_modes={1: RefreshMode(("5B",), ("RFC1",)), 2: RefreshMode(("5F2",), ("RFC2",)),
                   4: RefreshMode(("5F4",), ("RFC4",))},
    commands=COMMANDS,
    background_states=BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=background_powers,
    active_standby_power=active_standby_power,
    derived_currents=derived_currents,
    model="DRAMPower 5.x DDR4 core equations (core_calculation_DDR4.cpp; checked against a compiled v5.1)",
)
