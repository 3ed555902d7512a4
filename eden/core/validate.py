"""Argument checks shared by every layer: one wording for "what was expected, what was found".

Each check returns the value normalised (``int``/``float``) or raises an :mod:`eden.errors` class:
:class:`~eden.errors.EdenTypeError` for a value of the wrong type, :class:`~eden.errors.EdenConfigError`
for one out of range. ``what`` names the argument or field as the user wrote it (``"seed"``,
``"Partition.capacity_bytes"``, ``"power.idd0_ma"``).

    >>> check_int("seed", 3, lo=0)
    3
    >>> check_number("ber", 0.7, lo=0.0, hi=0.5)
    Traceback (most recent call last):
    ...
    eden.errors.EdenConfigError: ber must be in [0, 0.5], got 0.7
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, overload

import numpy as np

from eden.errors import EdenConfigError, EdenTypeError

_INTS = (int, np.integer)
_REALS = (int, float, np.integer, np.floating)


def did_you_mean(name: object, known: Iterable[str], *, n: int = 3, cutoff: float = 0.6) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the known names close to ``name``, else ``""``."""
    candidates = [k for k in known if isinstance(k, str)]
    close = difflib.get_close_matches(str(name), candidates, n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(what: str, name: object, known: Iterable[str]) -> EdenConfigError:
    """The error for a name that is not registered: lists the known names and the close ones."""
    known = sorted(k for k in known if isinstance(k, str))
    return EdenConfigError(f"unknown {what} {name!r}; known: {', '.join(known)}{did_you_mean(name, known)}")


@overload
def check_int(what: str, value: Any, *, lo: int | None = ..., hi: int | None = ...,
              optional: Literal[False] = ...) -> int: ...
@overload
def check_int(what: str, value: Any, *, lo: int | None = ..., hi: int | None = ...,
              optional: bool = ...) -> int | None: ...
def check_int(what: str, value: Any, *, lo: int | None = None, hi: int | None = None,
              optional: bool = False) -> int | None:
    """An integer (not a bool) in ``[lo, hi]``; ``None`` passes when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _INTS):
        raise EdenTypeError(f"{what} must be an integer{' or None' if optional else ''}, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise EdenConfigError(f"{what} must be {_interval(lo, hi, integer=True)}, got {value!r}")
    return value


@overload
def check_number(what: str, value: Any, *, lo: float = ..., hi: float = ..., lo_open: bool = ...,
                 hi_open: bool = ..., allow_inf: bool = ..., optional: Literal[False] = ...) -> float: ...
@overload
def check_number(what: str, value: Any, *, lo: float = ..., hi: float = ..., lo_open: bool = ...,
                 hi_open: bool = ..., allow_inf: bool = ..., optional: bool = ...) -> float | None: ...
def check_number(what: str, value: Any, *, lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False,
                 hi_open: bool = False, allow_inf: bool = False, optional: bool = False) -> float | None:
    """A real number (not a bool, never NaN) in the interval; infinities only when ``allow_inf``."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _REALS):
        raise EdenTypeError(f"{what} must be a number{' or None' if optional else ''}, got {value!r}")
    v = float(value)
    bad = (math.isnan(v) or (math.isinf(v) and not allow_inf) or v < lo or v > hi
           or (lo_open and v == lo) or (hi_open and v == hi))
    if bad:
        finite = "" if allow_inf or (math.isfinite(lo) and math.isfinite(hi)) else " and finite"
        raise EdenConfigError(f"{what} must be {_interval(lo, hi, lo_open=lo_open, hi_open=hi_open)}{finite}, "
                              f"got {value!r}")
    return v


def check_probability(what: str, value: Any) -> float:
    """A probability in [0, 1] (a BER, a fraction of lines)."""
    return check_number(what, value, lo=0.0, hi=1.0)


_M = TypeVar("_M", bound="Mode")


class Mode(str, enum.Enum):
    """Base of eden's closed sets of mode names (objectives, tolerance sources, splits...).

    A member *is* its name string: it compares, hashes, formats and serialises to JSON as the
    plain string, so every place that took the string still takes it and every record written
    before keeps reading back equal. Subclasses list the members::

        class Objective(Mode):
            ENERGY = "energy"
            LATENCY = "latency"

        Objective.coerce("energy", "objective")  # Objective.ENERGY
    """

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    __hash__ = str.__hash__  # a member and its string are the same dict key

    @classmethod
    def coerce(cls: type[_M], value: Any, what: str | None = None) -> _M:
        """The member named ``value`` (a member or its string), else an unknown-name error naming ``what``
        (by default the class name in words: ``CorrectionMode`` -> "correction mode")."""
        try:
            return cls(value)
        except ValueError:
            what = what or re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
            raise unknown_name(what, value, cls.values()) from None

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The member names in declaration order (for click choices and messages)."""
        return tuple(m.value for m in cls)


def _interval(lo, hi, *, integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> str:
    low = lo is not None and not (isinstance(lo, float) and math.isinf(lo))
    high = hi is not None and not (isinstance(hi, float) and math.isinf(hi))
    kind = "an integer" if integer else "a number"
    if low and high:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if low:
        return f"{kind} {'>' if lo_open else '>='} {lo:g}"
    if high:
        return f"{kind} {'<' if hi_open else '<='} {hi:g}"
    return kind


__all__ = ["did_you_mean", "unknown_name", "check_int", "check_number", "check_probability", "Mode"]
