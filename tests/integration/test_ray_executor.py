"""Sweeps on a Ray cluster: the same tolerance file as a local run, across worker deaths and executors.

One local cluster for the module (``ray.init(num_cpus=2)``, no dashboard, the object store in /tmp
when /dev/shm is small). The workload is small (digits-lenet on 256 test images, two seeds, a
coarse bisection to 0.5 decade and the fine search of the three data types of ``classifier.3``):
a few dozen evaluations per run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile

import pytest
import torch
from click.testing import CliRunner

ray = pytest.importorskip("ray")

from eden.cli import main  # noqa: E402
from eden.errors import EdenConfigError  # noqa: E402
from eden.nn import zoo  # noqa: E402
from eden.workflows.characterize import characterize  # noqa: E402
from eden.workflows.executor import RayExecutor, make_executor  # noqa: E402

SWEEP = dict(mode="both", seeds=2, resolution_decades=0.5, ber_min=1e-6, select=["classifier.3.*"],
             model_id="digits-lenet", data_id="digits[:256]", correction="zero")


@pytest.fixture(autouse=True)
def deadline():
    """A test that hangs (a worker that never comes back) fails after 5 minutes instead of stalling CI."""
    def expire(signum, frame):
        raise TimeoutError("a Ray test ran for more than 5 minutes")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(300)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def cluster():
    kwargs = {}
    if not os.path.isdir("/dev/shm") or shutil.disk_usage("/dev/shm").free < 2 ** 30:
        kwargs["_plasma_directory"] = tempfile.gettempdir()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False,
             object_store_memory=200 * 2 ** 20, **kwargs)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def lenet():
    return zoo.load_model("digits-lenet")


@pytest.fixture(scope="module")
def loader():
    x, y = zoo.digits_split("test")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:256], y[:256]), batch_size=128)


@pytest.fixture(scope="module")
def local_record(lenet, loader):
    return characterize(lenet, loader, "em0:p=1e-3", **SWEEP)


def _bytes(record: dict) -> bytes:
    """The tolerance file's bytes (as save_tolerance writes them) with the time stamp blanked."""
    return json.dumps({**record, "created_utc": ""}, indent=2).encode()


class _Killer:
    """Kills one worker process (SIGKILL) after the ``at``-th result; later checks that it came back."""

    def __init__(self, at: int):
        self.at, self.killed, self.pids_after = at, None, None

    def __call__(self, pool, n: int) -> None:
        if n == self.at:
            self.killed = pool.worker_pids()[0]
            os.kill(self.killed, signal.SIGKILL)
        elif n == self.at + 6 and self.pids_after is None:
            self.pids_after = pool.worker_pids()


def test_ray_with_two_workers_writes_the_local_file_byte_for_byte(cluster, lenet, loader, local_record):
    with make_executor("ray", workers=2) as ex:
        rec = characterize(lenet, loader, "em0:p=1e-3", executor=ex, **SWEEP)
    assert rec["coarse"]["tolerable_ber"] > 0 and rec["joint"]["passed"]
    assert _bytes(rec) == _bytes(local_record)


def test_a_worker_killed_mid_sweep_is_restarted_and_the_result_does_not_change(cluster, lenet, loader,
                                                                               local_record):
    ex = RayExecutor(workers=2)
    ex.on_result = killer = _Killer(at=4)
    with ex:
        rec = characterize(lenet, loader, "em0:p=1e-3", executor=ex, **SWEEP)
    assert killer.killed is not None, "the sweep ended before a worker was killed"
    assert killer.pids_after is not None and killer.killed not in killer.pids_after
    assert _bytes(rec) == _bytes(local_record)


class _Interrupt(KeyboardInterrupt):
    pass


def test_interrupted_on_ray_resumed_locally_gives_the_same_file(cluster, lenet, loader, local_record, tmp_path,
                                                               monkeypatch):
    cache = tmp_path / "tol.json.partial"

    def interrupt(pool, n):
        if n == 12:
            raise _Interrupt

    ex = RayExecutor(workers=2)
    ex.on_result = interrupt
    with ex, pytest.raises(_Interrupt):
        characterize(lenet, loader, "em0:p=1e-3", executor=ex, cache_path=cache, **SWEEP)
    saved = len(json.loads(cache.read_text())["values"])
    assert saved >= 12
    from eden.workflows import executor

    computed = []
    evaluate_task = executor.evaluate_task
    monkeypatch.setattr(executor, "evaluate_task", lambda *a: computed.append(1) or evaluate_task(*a))
    rec = characterize(lenet, loader, "em0:p=1e-3", executor="local", cache_path=cache, **SWEEP)
    assert _bytes(rec) == _bytes(local_record)
    # the local run evaluated only what the Ray run had not (two seeds on two workers: nothing speculative,
    # every saved value is one the record rests on); +1: the clean fp32 accuracy
    assert 0 < len(computed) == rec["evaluations"] + 1 - saved


def test_cli_characterize_on_ray_equals_local(cluster, tmp_path):
    # one seed on two workers: the idle worker evaluates the next bisection points speculatively
    args = ["characterize", "--mode", "coarse", "--seeds", "1", "--resolution", "0.3", "--select", "classifier.3.*",
            "--correction", "zero", "--no-progress"]
    out_local, out_ray = tmp_path / "local.json", tmp_path / "ray.json"
    res = CliRunner().invoke(main, args + ["-o", str(out_local)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, args + ["-o", str(out_ray), "--executor", "ray", "--workers", "2"])
    assert res.exit_code == 0, res.output
    a, b = (json.loads(p.read_text()) for p in (out_local, out_ray))
    assert _bytes(a) == _bytes(b)


def test_mapping_validation_on_ray_equals_local(cluster, lenet, loader, local_record):
    from eden.dram.profiles import load_profile
    from eden.workflows.deploy import deploy

    profile = load_profile("ddr4-2400-8gb-x8")
    local = deploy(local_record, profile, model=lenet, loader=loader, seeds=2)
    with make_executor("ray", workers=2) as ex:
        on_ray = deploy(local_record, profile, model=lenet, loader=loader, seeds=2, executor=ex)
    assert local["validation"]["validated"] and local["validation"]["accuracy"]["values"]

    def scrub(rep):  # the time stamp and the mapper's wall time differ between any two runs
        return {**rep, "created_utc": "", "mapping": {**rep["mapping"], "runtime_s": 0}}

    assert scrub(on_ray) == scrub(local)


def test_unreachable_cluster_names_the_address():
    with pytest.raises(EdenConfigError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:9"):
        with make_executor("ray", address="127.0.0.1:9") as ex, ex.pool(None):  # type: ignore[arg-type]
            pass
    res = CliRunner().invoke(main, ["characterize", "--executor", "ray", "--address", "127.0.0.1:9", "-o",
                                    "/nonexistent/t.json", "--no-progress"])
    assert res.exit_code == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in res.output
    res = CliRunner().invoke(main, ["characterize", "--workers", "2", "-o", "/nonexistent/t.json"])
    assert res.exit_code == 2 and "--workers belongs to --executor ray" in res.output


def test_map_and_run_take_the_executor_options(local_record, tmp_path):
    from eden.workflows.characterize import save_tolerance

    tol = tmp_path / "tol.json"
    save_tolerance(local_record, tol)
    res = CliRunner().invoke(main, ["map", "--tolerance", str(tol), "--data", "digits", "--seeds", "1",
                                    "-o", str(tmp_path / "m.json"),
                                    "--executor", "ray", "--address", "127.0.0.1:9"])
    assert res.exit_code == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in res.output
    res = CliRunner().invoke(main, ["run", "--run-dir", str(tmp_path / "run"), "--address", "10.0.0.1:6379"])
    assert res.exit_code == 2 and "--address belongs to --executor ray" in res.output
    assert not (tmp_path / "run").exists()


def test_more_workers_than_the_cluster_holds_is_refused(cluster, lenet, loader):
    with pytest.raises(EdenConfigError, match="3 Ray workers need 3 CPUs; the cluster has 2 CPUs"):
        characterize(lenet, loader, "em0:p=1e-3", executor=RayExecutor(workers=3), **SWEEP)
