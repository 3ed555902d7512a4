"""HBM2: HBM-Power's core energy model (SAFARI's fork of DRAMPower 5.4.1, measured on real HBM2).

Specified in ``/work/shared/power-model-standards.md`` section 5 (CMU-SAFARI/HBM-Power @ 318d3d1,
``standards/hbm2/core_calculation_HBM2.cpp``, ``util/datapattern_model.h``, the runners'
parser ``src/cli/main/HBM2_runner.cpp``). One memspec is **one pseudo-channel** (PC), modelled
as one rank of B = bank groups x banks per group = 16 banks; a stack is ``pseudo_channels`` PCs.
HBM-Power fixes rho = 1 and I_beta = IDD2N (IDD0 is measured at tRC, so E_PRE = 0); the
``ibeta`` and ``fact_rho`` fields are not read. Per PC, over the measured rail VDD::

    I_theta = (IDD0*(t_RP + t_RAS) - IDD2N*t_RP) / t_RAS;  I_1 = (1.0/B)*(IDD3N1 + (B - 1)*IDD3N1)
    delta   = (IDD3N16 - IDD3N1)/(B - 1)                    (measured per-bank increment)
    E_ACT = VDD*(I_theta - I_1)*t_RAS                     E_PRE = VDD*(IDD2N - IDD2N)*t_RP = 0
    E_RD  = VDD*(IDD4R_eff - IDD3N1)*(BL/DR)*tCK          E_WR  = VDD*(IDD4W_eff - IDD3N1)*(BL/DR)*tCK
    E_REFab = sum over B banks of (1.0/B)*VDD*(IDD5B - IDD3N16)*t_RFC   (0 if IDD5B or tRFC is 0)
    P_PRE_STBY = VDD*IDD2N;  P(n open) = VDD*(IDD3N1 + (n - 1)*delta)

Data-pattern model (``datapattern_model.h``, on in the shipped configs)::

    pj(dq, tsv, bg) = floor + dq*c_dq + tsv*c_t2bit + bg*c_busflip
    IDD4x_eff = IDD3N1 + (IDD4x - IDD3N1) * pj(knobs)/pj(reference)   (writes only if apply_to_writes)

(the absolute form and the coupling terms are not in the shipped configs and are not modelled).
There is no power-down, self-refresh, per-bank refresh, VPP or I/O term: I/O energy is inside
IDD4R/IDD4W. Reduced VDD scales the one measured rail. tRCD enters no energy.

Partition model: one pseudo-channel, 64 bits wide with BL4 (HBM2): 32 bytes per burst.
"""

from __future__ import annotations

from typing import Any

from eden.dram.standards.base import STANDBY_STATES, Current, Domain, Param, RefreshMode, Standard

CURRENTS = (
    Current("i0", "0", "one-bank ACT-PRE at tRC", ("0",)),
    Current("i2n", "2n", "precharged standby", ("2n",)),
    Current("i3n1", "3n1", "active standby, one bank open", ("3n1",)),
    Current("i3n16", "3n16", "active standby, all 16 banks open", ("3n16",)),
    Current("i4r", "4r", "burst read (incl. I/O)", ("4r",)),
    Current("i4w", "4w", "burst write (incl. I/O)", ("4w",)),
    Current("i5b", "5b", "all-bank refresh", ("5b",)),
)

COMMANDS = (("act", "ACT"), ("pre", "PRE"), ("rd", "RD"), ("wr", "WR"), ("refab", "REFab (increment)"))
BACKGROUND_STATES = STANDBY_STATES


def params(pseudo_channels: int) -> tuple[Param, ...]:
    """The PC's bank groups, the stack's PC count and the data-pattern model's knobs (power.json names)."""
    def dp(key: str, field: str, doc: str, json: str, kind: str = "float") -> Param:
        return Param(key, field, kind, f"data-pattern model: {doc}", (f"datapattern.{json}",))

    return (
        Param("bank_groups", "nbr_of_bank_groups", "int", "bank groups per pseudo-channel "
              "(bankgroups_per_pseudochannel)", ("organization.bankgroups_per_pseudochannel",), default=4, lo=1),
        Param("pseudo_channels", "pseudo_channels_per_stack", "int", "pseudo-channels per stack (channels_per_stack x "
              "pseudochannels_per_channel); reports give per-PC values", ("organization.pseudo_channels",),
              default=pseudo_channels, lo=1),
        dp("dp_enabled", "dp_enabled", "on (IDD4R/IDD4W scaled by the pattern energy)", "enabled", "bool"),
        dp("dp_floor", "dp_floor_pj_bit", "floor energy [pJ/bit]", "floor_pJbit"),
        dp("dp_c_dq", "dp_coef_t_dq", "DQ toggle coefficient [pJ/bit]", "coef_T_DQ"),
        dp("dp_c_t2bit", "dp_coef_t_2bit", "TSV two-bit toggle coefficient [pJ/bit]", "coef_T_2bit"),
        dp("dp_c_busflip", "dp_coef_busflip", "bus-flip coefficient [pJ/bit]", "coef_busflip"),
        dp("dp_dq", "dp_dq_rate", "DQ toggle rate of the workload", "dq_rate"),
        dp("dp_tsv", "dp_tsv_rate", "TSV toggle rate of the workload", "tsv_rate"),
        dp("dp_bg", "dp_bg_rate", "bus-flip rate of the workload", "bg_rate"),
        dp("dp_ref_dq", "dp_ref_dq_rate", "DQ toggle rate at which IDD4 was measured", "ref_dq_rate"),
        dp("dp_ref_tsv", "dp_ref_tsv_rate", "TSV toggle rate at which IDD4 was measured", "ref_tsv_rate"),
        dp("dp_ref_bg", "dp_ref_bg_rate", "bus-flip rate at which IDD4 was measured", "ref_bg_rate"),
        dp("dp_apply_to_writes", "dp_apply_to_writes", "also scale IDD4W", "apply_to_writes", "bool"),
    )


def pattern_energy(spec: Any, dq: float, tsv: float, bg: float) -> float:
    """pj(dq, tsv, bg) of the data-pattern model [pJ/bit]."""
    return spec.dp_floor + dq * spec.dp_c_dq + tsv * spec.dp_c_t2bit + bg * spec.dp_c_busflip


def effective_burst_currents(spec: Any, d: Any) -> tuple[float, float]:
    """(IDD4R_eff, IDD4W_eff) [A] of domain ``d`` under the data-pattern model (the raw currents when off)."""
    if not spec.dp_enabled:
        return d.i4r, d.i4w
    ratio = pattern_energy(spec, spec.dp_dq, spec.dp_tsv, spec.dp_bg) / pattern_energy(
        spec, spec.dp_ref_dq, spec.dp_ref_tsv, spec.dp_ref_bg)
    i4r = d.i3n1 + (d.i4r - d.i3n1) * ratio
    i4w = d.i3n1 + (d.i4w - d.i3n1) * ratio if spec.dp_apply_to_writes else d.i4w
    return i4r, i4w


def core_domain(spec: Any) -> Any:
    """The domain carrying the currents (VDD)."""
    return spec.domain("VDD")


def derived_currents(spec: Any, domain: str) -> dict[str, float]:
    """I_theta, I_1 (= IDD3N1), the per-bank increment delta and the effective burst currents [A]."""
    d = spec.domain(domain)
    if not d.currents:
        return {}
    t_ras, t_rp = spec.ras * spec.tck_s, spec.rp * spec.tck_s
    b = spec.banks
    i4r, i4w = effective_burst_currents(spec, d)
    return {"i_rho": d.i3n1, "i_1": (1.0 / b) * (d.i3n1 + (b - 1) * d.i3n1),
            "i_theta": (d.i0 * (t_rp + t_ras) - d.i2n * t_rp) / t_ras,
            "delta": (d.i3n16 - d.i3n1) / (b - 1), "idd4r_eff": i4r, "idd4w_eff": i4w}


def read_voltage_split(spec: Any) -> dict[str, float]:
    """Share of the read energy per domain (HBM2: all on VDD)."""
    return {"VDD": 1.0}


def command_energies(spec: Any) -> dict[str, dict[str, float]]:
    """Energy of each command per PC [J], per domain (section 5.4)."""
    tck = spec.tck_s
    t_ras, t_rp, t_rfc = spec.ras * tck, spec.rp * tck, spec.rfc * tck
    burst = (float(spec.burst_length) / spec.data_rate) * tck
    d = core_domain(spec)
    c = derived_currents(spec, d.name)
    b = spec.banks
    out: dict[str, dict[str, float]] = {key: {x.name: 0.0 for x in spec.domains} for key, _ in COMMANDS}
    out["act"][d.name] = d.v * (c["i_theta"] - c["i_1"]) * t_ras
    out["pre"][d.name] = d.v * (d.i2n - d.i2n) * t_rp
    rd = (c["idd4r_eff"] - d.i3n1) * burst
    for name, share in read_voltage_split(spec).items():
        out["rd"][name] = spec.domain(name).v * share * rd
    out["wr"][d.name] = d.v * (c["idd4w_eff"] - d.i3n1) * burst
    if d.i5b > 0 and t_rfc > 0:
        total = 0.0
        for _ in range(b):
            total += (1.0 / b) * d.v * (d.i5b - d.i3n16) * t_rfc
        out["refab"][d.name] = total
    return out


def active_standby_power(spec: Any, open_banks: int) -> dict[str, float]:
    """Power of one PC with ``open_banks`` open [W]: VDD*(IDD3N1 + (n - 1)*delta); 0 open: VDD*IDD2N."""
    d = core_domain(spec)
    out = {x.name: 0.0 for x in spec.domains}
    if open_banks == 0:
        out[d.name] = d.v * d.i2n
    else:
        out[d.name] = d.v * (d.i3n1 + (open_banks - 1) * derived_currents(spec, d.name)["delta"])
    return out


def background_powers(spec: Any) -> dict[str, dict[str, float]]:
    return {"precharged_standby": active_standby_power(spec, 0),
            "active_standby_one_bank": active_standby_power(spec, 1),
            "active_standby_all_banks": active_standby_power(spec, spec.banks)}


HBM_TIMING_JSON = {"ras": ("nRAS",), "rp": ("nRP",), "rcd": ("nRCD",), "refi": ("nREFI",)}

STANDARD = Standard(
    name="HBM2",
    description="HBM2 (JESD235), HBM-Power's core equations (DRAMPower 5.4.1 fork, measured currents) per "
                "pseudo-channel over VDD",
    domains=(Domain("VDD", "idd", scales_with_vdd=True),),
    currents=CURRENTS,
    refresh_modes={1: RefreshMode(("5b",), ("nRFC",))},
    commands=COMMANDS,
    background_states=BACKGROUND_STATES,
    command_energies=command_energies,
    background_powers=background_powers,
    active_standby_power=active_standby_power,
    derived_currents=derived_currents,
    params=params(16),
    timing_json=HBM_TIMING_JSON,
    refresh_command="refab",
    model="HBM-Power (CMU-SAFARI/HBM-Power commit 318d3d1f7ae8664800f369147d76a23073e2156b, a fork of DRAMPower 5.4.1)",
    notes=("a partition is one pseudo-channel (16 per stack), 64 bits wide with BL4: 32 bytes per burst",
           "REFab every tREFI; HBM-Power has no power-down, self-refresh or per-bank refresh",
           "reduced VDD scales the one measured rail (I/O energy is inside IDD4R/IDD4W)"),
)
