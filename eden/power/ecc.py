"""Check bits in the power model: the DRAM energy an ECC code adds (docs/power.md, "ECC").

A code stores ``r`` check bits per ``k`` data bits. Where they live decides what they cost:

* **Rank-level codes** (``secded72``, ``chipkill144``): the check bits are extra devices of the rank
  (a x72 ECC DIMM: 9 x8 or 18 x4 devices where a non-ECC rank has 8 or 16), on extra lanes of the
  same bus. They receive every command of the rank in lockstep and idle and refresh with it, so
  every component (ACT, PRE, RD, WR, refresh, background) grows by ``n / k`` (72/64 = 144/128 =
  1.125): eden's energies are per-device energies times the rank's devices (DRAMPower's model),
  and the ECC devices are the same part. No extra commands, no extra bursts, no extra time: the
  check bits travel in the same burst on the extra lanes. (Exact for x4 and x8 ranks; a x16 rank
  adds a x8 or half-used x16 part, which ``n / k`` approximates. chipkill144 assumes x4 devices.)
* **On-die codes** (``ondie136``): the check bits are extra cells of each device's array (8 per 128
  data bits) read and written with the data inside the device; the bus carries data only. The
  array activity grows by ``n / k`` (136/128 = 1.0625): ACT and PRE (a row holds 1/16 more cells to
  sense and restore), RD and WR (136 array bits per 128 delivered) and refresh (the extra cells are
  refreshed too). Background (standby: peripheral logic, DLL, clocks) does not change. Scaling the
  whole command energy is an upper bound: only its array part grows; the ECC logic's own energy is
  not modelled (no source gives it). DDR5 devices carry on-die ECC by standard (JESD79-5), so their
  datasheet IDD values already include it: for a DDR5 memspec on-die SEC adds nothing.

Sources: JEDEC JESD79-4 / JESD21-C (72-bit ECC DIMMs, 9 or 18 devices per rank); JESD79-5 (DDR5
on-die ECC, 128 + 8 bits); DRAMPower (K. Chandrasekar et al., energies per device times devices).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eden.errors import EdenConfigError

#: Components of ``eden.power.traffic.EnergyBreakdown``.
COMPONENTS = ("act", "pre", "rd", "wr", "refresh", "background")
#: Standards whose devices carry on-die ECC by standard: their IDDs include it already.
ONDIE_IN_IDD = ("DDR5",)
#: Standards with 72-bit ECC DIMMs (64 data + 8 check lanes), the rank-level codes' layout.
RANK_ECC_STANDARDS = ("DDR3", "DDR4")


@dataclasses.dataclass(frozen=True)
class EccEnergy:
    """What an ECC code multiplies each energy component of a rank by.

    Attributes:
        code: the code's name ("none" for no ECC).
        placement: "none", "rank" (extra devices) or "on-die" (extra array cells).
        factors: per component of ``EnergyBreakdown`` (``COMPONENTS``).
        note: the basis, for reports.
    """

    code: str
    placement: str
    factors: tuple[tuple[str, float], ...]
    note: str

    def factor(self, component: str) -> float:
        return dict(self.factors)[component]

    @property
    def is_identity(self) -> bool:
        return all(f == 1.0 for _, f in self.factors)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "placement": self.placement, "factors": dict(self.factors), "note": self.note}


def _all(f: float, background: float | None = None) -> tuple[tuple[str, float], ...]:
    return tuple((c, background if (c == "background" and background is not None) else f) for c in COMPONENTS)


def ecc_energy(code: str | None, standard: str) -> EccEnergy:
    """The energy factors of ECC ``code`` (a registered name, ``"none"`` or None) on a rank of ``standard``.

    Raises:
        EdenConfigError: an unknown code (the message names the known ones).
    """
    if code is None or code == "none":
        return EccEnergy("none", "none", _all(1.0), "no ECC")
    from eden.engine.ecc import get_code

    c = get_code(code)
    assert c is not None
    ratio = c.n / c.k
    if c.on_die:
        if standard in ONDIE_IN_IDD:
            return EccEnergy(c.name, "on-die", _all(1.0),
                             f"{standard} devices carry on-die ECC by standard: the memspec's IDDs include its "
                             f"{c.r} check bits per {c.k}")
        return EccEnergy(c.name, "on-die", _all(ratio, 1.0),
                         f"{c.r} on-die check bits per {c.k} data bits: array activity (ACT, PRE, RD, WR, refresh) "
                         f"x {c.n}/{c.k} (an upper bound: the whole command energy scaled), background unchanged, "
                         "no extra bus traffic")
    if standard not in RANK_ECC_STANDARDS:
        raise EdenConfigError(f"ECC {c.name} is a rank-level code of a 72-bit ECC DIMM (DDR3/DDR4); a {standard} "
                              "memspec has no such rank (DDR5 ECC DIMMs use 40-bit sub-channels, LPDDR and HBM no "
                              "ECC devices on the bus)")
    return EccEnergy(c.name, "rank", _all(ratio),
                     f"{c.r} check bits per {c.k} data bits on extra devices of the rank (a x72 ECC DIMM): every "
                     f"component x {c.n}/{c.k} (commands in lockstep, background, refresh), same bursts and time")
