"""The numba backend's parallel path gives the same bits as the serial path and the NumPy oracle.

The backend chooses serial or parallel execution from the job size and the machine
load; the tests' tensors are small, so without forcing it only the serial path runs.
"""

import numpy as np
import pytest

from eden.engine.backends import cpu
from eden.engine.ops import inject_

CASES = [
    ("em0:p=1e-2", np.float32, 0),
    ("em1:fraction=0.1,p=0.05,p_else=1e-4", np.float16, 4096),
    ("em2:fraction=0.3,p=0.02", np.int8, 8192 * 3),
    ("em3:p10=1e-2,p01=1e-3;persistence=fixed", np.float32, 64),
    ("em0:p=3e-3+em1:fraction=0.01,p=0.2", np.uint8, 1),
]


@pytest.mark.parametrize("spec,dtype,base", CASES)
@pytest.mark.parametrize("force", ["parallel", "serial"])
def test_parallel_equals_oracle(monkeypatch, spec, dtype, base, force):
    monkeypatch.setattr(cpu, "_parallel", lambda work, minimum, always: force == "parallel")
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, size=(1 << 18) * np.dtype(dtype).itemsize, dtype=np.uint8).view(dtype)
    if np.dtype(dtype).kind == "f":
        x = np.nan_to_num(x)
    ref, got = x.copy(), x.copy()
    base -= base % np.dtype(dtype).itemsize
    inject_(ref, spec, seed=11, access=2, base_address=base, backend="reference")
    log = inject_(got, spec, seed=11, access=2, base_address=base, backend="cpu")
    assert np.array_equal(ref.view(np.uint8), got.view(np.uint8))
    assert log.n_bits > 0
    log.undo()
    assert np.array_equal(got.view(np.uint8), x.view(np.uint8))


def test_thread_state_reads_past_the_command_name():
    # the command name may hold spaces and parentheses; the state follows the last ')'
    assert cpu._thread_state(b"123 (python) R 1 123 123 0 -1") == b"R"
    assert cpu._thread_state(b"124 (numba) S (x) R) S 1 2") == b"S"


def test_runnable_does_not_count_this_process_s_own_running_threads():
    import hashlib
    import threading

    if cpu._runnable() is None:
        pytest.skip("no /proc/loadavg")
    stop = threading.Event()
    data = bytes(1 << 20)

    def spin():  # a thread of ours that stays runnable (like an OpenMP worker that spins);
        while not stop.is_set():  # hashlib releases the GIL on large inputs
            hashlib.sha256(data).digest()

    def machine_total():
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])

    threads = [threading.Thread(target=spin) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        samples = [(machine_total(), cpu._runnable()) for _ in range(50)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    # at some moment _runnable left out at least 3 runnable threads of ours (the spinners
    # and the caller) from the machine's count; whatever else runs on the machine
    assert max(total - others for total, others in samples) >= 3
