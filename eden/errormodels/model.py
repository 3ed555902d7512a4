"""EDEN's DRAM error models as frozen, validated, composable configs.

Components (registered by name in :mod:`eden.errormodels.components`, one module each; a
model is a union of independent components, i.e. a bit flips if any component flips it):

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
* ``two_level`` with ``q`` in (0, 1] (EDEN's model): a device seed fixes a map of
  weak cells exactly as ``fixed`` draws it, at every rate divided by ``q``
  (``weak_map()``), and each weak cell fails on an access with probability
  ``q``, independently across accesses. A cell of rate ``r <= q`` is weak with
  probability ``r / q`` and so fails on an access with probability ``r``;
  a rate above ``q`` saturates (weak for sure, failing with ``q``), and in a
  union of components the weak maps overlap, so ``expected_ber`` is
  ``q`` times the weak map's (exact, within ``O(r_i r_j / q)`` of the
  ``access`` model's). ``q = 1`` is ``fixed``, bit for bit. Docs:
  ``docs/persistence.md``.

Spec strings: ``"em0:p=1e-4"``, ``"em1:fraction=0.01,p=0.05"``,
``"em3:p10=1e-3,p01=1e-5"``, unions with ``+``
(``"em1:fraction=0.01,p=0.05+em0:p=1e-7"``), global options after ``;``
(``"em0:p=1e-4;persistence=fixed"``, ``"em0:p=1e-4;persistence=two_level,q=0.05"``;
options are separated by ``;`` or ``,``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import cast

from eden.core.validate import check_probability
from eden.errormodels.component import (DEFAULT_PERSISTENCE, REPEAT_Q, Component, Persistence, check_repeat_q,
                                        model_spec)
from eden.errormodels.components import Uniform, component_class, component_kinds
from eden.errors import EdenConfigError, EdenTypeError


@dataclasses.dataclass(frozen=True)
class ErrorModel:
    """A DRAM error model: a union of registered components plus a persistence mode.

    Example:
        >>> em = ErrorModel.from_spec("em1:fraction=0.01,p=0.05")
        >>> round(em.expected_ber(), 6)
        0.0005
    """

    components: tuple[Component, ...]
    persistence: Persistence = DEFAULT_PERSISTENCE
    #: ``two_level`` persistence: the probability that a weak cell fails on an access (None otherwise).
    q: float | None = None

    def __post_init__(self) -> None:
        comps = tuple(self.components)
        if not comps:
            raise EdenConfigError("an ErrorModel needs at least one component")
        for c in comps:
            if not isinstance(c, Component) or c.kind not in component_kinds():
                raise EdenTypeError(f"ErrorModel components must be registered components "
                                    f"({', '.join(component_kinds())}), got {c!r}")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "persistence", Persistence.coerce(self.persistence))
        object.__setattr__(self, "q", check_repeat_q(self.persistence, self.q))

    # ----------------------------------------------------------------- building
    @classmethod
    def from_spec(cls, spec: str, persistence: Persistence | str | None = None, q: float | None = None
                  ) -> ErrorModel:
        """Parse ``"em0:p=1e-4"``-style specs (see module docs); ``persistence``/``q`` override
        the spec's options."""
        if not isinstance(spec, str) or not spec.strip():
            raise EdenConfigError(f"error-model spec must be a non-empty string, got {spec!r}")
        body, _, opts = spec.partition(";")
        options: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in opts.replace(",", ";").split(";"))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise EdenConfigError(f"error-model option {item!r} in {spec!r} must be key=value")
            if key not in ("persistence", REPEAT_Q):
                raise EdenConfigError(f"unknown error-model option {key!r} in {spec!r}; known: persistence, "
                                      f"{REPEAT_Q} (with persistence=two_level)")
            if key in options:
                raise EdenConfigError(f"error-model option {key!r} given twice in {spec!r}")
            options[key] = value.strip()
        if q is None and REPEAT_Q in options:
            try:
                q = float(options[REPEAT_Q])
            except ValueError:
                raise EdenConfigError(f"error-model option {REPEAT_Q} in {spec!r} must be a number in (0, 1], "
                                      f"got {options[REPEAT_Q]!r}") from None
        comps = []
        for part in body.split("+"):
            name, _, args = part.strip().partition(":")
            comps.append(component_class(name.strip()).from_params(args, spec))
        mode = Persistence.coerce(persistence or options.get("persistence", DEFAULT_PERSISTENCE))
        if persistence is not None and mode is not Persistence.TWO_LEVEL:
            q = None  # an overriding persistence drops the spec's q
        return cls(tuple(comps), mode, q)

    @classmethod
    def uniform(cls, p: float, persistence: Persistence | str = DEFAULT_PERSISTENCE) -> ErrorModel:
        return cls((Uniform(p),), Persistence.coerce(persistence))

    @classmethod
    def coerce(cls, value: ErrorModel | str | os.PathLike) -> ErrorModel:
        """An ErrorModel from a model, a spec string or an HDF5 path."""
        if isinstance(value, ErrorModel):
            return value
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value.endswith((".h5", ".hdf5"))):
            return cls.load(value)
        if isinstance(value, str):
            return cls.from_spec(value)
        raise EdenTypeError(f"expected an ErrorModel, a spec string or an .h5 path, got {type(value).__name__}")

    def to_spec(self) -> str:
        return model_spec(self.components, self.persistence, self.q)

    def weak_map(self) -> ErrorModel:
        """``two_level``: the ``fixed`` model whose failing cells are this model's weak cells
        (every rate divided by ``q``, capped at 1); any other model: itself."""
        if self.persistence is not Persistence.TWO_LEVEL:
            return self
        q = cast(float, self.q)
        return ErrorModel(tuple(c.scaled(1.0 / q) for c in self.components), Persistence.FIXED)

    def __str__(self) -> str:
        return self.to_spec()

    # -------------------------------------------------------------- statistics
    def cell_rate(self, weak_bitline: tuple[bool, ...] | bool = False,
                  weak_wordline: tuple[bool, ...] | bool = False, stored: int = 0) -> float:
        """Flip probability of one cell given, per component, its line classes."""
        n = len(self.components)
        wb = weak_bitline if isinstance(weak_bitline, tuple) else (weak_bitline,) * n
        ww = weak_wordline if isinstance(weak_wordline, tuple) else (weak_wordline,) * n
        if self.persistence is Persistence.TWO_LEVEL:
            return cast(float, self.q) * self.weak_map().cell_rate(wb, ww, stored)
        keep = 1.0
        for c, b, w in zip(self.components, wb, ww):
            keep *= 1.0 - c.rate_table(b, w)[stored]
        return 1.0 - keep

    def expected_ber(self, ones_fraction: float = 0.5) -> float:
        """Mean flip probability of a bit on one access, over line classes and stored values."""
        if self.persistence is Persistence.TWO_LEVEL:
            return cast(float, self.q) * self.weak_map().expected_ber(ones_fraction)
        total = 0.0
        for stored, weight in ((0, 1.0 - ones_fraction), (1, ones_fraction)):
            keep = 1.0
            for c in self.components:
                keep *= 1.0 - c.mean_flip_rate(stored)
            total += weight * (1.0 - keep)
        return total

    def scaled(self, k: float) -> ErrorModel:
        if not (k >= 0 and math.isfinite(k)):
            raise EdenConfigError(f"scale factor must be finite and >= 0, got {k}")
        return ErrorModel(tuple(c.scaled(k) for c in self.components), self.persistence, self.q)

    def at_ber(self, ber: float, ones_fraction: float = 0.5) -> ErrorModel:
        """This model's shape with all probabilities scaled so expected_ber() == ber."""
        ber = check_probability("ErrorModel.at_ber.ber", ber)
        base = self.expected_ber(ones_fraction)
        if base == 0.0:
            raise EdenConfigError(f"cannot scale {self} to BER {ber}: its expected BER is 0")
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
            raise EdenConfigError(f"{self} cannot reach BER {ber} (the model saturates)")
        return self.scaled(hi)

    # ---------------------------------------------------------------- storage
    def save(self, path, *, provenance: dict | None = None, overwrite: bool = False) -> None:
        """Write this model to an HDF5 file (layout: docs/formats.md)."""
        from eden.errormodels import h5 as _h5

        _h5.save_components(path, self.components, self.persistence, provenance=provenance,
                            overwrite=overwrite, q=self.q)

    @classmethod
    def load(cls, path) -> ErrorModel:
        """Read a model from an HDF5 file; errors name the file and HDF5 path."""
        from eden.errormodels import h5 as _h5

        components, persistence, q = _h5.load_model_parts(path)
        return cls(components, persistence, q)
