"""The CUDA kernels' code (cuda/inject.cu), built for the host, equals the NumPy oracle.

No GPU needed, only nvcc (on PATH on the CI machine). ``cuda_host_driver.cu``
runs the kernels' per-thread bodies lane by lane on the CPU, with the launch's
lane -> tile mapping and generator scratch layout, and this test feeds them the
arguments that ``eden/engine/backends/cuda.py`` (``gpu``) passes to the kernels. The last test runs
``eden/engine/backends/cuda.py`` itself (inject, correction, log readback, undo) with NumPy standing in
for CuPy and these host kernels for its RawKernels, against the CPU backend. What
this cannot check is what only a GPU runs: the launch itself, the CuPy/DLPack
plumbing and the device's __dmul_rn-style intrinsics (IEEE round-to-nearest, like
the host's operators); ``test_cuda.py`` covers those where a GPU is present.
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eden import ErrorModel
from eden.core.resources import resource_dir
from eden.dram.address import DEFAULT_ADDRESS_MAP, AddressMap, DramOrganization
from eden.engine import rng
from eden.engine.backends import reference
from eden.engine.plan import compile_plan

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")

SUFFIX = {1: "u8", 2: "u16", 4: "u32"}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    out = tmp_path_factory.mktemp("cuda_host") / "libedenhost.so"
    driver = Path(__file__).with_name("cuda_host_driver.cu")
    cmd = [NVCC, "-std=c++17", "-fmad=false", "-Xcompiler", "-fPIC", "-Xcompiler", "-ffp-contract=off",
           "-shared", "-I", str(resource_dir("cuda")), "-o", str(out), str(driver)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}\n{proc.stdout}"
    return ctypes.CDLL(str(out))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _group_args(plan, words: np.ndarray, keep: list) -> list:
    """The kernels' EDEN_GROUP_PARAMS up to ln_2_53 (before g_begin, g_end), as
    backends/cuda.py builds them, as ctypes values; the arrays they point into go to ``keep``."""
    def arr(a, dt):
        b = np.ascontiguousarray(a, dtype=dt)
        keep.append(b)
        return _ptr(b)

    L, D = ctypes.c_longlong, ctypes.c_double
    return [_ptr(words), L(plan.row_bits), L(plan.bit_lo), L(plan.bit_hi), L(plan.n_tiles),
            L(plan.bl_offsets.shape[1]), arr(plan.tile_row_id, np.uint32), arr(plan.tile_group, np.int32),
            arr(plan.grp_t0, np.int64), arr(plan.grp_t1, np.int64), arr(plan.grp_cls, np.uint8),
            arr(plan.grp_sp, np.int32), arr(plan.sp_key, np.uint32), arr(plan.sp_thin, np.uint8),
            arr(plan.sp_pop, np.int32), arr(plan.sp_gbits, np.int32), arr(plan.sp_L, np.float64),
            arr(plan.sp_A, np.uint64), arr(plan.sp_tab, np.int64), arr(plan.tab_goff, np.int64),
            arr(plan.tab_t, np.uint64), arr(plan.tab_guide, np.int32), arr(plan.bl_offsets, np.int64),
            arr(plan.bl_cols, np.int32), arr(plan.pop_cum, np.int64), arr(rng.LOG_LN_C, np.float64),
            arr(rng.LOG_INV_C, np.float64), D(rng.LN2), D(rng.LN_2_53)]


def host_positions(lib, plan, words: np.ndarray, batch: int | None = None):
    """(counts per group, kept tensor-bit positions in lane order) from the kernel bodies, as
    gpu.inject launches them (groups in launches of ``batch``; count, exclusive scan, emit)."""
    G = len(plan.grp_t0)
    if G == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    keep = []  # the arrays must outlive the calls
    common = _group_args(plan, words, keep)
    L = ctypes.c_longlong
    batch = batch or G
    launches = [(b, min(G, b + batch)) for b in range(0, G, batch)]
    count = getattr(lib, f"eden_host_count_{SUFFIX[words.dtype.itemsize]}")
    emit = getattr(lib, f"eden_host_emit_{SUFFIX[words.dtype.itemsize]}")
    counts = np.zeros(G, np.int64)
    for b0, b1 in launches:
        count(*common, L(b0), L(b1), _ptr(counts))
    ends = np.cumsum(counts)
    offsets = ends - counts
    pos = np.full(int(ends[-1]), -1, np.int64)
    for b0, b1 in launches:
        emit(*common, L(b0), L(b1), _ptr(offsets), _ptr(pos))
    return counts, offsets, pos


def host_flips(lib, plan, words: np.ndarray, batch: int | None = None):
    """(word index int64[k], xor mask[k]) from the kernel bodies and backends/cuda.py's union and
    packing (NumPy standing in for CuPy)."""
    from eden.engine.backends import cuda as gpu

    _, _, pos = host_positions(lib, plan, words, batch)
    if np.count_nonzero(np.diff(plan.grp_off)) > 1:
        pos = np.unique(pos)
    idx, mask = gpu.pack_positions(np, pos, plan.word_bits, np.int64, words.dtype)
    return idx, mask


SPECS = {
    "em0": "em0:p=1e-3",
    "em0_low": "em0:p=1e-6",
    "em0_mid": "em0:p=3e-5",
    "em0_table": "em0:p=0.02",
    "em0_dense": "em0:p=0.5",
    "em1": "em1:fraction=0.05,p=0.05,p_else=1e-4",
    "em1_low": "em1:fraction=0.05,p=1e-3,p_else=1e-6",
    "em1_sparse": "em1:fraction=0.0003,p=0.3,p_else=1e-6+em0:p=1e-5",  # rows without weak bitlines
    "em2": "em2:fraction=0.25,p=1e-2,p_else=1e-4",
    "em2_low": "em2:fraction=0.1,p=1e-3,p_else=1e-6",
    "em3": "em3:p10=1e-2,p01=1e-4",
    "em3_low": "em3:p10=1e-5,p01=1e-6",
    "em3_high": "em3:p10=0.3,p01=0.02",
    "composite": "em1:fraction=0.02,p=0.05+em0:p=1e-4+em3:p10=1e-3,p01=1e-5+em2:fraction=0.2,p=3e-3",
    "composite_low": "em1:fraction=0.02,p=1e-3,p_else=1e-7+em0:p=1e-6+em2:fraction=0.2,p=1e-4,p_else=1e-6",
    # both weak-line maps: the weak lines' bitlines walked in weak rows only (table and log methods)
    "emc": "emc:line_fraction=0.25,wl_fraction=0.5,p=0.02,p_else=1e-4",
    "emc_low": "emc:line_fraction=0.3,wl_fraction=0.2,p=2e-3,p_else=1e-7+em1:fraction=0.02,p=1e-3",
}
#: The oracle walks whole rows one draw at a time (vectorized across rows only), so
#: rates near 1/2 get short rows: 1 KiB instead of 8 KiB.
SHORT_ROWS = {"em0_dense", "em3_high", "em1_sparse"}
SHORT_MAP = AddressMap(DramOrganization(banks=4, rows=256, row_bytes=1024, subarray_rows=32))
PERSISTENCE = {"access": "", "fixed": ";persistence=fixed"}
WORDS = [np.uint8, np.uint16, np.uint32]


def _words(dtype, nbytes, seed):
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).view(dtype).copy()


@pytest.mark.parametrize("dtype", WORDS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("persistence", list(PERSISTENCE))
@pytest.mark.parametrize("name", list(SPECS))
def test_kernel_code_matches_oracle(lib, name, persistence, dtype):
    model = ErrorModel.from_spec(SPECS[name] + PERSISTENCE[persistence])
    low = name.endswith("_low")
    nbytes = 4 << 20 if low else 40000  # low rates: several tiles per stream group
    words = _words(dtype, nbytes, seed=len(name))
    amap = SHORT_MAP if name in SHORT_ROWS else DEFAULT_ADDRESS_MAP
    base = 3 * amap.organization.row_bytes + 1000  # not row-aligned; a multiple of every word size
    plan = compile_plan(model, word_bits=words.dtype.itemsize * 8, nbytes=words.nbytes, seed=7, access=2,
                        base_address=base, address_map=amap)
    if low:
        assert plan.sp_gbits.max() > 0 and len(plan.grp_t0) < plan.n_tiles * plan.n_subpasses
    before = words.copy()
    ri, rm = reference.sample_flips(plan, words)
    assert len(ri) > 0
    hi, hm = host_flips(lib, plan, words)
    assert np.array_equal(words, before), "the generation passes must only read the tensor"
    assert np.array_equal(hi, ri.astype(np.int64))
    assert np.array_equal(hm, rm)


def test_launch_batches_and_small_rows_match_oracle(lib):
    """Groups split over several launches, short rows, subarrays and a bank-interleaved map:
    the same entries as one launch and as the oracle."""
    org = DramOrganization(banks=4, rows=256, row_bytes=512, subarray_rows=32)
    amap = AddressMap(org, "bank_row")
    for spec in (SPECS["composite"], SPECS["composite_low"]):
        model = ErrorModel.from_spec(spec)
        words = _words(np.uint16, 60000, seed=3)
        plan = compile_plan(model, word_bits=16, nbytes=words.nbytes, seed=11, access=5, base_address=2 * 512 + 6,
                            address_map=amap)
        assert plan.n_tiles > 100
        ri, rm = reference.sample_flips(plan, words)
        for batch in (None, 7, 64):
            hi, hm = host_flips(lib, plan, words, batch=batch)
            assert np.array_equal(hi, ri.astype(np.int64)), batch
            assert np.array_equal(hm, rm), batch


def test_each_lane_writes_only_its_own_output_range(lib):
    """On a GPU the lanes of a launch run at once: lane g may only write pos[offsets[g] :
    offsets[g] + counts[g]]. Run lane by lane on poisoned output and check each lane's footprint."""
    model = ErrorModel.from_spec(SPECS["composite_low"])
    words = _words(np.uint32, 1 << 20, seed=2)
    plan = compile_plan(model, word_bits=32, nbytes=words.nbytes, seed=7, access=2, base_address=1000,
                        address_map=DEFAULT_ADDRESS_MAP)
    counts, offsets, pos_all = host_positions(lib, plan, words)
    G = len(counts)
    assert G >= 4 and (counts > 0).sum() >= 2
    L = ctypes.c_longlong
    keep = []
    common = _group_args(plan, words, keep)
    poison = np.int64(-7)
    for lane in range(G):
        pos = np.full(len(pos_all), poison, np.int64)
        lib.eden_host_emit_lane_u32(L(lane), *common, L(0), L(G), _ptr(offsets), _ptr(pos))
        touched = np.flatnonzero(pos != poison)
        assert set(touched.tolist()) == set(range(offsets[lane], offsets[lane] + counts[lane])), lane
        assert np.array_equal(pos[touched], pos_all[touched])


def test_detects_a_wrong_key(lib):
    """The comparison is sharp: one changed sub-pass key changes the kernel's entries."""
    for spec in ("em0:p=1e-2", "em0:p=1e-6"):
        model = ErrorModel.from_spec(spec)
        words = _words(np.uint32, 1 << 22, seed=1)
        plan = compile_plan(model, word_bits=32, nbytes=words.nbytes, seed=7, access=2, base_address=0,
                            address_map=DEFAULT_ADDRESS_MAP)
        ri, _ = reference.sample_flips(plan, words)
        plan.sp_key = plan.sp_key.copy()
        plan.sp_key[0, 0] ^= 1
        hi, _ = host_flips(lib, plan, words)
        assert len(ri) > 0 and not np.array_equal(hi, ri.astype(np.int64)), spec


# --------------------------------------------------- backends/cuda.py's glue, on the host
class _HostCupy:
    """Just enough of CuPy for eden/engine/backends/cuda.py, on NumPy arrays: anything not
    defined here is NumPy's function of the same name."""

    class cuda:  # noqa: N801 (CuPy's name)
        @staticmethod
        def get_current_stream():
            return _HostCupy._Stream()

    class _Stream:
        def synchronize(self):
            pass

    @staticmethod
    def asnumpy(a, stream=None):
        return np.asarray(a)

    def __getattr__(self, name):
        return getattr(np, name)


def _c_args(args):
    conv = []
    for a in args:
        if isinstance(a, np.ndarray):
            conv.append(_ptr(a))
        elif isinstance(a, np.floating):
            conv.append(ctypes.c_double(float(a)))
        elif isinstance(a, np.uint32):
            conv.append(ctypes.c_uint32(int(a)))
        else:
            conv.append(ctypes.c_longlong(int(a)))
    return conv


def _host_kernel(lib, name):
    """A callable like a CuPy RawKernel: (grid, block, args) -> runs the kernel body."""
    if name in ("eden_count_events", "eden_emit_events"):
        fn_ev = getattr(lib, name.replace("eden_", "eden_host_"))

        def run_events(grid, block, args):
            assert grid[0] * block[0] >= int(args[3])  # every tile gets a thread
            fn_ev(*_c_args(args))
        return run_events
    if name.startswith("eden_xor_segments"):
        def xor(grid, block, args):
            words, idx, mask, n = args
            words[idx[:int(n)]] ^= mask[:int(n)]  # unique indices
        return xor
    kind = "count" if name.startswith("eden_count_groups") else "emit"
    w_ct = name[name.index("<") + 1:].rstrip(">").strip()
    suffix = {"unsigned char": "u8", "unsigned short": "u16", "unsigned int": "u32"}[w_ct]
    fn = getattr(lib, f"eden_host_{kind}_{suffix}")
    n_g = 29 + 2  # EDEN_GROUP_PARAMS: 29 values, then g_begin, g_end

    def run(grid, block, args):
        lanes = int(args[n_g - 1]) - int(args[n_g - 2])
        assert grid[0] * block[0] >= lanes  # every group gets a thread
        conv = []
        for a in args:
            if isinstance(a, np.ndarray):
                conv.append(_ptr(a))
            elif isinstance(a, np.floating):
                conv.append(ctypes.c_double(float(a)))
            else:
                conv.append(ctypes.c_longlong(int(a)))
        fn(*conv)
    return run


@pytest.fixture
def host_gpu(lib, monkeypatch):
    """eden.engine.backends.cuda with its kernels run on the host (argument lists, batches,
    scan, XOR and correction exactly as backends/cuda.py builds them)."""
    import contextlib

    from eden.engine.backends import cuda as gpu

    fake = _HostCupy()
    monkeypatch.setattr(gpu, "_on_device", lambda device_id: contextlib.nullcontext(fake))
    monkeypatch.setattr(gpu, "_as_cupy", lambda cupy, tensor: tensor.numpy())
    monkeypatch.setattr(gpu, "_kernel", lambda device_id, name: _host_kernel(lib, name))
    monkeypatch.setattr(gpu, "_device_of", lambda arr: 0)
    return gpu


GLUE_DTYPES = (("float32", "zero"), ("float16", "clamp"), ("bfloat16", "zero"), ("int8", None), ("int4", None))


#: Line-event models (eml): the event kernels (eden_count_events, eden_emit_events) and cuda.py's
#: merge of their bits with the sub-passes' flips.
def host_events(lib, plan):
    """The event kernels' bits (count pass, scan, emit pass), sorted unique, on the host."""
    from eden.engine.sampling import STREAM_EVENTS

    keep = []

    def arr(a, dt):
        a = np.ascontiguousarray(a, dtype=dt)
        keep.append(a)
        return a

    T = plan.n_tiles
    args = (np.int64(plan.row_bits), np.int64(plan.bit_lo), np.int64(plan.bit_hi), np.int64(T),
            np.int64(plan.ev_blk_off.shape[1]), arr(plan.tile_row_id, np.uint32), arr(plan.tile_group, np.int32),
            arr(plan.tile_wlclass, np.uint8), np.uint32(STREAM_EVENTS), np.int64(len(plan.ev_thr)),
            arr(plan.ev_key, np.uint32), arr(plan.ev_thr, np.uint64), arr(plan.ev_wl, np.int32),
            arr(plan.ev_block, np.int32), arr(plan.ev_blk_off, np.int64), arr(plan.ev_blk, np.int32),
            arr(plan.ev_mem_off, np.int64), arr(plan.ev_mem, np.int32))
    counts = np.zeros(T, np.int64)
    lib.eden_host_count_events(*_c_args(args + (counts,)))
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    out = np.full(int(counts.sum()), -1, np.int64)
    lib.eden_host_emit_events(*_c_args(args + (offsets, out)))
    assert (out >= 0).all()  # every slot written
    return np.unique(out)


@pytest.mark.parametrize("persistence", ["", ";persistence=fixed"])
def test_event_kernels_match_the_oracle(lib, persistence):
    """cuda/inject.cu's line-event passes (host build) == events.line_event_bits, tensors cut
    anywhere in a line, several accesses."""
    from eden.engine.events import line_event_bits

    for name in ("eml_two", "emg"):
        spec = EVENT_SPECS[name] + persistence
        for access, base in ((0, 0), (1, 8192 * 3 + 40), (5, 8192 * 9 + 4)):
            plan = compile_plan(ErrorModel.from_spec(spec), word_bits=32, nbytes=400_000, seed=3, access=access,
                                base_address=base, address_map=DEFAULT_ADDRESS_MAP)
            want = line_event_bits(plan)
            assert len(want) > 100 and np.array_equal(host_events(lib, plan), want), (name, access, base)


EVENT_SPECS = {
    "eml": "eml:line_fraction=0.3,wl_fraction=0.5,bit_fraction=0.02,e=0.4,p_else=1e-4",
    "eml_only": "eml:line_fraction=0.3,wl_fraction=0.5,bit_fraction=0.02,e=0.4,p_else=0",
    "eml_two": ("eml:line_fraction=0.3,wl_fraction=0.5,bit_fraction=0.02,e=0.4,p_else=0"
                "+eml:line_fraction=0.1,wl_fraction=0.2,bit_fraction=0.05,e=0.7,p_else=1e-5"),
    # grouped events: 8-bit slot blocks, whole-line blocks, row shares (four event passes)
    "emg": ("emg:line_fraction=0.3,wl_fraction=0.5,hi_fraction=0.4,dense_fraction=0.3,slot_fraction=0.05,"
            "dense_slot_fraction=0.3,group_hi=7,group_lo=1,e=0.2,e_line=0.3,p_else=1e-5"),
}


@pytest.mark.parametrize("name", ["em0", "em0_low", "em1", "em3", "composite", "composite_low", "emc", "eml",
                                  "eml_only", "eml_two", "emg"])
def test_gpu_module_glue_matches_cpu_backend(host_gpu, name):
    """gpu.inject and gpu.correct, with the kernels on the host, give the CPU backend's
    tensor, log and correction counts (fp32 and bf16 with zero correction, fp16 with clamp,
    int8, packed int4)."""
    import torch

    from eden.engine.ops import finite_range, inject_
    from eden.formats import format_of, get_format

    n = 1 << 20 if name.endswith("_low") else 20000
    for dname, mode in GLUE_DTYPES:
        g = torch.Generator().manual_seed(5)
        if dname in ("int8", "int4"):
            x = torch.randint(-128, 128, (n,), generator=g, dtype=torch.int8)
            if dname == "int4":
                x = x.view(torch.uint8)
        else:
            x = (torch.randn(n, generator=g) * 3).to(getattr(torch, dname))
        clean = x.clone()
        ref = x.clone()
        spec = {**SPECS, **EVENT_SPECS}[name]
        log = inject_(ref, spec, seed=7, access=2, base_address=8192 + 64, backend="cpu", correction=mode)
        fmt = get_format("int4") if dname == "int4" else format_of(x.dtype)
        flat = x.view(torch.uint8)
        plan = compile_plan(ErrorModel.from_spec(spec), word_bits=fmt.word.itemsize * 8,
                            nbytes=x.numel() * x.element_size(), seed=7, access=2, base_address=8192 + 64,
                            address_map=DEFAULT_ADDRESS_MAP)
        words, idx, mask, off, cnt = host_gpu.inject(plan, flat, fmt)
        if mode is not None:
            low, high = fmt.plausible_bounds(*finite_range(clean))  # as inject_ passes them
            with np.errstate(invalid="ignore"):  # NumPy (not CuPy) warns when casting NaN
                n_bad, delta = host_gpu.correct(words, idx, mask, off, cnt, fmt, mode, low, high)
            assert (n_bad, delta) == (log.n_corrected, log.n_error_bits - log.n_bits), (name, dname)
        assert torch.equal(x.view(torch.uint8), ref.view(torch.uint8)), (name, dname)
        gi, gm = host_gpu.to_host_flat(idx, mask, off, cnt)
        ri, rm = log.word_flips()
        assert np.array_equal(gi, ri) and np.array_equal(gm, rm), (name, dname)
        assert len(gi) > 0
        host_gpu.xor_segments(words, idx, mask, off, cnt)  # undo
        assert torch.equal(x.view(torch.uint8), clean.view(torch.uint8))


@pytest.mark.parametrize("name", ["em0", "composite_low"])
def test_gpu_module_glue_two_level_matches_cpu_backend(host_gpu, name):
    """Two-level persistence on the CUDA path: the kernels (on the host) draw the weak map's plan,
    the log step (eden.engine.twolevel, on the log read back) keeps the failing weak cells: the CPU
    backend's tensor and log, for two accesses."""
    import torch

    from eden.engine.ops import inject_
    from eden.engine.twolevel import thin_log
    from eden.formats import format_of

    spec = SPECS[name] + ";persistence=two_level,q=0.25"
    n = 1 << 20 if name.endswith("_low") else 40000
    x = (torch.randn(n, generator=torch.Generator().manual_seed(3))).to(torch.float16)
    fmt = format_of(x.dtype)
    for access in (0, 5):
        ref = x.clone()
        log = inject_(ref, spec, seed=7, access=access, base_address=8192 + 64, backend="cpu")
        y = x.clone()
        plan = compile_plan(ErrorModel.from_spec(spec), word_bits=16, nbytes=2 * n, seed=7, access=access,
                            base_address=8192 + 64, address_map=DEFAULT_ADDRESS_MAP)
        words, idx, mask, off, cnt = host_gpu.inject(plan, y.view(torch.uint8), fmt)
        idx, mask, off, cnt = thin_log(words, idx, mask, off, cnt, backend="reference", itemsize=2,
                                       base_address=8192 + 64, seed=7, access=access, q=0.25)
        assert torch.equal(y.view(torch.uint8), ref.view(torch.uint8)), (name, access)
        gi, gm = host_gpu.to_host_flat(idx, mask, off, cnt)
        ri, rm = log.word_flips()
        assert len(gi) > 0 and np.array_equal(gi, ri) and np.array_equal(gm, rm), (name, access)
