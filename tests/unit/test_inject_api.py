"""inject_ contract: bad input -> one clear error and the input untouched."""

import sys

import numpy as np
import pytest
import torch

from eden import AddressMap, Correction, DramOrganization, EdenConfigError, EdenError, ErrorModel, inject_
from eden.engine.correct import CorrectionMode
from eden.errors import EdenTypeError


def _raw(t):
    return t.view(torch.uint8).clone() if isinstance(t, torch.Tensor) else t.view(np.uint8).copy()


@pytest.mark.parametrize("spec, err", [
    ("em0:p=1.5", "[0, 1]"), ("em0:p=-1e-3", "[0, 1]"), ("em0:p=nan", "[0, 1]"),
    ("em7:p=1e-3", "known: em0, em1, em2, em3"), ("em1:fraction=0.1,prob=0.1", "did you mean"),
    ("em1:fraction=0.1,p=0.01,p_else=0.1", "must be >= em1.p_else"), ("em0:p=abc", "must be a number"),
    ("em0:p=1e-3;persistence=sometimes", "unknown persistence"), ("", "non-empty"),
])
def test_bad_specs(spec, err):
    x = torch.randn(100)
    before = _raw(x)
    with pytest.raises(ValueError) as exc:
        inject_(x, spec)
    assert err in str(exc.value)
    assert torch.equal(_raw(x), before)


def test_unsupported_dtype_and_noncontiguous():
    with pytest.raises(TypeError, match="unsupported dtype torch.float64"):
        inject_(torch.zeros(10, dtype=torch.float64), "em0:p=0.1")
    x = torch.randn(8, 8).t()
    before = _raw(x.contiguous())
    with pytest.raises(ValueError, match="contiguous"):
        inject_(x, "em0:p=0.5")
    assert torch.equal(_raw(x.contiguous()), before)
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        inject_([1.0, 2.0], "em0:p=0.5")


@pytest.mark.parametrize("kwargs, exc, err", [
    ({"seed": -1}, EdenConfigError, "seed must be an integer >= 0"), ({"seed": 1.5}, EdenTypeError, "seed"),
    ({"access": -2}, EdenConfigError, "access"),
    ({"base_address": 2}, EdenConfigError, "multiple of the element size"),
    ({"backend": "tpu"}, EdenConfigError, r"unknown backend 'tpu'; known: auto, cpu, cuda, reference"),
    ({"backend": "cpus"}, EdenConfigError, "did you mean 'cpu'"),
    ({"backend": "cuda"}, EdenConfigError, r"injects into tensors on cuda.*tensor.to\('cuda'\)"),
    ({"correction": "round"}, EdenConfigError, "unknown correction 'round'; known: clamp, none, zero"),
])
def test_bad_arguments(kwargs, exc, err):
    x = torch.randn(64)
    before = _raw(x)
    with pytest.raises(exc, match=err):
        inject_(x, "em0:p=0.5", **kwargs)
    assert torch.equal(_raw(x), before)


def test_cuda_without_cupy_is_one_clear_error(monkeypatch):
    """No CuPy: the CUDA backend says how to get it and how to force the CPU path."""
    from eden.engine import contract
    from eden.engine.backends import cuda

    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    monkeypatch.setattr(cuda, "_READY", [])
    with pytest.raises(contract.BackendUnavailableError, match=r"install eden\[cuda\].*tensor.cpu\(\)") as info:
        contract.select("auto", "cuda")
    assert isinstance(info.value, EdenError) and isinstance(info.value, RuntimeError)
    with pytest.raises(EdenConfigError, match="no registered backend injects into tensors on mps"):
        contract.select("auto", "mps")


def test_auto_picks_by_device_and_numba_switch(monkeypatch):
    x = torch.randn(4096)
    y = x.clone()
    assert inject_(x, "em0:p=1e-2", seed=1).backend == "cpu"
    monkeypatch.setenv("EDEN_DISABLE_NUMBA", "1")
    log = inject_(y, "em0:p=1e-2", seed=1)
    assert log.backend == "reference" and torch.equal(_raw(x), _raw(y))


def test_every_backend_implements_every_op():
    from eden.engine import contract

    names = contract.backend_names()
    assert names[0] == "auto" and {"cpu", "reference", "cuda"} <= set(names)
    missing = [(op.value, b) for b in names[1:] for op in contract.Op if (op, b) not in contract._KERNELS]
    assert not missing


def test_correction_modes_are_a_str_enum():
    assert Correction("zero").mode is CorrectionMode.ZERO and Correction("zero").mode == "zero"
    assert str(CorrectionMode.CLAMP) == "clamp" and f"{CorrectionMode.NONE}" == "none"
    x = torch.randn(1 << 12)
    y = x.clone()
    a = inject_(x, "em0:p=0.02", seed=2, correction=CorrectionMode.ZERO)
    b = inject_(y, "em0:p=0.02", seed=2, correction="zero")
    assert a.n_corrected == b.n_corrected > 0 and torch.equal(_raw(x), _raw(y))


def test_tensor_that_does_not_fit():
    am = AddressMap(DramOrganization(banks=1, rows=4, row_bytes=1024))
    x = torch.randn(2048)  # 8 KiB > 4 KiB
    before = _raw(x)
    with pytest.raises(ValueError, match="does not fit"):
        inject_(x, "em0:p=0.5", address_map=am)
    assert torch.equal(_raw(x), before)


def test_correction_only_for_floats():
    x = torch.zeros(64, dtype=torch.int8)
    with pytest.raises(ValueError, match="float formats"):
        inject_(x, "em0:p=0.5", correction="zero")


def test_correction_removes_implausible_values_and_undo_is_exact():
    x = torch.randn(1 << 16)
    before = _raw(x)
    lo, hi = float(x.min()), float(x.max())
    log = inject_(x, "em0:p=0.01", seed=2, correction="zero")
    assert torch.isfinite(x).all() and lo <= float(x.min()) and float(x.max()) <= hi
    assert log.n_corrected > 0 and log.n_error_bits > 0
    # the errors flipped exactly the bits the same draw flips without correction
    y = before.clone().view(torch.float32)
    plain = inject_(y, "em0:p=0.01", seed=2)
    assert log.n_error_bits == plain.n_bits != log.n_bits
    log.undo()
    assert torch.equal(_raw(x), before)
    with pytest.raises(RuntimeError, match="already undone"):
        log.undo()


def test_clamp_keeps_values_in_the_plausible_range():
    x = torch.randn(1 << 16)
    clean = x.clone()
    inject_(x, "em0:p=0.02", seed=4, correction="clamp")
    assert torch.isfinite(x).all() and float(x.min()) >= float(clean.min()) and float(x.max()) <= float(clean.max())
    changed = x != clean
    assert changed.any()
    # the ends of the range are where clamped values went
    assert (x == clean.max()).sum() > 1 and (x == clean.min()).sum() > 1


@pytest.mark.parametrize("mode", ["zero", "clamp"])
def test_sign_flips_of_a_non_negative_tensor_are_implausible(mode):
    """A ReLU output's range is [0, max]: a flipped sign bit makes a value implausible."""
    x = torch.rand(1 << 16) + 0.5  # in [0.5, 1.5): every sign flip leaves the range
    clean = x.clone()
    log = inject_(x, "em0:p=0.01", seed=6, correction=mode)
    assert float(x.min()) >= (0.0 if mode == "zero" else float(clean.min())) and float(x.max()) <= float(clean.max())
    el, bit = log.positions()  # positions that differ after correction
    sign_flipped = (clean.view(torch.int32) ^ x.view(torch.int32)) < 0
    assert not sign_flipped.any()
    # the errors did hit sign bits: about 1/32 of 0.01 * 2^16 * 32 = 655 of them; all were corrected
    assert log.n_corrected >= 600
    # a symmetric range given explicitly lets sign flips through (|x| stays below the bound)
    y = clean.clone()
    inject_(y, "em0:p=0.01", seed=6, correction=Correction(mode, float(clean.abs().max())))
    assert (y < 0).sum() > 500


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_a_range_wider_than_the_format_clamps_to_finite_values(dtype):
    x = torch.randn(1 << 14).to(dtype)
    log = inject_(x, "em0:p=0.02", seed=3, correction=Correction("clamp", (-1e39, 1e39)))
    assert log.n_corrected > 0 and torch.isfinite(x.float()).all()
    log.undo()


def test_plausible_range_checks():
    assert Correction("zero", 2.0).plausible == (-2.0, 2.0)
    assert Correction("clamp", (0, 3)).plausible == (0.0, 3.0)
    with pytest.raises(ValueError, match="low <= high"):
        Correction("zero", (3.0, 1.0))
    with pytest.raises(ValueError, match="correction bound must be a number >= 0"):
        Correction("zero", -1.0)
    with pytest.raises(ValueError, match="plausible high must be a number and finite"):
        Correction("zero", (0.0, float("inf")))
    with pytest.raises(TypeError, match="plausible must be"):
        Correction("zero", "wide")


def test_log_positions_match_the_change():
    x = np.random.default_rng(1).standard_normal(5000).astype(np.float32)
    orig = x.copy()
    log = inject_(x, "em0:p=3e-3", seed=5)
    diff = x.view(np.uint32) ^ orig.view(np.uint32)
    el, bit = log.positions()
    rebuilt = np.zeros_like(diff)
    np.bitwise_or.at(rebuilt, el, (np.uint32(1) << bit.astype(np.uint32)))
    assert np.array_equal(rebuilt, diff) and log.n_bits == len(el)


def test_at_ber_scales_shape():
    em = ErrorModel.from_spec("em1:fraction=0.01,p=0.1").at_ber(1e-4)
    assert abs(em.expected_ber() - 1e-4) < 1e-12
    assert em.components[0].fraction == 0.01


def test_finite_range_skips_non_finite_values_on_every_path():
    from eden.engine.ops import finite_range

    x = torch.tensor([1.0, -3.0, 2.0])
    assert finite_range(x) == (-3.0, 2.0)
    assert finite_range(x.double()) == (-3.0, 2.0)
    assert finite_range(x.half()) == (-3.0, 2.0)  # the torch path
    assert finite_range(torch.tensor([[1.0, -2.0], [6.0, 4.0]]).t()) == (-2.0, 6.0)  # not contiguous
    assert finite_range(torch.tensor([1.0, float("nan"), -5.0, float("inf"), -float("inf")])) == (-5.0, 1.0)
    assert finite_range(torch.tensor([float("nan"), float("inf")])) == (0.0, 0.0)
    assert finite_range(torch.zeros(0)) == (0.0, 0.0)
    assert finite_range(np.array([0.5, 2.5], np.float32)) == (0.5, 2.5)
    with torch.inference_mode():
        y = torch.tensor([0.25, 0.75]) * 2
    assert finite_range(y) == (0.5, 1.5)
