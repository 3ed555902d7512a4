"""Error-tolerance characterization: the largest BER a model (or one data type) takes.

Accuracy under bit errors is a random variable, so each BER point is evaluated
with several device seeds and summarised as a mean with a 95% CI. A BER point
*passes* when the mean accuracy is at least ``baseline - target_drop`` where the
baseline is the model in the same numeric formats without bit errors
(``criterion="mean"``; ``"ci_low"`` demands the CI's lower end instead).

Search (in log10 BER): starting from the highest BER the error model reaches
(at most 0.5), step down one decade at a time until a point passes, then bisect
between the passing and the failing point until they are within
``resolution_decades``. The tolerable BER is the highest passing point found.
This assumes accuracy falls monotonically with BER, as it does in expectation.

* coarse: one BER for all data types;
* fine: each data type alone (the others exact), then a joint check with every
  data type at its own tolerable BER; while the joint point fails, all BERs are
  backed off together by ``resolution_decades`` and checked again.
* leave-one-out: no search. At one given ``ber``, which data types cost the
  accuracy: every selected data type corrupted ("every"), each alone ("only":
  its own cost) and all but each ("without": what leaving it out saves). The
  fine mode asks for the highest BER each data type takes alone; this one
  explains a failure at a given BER (e.g. why a retrained model misses its
  target). Costs count from the model in the format without errors.

Every evaluated point is stored in a cache file next to the output (when one is
given), written atomically at most once a second while results arrive and after
every round of points (and when interrupted), so an interrupted run resumes
without repeating work, on any executor.

Evaluations run on an executor (``eden.workflows.executor``: this process, or a
Ray cluster): the seeds of a point, the coarse and every fine search, and
speculative next points run at once there; the record is the same for every
executor and number of workers (see :class:`Characterizer`, docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import itertools
import math
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from eden._version import __version__
from eden.core.io import read_json_record, write_json
from eden.core.validate import Mode
from eden.core.validate import check_number
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError, EdenDataError, EdenFileError
from eden.nn.emulate import DataTypeConfig, EmulationPlan, datatypes, selection
from eden.nn.evaluate import Estimate, Metric, estimate
from eden.nn.quant import NumericFormat

TOLERANCE_FORMAT = "eden-tolerance"
TOLERANCE_VERSION = 1


class CharacterizationMode(Mode):
    """What :func:`characterize` measures (the value is the spelling accepted everywhere)."""

    COARSE = "coarse"  # one tolerable BER for all data types
    FINE = "fine"  # a tolerable BER per data type, then the joint check
    BOTH = "both"  # coarse and fine
    LEAVE_ONE_OUT = "leave-one-out"  # accuracy at one BER: every, each only, all but each


class CorrectionBounds(Mode):
    """Where the correction's plausible range comes from (see :func:`characterize`)."""

    BATCH = "batch"  # each tensor's own finite min/max (an IFM's: per batch)
    CALIBRATED = "calibrated"  # each data type's range profiled in advance on a calibration set


class Criterion(Mode):
    """When a BER point passes: its mean accuracy, or its 95% CI's lower end, reaches the threshold."""

    MEAN = "mean"
    CI_LOW = "ci_low"


MODES = CharacterizationMode.values()
CRITERIA = Criterion.values()


def _mode(value) -> CharacterizationMode:
    return CharacterizationMode.coerce(value, "characterization mode")


def _criterion(value) -> Criterion:
    return Criterion.coerce(value, "criterion")


@dataclasses.dataclass(frozen=True)
class Point:
    """One evaluated BER point."""

    ber: float
    accuracy: Estimate
    passed: bool

    def to_dict(self) -> dict:
        return {"ber": self.ber, "passed": self.passed, **self.accuracy.to_dict()}


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Outcome of one tolerable-BER search."""

    tolerable_ber: float
    accuracy: Estimate | None  # at the tolerable BER (None when nothing passed)
    points: tuple[Point, ...]
    bracket: tuple[float, float]  # (highest pass, lowest fail above it); 0 / inf when open

    def to_dict(self) -> dict:
        return {"tolerable_ber": self.tolerable_ber,
                "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
                "bracket": [self.bracket[0], None if math.isinf(self.bracket[1]) else self.bracket[1]],
                "points": [p.to_dict() for p in sorted(self.points, key=lambda p: p.ber)]}


class _EvalCache:
    """Evaluated (plan, seed) -> metric values, persisted atomically (at most once a second while results
    arrive, and after every batch of points)."""

    FLUSH_EVERY_S = 1.0

    def __init__(self, path: Path | None, header: dict):
        self.path, self.header = path, header
        self.values: dict[str, float] = {}
        self._flushed = time.monotonic()
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise EdenFileError(path, "/", f"cannot read this characterization cache ({exc}); delete it to "
                                    "start over") from None
            if not isinstance(data, dict):
                raise EdenFileError(path, "/", "a characterization cache is a JSON object; delete it to start over")
            if data.get("header") != header:
                diff = sorted(k for k in set(header) | set(data.get("header", {}))
                              if header.get(k) != data.get("header", {}).get(k))
                raise EdenDataError(f"characterization cache {path} belongs to a different run (differs in "
                                 f"{', '.join(diff)}); delete it or choose another output")
            self.values = {k: float(v) for k, v in data.get("values", {}).items()}

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def put(self, key: str, value: float) -> None:
        self.values[key] = value
        if time.monotonic() - self._flushed >= self.FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self._flushed = time.monotonic()
        if self.path is not None:
            write_json(self.path, {"header": self.header, "values": self.values}, overwrite=True,
                       what="characterization cache")


# A step of a search: it needs the point ``bers`` (data type -> BER) and names the points it may need
# next (``speculative``, most likely first); it is sent back (accuracy, passed) at ``bers``.
Request = tuple[dict[str, float], list[dict[str, float]]]
Steps = Generator[Request, tuple[Estimate, bool], Any]


COARSE_LABEL = "(all data types)"  # the coarse search's label (never a data type's name: those have no spaces)


def _mid(lo: float, hi: float) -> float:
    """The bisection midpoint in log10 BER (one formula: speculative points must equal the ones searched)."""
    return 10 ** ((math.log10(hi) + math.log10(lo)) / 2)


@dataclasses.dataclass
class Characterizer:
    """Evaluates a model under emulation plans, with seeds, caching and a pass criterion.

    Build it with :func:`make_characterizer` or use :func:`characterize`.

    Evaluations run on ``pool`` (an ``eden.workflows.executor.ExecutorPool``; default: this process, one
    after the other). What runs at once: the seeds of a BER point; the searches of the coarse mode and of
    every data type of the fine mode (each advances on its own results only); the points of leave-one-out.
    With more workers than that, idle workers evaluate points a search may need next (the decades below,
    both halves of the next bisection steps): speculative values go to the cache, never into the record
    unless the search reaches them. The record is the same for any pool: every search takes the path the
    serial search takes, and ``evaluations`` counts the distinct evaluations the record rests on.
    """

    model: nn.Module
    loader: Iterable
    error_model: ErrorModel
    format: NumericFormat
    correction: str
    seeds: tuple[int, ...]
    target_drop: float  # accuracy points in [0, 1] units (0.01 = 1 percentage point)
    metric: Metric | str = "top1"
    criterion: Criterion | str = Criterion.MEAN
    resolution_decades: float = 0.1
    ber_min: float = 1e-9
    progress: bool = False
    cache: _EvalCache | None = None
    device: Any = None
    reference: float | None = None  # accuracy the drop is counted from (default: the baseline)
    pool: Any = None  # an ExecutorPool (default: a local one)
    ecc: str = "none"  # ECC code of every corrupted data type; BERs are raw (before ECC) BERs
    bounds: dict[str, tuple[float, float]] | None = None  # calibrated correction bounds (None: per batch)

    def __post_init__(self):
        from eden.workflows.executor import LocalExecutor, Workload

        self.criterion = _criterion(self.criterion)
        self.names = [d.name for d in datatypes(self.model)]
        self.max_ber = min(0.5, self.error_model.scaled(1e18).expected_ber() * (1 - 1e-9))
        if self.cache is None:
            self.cache = _EvalCache(None, {})
        if self.pool is None:
            self._local = LocalExecutor().pool(Workload(self.model, self.loader, self.metric, self.device))
            self.pool = self._local.__enter__()
        self._used: set[str] = set()  # the evaluations the record rests on
        self.n_computed = 0  # evaluations this run computed (speculative ones included; cache hits not)
        self.baseline = self.evaluate_plan(self._plan({}), seeds=(0,)).mean
        self.threshold = (self.baseline if self.reference is None else self.reference) - self.target_drop

    @property
    def n_evals(self) -> int:
        """Distinct evaluations (plan, seed) the results rest on, whether computed now or read from the cache."""
        return len(self._used)

    # ---------------------------------------------------------------- plans
    def _plan(self, bers: dict[str, float]) -> EmulationPlan:
        """Every data type in the format; those in ``bers`` with errors at that BER."""
        entries = [("*", DataTypeConfig(None, self.format, self.correction))]
        for name, ber in bers.items():
            em = self.error_model.at_ber(ber) if ber > 0 else None
            bounds = self.bounds.get(name) if self.bounds and em is not None else None
            entries.append((name, DataTypeConfig(em, self.format, self.correction, self.ecc, bounds)))
        return EmulationPlan(tuple(entries))

    @staticmethod
    def _key(plan: EmulationPlan, seed: int) -> str:
        return json.dumps([plan.to_dict()["entries"], seed], sort_keys=True)

    def evaluate_plans(self, plans: Sequence[EmulationPlan], seeds: Sequence[int] | None = None,
                       speculative: Iterable[EmulationPlan] = (), label: str = "") -> list[Estimate]:
        """Accuracy estimates of ``plans`` over ``seeds``, evaluated at once on the pool.

        Idle workers (fewer missing evaluations than workers) take evaluations of ``speculative`` plans
        (in order): their values are cached for later, not returned.
        """
        from eden.workflows.executor import Task

        assert self.cache is not None  # made in __post_init__
        seeds = self.seeds if seeds is None else tuple(seeds)
        wanted = [[self._key(plan, s) for s in seeds] for plan in plans]
        tasks: dict[str, Task] = {}
        for plan, keys in zip(plans, wanted):
            for seed, k in zip(seeds, keys):
                if self.cache.get(k) is None and k not in tasks:
                    tasks[k] = Task(k, plan, seed)
        for plan in speculative if tasks else ():  # idle workers while a needed evaluation runs
            if len(tasks) >= self.pool.workers:
                break
            for seed in seeds[:self.pool.workers - len(tasks)]:
                k = self._key(plan, seed)
                if self.cache.get(k) is None and k not in tasks:
                    tasks[k] = Task(k, plan, seed)
        if tasks:
            if self._bar is not None:
                self._bar.total = (self._bar.total or 0) + len(tasks)
                self._bar.refresh()

            def done(task: Task, value: float) -> None:
                self.cache.put(task.key, value)  # type: ignore[union-attr]
                self.n_computed += 1
                if self._bar is not None:
                    self._bar.update(1)

            try:
                self.pool.run(list(tasks.values()), done)
            finally:  # an interrupted run keeps what it evaluated
                self.cache.flush()
        out = []
        for keys in wanted:
            self._used.update(keys)
            out.append(estimate([self.cache.values[k] for k in keys]))
        if self._bar is not None and label:
            self._bar.set_postfix_str(f"{label}: {out[-1]}", refresh=False)
        return out

    def clean_accuracy(self) -> float:
        """The model's metric as it is (its own dtype, no emulation), cached like every evaluation."""
        from eden.workflows.executor import Task

        assert self.cache is not None  # made in __post_init__
        key = json.dumps(["as is"])
        if self.cache.get(key) is None:
            self.pool.run([Task(key, None, 0)], lambda task, value: self.cache.put(key, value))
            self.cache.flush()
        return self.cache.values[key]

    def evaluate_plan(self, plan: EmulationPlan, seeds: Sequence[int] | None = None) -> Estimate:
        return self.evaluate_plans([plan], seeds)[0]

    def passes(self, acc: Estimate) -> bool:
        value = acc.mean if self.criterion is Criterion.MEAN else acc.ci_low
        return value >= self.threshold - 1e-12

    def point(self, bers: dict[str, float]) -> tuple[Estimate, bool]:
        acc = self.evaluate_plan(self._plan(bers))
        return acc, self.passes(acc)

    def drive(self, steps: dict[str, Steps]) -> dict[str, Any]:
        """Run several searches side by side: each round evaluates the point every unfinished one needs
        (and speculative points on idle workers), then advances each; returns their results by label."""
        results: dict[str, Any] = {}
        requests: dict[str, Request] = {}

        def advance(label: str, sent) -> None:
            try:
                requests[label] = steps[label].send(sent)
            except StopIteration as stop:
                requests.pop(label, None)
                results[label] = stop.value

        for label in steps:
            advance(label, None)
        while requests:
            labels = list(requests)
            spec = self._plans_if_valid(r for level in itertools.zip_longest(*(requests[lb][1] for lb in labels))
                                        for r in level if r is not None)
            ests = self.evaluate_plans([self._plan(requests[lb][0]) for lb in labels], speculative=spec,
                                       label=labels[-1])
            for label, acc in zip(labels, ests):
                advance(label, (acc, self.passes(acc)))
        return {label: results[label] for label in steps}

    def _plans_if_valid(self, points: Iterable[dict[str, float]]) -> Iterator[EmulationPlan]:
        """Plans of speculative points, made when a worker is idle for them; a point the error model cannot
        reach is passed over (the search itself would stop before it, or say so)."""
        for bers in points:
            try:
                yield self._plan(bers)
            except EdenConfigError:
                continue

    # ---------------------------------------------------------------- search
    def search(self, names: Sequence[str], label: str = "") -> SearchResult:
        """Largest BER (applied to all ``names`` at once) that passes."""
        return self.drive({label: self.search_steps(names)})[label]

    def search_steps(self, names: Sequence[str]) -> Steps:
        """:meth:`search` as steps for :meth:`drive` (the same points in the same order)."""
        points: dict[float, Point] = {}

        def at(ber: float, speculative: list[float]):
            if ber not in points:
                acc, ok = yield {n: ber for n in names}, [{n: b for n in names} for b in speculative]
                points[ber] = Point(ber, acc, ok)
            return points[ber]

        hi_fail = math.inf
        ber = self.max_ber
        lo_pass = None
        while ber >= self.ber_min * (1 - 1e-12):
            p = yield from at(ber, self._decades_below(ber))
            if p.passed:
                lo_pass = ber
                break
            hi_fail = ber
            ber = ber / 10
        if lo_pass is None:
            return SearchResult(0.0, None, tuple(points.values()), (0.0, hi_fail))
        while self._open(lo_pass, hi_fail):
            mid = _mid(lo_pass, hi_fail)
            if (yield from at(mid, self._bisections_after(lo_pass, hi_fail, mid))).passed:
                lo_pass = mid
            else:
                hi_fail = mid
        return SearchResult(lo_pass, points[lo_pass].accuracy, tuple(points.values()), (lo_pass, hi_fail))

    def _open(self, lo: float, hi: float) -> bool:
        return not math.isinf(hi) and math.log10(hi / lo) > self.resolution_decades + 1e-12

    def _decades_below(self, ber: float, depth: int = 8) -> list[float]:
        out = []
        for _ in range(depth):
            ber = ber / 10
            if ber < self.ber_min * (1 - 1e-12):
                break
            out.append(ber)
        return out

    def _bisections_after(self, lo: float, hi: float, mid: float, depth: int = 4) -> list[float]:
        """The midpoints the bisection may visit after ``mid``, level by level (both outcomes)."""
        out, level = [], [(lo, mid), (mid, hi)]
        for _ in range(depth):
            nxt = []
            for a, b in level:
                if self._open(a, b):
                    m = _mid(a, b)
                    out.append(m)
                    nxt += [(a, m), (m, b)]
            level = nxt
        return out

    _bar = None

    def run(self, mode: CharacterizationMode | str = CharacterizationMode.BOTH, select: Sequence[str] | None = None,
            ber: float | None = None) -> dict:
        """Characterization in ``mode``; returns the tolerance record body.

        ``ber`` is the BER of :attr:`CharacterizationMode.LEAVE_ONE_OUT` (and only of that mode).
        """
        mode = _mode(mode)
        if (ber is None) != (mode is not CharacterizationMode.LEAVE_ONE_OUT):
            raise EdenConfigError(f"ber is the BER of mode 'leave-one-out' (needed there, meaningless in other "
                                  f"modes); got mode {mode.value!r} with ber {ber!r}")
        if ber is not None:
            ber = check_number("ber", ber, lo=0.0, hi=self.max_ber, lo_open=True)
        names = self.names if select is None else EmulationPlan.uniform(None, select=select).resolve(self.names)
        names = list(names)
        if not names:
            what = "the model has no data types" if select is None else \
                f"select {list(selection(select))} leaves no data type of the model"
            raise EdenConfigError(f"{what} to characterize")
        out: dict[str, Any] = {}
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc="characterize", unit="eval", total=0, leave=False)
        try:
            searches: dict[str, Steps] = {}
            coarse = mode in (CharacterizationMode.COARSE, CharacterizationMode.BOTH)
            fine = mode in (CharacterizationMode.FINE, CharacterizationMode.BOTH)
            if coarse:
                searches[COARSE_LABEL] = self.search_steps(names)
            if fine:
                searches.update({n: self.search_steps([n]) for n in names})
            found = self.drive(searches)
            if coarse:
                out["coarse"] = found.pop(COARSE_LABEL).to_dict()
            if fine:
                out["fine"] = {n: r.to_dict() for n, r in found.items()}
                out["joint"] = self.joint({n: r.tolerable_ber for n, r in found.items()})
            if mode is CharacterizationMode.LEAVE_ONE_OUT:
                assert ber is not None  # checked above: leave-one-out needs a ber
                out["leave_one_out"] = self.leave_one_out(names, ber)
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        return out

    def leave_one_out(self, names: Sequence[str], ber: float) -> dict:
        """Accuracy at ``ber`` with every data type of ``names`` corrupted, each alone, and all but each.

        Returns ``{"ber", "every": point, "datatypes": {name: {"only": point, "only_cost_pp",
        "without": point, "without_saves_pp"}}}`` where a point is an accuracy estimate with
        ``passed``; ``only_cost_pp`` = clean in format - only, ``without_saves_pp`` = without -
        every, both in percentage points. With one data type, "without" corrupts nothing.
        """
        selections = [list(names)]
        for name in names:
            selections += [[name], [n for n in names if n != name]]
        ests = self.evaluate_plans([self._plan({n: ber for n in sel}) for sel in selections],
                                   label="leave-one-out")
        points = [{"passed": self.passes(acc), **acc.to_dict()} for acc in ests]
        every = points[0]
        rows = {}
        for i, name in enumerate(names):
            only, without = points[1 + 2 * i], points[2 + 2 * i]
            rows[name] = {"only": only, "only_cost_pp": (self.baseline - only["mean"]) * 100,
                          "without": without, "without_saves_pp": (without["mean"] - every["mean"]) * 100}
        return {"ber": ber, "every": every, "datatypes": rows}

    def joint(self, bers: dict[str, float], max_steps: int = 60) -> dict:
        """All data types at their BERs together; back off all BERs until the target holds."""
        return self.drive({"joint": self.joint_steps(bers, max_steps)})["joint"]

    def joint_steps(self, bers: dict[str, float], max_steps: int = 60) -> Steps:
        """:meth:`joint` as steps for :meth:`drive`; the next back-off factors are its speculative points."""
        factors = [1.0]
        for _ in range(max_steps):
            factors.append(factors[-1] / 10 ** self.resolution_decades)

        def scaled(factor: float) -> dict[str, float]:
            return {n: b * factor for n, b in bers.items() if b > 0}

        steps = []
        for i in range(max_steps):
            factor = factors[i]
            acc, ok = yield scaled(factor), [scaled(f) for f in factors[i + 1:i + 9]]
            steps.append({"factor": factor, "passed": ok, **acc.to_dict()})
            if ok:
                return {"passed": True, "backoff_factor": factor, "bers": scaled(factor), "accuracy": acc.to_dict(),
                        "steps": steps}
        return {"passed": False, "backoff_factor": factors[max_steps], "bers": {}, "accuracy": None, "steps": steps}


def characterize(model: nn.Module, loader: Iterable, error_model, *, format: str | NumericFormat = "fp32",
                 correction: str = "none", mode: CharacterizationMode | str = CharacterizationMode.BOTH,
                 target_drop_pp: float = 1.0,
                 seeds: Sequence[int] | int = 5, metric: Metric | str = "top1",
                 criterion: Criterion | str = Criterion.MEAN, resolution_decades: float = 0.1,
                 ber_min: float = 1e-9, select: Sequence[str] | None = None, model_id: str = "model",
                 data_id: str = "data", example_input=None, cache_path: str | Path | None = None,
                 progress: bool = False, device=None, reference_accuracy: float | None = None,
                 ber: float | None = None, executor=None, ecc: str = "none",
                 correction_bounds: CorrectionBounds | str = "batch", calibration_loader: Iterable | None = None,
                 calibration_batches: int = 4, calibration_id: str | None = None) -> dict:
    """Tolerable BER of ``model`` (coarse and/or per data type) at a target accuracy drop,
    or (``mode="leave-one-out"``) which data types cost the accuracy at one ``ber``.

    Args:
        model: the network (its parameters are restored exactly after every point).
        loader: evaluation DataLoader of (inputs, targets).
        error_model: the error model's *shape* (spec, file or ErrorModel); it is
            scaled to each BER with ``ErrorModel.at_ber``.
        format: numeric format of every data type (e.g. "fp32", "int8").
        correction: implausible-value correction for float formats.
        mode: "coarse", "fine", "both" or "leave-one-out" (a :class:`CharacterizationMode`; see the
            module docstring). The record holds "coarse"; "fine" and "joint"; or
            "leave_one_out" (see :meth:`Characterizer.leave_one_out`).
        target_drop_pp: allowed accuracy drop in percentage points, in (0, 100).
        seeds: device seeds per point (an int n means seeds 0..n-1).
        criterion: "mean" or "ci_low" (a :class:`Criterion`; see module docstring).
        resolution_decades: bisection stops when the bracket is this narrow (log10).
        ber_min: lowest BER tried; below it a data type counts as intolerant (0).
        select: data-type names/patterns to characterize (default: all).
        model_id, data_id: identifiers recorded in the output.
        example_input: a batch to measure IFM sizes (default: first batch of loader).
        cache_path: JSON file of evaluated points, to resume an interrupted run.
        progress: progress bar.
        reference_accuracy: the accuracy (in [0, 1]) the target drop counts
            from; default: the model's own accuracy in the format without bit
            errors. Give the original model's accuracy to characterize a
            retrained model against it (EDEN's baseline).
        ber: the BER of mode "leave-one-out", in (0, the error model's highest
            BER]; required there and refused in the other modes.
        executor: where the evaluations run: an ``eden.workflows.executor.Executor``
            (e.g. ``make_executor("ray", workers=4)``; the caller closes it) or a
            registered name ("local", "ray"); default: this process. The record
            is the same for every executor and number of workers.
        ecc: an ECC code (``eden.engine.ecc``) applied per codeword after raw injection; the
            BERs searched and recorded are then raw BERs (before ECC).
        correction_bounds: the plausible range of the correction (a :class:`CorrectionBounds`):
            "batch", each tensor's own finite min/max (an IFM's per batch); "calibrated", each data
            type's range profiled in advance by ``eden.nn.emulate.calibrate_bounds`` on the first
            ``calibration_batches`` batches of ``calibration_loader`` (default: ``loader``), stored in
            the record's ``correction_bounds`` (``calibration_id`` names that set there). Needs a
            correction.

    Returns:
        The tolerance record (see :func:`save_tolerance`; ``format`` "eden-tolerance").

    Raises:
        EdenConfigError (a ValueError): target drop outside (0, 100), no seeds,
            unknown mode or criterion, ``ber`` missing or out of range, bad
            formats or error models.
        EdenTypeError (a TypeError): a number of the wrong type.
        EdenDataError (a ValueError): an empty loader.

    Example:
        >>> rec = characterize(model, loader, "em0:p=1e-3", mode="leave-one-out", ber=1e-3, seeds=3)
        >>> rec["leave_one_out"]["datatypes"]["features.0.weight"]["only_cost_pp"]  # doctest: +SKIP
    """
    target_drop_pp = check_number("target_drop_pp (the accuracy drop in percentage points)", target_drop_pp,
                                  lo=0.0, hi=100.0, lo_open=True, hi_open=True)
    mode, criterion = _mode(mode), _criterion(criterion)
    resolution_decades = check_number("resolution_decades", resolution_decades, lo=0.0, lo_open=True)
    ber_min = check_number("ber_min", ber_min, lo=0.0, hi=0.5, lo_open=True, hi_open=True)
    reference_accuracy = check_number("reference_accuracy (an accuracy)", reference_accuracy, lo=0.0, hi=1.0,
                                      lo_open=True, optional=True)
    if (ber is None) != (mode is not CharacterizationMode.LEAVE_ONE_OUT):
        raise EdenConfigError(f"ber is the BER of mode 'leave-one-out' (needed there, meaningless in other "
                              f"modes); got mode {mode.value!r} with ber {ber!r}")
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    if not seeds:
        raise EdenConfigError("characterize needs at least one seed")
    em = ErrorModel.coerce(error_model)
    fmt = NumericFormat.parse(format)
    DataTypeConfig(None, fmt, correction, ecc)  # validates the combination
    correction_bounds = CorrectionBounds.coerce(correction_bounds, "correction bounds")
    if correction_bounds is CorrectionBounds.CALIBRATED and correction == "none":
        raise EdenConfigError("calibrated correction bounds need a correction (zero or clamp): without one "
                              "nothing is compared with them")
    from eden.nn.zoo import fingerprint

    if example_input is None:
        first = next(iter(loader), None)
        if first is None:
            raise EdenDataError("the dataset yielded no batches; nothing to characterize")
        example_input = first[0]
    device = device if device is not None else next(model.parameters()).device
    dts = datatypes(model, example_input.to(device))
    batch = int(example_input.shape[0]) if example_input.dim() else 1
    header = {"model_fingerprint": fingerprint(model), "error_model": em.to_spec(), "format": str(fmt),
              "correction": correction,
              "metric": metric if isinstance(metric, str) else getattr(metric, "__name__", "custom"),
              "data": data_id}
    if ecc != "none":  # records and caches without ECC keep their keys
        header["ecc"] = ecc
    bounds_rec = None
    if correction_bounds is CorrectionBounds.CALIBRATED:  # so do those with per-batch bounds
        from eden.nn.emulate import calibrate_bounds

        cal = loader if calibration_loader is None else calibration_loader
        bounds = calibrate_bounds(model, cal, batches=calibration_batches, device=device)
        bounds_rec = {"source": "calibrated", "batches": calibration_batches,
                      "calibration_data": calibration_id or data_id,
                      "bounds": {n: list(b) for n, b in bounds.items()}}
        header["correction_bounds"] = bounds_rec
    cache = _EvalCache(Path(cache_path) if cache_path else None, header)
    from eden.workflows.executor import Workload, make_executor

    ex = make_executor(executor)
    try:
        with ex.pool(Workload(model, loader, metric, device)) as pool:
            ch = Characterizer(model, loader, em, fmt, correction, seeds, target_drop_pp / 100, metric, criterion,
                               resolution_decades, ber_min, progress, cache, device, reference_accuracy, pool, ecc,
                               record_bounds(bounds_rec and {"correction_bounds": bounds_rec}))
            body = ch.run(mode, select, ber)
            fp32_clean = ch.clean_accuracy()
    finally:
        if ex is not executor:
            ex.close()
    lm_fields = _lm_fields(model, dts, example_input)
    record = {
        "format": TOLERANCE_FORMAT, "format_version": TOLERANCE_VERSION, "eden_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"id": model_id, "fingerprint": header["model_fingerprint"],
                  "datatypes": [d.name for d in dts]},
        "data": {"id": data_id, "batch_size": batch, **lm_fields.pop("data", {})},
        "metric": header["metric"], "criterion": criterion.value, "target_drop_pp": target_drop_pp,
        "error_model": em.to_spec(), "format_spec": str(fmt), "correction": correction, "seeds": list(seeds),
        "resolution_decades": resolution_decades, "ber_range": [ber_min, ch.max_ber],
        "select": ["*"] if select is None else list(selection(select)),
        "baseline": {"clean_fp32": fp32_clean, "clean_in_format": ch.baseline, "threshold": ch.threshold,
                     "reference": ch.baseline if ch.reference is None else ch.reference,
                     "reference_source": "clean_in_format" if ch.reference is None else "given"},
        "datatypes": [_dt_record(d, fmt, batch) for d in dts],
        "evaluations": ch.n_evals,
        **lm_fields,
        **body,
    }
    if ecc != "none":
        record["ecc"] = ecc
    if bounds_rec is not None:
        record["correction_bounds"] = bounds_rec
    return record


def record_bounds(record: dict | None) -> dict[str, tuple[float, float]] | None:
    """The calibrated correction bounds of a tolerance record (data-type name -> (low, high)), or None
    when it was characterized with per-batch bounds.

    Raises:
        EdenConfigError: a malformed ``correction_bounds`` entry (naming the data type).
    """
    from eden.nn.emulate import check_bounds

    cb = (record or {}).get("correction_bounds")
    if cb is None:
        return None
    if not isinstance(cb, dict) or cb.get("source") != "calibrated" or not isinstance(cb.get("bounds"), dict):
        raise EdenConfigError(f"tolerance record: correction_bounds must be {{'source': 'calibrated', 'bounds': "
                              f"{{name: [low, high]}}}}, got {cb!r}")
    return {n: check_bounds(b, f"correction bounds of data type {n!r}") for n, b in cb["bounds"].items()}


def _lm_fields(model: nn.Module, dts, example_input) -> dict:
    """What a language model's record adds: tokens per sample (token-id inputs ``[B, T]``) and the
    KV-cache semantics (when the model has KV-cache data types)."""
    out: dict[str, Any] = {}
    if getattr(example_input, "dim", lambda: 0)() == 2 and not example_input.is_floating_point():
        out["data"] = {"tokens_per_sample": int(example_input.shape[1])}
    if any(d.kind == "kv_cache" for d in dts):
        from eden.nn.kvcache import semantics_of

        out["kv_semantics"] = semantics_of(model).value
    return out


def _dt_record(d, fmt: NumericFormat, batch: int) -> dict:
    per_sample = d.kind in ("ifm", "kv_cache")
    numel = d.numel // batch if per_sample and batch else d.numel
    rec = {"name": d.name, "kind": d.kind, "shape": list(d.shape), "numel": numel,
           "size_bytes": fmt.storage_bytes(numel), "per_sample": per_sample, "format": str(fmt)}
    if d.kind == "kv_cache" and len(d.shape) == 4:  # [batch, kv_heads, tokens, head_dim]
        rec["bytes_per_token"] = fmt.storage_bytes(d.shape[1] * d.shape[3])
    return rec


# ----------------------------------------------------------------- tolerance file
def save_tolerance(record: dict, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a tolerance record as JSON atomically (refuses to overwrite by default)."""
    write_json(path, record, overwrite=overwrite, what="tolerance file")


def load_tolerance(path: str | Path) -> dict:
    """Read and check a tolerance file (format, version, required fields)."""
    return read_json_record(path, TOLERANCE_FORMAT, TOLERANCE_VERSION, "tolerance file",
                            ("model", "datatypes", "error_model", "format_spec"))


def _reference_note(baseline: dict) -> str:
    if baseline.get("reference_source") != "given":
        return ""
    return f" from the reference accuracy {baseline['reference'] * 100:.2f}%"


def tolerance_table(record: dict) -> str:
    """Readable table of a tolerance record."""
    lines = []
    b = record["baseline"]
    ppl = record.get("metric") == "neg_nll"
    _acc = _ppl if ppl else _acc_pct
    lines.append(f"model {record['model']['id']}  error model {record['error_model']}  format "
                 f"{record['format_spec']}  correction {record['correction']}"
                 + (" (bounds calibrated in advance)" if record.get("correction_bounds") else ""))
    if ppl:
        lines.append(f"clean perplexity {math.exp(-b['clean_fp32']):.4g} (fp32), {math.exp(-b['clean_in_format']):.4g} "
                     f"in format; target: perplexity <= {math.exp(-b['threshold']):.4g} (+"
                     f"{(math.exp(record['target_drop_pp'] / 100) - 1) * 100:.3g}%), mean of ln(perplexity) over "
                     f"{len(record['seeds'])} seeds per point")
    else:
        lines.append(f"clean accuracy {b['clean_fp32'] * 100:.2f}% (fp32), {b['clean_in_format'] * 100:.2f}% in "
                     f"format; target: mean >= {b['threshold'] * 100:.2f}% ({record['target_drop_pp']:g} pp drop"
                     f"{_reference_note(b)}), "
                     f"{len(record['seeds'])} seeds per point")
    if "coarse" in record:
        c = record["coarse"]
        lines.append(f"coarse (all data types): tolerable BER {_fmt_ber(c['tolerable_ber'])}"
                     + (f"  {'at' if ppl else 'accuracy'} {_acc(c['accuracy'])}" if c["accuracy"] else ""))
    if "fine" in record:
        sizes = {d["name"]: d for d in record["datatypes"]}
        lines.append("")
        lines.append(f"{'data type':32s} {'kind':6s} {'bytes':>9s} {'tolerable BER':>14s} {'accuracy':>18s}")
        for name, r in record["fine"].items():
            d = sizes.get(name, {})
            size = f"{d.get('size_bytes', 0)}{'/s' if d.get('per_sample') else ''}"
            lines.append(f"{name:32s} {d.get('kind', '?'):6s} {size:>9s} {_fmt_ber(r['tolerable_ber']):>14s} "
                         f"{_acc(r['accuracy']) if r['accuracy'] else '-':>18s}")
        j = record["joint"]
        if j["passed"]:
            lines.append(f"joint check: passes with every BER x {j['backoff_factor']:.3g} "
                         f"(accuracy {_acc(j['accuracy'])})")
        else:
            lines.append("joint check: never passed; no joint per-data-type BERs")
    if "leave_one_out" in record:
        lines += [""] + _leave_one_out_lines(record["leave_one_out"], _acc)
    return "\n".join(lines)


def _leave_one_out_lines(loo: dict, _acc=None) -> list[str]:
    _acc = _acc or _acc_pct
    lines = [f"leave-one-out at BER {loo['ber']:.3g}: every data type corrupted {_acc(loo['every'])}"
             f"{'' if loo['every']['passed'] else ' (misses the target)'}",
             f"{'data type':32s} {'only':>16s} {'cost pp':>8s} {'without':>16s} {'saves pp':>9s}"]
    for name, r in loo["datatypes"].items():
        lines.append(f"{name:32s} {_acc(r['only']):>16s} {r['only_cost_pp']:8.2f} {_acc(r['without']):>16s} "
                     f"{r['without_saves_pp']:9.2f}")
    return lines


def _fmt_ber(b: float) -> str:
    return "< min" if b == 0 else f"{b:.3g}"


def _acc_pct(a: dict) -> str:
    lo, hi = a["ci95"]
    return f"{a['mean'] * 100:.2f}% ±{(hi - lo) / 2 * 100:.2f}"


def _ppl(a: dict) -> str:
    """A ``neg_nll`` estimate as perplexity, with the CI of ln(perplexity) mapped through exp."""
    lo, hi = a["ci95"]
    return f"ppl {math.exp(-a['mean']):.4g} [{math.exp(-hi):.4g}, {math.exp(-lo):.4g}]"


_acc = _acc_pct


def plot_tolerance(record: dict, path: str | Path, *, overwrite: bool = False) -> None:
    """Accuracy-vs-BER curves (coarse and per data type) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eden.core.io import write_with

    fig, ax = plt.subplots(figsize=(8, 5))
    curves: list[tuple[str, dict]] = []
    if "coarse" in record:
        curves.append(("all data types", record["coarse"]))
    for name, r in record.get("fine", {}).items():
        curves.append((name, r))
    for label, r in curves:
        pts = [p for p in r["points"]]
        if not pts:
            continue
        x = [p["ber"] for p in pts]
        y = [p["mean"] * 100 for p in pts]
        lo = [p["ci95"][0] * 100 for p in pts]
        hi = [p["ci95"][1] * 100 for p in pts]
        style = dict(lw=2.5, color="k") if label == "all data types" else dict(lw=1, alpha=0.8)
        line, = ax.plot(x, y, marker="o", ms=3, label=label, **style)
        ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())
    thr = record["baseline"]["threshold"] * 100
    ax.axhline(thr, ls="--", color="r", lw=1, label=f"target ({record['target_drop_pp']:g} pp drop)")
    ax.set_xscale("log")
    ax.set_xlabel("bit error rate")
    ax.set_ylabel(f"{record['metric']} (%)")
    ax.set_title(f"{record['model']['id']}: {record['error_model']}, {record['format_spec']}, "
                 f"correction {record['correction']}", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), overwrite=overwrite, what="plot")
    plt.close(fig)


def tolerable_bers(record: dict, which: str = "joint") -> dict[str, float]:
    """Per-data-type tolerable BERs from a record: the joint ones, the fine ones, or coarse for all."""
    if which == "joint" and record.get("joint", {}).get("passed"):
        bers = dict(record["joint"]["bers"])
        return {d["name"]: bers.get(d["name"], 0.0) for d in record["datatypes"]}
    if which in ("joint", "fine") and "fine" in record:
        return {n: r["tolerable_ber"] for n, r in record["fine"].items()}
    if "coarse" in record:
        return {d["name"]: record["coarse"]["tolerable_ber"] for d in record["datatypes"]}
    raise EdenDataError("tolerance record has neither fine nor coarse results (a leave-one-out record gives no "
                        "tolerable BERs: characterize with mode 'coarse', 'fine' or 'both')")


__all__ = ["characterize", "save_tolerance", "load_tolerance", "tolerance_table", "plot_tolerance",
           "tolerable_bers", "Characterizer", "SearchResult", "Point", "CharacterizationMode", "Criterion"]

