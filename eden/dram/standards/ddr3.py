"""DDR3: DDR4's DRAMPower equations over the VDD domain alone (DDR3 has no VPP).

DRAMSys' DDR3 memspecs name some fields differently; the JSON reader also
accepts ``idd5`` for ``idd5B``, ``idd6`` for ``idd6n``, ``idd2p1``/``idd3p1``
(fast-exit power-down) for ``idd2p``/``idd3p`` and ``RFC`` for ``RFC1``. DDR3
has one refresh mode. Reports list VPP as null, so DDR3 and DDR4 reports share
one layout.
"""

from __future__ import annotations

import dataclasses

from eden.dram.standards import ddr4
from eden.dram.standards.base import Domain, RefreshMode, Standard

_JSON_ALIASES = {"i6n": ("6n", "6"), "i2p": ("2p", "2p1"), "i3p": ("3p", "3p1")}

STANDARD = Standard(
    name="DDR3",
    description="DDR3 (JESD79-3), DRAMPower 5 core equations over VDD",
    domains=(Domain("VDD", "idd", scales_with_vdd=True),),
    currents=tuple(dataclasses.replace(c, json=_JSON_ALIASES.get(c.key, c.json)) for c in ddr4.CURRENTS),
    refresh_modes={1: RefreshMode(("5B", "5"), ("RFC1", "RFC"))},
    commands=ddr4.COMMANDS,
    background_states=ddr4.BACKGROUND_STATES,
    command_energies=ddr4.command_energies,
    background_powers=ddr4.background_powers,
    active_standby_power=ddr4.active_standby_power,
    derived_currents=ddr4.derived_currents,
    model="DRAMPower 5.x DDR4 core equations (core_calculation_DDR4.cpp; checked against a compiled v5.1)",
    reported_as_null=("VPP",),
)
