"""inject_ contract: bad input -> one clear error and the input untouched."""

import numpy as np
import pytest
import torch

from eden import AddressMap, DramOrganization, ErrorModel, inject_


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


@pytest.mark.parametrize("kwargs, err", [
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"access": -2}, "access"),
    ({"base_address": 2}, "multiple of the element size"), ({"backend": "tpu"}, "unknown backend"),
    ({"correction": "round"}, "unknown correction"),
])
def test_bad_arguments(kwargs, err):
    x = torch.randn(64)
    before = _raw(x)
    with pytest.raises(ValueError, match=err):
        inject_(x, "em0:p=0.5", **kwargs)
    assert torch.equal(_raw(x), before)


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
    bound = float(x.abs().max())
    log = inject_(x, "em0:p=0.01", seed=2, correction="zero")
    assert torch.isfinite(x).all() and float(x.abs().max()) <= bound
    assert log.n_corrected > 0 and log.n_error_bits > 0
    log.undo()
    assert torch.equal(_raw(x), before)
    with pytest.raises(RuntimeError, match="already undone"):
        log.undo()


def test_clamp_keeps_sign_and_bound():
    x = torch.randn(1 << 16)
    clean = x.clone()
    inject_(x, "em0:p=0.02", seed=4, correction="clamp")
    bound = float(clean.abs().max())
    assert torch.isfinite(x).all() and float(x.abs().max()) <= bound
    changed = x != clean
    assert changed.any()


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


def test_finite_absmax_skips_non_finite_values_on_every_path():
    from eden.inject import finite_absmax

    x = torch.tensor([1.0, -3.0, 2.0])
    assert finite_absmax(x) == 3.0
    assert finite_absmax(x.double()) == 3.0
    assert finite_absmax(x.half()) == 3.0  # the torch path
    assert finite_absmax(torch.tensor([[1.0, -2.0], [6.0, 4.0]]).t()) == 6.0  # not contiguous
    assert finite_absmax(torch.tensor([1.0, float("nan"), -5.0, float("inf"), -float("inf")])) == 5.0
    assert finite_absmax(torch.tensor([float("nan"), float("inf")])) == 0.0
    assert finite_absmax(torch.zeros(0)) == 0.0
    assert finite_absmax(np.array([0.5, -2.5], np.float32)) == 2.5
    with torch.inference_mode():
        y = torch.tensor([0.25, -0.75]) * 2
    assert finite_absmax(y) == 1.5
