"""eden.core.validate: one wording for bad arguments, raised as eden.errors classes."""

import math

import numpy as np
import pytest

from eden.core.validate import check_int, check_number, check_probability, did_you_mean, unknown_name
from eden.errors import EdenConfigError, EdenError, EdenTypeError


def test_check_int():
    assert check_int("seed", np.int64(4), lo=0) == 4 and type(check_int("seed", np.int64(4))) is int
    assert check_int("n", None, optional=True) is None
    with pytest.raises(EdenTypeError, match=r"seed must be an integer, got True"):
        check_int("seed", True)
    with pytest.raises(EdenTypeError, match=r"must be an integer or None, got 1.0"):
        check_int("n", 1.0, optional=True)
    with pytest.raises(EdenConfigError, match=r"banks must be an integer >= 1, got 0"):
        check_int("banks", 0, lo=1)
    with pytest.raises(EdenConfigError, match=r"k must be in \[1, 3\], got 4"):
        check_int("k", 4, lo=1, hi=3)


def test_check_number_and_probability():
    assert check_number("x", 2, lo=0) == 2.0
    assert check_number("x", math.inf, lo=0, allow_inf=True) == math.inf
    with pytest.raises(EdenConfigError, match=r"x must be a number >= 0 and finite, got inf"):
        check_number("x", math.inf, lo=0)
    with pytest.raises(EdenConfigError, match=r"ber must be in \(0, 0.5\], got 0"):
        check_number("ber", 0, lo=0, hi=0.5, lo_open=True)
    with pytest.raises(EdenConfigError, match="nan"):
        check_number("x", float("nan"))
    with pytest.raises(EdenTypeError):
        check_number("x", "1")
    assert check_probability("p", 1) == 1.0
    with pytest.raises(EdenConfigError, match=r"p must be in \[0, 1\], got 1.5"):
        check_probability("p", 1.5)
    # the errors are EdenErrors, and the built-ins that callers caught before
    with pytest.raises(ValueError):
        check_probability("p", -1)
    with pytest.raises(TypeError):
        check_int("n", "3")
    assert issubclass(EdenConfigError, EdenError)


def test_did_you_mean():
    assert did_you_mean("fp23", ["fp32", "fp16", "int8"]) == "; did you mean 'fp32'?"
    assert did_you_mean("zzz", ["fp32"]) == ""
    err = unknown_name("format", "in8", ["int8", "fp32"])
    assert isinstance(err, EdenConfigError)
    assert str(err) == "unknown format 'in8'; known: fp32, int8; did you mean 'int8'?"
