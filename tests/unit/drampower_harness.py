"""Runs DRAMPower v6.2.0's core unit tests (translated by scripts/translate_drampower_tests.py) on eden's model.

The C++ tests build a ``MemSpec<STD>`` from a test JSON, then overwrite some of its members
(``memSpec->memTimingSpec.tRAS = 10``). DRAMPower derives some members once, at construction
(``prechargeOffsetRD/WR``, ``tBurst``, ``tWCK``, ``banksPerGroup``, ``bank_arch``) and does not
recompute them when a test overwrites what they came from. :class:`CppMemSpec` mirrors those members
(initialised from the JSON as DRAMPower derives them, then assigned as the test assigns them) and
:meth:`CppMemSpec.to_eden` turns the result into an eden :class:`MemSpec` plus the simulator's
precharge offsets, so eden runs on exactly the state the C++ test runs on.

The statistics and energy objects mimic DRAMPower's (``stats.bank[i].counter.act``,
``energy.bank_energy[i].E_bg_act``, ``energy.aggregated_bank_energy().total()``), so the translated
assertions read as the C++ ones.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from eden.power.memspec import MemSpec
from eden.power.trace import BANK_FIELDS, RANK_FIELDS, TraceCommand, TraceResult, TraceSimulator

RESOURCES = Path(__file__).resolve().parent.parent / "data" / "drampower"

_DDR5_CURRENTS = {"iXX0": "i0", "iXX2N": "i2n", "iXX3N": "i3n", "iXX4R": "i4r", "iXX4W": "i4w", "iXX5X": "i5x",
                  "iXX5C": "i5c", "iXX6N": "i6n", "iXX2P": "i2p", "iXX3P": "i3p", "iBeta": "ibeta"}
_LPDDR_CURRENTS = {"iDD0X": "i0", "iDD2NX": "i2n", "iDD3NX": "i3n", "iDD4RX": "i4r", "iDD4WX": "i4w", "iDD5X": "i5",
                   "iDD5PBX": "i5pb", "iDD6X": "i6", "iDD6DSX": "i6ds", "iDD2PX": "i2p", "iDD3PX": "i3p",
                   "iBeta": "ibeta"}


def cround(x: float) -> float:
    """C's ``std::round``: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def ctrunc(x: float) -> int:
    """C's ``(int)`` cast: towards zero."""
    return int(x)


class CppMemSpec:
    """DRAMPower's ``MemSpec<STD>`` members as a C++ test sees and assigns them (flat ``"a.b"`` keys)."""

    def __init__(self, standard: str, json_name: str) -> None:
        base = MemSpec.from_drampower_json(RESOURCES / json_name)
        self.standard = standard
        self.base = base
        m: dict[str, Any] = {
            "numberOfRanks": base.ranks, "numberOfDevices": base.devices, "numberOfBanks": base.banks,
            "burstLength": base.burst_length, "dataRate": base.data_rate, "bitWidth": 0,
            "bwParams.bwPowerFactRho": base.fact_rho, "perTwoBankOffset": 8,
            "memTimingSpec.tCK": base.tck_s, "memTimingSpec.tRAS": base.ras, "memTimingSpec.tRP": base.rp,
            "memTimingSpec.tRCD": base.rcd, "memTimingSpec.tRFC": base.rfc, "memTimingSpec.tREFI": base.refi or 0,
            "memTimingSpec.tWR": base.wr, "memTimingSpec.tWL": base.wl,
        }
        params = dict(base.params)
        if standard == "DDR5":
            m["numberOfBankGroups"] = params["bank_groups"]
            m["banksPerGroup"] = base.banks // params["bank_groups"]
            m["memTimingSpec.tRFCsb"] = params["rfcsb"]
            m["memTimingSpec.tRTP"] = base.rtp
            m["memTimingSpec.tBurst"] = base.burst_length // base.data_rate
            names, prefix = _DDR5_CURRENTS, "vXX"
        else:
            m["memTimingSpec.tRFCPB"] = params["rfcpb"]
            m["numberOfBankGroups"] = params.get("bank_groups", 1)
            m["banksPerGroup"] = base.banks // max(1, m["numberOfBankGroups"])
            if standard == "LPDDR5":
                m["memTimingSpec.tRBTP"] = base.rtp
                m["memTimingSpec.WCKtoCK"] = params["wck2ck"]
                m["memTimingSpec.tWCK"] = base.tck_s / params["wck2ck"]
                m["memTimingSpec.tBurst"] = base.burst_length // (base.data_rate * params["wck2ck"])
                from eden.dram.standards.lpddr5 import bank_architecture

                m["bank_arch"] = "M" + bank_architecture(base)
            else:
                m["memTimingSpec.tRTP"] = base.rtp
            names, prefix = _LPDDR_CURRENTS, "vDDX"
        for i, dom in enumerate(base.domains):
            m[f"memPowerSpec[{i}].{prefix}"] = dom.v
            for cpp, key in names.items():
                if key in dict(dom.currents):
                    m[f"memPowerSpec[{i}].{cpp}"] = getattr(dom, key)
        m["prechargeOffsetRD"], m["prechargeOffsetWR"] = base.spec.precharge_offsets(base)
        self.members = m
        self._names, self._prefix = names, prefix

    def __getitem__(self, key: str) -> Any:
        if key not in self.members:
            raise KeyError(f"the test reads memSpec member {key!r}, which the harness does not mirror")
        return self.members[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self.members:
            raise KeyError(f"the test sets memSpec member {key!r}, which the harness does not mirror")
        self.members[key] = value

    def to_eden(self) -> tuple[MemSpec, dict[str, Any]]:
        """(the eden memspec, the simulator's keyword arguments) of the current member values."""
        m, base = self.members, self.base
        domains = []
        for i, dom in enumerate(base.domains):
            changes = {key: m[f"memPowerSpec[{i}].{cpp}"] for cpp, key in self._names.items()
                       if f"memPowerSpec[{i}].{cpp}" in m}
            changes["v"] = m[f"memPowerSpec[{i}].{self._prefix}"]
            domains.append(dom.replace(**changes))
        params = dict(base.params)
        if "bank_groups" in params:
            params["bank_groups"] = m["numberOfBankGroups"]
        if "rfcsb" in params:
            params["rfcsb"] = m["memTimingSpec.tRFCsb"]
        if "rfcpb" in params:
            params["rfcpb"] = m["memTimingSpec.tRFCPB"]
        if "wck2ck" in params:  # tWCK is derived once in DRAMPower; the tests may set it apart from WCKtoCK
            params["wck2ck"] = round(m["memTimingSpec.tCK"] / m["memTimingSpec.tWCK"])
        spec = dataclasses.replace(
            base, ranks=m["numberOfRanks"], devices=max(1, m["numberOfDevices"]), banks=m["numberOfBanks"],
            burst_length=m["burstLength"], data_rate=m["dataRate"], tck_s=m["memTimingSpec.tCK"],
            ras=m["memTimingSpec.tRAS"], rp=m["memTimingSpec.tRP"], rcd=m["memTimingSpec.tRCD"],
            rfc=m["memTimingSpec.tRFC"], refi=m["memTimingSpec.tREFI"] or None, domains=tuple(domains),
            fact_rho=m["bwParams.bwPowerFactRho"], params=tuple(params.items()))
        if self.standard == "LPDDR5":
            from eden.dram.standards.lpddr5 import bank_architecture

            # only BG mode changes an energy (reads/writes subtract I_2); 16B and 8B book alike
            assert (bank_architecture(spec) == "BG") == (m["bank_arch"] == "MBG"), (
                f"bank architecture: eden derives {bank_architecture(spec)} from {spec.banks} banks / "
                f"{m['numberOfBankGroups']} groups, the test sets {m['bank_arch']}")
        if self.standard == "DDR5":
            assert m["banksPerGroup"] == spec.banks // m["numberOfBankGroups"], "banksPerGroup != banks / groups"
        return spec, {"precharge_offsets": (m["prechargeOffsetRD"], m["prechargeOffsetWR"]),
                      "two_bank_offset": m["perTwoBankOffset"]}


class Core:
    """``ddr`` of a C++ test: commands in, DRAMPower-shaped statistics and energies out."""

    def __init__(self, cpp: CppMemSpec, pattern: list[tuple] | None = None) -> None:
        self.cpp = cpp
        spec, kwargs = cpp.to_eden()
        self.spec = spec
        self.sim = TraceSimulator(spec, **kwargs)
        self.last = 0
        self.pattern = pattern or []
        self.cursor = 0

    def run(self, commands: list[tuple]) -> None:
        for c in commands:
            self.command(*c)

    def iterate_to(self, t: int) -> None:
        """The tests' ``iterate_to_timestamp``: feed the pattern's commands up to time ``t``."""
        while self.cursor < len(self.pattern) and self.pattern[self.cursor][0] <= t:
            self.command(*self.pattern[self.cursor])
            self.cursor += 1

    def iterate_window(self, t: int) -> SimpleNamespace:
        self.iterate_to(t)
        return self.window(t)

    def command(self, time: int, name: str, bank: int = 0, bank_group: int = 0, rank: int = 0) -> None:
        self.last = max(self.last, time)
        if name in ("END_OF_SIMULATION", "NOP"):
            return
        self.sim.command(TraceCommand(time, name, rank, bank_group, bank))

    def window(self, t: int) -> SimpleNamespace:
        return _stats(self, self.sim.result(t))

    def stats(self) -> SimpleNamespace:
        return self.window(self.last)

    def energy(self, t: int) -> Energy:
        return Energy(self.sim.result(t))

    def rank(self, r: int) -> SimpleNamespace:
        res = self.sim.result(self.last)
        counts = res.counters[r]
        return SimpleNamespace(banks=[SimpleNamespace(counter=_counter(b)) for b in res.banks[r]],
                               counter=SimpleNamespace(selfRefresh=counts["self_refresh_entries"],
                                                       deepSleepMode=counts["deep_sleep_entries"]))


def _counter(b: dict[str, int]) -> SimpleNamespace:
    return SimpleNamespace(act=b["act"], pre=b["pre"], reads=b["reads"], writes=b["writes"],
                           readAuto=b["reads_auto"], writeAuto=b["writes_auto"], refAllBank=b["ref_ab"],
                           refPerBank=b["ref_pb"], refSameBank=b["ref_sb"], refPerTwoBanks=b["ref_2b"],
                           refDualBanks=0)


class _Cycles(SimpleNamespace):
    def activeTime(self) -> int:  # noqa: N802 (DRAMPower's name)
        return self.act


def _stats(core: Core, res: TraceResult) -> SimpleNamespace:
    std = core.spec.standard
    banks, ranks = [], []
    for r, c in enumerate(res.cycles):
        sref, dsm = c["self_refresh"], c["deep_sleep"]
        bank_sref = sref if std == "DDR5" else sref - dsm
        rank_sref = sref - dsm if std == "LPDDR5" else sref
        for b in res.banks[r]:
            banks.append(SimpleNamespace(counter=_counter(b), cycles=_Cycles(
                act=b["act_cycles"], pre=b["pre_cycles"], selfRefresh=bank_sref, powerDownAct=c["power_down_active"],
                powerDownPre=c["power_down_precharged"], deepSleepMode=dsm if std == "LPDDR5" else 0)))
        ranks.append(SimpleNamespace(cycles=_Cycles(
            act=c["act"], pre=c["pre"], selfRefresh=rank_sref, powerDownAct=c["power_down_active"],
            powerDownPre=c["power_down_precharged"], deepSleepMode=dsm)))
    return SimpleNamespace(bank=banks, rank_total=ranks)


class _Fields(SimpleNamespace):
    def total(self) -> float:
        return sum(getattr(self, k) for k in BANK_FIELDS if k not in ("E_pre_RDA", "E_pre_WRA"))


class Energy:
    """DRAMPower's ``energy_t``: ``bank_energy`` entries, the rank terms, ``total()``, ``aggregated_bank_energy()``."""

    def __init__(self, res: TraceResult) -> None:
        self.bank_energy = [_Fields(**e) for e in res.bank_energy]
        for key in RANK_FIELDS:
            setattr(self, key, sum(r[key] for r in res.rank_energy))
        self._res = res

    def aggregated_bank_energy(self) -> _Fields:
        agg = {k: sum(getattr(e, k) for e in self.bank_energy) for k in BANK_FIELDS}
        agg["E_bg_act"] += self.E_bg_act_shared  # type: ignore[attr-defined]
        return _Fields(**agg)

    def total(self) -> float:
        return self._res.energy["total"]
