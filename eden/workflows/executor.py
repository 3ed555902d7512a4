"""Executors: where the evaluations of a sweep run (this process, or the workers of a Ray cluster).

A characterization, a mapping's validation and the sweep scripts are many independent
*evaluations*: the model's metric over its data under one emulation plan with one device seed.
An evaluation is a pure function of ``(plan, seed)``: the plan says which data types carry errors
at which BER (their error model scaled to it), in which format, with which correction; the seed is
the device seed, and every data type's own seed is ``blake2b(seed, name)`` (``eden.nn.emulate``).
Nothing else enters it (not the order, the worker, the process or the number of workers), so a
sweep gives the same numbers wherever its evaluations ran.

An executor is an extension point (:data:`EXECUTORS`, one registered class each):

* ``local``: one evaluation after the other in this process (the default, and the reference).
* ``ray``: a pool of Ray actors, ``workers`` of them, each holding the model, the weights and the
  data once (shipped through the object store when the pool starts; a restarted worker reads them
  again from there). Evaluations are dispatched as workers free up; a worker that dies is
  restarted and its evaluation retried (same inputs, same result). Needs ``pip install
  "eden-dram[ray]"``; imported only when used.

Use::

    with make_executor("ray", workers=4) as ex, ex.pool(Workload(model, loader)) as pool:
        pool.run([Task(key, plan, seed), ...], done=lambda task, value: ...)

``done`` is called in this process, once per task, in completion order (any order: callers key
results by ``Task.key``). :class:`LocalExecutor` runs in submission order.

How to add one: subclass :class:`Executor` (``pool`` returns an :class:`ExecutorPool` whose
``run`` evaluates tasks, calling ``done`` for each) in a module of its own, and register it with
``EXECUTORS.add("<name>", <class>)``; ``--executor`` offers it.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import dataclasses
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from eden.core.registry import Registry
from eden.core.validate import check_int, check_number
from eden.errors import EdenConfigError, EdenError

#: How many evaluations a Ray worker holds at once (one running, one queued: no idle gap between them).
RAY_TASKS_PER_WORKER = 2
#: How often a dead Ray worker is restarted, and a task it held retried, before the sweep gives up.
RAY_MAX_RESTARTS = 4
#: Seconds to wait for a TCP connection to a cluster address before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Task:
    """One evaluation: the metric under ``plan`` (an ``EmulationPlan``; None: no emulation) with device ``seed``.

    ``key`` identifies it for the caller (the characterization cache's key).
    """

    key: str
    plan: Any
    seed: int


@dataclasses.dataclass
class Workload:
    """What every evaluation of a pool shares: the model (with its weights), the data, the metric.

    Attributes:
        model: the ``torch.nn.Module``; its parameters are restored exactly after every evaluation.
        loader: an iterable of ``(inputs, targets)`` batches (iterated once per evaluation).
        metric: a name of ``eden.nn.evaluate.METRICS`` or a callable (picklable for Ray).
        device: where the local executor evaluates (default: the model's device). Ray workers use
            ``cuda`` when they were given GPUs, else the CPU.
    """

    model: Any
    loader: Iterable
    metric: Any = "top1"
    device: Any = None


def evaluate_task(model, loader, metric, device, task: Task) -> float:
    """The metric of ``model`` under ``task.plan`` with ``task.seed`` (the one evaluation every executor runs)."""
    from eden.nn.emulate import emulate
    from eden.nn.evaluate import evaluate

    if task.plan is None:
        return evaluate(model, loader, metric, device=device)
    with emulate(model, task.plan, seed=task.seed):
        return evaluate(model, loader, metric, device=device)


class ExecutorPool(abc.ABC):
    """Evaluates tasks of one :class:`Workload` (made by :meth:`Executor.pool`)."""

    #: Evaluations it runs at once (callers size speculative work to it).
    workers: int = 1

    @abc.abstractmethod
    def run(self, tasks: Sequence[Task], done: Callable[[Task, float], None]) -> None:
        """Evaluate every task; ``done(task, value)`` once per task as it finishes (in this process)."""


class Executor(abc.ABC):
    """Where evaluations run; a context manager (``close`` releases what it started).

    Args:
        workers: evaluations at once (None: the executor's default).
        address: a cluster to join (executors without one refuse it).
        gpus_per_worker: GPUs per worker (None: the executor's default).
    """

    name: ClassVar[str] = ""

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None):
        self.workers = check_int("workers", workers, lo=1, optional=True)
        self.address = address
        self.gpus_per_worker = check_number("gpus_per_worker", gpus_per_worker, lo=0.0, optional=True)

    @abc.abstractmethod
    def pool(self, workload: Workload) -> contextlib.AbstractContextManager[ExecutorPool]:
        """A pool evaluating tasks of ``workload`` (a context manager: workers end with it)."""

    def describe(self) -> str:
        return self.name

    def close(self) -> None:  # noqa: B027 (an optional hook: most executors start nothing)
        """Release what this executor started (a local Ray cluster); idempotent."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def make_executor(executor: Executor | str | None = None, *, workers: int | None = None,
                  address: str | None = None, gpus_per_worker: float | None = None) -> Executor:
    """An executor by registered name (``"local"``, ``"ray"``), or ``executor`` itself when it is one.

    Raises:
        EdenConfigError: an unknown name (lists the registered ones), options the executor refuses.
    """
    if isinstance(executor, Executor):
        if workers is not None or address is not None or gpus_per_worker is not None:
            raise EdenConfigError("workers, address and gpus_per_worker belong to the executor's name; an "
                                  "executor object already has them")
        return executor
    cls = EXECUTORS.lookup("local" if executor is None else executor)
    return cls(workers=workers, address=address, gpus_per_worker=gpus_per_worker)


# ------------------------------------------------------------------ local
class _LocalPool(ExecutorPool):
    def __init__(self, workload: Workload):
        self.w = workload

    def run(self, tasks, done):
        for task in tasks:
            # ``evaluate_task`` is looked up on every call (tests count evaluations by replacing it)
            done(task, evaluate_task(self.w.model, self.w.loader, self.w.metric, self.w.device, task))


class LocalExecutor(Executor):
    """One evaluation after the other, in this process (the reference every other executor equals)."""

    name = "local"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None):
        super().__init__(workers, address, gpus_per_worker)
        if (workers or 1) != 1 or address is not None or gpus_per_worker is not None:
            raise EdenConfigError(f"the local executor runs one evaluation at a time in this process; workers "
                                  f"{workers!r}, address {address!r} and gpus per worker {gpus_per_worker!r} "
                                  "belong to executor 'ray'")
        self.workers = 1

    @contextlib.contextmanager
    def pool(self, workload: Workload) -> Iterator[ExecutorPool]:
        yield _LocalPool(workload)


EXECUTORS.add("local", LocalExecutor)


# ------------------------------------------------------------------ ray
def import_ray():
    """The ``ray`` module, or an EdenConfigError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise EdenConfigError('executor "ray" needs Ray: pip install "eden-dram[ray]"') from None
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise EdenConfigError naming ``address`` when nothing accepts a TCP connection there.

    ``address`` is ``HOST:PORT`` (a head node's GCS) or ``ray://HOST:PORT`` (Ray Client); ``auto``
    and ``local`` are left to Ray (no host to try). Ray itself retries an unreachable address for
    minutes before it fails; this answers within ``timeout_s``.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise EdenConfigError(f"Ray cluster address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto "
                              "(the address `ray start --head` prints)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise EdenConfigError(f"cannot reach the Ray cluster at {address} ({exc}); is `ray start --head` running "
                              "there, and is the port open?") from None


class _RayWorker:
    """The state of one Ray worker: the workload, loaded once (a Ray actor class is made from it)."""

    def __init__(self, boxed_payload: list, device: str):
        import ray
        import torch

        # The payload's reference comes in a list, so Ray does not resolve it as a constructor argument (an
        # argument in the object store makes restarts fragile: ray-project/ray#53727); the pool holds the
        # reference for as long as the workers live, and a restarted worker reads it again here.
        model, loader, metric = ray.get(boxed_payload[0])
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.loader, self.metric = loader, metric

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, task: Task) -> float:
        return evaluate_task(self.model, self.loader, self.metric, self.device, task)


class _RayPool(ExecutorPool):
    def __init__(self, ray, actors: list, on_result: Callable[[int], None] | None):
        self.ray, self.actors, self.workers = ray, actors, len(actors)
        self._on_result = on_result
        self.results = 0

    def worker_pids(self) -> list[int]:
        """The process ids of the workers (tests kill one mid-sweep)."""
        return self.ray.get([a.pid.remote() for a in self.actors])

    def run(self, tasks, done):
        from ray.exceptions import RayActorError, RayTaskError

        queue = list(reversed(tasks))
        inflight: dict[Any, tuple[Task, int]] = {}
        load = [0] * len(self.actors)
        try:
            while queue or inflight:
                for i, actor in enumerate(self.actors):
                    while queue and load[i] < RAY_TASKS_PER_WORKER:
                        task = queue.pop()
                        inflight[actor.evaluate.remote(task)] = (task, i)
                        load[i] += 1
                ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=1.0)
                for ref in ready:
                    task, i = inflight.pop(ref)
                    load[i] -= 1
                    try:
                        value = self.ray.get(ref)
                    except RayTaskError as exc:  # the evaluation raised: the cause is the error to report
                        cause = getattr(exc, "cause", None)
                        if isinstance(cause, BaseException):
                            raise cause from None
                        raise
                    except RayActorError as exc:
                        raise EdenError(f"a Ray worker died {RAY_MAX_RESTARTS + 1} times on evaluation "
                                        f"(seed {task.seed}); giving up: {exc}") from None
                    done(task, float(value))
                    self.results += 1
                    if self._on_result is not None:
                        self._on_result(self.results)
        finally:
            for ref in inflight:
                self.ray.cancel(ref, force=False)


class RayExecutor(Executor):
    """Evaluations on the workers of a Ray cluster (see the module docstring).

    Args:
        workers: Ray actors (default: the cluster's GPUs / ``gpus_per_worker`` when it has GPUs,
            else its CPUs).
        address: a running cluster (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``); None: join the
            cluster this process already joined (``ray.init``), else start one on this machine.
        gpus_per_worker: GPUs per actor (default: 1 when the cluster has GPUs, else 0).
    """

    name = "ray"
    #: Called with the number of results so far after each one (tests kill a worker mid-sweep with it).
    on_result: Callable[[_RayPool, int], None] | None = None

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None):
        super().__init__(workers, address, gpus_per_worker)
        self._ray = None
        self._started = False

    def describe(self) -> str:
        return f"ray ({self.address or 'local cluster'}, {self.workers or 'all'} workers)"

    def _connect(self):
        if self._ray is not None:
            return self._ray
        ray = import_ray()
        if self.address is not None:
            check_reachable(self.address)
        if not ray.is_initialized():
            if self.address is not None:
                try:
                    ray.init(address=self.address, include_dashboard=False, configure_logging=False,
                             log_to_driver=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise EdenConfigError(f"cannot join the Ray cluster at {self.address}: {exc}") from None
            else:
                kwargs: dict[str, Any] = {}
                if self.workers is not None:
                    kwargs["num_cpus"] = self.workers
                shm = "/dev/shm"
                if not os.path.isdir(shm) or shutil.disk_usage(shm).free < 2 ** 30:
                    kwargs["_plasma_directory"] = tempfile.gettempdir()  # a small /dev/shm: the store in /tmp
                ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False, **kwargs)
                self._started = True
        self._ray = ray
        return ray

    @contextlib.contextmanager
    def pool(self, workload: Workload) -> Iterator[ExecutorPool]:
        ray = self._connect()
        res = ray.cluster_resources()
        gpus = self.gpus_per_worker if self.gpus_per_worker is not None else (1.0 if res.get("GPU", 0) else 0.0)
        if self.workers is not None:
            n = self.workers
        elif gpus > 0:
            n = max(1, int(res.get("GPU", 0) / gpus))
        else:
            n = max(1, int(res.get("CPU", 1)))
        have_cpu, have_gpu = res.get("CPU", 0), res.get("GPU", 0)
        if n > have_cpu + 1e-9 or n * gpus > have_gpu + 1e-9:
            # Ray would leave the workers that do not fit pending, and the evaluations sent to them waiting.
            raise EdenConfigError(f"{n} Ray workers need {n} CPUs" + (f" and {n * gpus:g} GPUs" if gpus else "")
                                  + f"; the cluster has {have_cpu:g} CPUs and {have_gpu:g} GPUs (choose fewer "
                                  "--workers, or fewer --gpus-per-worker)")
        model = copy.deepcopy(workload.model).cpu()  # shipped once, on the CPU; each worker moves it
        payload = _put(ray, model, workload.loader, workload.metric)
        actor_cls = ray.remote(_RayWorker).options(num_cpus=1, num_gpus=gpus, max_restarts=RAY_MAX_RESTARTS,
                                                   max_task_retries=RAY_MAX_RESTARTS)
        device = "cuda" if gpus > 0 else "cpu"
        actors = [actor_cls.remote([payload], device) for _ in range(n)]
        hook = self.on_result
        pool = _RayPool(ray, actors, None)
        if hook is not None:
            pool._on_result = lambda k: hook(pool, k)
        try:
            yield pool
        finally:
            for a in actors:
                ray.kill(a)
            del payload

    def close(self) -> None:
        if self._ray is not None and self._started:
            self._ray.shutdown()
        self._ray, self._started = None, False


def _put(ray, model, loader, metric):
    """The workload in the object store, once: the loader itself, or its batches as a list when it does not
    pickle (a generator, a DataLoader with a local lambda)."""
    try:
        return ray.put((model, loader, metric))
    except (TypeError, AttributeError, ValueError):
        return ray.put((model, list(loader), metric))


EXECUTORS.add("ray", RayExecutor)


__all__ = ["Task", "Workload", "Executor", "ExecutorPool", "LocalExecutor", "RayExecutor", "EXECUTORS",
           "make_executor", "evaluate_task", "check_reachable", "import_ray"]
