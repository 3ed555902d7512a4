"""DRAM traffic, energy and latency of autoregressive decoding: one prefill, then N decode steps.

A language model generates ``new_tokens`` tokens for each of ``batch`` sequences after a
prompt of ``prompt_tokens`` tokens (:class:`Generation`). Its data types are given as
``(name, kind, nbytes)`` with ``kind`` one of

* ``"weight"``: ``nbytes`` of the stored tensor;
* ``"ifm"``: ``nbytes`` of the input feature map for **one token** of one sequence;
* ``"kv_cache"``: ``nbytes`` of one cache entry (K or V of one layer) for **one token** of
  one sequence (``kv_heads * head_dim * bytes``; ``eden datatypes`` prints it).

Traffic (:func:`generation_traffic`), with P = prompt tokens, N = decode steps, B = batch:

===========  ==========================  ==========================================  =====================
data type    prefill (one forward pass)  decode (N steps; step s reads P + s entries)  footprint
===========  ==========================  ==========================================  =====================
weight       read ``n``                  read ``N n`` (all weights once per step)     ``n``
ifm          written and read ``P B n``  written and read ``N B n``                   ``P B n`` / ``B n``
kv_cache     written and read ``P B n``  written ``N B n``, read                      ``P B n`` /
                                         ``B n (N P + N (N + 1) / 2)``                ``(P + N) B n``
===========  ==========================  ==========================================  =====================

Each new K/V entry is written once; every decode step reads the whole cache as it has
grown (its own new entry included); the prefill's attention reads the prompt's entries
once. Weights are read once per forward pass (shared by the batch).

Energy and time (:func:`generation_report`): each phase is one
:func:`eden.power.traffic.energy_report` with its own memory-bound fraction: the prefill
``prefill_memory_bound_fraction`` (default 0.5, eden's inference default) and the decode
phase ``decode_memory_bound_fraction`` (default :data:`DECODE_MEMORY_BOUND_FRACTION` = 0.9:
at small batch a decode step does about one multiply-add per weight byte it reads, far
below the compute/bandwidth ratio of any CPU or GPU, so nearly all of its time is spent
waiting on DRAM). The report gives the energy and DRAM time **per generated token**
(``N B`` tokens; the prefill amortized over them, and the decode phase alone), nominal vs
the operating point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from eden.core.validate import Mode, check_int, check_number
from eden.dram.address import DramOrganization
from eden.errors import EdenConfigError
from eden.power.memspec import MemSpec
from eden.power.traffic import (AccessModel, CommandCounts, DataTypeEnergy, DataTypeTraffic, EnergyReport,
                                energy_report)

__all__ = ["Generation", "LMKind", "generation_traffic", "GenerationReport", "generation_report", "merge_reports",
           "DECODE_MEMORY_BOUND_FRACTION", "PREFILL_MEMORY_BOUND_FRACTION"]

DECODE_MEMORY_BOUND_FRACTION = 0.9
"""Default share of a decode step's time spent on DRAM accesses (see the module docstring)."""
PREFILL_MEMORY_BOUND_FRACTION = 0.5
"""Default share of the prefill's time spent on DRAM accesses (eden's inference default)."""


_DEFAULT_ACCESS = AccessModel()


class LMKind(Mode):
    """What a tensor of :func:`generation_traffic` is."""

    WEIGHT = "weight"
    IFM = "ifm"
    KV_CACHE = "kv_cache"


class Phase(Mode):
    PREFILL = "prefill"
    DECODE = "decode"


@dataclasses.dataclass(frozen=True)
class Generation:
    """One generation: a prompt of ``prompt_tokens``, then ``new_tokens`` decode steps, ``batch`` sequences."""

    prompt_tokens: int = 64
    new_tokens: int = 64
    batch: int = 1

    def __post_init__(self) -> None:
        check_int("Generation.prompt_tokens", self.prompt_tokens, lo=1)
        check_int("Generation.new_tokens", self.new_tokens, lo=1)
        check_int("Generation.batch", self.batch, lo=1)

    @property
    def generated_tokens(self) -> int:
        return self.new_tokens * self.batch

    @property
    def kv_entries_read(self) -> int:
        """Cache entries one sequence's decode steps read: sum over s = 1..N of (P + s)."""
        n, p = self.new_tokens, self.prompt_tokens
        return n * p + n * (n + 1) // 2


def generation_traffic(tensors: Iterable[tuple[str, str, int]], gen: Generation,
                       phase: Phase | str) -> list[DataTypeTraffic]:
    """Traffic of the prefill or of all decode steps (see the table of the module docstring).

    Raises:
        EdenConfigError: a malformed entry, an unknown kind, a negative size.
    """
    phase = Phase.coerce(phase, "generation phase")
    p, n, b = gen.prompt_tokens, gen.new_tokens, gen.batch
    out = []
    for entry in tensors:
        if not isinstance(entry, (tuple, list)) or len(entry) != 3:
            raise EdenConfigError(f"generation_traffic: each tensor is (name, kind, nbytes), got {entry!r}")
        name, kind, nbytes = entry
        nbytes = check_int(f"generation_traffic: nbytes of {name!r}", nbytes, lo=0)
        kind = LMKind.coerce(kind, f"kind of tensor {name!r}")
        if kind is LMKind.WEIGHT:
            reads = 1 if phase is Phase.PREFILL else n
            out.append(DataTypeTraffic(name, reads * nbytes, 0, nbytes))
        elif kind is LMKind.IFM:
            tokens = p * b if phase is Phase.PREFILL else n * b
            out.append(DataTypeTraffic(name, tokens * nbytes, tokens * nbytes,
                                       (p * b if phase is Phase.PREFILL else b) * nbytes))
        elif phase is Phase.PREFILL:
            out.append(DataTypeTraffic(name, p * b * nbytes, p * b * nbytes, p * b * nbytes))
        else:
            out.append(DataTypeTraffic(name, b * gen.kv_entries_read * nbytes, n * b * nbytes,
                                       (p + n) * b * nbytes))
    return out


def _add_counts(a: CommandCounts, b: CommandCounts) -> CommandCounts:
    return CommandCounts(a.name, a.rd + b.rd, a.wr + b.wr, a.act + b.act, a.pre + b.pre, a.base_address)


def merge_reports(a: EnergyReport, b: EnergyReport) -> EnergyReport:
    """One report for two phases run one after the other (same device, operating point and data types):
    commands, energies, access and run times add; the speedup and memory-bound fraction are those of the sum."""
    if [d.name for d in a.data_types] != [d.name for d in b.data_types]:
        raise EdenConfigError("merge_reports: the two phases must have the same data types in the same order")
    types = tuple(DataTypeEnergy(x.name, _add_counts(x.counts, y.counts), x.nominal + y.nominal,
                                 x.operating + y.operating) for x, y in zip(a.data_types, b.data_types))
    la, lb = a.latency, b.latency
    run_nom, run_op = a.run_time_nominal_s + b.run_time_nominal_s, a.run_time_s + b.run_time_s
    acc_nom, acc_op = la.access_time_nominal_s + lb.access_time_nominal_s, la.access_time_s + lb.access_time_s
    latency = dataclasses.replace(
        lb, bursts=la.bursts + lb.bursts, row_misses=la.row_misses + lb.row_misses, access_time_nominal_s=acc_nom,
        access_time_s=acc_op, saved_s=acc_nom - acc_op,
        memory_bound_fraction=acc_nom / run_nom if run_nom > 0 else 0.0,
        speedup=run_nom / run_op if run_op > 0 else 1.0,
        per_data_type={k: (la.per_data_type[k][0] + lb.per_data_type[k][0],
                           la.per_data_type[k][1] + lb.per_data_type[k][1]) for k in la.per_data_type})
    return dataclasses.replace(b, run_time_nominal_s=run_nom, run_time_s=run_op,
                               refreshes_nominal=a.refreshes_nominal + b.refreshes_nominal,
                               refreshes=a.refreshes + b.refreshes, data_types=types, nominal=a.nominal + b.nominal,
                               operating=a.operating + b.operating, latency=latency, samples=b.samples)


@dataclasses.dataclass(frozen=True)
class GenerationReport:
    """DRAM energy and time of one generation, nominal vs an operating point (one rank, J and s).

    Attributes:
        generation: the workload.
        prefill, decode: the two phases' reports.
        total: both together (:func:`merge_reports`).
    """

    generation: Generation
    prefill: EnergyReport
    decode: EnergyReport
    total: EnergyReport

    def per_token(self) -> dict[str, float]:
        """Energy [J] and DRAM access time [s] per generated token, nominal and operating:
        ``*_decode`` for the decode phase alone, the others with the prefill amortized."""
        t = self.generation.generated_tokens
        out = {}
        for label, rep in (("", self.total), ("_decode", self.decode)):
            out[f"energy_nominal_j{label}"] = rep.nominal.total.total / t
            out[f"energy_operating_j{label}"] = rep.operating.total.total / t
            out[f"dram_time_nominal_s{label}"] = rep.latency.access_time_nominal_s / t
            out[f"dram_time_operating_s{label}"] = rep.latency.access_time_s / t
        out["decode_step_time_nominal_s"] = self.decode.run_time_nominal_s / self.generation.new_tokens
        out["decode_step_time_operating_s"] = self.decode.run_time_s / self.generation.new_tokens
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"generation": dataclasses.asdict(self.generation),
                "generated_tokens": self.generation.generated_tokens, "per_token": self.per_token(),
                "prefill": self.prefill.to_dict(), "decode": self.decode.to_dict(), "total": self.total.to_dict()}

    def describe(self) -> str:
        g, pt = self.generation, self.per_token()
        sav = self.total.saving_fraction
        return "\n".join([
            f"generation: prompt {g.prompt_tokens} tokens, {g.new_tokens} decode steps, batch {g.batch} "
            f"({g.generated_tokens} generated tokens)",
            f"DRAM energy per generated token: {pt['energy_nominal_j'] * 1e9:.4g} nJ nominal -> "
            f"{pt['energy_operating_j'] * 1e9:.4g} nJ ({'-' if sav is None else f'{sav * 100:.2f}% saved'}); "
            f"decode phase alone {pt['energy_nominal_j_decode'] * 1e9:.4g} -> "
            f"{pt['energy_operating_j_decode'] * 1e9:.4g} nJ",
            f"DRAM time per generated token: {pt['dram_time_nominal_s'] * 1e9:.4g} ns nominal -> "
            f"{pt['dram_time_operating_s'] * 1e9:.4g} ns; decode step {pt['decode_step_time_nominal_s'] * 1e6:.4g} us "
            f"-> {pt['decode_step_time_operating_s'] * 1e6:.4g} us (memory-bound fraction "
            f"{self.decode.latency.memory_bound_fraction:g})"])


def generation_report(tensors: Iterable[tuple[str, str, int]], gen: Generation, memspec: MemSpec,
                      organization: DramOrganization, *, vdd_v: float | None = None, trcd_ns: float | None = None,
                      alpha: float = 1.0, model: AccessModel = _DEFAULT_ACCESS,
                      prefill_memory_bound_fraction: float = PREFILL_MEMORY_BOUND_FRACTION,
                      decode_memory_bound_fraction: float = DECODE_MEMORY_BOUND_FRACTION,
                      base_addresses: Mapping[str, int] | None = None) -> GenerationReport:
    """Energy and latency of the prefill and the decode steps, nominal vs ``(vdd_v, trcd_ns)``.

    Args:
        tensors: ``(name, kind, nbytes)`` (see the module docstring), in access order.
        gen: prompt, decode steps, batch.
        memspec, organization, vdd_v, trcd_ns, alpha, model, base_addresses: as for
            :func:`eden.power.traffic.energy_report`.
        prefill_memory_bound_fraction, decode_memory_bound_fraction: each phase's share of
            its run time spent on DRAM, in (0, 1].
    """
    if not isinstance(gen, Generation):
        raise EdenConfigError(f"generation_report: gen must be a Generation, got {gen!r}")
    fp = check_number("prefill_memory_bound_fraction", prefill_memory_bound_fraction, lo=0.0, hi=1.0, lo_open=True)
    fd = check_number("decode_memory_bound_fraction", decode_memory_bound_fraction, lo=0.0, hi=1.0, lo_open=True)
    tensors = list(tensors)
    reps = []
    for phase, f in ((Phase.PREFILL, fp), (Phase.DECODE, fd)):
        reps.append(energy_report(generation_traffic(tensors, gen, phase), memspec, organization, vdd_v=vdd_v,
                                  trcd_ns=trcd_ns, alpha=alpha, model=model, memory_bound_fraction=f,
                                  base_addresses=base_addresses, samples=gen.generated_tokens))
    return GenerationReport(gen, reps[0], reps[1], merge_reports(reps[0], reps[1]))
