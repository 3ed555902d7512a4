"""DRAM traffic of one inference -> commands, energy and latency, nominal vs an operating point.

Pipeline (every assumption is a field of :class:`AccessModel` or an argument):

1. **Traffic** (:class:`DataTypeTraffic`): per data type, the bytes read and
   written per inference. :func:`inference_traffic` builds it from tensor
   sizes: one inference is one forward pass of ``batch_size`` samples; weights
   are read ``weight_reads`` times per pass (default once, reused across the
   batch) and never written; each IFM is written once per sample by its
   producer (the data loader for the network input) and read once per sample
   by each of its consumers.
2. **Commands** (:func:`command_counts`): each read or write burst of
   ``bus_width_bits / 8 * burst_length`` bytes is one RD or WR command (partial
   bursts count whole). Data types occupy ``footprint_bytes`` of the partition
   (row-aligned one after the other, or at given base addresses) and are
   streamed in address order, one data type at a time in list order, writes
   before reads; passes beyond the footprint wrap to its start. The address
   map (``eden.dram.address``) gives each row-sized chunk its (bank, row). Under
   the open-page policy a burst is a row hit if its bank already has its row
   open, else a miss (ACT; the displaced row's PRE). The hit rate is thus
   *computed from the access order* (a best case: real accelerators interleave
   streams), or *given* (``RowBufferPolicy(hit_rate=...)``); closed page makes
   every burst a miss. Every ACT is eventually precharged: N_PRE = N_ACT.
3. **Time** (:func:`latency_report`): DRAM access time
   ``t = N_bursts * (BL/DR) * tCK + N_miss * (1 - miss_overlap) * (t_RP + t_RCD)``
   (a miss is a row conflict; ``miss_overlap`` is the part of its penalty hidden
   by bank parallelism). Reduced tRCD shortens every miss by
   ``t_RCD,nominal - t_RCD,op`` (whole clock cycles by default). The
   end-to-end speedup for a memory-bound fraction f is Amdahl's
   ``1 / ((1 - f) + f * t_op / t_nominal)``.
4. **Energy** (:func:`energy_report`): commands times the per-command energies
   of ``eden.power.memspec`` (times the devices of the rank), plus background power
   over the run time and refresh (``run_time / tREFI`` REFA commands, each
   charged E_REFA on top of the background, as DRAMPower books it). The run
   time is ``run_time_s`` if given, else ``t_access / f``; at the operating
   point it shrinks by the saved access time (Amdahl), so reduced tRCD saves
   background and refresh energy, never per-command energy. Background: rows
   stay open under open page (active standby, all banks, during the whole run
   unless ``idle_rows_open=False``); closed page keeps one bank open while
   accessing and precharged standby otherwise. Shared energy (background,
   refresh) is attributed to data types in proportion to their access time.

All energies are for one rank (``memspec.devices`` devices) in J; times in s.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from eden.core import io as _io
from eden.core.validate import Mode, check_int, check_number
from eden.dram.address import AddressMap, AddressScheme, DramOrganization
from eden.errors import EdenConfigError, EdenTypeError
from eden.power.memspec import MemSpec, PerDomain, Rounding, active_standby_power, command_energies, ns_to_cycles

__all__ = [
    "DataTypeTraffic", "inference_traffic", "RowBufferPolicy", "AccessModel", "CommandCounts",
    "command_counts", "LatencyReport", "latency_report", "EnergyBreakdown", "DataTypeEnergy",
    "EnergyReport", "energy_report", "PageKind", "Layout", "TimingGranularity", "TrafficKind",
    "ROW_BUFFER_POLICIES", "LAYOUTS", "TIMING_GRANULARITIES",
]



class PageKind(Mode):
    """Row-buffer policy: rows stay open until another row of the bank is needed, or close after each burst."""

    OPEN_PAGE = "open_page"
    CLOSED_PAGE = "closed_page"


class Layout(Mode):
    """Default placement of data types without base addresses: each starts a new row, or the next burst."""

    ROW_ALIGNED = "row_aligned"
    PACKED = "packed"


class TimingGranularity(Mode):
    """How an operating tRCD is applied: rounded up to whole clocks, or in ns as given."""

    CYCLE = "cycle"
    NS = "ns"


class TrafficKind(Mode):
    """What a tensor of :func:`inference_traffic` is: a stored weight or an input feature map."""

    WEIGHT = "weight"
    IFM = "ifm"


ROW_BUFFER_POLICIES = PageKind.values()
LAYOUTS = Layout.values()
TIMING_GRANULARITIES = TimingGranularity.values()
TRAFFIC_COMMANDS = ("act", "pre", "rd", "wr")
"""Command keys the traffic model books, with the standard's all-bank refresh (``Standard.refresh_command``:
``refa`` for DDR3/DDR4, ``refab`` for the others); a standard used here must declare them."""


# ----------------------------------------------------------------------------- traffic
@dataclasses.dataclass(frozen=True)
class DataTypeTraffic:
    """DRAM traffic of one data type per inference.

    Attributes:
        name: the data type (``"conv1.weight"``, ``"conv1.ifm"``).
        bytes_read: bytes read from DRAM per inference.
        bytes_written: bytes written to DRAM per inference.
        footprint_bytes: bytes the data type occupies in DRAM; traffic beyond
            it is further passes over the same addresses. Defaults to
            ``max(bytes_read, bytes_written)``.
    """

    name: str
    bytes_read: int
    bytes_written: int
    footprint_bytes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise EdenConfigError(f"DataTypeTraffic.name must be a non-empty string, got {self.name!r}")
        read = check_int(f"DataTypeTraffic({self.name!r}).bytes_read", self.bytes_read, lo=0)
        written = check_int(f"DataTypeTraffic({self.name!r}).bytes_written", self.bytes_written, lo=0)
        object.__setattr__(self, "bytes_read", read)
        object.__setattr__(self, "bytes_written", written)
        if self.footprint_bytes is None:
            object.__setattr__(self, "footprint_bytes", max(read, written))
        else:
            fp = check_int(f"DataTypeTraffic({self.name!r}).footprint_bytes", self.footprint_bytes, lo=0)
            if fp == 0 and (read or written):
                raise EdenConfigError(f"DataTypeTraffic({self.name!r}).footprint_bytes must be > 0 when it has "
                                 f"traffic, got {fp}")
            object.__setattr__(self, "footprint_bytes", fp)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _footprint(t: DataTypeTraffic) -> int:
    """``t.footprint_bytes``, which ``__post_init__`` always sets."""
    assert t.footprint_bytes is not None
    return t.footprint_bytes


def inference_traffic(tensors: Iterable[tuple[str, str, int]], *, batch_size: int, weight_reads: int = 1,
                      consumers: Mapping[str, int] | None = None) -> list[DataTypeTraffic]:
    """Traffic of one forward pass of a batch, from tensor sizes.

    Args:
        tensors: ``(name, kind, nbytes)`` in network order; ``kind`` is
            ``"weight"`` (``nbytes`` of the stored tensor) or ``"ifm"``
            (``nbytes`` per sample, as stored in DRAM).
        batch_size: samples per forward pass (one inference).
        weight_reads: times each weight tensor is read per pass (1: fetched
            once and reused for the whole batch).
        consumers: layers that read each IFM (default 1 per IFM).

    Returns:
        One :class:`DataTypeTraffic` per tensor, in the given order. Weights:
        read ``weight_reads * nbytes``, written 0, footprint ``nbytes``. IFMs:
        written ``batch_size * nbytes``, read ``consumers * batch_size * nbytes``,
        footprint ``batch_size * nbytes`` (the batch's maps coexist in DRAM).

    Example:
        >>> [t.bytes_read for t in inference_traffic([("fc.weight", "weight", 4000), ("fc.ifm", "ifm", 400)],
        ...                                             batch_size=8)]
        [4000, 3200]
    """
    batch = check_int("inference_traffic: batch_size", batch_size, lo=1)
    reads = check_int("inference_traffic: weight_reads", weight_reads, lo=0)
    consumers = dict(consumers or {})
    out, seen = [], set()
    for entry in tensors:
        if not isinstance(entry, (tuple, list)) or len(entry) != 3:
            raise EdenConfigError(f"inference_traffic: each tensor is (name, kind, nbytes), got {entry!r}")
        name, kind, nbytes = entry
        nbytes = check_int(f"inference_traffic: nbytes of {name!r}", nbytes, lo=0)
        kind = TrafficKind.coerce(kind, f"kind of tensor {name!r}")
        if kind is TrafficKind.WEIGHT:
            out.append(DataTypeTraffic(name, reads * nbytes, 0, nbytes))
        else:
            n = check_int(f"inference_traffic: consumers of {name!r}", consumers.get(name, 1), lo=0)
            out.append(DataTypeTraffic(name, n * batch * nbytes, batch * nbytes, batch * nbytes))
        seen.add(name)
    stray = sorted(set(consumers) - seen)
    if stray:
        raise EdenConfigError(f"inference_traffic: consumers given for unknown tensors {stray}")
    return out


# ----------------------------------------------------------------------------- assumptions
@dataclasses.dataclass(frozen=True)
class RowBufferPolicy:
    """Row-buffer policy.

    Attributes:
        kind: ``"open_page"`` (rows stay open until another row of the bank is
            needed) or ``"closed_page"`` (every burst activates and precharges).
        hit_rate: open page only: a given row-hit rate in [0, 1] instead of
            the one computed from the access order.
    """

    kind: PageKind = PageKind.OPEN_PAGE
    hit_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PageKind.coerce(self.kind, "RowBufferPolicy.kind"))
        if self.hit_rate is not None:
            if self.kind is not PageKind.OPEN_PAGE:
                raise EdenConfigError(f"RowBufferPolicy.hit_rate applies to open_page only, got kind={self.kind}")
            object.__setattr__(self, "hit_rate",
                               check_number("RowBufferPolicy.hit_rate", self.hit_rate, lo=0.0, hi=1.0))

    def describe(self) -> str:
        if self.kind is PageKind.CLOSED_PAGE:
            return "closed page (every burst ACT + PRE)"
        if self.hit_rate is None:
            return "open page, hit rate computed from the access order"
        return f"open page, given hit rate {self.hit_rate:g}"


@dataclasses.dataclass(frozen=True)
class AccessModel:
    """Every assumption that turns traffic into commands, time and background.

    Attributes:
        policy: the row-buffer policy (and optional given hit rate).
        scheme: address-map scheme (``eden.dram.address.SCHEMES``).
        layout: default placement when no base addresses are given:
            ``"row_aligned"`` (each data type starts a new row) or ``"packed"``
            (next burst boundary), in traffic order from address 0.
        miss_overlap: fraction in [0, 1] of a row miss's tRP + tRCD penalty
            hidden by bank parallelism (0: misses stall the stream).
        timing_granularity: ``"cycle"``: the operating tRCD is rounded up to
            whole clocks like the nominal one (``eden.power.memspec.ns_to_cycles``);
            ``"ns"``: used as given.
        idle_rows_open: open page: rows stay open outside access time
            (active standby); False: precharged standby when idle.
        refresh: charge refresh (needs tREFI in the memspec).
        ecc: the ECC code of the memory ("none" or a registered code, ``eden.engine.ecc``): its check
            bits' energy is charged per :mod:`eden.power.ecc` (rank-level: every component x n/k;
            on-die: array activity x n/k); no extra commands or time.
    """

    policy: RowBufferPolicy = RowBufferPolicy()
    scheme: AddressScheme = AddressScheme.ROW_BANK
    layout: Layout = Layout.ROW_ALIGNED
    miss_overlap: float = 0.0
    timing_granularity: TimingGranularity = TimingGranularity.CYCLE
    idle_rows_open: bool = True
    refresh: bool = True
    ecc: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.policy, RowBufferPolicy):
            raise EdenTypeError(f"AccessModel.policy must be a RowBufferPolicy, got {self.policy!r}")
        object.__setattr__(self, "scheme", AddressScheme.coerce(self.scheme, "AccessModel.scheme"))
        object.__setattr__(self, "layout", Layout.coerce(self.layout, "AccessModel.layout"))
        object.__setattr__(self, "miss_overlap",
                           check_number("AccessModel.miss_overlap", self.miss_overlap, lo=0.0, hi=1.0))
        object.__setattr__(self, "timing_granularity",
                           TimingGranularity.coerce(self.timing_granularity, "AccessModel.timing_granularity"))
        for name in ("idle_rows_open", "refresh"):
            if not isinstance(getattr(self, name), bool):
                raise EdenTypeError(f"AccessModel.{name} must be a bool, got {getattr(self, name)!r}")
        if self.ecc != "none":
            from eden.engine.ecc import get_code

            get_code(self.ecc)  # an unknown code fails here, naming the known ones

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["policy"]["description"] = self.policy.describe()
        if self.ecc == "none":  # reports without ECC keep their keys
            del out["ecc"]
        return out


# ----------------------------------------------------------------------------- commands
@dataclasses.dataclass(frozen=True)
class CommandCounts:
    """DRAM commands of one data type per inference (one rank).

    Attributes:
        name: the data type.
        rd: RD commands (read bursts).
        wr: WR commands (write bursts).
        act: ACT commands = row misses (an expected value when the hit rate is given).
        pre: PRE commands (= ``act``: every activation is eventually precharged).
        base_address: where the data type starts in the partition, if placed.
    """

    name: str
    rd: int
    wr: int
    act: float
    pre: float
    base_address: int | None = None

    @property
    def bursts(self) -> int:
        return self.rd + self.wr

    @property
    def row_misses(self) -> float:
        return self.act

    @property
    def hit_rate(self) -> float | None:
        """Row-buffer hit rate of the bursts (None without bursts)."""
        return None if self.bursts == 0 else 1.0 - self.act / self.bursts

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hit_rate"] = self.hit_rate
        return out


def _burst_bytes(organization: DramOrganization, burst_length: int) -> int:
    if organization.bus_width_bits % 8:
        raise EdenConfigError(f"DramOrganization.bus_width_bits must be a multiple of 8 to form bursts, "
                         f"got {organization.bus_width_bits}")
    return organization.bus_width_bits // 8 * check_int("burst_length", burst_length, lo=1)


def _stream(amap: AddressMap, open_row: np.ndarray, base: int, nbytes: int) -> int:
    """Row misses of one address-ordered pass over ``[base, base + nbytes)``; updates ``open_row``.

    Within a pass every chunk is a distinct (bank, row), so only the first
    chunk of each bank can hit (if that bank still has the row open); later
    chunks of a bank displace the previous one.
    """
    rb = amap.organization.row_bytes
    chunks = np.arange(base // rb, (base + nbytes - 1) // rb + 1, dtype=np.int64)
    bank, row = amap.chunk_to_bank_row(chunks)
    banks, first = np.unique(bank, return_index=True)
    hits = int(np.count_nonzero(open_row[banks] == row[first]))
    _, last_from_end = np.unique(bank[::-1], return_index=True)
    open_row[banks] = row[len(bank) - 1 - last_from_end]
    return len(chunks) - hits


def _passes(amap: AddressMap, open_row: np.ndarray, base: int, footprint: int, total: int) -> int:
    """Row misses of ``total`` bytes streamed over a footprint (full passes, then a partial one).

    After one full pass the bank state is the same after every further full
    pass (same last row per bank), so passes 3.. repeat pass 2's misses.
    """
    if total == 0:
        return 0
    full, rest = divmod(total, footprint)
    misses = 0
    if full >= 1:
        misses += _stream(amap, open_row, base, footprint)
    if full >= 2:
        misses += _stream(amap, open_row, base, footprint) * (full - 1)
    if rest:
        misses += _stream(amap, open_row, base, rest)
    return misses


def _bursts(footprint: int, total: int, burst: int) -> int:
    if total == 0:
        return 0
    full, rest = divmod(total, footprint)
    return full * -(-footprint // burst) + -(-rest // burst)


def _place(traffic: Sequence[DataTypeTraffic], amap: AddressMap, burst: int, layout: Layout,
           base_addresses: Mapping[str, int] | None) -> dict[str, int]:
    names = [t.name for t in traffic]
    if base_addresses is not None:
        missing = [n for n in names if n not in base_addresses]
        extra = sorted(set(base_addresses) - set(names))
        if missing or extra:
            raise EdenConfigError(f"base_addresses must give exactly the traffic's data types; missing {missing}, "
                             f"unknown {extra}")
        bases = {n: check_int(f"base_addresses[{n!r}]", base_addresses[n], lo=0) for n in names}
        for n, b in bases.items():
            if b % burst:
                raise EdenConfigError(f"base_addresses[{n!r}] = {b} is not a multiple of the {burst}-byte burst")
    else:
        align = amap.organization.row_bytes if layout is Layout.ROW_ALIGNED else burst
        bases, cursor = {}, 0
        for t in traffic:
            bases[t.name] = -(-cursor // align) * align
            cursor = bases[t.name] + _footprint(t)
    for t in traffic:
        try:
            amap.check_range(bases[t.name], _footprint(t))
        except ValueError as exc:
            raise EdenConfigError(f"data type {t.name!r} ({t.footprint_bytes} bytes at {bases[t.name]}): "
                                  f"{exc}") from None
    return bases


def _check_traffic(traffic: Iterable[DataTypeTraffic]) -> list[DataTypeTraffic]:
    traffic = list(traffic)
    seen = set()
    for t in traffic:
        if not isinstance(t, DataTypeTraffic):
            raise EdenTypeError(f"traffic entries must be DataTypeTraffic, got {t!r}")
        if t.name in seen:
            raise EdenConfigError(f"data type {t.name!r} appears twice in the traffic")
        seen.add(t.name)
    return traffic


def command_counts(traffic: Iterable[DataTypeTraffic], organization: DramOrganization, *,
                   burst_length: int = 8, policy: RowBufferPolicy = RowBufferPolicy(),
                   scheme: AddressScheme = AddressScheme.ROW_BANK, layout: Layout = Layout.ROW_ALIGNED,
                   base_addresses: Mapping[str, int] | None = None) -> dict[str, CommandCounts]:
    """RD/WR/ACT/PRE commands per data type for one inference on one rank.

    Args:
        traffic: the data types, in access order.
        organization: the partition (banks, rows, row size, bus width).
        burst_length: BL; a burst moves ``bus_width_bits / 8 * BL`` bytes.
        policy: row-buffer policy; with ``open_page`` and no given hit rate,
            hits are simulated from the access order (module docstring).
        scheme: address-map scheme (``"row_bank"`` or ``"bank_row"``).
        layout: placement when ``base_addresses`` is None (``AccessModel.layout``).
        base_addresses: byte address of each data type in the partition
            (burst-aligned), e.g. from a mapping plan.

    Returns:
        ``{name: CommandCounts}`` in traffic order.

    Raises:
        ValueError: duplicate names, a data type that does not fit the
            partition, bad base addresses or options.
    """
    traffic = _check_traffic(traffic)
    if not isinstance(policy, RowBufferPolicy):
        raise EdenTypeError(f"command_counts: policy must be a RowBufferPolicy, got {policy!r}")
    layout = Layout.coerce(layout, "layout")
    amap = AddressMap(organization, scheme)
    burst = _burst_bytes(organization, burst_length)
    simulate = policy.kind is PageKind.OPEN_PAGE and policy.hit_rate is None
    bases = _place(traffic, amap, burst, layout, base_addresses) if simulate or base_addresses is not None else {}
    open_row = np.full(organization.banks, -1, dtype=np.int64)
    out = {}
    for t in traffic:
        footprint = _footprint(t)
        wr = _bursts(footprint, t.bytes_written, burst)
        rd = _bursts(footprint, t.bytes_read, burst)
        if policy.kind is PageKind.CLOSED_PAGE:
            act = float(rd + wr)
        elif policy.hit_rate is not None:
            act = (rd + wr) * (1.0 - policy.hit_rate)
        else:
            base = bases[t.name]
            act = float(_passes(amap, open_row, base, footprint, t.bytes_written)
                        + _passes(amap, open_row, base, footprint, t.bytes_read))
        out[t.name] = CommandCounts(t.name, rd=rd, wr=wr, act=act, pre=act, base_address=bases.get(t.name))
    return out


# ----------------------------------------------------------------------------- latency
@dataclasses.dataclass(frozen=True)
class LatencyReport:
    """DRAM access time per inference, nominal vs reduced tRCD, and the end-to-end speedup.

    Attributes:
        bursts: RD + WR commands.
        row_misses: row misses (ACTs).
        t_rcd_nominal_s, t_rcd_s: tRCD used at nominal and at the operating point [s].
        rcd_nominal_cycles, rcd_cycles: the same in clocks (``rcd_cycles`` is None
            with ``timing_granularity="ns"``).
        access_time_nominal_s, access_time_s: DRAM access time [s].
        saved_s: access time saved per inference [s].
        memory_bound_fraction: f, the part of the nominal run time spent on DRAM.
        speedup: ``1 / ((1 - f) + f * access_time_s / access_time_nominal_s)``.
        per_data_type: ``{name: (access_time_nominal_s, access_time_s)}``.
        model: the assumptions.
    """

    bursts: int
    row_misses: float
    t_rcd_nominal_s: float
    t_rcd_s: float
    rcd_nominal_cycles: int
    rcd_cycles: int | None
    access_time_nominal_s: float
    access_time_s: float
    saved_s: float
    memory_bound_fraction: float
    speedup: float
    per_data_type: dict[str, tuple[float, float]]
    model: AccessModel

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["per_data_type"] = {k: {"access_time_nominal_s": a, "access_time_s": b}
                                for k, (a, b) in self.per_data_type.items()}
        out["model"] = self.model.to_dict()
        out["law"] = ("t_access = bursts*(BL/DR)*tCK + misses*(1 - miss_overlap)*(t_RP + t_RCD); "
                      "speedup = 1/((1 - f) + f*t_op/t_nominal)")
        return out

    def describe(self) -> str:
        return (f"DRAM access time {self.access_time_nominal_s * 1e6:.6g} us -> {self.access_time_s * 1e6:.6g} us "
                f"(saved {self.saved_s * 1e6:.6g} us over {self.row_misses:.6g} row misses, tRCD "
                f"{self.t_rcd_nominal_s * 1e9:.6g} -> {self.t_rcd_s * 1e9:.6g} ns); speedup {self.speedup:.6g} "
                f"at memory-bound fraction {self.memory_bound_fraction:g}")


def _t_rcd(memspec: MemSpec, trcd_ns: float | None,
           granularity: TimingGranularity) -> tuple[float, int | None]:
    if trcd_ns is None:
        return memspec.rcd * memspec.tck_s, memspec.rcd
    trcd_ns = check_number("trcd_ns", trcd_ns, lo=0.0, lo_open=True)
    if granularity is TimingGranularity.NS:
        return trcd_ns / 1e9, None
    cycles = max(1, ns_to_cycles(trcd_ns, memspec.tck_s * 1e9, rounding=Rounding.UP))
    return cycles * memspec.tck_s, cycles


def _access_times(counts: Mapping[str, CommandCounts], memspec: MemSpec, t_rcd: float,
                  overlap: float) -> dict[str, float]:
    t_burst = memspec.burst_time_s  # (BL/DR)*tCK; LPDDR5: BL/(DR*WCK:CK) clocks
    t_miss = (1.0 - overlap) * (memspec.rp * memspec.tck_s + t_rcd)
    return {name: c.bursts * t_burst + c.row_misses * t_miss for name, c in counts.items()}


def latency_report(counts: Mapping[str, CommandCounts], memspec: MemSpec, *, trcd_ns: float | None = None,
                   memory_bound_fraction: float = 1.0, model: AccessModel = AccessModel()) -> LatencyReport:
    """DRAM access time saved per inference by a reduced tRCD, and the end-to-end speedup.

    Args:
        counts: command counts per data type (:func:`command_counts`).
        memspec: the device (its ``rcd`` is the nominal tRCD).
        trcd_ns: operating tRCD [ns] (None: nominal).
        memory_bound_fraction: f in [0, 1], the share of the nominal
            end-to-end time that is DRAM access time.
        model: ``miss_overlap`` and ``timing_granularity`` are used.

    Returns:
        :class:`LatencyReport`.
    """
    if not isinstance(memspec, MemSpec):
        raise EdenTypeError(f"latency_report: memspec must be a MemSpec, got {type(memspec).__name__}")
    f = check_number("memory_bound_fraction", memory_bound_fraction, lo=0.0, hi=1.0)
    t_nom = memspec.rcd * memspec.tck_s
    t_op, rcd_op = _t_rcd(memspec, trcd_ns, model.timing_granularity)
    nominal = _access_times(counts, memspec, t_nom, model.miss_overlap)
    operating = _access_times(counts, memspec, t_op, model.miss_overlap)
    a_nom, a_op = sum(nominal.values()), sum(operating.values())
    speedup = 1.0 if a_nom == 0 else 1.0 / ((1.0 - f) + f * a_op / a_nom)
    return LatencyReport(
        bursts=sum(c.bursts for c in counts.values()), row_misses=sum(c.row_misses for c in counts.values()),
        t_rcd_nominal_s=t_nom, t_rcd_s=t_op, rcd_nominal_cycles=memspec.rcd, rcd_cycles=rcd_op,
        access_time_nominal_s=a_nom, access_time_s=a_op, saved_s=a_nom - a_op, memory_bound_fraction=f,
        speedup=speedup, per_data_type={k: (nominal[k], operating[k]) for k in counts}, model=model)


# ----------------------------------------------------------------------------- energy
@dataclasses.dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one rank per inference [J], per component and domain."""

    act: PerDomain
    pre: PerDomain
    rd: PerDomain
    wr: PerDomain
    refresh: PerDomain
    background: PerDomain

    COMPONENTS = ("act", "pre", "rd", "wr", "refresh", "background")

    @property
    def dynamic(self) -> PerDomain:
        return self.act + self.pre + self.rd + self.wr

    @property
    def total(self) -> PerDomain:
        return self.dynamic + self.refresh + self.background

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        return EnergyBreakdown(*(getattr(self, c) + getattr(other, c) for c in self.COMPONENTS))

    def to_dict(self) -> dict[str, Any]:
        out = {c: getattr(self, c).to_dict() for c in self.COMPONENTS}
        out["total"] = self.total.to_dict()
        return out


def _saving(nominal: float, operating: float) -> float | None:
    return None if nominal == 0 else 1.0 - operating / nominal


@dataclasses.dataclass(frozen=True)
class DataTypeEnergy:
    """One data type's commands and energy, nominal vs operating point (shared energy attributed)."""

    name: str
    counts: CommandCounts
    nominal: EnergyBreakdown
    operating: EnergyBreakdown

    @property
    def saving_fraction(self) -> float | None:
        return _saving(self.nominal.total.total, self.operating.total.total)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "counts": self.counts.to_dict(), "nominal": self.nominal.to_dict(),
                "operating": self.operating.to_dict(), "saving_fraction": self.saving_fraction}


@dataclasses.dataclass(frozen=True)
class EnergyReport:
    """DRAM energy of one inference on one rank, nominal vs an operating point.

    Attributes:
        memspec: memspec name; ``standard`` and ``devices`` (per rank) with it.
        law: the VDD law of the operating point (``MemSpec.law``).
        vdd_nominal_v, vdd_v: VDD [V]; ``alpha`` the current exponent.
        trcd_nominal_ns, trcd_ns: tRCD requested [ns] (nominal: memspec RCD * tCK).
        run_time_nominal_s, run_time_s: run time charged with background [s].
        refreshes_nominal, refreshes: REFA commands in that time (expected values).
        data_types: per data type, shared energy attributed by access time.
        nominal, operating: totals.
        latency: the access-time report.
        model: the assumptions.
        samples: samples in one inference (for per-sample figures).
    """

    memspec: str
    standard: str
    devices: int
    law: str
    vdd_nominal_v: float
    vdd_v: float
    alpha: float
    trcd_nominal_ns: float
    trcd_ns: float
    run_time_nominal_s: float
    run_time_s: float
    refreshes_nominal: float
    refreshes: float
    data_types: tuple[DataTypeEnergy, ...]
    nominal: EnergyBreakdown
    operating: EnergyBreakdown
    latency: LatencyReport
    model: AccessModel
    samples: int = 1

    @property
    def saving_fraction(self) -> float | None:
        """1 - E_operating / E_nominal (None when the nominal energy is 0)."""
        return _saving(self.nominal.total.total, self.operating.total.total)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": "J per inference per rank, s"}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "data_types":
                value = [d.to_dict() for d in value]
            elif hasattr(value, "to_dict"):
                value = value.to_dict()
            out[f.name] = value
        out["saving_fraction"] = self.saving_fraction
        out["per_sample_j"] = {"nominal": self.nominal.total.total / self.samples,
                               "operating": self.operating.total.total / self.samples}
        return out

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write :meth:`to_dict` as JSON atomically (no clobber unless ``overwrite``)."""
        _io.write_json(path, self.to_dict(), overwrite=overwrite, what="energy report")

    def describe(self) -> str:
        def uj(x: float) -> str:
            return f"{x * 1e6:.6g}"

        def pct(x: float | None) -> str:
            return "-" if x is None else f"{100 * x:.3f} %"

        lines = [f"DRAM energy per inference ({self.samples} sample(s)), one rank of {self.devices} x "
                 f"{self.memspec} ({self.standard})",
                 f"law: {self.law}",
                 f"operating point: VDD {self.vdd_v:g} V (nominal {self.vdd_nominal_v:g} V), tRCD "
                 f"{self.trcd_ns:.6g} ns (nominal {self.trcd_nominal_ns:.6g} ns)",
                 f"assumptions: {self.model.policy.describe()}, {self.model.scheme} map, {self.model.layout} layout, "
                 f"miss overlap {self.model.miss_overlap:g}, tRCD in {self.model.timing_granularity}s, "
                 f"idle rows {'open' if self.model.idle_rows_open else 'closed'}, "
                 f"refresh {'on' if self.model.refresh else 'off'}"
                 + (f", ECC {self.model.ecc} (check bits charged: eden.power.ecc)" if self.model.ecc != "none" else ""),
                 f"  {'data type':<28}{'RD':>10}{'WR':>10}{'ACT':>12}{'hit rate':>10}"
                 f"{'E_nom [uJ]':>14}{'E_op [uJ]':>14}{'saving':>11}"]
        for d in self.data_types:
            c = d.counts
            hr = "-" if c.hit_rate is None else f"{c.hit_rate:.4f}"
            lines.append(f"  {d.name:<28}{c.rd:>10}{c.wr:>10}{c.act:>12.6g}{hr:>10}"
                         f"{uj(d.nominal.total.total):>14}{uj(d.operating.total.total):>14}"
                         f"{pct(d.saving_fraction):>11}")
        for comp in EnergyBreakdown.COMPONENTS:
            n, o = getattr(self.nominal, comp).total, getattr(self.operating, comp).total
            lines.append(f"  {'[' + comp + ']':<70}{uj(n):>14}{uj(o):>14}{pct(_saving(n, o)):>11}")
        lines.append(f"  {'total':<70}{uj(self.nominal.total.total):>14}{uj(self.operating.total.total):>14}"
                     f"{pct(self.saving_fraction):>11}")
        lines.append(f"run time {self.run_time_nominal_s * 1e6:.6g} us -> {self.run_time_s * 1e6:.6g} us, "
                     f"refreshes {self.refreshes_nominal:.6g} -> {self.refreshes:.6g}")
        lines.append(self.latency.describe())
        return "\n".join(lines)


def energy_report(traffic: Iterable[DataTypeTraffic], memspec: MemSpec, organization: DramOrganization, *,
                  vdd_v: float | None = None, trcd_ns: float | None = None, alpha: float = 1.0,
                  model: AccessModel = AccessModel(), run_time_s: float | None = None,
                  memory_bound_fraction: float = 1.0, base_addresses: Mapping[str, int] | None = None,
                  samples: int = 1) -> EnergyReport:
    """DRAM energy and latency of one inference, nominal vs ``(vdd_v, trcd_ns)``.

    Args:
        traffic: data types in access order (:class:`DataTypeTraffic`).
        memspec: the device; its nominal VDD and tRCD are the reference.
        organization: the rank-level partition the traffic lives in.
        vdd_v: operating VDD [V] (None: nominal).
        trcd_ns: operating tRCD [ns] (None: nominal).
        alpha: exponent of the VDD law, ``IDD ~ (V/V_nominal) ** alpha``.
        model: the access assumptions (:class:`AccessModel`).
        run_time_s: nominal run time of one inference [s]; None: the DRAM
            access time divided by ``memory_bound_fraction``.
        memory_bound_fraction: f, the share of the run time spent on DRAM
            accesses; in (0, 1] without ``run_time_s``, [0, 1] with it.
        base_addresses: placement of the data types (see :func:`command_counts`).
        samples: samples per inference, for per-sample figures.

    Returns:
        :class:`EnergyReport` (energies per rank in J).

    Raises:
        ValueError: bad options, ``run_time_s`` shorter than the DRAM access
            time, or refresh requested without tREFI in the memspec.
    """
    if not isinstance(memspec, MemSpec):
        raise EdenTypeError(f"energy_report: memspec must be a MemSpec, got {type(memspec).__name__}")
    booked = (*TRAFFIC_COMMANDS, memspec.spec.refresh_command)
    missing = [c for c in booked if c not in dict(memspec.spec.commands)]
    if missing:
        raise EdenConfigError(f"energy_report: the traffic model books the commands {', '.join(booked)}; "
                              f"standard {memspec.standard} does not declare {', '.join(missing)}")
    if not isinstance(model, AccessModel):
        raise EdenTypeError(f"energy_report: model must be an AccessModel, got {model!r}")
    samples = check_int("energy_report: samples", samples, lo=1)
    nominal_spec = memspec.nominal()
    op_spec = nominal_spec if vdd_v is None else nominal_spec.at_vdd(vdd_v, alpha)
    f = check_number("memory_bound_fraction", memory_bound_fraction, lo=0.0, hi=1.0, lo_open=run_time_s is None)
    if model.refresh and nominal_spec.refi is None:
        raise EdenConfigError(f"memspec {nominal_spec.name or nominal_spec.source!r} has no tREFI (trefi_ns / REFI); "
                         "give it, or use AccessModel(refresh=False)")

    traffic = _check_traffic(traffic)
    counts = command_counts(traffic, organization, burst_length=nominal_spec.burst_length, policy=model.policy,
                            scheme=model.scheme, layout=model.layout, base_addresses=base_addresses)
    latency = latency_report(counts, nominal_spec, trcd_ns=trcd_ns, memory_bound_fraction=f, model=model)
    a_nom, a_op = latency.access_time_nominal_s, latency.access_time_s
    if run_time_s is None:
        t_nom = a_nom / f
    else:
        t_nom = check_number("run_time_s", run_time_s, lo=0.0)
        if t_nom < a_nom:
            raise EdenConfigError(f"run_time_s = {t_nom!r} s is shorter than the DRAM access time of the traffic, "
                             f"{a_nom!r} s; give a longer run time or a higher miss_overlap / hit rate")
    t_op = t_nom if a_nom == 0 else t_nom * ((1.0 - f) + f * (a_op / a_nom))

    def breakdown(spec: MemSpec, access: dict[str, float], run_time: float):
        """(total, refreshes, per-type breakdowns) of the rank at ``spec`` over ``run_time``."""
        e, n = command_energies(spec), spec.devices
        closed = model.policy.kind is PageKind.CLOSED_PAGE
        p_access = active_standby_power(spec, 1 if closed else spec.banks).scaled(n)
        p_idle = p_access if (not closed and model.idle_rows_open) else active_standby_power(spec, 0).scaled(n)
        busy = sum(access.values())
        background = p_access.scaled(busy) + p_idle.scaled(run_time - busy)
        if model.refresh:
            assert spec.refi is not None  # checked above; at_vdd keeps tREFI
            refreshes = run_time / (spec.refi * spec.tck_s)
        else:
            refreshes = 0.0
        refresh = getattr(e, spec.spec.refresh_command).scaled(refreshes * n)
        per_type = []
        for name, c in counts.items():
            share = access[name] / busy if busy > 0 else 1.0 / len(counts)
            per_type.append(EnergyBreakdown(
                act=e.act.scaled(c.act * n), pre=e.pre.scaled(c.pre * n), rd=e.rd.scaled(c.rd * n),
                wr=e.wr.scaled(c.wr * n), refresh=refresh.scaled(share), background=background.scaled(share)))
        zero = e.act.zero()
        dynamic = {k: sum((getattr(b, k) for b in per_type), zero) for k in ("act", "pre", "rd", "wr")}
        return EnergyBreakdown(**dynamic, refresh=refresh, background=background), refreshes, per_type

    nom_total, ref_nom, nom_types = breakdown(
        nominal_spec, {k: v[0] for k, v in latency.per_data_type.items()}, t_nom)
    op_total, ref_op, op_types = breakdown(
        op_spec, {k: v[1] for k, v in latency.per_data_type.items()}, t_op)
    if model.ecc != "none":  # the check bits' energy (eden.power.ecc)
        from eden.power.ecc import ecc_energy

        ef = ecc_energy(model.ecc, nominal_spec.standard)

        def with_ecc(b: EnergyBreakdown) -> EnergyBreakdown:
            return EnergyBreakdown(*(getattr(b, c).scaled(ef.factor(c)) for c in EnergyBreakdown.COMPONENTS))

        nom_total, op_total = with_ecc(nom_total), with_ecc(op_total)
        nom_types, op_types = [with_ecc(b) for b in nom_types], [with_ecc(b) for b in op_types]
    data_types = tuple(DataTypeEnergy(name, counts[name], a, b)
                       for name, a, b in zip(counts, nom_types, op_types, strict=True))
    return EnergyReport(
        memspec=nominal_spec.name, standard=nominal_spec.standard, devices=nominal_spec.devices, law=op_spec.law,
        vdd_nominal_v=nominal_spec.vdd.v, vdd_v=op_spec.vdd.v, alpha=float(alpha),
        trcd_nominal_ns=nominal_spec.rcd * nominal_spec.tck_s * 1e9,
        trcd_ns=nominal_spec.rcd * nominal_spec.tck_s * 1e9 if trcd_ns is None else float(trcd_ns),
        run_time_nominal_s=t_nom, run_time_s=t_op, refreshes_nominal=ref_nom, refreshes=ref_op,
        data_types=data_types, nominal=nom_total, operating=op_total, latency=latency, model=model,
        samples=samples)
