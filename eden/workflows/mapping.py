"""Map DNN data types to DRAM partitions: EDEN's greedy, an exact MILP, back-off.

A *data type* (one layer's weights or input feature map) tolerates bit errors up
to a BER found by characterization. A *partition* is a region of DRAM run at one
operating point (reduced VDD and/or tRCD) with that point's expected BER and a
capacity. Placing data type ``d`` in partition ``p`` costs ``cost[d, p]`` (energy
in J per inference, or any other additive figure to minimize). A mapping is
feasible when

* every data type is in exactly one partition,
* ``partition.ber <= demand.tolerable_ber`` for each placement, and
* the sizes placed in a partition sum to at most its ``capacity_bytes``.

The **nominal** partition (``ber == 0``, the device at its datasheet operating
point) is always a candidate. Callers either mark one of their partitions
``nominal=True`` or leave it out, in which case an unlimited one named
``"nominal"`` is appended (its cost must then be supplied too, see
``MappingProblem.build``). A data type whose tolerable BER is below every
non-nominal partition's BER ("a target no partition can meet") can only go to
the nominal partition: it does, and the result lists it in ``fallbacks`` with the
reason.

Policies register by name in ``MAPPING_POLICIES``:

* ``greedy`` (EDEN, MICRO 2019): data types in order of tolerable BER,
  most tolerant first (ties: larger first, then input order); each goes to the
  most aggressive partition it tolerates that still has room, "most aggressive"
  meaning lowest ``cost[d, p]`` (ties: higher BER, then partition order).
  Fast, but can be strictly worse than optimal, or fail to pack data types that
  an exact solver fits.
* ``milp``: the exact optimum, a binary program solved by ``scipy.optimize.milp``
  (HiGHS) with one variable per tolerated (data type, partition) pair.

``validate_and_backoff`` then checks a mapping jointly (e.g. by emulation over
several seeds) and, while the check fails, moves the least tolerant data types
one step to safer partitions.

Example:
    >>> parts = [Partition("vdd1.25", ber=1e-4, capacity_bytes=1 << 20),
    ...          Partition("vdd1.30", ber=1e-6, capacity_bytes=1 << 20)]
    >>> dts = [DataTypeDemand("conv1.weight", 4096, tolerable_ber=1e-5),
    ...        DataTypeDemand("fc.weight", 65536, tolerable_ber=1e-3)]
    >>> energy_per_byte = {"vdd1.25": 0.7, "vdd1.30": 0.8, "nominal": 1.0}
    >>> res = map_datatypes(dts, parts, lambda d, p: d.size_bytes * energy_per_byte[p.name])
    >>> res.assignment
    {'conv1.weight': 'vdd1.30', 'fc.weight': 'vdd1.25'}
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from eden.core.registry import Registry
from eden.core.validate import check_int, check_number, unknown_name
from eden.errors import EdenConfigError, EdenInfeasibleError, EdenTypeError

__all__ = [
    "Partition", "DataTypeDemand", "MappingProblem", "MappingResult", "BackoffStep",
    "BackoffOutcome", "MappingInfeasibleError", "MAPPING_POLICIES", "register_policy",
    "map_datatypes", "validate_and_backoff",
]

_log = logging.getLogger(__name__)

FORMAT = "eden.mapping"  # the record's format tag (a file format name, not a module path)
FORMAT_VERSION = 1
IMPLICIT_NOMINAL_NAME = "nominal"


class MappingInfeasibleError(EdenInfeasibleError):
    """No mapping satisfies the capacity constraints (or the greedy found none).

    Attributes:
        needed_bytes: bytes that had to be placed in the violated group of partitions.
        available_bytes: capacity of that group (``math.inf`` when unlimited).
    """

    def __init__(self, message: str, needed_bytes: int, available_bytes: float):
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.available_bytes = available_bytes

    def __reduce__(self):  # picklable (multiprocessing, DDP gathers), like every eden error
        return (type(self), (str(self), self.needed_bytes, self.available_bytes))


# ---------------------------------------------------------------------------
# field checks


def _check_name(owner: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise EdenTypeError(f"{owner}.name must be a non-empty string, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Partition:
    """A DRAM region run at one operating point.

    Attributes:
        name: unique name, e.g. ``"vdd1.25_trcd10"``.
        ber: expected bit error rate of the operating point's error model, in [0, 1].
        capacity_bytes: bytes available, ``None`` for unlimited.
        nominal: True for the nominal (reliable, ``ber == 0``) partition; at most one
            per problem. Left out, an unlimited nominal partition is added.
        vdd_v: supply voltage of the operating point (metadata, optional).
        trcd_ns: tRCD of the operating point (metadata, optional).
        error_model: error-model spec string or HDF5 path (metadata, optional).
    """

    name: str
    ber: float
    capacity_bytes: int | None = None
    nominal: bool = False
    vdd_v: float | None = None
    trcd_ns: float | None = None
    error_model: str | None = None

    def __post_init__(self):
        _check_name("Partition", self.name)
        owner = f"Partition {self.name!r}"
        object.__setattr__(self, "ber", check_number(f"{owner}.ber", self.ber, lo=0.0, hi=1.0))
        object.__setattr__(self, "capacity_bytes",
                           check_int(f"{owner}.capacity_bytes", self.capacity_bytes, lo=1, optional=True))
        if not isinstance(self.nominal, (bool, np.bool_)):
            raise EdenTypeError(f"{owner}.nominal must be a bool, got {self.nominal!r}")
        object.__setattr__(self, "nominal", bool(self.nominal))
        if self.nominal and self.ber != 0.0:
            raise EdenConfigError(f"{owner}.ber must be 0 for the nominal partition, got {self.ber!r}")
        for f in ("vdd_v", "trcd_ns"):
            object.__setattr__(self, f, check_number(f"{owner}.{f}", getattr(self, f), lo=0.0, lo_open=True,
                                                     optional=True))
        if self.error_model is not None and not isinstance(self.error_model, str):
            raise EdenTypeError(f"{owner}.error_model must be a spec/path string or None, got {self.error_model!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DataTypeDemand:
    """One data type to place.

    Attributes:
        name: unique name, e.g. ``"conv1.weight"`` or ``"conv1.ifm"``.
        size_bytes: bytes it occupies in DRAM (as stored, i.e. after quantization).
        tolerable_ber: highest BER at which it still meets the accuracy target
            (>= 0; ``math.inf`` tolerates anything).
    """

    name: str
    size_bytes: int
    tolerable_ber: float

    def __post_init__(self):
        _check_name("DataTypeDemand", self.name)
        owner = f"DataTypeDemand {self.name!r}"
        object.__setattr__(self, "size_bytes", check_int(f"{owner}.size_bytes", self.size_bytes, lo=1))
        object.__setattr__(self, "tolerable_ber",
                           check_number(f"{owner}.tolerable_ber", self.tolerable_ber, lo=0.0, allow_inf=True))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------
# the problem


@dataclasses.dataclass(frozen=True, eq=False)
class MappingProblem:
    """A validated instance: data types, partitions (nominal included) and costs.

    Build it with ``MappingProblem.build``; policies receive it.

    Attributes:
        demands: the data types, in input order.
        partitions: the partitions, in input order, the implicit nominal (if any) last.
        cost: float64 array of shape (len(demands), len(partitions)), read-only.
        nominal_index: index of the nominal partition in ``partitions``.
        implicit_nominal: True when the nominal partition was added here.
    """

    demands: tuple[DataTypeDemand, ...]
    partitions: tuple[Partition, ...]
    cost: np.ndarray
    nominal_index: int
    implicit_nominal: bool

    @classmethod
    def build(cls, demands: Sequence[DataTypeDemand], partitions: Sequence[Partition],
              cost: np.ndarray | Callable[[DataTypeDemand, Partition], float]) -> MappingProblem:
        """Validate the inputs and resolve the nominal partition and the cost matrix.

        Args:
            demands: data types to place (unique names).
            partitions: candidate partitions (unique names, at most one ``nominal``).
                Without a nominal one, ``Partition("nominal", 0.0, None, nominal=True)``
                is appended.
            cost: either an array of shape (len(demands), number of partitions
                *including* the appended nominal, which is the last column), or a
                callable ``cost(demand, partition) -> float`` called once per pair
                (also for the appended nominal). Values must be finite.

        Returns:
            The problem.

        Raises:
            EdenTypeError: an element is not a ``DataTypeDemand`` / ``Partition``, or cost is
                neither an array nor a callable.
            EdenConfigError: duplicate names, several nominal partitions, a name clash with
                the implicit nominal, a cost of the wrong shape or not finite.
        """
        demands = tuple(demands)
        partitions = tuple(partitions)
        for i, d in enumerate(demands):
            if not isinstance(d, DataTypeDemand):
                raise EdenTypeError(f"demands[{i}] must be a DataTypeDemand, got {type(d).__name__}")
        for i, p in enumerate(partitions):
            if not isinstance(p, Partition):
                raise EdenTypeError(f"partitions[{i}] must be a Partition, got {type(p).__name__}")
        _check_unique("data type", [d.name for d in demands])
        _check_unique("partition", [p.name for p in partitions])
        nominal = [i for i, p in enumerate(partitions) if p.nominal]
        if len(nominal) > 1:
            raise EdenConfigError("at most one partition may be nominal, got "
                                  + ", ".join(repr(partitions[i].name) for i in nominal))
        implicit = not nominal
        if implicit:
            if any(p.name == IMPLICIT_NOMINAL_NAME for p in partitions):
                raise EdenConfigError(f"partition {IMPLICIT_NOMINAL_NAME!r} is not marked nominal=True, but no "
                                      "partition is, and the implicit nominal partition needs that name; "
                                      "mark it nominal=True or rename it")
            partitions = partitions + (Partition(IMPLICIT_NOMINAL_NAME, 0.0, None, nominal=True),)
            nominal_index = len(partitions) - 1
        else:
            nominal_index = nominal[0]
        shape = (len(demands), len(partitions))
        if callable(cost):
            m = np.empty(shape, dtype=np.float64)
            for i, d in enumerate(demands):
                for j, p in enumerate(partitions):
                    v = cost(d, p)
                    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
                        raise EdenTypeError(f"cost({d.name!r}, {p.name!r}) must return a number, got {v!r}")
                    m[i, j] = float(v)
        elif isinstance(cost, (np.ndarray, list, tuple)):
            m = np.asarray(cost, dtype=np.float64)
            if m.shape != shape:
                extra = (" (the last column is the implicit nominal partition, since none is marked "
                         "nominal=True)" if implicit else "")
                raise EdenConfigError(f"cost must have shape (data types, partitions) = {shape}{extra}, "
                                      f"got {m.shape}")
        else:
            raise EdenTypeError(f"cost must be an array or a callable (demand, partition) -> float, "
                                f"got {type(cost).__name__}")
        bad = np.argwhere(~np.isfinite(m))
        if bad.size:
            i, j = bad[0]
            raise EdenConfigError(f"cost[{demands[i].name!r}, {partitions[j].name!r}] must be finite, "
                                  f"got {float(m[i, j])!r} ({len(bad)} non-finite entries)")
        return cls(demands, partitions, _readonly(m), nominal_index, implicit)

    # -- derived arrays (cheap, recomputed on use) --

    @property
    def sizes(self) -> np.ndarray:
        """int64 (D,) bytes per data type."""
        return np.array([d.size_bytes for d in self.demands], dtype=np.int64)

    @property
    def tolerances(self) -> np.ndarray:
        """float64 (D,) tolerable BER per data type."""
        return np.array([d.tolerable_ber for d in self.demands], dtype=np.float64)

    @property
    def bers(self) -> np.ndarray:
        """float64 (P,) BER per partition."""
        return np.array([p.ber for p in self.partitions], dtype=np.float64)

    @property
    def capacities(self) -> list[int | None]:
        """Capacity per partition in bytes, ``None`` for unlimited (Python ints: exact)."""
        return [p.capacity_bytes for p in self.partitions]

    def tolerated(self) -> np.ndarray:
        """bool (D, P): data type d tolerates partition p (``ber_p <= tolerable_ber_d``).

        The nominal partition is tolerated by every data type.
        """
        t = self.bers[None, :] <= self.tolerances[:, None]
        t[:, self.nominal_index] = True
        return t

    def fallbacks(self) -> dict[str, str]:
        """Data types only the nominal partition can take, with the reason."""
        tol = self.tolerated()
        others = [j for j in range(len(self.partitions)) if j != self.nominal_index]
        nominal = self.partitions[self.nominal_index].name
        out = {}
        for i, d in enumerate(self.demands):
            if others and tol[i, others].any():
                continue
            if others:
                j = min(others, key=lambda j: self.partitions[j].ber)
                why = (f"tolerable BER {d.tolerable_ber:.3g} is below every non-nominal partition's BER "
                       f"(lowest: {self.partitions[j].name!r} at {self.partitions[j].ber:.3g})")
            else:
                why = "there is no non-nominal partition"
            out[d.name] = f"{why}; placed in the nominal partition {nominal!r}"
        return out

    def diagnose_capacity(self) -> tuple[str, int, float]:
        """Explain why the data types cannot all be placed: (message, needed, available).

        The sets of partitions the data types tolerate are nested (a lower tolerable
        BER tolerates a subset), so the data types tolerating at most a given set must
        fit in that set's capacity. The first such group that does not fit is reported;
        if every group fits, the failure is one of packing whole data types into bins.
        """
        tol = self.tolerated()
        sizes = self.sizes
        caps = self.capacities
        total_need = int(sizes.sum())
        total_cap = math.inf if any(c is None for c in caps) else sum(c for c in caps if c is not None)
        worst = None
        seen = set()
        for i in np.argsort(self.tolerances, kind="stable"):
            key = tuple(np.flatnonzero(tol[i]))
            if key in seen:
                continue
            seen.add(key)
            members = [k for k in range(len(self.demands)) if set(np.flatnonzero(tol[k])) <= set(key)]
            need = int(sizes[members].sum())
            key_caps = [caps[j] for j in key]
            avail = math.inf if any(c is None for c in key_caps) else sum(c for c in key_caps if c is not None)
            if need > avail and (worst is None or need - avail > worst[0] - worst[1]):
                worst = (need, avail, members, key)
        if worst is not None:
            need, avail, members, key = worst
            names = [self.demands[k].name for k in members]
            shown = ", ".join(repr(n) for n in names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
            pnames = ", ".join(repr(self.partitions[j].name) for j in key)
            msg = (f"capacities too small: data types {shown} tolerate only partitions {pnames}; "
                   f"they need {need} bytes but those partitions have {avail} bytes available "
                   f"(short by {need - avail} bytes; total needed {total_need}, total capacity {total_cap})")
            return msg, need, avail
        msg = (f"capacities too small to hold every data type whole: total needed {total_need} bytes, "
               f"total capacity {total_cap} bytes, but the data types cannot be packed into the "
               f"partitions they tolerate (each data type must fit in a single partition)")
        return msg, total_need, total_cap


def _check_unique(what: str, names: list[str]) -> None:
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    if dup:
        raise EdenConfigError(f"{what} names must be unique; repeated: {', '.join(repr(n) for n in dup)}")


# ---------------------------------------------------------------------------
# the result


@dataclasses.dataclass(frozen=True, eq=False)
class MappingResult:
    """A feasible mapping and how it was found.

    Attributes:
        problem: the instance it solves.
        partition_index: partition index per data type (input order).
        policy: policy name that produced it.
        solver_status: ``"heuristic"`` (greedy), ``"optimal"`` or ``"time_limit"`` (milp: best
            found when a time/node limit hit).
        solver_message: solver detail (e.g. MILP gap and node count).
        runtime_s: wall time of the policy.
        backed_off: data types moved by ``validate_and_backoff`` (in order, may repeat).

    Derived (properties): ``assignment``, ``costs``, ``total_cost``, ``nominal_cost``,
    ``used_bytes``, ``fallbacks``.
    """

    problem: MappingProblem
    partition_index: tuple[int, ...]
    policy: str
    solver_status: str
    solver_message: str = ""
    runtime_s: float = 0.0
    backed_off: tuple[str, ...] = ()

    def __post_init__(self):
        idx = tuple(int(i) for i in self.partition_index)
        object.__setattr__(self, "partition_index", idx)
        problems = _violations(self.problem, idx)
        if problems:
            raise ValueError(f"mapping from policy {self.policy!r} is not feasible: " + "; ".join(problems))

    @property
    def assignment(self) -> dict[str, str]:
        """Data type name -> partition name."""
        parts = self.problem.partitions
        return {d.name: parts[j].name for d, j in zip(self.problem.demands, self.partition_index)}

    @property
    def costs(self) -> dict[str, float]:
        """Data type name -> cost of its placement."""
        c = self.problem.cost
        return {d.name: float(c[i, j]) for i, (d, j) in enumerate(zip(self.problem.demands, self.partition_index))}

    @property
    def total_cost(self) -> float:
        c = self.problem.cost
        return math.fsum(float(c[i, j]) for i, j in enumerate(self.partition_index))

    @property
    def nominal_cost(self) -> float:
        """Cost with every data type in the nominal partition (the baseline)."""
        return math.fsum(self.problem.cost[:, self.problem.nominal_index].tolist())

    @property
    def used_bytes(self) -> dict[str, int]:
        """Partition name -> bytes placed in it (every partition listed)."""
        used = {p.name: 0 for p in self.problem.partitions}
        for d, j in zip(self.problem.demands, self.partition_index):
            used[self.problem.partitions[j].name] += d.size_bytes
        return used

    @property
    def fallbacks(self) -> dict[str, str]:
        """Data types placed in nominal because no other partition meets their target."""
        return self.problem.fallbacks()

    @property
    def nominal_partition(self) -> str:
        return self.problem.partitions[self.problem.nominal_index].name

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (``format``/``format_version`` stamped)."""
        used = self.used_bytes
        costs = self.costs
        fb = self.fallbacks
        assignment = self.assignment
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "policy": self.policy,
            "solver_status": self.solver_status,
            "solver_message": self.solver_message,
            "runtime_s": self.runtime_s,
            "total_cost": self.total_cost,
            "nominal_cost": self.nominal_cost,
            "nominal_partition": self.nominal_partition,
            "implicit_nominal": self.problem.implicit_nominal,
            "partitions": [dict(p.to_dict(), used_bytes=used[p.name]) for p in self.problem.partitions],
            "datatypes": [dict(d.to_dict(), partition=assignment[d.name], cost=costs[d.name],
                               fallback=fb.get(d.name)) for d in self.problem.demands],
            "assignment": assignment,
            "fallbacks": fb,
            "backed_off": list(self.backed_off),
        }


def _violations(problem: MappingProblem, idx: tuple[int, ...]) -> list[str]:
    """Every broken constraint of an assignment (exact integer capacity arithmetic)."""
    out = []
    n_p = len(problem.partitions)
    if len(idx) != len(problem.demands):
        return [f"{len(idx)} placements for {len(problem.demands)} data types"]
    used = [0] * n_p
    for d, j in zip(problem.demands, idx):
        if not 0 <= j < n_p:
            out.append(f"{d.name!r} placed in partition index {j} (have {n_p})")
            continue
        p = problem.partitions[j]
        if not p.nominal and p.ber > d.tolerable_ber:
            out.append(f"{d.name!r} (tolerates {d.tolerable_ber:.3g}) in {p.name!r} (BER {p.ber:.3g})")
        used[j] += d.size_bytes
    for p, u in zip(problem.partitions, used):
        if p.capacity_bytes is not None and u > p.capacity_bytes:
            out.append(f"{p.name!r} holds {u} bytes > capacity {p.capacity_bytes}")
    return out


# ---------------------------------------------------------------------------
# policies

Policy = Callable[..., "tuple[Sequence[int], str, str]"]
MAPPING_POLICIES: Registry[Policy] = Registry("mapping policy")


def register_policy(name: str) -> Callable[[Policy], Policy]:
    """Register ``fn(problem: MappingProblem, **options) -> (partition_index, status, message)``.

    A policy returns a partition index per data type, or raises
    ``MappingInfeasibleError``; ``map_datatypes`` checks feasibility of what it returns.
    """
    def deco(fn: Policy) -> Policy:
        return MAPPING_POLICIES.add(name, fn)
    return deco


@register_policy("greedy")
def _greedy(problem: MappingProblem) -> tuple[list[int], str, str]:
    """EDEN's greedy; see the module docstring for the order and tie-breaks."""
    sizes, tols, bers = problem.sizes, problem.tolerances, problem.bers
    cost, tol = problem.cost, problem.tolerated()
    free = [math.inf if c is None else c for c in problem.capacities]
    n_d = cost.shape[0]
    # most tolerant first; ties: larger first (first-fit-decreasing), then input order
    order = sorted(range(n_d), key=lambda i: (-tols[i], -int(sizes[i]), i))
    # partition preference per data type: lowest cost, then higher BER, then input order
    idx = [-1] * n_d
    for i in order:
        size = int(sizes[i])
        prefs = sorted(np.flatnonzero(tol[i]).tolist(), key=lambda j: (cost[i, j], -bers[j], j))
        for j in prefs:
            if free[j] >= size:
                idx[i] = j
                free[j] -= size
                break
        else:
            d = problem.demands[i]
            room = sum(free[j] for j in prefs)
            msg, need, avail = problem.diagnose_capacity()
            if msg.startswith("capacities too small to hold every data type whole"):
                msg += "; an exact solver may still find a mapping: try policy='milp'"
            raise MappingInfeasibleError(
                f"greedy could not place {d.name!r} ({size} bytes, tolerable BER {d.tolerable_ber:.3g}): "
                f"the partitions it tolerates have {room} bytes free in all but none has {size} free; {msg}",
                need, avail)
    return idx, "heuristic", ""


_HIGHS_DEBUG_LINE = b"transformNewIntegerFeasibleSolution"


@contextlib.contextmanager
def _drop_highs_debug_line():
    """Keep HiGHS' stray debug line off stdout (it would corrupt ``--json`` output).

    HiGHS as bundled with scipy (1.17) prints
    ``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();`` from C++
    when it repairs an incumbent (ERGO-Code/HiGHS#2783), whatever ``disp`` says. File
    descriptor 1 goes to a temporary file during the solve; everything else written
    there meanwhile is written back afterwards. Where fd 1 cannot be redirected, nothing
    is filtered.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            try:
                ctypes.CDLL(None).fflush(None)  # C stdio buffers still pointing at the temp file
            except (OSError, AttributeError, TypeError):
                pass
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            kept = b"".join(line for line in tmp.read().splitlines(keepends=True)
                            if _HIGHS_DEBUG_LINE not in line)
            while kept:
                kept = kept[os.write(1, kept):]


@register_policy("milp")
def _milp(problem: MappingProblem, *, time_limit_s: float | None = None,
          mip_rel_gap: float = 0.0, presolve: bool = True) -> tuple[list[int], str, str]:
    """Exact mapping: binary x[d, p] over tolerated pairs, min sum cost * x.

    s.t. sum_p x[d, p] = 1 per data type, sum_d size_d x[d, p] <= capacity_p per
    finite partition. The objective is shifted per data type by its cheapest
    tolerated cost (a constant, so the same argmin) and scaled so the largest
    shifted cost is 1e3: HiGHS' absolute tolerances (1e-6 gap) are then negligible
    whatever the cost units (J per inference are ~1e-6).

    Args:
        time_limit_s: stop after this long with the best mapping found
            (status ``"time_limit"``); None: no limit.
        mip_rel_gap: relative optimality gap at which to stop (0: prove optimal).
        presolve: HiGHS presolve (faster on most instances).
    """
    from scipy import optimize, sparse

    tol, cost, sizes = problem.tolerated(), problem.cost, problem.sizes
    n_d = cost.shape[0]
    if n_d == 0:
        return [], "optimal", "no data types"
    rows, cols = np.nonzero(tol)  # variable k <-> (rows[k], cols[k]), row-major
    c = cost[rows, cols]
    row_min = np.full(n_d, np.inf)
    np.minimum.at(row_min, rows, c)
    c = c - row_min[rows]
    span = float(c.max()) if c.size else 0.0
    c = c * (1e3 / span) if span > 0 else c
    n_var = rows.size
    k = np.arange(n_var)
    constraints = [optimize.LinearConstraint(
        sparse.csr_array((np.ones(n_var), (rows, k)), shape=(n_d, n_var)), 1, 1)]
    finite = [j for j, cap in enumerate(problem.capacities) if cap is not None]
    if finite:
        row_of = {j: r for r, j in enumerate(finite)}
        sel = np.flatnonzero(np.isin(cols, finite))
        a = sparse.csr_array((sizes[rows[sel]].astype(np.float64), ([row_of[j] for j in cols[sel]], sel)),
                             shape=(len(finite), n_var))
        ub = np.array([problem.capacities[j] for j in finite], dtype=np.float64)
        constraints.append(optimize.LinearConstraint(a, -np.inf, ub))
    options = {"mip_rel_gap": float(mip_rel_gap), "presolve": presolve}
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    with _drop_highs_debug_line():
        res = optimize.milp(c, integrality=np.ones(n_var), bounds=optimize.Bounds(0, 1),
                            constraints=constraints, options=options)
    if res.status == 2:
        msg, need, avail = problem.diagnose_capacity()
        raise MappingInfeasibleError(f"MILP infeasible: {msg}", need, avail)
    if res.x is None:
        raise RuntimeError(f"MILP solver found no mapping (status {res.status}): {res.message}")
    x = np.rint(res.x).astype(bool)
    if not np.array_equal(np.bincount(rows[x], minlength=n_d), np.ones(n_d, dtype=np.int64)):
        raise RuntimeError(f"MILP solution is not integral after rounding (status {res.status}: {res.message})")
    idx = np.empty(n_d, dtype=np.int64)
    idx[rows[x]] = cols[x]
    status = {0: "optimal", 1: "time_limit"}.get(res.status, f"status_{res.status}")
    gap = getattr(res, "mip_gap", None)
    nodes = getattr(res, "mip_node_count", None)
    return idx.tolist(), status, f"{res.message.strip()} (gap {gap}, nodes {nodes})"


def map_datatypes(demands: Sequence[DataTypeDemand], partitions: Sequence[Partition],
                  cost: np.ndarray | Callable[[DataTypeDemand, Partition], float],
                  policy: str = "greedy", **options) -> MappingResult:
    """Map every data type to a partition it tolerates, within capacities, at low cost.

    Args:
        demands: data types to place (unique names).
        partitions: candidate partitions; an unlimited nominal one is appended when
            none is marked ``nominal=True`` (see ``MappingProblem.build``).
        cost: (D, P) array (P including an appended nominal, last) or callable
            ``(demand, partition) -> float``; energy in J per inference or any additive cost.
        policy: a name in ``MAPPING_POLICIES`` (``"greedy"``, ``"milp"``).
        **options: passed to the policy (``milp``: ``time_limit_s``, ``mip_rel_gap``,
            ``presolve``; ``greedy``: none). An unknown option raises ``TypeError``.

    Returns:
        The mapping. Data types no non-nominal partition can take are in the nominal
        partition and listed in ``result.fallbacks`` (also logged as a warning).

    Raises:
        EdenConfigError: unknown policy (the message lists the known ones), invalid inputs.
        MappingInfeasibleError: the capacities cannot hold the data types (message gives
            bytes needed vs available); for greedy, also when greedy's packing fails.
    """
    if policy not in MAPPING_POLICIES:
        raise unknown_name("mapping policy", policy, MAPPING_POLICIES)
    problem = MappingProblem.build(demands, partitions, cost)
    t0 = time.perf_counter()
    idx, status, message = MAPPING_POLICIES[policy](problem, **options)
    runtime = time.perf_counter() - t0
    result = MappingResult(problem, tuple(idx), policy, status, message, runtime)
    fb = problem.fallbacks()
    if fb:
        names = list(fb)
        _log.warning("%d data type(s) fall back to the nominal partition %r, no other partition meeting "
                     "their tolerable BER: %s (reasons in result.fallbacks)", len(fb), result.nominal_partition,
                     ", ".join(names[:8]) + (", ..." if len(names) > 8 else ""))
    return result


# ---------------------------------------------------------------------------
# joint validation and back-off


@dataclasses.dataclass(frozen=True)
class BackoffStep:
    """One data type moved to a safer partition after a failed joint check."""

    datatype: str
    tolerable_ber: float
    from_partition: str
    to_partition: str
    from_ber: float
    to_ber: float
    total_cost_after: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class BackoffOutcome:
    """What ``validate_and_backoff`` ended with.

    Attributes:
        result: the final mapping (its ``backed_off`` lists the moved data types).
        steps: the moves, in order.
        passed: True when the check passed on ``result``.
        checks: how many times the check ran.
        message: why it stopped.
    """

    result: MappingResult
    steps: tuple[BackoffStep, ...]
    passed: bool
    checks: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks, "message": self.message,
                "steps": [s.to_dict() for s in self.steps], "result": self.result.to_dict()}


def _next_backoff(result: MappingResult) -> tuple[int, int] | None:
    """(data type, new partition) of the next back-off move, or None if none is possible.

    Candidates: data types not in nominal, least tolerant first (ties: input order).
    Target: a strictly lower-BER partition with room, the highest such BER first (one
    step safer; ties: lower cost, then partition order), the nominal partition last.
    A candidate with no target (safer ones full) is skipped for the next one.
    """
    pr = result.problem
    idx = result.partition_index
    nom = pr.nominal_index
    used = [0] * len(pr.partitions)
    for d, j in zip(pr.demands, idx):
        used[j] += d.size_bytes
    cands = sorted((i for i in range(len(idx)) if idx[i] != nom),
                   key=lambda i: (pr.demands[i].tolerable_ber, i))
    for i in cands:
        cur = pr.partitions[idx[i]]
        size = pr.demands[i].size_bytes
        targets = [j for j, p in enumerate(pr.partitions) if j == nom or (p.ber < cur.ber)]
        targets.sort(key=lambda j: (j == nom, -pr.partitions[j].ber, pr.cost[i, j], j))
        for j in targets:
            cap = pr.partitions[j].capacity_bytes
            if cap is None or used[j] + size <= cap:
                return i, j
    return None


def validate_and_backoff(result: MappingResult, check: Callable[[MappingResult], bool], *,
                         max_steps: int | None = None) -> BackoffOutcome:
    """Check a mapping jointly; while it fails, back off the least tolerant data types.

    Each step moves one data type: the least tolerant one not in the nominal partition
    goes to the next safer partition with room (highest BER below its current one), or
    to nominal; it stays the least tolerant, so it keeps moving down until it reaches
    nominal before the next one moves. Stops when the check passes, when nothing can
    move (everything in nominal or safer partitions full), or after ``max_steps`` moves.

    Args:
        result: the mapping to validate (e.g. from ``map_datatypes``).
        check: ``check(mapping) -> bool``, True when the accuracy target holds with every
            data type's errors drawn from its partition's error model (the caller decides
            seeds and confidence).
        max_steps: most moves to try (None: until nothing can move).

    Returns:
        The final mapping, the steps, whether it passed, and the number of checks.

    Raises:
        EdenTypeError: ``check`` returned something other than a bool; ``max_steps`` is not an int.
        EdenConfigError: ``max_steps`` is negative.
    """
    check_int("max_steps", max_steps, lo=0, optional=True)
    current, checks = result, 0
    steps: list[BackoffStep] = []
    while True:
        ok = check(current)
        checks += 1
        if not isinstance(ok, (bool, np.bool_)):
            raise EdenTypeError(f"check must return a bool, got {ok!r} ({type(ok).__name__})")
        if ok:
            return BackoffOutcome(current, tuple(steps), True, checks,
                                  f"check passed after {len(steps)} back-off step(s)")
        if max_steps is not None and len(steps) >= max_steps:
            return BackoffOutcome(current, tuple(steps), False, checks,
                                  f"check still fails after max_steps={max_steps} back-off step(s)")
        move = _next_backoff(current)
        if move is None:
            return BackoffOutcome(current, tuple(steps), False, checks,
                                  "check still fails and nothing can back off further (every data type "
                                  "is in the nominal partition or the safer partitions are full)")
        i, j = move
        pr = current.problem
        idx = list(current.partition_index)
        old, idx[i] = idx[i], j
        d = pr.demands[i]
        current = dataclasses.replace(current, partition_index=tuple(idx),
                                      backed_off=current.backed_off + (d.name,))
        steps.append(BackoffStep(d.name, d.tolerable_ber, pr.partitions[old].name, pr.partitions[j].name,
                                 pr.partitions[old].ber, pr.partitions[j].ber, current.total_cost))
