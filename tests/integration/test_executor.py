"""Executors without Ray: the registry, the local executor's options, speculation on a pool of several workers."""

from __future__ import annotations

import contextlib
import json

import pytest

from eden.errors import EdenConfigError
from eden.nn import zoo
from eden.workflows import executor as ex_mod
from eden.workflows.characterize import characterize
from eden.workflows.executor import EXECUTORS, LocalExecutor, make_executor


def test_registry_and_local_options():
    assert EXECUTORS.names()[:2] == ("local", "ray")
    assert isinstance(make_executor(), LocalExecutor) and isinstance(make_executor("local", workers=1), LocalExecutor)
    with pytest.raises(EdenConfigError, match="unknown executor 'rey'.*did you mean 'ray'"):
        make_executor("rey")
    with pytest.raises(EdenConfigError, match="belong to executor 'ray'"):
        make_executor("local", workers=2)
    with pytest.raises(EdenConfigError, match="belong to executor 'ray'"):
        make_executor("local", address="10.0.0.1:6379")
    with pytest.raises(EdenConfigError, match="expected HOST:PORT"):
        ex_mod.check_reachable("10.0.0.1")


class _WidePool(ex_mod.ExecutorPool):
    """Runs locally in submission order but claims ``workers`` workers, so the characterizer speculates;
    evaluations are counted, and the tasks of each batch recorded."""

    def __init__(self, workload, workers):
        self.local, self.workers, self.batches = ex_mod._LocalPool(workload), workers, []

    def run(self, tasks, done):
        self.batches.append(len(tasks))
        self.local.run(list(reversed(tasks)), done)  # another completion order than the local pool's


class _Wide(ex_mod.Executor):
    name = "wide"

    def __init__(self, workers):
        super().__init__(workers)
        self.pools = []

    @contextlib.contextmanager
    def pool(self, workload):
        self.pools.append(_WidePool(workload, self.workers))
        yield self.pools[-1]


@pytest.fixture(scope="module")
def small():
    x, y = zoo.digits_split("test")
    return zoo.load_model("digits-lenet"), [(x[:128], y[:128])]


@pytest.mark.parametrize("mode", ["coarse", "fine"])
def test_speculation_fills_idle_workers_and_changes_nothing(small, mode):
    model, loader = small
    sweep = dict(mode=mode, seeds=1, resolution_decades=0.2, ber_min=1e-6, select=["classifier.3.*"],
                 correction="zero")
    calls = []
    real = ex_mod.evaluate_task

    def counted(*a):
        calls.append(1)
        return real(*a)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ex_mod, "evaluate_task", counted)
        serial = characterize(model, loader, "em0:p=1e-3", **sweep)
        n_serial = len(calls)
        wide = _Wide(workers=6)
        parallel = characterize(model, loader, "em0:p=1e-3", executor=wide, **sweep)
    n_wide = len(calls) - n_serial
    assert json.dumps({**parallel, "created_utc": ""}) == json.dumps({**serial, "created_utc": ""})
    assert n_serial == serial["evaluations"] + 1  # + the clean fp32 accuracy
    batches = wide.pools[0].batches
    assert n_wide > n_serial and max(batches) == 6  # idle workers took speculative points
    assert len(batches) < n_serial  # in fewer rounds


def test_the_local_executor_never_speculates(small, monkeypatch):
    model, loader = small
    calls = []
    real = ex_mod.evaluate_task
    monkeypatch.setattr(ex_mod, "evaluate_task", lambda *a: calls.append(1) or real(*a))
    rec = characterize(model, loader, "em0:p=1e-3", mode="coarse", seeds=1, resolution_decades=0.2, ber_min=1e-6,
                       select=["classifier.3.*"])
    assert rec["evaluations"] == 1 + len(rec["coarse"]["points"]) and len(calls) == rec["evaluations"] + 1
