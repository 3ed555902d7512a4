"""Energy of a DRAM command trace, by DRAMPower v6.2.0's core state machine (DDR5, LPDDR4, LPDDR5).

A trace is a list of :class:`TraceCommand` (time in clock cycles, DRAMPower command name, rank,
bank group, bank). :func:`simulate` runs them through the state machine of
``/work/shared/power-model-standards.md`` section 1 (tukl-msd/DRAMPower v6.2.0,
``standards/<std>/<STD>Core.cpp``, ``dram/Rank.cpp``, ``util/cycle_stats.h``):

* ACT opens the bank (and the rank if it was not active); PRE closes an open bank (a closed one
  is ignored) and the rank when no bank is left open; PREA is PRE on every bank; DDR5's PRESB on
  one bank per bank group (bank ``g*banks_per_group + bank % banks_per_group``).
* RD/WR count; RDA/WRA count and schedule an implicit PRE at ``max(act start + tRAS, t + offset)``.
* A refresh of a bank (REFA: every bank for tRFC, then the rank stays active until t + tRFC;
  DDR5 REFSB: one bank per group for tRFCsb; LPDDR REFB: one bank, LPDDR5 REFP2B: banks b and
  (b + 8) mod 16, for tRFCpb) opens the bank and closes it at its end, without ACT/PRE counts.
* SREFEN is REFA, then self-refresh from t + tRFC; SREFEX ends it. LPDDR5's DSMEN/DSMEX bound
  deep sleep (inside self-refresh).
* PDEA/PDEP/PDXA/PDXP take effect at ``max(t, e)``, e the latest of every bank's ACT start +
  tRCD, last PRE + tRP and refresh end. PDEA closes the rank's and banks' active intervals;
  PDXA reopens only the banks whose interval ended at the power-down start; PDEP/PDXP only
  bound the precharged power-down interval.
* Implicit events run before any command at a later or equal time, in time order (FIFO on ties).

The window closes at ``end`` (default: the last command's time). Energies follow DRAMPower's
``energy_t``: per bank E_act, E_pre, E_bg_act, E_bg_pre, E_RD, E_WR, E_RDA, E_WRA, E_pre_RDA,
E_pre_WRA (reported, not in the total), E_ref_AB, E_ref_PB, E_ref_SB, E_ref_2B; per rank (times
the devices) E_bg_act_shared, E_PDNA, E_PDNP, E_sref, E_dsm. ``total`` sums all ranks and devices.
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import itertools
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from eden.core.validate import check_int
from eden.errors import EdenConfigError, EdenDataError, EdenFileNotFoundError
from eden.power.memspec import MemSpec

__all__ = ["TraceCommand", "TraceResult", "TraceSimulator", "read_trace", "simulate", "ENERGY_FIELDS",
           "COMMAND_NAMES"]

COMMAND_NAMES = ("ACT", "PRE", "PREA", "PRESB", "RD", "RDA", "WR", "WRA", "REFA", "REFB", "REFSB", "REFP2B",
                 "PDEA", "PDXA", "PDEP", "PDXP", "SREFEN", "SREFEX", "DSMEN", "DSMEX")
"""DRAMPower's command names a trace may hold (each standard accepts its own subset); ``END`` closes
the window, ``NOP`` is skipped."""

BANK_FIELDS = ("E_act", "E_pre", "E_bg_act", "E_bg_pre", "E_RD", "E_WR", "E_RDA", "E_WRA", "E_pre_RDA",
               "E_pre_WRA", "E_ref_AB", "E_ref_PB", "E_ref_SB", "E_ref_2B")
RANK_FIELDS = ("E_bg_act_shared", "E_PDNA", "E_PDNP", "E_sref", "E_dsm")
ENERGY_FIELDS = BANK_FIELDS + RANK_FIELDS
"""The fields of DRAMPower's energy struct, summed over ranks, devices and banks."""


@dataclasses.dataclass(frozen=True)
class TraceCommand:
    """One command: ``time`` [cycles], DRAMPower ``command``, ``rank``, ``bank_group``, ``bank``.

    ``bank`` is the bank index within the rank, as DRAMPower's core reads it (its CSV carries the
    bank group too, which the core does not use: DDR5's PRESB/REFSB derive the groups).
    """

    time: int
    command: str
    rank: int = 0
    bank_group: int = 0
    bank: int = 0


class _Interval:
    """DRAMPower's ``interval_counter``: a count plus an optional open interval."""

    __slots__ = ("count", "start", "end")

    def __init__(self) -> None:
        self.count = 0
        self.start: int | None = None
        self.end: int | None = None

    def is_open(self) -> bool:
        return self.start is not None and self.end is None

    def get_start(self) -> int:
        return 0 if self.start is None else self.start

    def get_end(self) -> int:
        return 0 if self.end is None else self.end

    def count_at(self, t: int) -> int:
        if self.is_open() and self.start is not None and t > self.start:
            return self.count + t - self.start
        return self.count

    def open(self, t: int) -> None:
        self.start, self.end = t, None

    def close(self, t: int) -> None:
        if not self.is_open():
            return
        assert self.start is not None
        self.end = t
        self.count += t - self.start


class _Bank:
    __slots__ = ("active", "act", "counter", "latest_pre", "refresh_end")

    def __init__(self) -> None:
        self.active = False
        self.act = _Interval()
        self.counter = dict.fromkeys(("act", "pre", "reads", "writes", "reads_auto", "writes_auto", "ref_ab",
                                      "ref_pb", "ref_sb", "ref_2b"), 0)
        self.latest_pre = 0
        self.refresh_end = 0


class _Rank:
    __slots__ = ("banks", "act", "pda", "pdp", "sref", "dsm", "end_refresh", "entries")

    def __init__(self, banks: int) -> None:
        self.banks = [_Bank() for _ in range(banks)]
        self.entries = {"self_refresh_entries": 0, "deep_sleep_entries": 0}
        self.act, self.pda, self.pdp, self.sref, self.dsm = (_Interval() for _ in range(5))
        self.end_refresh = 0

    def is_active(self, t: int) -> bool:
        return any(b.active for b in self.banks) or t < self.end_refresh


@dataclasses.dataclass(frozen=True)
class TraceResult:
    """Energy of a trace window [J] and the cycle counts behind it.

    Attributes:
        standard, memspec: the device.
        end: the window's end [cycles].
        energy: every field of :data:`ENERGY_FIELDS` summed over ranks, devices and banks, plus
            ``total`` (without E_pre_RDA/E_pre_WRA, as DRAMPower's ``total()``). ``E_bg_act``
            includes ``E_bg_act_shared``, as DRAMPower's ``aggregated_bank_energy()`` reports it
            (``total`` counts it once).
        by_domain: the same per voltage domain.
        cycles: per rank ``act, pre, power_down_active, power_down_precharged, self_refresh, deep_sleep``.
        counters: per rank the command counts summed over its banks.
        bank_energy: DRAMPower's per-bank entries (ranks x devices x banks, index
            ``(rank * devices + device) * banks + bank``; fields :data:`BANK_FIELDS`, domains summed).
        rank_energy: per rank :data:`RANK_FIELDS` (times the devices).
        banks: per rank, per bank: ``act_cycles``, ``pre_cycles`` and the command counters.
    """

    standard: str
    memspec: str
    end: int
    energy: dict[str, float]
    by_domain: dict[str, dict[str, float]]
    cycles: list[dict[str, int]]
    counters: list[dict[str, int]]
    bank_energy: list[dict[str, float]] = dataclasses.field(default_factory=list, repr=False)
    rank_energy: list[dict[str, float]] = dataclasses.field(default_factory=list, repr=False)
    banks: list[list[dict[str, int]]] = dataclasses.field(default_factory=list, repr=False)

    @property
    def total(self) -> float:
        return self.energy["total"]

    def to_dict(self) -> dict[str, Any]:
        return {"standard": self.standard, "memspec": self.memspec, "end_cycle": self.end,
                "total_pJ": self.total * 1e12,
                "energy_pJ": {k: v * 1e12 for k, v in self.energy.items()},
                "by_domain": {d: {k: v * 1e12 for k, v in e.items()} for d, e in self.by_domain.items()},
                "cycles": self.cycles, "counters": self.counters}


class _Machine:
    def __init__(self, spec: MemSpec, offsets: tuple[int, int] | None = None, two_bank_offset: int = 8) -> None:
        self.spec = spec
        self.std = spec.spec
        self.ranks = [_Rank(spec.banks) for _ in range(spec.ranks)]
        self.events: list[tuple[int, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        assert self.std.precharge_offsets is not None
        self.off_rd, self.off_wr = self.std.precharge_offsets(spec) if offsets is None else offsets
        self.bank_groups = max(1, int(dict(spec.params).get("bank_groups", 1) or 1))
        self.two_bank_offset = two_bank_offset

    # ------------------------------------------------------------ events
    def later(self, t: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self.events, (t, next(self.seq), fn))

    def run_until(self, t: int) -> None:
        while self.events and self.events[0][0] <= t:
            heapq.heappop(self.events)[2]()

    # ------------------------------------------------------------ handlers
    def act(self, r: _Rank, b: _Bank, t: int) -> None:
        b.counter["act"] += 1
        b.act.open(t)
        if not r.is_active(t):
            r.act.open(t)
        b.active = True

    def pre(self, r: _Rank, b: _Bank, t: int) -> None:
        if not b.active:
            return
        b.counter["pre"] += 1
        b.act.close(t)
        b.latest_pre = t
        b.active = False
        if not r.is_active(t):
            r.act.close(t)

    def refresh_bank(self, r: _Rank, b: _Bank, t: int, timing: int, counter: str) -> None:
        b.counter[counter] += 1
        if not r.is_active(t):
            r.act.open(t)
        b.active = True
        end = t + timing
        b.refresh_end = end
        if not b.act.is_open():
            b.act.open(t)

        def done() -> None:
            b.active = False
            b.act.close(end)
            if not r.is_active(end):
                r.act.close(end)
        self.later(end, done)

    def ref_all(self, r: _Rank, t: int) -> None:
        for b in r.banks:
            self.refresh_bank(r, b, t, self.spec.rfc, "ref_ab")
        r.end_refresh = t + self.spec.rfc

    def auto_pre(self, r: _Rank, b: _Bank, t: int, offset: int) -> None:
        when = max(b.act.get_start() + self.spec.ras, t + offset)
        self.later(when, lambda: self.pre(r, b, when))

    def pd_time(self, r: _Rank, t: int) -> int:
        e = 0
        for b in r.banks:
            e = max(e, 0 if b.counter["act"] == 0 else b.act.get_start() + self.spec.rcd,
                    0 if b.counter["pre"] == 0 else b.latest_pre + self.spec.rp, b.refresh_end)
        return max(t, e)

    def pdea(self, r: _Rank, t: int) -> None:
        def enter() -> None:
            r.pda.open(when)
            if r.act.is_open():
                r.act.close(when)
            for b in r.banks:
                if b.act.is_open():
                    b.act.close(when)
        when = self.pd_time(r, t)
        self.later(when, enter)

    def pdxa(self, r: _Rank, t: int) -> None:
        def leave() -> None:
            r.pda.close(when)
            reopened = False
            for b in r.banks:
                if b.counter["act"] != 0 and b.act.get_end() == r.pda.get_start():
                    reopened = True
                    b.act.open(when)
            if reopened:
                r.act.open(when)
        when = self.pd_time(r, t)
        self.later(when, leave)

    def do(self, c: TraceCommand) -> None:
        r = self.ranks[c.rank]
        b = r.banks[c.bank]
        t, cmd, spec = c.time, c.command, self.spec
        if cmd == "ACT":
            self.act(r, b, t)
        elif cmd == "PRE":
            self.pre(r, b, t)
        elif cmd == "PREA":
            for bank in r.banks:
                self.pre(r, bank, t)
        elif cmd in ("PRESB", "REFSB"):
            per_group = spec.banks // self.bank_groups
            for g in range(self.bank_groups):
                bank = r.banks[g * per_group + c.bank % per_group]
                if cmd == "PRESB":
                    self.pre(r, bank, t)
                else:
                    self.refresh_bank(r, bank, t, spec.rfcsb, "ref_sb")
        elif cmd == "RD":
            b.counter["reads"] += 1
        elif cmd == "WR":
            b.counter["writes"] += 1
        elif cmd == "RDA":
            b.counter["reads_auto"] += 1
            self.auto_pre(r, b, t, self.off_rd)
        elif cmd == "WRA":
            b.counter["writes_auto"] += 1
            self.auto_pre(r, b, t, self.off_wr)
        elif cmd == "REFA":
            self.ref_all(r, t)
        elif cmd == "REFB":
            self.refresh_bank(r, b, t, spec.rfcpb, "ref_pb")
        elif cmd == "REFP2B":
            second = r.banks[(c.bank + self.two_bank_offset) % 16]  # DRAMPower: offset 8, mod 16 (hard-coded)
            self.refresh_bank(r, b, t, spec.rfcpb, "ref_2b")
            self.refresh_bank(r, second, t, spec.rfcpb, "ref_2b")
        elif cmd == "SREFEN":
            self.ref_all(r, t)
            start = t + spec.rfc

            def enter_sref() -> None:
                r.entries["self_refresh_entries"] += 1
                r.sref.open(start)
            self.later(start, enter_sref)
        elif cmd == "SREFEX":
            r.sref.close(t)
        elif cmd == "PDEA":
            self.pdea(r, t)
        elif cmd == "PDXA":
            self.pdxa(r, t)
        elif cmd in ("PDEP", "PDXP"):
            when = self.pd_time(r, t)
            interval = r.pdp
            self.later(when, (lambda: interval.open(when)) if cmd == "PDEP" else (lambda: interval.close(when)))
        elif cmd == "DSMEN":
            r.entries["deep_sleep_entries"] += 1
            r.dsm.open(t)
        elif cmd == "DSMEX":
            r.dsm.close(t)


def _available(spec: MemSpec) -> set[str]:
    std = spec.spec
    return set(std.command_energies(spec)) | set(std.background_powers(spec))


def _check(spec: MemSpec, c: TraceCommand, i: int, previous: int | None, source: str,
           available: set[str], two_bank_offset: int = 8) -> None:
    std = spec.spec
    where = f"{source}: command {i + 1} ({c.command} at cycle {c.time})"
    if c.command not in std.trace_commands:
        raise EdenDataError(f"{where}: unknown command for {std.name}; known: {', '.join(std.trace_commands)}")
    if previous is not None and c.time < previous:
        raise EdenDataError(f"{where}: time goes back (previous command at cycle {previous})")
    if not 0 <= c.rank < spec.ranks:
        raise EdenDataError(f"{where}: rank {c.rank} out of range (the memspec has {spec.ranks})")
    if not 0 <= c.bank < spec.banks:
        raise EdenDataError(f"{where}: bank {c.bank} out of range (the memspec has {spec.banks} per rank)")
    need = {"REFSB": "refsb", "REFB": "refpb", "REFP2B": "refp2b", "PDEA": "power_down_active",
            "PDEP": "power_down_precharged", "SREFEN": "self_refresh", "DSMEN": "deep_sleep"}.get(c.command)
    if need is not None and need not in available:
        raise EdenDataError(f"{where}: the memspec cannot give its energy (a current it needs, or tREFI for "
                            f"per-bank refresh, is not given)")
    if c.command == "REFP2B":
        from eden.dram.standards.lpddr5 import bank_architecture

        if bank_architecture(spec) == "8B":
            raise EdenDataError(f"{where}: REFP2B is not supported in 8B mode (as DRAMPower)")
        if (c.bank + two_bank_offset) % 16 >= spec.banks:
            raise EdenDataError(f"{where}: REFP2B's second bank ({c.bank} + {two_bank_offset}) mod 16 is out of "
                                f"range (the memspec has {spec.banks} banks)")


class TraceSimulator:
    """DRAMPower v6.2.0's core state machine, fed one command at a time (:func:`simulate` runs a whole trace).

    Args:
        spec: the device (a standard with ``trace_commands``: DDR5, LPDDR4, LPDDR5).
        precharge_offsets: ``(RD, WR)`` cycles from RDA/WRA to the implicit PRE (default: the
            standard's, from the memspec's timings).
        two_bank_offset: LPDDR5 REFP2B's second bank is ``(bank + offset) mod 16`` (DRAMPower: 8).
        source: the trace's name in errors.
    """

    def __init__(self, spec: MemSpec, *, precharge_offsets: tuple[int, int] | None = None,
                 two_bank_offset: int = 8, source: str = "<trace>") -> None:
        if not isinstance(spec, MemSpec):
            raise EdenConfigError(f"TraceSimulator: spec must be a MemSpec, got {type(spec).__name__}")
        std = spec.spec
        if not std.trace_commands or std.precharge_offsets is None:
            raise EdenConfigError(f"command traces are modelled for DDR5, LPDDR4 and LPDDR5 (DRAMPower v6.2.0's "
                                  f"state machine); {std.name} has none")
        self.spec = spec
        self.source = source
        self.machine = _Machine(spec, precharge_offsets, two_bank_offset)
        self.available = _available(spec)
        self.count = 0
        self.last: int | None = None

    def command(self, c: TraceCommand) -> None:
        """Run the implicit events due by ``c.time``, then ``c``."""
        _check(self.spec, c, self.count, self.last, self.source, self.available, self.machine.two_bank_offset)
        self.machine.run_until(c.time)
        self.machine.do(c)
        self.count += 1
        self.last = c.time

    def result(self, end: int) -> TraceResult:
        """The statistics and energy of the window ``[0, end]`` (runs the implicit events due by ``end``)."""
        end = check_int("end", end, lo=0)
        if self.last is not None and end < self.last:
            raise EdenConfigError(f"{self.source}: end = {end} is before the last command (cycle {self.last})")
        self.machine.run_until(end)
        return _energy(self.spec, self.machine, end)


def simulate(spec: MemSpec, commands: Iterable[TraceCommand], *, end: int | None = None,
             source: str = "<trace>", precharge_offsets: tuple[int, int] | None = None) -> TraceResult:
    """Run a command trace through DRAMPower v6.2.0's state machine and book its energy.

    Args:
        spec: the device (DDR5, LPDDR4 or LPDDR5; its ranks and devices are simulated).
        commands: in time order.
        end: the window's end [cycles] (default: the last command's time); not before it.
        source: the trace's name in errors.
        precharge_offsets: see :class:`TraceSimulator`.

    Raises:
        EdenConfigError: a standard without trace support, a bad ``end``.
        EdenDataError: an unknown command, a time that goes back, a rank or bank out of range, a
            command whose energy the memspec cannot give.
    """
    sim = TraceSimulator(spec, precharge_offsets=precharge_offsets, source=source)
    for c in commands:
        sim.command(c)
    return sim.result((sim.last or 0) if end is None else end)


def _energy(spec: MemSpec, m: _Machine, end: int) -> TraceResult:
    std = spec.spec
    tck = spec.tck_s
    e_cmd = std.command_energies(spec)
    n_dev, nb = spec.devices, spec.banks
    bg = m.bank_groups
    by_domain: dict[str, dict[str, float]] = {}
    # DRAMPower's bank_energy: ranks x devices x banks entries (devices are copies), summed over domains
    bank_energy = [dict.fromkeys(BANK_FIELDS, 0.0) for _ in range(spec.ranks * n_dev * nb)]
    rank_energy = [dict.fromkeys(RANK_FIELDS, 0.0) for _ in range(spec.ranks)]
    for dom in spec.domains:
        acc = dict.fromkeys(ENERGY_FIELDS, 0.0)
        if not dom.currents:  # a voltage-only domain (HBM3's VDDQ) carries no core current
            by_domain[dom.name] = {**acc, "total": 0.0}
            continue
        c = std.derived_currents(spec, dom.name)
        i_bank = c.get("i_bank", c["i_1"] - c["i_rho"])
        i_shared = c.get("i_shared", c["i_rho"])
        v = dom.v

        def per(key: str, _d: str = dom.name) -> float:
            return e_cmd.get(key, {}).get(_d, 0.0)

        pre_e = per("pre")
        i6 = getattr(dom, "i6n", None) if std.name == "DDR5" else getattr(dom, "i6", None)
        for r, rank in enumerate(m.ranks):
            sref = rank.sref.count_at(end)
            pda, pdp, dsm = rank.pda.count_at(end), rank.pdp.count_at(end), rank.dsm.count_at(end)
            rank_act = rank.act.count_at(end)
            rank_pre = end - (rank_act + pda + pdp + sref)
            for j, b in enumerate(rank.banks):
                k = b.counter
                bank = {
                    "E_act": per("act") * k["act"], "E_pre": pre_e * k["pre"],
                    "E_bg_act": v * i_bank * (b.act.count_at(end) * tck),
                    "E_bg_pre": (1.0 / nb) * v * dom.i2n * (rank_pre * tck),
                    "E_RD": per("rd") * k["reads"], "E_WR": per("wr") * k["writes"],
                    "E_RDA": per("rd") * k["reads_auto"], "E_WRA": per("wr") * k["writes_auto"],
                    "E_pre_RDA": pre_e * k["reads_auto"], "E_pre_WRA": pre_e * k["writes_auto"],
                    "E_ref_AB": per(std.refresh_command) / nb * k["ref_ab"],
                    "E_ref_PB": per("refpb") * k["ref_pb"], "E_ref_SB": per("refsb") / bg * k["ref_sb"],
                    "E_ref_2B": per("refp2b") / 2 * k["ref_2b"],
                }
                for key, value in bank.items():
                    acc[key] += value * n_dev
                    for d in range(n_dev):
                        bank_energy[(r * n_dev + d) * nb + j][key] += value
            rank_values = {
                "E_bg_act_shared": v * i_shared * (rank_act * tck),
                "E_PDNA": v * (getattr(dom, "i3p", None) or 0.0) * (pda * tck),
                "E_PDNP": v * (getattr(dom, "i2p", None) or 0.0) * (pdp * tck),
                "E_sref": v * (i6 or 0.0) * (((sref - dsm) if std.name == "LPDDR5" else sref) * tck),
                "E_dsm": v * (getattr(dom, "i6ds", None) or 0.0) * (dsm * tck),
            }
            for key, value in rank_values.items():
                acc[key] += value * n_dev
                rank_energy[r][key] += value * n_dev
        acc["total"] = sum(acc[k] for k in ENERGY_FIELDS if k not in ("E_pre_RDA", "E_pre_WRA"))
        acc["E_bg_act"] += acc["E_bg_act_shared"]  # as DRAMPower's aggregated_bank_energy()
        by_domain[dom.name] = acc
    energy = {k: sum(d[k] for d in by_domain.values()) for k in (*ENERGY_FIELDS, "total")}
    cycles, counters = [], []
    for rank in m.ranks:
        sref, pda, pdp = rank.sref.count_at(end), rank.pda.count_at(end), rank.pdp.count_at(end)
        act = rank.act.count_at(end)
        cycles.append({"act": act, "pre": end - (act + pda + pdp + sref), "power_down_active": pda,
                       "power_down_precharged": pdp, "self_refresh": sref, "deep_sleep": rank.dsm.count_at(end)})
        counters.append({**{k: sum(b.counter[k] for b in rank.banks) for k in rank.banks[0].counter},
                         **rank.entries})
    banks = []
    for rank in m.ranks:
        off = rank.pda.count_at(end) + rank.pdp.count_at(end) + rank.sref.count_at(end)
        banks.append([{"act_cycles": b.act.count_at(end), "pre_cycles": end - (b.act.count_at(end) + off),
                       **b.counter} for b in rank.banks])
    return TraceResult(std.name, spec.name, end, energy, by_domain, cycles, counters, bank_energy, rank_energy,
                       banks)


def read_trace(path: str | os.PathLike) -> tuple[list[TraceCommand], int | None]:
    """A CSV trace: ``time,command,rank,bank_group,bank`` per line (DRAMPower's CLI columns; further columns
    such as row, column and data are ignored; an optional header line starting with ``time``; ``#``
    comments). ``END`` gives the window's end; returns ``(commands, end or None)``.

    Raises:
        EdenFileNotFoundError: no such file.
        EdenDataError: a malformed line (the message names file, line and field).
    """
    p = Path(os.fspath(path))
    if not p.is_file():
        raise EdenFileNotFoundError(f"trace file {str(p)!r} not found")
    out: list[TraceCommand] = []
    end = None
    with open(p, newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            cells = [x.strip() for x in row]
            if not cells or not cells[0] or cells[0].startswith("#"):
                continue
            if lineno == 1 and cells[0].lower().startswith("time"):
                continue
            where = f"{p}:{lineno}"
            if len(cells) < 2:
                raise EdenDataError(f"{where}: expected time,command,rank,bank_group,bank; got {','.join(row)!r}")
            name = cells[1].upper()
            values = []
            for field, text in zip(("time", "rank", "bank_group", "bank"), [cells[0], *cells[2:5]], strict=False):
                try:
                    value = int(text)
                except ValueError:
                    raise EdenDataError(f"{where}: field {field!r} must be a whole number, got {text!r}") from None
                if value < 0:
                    raise EdenDataError(f"{where}: field {field!r} must be >= 0, got {value}")
                values.append(value)
            time = values[0]
            if out and time < out[-1].time:
                raise EdenDataError(f"{where}: field 'time' goes back ({time} after {out[-1].time})")
            if name == "END":
                end = time
                continue
            if name == "NOP":
                continue
            if name not in COMMAND_NAMES:
                raise EdenDataError(f"{where}: field 'command': unknown command {cells[1]!r}; known: "
                                    f"{', '.join(COMMAND_NAMES)}, END, NOP")
            rest = values[1:] + [0] * (3 - len(values[1:]))
            out.append(TraceCommand(time, name, rest[0], rest[1], rest[2]))
    return out, end
