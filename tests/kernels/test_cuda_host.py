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

#: backends/cuda.py's generator scratch: 6 32-bit fields per live sub-pass and lane.
GEN_FIELDS = 6
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


def _tile_args(plan, words: np.ndarray, keep: list) -> list:
    """The kernels' EDEN_TILE_PARAMS up to ln_2_53 (before t_begin, t_end, scratch), as
    backends/cuda.py builds them, as ctypes values; the arrays they point into go to ``keep``."""
    def arr(a, dt):
        b = np.ascontiguousarray(a, dtype=dt)
        keep.append(b)
        return _ptr(b)

    L, D = ctypes.c_longlong, ctypes.c_double
    return [_ptr(words), L(plan.row_bits), L(plan.bit_lo), L(plan.bit_hi), L(plan.tile_wlclass.shape[1]),
            L(plan.n_subpasses), L(plan.bl_offsets.shape[1]),
            arr(plan.tile_row_id, np.uint32), arr(plan.tile_group, np.int32), arr(plan.tile_wlclass, np.uint8),
            arr(plan.sp_key, np.uint32), arr(plan.sp_thin, np.uint8), arr(plan.sp_pop, np.int32),
            arr(plan.sp_wl, np.int32), arr(plan.sp_active, np.uint8), arr(plan.sp_L, np.float64),
            arr(plan.sp_A, np.uint64), arr(plan.sp_tab, np.int64), arr(plan.tab_goff, np.int64),
            arr(plan.tab_t, np.uint64), arr(plan.tab_guide, np.int32), arr(plan.bl_offsets, np.int64),
            arr(plan.bl_cols, np.int32), arr(rng.LOG_LN_C, np.float64), arr(rng.LOG_INV_C, np.float64),
            D(rng.LN2), D(rng.LN_2_53)]


def host_flips(lib, plan, words: np.ndarray, batch: int | None = None):
    """(word index int64[k], xor mask[k]) from the kernel bodies, as gpu.inject launches them
    (tiles in launches of ``batch``; count, exclusive scan, emit)."""
    wb = words.dtype.itemsize
    T, S = int(plan.n_tiles), int(plan.n_subpasses)
    if T == 0 or S == 0:
        return np.zeros(0, np.int64), np.zeros(0, words.dtype)
    keep = []  # the arrays must outlive the calls
    common = _tile_args(plan, words, keep)
    L = ctypes.c_longlong
    batch = batch or T
    launches = [(b, min(T, b + batch)) for b in range(0, T, batch)]
    scratch = np.zeros(GEN_FIELDS * S * batch, np.uint32)
    count = getattr(lib, f"eden_host_count_{SUFFIX[wb]}")
    emit = getattr(lib, f"eden_host_emit_{SUFFIX[wb]}")
    counts = np.zeros(T, np.int64)
    for b0, b1 in launches:
        count(*common, L(b0), L(b1), _ptr(scratch), _ptr(counts))
    ends = np.cumsum(counts)
    offsets = ends - counts
    n = int(ends[-1])
    idx = np.full(n, -1, np.int64)
    mask = np.zeros(n, words.dtype)
    for b0, b1 in launches:
        scratch[:] = 0xDEADBEEF  # a launch must not rely on what a previous one left
        emit(*common, L(b0), L(b1), _ptr(scratch), _ptr(offsets), _ptr(idx), _ptr(mask))
    return idx, mask


SPECS = {
    "em0": "em0:p=1e-3",
    "em0_table": "em0:p=0.02",
    "em0_dense": "em0:p=0.5",
    "em1": "em1:fraction=0.05,p=0.05,p_else=1e-4",
    "em2": "em2:fraction=0.25,p=1e-2,p_else=1e-4",
    "em3": "em3:p10=1e-2,p01=1e-4",
    "em3_high": "em3:p10=0.3,p01=0.02",
    "composite": "em1:fraction=0.02,p=0.05+em0:p=1e-4+em3:p10=1e-3,p01=1e-5+em2:fraction=0.2,p=3e-3",
}
#: The oracle walks whole rows one draw at a time (vectorized across rows only), so
#: rates near 1/2 get short rows: 1 KiB instead of 8 KiB.
SHORT_ROWS = {"em0_dense", "em3_high"}
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
    words = _words(dtype, 40000, seed=len(name))
    amap = SHORT_MAP if name in SHORT_ROWS else DEFAULT_ADDRESS_MAP
    base = 3 * amap.organization.row_bytes + 1000  # not row-aligned; a multiple of every word size
    plan = compile_plan(model, word_bits=words.dtype.itemsize * 8, nbytes=words.nbytes, seed=7, access=2,
                        base_address=base, address_map=amap)
    before = words.copy()
    ri, rm = reference.sample_flips(plan, words)
    assert len(ri) > 0
    hi, hm = host_flips(lib, plan, words)
    assert np.array_equal(words, before), "the generation passes must only read the tensor"
    assert np.array_equal(hi, ri.astype(np.int64))
    assert np.array_equal(hm, rm)


def test_launch_batches_and_small_rows_match_oracle(lib):
    """Tiles split over several launches (backends/cuda.py's scratch limit), short rows, subarrays
    and a bank-interleaved map: the same entries as one launch and as the oracle."""
    org = DramOrganization(banks=4, rows=256, row_bytes=512, subarray_rows=32)
    amap = AddressMap(org, "bank_row")
    model = ErrorModel.from_spec(SPECS["composite"])
    words = _words(np.uint16, 60000, seed=3)
    plan = compile_plan(model, word_bits=16, nbytes=words.nbytes, seed=11, access=5, base_address=2 * 512 + 6,
                        address_map=amap)
    assert plan.n_tiles > 100
    ri, rm = reference.sample_flips(plan, words)
    for batch in (None, 7, 64):
        hi, hm = host_flips(lib, plan, words, batch=batch)
        assert np.array_equal(hi, ri.astype(np.int64)), batch
        assert np.array_equal(hm, rm), batch


def test_each_lane_touches_only_its_own_scratch_slots(lib):
    """On a GPU the lanes of a launch run at once: lane l may only use scratch words
    (f * S + i) * stride + l (backends/cuda.py sizes the buffer for exactly that). Run lane by lane
    on poisoned scratch and check each lane's footprint."""
    model = ErrorModel.from_spec(SPECS["composite"])
    words = _words(np.uint32, 40000, seed=2)
    plan = compile_plan(model, word_bits=32, nbytes=words.nbytes, seed=7, access=2, base_address=1000,
                        address_map=DEFAULT_ADDRESS_MAP)
    T, S = plan.n_tiles, plan.n_subpasses
    assert S >= 3 and T >= 4
    L = ctypes.c_longlong
    keep = []  # the arrays must outlive the calls
    common = _tile_args(plan, words, keep)
    b0, b1 = 1, T  # a launch that does not start at tile 0
    stride = b1 - b0
    poison = np.uint32(0xDEADBEEF)
    counts = np.zeros(T, np.int64)
    used_any = False
    for lane in range(stride):
        scratch = np.full(GEN_FIELDS * S * stride, poison, np.uint32)
        lib.eden_host_count_lane_u32(L(lane), *common, L(b0), L(b1), _ptr(scratch), _ptr(counts))
        touched = np.nonzero(scratch != poison)[0]
        own = {(f * S + i) * stride + lane for f in range(GEN_FIELDS) for i in range(S)}
        assert set(touched.tolist()) <= own, (lane, sorted(set(touched.tolist()) - own)[:5])
        used_any |= len(touched) > 0
    assert used_any  # the tiles kept generators in scratch (else this proves nothing)


def test_detects_a_wrong_key(lib):
    """The comparison is sharp: one changed sub-pass key changes the kernel's entries."""
    model = ErrorModel.from_spec("em0:p=1e-2")
    words = _words(np.uint32, 40000, seed=1)
    plan = compile_plan(model, word_bits=32, nbytes=words.nbytes, seed=7, access=2, base_address=0,
                        address_map=DEFAULT_ADDRESS_MAP)
    ri, _ = reference.sample_flips(plan, words)
    plan.sp_key = plan.sp_key.copy()
    plan.sp_key[0, 0] ^= 1
    hi, _ = host_flips(lib, plan, words)
    assert not np.array_equal(hi, ri.astype(np.int64))


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


def _host_kernel(lib, name):
    """A callable like a CuPy RawKernel: (grid, block, args) -> runs the kernel body."""
    if name.startswith("eden_xor_segments"):
        def xor(grid, block, args):
            words, idx, mask, n = args
            words[idx[:int(n)]] ^= mask[:int(n)]  # unique indices
        return xor
    kind = "count" if name.startswith("eden_count_tiles") else "emit"
    w_ct = name[name.index("<") + 1:].split(",")[0].rstrip(">").strip()
    suffix = {"unsigned char": "u8", "unsigned short": "u16", "unsigned int": "u32"}[w_ct]
    if kind == "emit" and name.rstrip(">").endswith(" int"):
        suffix += "_i32"
    fn = getattr(lib, f"eden_host_{kind}_{suffix}")

    def run(grid, block, args):
        lanes = int(args[28]) - int(args[27])
        assert grid[0] * block[0] >= lanes  # every tile gets a thread
        assert args[29].size >= GEN_FIELDS * int(args[5]) * lanes  # scratch as the kernels index it
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


@pytest.mark.parametrize("scratch_bytes", [None, 64], ids=["one-launch", "many-launches"])
@pytest.mark.parametrize("name", ["em0", "em1", "em3", "composite"])
def test_gpu_module_glue_matches_cpu_backend(host_gpu, monkeypatch, name, scratch_bytes):
    """gpu.inject and gpu.correct, with the kernels on the host, give the CPU backend's
    tensor, log and correction counts (float32 with zero correction, float16 with clamp)."""
    import torch

    from eden.engine.ops import finite_range, inject_
    from eden.formats import format_of

    if scratch_bytes is not None:
        monkeypatch.setattr(host_gpu, "_SCRATCH_BYTES", scratch_bytes)
    for dtype, mode in ((torch.float32, "zero"), (torch.float16, "clamp")):
        x = (torch.randn(20000, generator=torch.Generator().manual_seed(5)) * 3).to(dtype)
        ref = x.clone()
        log = inject_(ref, SPECS[name], seed=7, access=2, base_address=8192 + 64, backend="cpu",
                      correction=mode)
        fmt = format_of(x.dtype)
        flat = x.view(torch.uint8)
        plan = compile_plan(ErrorModel.from_spec(SPECS[name]), word_bits=fmt.word.itemsize * 8,
                            nbytes=x.numel() * x.element_size(), seed=7, access=2, base_address=8192 + 64,
                            address_map=DEFAULT_ADDRESS_MAP)
        if scratch_bytes is not None:  # launches of 1-2 tiles each
            assert plan.n_tiles > max(1, scratch_bytes // (4 * 6 * plan.n_subpasses))
        low, high = fmt.plausible_bounds(*finite_range(x))  # as inject_ passes them
        words, idx, mask, off, cnt = host_gpu.inject(plan, flat, fmt)
        with np.errstate(invalid="ignore"):  # NumPy (not CuPy) warns when casting NaN
            n_bad, delta = host_gpu.correct(words, idx, mask, off, cnt, fmt, mode, low, high)
        assert torch.equal(x.view(torch.uint8), ref.view(torch.uint8)), (name, dtype)
        gi, gm = host_gpu.to_host_flat(idx, mask, off, cnt)
        ri, rm = log.word_flips()
        assert np.array_equal(gi, ri) and np.array_equal(gm, rm), (name, dtype)
        assert (n_bad, delta) == (log.n_corrected, log.n_error_bits - log.n_bits), (name, dtype)
        assert len(gi) > 0
        host_gpu.xor_segments(words, idx, mask, off, cnt)  # undo
        assert torch.equal(x, (torch.randn(20000, generator=torch.Generator().manual_seed(5)) * 3).to(dtype))
