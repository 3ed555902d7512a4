"""The error-model component contract and its registries.

A component is one frozen dataclass, in one file under ``eden/errormodels/components/``,
registered with :func:`register` (one line in that package's ``__init__``). It declares
everything the rest of eden needs:

* its parameters: dataclass fields made with :func:`rate_param` or :func:`fraction_param`
  (name, default, range [0, 1], whether :meth:`Component.scaled` scales it, a doc line);
  spec parsing and printing (``"em1:fraction=0.01,p=0.05"``) come from them;
* the cells it flips: :meth:`Component.rate_table` (flip probability of a cell given its
  line classes and stored bit) and :attr:`Component.weak_lines` (which weak-line maps, if
  any, it draws: weak bitlines or weak wordlines with its ``fraction``, or both, each with
  its own fraction given by :meth:`Component.weak_fractions`; weak bitlines may come in aligned
  blocks, :attr:`Component.bitline_block`);
  :meth:`Component.mean_flip_rate` (its expected BER) follows from them;
* its engine sub-passes, :meth:`Component.sub_passes` (sampling scheme: ``eden/engine/plan.py``),
  and optionally line-event passes, :meth:`Component.line_events` (bits that fail together);
* optionally, its maximum-likelihood fit to raw records (``fit_records``), its simulated
  goodness-of-fit margins (``simulate_margins``) and its draws for synthetic records
  (``simulation_passes``). A component with ``fit_records`` is a candidate of
  :func:`eden.dram.fit.fit`; the contract of those three is in :mod:`eden.errormodels.fitting`.

Fit candidates that combine components (``em1+em2``) register with :func:`register_fit_model`.
Persistence (redraw errors per access, a fixed map of weak cells, or EDEN's two-level model: a
fixed map of weak cells each failing with probability ``q`` per access) is a property of the
whole model: :class:`Persistence`, :func:`check_repeat_q`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, cast

from eden.core.registry import Registry
from eden.core.validate import Mode, check_number, did_you_mean
from eden.errors import EdenConfigError


class Persistence(Mode):
    """Whether errors are redrawn on every access, fixed per device seed, or both: fixed weak
    cells failing with probability ``q`` per access (module docs of model.py)."""

    ACCESS = "access"
    FIXED = "fixed"
    TWO_LEVEL = "two_level"

    @property
    def redraws(self) -> bool:
        """Whether two accesses of one device seed may see different errors."""
        return self is not Persistence.FIXED


DEFAULT_PERSISTENCE = Persistence.ACCESS

#: The spec/HDF5 name of two-level persistence's per-access failure probability of a weak cell.
REPEAT_Q = "q"


def check_repeat_q(persistence: Persistence | str, q) -> float | None:
    """``q`` of a model with ``persistence``: a number in (0, 1] for ``two_level`` (the
    probability that a weak cell fails on an access), None otherwise; else EdenConfigError
    naming the field."""
    persistence = Persistence.coerce(persistence)
    if persistence is not Persistence.TWO_LEVEL:
        if q is not None:
            raise EdenConfigError(f"error-model option {REPEAT_Q} (the per-access failure probability of a weak "
                                  f"cell) applies only to persistence={Persistence.TWO_LEVEL.value}, "
                                  f"not {persistence.value}")
        return None
    if q is None:
        raise EdenConfigError(f"persistence={Persistence.TWO_LEVEL.value} needs option {REPEAT_Q} in (0, 1], "
                              f"the per-access failure probability of a weak cell "
                              f"(e.g. ';persistence={Persistence.TWO_LEVEL.value},{REPEAT_Q}=0.05')")
    return check_number(f"error-model option {REPEAT_Q} (the per-access failure probability of a weak cell "
                        f"under two_level persistence)", q, lo=0.0, hi=1.0, lo_open=True)


class WeakLines(Mode):
    """The weak-line maps a component draws (per device seed and component, each nested in its fraction)."""

    BITLINES = "bitlines"    # a fraction of the bitlines of each (bank, subarray): ``fraction``
    WORDLINES = "wordlines"  # a fraction of the rows: ``fraction``
    BOTH = "both"            # both maps, drawn independently: fractions from ``weak_fractions()``


class Population(Mode):
    """Cells a sub-pass walks in each row."""

    ALL = "all"                      # every bitline of the row
    WEAK_BITLINES = "weak_bitlines"  # the component's weak bitlines of the row's subarray


@dataclasses.dataclass(frozen=True)
class SubPass:
    """One engine sub-pass of a component (``eden/engine/plan.py`` compiles it).

    Attributes:
        q: Flip probability ``q[wordline class][stored bit]`` of a cell of the population;
            the class is the row's weak-wordline class of this component when
            ``by_wordline_class``, else always 0.
        population: Cells walked in each row (``WEAK_BITLINES``: the component must draw
            weak bitlines, ``weak_lines`` BITLINES or BOTH).
        by_wordline_class: Rates depend on whether the row is one of this component's weak
            wordlines (the component must draw weak wordlines, ``weak_lines`` WORDLINES or
            BOTH). With ``population = WEAK_BITLINES`` too, the sub-pass walks the weak
            bitlines at rates by the row's class: the cells where the two maps intersect.
    """

    q: tuple[tuple[float, float], tuple[float, float]]
    population: Population = Population.ALL
    by_wordline_class: bool = False


@dataclasses.dataclass(frozen=True)
class LineEventPass:
    """A per-access line-event pass of a component (``eden/engine/plan.py``: line events).

    The component's weak rows (its weak-wordline map) and weak blocks (its weak-bitline map of
    ``bitline_block``-bit blocks) give the weak tile-lines; each has an event with probability
    ``rate`` per access (``fixed`` persistence: once per device seed, nested in ``rate``), and an
    event flips every *member* bit of that line: a fixed map of bitlines of each (bank,
    subarray), each a member with ``member_fraction`` (nested in it), independent of the
    stored bits.

    Grouped events (``slot_bits > 0``, emg): the event blocks are instead the weak *slots* of
    ``slot_bits`` bitlines inside each weak block (each slot of a weak block weak with
    ``slot_fraction``, nested in it), every weak slot of a weak row has its own event, and an event
    flips exactly ``members`` of its slot's bitlines (the same ones in every row of the (bank,
    subarray), nested in ``members``). ``rows = (lo, hi)`` restricts the pass to the component's
    weak rows whose wordline uniform lies in ``[lo, hi)`` times the weak-row fraction (passes with
    disjoint intervals have disjoint rows; the default is every weak row). A ``dense`` share of the
    weak blocks has its own slot fraction; ``whole_block`` events flip every weak slot's group of a
    block at once. Passes of one component share its weak slots and member ranking.
    """

    rate: float
    member_fraction: float = 0.0
    slot_bits: int = 0
    slot_fraction: float = 0.0
    members: int = 0
    rows: tuple[float, float] = (0.0, 1.0)
    #: (share, slot fraction) of *dense* weak blocks: a ``share`` of the weak blocks (nested in
    #: it) whose slots are weak with the second fraction instead of ``slot_fraction``.
    dense: tuple[float, float] = (0.0, 0.0)
    #: With ``slot_bits``: one event per weak block (of a weak row) that flips the groups of all its
    #: weak slots at once, instead of one event per weak slot.
    whole_block: bool = False


def rate_param(doc: str, default: float = 0.0) -> Any:
    """A flip-probability parameter in [0, 1]; :meth:`Component.scaled` multiplies it."""
    return dataclasses.field(default=default, metadata={"range": (0.0, 1.0), "scales": True, "doc": doc})


def count_param(doc: str, lo: int, hi: int, default: int) -> Any:
    """A whole-number parameter in ``[lo, hi]`` (e.g. bits per group); :meth:`Component.scaled` keeps it."""
    return dataclasses.field(default=default, metadata={"range": (float(lo), float(hi)), "scales": False,
                                                        "integer": True, "doc": doc})


def fraction_param(doc: str, default: float = 0.0) -> Any:
    """A fraction-of-lines parameter in [0, 1]; :meth:`Component.scaled` keeps it."""
    return dataclasses.field(default=default, metadata={"range": (0.0, 1.0), "scales": False, "doc": doc})


class WeakLineComponent(Protocol):
    """A component with one weak-line map: its ``fraction`` parameter is the share of weak lines."""

    fraction: float


@dataclasses.dataclass(frozen=True)
class Component:
    """Base class of an error-model component (see the module docs for the contract)."""

    kind: ClassVar[str] = ""
    weak_lines: ClassVar[WeakLines | None] = None
    #: Weak bitlines come in aligned blocks of this many bitlines (1: each bitline on its own; 512:
    #: whole 64-byte line positions); the BITLINES fraction is then the fraction of blocks.
    bitline_block: ClassVar[int] = 1
    # fit-candidate defaults (used when the class defines fit_records; see eden.errormodels.fitting)
    fit_parts: ClassVar[tuple[str, ...]] = ()
    fits_without_errors: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            lo, hi = f.metadata["range"]
            value = check_number(f"{self.kind}.{f.name}", getattr(self, f.name), lo=lo, hi=hi)
            if f.metadata.get("integer"):
                if not float(value).is_integer():
                    raise EdenConfigError(f"{self.kind}.{f.name} must be a whole number in [{lo}, {hi}], got {value!r}")
                value = int(value)
            object.__setattr__(self, f.name, value)
        self._validate()

    def _validate(self) -> None:
        """Checks across parameters (raise EdenConfigError naming them); none by default."""

    # ------------------------------------------------------------- parameters
    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def params(self) -> dict[str, float]:  # (count_param values are ints)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_params(cls, text: str, spec: str) -> Component:
        """Parse the ``key=value,...`` part of a spec (``spec`` is the whole spec, for messages)."""
        kwargs: dict[str, float] = {}
        for item in filter(None, (a.strip() for a in text.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq:
                raise EdenConfigError(f"parameter {item!r} of {cls.kind} in {spec!r} must be key=value")
            if key not in cls.param_names():
                # parameter names are one to six letters: a lower cutoff than names' default finds p for prob
                hint = did_you_mean(key, cls.param_names(), cutoff=0.3)
                raise EdenConfigError(f"unknown parameter {key!r} for {cls.kind} in spec {spec!r}; known: "
                                      f"{', '.join(cls.param_names())}{hint}")
            if key in kwargs:
                raise EdenConfigError(f"parameter {key!r} given twice for {cls.kind} in {spec!r}")
            try:
                kwargs[key] = float(value)
            except ValueError:
                raise EdenConfigError(f"parameter {cls.kind}.{key} in {spec!r} must be a number, "
                                      f"got {value.strip()!r}") from None
        return cls(**kwargs)

    def to_spec(self) -> str:
        return self.kind + ":" + ",".join(f"{k}={v!r}" for k, v in self.params().items())

    def scaled(self, k: float) -> Component:
        """Same component with every probability (not fraction) multiplied by k, capped at 1."""
        changes = {f.name: min(1.0, getattr(self, f.name) * k) for f in dataclasses.fields(self)
                   if f.metadata["scales"]}
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------- statistics
    def rate_table(self, weak_bitline: bool, weak_wordline: bool) -> tuple[float, float]:
        """Flip probability of a cell (stored 0, stored 1) given its line classes."""
        raise NotImplementedError(f"{type(self).__name__} must define rate_table")

    def weak_fractions(self) -> dict[WeakLines, float]:
        """The fraction of each weak-line map this component draws (``BITLINES`` and/or
        ``WORDLINES``; empty without weak lines): what the engine draws its maps with."""
        if self.weak_lines is None:
            return {}
        if self.weak_lines is WeakLines.BOTH:
            raise NotImplementedError(f"{type(self).__name__} draws both weak-line maps: it must define "
                                      "weak_fractions")
        return {self.weak_lines: cast(WeakLineComponent, self).fraction}

    def mean_flip_rate(self, stored: int) -> float:
        """Flip probability of a cell storing ``stored``, averaged over this component's line classes."""
        strong = self.rate_table(False, False)[stored]
        if self.weak_lines is None:
            return strong
        if self.weak_lines is WeakLines.BOTH:  # the two maps are drawn independently
            fb, fw = (self.weak_fractions()[m] for m in (WeakLines.BITLINES, WeakLines.WORDLINES))
            return sum(pb * pw * self.rate_table(b, w)[stored]
                       for b, pb in ((False, 1.0 - fb), (True, fb)) for w, pw in ((False, 1.0 - fw), (True, fw)))
        weak = self.rate_table(self.weak_lines is WeakLines.BITLINES,
                               self.weak_lines is WeakLines.WORDLINES)[stored]
        f = cast(WeakLineComponent, self).fraction  # a component with weak lines has a `fraction` parameter
        return f * weak + (1.0 - f) * strong

    def sub_passes(self) -> tuple[SubPass, ...]:
        """The engine's sub-passes; their union flips each cell with :meth:`rate_table`'s rate."""
        raise NotImplementedError(f"{type(self).__name__} must define sub_passes")

    def line_events(self) -> tuple[LineEventPass, ...]:
        """The engine's line-event passes (flip groups of bits together); none by default. A
        component with events must draw both weak-line maps (``WeakLines.BOTH``)."""
        return ()

    @classmethod
    def fit_param_count(cls) -> int:
        """Free parameters of its fit (BIC's k): every parameter."""
        return len(cls.param_names())

    @classmethod
    def fit_exclusion(cls, data) -> str | None:
        """Why ``data`` cannot identify this component (None: it can, given errors)."""
        return None


def model_spec(components, persistence: Persistence | str, q: float | None = None) -> str:
    """The spec string of a union of components (``"em1:...+em0:..."``, ``";persistence=fixed"``
    when not the default, ``";persistence=two_level,q=0.05"``): what ``ErrorModel.to_spec`` prints
    and ``ErrorModel.from_spec`` reads."""
    spec = "+".join(c.to_spec() for c in components)
    persistence = Persistence(persistence)
    if persistence is not DEFAULT_PERSISTENCE:
        spec += f";persistence={persistence.value}"
    q = check_repeat_q(persistence, q)
    if q is not None:
        spec += f",{REPEAT_Q}={q!r}"
    return spec


# ------------------------------------------------------------------ registries
_COMPONENTS: Registry[type[Component]] = Registry("error model")
_FIT_MODELS: Registry[Any] = Registry("model")


def register(cls: type[Component]) -> type[Component]:
    """Make ``cls`` known by ``cls.kind`` (specs, HDF5 files, the engine, the fit); returns ``cls``,
    so it also works as a class decorator.

    A class that defines ``fit_records`` also becomes a fit candidate named ``cls.kind``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Component) and cls.kind):
        raise TypeError(f"register expects a Component subclass with a kind, got {cls!r}")
    if "+" in cls.kind or ":" in cls.kind or ";" in cls.kind:
        raise ValueError(f"component kind {cls.kind!r} contains '+', ':' or ';' (spec syntax)")
    if cls.kind in _COMPONENTS:
        raise ValueError(f"component kind {cls.kind!r} is taken")
    undeclared = [f.name for f in dataclasses.fields(cls) if "range" not in f.metadata]
    if undeclared:
        raise TypeError(f"{cls.__name__}: declare parameters {undeclared} with rate_param() or fraction_param()")
    _COMPONENTS.add(cls.kind, cls)
    if hasattr(cls, "fit_records"):
        register_fit_model(cls)
    return cls


def register_fit_model(model: Any) -> Any:
    """Register a fit candidate (contract: :mod:`eden.errormodels.fitting`) under ``model.name``
    (a component class: its ``kind``). Registration order is :data:`eden.dram.fit.MODELS`' order,
    which also seeds each candidate's goodness-of-fit Monte Carlo."""
    name = getattr(model, "kind", None) or model.name
    return _FIT_MODELS.add(name, model)


def component_class(kind: str) -> type[Component]:
    """The registered component class of ``kind``; unknown -> :func:`unknown_name`.

    Call it through :mod:`eden.errormodels.components`, whose import registers the built-ins.
    """
    return _COMPONENTS.lookup(kind)


def component_kinds() -> tuple[str, ...]:
    """Registered component kinds, in registration order."""
    return tuple(_COMPONENTS)


def fit_model(name: str) -> Any:
    """The registered fit candidate ``name``; unknown -> :func:`unknown_name`."""
    return _FIT_MODELS.lookup(name)


def fit_model_names() -> tuple[str, ...]:
    """Registered fit candidates, in registration order (simplest first)."""
    return tuple(_FIT_MODELS)
