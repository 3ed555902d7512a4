"""Deploy a characterized model on a DRAM profile: partitions, mapping, energy, latency, validation.

EDEN's second idea: put each data type in the DRAM partition with the lowest
voltage / tRCD whose bit errors it tolerates. This module joins the pieces:

1. **Partitions** (:func:`partitions_from_profile`): every non-nominal operating
   point of a profile becomes a partition of ``partition_banks`` banks (default:
   the device's banks shared equally by the operating points and the nominal
   region), with the point's expected BER; the nominal partition takes the rest.
   Users may pass their own :class:`eden.workflows.mapping.Partition` list instead.
2. **Cost** (:func:`cost_matrix`): the DRAM energy of one inference of each data
   type at each partition's operating point, from the traffic model
   (``eden.power.traffic``: bytes read/written per inference, commands through the
   address map, DRAMPower energies, background and refresh over the run time).
3. **Mapping** (``eden.workflows.mapping``): greedy (EDEN) or the exact MILP.
4. **Validation by emulation** (:func:`validate`): the model runs with every data
   type's errors drawn from its partition's error model over several seeds; if
   the accuracy target fails jointly, the least tolerant data types are backed
   off to safer partitions and the mapping is checked again.
5. **Report** (:func:`deploy`): energy and latency per inference, nominal vs
   mapped, per data type, with the accuracy measured under the mapping.

All energies are per inference of ``batch_size`` samples, one rank, in J.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from eden._version import __version__
from eden.core.validate import Mode, check_int, check_number, unknown_name
from eden.errors import EdenConfigError, EdenDataError, EdenError, EdenInfeasibleError
from eden.power.memspec import MemSpec
from eden.power.traffic import AccessModel, PageKind, RowBufferPolicy, energy_report, inference_traffic
from eden.workflows.mapping import MAPPING_POLICIES, DataTypeDemand, Partition, map_datatypes, validate_and_backoff

REPORT_FORMAT = "eden-deployment"
REPORT_VERSION = 1


class ToleranceSource(Mode):
    """Which tolerable BERs of a tolerance record the mapping uses."""

    JOINT = "joint"  # the fine-grained BERs, as checked jointly by characterization
    FINE = "fine"  # each data type's own BER, measured alone
    COARSE = "coarse"  # one BER for every data type


class Workload(Mode):
    """What one unit of the traffic model is: one inference (a forward pass of ``batch_size``
    samples), or one generation of a language model (a prefill, then decode steps)."""

    INFERENCE = "inference"
    GENERATION = "generation"


class Objective(Mode):
    """What the mapper minimizes per inference."""

    ENERGY = "energy"  # DRAM energy
    LATENCY = "latency"  # DRAM access time



#: What mapping does with operating points whose BER is only a lower bound (DeployOptions.lower_bounds).
LOWER_BOUND_POLICIES = ("use", "avoid")


@dataclasses.dataclass(frozen=True)
class DeployOptions:
    """Assumptions of a deployment; every one is recorded in the report.

    Attributes:
        policy: mapping policy, a name in ``MAPPING_POLICIES`` ("greedy", "milp").
        batch_size: samples per inference (IFM traffic scales with it).
        alpha: VDD law exponent, IDD ~ (V / V_nominal) ** alpha.
        memory_bound_fraction: share of the nominal run time spent on DRAM
            accesses (sets the run time charged with background energy and the
            end-to-end speedup).
        hit_rate: row-buffer hit rate (None: computed from the access order).
        partition_banks: banks per non-nominal partition (None: equal shares).
        tolerance: which tolerable BERs to use (:class:`ToleranceSource`: "joint", "fine",
            "coarse"; the string or the member).
        objective: what the mapper minimizes (:class:`Objective`): "energy" (DRAM energy per
            inference) or "latency" (DRAM access time per inference).
        workload: :class:`Workload`: "inference", or "generation" (a language model: a prefill of
            ``prompt_tokens``, then ``new_tokens`` decode steps for ``batch_size`` sequences;
            ``eden.power.decode``). For a generation ``memory_bound_fraction`` is the prefill's and
            ``decode_memory_bound_fraction`` the decode steps'; the report adds figures per
            generated token.
        lower_bounds: operating points whose BER is only a lower bound (``measured.lower_bound``
            in the profile: saturated measurements) are used at that BER (``"use"``) or left
            out of the mapping (``"avoid"``: the conservative choice).
        ecc: the ECC code of the memory the model is deployed on (``eden.engine.ecc``), or None:
            the code the tolerance record was characterized with. Tolerable BERs measured with one
            code are raw BERs *behind that code*: mapping them onto memory with another code (or
            none) is refused (:func:`device_ecc`). Validation emulates the code, and the energy
            includes its check bits (``eden.power.ecc``).

    Raises:
        EdenConfigError, EdenTypeError: a field out of range or of the wrong type, an unknown
            policy, objective or tolerance source (the message names the field).
    """

    policy: str = "greedy"
    batch_size: int = 1
    alpha: float = 1.0
    memory_bound_fraction: float = 0.5
    hit_rate: float | None = None
    partition_banks: int | None = None
    tolerance: ToleranceSource | str = ToleranceSource.JOINT
    objective: Objective | str = Objective.ENERGY
    workload: Workload | str = Workload.INFERENCE
    prompt_tokens: int = 64
    new_tokens: int = 64
    decode_memory_bound_fraction: float = 0.9
    lower_bounds: str = "use"
    ecc: str | None = None

    def __post_init__(self):
        # Checked, not converted: the report records the values as given.
        MAPPING_POLICIES.lookup(self.policy)  # an unknown name lists the registered policies
        check_int("batch_size", self.batch_size, lo=1)
        check_number("memory_bound_fraction", self.memory_bound_fraction, lo=0.0, hi=1.0, lo_open=True)
        check_number("alpha", self.alpha, lo=0.0)
        check_int("partition_banks", self.partition_banks, lo=1, optional=True)
        object.__setattr__(self, "tolerance", ToleranceSource.coerce(self.tolerance, "tolerance source"))
        object.__setattr__(self, "objective", Objective.coerce(self.objective, "objective"))
        object.__setattr__(self, "workload", Workload.coerce(self.workload, "workload"))
        check_int("prompt_tokens", self.prompt_tokens, lo=1)
        check_int("new_tokens", self.new_tokens, lo=1)
        check_number("decode_memory_bound_fraction", self.decode_memory_bound_fraction, lo=0.0, hi=1.0, lo_open=True)
        if self.lower_bounds not in LOWER_BOUND_POLICIES:
            raise unknown_name("lower-bound policy", self.lower_bounds, LOWER_BOUND_POLICIES)
        if self.ecc is not None and self.ecc != "none":
            from eden.engine.ecc import get_code

            get_code(self.ecc)  # an unknown code fails here, naming the known ones

    @property
    def generation(self):
        """The :class:`eden.power.decode.Generation` of a generation workload."""
        from eden.power.decode import Generation

        return Generation(self.prompt_tokens, self.new_tokens, self.batch_size)

    @property
    def access_model(self) -> AccessModel:
        """The traffic model's assumptions; its ECC is ``ecc`` (None: no check bits charged; :func:`deploy`
        resolves None to the tolerance record's code first, :func:`device_ecc`)."""
        return AccessModel(policy=RowBufferPolicy(PageKind.OPEN_PAGE, self.hit_rate), ecc=self.ecc or "none")


def device_ecc(record: dict, options: DeployOptions) -> str:
    """The ECC code of the deployed memory: ``options.ecc``, or the tolerance record's code when None.

    Raises:
        EdenDataError: the record was characterized with another code than the memory has: its tolerable
            BERs are raw BERs behind that code (with ECC a model tolerates a far higher raw BER), so they
            do not apply; characterize with the memory's code (``--ecc``) instead.
    """
    measured = record.get("ecc", "none")
    if options.ecc is None or options.ecc == measured:
        return measured
    raise EdenDataError(f"the tolerance record was characterized with ECC {measured!r}, the memory has "
                        f"{options.ecc!r}: its tolerable BERs are raw BERs behind {measured!r} and do not apply to "
                        f"memory with {options.ecc!r}; characterize with --ecc {options.ecc}, or map with the "
                        f"record's code (--ecc {measured})")


def _with_device_ecc(record: dict, options: DeployOptions) -> DeployOptions:
    return dataclasses.replace(options, ecc=device_ecc(record, options))


# ------------------------------------------------------------------ partitions
def partitions_from_profile(profile, *, partition_banks: int | None = None) -> list[Partition]:
    """One partition per non-nominal operating point, plus the nominal remainder.

    A partition is a set of banks; with more operating points than banks (an 8-bank LPDDR4 channel) and no
    ``partition_banks``, each is an equal share of every bank's rows instead.
    """
    org = profile.organization.to_address()
    ops = [op for op in profile.operating_points if op.name != profile.nominal.name]
    if partition_banks is None and len(ops) + 1 > org.banks:
        return _row_partitions(profile, ops)
    bank_bytes = org.capacity_bytes // org.banks
    per = partition_banks if partition_banks is not None else max(1, org.banks // (len(ops) + 1))
    if per * len(ops) >= org.banks:
        raise EdenInfeasibleError(f"profile {profile.name}: {len(ops)} operating points x {per} banks leave no bank "
                                  f"of the {org.banks} for the nominal partition; use fewer banks per partition")
    parts = [Partition(op.name, op.ber, per * bank_bytes, vdd_v=op.vdd_v, trcd_ns=op.trcd_ns,
                       error_model=op.error_model) for op in ops]
    nominal = profile.nominal
    parts.append(Partition(nominal.name, 0.0, (org.banks - per * len(ops)) * bank_bytes, nominal=True,
                           vdd_v=nominal.vdd_v, trcd_ns=nominal.trcd_ns))
    return parts


def _vdd_law(profile, alpha: float) -> str:
    """The VDD law in words, naming the rails the profile's standard scales and the ones it keeps."""
    from eden.dram import standards

    std = standards.get(profile.power.standard)
    if std.name in ("DDR3", "DDR4"):  # the wording reports carried before other standards existed
        return f"IDD(V) = IDD_nominal * (V / V_nominal) ** {alpha:g} (VDD domain); VPP unchanged"
    scaled = [d.name for d in std.domains if d.scales_with_vdd]
    fixed = [d.name for d in std.domains if not d.scales_with_vdd]
    return (f"IDD(V) = IDD_nominal * (V / V_nominal) ** {alpha:g} ({'/'.join(scaled)} domain"
            f"{'s' if len(scaled) > 1 else ''}, V = the operating point's vdd_v on {std.lead.name})"
            + (f"; {', '.join(fixed)} unchanged" if fixed else ""))


def _row_partitions(profile, ops) -> list[Partition]:
    """More operating points than banks (an 8-bank LPDDR4 channel): equal shares of every bank's rows."""
    org = profile.organization.to_address()
    rows = org.rows // (len(ops) + 1)
    share = rows * org.banks * org.row_bytes
    parts = [Partition(op.name, op.ber, share, vdd_v=op.vdd_v, trcd_ns=op.trcd_ns, error_model=op.error_model)
             for op in ops]
    nominal = profile.nominal
    parts.append(Partition(nominal.name, 0.0, org.capacity_bytes - share * len(ops), nominal=True,
                           vdd_v=nominal.vdd_v, trcd_ns=nominal.trcd_ns))
    return parts


# ------------------------------------------------------------------ demands
def demands_from_tolerance(record: dict, *, batch_size: int,
                           source: ToleranceSource | str = ToleranceSource.JOINT) -> list[DataTypeDemand]:
    """Data types with their stored size (IFMs: for ``batch_size`` samples) and tolerable BER."""
    from eden.workflows.characterize import tolerable_bers

    bers = tolerable_bers(record, source)
    out = []
    for d in record["datatypes"]:
        size = d["size_bytes"] * (batch_size if d.get("per_sample") else 1)
        out.append(DataTypeDemand(d["name"], int(size), float(bers.get(d["name"], 0.0))))
    return out


def traffic_from_tolerance(record: dict, *, batch_size: int):
    # one forward pass: a KV cache is written and read once per sample, like an IFM
    tensors = [(d["name"], "ifm" if d["kind"] == "kv_cache" else d["kind"], int(d["size_bytes"]))
               for d in record["datatypes"]]
    return inference_traffic(tensors, batch_size=batch_size)


def generation_tensors(record: dict) -> list[tuple[str, str, int]]:
    """``(name, kind, nbytes)`` of a language model's record for :mod:`eden.power.decode`: weights
    whole, IFMs and KV caches per token of one sequence.

    Raises:
        EdenDataError: the record is not a language model's (no tokens per sample).
    """
    tokens = record.get("data", {}).get("tokens_per_sample")
    if not tokens:
        raise EdenDataError("the generation workload needs a language model's tolerance record (token-id inputs; "
                            "the record has no data.tokens_per_sample): characterize an LM on text data")
    out = []
    for d in record["datatypes"]:
        if d["kind"] == "kv_cache":
            nbytes = int(d.get("bytes_per_token") or -(-int(d["size_bytes"]) // tokens))
        elif d["kind"] == "ifm":
            nbytes = -(-int(d["size_bytes"]) // tokens)
        else:
            nbytes = int(d["size_bytes"])
        out.append((d["name"], d["kind"], nbytes))
    return out


def memspec_of(profile):
    """The profile's memspec at nominal VDD (``MemSpec.from_profile``)."""
    return MemSpec.from_profile(profile)


# ------------------------------------------------------------------ cost
def cost_matrix(record: dict, profile, partitions: Sequence[Partition], options: DeployOptions):
    """(cost [D, P], per-partition energy reports): energy (J) or access time (s) per inference."""
    import numpy as np

    options = _with_device_ecc(record, options)
    memspec = memspec_of(profile)
    org = profile.organization.to_address()
    generation = options.workload is Workload.GENERATION
    if generation:
        tensors = generation_tensors(record)
        names = [t[0] for t in tensors]
    else:
        traffic = traffic_from_tolerance(record, batch_size=options.batch_size)
        names = [t.name for t in traffic]
    reports = {}
    cost = np.zeros((len(names), len(partitions)))
    for j, p in enumerate(partitions):
        vdd, trcd = (None, None) if p.nominal else (p.vdd_v, p.trcd_ns)
        if generation:
            from eden.power.decode import generation_report

            rep = generation_report(tensors, options.generation, memspec, org, vdd_v=vdd, trcd_ns=trcd,
                                    alpha=options.alpha, model=options.access_model,
                                    prefill_memory_bound_fraction=options.memory_bound_fraction,
                                    decode_memory_bound_fraction=options.decode_memory_bound_fraction).total
        else:
            rep = energy_report(traffic, memspec, org, vdd_v=vdd, trcd_ns=trcd, alpha=options.alpha,
                                model=options.access_model, memory_bound_fraction=options.memory_bound_fraction,
                                samples=options.batch_size)
        reports[p.name] = rep
        by_name = {d.name: d for d in rep.data_types}
        for i, n in enumerate(names):
            if options.objective is Objective.LATENCY:
                tn, to = rep.latency.per_data_type[n]
                cost[i, j] = tn if p.nominal else to
            else:
                cost[i, j] = (by_name[n].nominal if p.nominal else by_name[n].operating).total.total
    return cost, reports


# ------------------------------------------------------------------ validation
def emulation_plan(record: dict, profile, assignment: dict[str, str]):
    """The plan that stores each data type in its partition (errors of its operating point), with the
    ECC code the tolerance record was characterized with (its BERs are then raw BERs)."""
    from eden.nn.emulate import DataTypeConfig, EmulationPlan
    from eden.workflows.characterize import record_bounds

    fmt, corr, ecc = record["format_spec"], record["correction"], record.get("ecc", "none")
    bounds = record_bounds(record) or {}  # calibrated in the record: emulate with the same bounds
    entries = [("*", DataTypeConfig(None, fmt, corr))]
    models = {}
    for name, part in assignment.items():
        op = profile.operating_point(part)
        if op.ber == 0:
            continue
        if part not in models:
            models[part] = profile.error_model(op)
        entries.append((name, DataTypeConfig(models[part], fmt, corr, ecc, bounds.get(name))))
    return EmulationPlan(tuple(entries))


def check_model_matches(record: dict, model, source: str = "tolerance file") -> None:
    """Refuse a tolerance record characterized on another model (by weight fingerprint)."""
    from eden.nn.zoo import fingerprint

    want = record["model"].get("fingerprint")
    got = fingerprint(model)
    if want != got:
        raise EdenDataError(f"{source} was characterized on another model ({record['model'].get('id')!r}, "
                            f"fingerprint {str(want)[:12]}...) than the one given (fingerprint {got[:12]}...); "
                            "characterize this model first")


def evaluate_mapping(model, loader, record: dict, profile, assignment: dict[str, str], seeds: Sequence[int],
                     device=None, pool=None):
    """Accuracy (Estimate over seeds) with every data type in its partition.

    ``pool``: an ``eden.workflows.executor.ExecutorPool`` of this model and data (the seeds run at once
    there); default: one seed after the other in this process.
    """
    from eden.nn.evaluate import estimate
    from eden.workflows.executor import LocalExecutor, Task, Workload

    plan = emulation_plan(record, profile, assignment)
    tasks = [Task(str(s), plan, s) for s in seeds]
    values: dict[str, float] = {}
    with contextlib.nullcontext(pool) if pool is not None else \
            LocalExecutor().pool(Workload(model, loader, record.get("metric", "top1"), device)) as p:
        p.run(tasks, lambda task, value: values.__setitem__(task.key, value))
    return estimate([values[t.key] for t in tasks])


# ------------------------------------------------------------------ the workflow
def deploy(record: dict, profile, *, options: DeployOptions = DeployOptions(), model=None, loader=None,
           seeds: Sequence[int] | int = 5, partitions: Sequence[Partition] | None = None, device=None,
           progress: bool = False, executor=None) -> dict:
    """Map a characterized model onto a profile; validate by emulation when a model is given.

    Args:
        record: a tolerance record (``eden.workflows.characterize``), fine-grained ideally.
        profile: a ``DramProfile`` (``eden.dram.profiles.load_profile``).
        options: assumptions (:class:`DeployOptions`).
        model, loader: the model the record belongs to and its evaluation data;
            without them the mapping is not validated (the report says so).
        seeds: device seeds for validation (an int n: 0..n-1; at least 1).
        executor: where the validation's evaluations run (an ``eden.workflows.executor.Executor``, which
            the caller closes, or a registered name: "local", "ray"); the seeds of each checked
            mapping run at once. The report is the same for every executor.
        partitions: explicit partitions instead of :func:`partitions_from_profile`.

    Returns:
        The deployment report (``format`` "eden-deployment"): partitions, per
        data type placement and energy, totals nominal vs mapped, latency,
        accuracy under the mapping, fallbacks and back-off steps.

    Raises:
        EdenDataError: a record from another model, a model that fails on the data.
        EdenInfeasibleError: capacities too small (``MappingInfeasibleError``), a profile
            with too many operating points for its banks.
        EdenConfigError: no seeds for validation, bad profile fields.
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    options = _with_device_ecc(record, options)  # the memory's code is the record's (or refused)
    if model is not None:
        check_model_matches(record, model)
        if record.get("kv_semantics"):  # a language model: its KV cache as characterized
            from eden.nn.kvcache import set_semantics

            set_semantics(model, record["kv_semantics"])
        if not seeds:
            raise EdenConfigError("validation needs at least one seed")
    parts = list(partitions) if partitions is not None else partitions_from_profile(
        profile, partition_banks=options.partition_banks)
    if options.lower_bounds == "avoid":  # conservative: no point whose BER is only a lower bound
        parts = [p for p in parts if p.nominal or not _is_lower_bound(profile, p.name)]
    demands = demands_from_tolerance(record, batch_size=options.batch_size, source=options.tolerance)
    cost, reports = cost_matrix(record, profile, parts, options)
    result = map_datatypes(demands, parts, cost, policy=options.policy)

    validation: dict[str, Any] = {"validated": False, "reason": "no model given"}
    steps = []
    if model is not None:
        from eden.workflows.executor import Workload, make_executor

        threshold = record["baseline"]["threshold"]
        measured: dict[tuple, Any] = {}
        ex = make_executor(executor)
        try:
            with ex.pool(Workload(model, loader, record.get("metric", "top1"), device)) as pool:

                def check(res) -> bool:
                    key = tuple(sorted(res.assignment.items()))
                    if key not in measured:
                        measured[key] = evaluate_mapping(model, loader, record, profile, res.assignment, seeds,
                                                         device, pool)
                    return measured[key].mean >= threshold - 1e-12

                outcome = validate_and_backoff(result, check)
        finally:
            if ex is not executor:
                ex.close()
        result = outcome.result
        steps = [dataclasses.asdict(s) for s in outcome.steps]
        acc = measured[tuple(sorted(result.assignment.items()))]
        validation = {"validated": True, "passed": outcome.passed, "threshold": threshold,
                      "accuracy": acc.to_dict(), "seeds": list(seeds), "backoff_steps": steps,
                      "message": outcome.message}
    rep = _report(record, profile, parts, result, reports, options, validation)
    rep["assumptions"] = assumptions(record, profile, parts, result.assignment, options)
    return rep


def _is_lower_bound(profile, name: str) -> bool:
    try:
        m = profile.operating_point(name).measured
    except EdenError:  # an explicit partition that is no operating point of the profile
        return False
    return m is not None and m.lower_bound


#: The alpha range every energy result is also given at: no source settles the IDD-vs-VDD law of DDR4.
ALPHA_RANGE = (0.0, 1.0)

PARTITION_MODEL = ("per-bank-group VDD and tRCD: each non-nominal partition is a group of banks of one rank run "
                   "at its own operating point. Commodity DDR3/DDR4/DDR5 devices have one VDD per device, so the "
                   "VDD partitions assume a device with per-bank supply rails (or one device per partition); tRCD "
                   "partitions need only a controller that sets tRCD per bank.")


def _mapped_energy(record, profile, parts, assignment, options, alpha: float) -> tuple[float, float]:
    """(nominal, mapped) DRAM energy per inference of ``assignment`` with the VDD-law exponent ``alpha``."""
    traffic = traffic_from_tolerance(record, batch_size=options.batch_size)
    memspec = memspec_of(profile)
    org = profile.organization.to_address()
    e_nom = e_map = 0.0
    used = {p.name: p for p in parts if p.name in set(assignment.values())}
    nominal = next(p for p in parts if p.nominal)
    reps = {}
    for p in list(used.values()) + [nominal]:
        reps[p.name] = energy_report(traffic, memspec, org, vdd_v=None if p.nominal else p.vdd_v,
                                     trcd_ns=None if p.nominal else p.trcd_ns, alpha=alpha,
                                     model=options.access_model, memory_bound_fraction=options.memory_bound_fraction,
                                     samples=options.batch_size)
    nom = {d.name: d for d in reps[nominal.name].data_types}
    for name, part in assignment.items():
        p = used[part]
        e_nom += nom[name].nominal.total.total
        d = {x.name: x for x in reps[part].data_types}[name]
        e_map += (d.nominal if p.nominal else d.operating).total.total
    return e_nom, e_map


def assumptions(record: dict, profile, parts: Sequence[Partition], assignment: dict[str, str],
                options: DeployOptions) -> dict:
    """What an energy/latency result rests on: the saving at both ends of the VDD law's alpha range,
    which operating points of the mapping are measured and which transferred (or lower bounds), and
    the partition model, and the ECC code. Printed with every report (``eden map``, ``report``, ``run``)."""
    options = _with_device_ecc(record, options)
    saving = {}
    for a in sorted({*ALPHA_RANGE, float(options.alpha)}):
        e_nom, e_map = _mapped_energy(record, profile, parts, assignment, options, a)
        saving[f"{a:g}"] = (1 - e_map / e_nom) if e_nom > 0 else 0.0
    points: list[dict[str, Any]] = []
    for p in parts:
        if p.nominal or p.name not in set(assignment.values()):
            continue
        try:
            op = profile.operating_point(p.name)
        except EdenError:  # an explicit partition, not a point of the profile
            points.append({"name": p.name, "vdd_v": p.vdd_v, "trcd_ns": p.trcd_ns, "ber": p.ber, "source": None,
                           "transferred": False, "how": "given as a partition", "pooled": False,
                           "ber_is_lower_bound": False,
                           "ber_range": None})
            continue
        src = profile.sources[op.source]
        m = op.measured
        lower = m is not None and m.lower_bound
        where = m.data if m is not None else src.citation
        points.append({"name": op.name, "vdd_v": op.vdd_v, "trcd_ns": op.trcd_ns, "ber": op.ber,
                       "source": op.source, "transferred": bool(src.is_assumption),
                       "how": f"{op.source}: from {where}" if src.is_assumption else where,
                       "pooled": m is not None and "pooled" in m.data,
                       "ber_is_lower_bound": bool(lower),
                       "ber_range": list(m.ber_range) if m is not None and m.ber_range is not None else None})
    return {"alpha": float(options.alpha), "alpha_range": list(ALPHA_RANGE), "energy_saving_by_alpha": saving,
            "vdd_law": "IDD(V) = IDD_nominal * (V / V_nominal) ** alpha (VDD domain); VPP unchanged",
            "operating_points": points, "partition_model": PARTITION_MODEL,
            "correction_bound": _bound_note(record) if record.get("correction", "none") != "none" else None,
            "ecc": _ecc_note(record, profile, options)}


def _ecc_note(record: dict, profile, options: DeployOptions) -> dict:
    """Which ECC the result assumes: the tolerance's code, the memory's (the same: :func:`device_ecc`), and
    what its check bits add to the energy."""
    from eden.power.ecc import ecc_energy

    code = options.ecc or "none"
    energy = ecc_energy(code, memspec_of(profile).standard)
    return {"code": code, "tolerance_measured_with": record.get("ecc", "none"), "energy": energy.to_dict()}


def _bound_note(record: dict) -> str:
    cb = record.get("correction_bounds")
    if cb:
        return (f"plausible ranges calibrated in advance on {cb.get('batches')} batches of "
                f"{cb.get('calibration_data')} (stored in the tolerance record)")
    return "IFM plausible ranges are each batch's own min/max (not profiled in advance)"


def assumptions_text(a: dict) -> list[str]:
    """The assumptions block of a report, as lines."""
    s = a["energy_saving_by_alpha"]
    lo, hi = (f"{x:g}" for x in a["alpha_range"])
    out = ["assumptions:",
           f"  VDD law {a['vdd_law']}: energy saved {s[lo] * 100:.1f}% at alpha {lo} .. {s[hi] * 100:.1f}% at "
           f"alpha {hi} (reported at alpha {a['alpha']:g}; no source settles alpha for this device)"]
    if not a["operating_points"]:
        out.append("  operating points: none but nominal used")
    for p in a["operating_points"]:
        how = "TRANSFERRED (" + p["how"] + ")" if p["transferred"] else "measured (" + p["how"] + ")"
        if p.get("pooled"):
            how += "; POOLED over vendors (an average device, not one that exists)"
        rng = f", range over devices [{p['ber_range'][0]:.2g}, {p['ber_range'][1]:.2g}]" if p["ber_range"] else ""
        lb = ", BER is a LOWER BOUND" if p["ber_is_lower_bound"] else ""
        out.append(f"  point {p['name']} (VDD {p['vdd_v']:g} V, tRCD {p['trcd_ns']:g} ns, "
                   f"BER {p['ber']:.3g}{rng}{lb}): "
                   f"{how}")
    out.append(f"  partitions: {a['partition_model']}")
    e = a.get("ecc")
    if e is not None:
        if e["code"] == "none":
            out.append("  ECC: none (raw errors reach the data; the tolerable BERs were measured without ECC)")
        else:
            out.append(f"  ECC: {e['code']} on the memory, as in the tolerance measurement (BERs are raw, before "
                       f"ECC; validation emulates it); energy: {e['energy']['note']}")
    if a.get("correction_bound"):
        out.append(f"  correction: {a['correction_bound']}")
    return out


def _report(record, profile, parts, result, reports, options, validation) -> dict:
    by_part = {p.name: p for p in parts}
    nominal_name = next(p.name for p in parts if p.nominal)
    nominal_rep = reports[nominal_name]
    rows, e_nom, e_map, t_nom, t_map = [], 0.0, 0.0, 0.0, 0.0
    sizes = {d["name"]: d for d in record["datatypes"]}
    energies = {name: {d.name: d for d in rep.data_types} for name, rep in reports.items()}
    for dt in result.problem.demands:
        part = result.assignment[dt.name]
        p = by_part[part]
        rep = reports[part]
        d_nom = energies[nominal_name][dt.name]
        d_op = energies[part][dt.name]
        en = d_nom.nominal.total.total
        eo = en if p.nominal else d_op.operating.total.total
        tn, to = rep.latency.per_data_type[dt.name]
        if p.nominal:
            to = tn
        e_nom += en
        e_map += eo
        t_nom += tn
        t_map += to
        rows.append({"name": dt.name, "kind": sizes[dt.name]["kind"], "bytes": dt.size_bytes,
                     "tolerable_ber": dt.tolerable_ber, "partition": part, "vdd_v": p.vdd_v, "trcd_ns": p.trcd_ns,
                     "partition_ber": p.ber, "energy_nominal_j": en, "energy_mapped_j": eo,
                     "access_time_nominal_s": tn, "access_time_mapped_s": to,
                     "fallback": dt.name in result.fallbacks})
    generation = options.workload is Workload.GENERATION
    # a generation's memory-bound fraction is that of its two phases together
    f = nominal_rep.latency.memory_bound_fraction if generation else options.memory_bound_fraction
    speedup = 1.0 / ((1 - f) + f * (t_map / t_nom)) if t_nom > 0 else 1.0
    per_token = {}
    if generation:
        n = options.generation.generated_tokens
        per_token = {"generated_tokens": n, "energy_per_token_nominal_j": e_nom / n,
                     "energy_per_token_mapped_j": e_map / n, "dram_time_per_token_nominal_s": t_nom / n,
                     "dram_time_per_token_mapped_s": t_map / n}
    return {
        "format": REPORT_FORMAT, "format_version": REPORT_VERSION, "eden_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": record["model"], "profile": profile.name, "memspec": nominal_rep.memspec,
        "metric": record.get("metric", "top1"),
        "tolerance": {"error_model": record["error_model"], "format": record["format_spec"],
                      "correction": record["correction"], "ecc": record.get("ecc", "none"),
                      "target_drop_pp": record["target_drop_pp"], "source": options.tolerance},
        "options": dataclasses.asdict(options), "law": nominal_rep.law,
        "vdd_law": _vdd_law(profile, options.alpha),
        "access_model": options.access_model.to_dict(),
        "partitions": [dataclasses.asdict(p) for p in parts],
        "datatypes": rows,
        "totals": {"energy_nominal_j": e_nom, "energy_mapped_j": e_map,
                   "energy_saving_fraction": (1 - e_map / e_nom) if e_nom > 0 else 0.0,
                   "access_time_nominal_s": t_nom, "access_time_mapped_s": t_map,
                   "access_time_saving_fraction": (1 - t_map / t_nom) if t_nom > 0 else 0.0,
                   "memory_bound_fraction": f, "speedup": speedup,
                   "per_sample_energy_nominal_j": e_nom / options.batch_size,
                   "per_sample_energy_mapped_j": e_map / options.batch_size, **per_token},
        "fallbacks": {k: v for k, v in result.fallbacks.items()} if isinstance(result.fallbacks, dict)
        else list(result.fallbacks),
        "mapping": result.to_dict(),
        "validation": validation,
    }


def record_at_target(record: dict, target_drop_pp: float) -> dict:
    """A copy of a fine-grained tolerance record re-read for another accuracy target.

    Each data type's tolerable BER becomes the highest BER among its evaluated
    points whose mean accuracy meets the new target (0 if none); the joint check
    is dropped (the mapping is validated by emulation instead).
    """
    import copy

    if "fine" not in record:
        raise EdenDataError("a Pareto sweep needs a fine-grained tolerance record (characterize --mode fine|both)")
    rec = copy.deepcopy(record)
    threshold = rec["baseline"]["clean_in_format"] - target_drop_pp / 100
    for r in rec["fine"].values():
        ok = [p["ber"] for p in r["points"] if p["mean"] >= threshold - 1e-12]
        r["tolerable_ber"] = max(ok) if ok else 0.0
    rec["joint"] = {"passed": False}
    rec["baseline"]["threshold"] = threshold
    rec["target_drop_pp"] = float(target_drop_pp)
    return rec


def pareto_sweep(record: dict, profile, targets_pp, *, options: DeployOptions = DeployOptions(), model=None,
                 loader=None, seeds=5, device=None, executor=None) -> list[dict]:
    """Energy saving vs accuracy (validated by emulation, on ``executor`` as in :func:`deploy`) for several
    accuracy targets."""
    out = []
    for t in targets_pp:
        rep = deploy(record_at_target(record, t), profile, options=options, model=model, loader=loader,
                     seeds=seeds, device=device, executor=executor)
        v = rep["validation"]
        out.append({"target_drop_pp": float(t), "energy_saving_fraction": rep["totals"]["energy_saving_fraction"],
                    "access_time_saving_fraction": rep["totals"]["access_time_saving_fraction"],
                    "accuracy": v.get("accuracy"), "passed": v.get("passed"),
                    "backoff_steps": len(v.get("backoff_steps", []))})
    return out


def report_table(rep: dict) -> str:
    """Readable table of a deployment report."""
    t = rep["totals"]
    lines = [f"model {rep['model']['id']} on {rep['profile']} ({rep['memspec']}), policy {rep['options']['policy']}, "
             f"batch {rep['options']['batch_size']}",
             f"tolerance: {rep['tolerance']['error_model']} shape, {rep['tolerance']['format']}, correction "
             f"{rep['tolerance']['correction']}"
             + (f", ECC {rep['tolerance']['ecc']} (raw BERs)" if rep["tolerance"].get("ecc", "none") != "none" else "")
             + f", target {rep['tolerance']['target_drop_pp']:g} pp "
             f"({rep['tolerance']['source']} BERs)",
             f"law: {rep['vdd_law']}",
             "",
             f"{'data type':30s} {'bytes':>9s} {'tol. BER':>9s} {'partition':>14s} {'VDD':>6s} {'tRCD':>6s} "
             f"{'E nom [nJ]':>11s} {'E map [nJ]':>11s}"]
    for r in rep["datatypes"]:
        lines.append(f"{r['name']:30s} {r['bytes']:>9d} {r['tolerable_ber']:>9.2g} {r['partition']:>14s} "
                     f"{r['vdd_v'] or 0:>6.3g} {r['trcd_ns'] or 0:>6.3g} {r['energy_nominal_j'] * 1e9:>11.4g} "
                     f"{r['energy_mapped_j'] * 1e9:>11.4g}" + ("  (fallback: nominal)" if r["fallback"] else ""))
    lines.append("")
    if "energy_per_token_nominal_j" in t:
        o = rep["options"]
        lines.append(f"generation: prompt {o['prompt_tokens']} tokens, {o['new_tokens']} decode steps, batch "
                     f"{o['batch_size']} ({t['generated_tokens']} generated tokens; decode memory-bound fraction "
                     f"{o['decode_memory_bound_fraction']:g}); the energies below are per generation")
        lines.append(f"DRAM energy per generated token: {t['energy_per_token_nominal_j'] * 1e9:.4g} nJ nominal -> "
                     f"{t['energy_per_token_mapped_j'] * 1e9:.4g} nJ mapped; DRAM time per token "
                     f"{t['dram_time_per_token_nominal_s'] * 1e9:.4g} ns -> "
                     f"{t['dram_time_per_token_mapped_s'] * 1e9:.4g} ns")
    unit = "generation" if "energy_per_token_nominal_j" in t else "inference"
    lines.append(f"DRAM energy per {unit}: {t['energy_nominal_j'] * 1e6:.4g} uJ nominal -> "
                 f"{t['energy_mapped_j'] * 1e6:.4g} uJ mapped ({t['energy_saving_fraction'] * 100:.1f}% saved)")
    lines.append(f"DRAM access time: {t['access_time_nominal_s'] * 1e6:.4g} us -> "
                 f"{t['access_time_mapped_s'] * 1e6:.4g} us "
                 f"({t['access_time_saving_fraction'] * 100:.1f}% saved); end-to-end speedup {t['speedup']:.3f}x at "
                 f"memory-bound fraction {t['memory_bound_fraction']:g}")
    v = rep["validation"]
    if v.get("validated"):
        a = v["accuracy"]
        half = (a["ci95"][1] - a["ci95"][0]) / 2
        if rep.get("metric") == "neg_nll":  # -ln(perplexity): shown as perplexity
            import math

            value = (f"perplexity under the mapping (emulated, {len(v['seeds'])} seeds): {math.exp(-a['mean']):.4g} "
                     f"[{math.exp(-a['ci95'][1]):.4g}, {math.exp(-a['ci95'][0]):.4g}] (95% CI); target <= "
                     f"{math.exp(-v['threshold']):.4g}")
        else:
            value = (f"accuracy under the mapping (emulated, {len(v['seeds'])} seeds): {a['mean'] * 100:.2f}% "
                     f"±{half * 100:.2f} (95% CI); target >= {v['threshold'] * 100:.2f}%")
        lines.append(f"{value}: {'met' if v['passed'] else 'NOT met'}"
                     + (f"; backed off {len(v['backoff_steps'])} step(s)" if v["backoff_steps"] else ""))
    else:
        lines.append(f"not validated by emulation ({v.get('reason')})")
    if rep.get("assumptions"):
        lines += [""] + assumptions_text(rep["assumptions"])
    else:
        lines += ["", f"assumptions: not recorded (a report of an older eden); the saving above assumes alpha "
                      f"{rep['options']['alpha']:g}, which no source settles: remap to see both ends of [0, 1]"]
    return "\n".join(lines)


def load_report(path) -> dict:
    """Read and check a deployment report (format, version)."""
    from eden.core.io import read_json_record

    return read_json_record(path, REPORT_FORMAT, REPORT_VERSION, "deployment report", ("datatypes", "totals"))

