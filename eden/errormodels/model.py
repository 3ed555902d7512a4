"""EDEN's DRAM error models as frozen, validated, composable configs.

Components (registered by name; a model is a union of independent components,
i.e. a bit flips if any component flips it):

* ``em0`` uniform: every bit flips with probability ``p``.
* ``em1`` weak bitlines: a ``fraction`` of the bitlines of each subarray is weak;
  bits on them flip with ``p``, all other bits with ``p_else`` (default 0).
* ``em2`` weak wordlines: a ``fraction`` of the rows is weak; bits on them flip
  with ``p``, all other bits with ``p_else`` (default 0).
* ``em3`` data dependent: a stored 1 reads as 0 with ``p10``, a stored 0 reads as
  1 with ``p01``.

Persistence (a property of the whole model):

* ``access`` (default): errors are redrawn on every access (every call with a
  new ``access`` index), as reduced-tRCD activation failures behave.
* ``fixed``: a device seed fixes a map of weak cells: the same cells fail on
  every access, and the maps are nested across rates (every cell weak at rate
  ``p`` is weak at any ``p' > p``), as reduced-voltage failures behave.
  Weak bitlines/wordlines are always fixed per device seed.

Spec strings: ``"em0:p=1e-4"``, ``"em1:fraction=0.01,p=0.05"``,
``"em3:p10=1e-3,p01=1e-5"``, unions with ``+``
(``"em1:fraction=0.01,p=0.05+em0:p=1e-7"``), global options after ``;``
(``"em0:p=1e-4;persistence=fixed"``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from typing import ClassVar

PERSISTENCE_MODES = ("access", "fixed")
DEFAULT_PERSISTENCE = "access"


def _check_probability(owner: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}.{name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise ValueError(f"{owner}.{name} must be in [0, 1], got {value!r}")
    return value


def _suggest(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=3) or [
        k for k in known if name and (name.startswith(k) or k.startswith(name))][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"known: {', '.join(sorted(known))}{hint}"


@dataclasses.dataclass(frozen=True)
class Component:
    """Base class of an error-model component. Subclasses register by ``kind``."""

    kind: ClassVar[str] = ""
    registry: ClassVar[dict[str, type["Component"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Component.registry[cls.kind] = cls

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check_probability(self.kind, f.name, getattr(self, f.name)))
        self._validate()

    def _validate(self) -> None:
        pass

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def params(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_spec(self) -> str:
        return self.kind + ":" + ",".join(f"{k}={v!r}" for k, v in self.params().items())

    def rate_table(self, weak_bitline: bool, weak_wordline: bool) -> tuple[float, float]:
        """Flip probability of a cell (stored 0, stored 1) given its line classes."""
        raise NotImplementedError

    def scaled(self, k: float) -> "Component":
        """Same component with every probability (not fraction) multiplied by k, capped at 1."""
        changes = {n: min(1.0, getattr(self, n) * k) for n in self.param_names() if n != "fraction"}
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Uniform(Component):
    """EM0: uniform random bit errors."""

    kind: ClassVar[str] = "em0"
    p: float = 0.0

    def rate_table(self, weak_bitline, weak_wordline):
        return (self.p, self.p)


@dataclasses.dataclass(frozen=True)
class WeakBitlines(Component):
    """EM1: errors concentrated on a fraction of the bitlines."""

    kind: ClassVar[str] = "em1"
    fraction: float = 0.0
    p: float = 0.0
    p_else: float = 0.0

    def _validate(self):
        if self.p < self.p_else:
            raise ValueError(f"em1.p (weak bitlines, {self.p}) must be >= em1.p_else ({self.p_else})")

    def rate_table(self, weak_bitline, weak_wordline):
        r = self.p if weak_bitline else self.p_else
        return (r, r)


@dataclasses.dataclass(frozen=True)
class WeakWordlines(Component):
    """EM2: errors concentrated on a fraction of the wordlines (rows)."""

    kind: ClassVar[str] = "em2"
    fraction: float = 0.0
    p: float = 0.0
    p_else: float = 0.0

    def _validate(self):
        if self.p < self.p_else:
            raise ValueError(f"em2.p (weak wordlines, {self.p}) must be >= em2.p_else ({self.p_else})")

    def rate_table(self, weak_bitline, weak_wordline):
        r = self.p if weak_wordline else self.p_else
        return (r, r)


@dataclasses.dataclass(frozen=True)
class DataDependent(Component):
    """EM3: direction-dependent errors (true-/anti-cells)."""

    kind: ClassVar[str] = "em3"
    p10: float = 0.0
    p01: float = 0.0

    def rate_table(self, weak_bitline, weak_wordline):
        return (self.p01, self.p10)


COMPONENTS = Component.registry


@dataclasses.dataclass(frozen=True)
class ErrorModel:
    """A DRAM error model: a union of components plus a persistence mode.

    Example:
        >>> em = ErrorModel.from_spec("em1:fraction=0.01,p=0.05")
        >>> round(em.expected_ber(), 6)
        0.0005
    """

    components: tuple[Component, ...]
    persistence: str = DEFAULT_PERSISTENCE

    def __post_init__(self) -> None:
        comps = tuple(self.components)
        if not comps:
            raise ValueError("an ErrorModel needs at least one component")
        for c in comps:
            if not isinstance(c, Component) or not c.kind:
                raise TypeError(f"ErrorModel components must be em0..em3 components, got {c!r}")
        object.__setattr__(self, "components", comps)
        if self.persistence not in PERSISTENCE_MODES:
            raise ValueError(f"unknown persistence {self.persistence!r}; known: {', '.join(PERSISTENCE_MODES)}")

    # ----------------------------------------------------------------- building
    @classmethod
    def from_spec(cls, spec: str, persistence: str | None = None) -> "ErrorModel":
        """Parse ``"em0:p=1e-4"``-style specs (see module docs)."""
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"error-model spec must be a non-empty string, got {spec!r}")
        body, _, opts = spec.partition(";")
        options = {}
        for item in filter(None, (s.strip() for s in opts.split(";"))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"error-model option {item!r} in {spec!r} must be key=value")
            if key.strip() != "persistence":
                raise ValueError(f"unknown error-model option {key.strip()!r} in {spec!r}; known: persistence")
            options["persistence"] = value.strip()
        comps = []
        for part in body.split("+"):
            part = part.strip()
            name, _, args = part.partition(":")
            name = name.strip()
            if name not in COMPONENTS:
                raise ValueError(f"unknown error model {name!r} in spec {spec!r}; {_suggest(name, COMPONENTS)}")
            ccls = COMPONENTS[name]
            kwargs = {}
            for item in filter(None, (a.strip() for a in args.split(","))):
                key, eq, value = item.partition("=")
                key = key.strip()
                if not eq:
                    raise ValueError(f"parameter {item!r} of {name} in {spec!r} must be key=value")
                if key not in ccls.param_names():
                    raise ValueError(f"unknown parameter {key!r} for {name} in spec {spec!r}; "
                                     f"{_suggest(key, ccls.param_names())}")
                if key in kwargs:
                    raise ValueError(f"parameter {key!r} given twice for {name} in {spec!r}")
                try:
                    kwargs[key] = float(value)
                except ValueError:
                    raise ValueError(f"parameter {name}.{key} in {spec!r} must be a number, got {value.strip()!r}") from None
            comps.append(ccls(**kwargs))
        return cls(tuple(comps), persistence or options.get("persistence", DEFAULT_PERSISTENCE))

    @classmethod
    def uniform(cls, p: float, persistence: str = DEFAULT_PERSISTENCE) -> "ErrorModel":
        return cls((Uniform(p),), persistence)

    @classmethod
    def coerce(cls, value: "ErrorModel | str | os.PathLike") -> "ErrorModel":
        """An ErrorModel from a model, a spec string or an HDF5 path."""
        if isinstance(value, ErrorModel):
            return value
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value.endswith((".h5", ".hdf5"))):
            return cls.load(value)
        if isinstance(value, str):
            return cls.from_spec(value)
        raise TypeError(f"expected an ErrorModel, a spec string or an .h5 path, got {type(value).__name__}")

    def to_spec(self) -> str:
        spec = "+".join(c.to_spec() for c in self.components)
        if self.persistence != DEFAULT_PERSISTENCE:
            spec += f";persistence={self.persistence}"
        return spec

    def __str__(self) -> str:
        return self.to_spec()

    # -------------------------------------------------------------- statistics
    def cell_rate(self, weak_bitline: tuple[bool, ...] | bool = False,
                  weak_wordline: tuple[bool, ...] | bool = False, stored: int = 0) -> float:
        """Flip probability of one cell given, per component, its line classes."""
        n = len(self.components)
        wb = weak_bitline if isinstance(weak_bitline, tuple) else (weak_bitline,) * n
        ww = weak_wordline if isinstance(weak_wordline, tuple) else (weak_wordline,) * n
        keep = 1.0
        for c, b, w in zip(self.components, wb, ww):
            keep *= 1.0 - c.rate_table(b, w)[stored]
        return 1.0 - keep

    def expected_ber(self, ones_fraction: float = 0.5) -> float:
        """Mean flip probability of a bit, over line classes and stored values."""
        total = 0.0
        for stored, weight in ((0, 1.0 - ones_fraction), (1, ones_fraction)):
            keep = 1.0
            for c in self.components:
                f = getattr(c, "fraction", 0.0)
                weak_b = c.kind == "em1"
                weak_w = c.kind == "em2"
                r_weak = c.rate_table(weak_b, weak_w)[stored]
                r_strong = c.rate_table(False, False)[stored]
                keep *= 1.0 - (f * r_weak + (1.0 - f) * r_strong if (weak_b or weak_w) else r_strong)
            total += weight * (1.0 - keep)
        return total

    def scaled(self, k: float) -> "ErrorModel":
        if not (k >= 0 and math.isfinite(k)):
            raise ValueError(f"scale factor must be finite and >= 0, got {k}")
        return ErrorModel(tuple(c.scaled(k) for c in self.components), self.persistence)

    def at_ber(self, ber: float, ones_fraction: float = 0.5) -> "ErrorModel":
        """This model's shape with all probabilities scaled so expected_ber() == ber."""
        ber = _check_probability("ErrorModel.at_ber", "ber", ber)
        base = self.expected_ber(ones_fraction)
        if base == 0.0:
            raise ValueError(f"cannot scale {self} to BER {ber}: its expected BER is 0")
        lo, hi = 0.0, ber / base
        if self.scaled(hi).expected_ber(ones_fraction) < ber:  # saturating caps: widen
            while self.scaled(hi).expected_ber(ones_fraction) < ber and hi < 1e18:
                hi *= 2
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if self.scaled(mid).expected_ber(ones_fraction) < ber:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-15 * hi:
                break
        if abs(self.scaled(hi).expected_ber(ones_fraction) - ber) > 1e-9 * max(ber, 1e-300) + 1e-300:
            raise ValueError(f"{self} cannot reach BER {ber} (the model saturates)")
        return self.scaled(hi)

    # ---------------------------------------------------------------- storage
    def save(self, path, *, provenance: dict | None = None, overwrite: bool = False) -> None:
        """Write this model to an HDF5 file (layout: docs/formats.md)."""
        from eden.errormodels import h5 as _h5

        _h5.save_error_model(self, path, provenance=provenance, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> "ErrorModel":
        """Read a model from an HDF5 file; errors name the file and HDF5 path."""
        from eden.errormodels import h5 as _h5

        return _h5.load_error_model(path)
