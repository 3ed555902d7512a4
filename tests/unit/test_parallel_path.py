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
    # low rates: stream groups of many tiles, which the parallel chunks cut
    ("em0:p=1e-5", np.float32, 12),
    ("em2:fraction=0.3,p=1e-3,p_else=1e-6", np.int8, 8192 * 5 + 3),
    ("em1:fraction=0.05,p=1e-3,p_else=1e-7+em0:p=1e-2;persistence=fixed", np.float16, 6),
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


@pytest.mark.parametrize("spec", ["em0:p=1e-5", "em0:p=1e-2+em2:fraction=0.3,p=1e-3,p_else=1e-6",
                                  "em1:fraction=0.05,p=1e-3,p_else=1e-7;persistence=fixed"])
def test_any_split_of_the_tiles_gives_the_same_bits(spec):
    """The streams are the plan's: however the kernel's chunks cut the stream groups (one tile
    per chunk, random cuts, one chunk), the log and the words are the oracle's."""
    from eden import ErrorModel
    from eden.dram.address import DEFAULT_ADDRESS_MAP
    from eden.engine.backends import reference
    from eden.engine.plan import compile_plan

    k = cpu.kernels()
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**32, size=1 << 20, dtype=np.uint32)
    plan = compile_plan(ErrorModel.from_spec(spec), word_bits=32, nbytes=x.nbytes, seed=5, access=1,
                        base_address=4 * 1001, address_map=DEFAULT_ADDRESS_MAP, weak_lines=cpu)
    assert plan.sp_gbits.max() >= 2  # groups of several tiles
    ri, rm = reference.sample_flips(plan, x)
    assert len(ri) > 0
    T = plan.n_tiles
    rate = cpu._rates(plan)
    nd0 = cpu._first_batches(plan, rate, k.BATCH)
    cuts = [np.arange(T + 1), np.unique(np.concatenate([[0, T], rng.integers(0, T, 9)])), np.array([0, T])]
    for chunks in cuts:
        chunks = chunks.astype(np.int64)
        n = len(chunks) - 1
        cap = len(x) + 2 * plan.row_bits
        off = np.arange(n + 1, dtype=np.int64) * cap
        idx = np.empty(off[-1], np.int64)
        mask = np.empty(off[-1], np.uint32)
        cnt = np.zeros(n, np.int64)
        y = x.copy()
        k.inject_chunks_serial(y, 32, plan.row_bits, plan.bit_lo, plan.bit_hi, plan.tile_row_id, plan.tile_group,
                               plan.tile_wlclass, plan.grp_off, plan.grp_t0, plan.grp_t1, plan.grp_cls, plan.sp_key,
                               plan.sp_thin, plan.sp_pop, plan.sp_wl, plan.sp_gbits, plan.sp_active, plan.sp_L, rate,
                               nd0, plan.sp_A, plan.sp_tab, plan.tab_goff, plan.tab_t, plan.tab_guide,
                               plan.bl_offsets, plan.bl_cols, plan.pop_cum, chunks, off, idx, mask, cnt)
        gi = np.concatenate([idx[off[c]:off[c] + cnt[c]] for c in range(n)])
        gm = np.concatenate([mask[off[c]:off[c] + cnt[c]] for c in range(n)])
        assert np.array_equal(gi, ri) and np.array_equal(gm, rm), n
        assert np.array_equal(y[ri], x[ri] ^ rm) and np.count_nonzero(y != x) == len(ri)


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
