"""CUDA backend (cuda/inject.cu via CuPy) is bit-identical to the NumPy oracle.

Needs CuPy and a CUDA device; skipped cleanly otherwise.
"""

import warnings

import numpy as np
import pytest
import torch

import eden
from eden.dram.address import AddressMap, DramOrganization

pytestmark = pytest.mark.gpu

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # CuPy may warn about its CUDA path at import
    cupy = pytest.importorskip("cupy")


def _has_cuda_device() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


if not _has_cuda_device():
    pytest.skip("no CUDA device", allow_module_level=True)

SPECS = {
    "em0": "em0:p=1e-3",
    "em0_table": "em0:p=0.02",
    "em1": "em1:fraction=0.05,p=0.05,p_else=1e-4",
    "em2": "em2:fraction=0.25,p=1e-2,p_else=1e-4",
    "em3": "em3:p10=1e-2,p01=1e-4",
    "composite": "em1:fraction=0.02,p=0.05+em0:p=1e-4+em3:p10=1e-3,p01=1e-5+em2:fraction=0.2,p=3e-3",
    # both weak-line maps (weak line positions walked in weak rows only)
    "emc": "emc:line_fraction=0.25,wl_fraction=0.5,p=0.02,p_else=1e-4",
    # per-access line events (eden_count_events / eden_emit_events), alone and in a union
    "eml": "eml:line_fraction=0.25,wl_fraction=0.5,bit_fraction=0.02,e=0.3,p_else=1e-5",
    "eml_union": "eml:line_fraction=0.2,wl_fraction=0.25,bit_fraction=0.014,e=0.3,p_else=0+em0:p=1e-4",
    # grouped line events: slot and whole-line event blocks, two row shares (four event passes)
    "emg": ("emg:line_fraction=0.25,wl_fraction=0.5,hi_fraction=0.5,dense_fraction=0.3,slot_fraction=0.05,"
            "dense_slot_fraction=0.3,group_hi=7,group_lo=1,e=0.2,e_line=0.3,p_else=1e-5"),
    # low rates: stream groups of several tiles (4 MB tensors)
    "em0_low": "em0:p=1e-6",
    "composite_low": "em1:fraction=0.02,p=1e-3,p_else=1e-7+em0:p=1e-6+em2:fraction=0.2,p=1e-4,p_else=1e-6",
    "emc_low": "emc:line_fraction=0.3,wl_fraction=0.2,p=2e-3,p_else=1e-7+em1:fraction=0.02,p=1e-3",
}
LOW_BYTES = 4 << 20
# two_level: the weak map on the device, the failing weak cells kept from the log read back (eden.engine.twolevel)
PERSISTENCE = {"access": "", "fixed": ";persistence=fixed", "two_level": ";persistence=two_level,q=0.3"}
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int16]
ROW = 8192  # default address map: 8 KiB rows
BASE = 3 * ROW + 1000  # not row-aligned; a multiple of every element size


def _data(dtype, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        return (torch.randn(n, generator=g) * 2).to(dtype)
    lo, hi = (0, 256) if dtype == torch.uint8 else (-100, 100)
    return torch.randint(lo, hi, (n,), generator=g).to(dtype)


def _bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().copy()


def _inject_both(x, spec, seed, **kw):
    """(cuda tensor, cuda log, reference tensor, reference log) for the same data."""
    xg = x.clone().cuda()
    xr = x.clone()
    lg = eden.inject_(xg, spec, seed, **kw)
    torch.cuda.synchronize()
    lr = eden.inject_(xr, spec, seed, backend="reference", **kw)
    return xg, lg, xr, lr


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("persistence", list(PERSISTENCE))
@pytest.mark.parametrize("name", list(SPECS))
def test_matches_reference(name, persistence, dtype):
    spec = SPECS[name] + PERSISTENCE[persistence]
    nbytes = LOW_BYTES if name.endswith("_low") else 40000
    x = _data(dtype, nbytes // torch.tensor([], dtype=dtype).element_size())
    orig = _bits(x)
    xg, lg, xr, lr = _inject_both(x, spec, seed=7, access=2, base_address=BASE)
    assert lg.backend == "cuda"
    assert np.array_equal(_bits(xg), _bits(xr))
    gi, gm = lg.word_flips()
    ri, rm = lr.word_flips()
    assert np.array_equal(gi, ri) and np.array_equal(gm, rm)
    assert lg.n_bits == lr.n_bits and lg.n_words == lr.n_words
    assert lg.n_bits > 0  # the rates above always flip something in 40 KB (4 MB at low rates)
    lg.undo()
    torch.cuda.synchronize()
    assert np.array_equal(_bits(xg), orig)


@pytest.mark.parametrize("seed", [0, 1, 123456789])
def test_seeds_and_accesses(seed):
    x = _data(torch.float32, 5000)
    for access in (0, 3):
        xg, lg, xr, lr = _inject_both(x, "em0:p=5e-3", seed, access=access, base_address=4 * 1234)
        assert np.array_equal(_bits(xg), _bits(xr))


def test_small_rows_many_tiles_and_subarrays():
    amap = AddressMap(DramOrganization(banks=4, rows=256, row_bytes=256, subarray_rows=8))
    x = _data(torch.int16, 20000)
    spec = "em1:fraction=0.1,p=0.3,p_else=1e-3+em2:fraction=0.3,p=0.05+em0:p=0.01;persistence=fixed"
    xg, lg, xr, lr = _inject_both(x, spec, 11, base_address=256 * 3 + 6, address_map=amap)
    assert np.array_equal(_bits(xg), _bits(xr))
    assert np.array_equal(lg.positions()[0], lr.positions()[0])
    assert np.array_equal(lg.positions()[1], lr.positions()[1])


@pytest.mark.parametrize("spec", ["em0:p=1e-3", "em0:p=0.5", "em1:fraction=0.01,p=0.05+em0:p=1e-6;persistence=fixed"])
def test_large_tensor_matches_cpu(spec):
    x = _data(torch.float32, 1 << 20)
    xg = x.clone().cuda()
    xc = x.clone()
    lg = eden.inject_(xg, spec, 3, base_address=ROW * 5)
    lc = eden.inject_(xc, spec, 3, base_address=ROW * 5, backend="cpu")
    assert np.array_equal(_bits(xg), _bits(xc))
    assert lg.n_bits == lc.n_bits
    lg.undo()
    assert np.array_equal(_bits(xg), _bits(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("mode", ["zero", "clamp"])
@pytest.mark.parametrize("bound", [None, 0.75, (-0.25, 0.5)], ids=["own-range", "symmetric", "range"])
def test_correction_matches_cpu(dtype, mode, bound):
    x = _data(dtype, 20000)
    corr = eden.Correction(mode, bound)
    xg = x.clone().cuda()
    xc = x.clone()
    lg = eden.inject_(xg, "em0:p=2e-3", 5, correction=corr, base_address=BASE)
    lc = eden.inject_(xc, "em0:p=2e-3", 5, correction=corr, base_address=BASE, backend="cpu")
    assert lc.n_corrected > 0
    assert lg.n_corrected == lc.n_corrected and lg.n_error_bits == lc.n_error_bits
    assert np.array_equal(_bits(xg), _bits(xc))
    gi, gm = lg.word_flips()
    ci, cm = lc.word_flips()
    assert np.array_equal(gi, ci) and np.array_equal(gm, cm)
    lg.undo()
    torch.cuda.synchronize()
    assert np.array_equal(_bits(xg), _bits(x))


def test_runs_on_the_current_stream():
    x = _data(torch.float32, 100000)
    xc = x.clone()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        xg = x.cuda(non_blocking=False)
        xg.mul_(1.0)  # queued work on the side stream before the injection
        lg = eden.inject_(xg, "em0:p=1e-3", 9)
        after = xg.clone()
    s.synchronize()
    eden.inject_(xc, "em0:p=1e-3", 9, backend="cpu")
    assert np.array_equal(_bits(after), _bits(xc))
    assert lg.n_bits > 0


def test_empty_model_and_undo_twice():
    x = _data(torch.float32, 1000)
    xg = x.clone().cuda()
    log = eden.inject_(xg, "em0:p=0", 1)
    assert log.n_bits == 0 and log.n_words == 0
    log.undo()
    with pytest.raises(RuntimeError):
        log.undo()
    assert np.array_equal(_bits(xg), _bits(x))
