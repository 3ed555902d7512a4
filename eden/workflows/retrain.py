"""Curricular retraining: fine-tune a model with approximate-DRAM errors in its forward pass.

EDEN's first idea: a network retrained *for* the errors of approximate DRAM
tolerates a much higher bit error rate at the same accuracy. Every training
batch runs inside :func:`eden.nn.emulate.emulate` with the selected data types
(weights and IFMs) stored in their numeric format and corrupted at the
current BER, with correction; the loss gradient, computed at the corrupted
values, updates the clean weights (straight-through: IFM corruption passes
gradients through unchanged, weight gradients are applied to the clean values
after the emulation put them back).

The BER follows a :class:`Curriculum` over epochs: it starts low and rises to
the target (``linear`` or ``geometric`` ramp, ``step``), or stays at the target
(``constant``, for comparison). The error model is a *shape*; each epoch's BER
scales it with :meth:`ErrorModel.at_ber`.

Randomness is a seed tree rooted at ``RetrainConfig.seed``:

* data order: one ``torch.Generator`` (seeded from ``(seed, "shuffle")``), the
  same permutation on every rank, each rank taking every ``world_size``-th
  sample of it (padded by wrapping, as ``DistributedSampler`` does);
* errors: the emulation seed of batch ``b`` of epoch ``e`` on rank ``r`` is
  ``derive_seed(seed, "train", e, r, b)``, so ranks draw different errors;
* torch's global RNG (dropout...) is seeded from ``(seed, "torch", rank)``
  inside a :func:`torch.random.fork_rng`, so the caller's state is untouched.

A checkpoint is written atomically after the tolerance measurement and after
every epoch: model, optimizer, epoch (the schedule position), the shuffle
generator's and every rank's torch RNG state, the tolerance before and the
history. ``resume=True`` continues from it bit-exactly (same world size; CPU
with a fixed thread count); an interrupted run loses at most the epoch it was
in. The checkpoint names the model (id and fingerprint of the weights before
retraining) and the configuration; another model or configuration is refused
before anything is written.

Data-parallel: when a ``torch.distributed`` process group is initialised (e.g.
under ``torchrun``), the model is wrapped in ``DistributedDataParallel``; rank 0
measures tolerance, evaluates and writes the checkpoint. Results are
reproducible for a given world size.

Example:
    >>> cfg = RetrainConfig("em0:p=1e-3", target_ber="10x", format="int8", epochs=8)
    >>> train = torch.utils.data.TensorDataset(*zoo.digits_split("train"))
    >>> result = retrain(model, train, zoo.digits_loader("test"), cfg)
    >>> result.report["tolerance"]["gain"]
"""

from __future__ import annotations

import dataclasses
import errno
import datetime
import enum
import gc
import hashlib
import math
import os
import re
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn

from eden._version import __version__
from eden.core.io import OutputExistsError, write_json, write_with
from eden.core.validate import Mode, check_int, check_number
from eden.errormodels.model import ErrorModel
from eden.errors import (EdenConfigError, EdenDataError, EdenError, EdenFileError, EdenFileNotFoundError,
                         EdenTypeError)
from eden.nn.emulate import DataTypeConfig, EmulationPlan, emulate, selection
from eden.nn.evaluate import evaluate
from eden.nn.quant import NumericFormat
from eden.workflows.characterize import Criterion

__all__ = ["Curriculum", "RetrainConfig", "ToleranceCheck", "RetrainResult", "retrain", "derive_seed",
           "load_checkpoint", "save_weights", "save_report", "retrain_table", "SCHEDULES", "OPTIMIZERS",
           "Schedule", "Optimizer", "LRSchedule", "ToleranceBaseline"]

CHECKPOINT_FORMAT = "eden-retrain-checkpoint"
CHECKPOINT_VERSION = 1
REPORT_FORMAT = "eden-retrain-report"
REPORT_VERSION = 1


class Schedule(Mode):
    """How the BER of :class:`Curriculum` rises to the target."""

    GEOMETRIC = "geometric"
    LINEAR = "linear"
    STEP = "step"
    CONSTANT = "constant"


class Optimizer(Mode):
    """The optimizer of :class:`RetrainConfig` (SGD with momentum 0.9)."""

    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"


class LRSchedule(Mode):
    """Learning rate over the epochs: cosine decay to 0, or constant."""

    COSINE = "cosine"
    CONSTANT = "constant"


class ToleranceBaseline(Mode):
    """What the tolerance after retraining counts its drop from (see :class:`ToleranceCheck`)."""

    OWN = "own"
    ORIGINAL = "original"


SCHEDULES = tuple(m.value for m in Schedule)
OPTIMIZERS = tuple(m.value for m in Optimizer)
LR_SCHEDULES = tuple(m.value for m in LRSchedule)
TOLERANCE_BASELINES = tuple(m.value for m in ToleranceBaseline)


def _plain(d: dict) -> dict:
    """``d`` with enum members as their spellings (JSON reports, checkpoints loaded with weights_only)."""
    return {k: v.value if isinstance(v, enum.Enum) else v for k, v in d.items()}
_GAIN = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*[xX]\s*$")


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed for one node of the seed tree: a hash of ``(seed, *parts)``.

    Example:
        >>> derive_seed(0, "train", 3, 0, 17) != derive_seed(0, "train", 3, 1, 17)
        True
    """
    check_int("seed", seed, lo=0)
    text = "\x00".join(["eden-retrain", str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def task_loss(outputs, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a classifier (logits ``[B, C]``, labels ``[B]``) or the LM loss of a language
    model (logits ``[B, T, V]``, next tokens ``[B, T]``: the mean over every position)."""
    logits = outputs.logits if hasattr(outputs, "logits") else outputs
    if logits.dim() == targets.dim() + 1 and targets.dim() >= 2:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return nn.functional.cross_entropy(logits, targets)


def _check_ber(name: str, value: Any) -> float:
    return check_number(name, value, lo=0.0, hi=0.5, lo_open=True)


# ------------------------------------------------------------------- curriculum
@dataclasses.dataclass(frozen=True)
class Curriculum:
    """The BER of each training epoch: a ramp from ``start_ber`` up to ``target_ber``.

    Epochs ``0 .. ramp_epochs - 1`` ramp; epoch ``ramp_epochs`` is the first at the
    target, and every later epoch stays there. With ``r = ramp_epochs`` and
    ``f = epoch / r``:

    * ``linear``: ``start + (target - start) * f``;
    * ``geometric``: ``start * (target / start) ** f`` (linear in log BER);
    * ``step``: ``steps`` geometric levels, each held for ``r / steps`` epochs:
      ``start * (target / start) ** (floor(f * steps) / steps)``;
    * ``constant``: the target from the first epoch (``ramp_epochs`` 0).

    Attributes:
        target_ber: BER of the last epochs, in (0, 0.5].
        epochs: number of training epochs (>= 1).
        schedule: a :class:`Schedule` or its spelling (:data:`SCHEDULES`).
        start_ber: BER of epoch 0 for ramps, in (0, target); default target / 100.
        ramp_epochs: epochs before the target is reached; default ``epochs // 2``
            for ramps. It must leave at least one epoch at the target.
        steps: levels of the ``step`` schedule below the target (>= 1).

    Example:
        >>> Curriculum(1e-2, epochs=4, schedule="geometric").bers()
        [0.0001, 0.001, 0.01, 0.01]
    """

    target_ber: float
    epochs: int
    schedule: Schedule | str = Schedule.GEOMETRIC
    start_ber: float | None = None
    ramp_epochs: int | None = None
    steps: int = 3

    def __post_init__(self):
        target = _check_ber("target_ber", self.target_ber)
        epochs = check_int("epochs", self.epochs, lo=1)
        schedule = Schedule.coerce(self.schedule, "schedule")
        object.__setattr__(self, "schedule", schedule)
        check_int("steps", self.steps, lo=1)
        object.__setattr__(self, "target_ber", target)
        if schedule is Schedule.CONSTANT:
            if self.start_ber is not None:
                raise EdenConfigError(f"the constant schedule has no start_ber (got {self.start_ber!r}); "
                                      "it trains at target_ber from the first epoch")
            if self.ramp_epochs not in (None, 0):
                raise EdenConfigError(f"the constant schedule has no ramp (ramp_epochs {self.ramp_epochs!r}); "
                                      "use 0 or leave it unset")
            object.__setattr__(self, "ramp_epochs", 0)
            return
        start = target / 100 if self.start_ber is None else _check_ber("start_ber", self.start_ber)
        if not start < target:
            raise EdenConfigError(f"start_ber must be below target_ber {target:g} for a {schedule.value} ramp, "
                                  f"got {start:g}")
        ramp = epochs // 2 if self.ramp_epochs is None else check_int("ramp_epochs", self.ramp_epochs, lo=1)
        if ramp < 1:
            raise EdenConfigError(f"a {schedule.value} ramp needs at least 2 epochs (one ramping, one at the "
                                  f"target), got epochs={epochs}")
        if ramp >= epochs:
            raise EdenConfigError(f"schedule never reaches its target: ramp_epochs={ramp} leaves no epoch at "
                                  f"the target BER {target:g} in {epochs} epochs (need ramp_epochs < epochs)")
        object.__setattr__(self, "start_ber", start)
        object.__setattr__(self, "ramp_epochs", ramp)

    def ber(self, epoch: int) -> float:
        """BER of training epoch ``epoch`` (0-based)."""
        check_int("epoch", epoch, lo=0)
        if epoch >= self.epochs:
            raise EdenConfigError(f"epoch {epoch} is past the curriculum's {self.epochs} epochs")
        r = self.ramp_epochs
        assert r is not None  # __post_init__ sets it (0 for the constant schedule)
        if epoch >= r:
            return self.target_ber
        f = epoch / r
        s, t = self.start_ber, self.target_ber
        assert s is not None  # __post_init__ sets it for every ramp
        if self.schedule is Schedule.LINEAR:
            return s + (t - s) * f
        if self.schedule is Schedule.STEP:
            f = math.floor(f * self.steps + 1e-9) / self.steps
        return s * (t / s) ** f

    def bers(self) -> list[float]:
        """The BER of every epoch."""
        return [self.ber(e) for e in range(self.epochs)]

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


# ----------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class RetrainConfig:
    """What to retrain for and how.

    Attributes:
        error_model: the error model's shape (ErrorModel, spec or .h5 path); every
            epoch scales it to the curriculum's BER.
        target_ber: final BER in (0, 0.5]; or ``"<k>x"`` (e.g. ``"10x"``): k times
            the tolerable BER measured before retraining (needs a ToleranceCheck);
            or ``"model"``: the error model's own expected BER (e.g. a DRAM
            profile's operating point).
        format: numeric format of every data type (e.g. "fp32", "int8").
        correction: implausible-value correction ("none", "zero", "clamp"; float formats).
        ecc: an ECC code (``eden.engine.ecc``: "none", "secded72", "ondie136", "chipkill144") applied
            per codeword after raw injection in every training batch, validation and tolerance
            measurement: the network trains on post-ECC errors, and every BER (the curriculum's, the
            target, the tolerable BERs) is a raw BER, before ECC.
        select: data-type names/patterns that get errors (the others are stored
            in the format without errors); default all. ``"!KEY"`` takes KEY's
            matches out again: ``"!stem.0.ifm"`` is everything but the input.
        epochs, schedule, start_ber, ramp_epochs, steps: the :class:`Curriculum`.
        optimizer: "adam", "adamw" or "sgd" (momentum 0.9); an :class:`Optimizer`.
        lr: peak learning rate; ``lr_schedule`` "cosine" decays it to 0 over the
            epochs (closed form per epoch), "constant" keeps it; an :class:`LRSchedule`.
        weight_decay: optimizer weight decay.
        freeze_norm_stats: keep batch-norm layers in eval mode while retraining
            (normalizing with, and keeping, the trained running statistics;
            their affine weights still learn). Off by default: batch statistics
            absorb the errors' outliers, frozen ones let them through.
        clip_grad_norm: rescale each batch's gradients to at most this total
            norm (None: no clipping); tames the rare huge losses of corrupted
            high-order bits.
        batch_size: training samples per batch and rank.
        seed: root of the seed tree (data order, errors, torch RNG).
    """

    error_model: Any
    target_ber: float | str = "10x"
    format: NumericFormat | str = "fp32"
    correction: str = "none"
    select: tuple[str, ...] = ("*",)
    epochs: int = 8
    schedule: Schedule | str = Schedule.GEOMETRIC
    start_ber: float | None = None
    ramp_epochs: int | None = None
    steps: int = 3
    optimizer: Optimizer | str = Optimizer.ADAM
    lr: float = 3e-3
    lr_schedule: LRSchedule | str = LRSchedule.COSINE
    weight_decay: float = 0.0
    freeze_norm_stats: bool = False
    clip_grad_norm: float | None = None
    batch_size: int = 128
    seed: int = 0
    ecc: str = "none"

    def __post_init__(self):
        object.__setattr__(self, "error_model", ErrorModel.coerce(self.error_model))
        object.__setattr__(self, "format", NumericFormat.parse(self.format))
        DataTypeConfig(None, self.format, self.correction, self.ecc)  # validates the combination (and the code)
        object.__setattr__(self, "select", selection(self.select))
        t = self.target_ber
        if isinstance(t, str):
            m = _GAIN.match(t)
            if t != "model" and (m is None or not float(m.group(1)) > 0):
                raise EdenConfigError(f"target_ber must be a BER in (0, 0.5], '<k>x' (k times the tolerable BER "
                                 f"before retraining, e.g. '10x') or 'model', got {t!r}")
        else:
            _check_ber("target_ber", t)
        object.__setattr__(self, "schedule", Schedule.coerce(self.schedule, "schedule"))
        object.__setattr__(self, "optimizer", Optimizer.coerce(self.optimizer, "optimizer"))
        object.__setattr__(self, "lr_schedule", LRSchedule.coerce(self.lr_schedule, "lr_schedule"))
        check_number("lr", self.lr, lo=0.0, lo_open=True)
        check_number("weight_decay", self.weight_decay, lo=0.0)
        if not isinstance(self.freeze_norm_stats, bool):
            raise EdenTypeError(f"freeze_norm_stats must be True or False, got {self.freeze_norm_stats!r}")
        check_number("clip_grad_norm", self.clip_grad_norm, lo=0.0, lo_open=True, optional=True)
        check_int("batch_size", self.batch_size, lo=1)
        check_int("seed", self.seed, lo=0)
        # A numeric target is checked against the schedule now (bad input fails before any work).
        self.curriculum(float(t) if not isinstance(t, str) else 0.5 if t != "model" else self._model_ber())

    def _model_ber(self) -> float:
        ber = self.error_model.expected_ber()
        if not 0 < ber <= 0.5:
            raise EdenConfigError(f"target_ber 'model': the error model {self.error_model} has expected BER "
                             f"{ber:g}, outside (0, 0.5]")
        return ber

    def resolve_target(self, tolerable_before: float | None) -> float:
        """The numeric target BER (``"<k>x"`` needs the tolerable BER before retraining)."""
        t = self.target_ber
        if not isinstance(t, str):
            return float(t)
        if t == "model":
            return self._model_ber()
        gain = _GAIN.match(t)
        assert gain is not None  # __post_init__ accepted only "model" and "<k>x"
        k = float(gain.group(1))
        if tolerable_before is None:
            raise EdenConfigError(f"target_ber {t!r} is relative to the tolerable BER before retraining; measure "
                             "it (a ToleranceCheck) or give a BER")
        if not tolerable_before > 0:
            raise EdenDataError(f"target_ber {t!r}: the model tolerates no BER above the search floor before "
                             "retraining; give an explicit target BER")
        return min(0.5, k * tolerable_before)

    def curriculum(self, target_ber: float) -> Curriculum:
        return Curriculum(target_ber, self.epochs, self.schedule, self.start_ber, self.ramp_epochs, self.steps)

    def plan(self, ber: float) -> EmulationPlan:
        """Every data type in the format; the selected ones with errors at ``ber``."""
        fmt = cast(NumericFormat, self.format)  # parsed by __post_init__
        clean = DataTypeConfig(None, fmt, self.correction)
        bad = DataTypeConfig(self.error_model.at_ber(ber), fmt, self.correction, self.ecc)
        # a data type taken out of the selection ("!key") is still stored in the format
        entries = [("*", clean)] + [(s[1:], clean) if s.startswith("!") else (s, bad) for s in self.select]
        return EmulationPlan(tuple(entries))

    def to_dict(self) -> dict:
        d = _plain(dataclasses.asdict(self))
        d.update(error_model=self.error_model.to_spec(), format=str(self.format), select=list(self.select))
        if self.ecc == "none":  # reports and checkpoints without ECC keep their keys
            del d["ecc"]
        return d


@dataclasses.dataclass(frozen=True)
class ToleranceCheck:
    """How the tolerable BER before and after retraining is measured (coarse characterization).

    Attributes:
        seeds: device seeds per BER point (an int n means 0..n-1).
        target_drop_pp: allowed accuracy drop in percentage points.
        resolution_decades: bisection resolution in log10 BER.
        ber_min: lowest BER tried.
        criterion: "mean" or "ci_low" (a :class:`eden.workflows.characterize.Criterion`).
        baseline: what the target drop after retraining counts from: "own" (the
            retrained model's accuracy in the format without errors; the
            default, stricter when retraining raised the clean accuracy) or
            "original" (the model's before retraining, as EDEN counts it).
            Before retraining both are the same. A :class:`ToleranceBaseline`.
    """

    seeds: int | tuple[int, ...] = 5
    target_drop_pp: float = 1.0
    resolution_decades: float = 0.1
    ber_min: float = 1e-9
    criterion: Criterion | str = Criterion.MEAN
    baseline: ToleranceBaseline | str = ToleranceBaseline.OWN

    def __post_init__(self):
        seeds = tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(int(s) for s in self.seeds)
        if not seeds:
            raise EdenConfigError(f"ToleranceCheck needs at least one seed, got {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        check_number("target_drop_pp", self.target_drop_pp, lo=0.0, hi=100.0, lo_open=True, hi_open=True)
        check_number("resolution_decades", self.resolution_decades, lo=0.0, lo_open=True)
        check_number("ber_min", self.ber_min, lo=0.0, hi=0.5, lo_open=True, hi_open=True)
        object.__setattr__(self, "criterion", Criterion.coerce(self.criterion, "criterion"))
        object.__setattr__(self, "baseline", ToleranceBaseline.coerce(self.baseline, "tolerance baseline"))

    def measure(self, model: nn.Module, loader: Iterable, config: RetrainConfig, *, model_id: str,
                data_id: str, device=None, progress: bool = False, reference: float | None = None) -> dict:
        """The coarse tolerance record of ``model`` for the config's error model, format and correction.

        ``reference``: the accuracy the target drop counts from (default: the
        model's own accuracy in the format without errors).
        """
        from eden.workflows.characterize import characterize

        select = None if config.select == ("*",) else list(config.select)
        return characterize(model, loader, config.error_model, format=config.format,
                            correction=config.correction, mode="coarse", target_drop_pp=self.target_drop_pp,
                            seeds=self.seeds, criterion=self.criterion,
                            resolution_decades=self.resolution_decades, ber_min=self.ber_min, select=select,
                            model_id=model_id, data_id=data_id, progress=progress, device=device,
                            reference_accuracy=reference, ecc=config.ecc)

    def to_dict(self) -> dict:
        d = _plain(dataclasses.asdict(self))
        d["seeds"] = list(cast(tuple[int, ...], self.seeds))  # a tuple after __post_init__
        return d


@dataclasses.dataclass(frozen=True)
class RetrainResult:
    """The retrained model (the one passed in, trained in place, in eval mode) and the report."""

    model: nn.Module
    report: dict


# ------------------------------------------------------------------ distributed
@dataclasses.dataclass(frozen=True)
class _Dist:
    rank: int
    world: int

    @classmethod
    def current(cls) -> _Dist:
        d = torch.distributed
        if d.is_available() and d.is_initialized():
            return cls(d.get_rank(), d.get_world_size())
        return cls(0, 1)

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def gather(self, obj) -> list:
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def _agree(dist: _Dist, error: Exception | None) -> None:
    """Raise on every rank when any rank failed a check (no rank hangs in a collective)."""
    errors = dist.gather(None if error is None else (type(error).__name__, str(error)))
    for e in errors:
        if e is not None:
            if error is not None:
                raise error
            # The other ranks raise the same class where it takes a plain message; any other
            # EdenError (a file error takes three arguments) as an EdenError with the same text.
            kinds = {k.__name__: k for k in (EdenConfigError, EdenDataError, EdenTypeError, OutputExistsError)}
            raise kinds.get(e[0], EdenError)(e[1])


# ------------------------------------------------------------------- checkpoint
def load_checkpoint(path: str | Path) -> dict:
    """Read and check a retraining checkpoint (format, version, required fields)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EdenFileNotFoundError(errno.ENOENT, "retraining checkpoint not found", str(path)) from None
    except Exception as exc:
        raise EdenFileError(path, "/", f"not a readable retraining checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise EdenFileError(path, "format", f"not a retraining checkpoint (should be {CHECKPOINT_FORMAT!r})")
    if state.get("format_version") != CHECKPOINT_VERSION:
        raise EdenFileError(path, "format_version", f"checkpoint format_version {state.get('format_version')!r} "
                            f"is not supported (this eden reads {CHECKPOINT_VERSION})")
    for key in ("model_id", "fingerprint", "config", "world_size", "epoch", "model", "optimizer", "rng",
                "history", "target_ber"):
        if key not in state:
            raise EdenFileError(path, key, "the checkpoint lacks this field")
    return state


def _check_checkpoint(state: dict, path: Path, *, model_id: str, fingerprint: str, config: dict,
                      world: int) -> None:
    if state["fingerprint"] != fingerprint or state["model_id"] != model_id:
        raise EdenDataError(f"checkpoint {path} belongs to another model: it was written for {state['model_id']} "
                         f"(weights fingerprint {state['fingerprint'][:12]}...), not {model_id} (fingerprint "
                         f"{fingerprint[:12]}...); give the model it was made from, or another --checkpoint")
    if state["config"] != config:
        diff = sorted(k for k in set(config) | set(state["config"]) if config.get(k) != state["config"].get(k))
        detail = ", ".join(f"{k}: {state['config'].get(k)!r} -> {config.get(k)!r}" for k in diff)
        raise EdenDataError(f"checkpoint {path} was made with other retraining settings ({detail}); resume with "
                         "the same settings, or start over with another checkpoint / --force")
    if state["world_size"] != world:
        raise EdenDataError(f"checkpoint {path} was made with {state['world_size']} process(es), this run has "
                         f"{world}; results are reproducible per world size, so resume with the same one")


def _check_before(record: dict, fingerprint: str, config: RetrainConfig, tolerance: ToleranceCheck | None) -> None:
    """A given tolerance-before record must describe this model, error model and measurement."""
    if tolerance is None:
        raise EdenConfigError("a tolerance record before retraining needs a ToleranceCheck to measure the one after")
    if not isinstance(record, dict) or record.get("format") != "eden-tolerance" or "coarse" not in record:
        raise EdenDataError("the tolerance record before retraining must be a coarse eden tolerance record "
                         "(characterize(..., mode='coarse'))")
    if record.get("baseline", {}).get("reference_source", "clean_in_format") != "clean_in_format":
        raise EdenDataError("the tolerance record before retraining must count the drop from the model's own clean "
                         "accuracy (it was characterized with a given reference_accuracy)")
    want = {"model fingerprint": (record["model"].get("fingerprint"), fingerprint),
            "error_model": (record.get("error_model"), config.error_model.to_spec()),
            "format": (record.get("format_spec"), str(config.format)),
            "correction": (record.get("correction"), config.correction),
            "target_drop_pp": (record.get("target_drop_pp"), float(tolerance.target_drop_pp)),
            "seeds": (tuple(record.get("seeds", ())), tolerance.seeds),
            "criterion": (record.get("criterion"), cast(Criterion, tolerance.criterion).value),
            "resolution_decades": (record.get("resolution_decades"), tolerance.resolution_decades),
            "ber_min": (record.get("ber_range", [None])[0], tolerance.ber_min),
            "select": (record.get("select", ["*"]), list(config.select)),
            "ecc": (record.get("ecc", "none"), config.ecc)}
    bad = [f"{k} {got!r} (expected {exp!r})" for k, (got, exp) in want.items() if got != exp]
    if bad:
        raise EdenDataError(f"the tolerance record before retraining does not match this run: {'; '.join(bad)}")


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------------- data
class _MapDataset(Protocol):
    """A map-style dataset: what :func:`_as_dataset` checks for."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


def _as_dataset(data) -> _MapDataset:
    if isinstance(data, torch.utils.data.DataLoader):
        data = data.dataset
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise EdenTypeError(f"training data must be a map-style Dataset (or a DataLoader over one), got "
                        f"{type(data).__name__}")
    if len(data) == 0:
        raise EdenDataError("the training dataset is empty")
    return data


def _epoch_batches(n: int, gen: torch.Generator, dist: _Dist, batch_size: int) -> list[list[int]]:
    """This rank's batches for one epoch: a shared permutation, padded, strided by rank."""
    perm = torch.randperm(n, generator=gen).tolist()
    per_rank = -(-n // dist.world)
    perm += perm[:per_rank * dist.world - n]
    mine = perm[dist.rank::dist.world]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


def _make_optimizer(config: RetrainConfig, params) -> torch.optim.Optimizer:
    if config.optimizer is Optimizer.ADAM:
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer is Optimizer.ADAMW:
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def _lr_at(config: RetrainConfig, epoch: int) -> float:
    if config.lr_schedule is LRSchedule.CONSTANT:
        return config.lr
    return config.lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, device) for o in obj)
    return obj


# ---------------------------------------------------------------------- retrain
@dataclasses.dataclass
class _Run:
    """What one retraining run works on; the same on every rank (rank-0-only values are broadcast)."""

    model: nn.Module
    dataset: _MapDataset
    eval_loader: Iterable
    config: RetrainConfig
    tolerance: ToleranceCheck | None
    dist: _Dist
    device: torch.device
    ckpt_path: Path | None
    config_dict: dict  # what a checkpoint must agree on to be resumed
    fp_before: str
    model_id: str
    data_id: str
    progress: bool


@dataclasses.dataclass
class _Progress:
    """The training position and everything a checkpoint restores."""

    target: float
    epoch: int
    history: list
    clean_before: float | None
    tol_before: dict | None
    curriculum: Curriculum
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator


def retrain(model: nn.Module, train_data, eval_loader: Iterable, config: RetrainConfig, *,
            tolerance: ToleranceCheck | None = ToleranceCheck(), checkpoint: str | Path | None = None,
            resume: bool = False, overwrite: bool = False, before: dict | None = None, model_id: str = "model",
            data_id: str = "data", train_data_id: str | None = None, progress: bool = False,
            device=None) -> RetrainResult:
    """Fine-tune ``model`` (in place) with errors in the forward pass, following a BER curriculum.

    Args:
        model: the trained network to retrain; its weights before retraining
            identify the run in the checkpoint.
        train_data: map-style Dataset of ``(input, target)`` samples (or a
            DataLoader over one: only its dataset is used; batching, shuffling
            and sharding are the seed tree's).
        eval_loader: DataLoader of ``(inputs, targets)`` for validation and the
            tolerance measurement.
        config: :class:`RetrainConfig`.
        tolerance: how to measure the tolerable BER before and after (coarse
            characterization with the config's error model, format, correction);
            None skips it (then ``target_ber`` must be absolute or ``"model"``).
        checkpoint: file written atomically after the tolerance measurement and
            every epoch (None: no checkpoint, no resume).
        resume: continue from ``checkpoint`` if it exists (it must come from the
            same model, settings and world size).
        overwrite: replace an existing ``checkpoint`` and start over (when not
            resuming).
        before: a coarse tolerance record of ``model`` (from
            :func:`eden.workflows.characterize.characterize`) made with the config's error
            model, format and correction and the ``tolerance`` settings, used as
            the tolerance before retraining instead of measuring it again.
        model_id, data_id, train_data_id: identifiers recorded in the outputs.
        progress: progress bars (rank 0) with loss, BER and validation accuracy.
        device: where to train (default: the model's device).

    Returns:
        :class:`RetrainResult` with the model (eval mode) and the report
        (see :func:`save_report`).

    Raises:
        EdenConfigError (a ValueError): bad settings, a schedule that never
            reaches its target, a selection that leaves no data type.
        EdenDataError (a ValueError): a checkpoint or tolerance record of another
            model / settings / world size.
        EdenTypeError (a TypeError): a model, config or tolerance of the wrong type.
        FileExistsError: ``checkpoint`` exists and neither ``resume`` nor ``overwrite``.
    """
    run = _setup(model, train_data, eval_loader, config, tolerance, checkpoint, before, model_id, data_id,
                 progress, device)
    state = _open_checkpoint(run, resume, overwrite)
    started = time.time()
    with torch.random.fork_rng(devices=[run.device] if run.device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "torch", run.dist.rank))
        shuffle = torch.Generator().manual_seed(derive_seed(config.seed, "shuffle"))
        prog = _start(run, shuffle, before) if state is None else _restore(run, shuffle, state)
        _train(run, prog)
    model.eval()
    train_seconds = time.time() - started
    clean_after, tol_after = _measure_after(run, prog.tol_before)
    report = _report(model_id, data_id, train_data_id or data_id, len(run.dataset), config, tolerance,
                     prog.curriculum, run.dist.world, run.fp_before, _fingerprint(model), prog.clean_before,
                     clean_after, prog.tol_before, tol_after, prog.history,
                     train_seconds) if run.dist.rank == 0 else None
    report = run.dist.broadcast(report)
    if run.dist.rank == 0:  # after the last collective: an error here cannot hang other ranks
        assert prog.clean_before is not None  # rank 0 measured it before training
        _warn_if_diverged(report, prog.clean_before)
    return RetrainResult(model, report)


def _fingerprint(model: nn.Module) -> str:
    from eden.nn.zoo import fingerprint

    return fingerprint(model)


def _setup(model, train_data, eval_loader, config, tolerance, checkpoint, before, model_id, data_id, progress,
           device) -> _Run:
    """Check the arguments, place the model, and fix what identifies the run (all before any work)."""
    if not isinstance(model, nn.Module):
        raise EdenTypeError(f"retrain needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, RetrainConfig):
        raise EdenTypeError(f"config must be a RetrainConfig, got {type(config).__name__}")
    if tolerance is not None and not isinstance(tolerance, ToleranceCheck):
        raise EdenTypeError(f"tolerance must be a ToleranceCheck or None, got {type(tolerance).__name__}")
    dataset = _as_dataset(train_data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    # What a checkpoint must agree on to be resumed: the settings and the tolerance measurement.
    # (the tolerance baseline only matters after training: a run may resume with another)
    config_dict = {**config.to_dict(), "tolerance": None if tolerance is None else
                   {k: v for k, v in tolerance.to_dict().items() if k != "baseline"}}
    fp_before = _fingerprint(model)
    if not EmulationPlan.uniform(None, select=config.select).resolve(model):  # bad select fails now
        raise EdenConfigError(f"select {list(config.select)} leaves no data type of the model to corrupt")
    if before is not None:
        _check_before(before, fp_before, config, tolerance)
    return _Run(model, dataset, eval_loader, config, tolerance, _Dist.current(), device,
                None if checkpoint is None else Path(checkpoint), config_dict, fp_before, model_id, data_id,
                progress)


def _open_checkpoint(run: _Run, resume: bool, overwrite: bool) -> dict | None:
    """The checkpoint to resume, or None to start; refuses a conflict (decided identically on every rank)."""
    path, state, error = run.ckpt_path, None, None
    try:
        if path is not None and path.exists():
            if resume:
                state = load_checkpoint(path)
                _check_checkpoint(state, path, model_id=run.model_id, fingerprint=run.fp_before,
                                  config=run.config_dict, world=run.dist.world)
            elif not overwrite:
                raise OutputExistsError(f"checkpoint {path} exists; resume it (resume=True, --resume) or "
                                        "start over (overwrite=True, --force)")
        elif path is not None and not path.parent.is_dir():
            raise EdenConfigError(f"directory for the checkpoint does not exist: {path.parent}")
    except (EdenError, ValueError, OSError) as exc:
        error = exc
    _agree(run.dist, error)
    return state


def _start(run: _Run, shuffle: torch.Generator, before: dict | None) -> _Progress:
    """A fresh run: accuracy and tolerance before (rank 0), the numeric target, a first checkpoint."""
    dist, tolerance = run.dist, run.tolerance
    clean_before = evaluate(run.model, run.eval_loader, device=run.device) if dist.rank == 0 else None
    tol_before = before
    if tolerance is not None and before is None and dist.rank == 0:
        tol_before = tolerance.measure(run.model, run.eval_loader, run.config, model_id=run.model_id,
                                       data_id=run.data_id, device=run.device, progress=run.progress)
    clean_before, tol_before = dist.broadcast((clean_before, tol_before))
    tolerable = None if tol_before is None else tol_before["coarse"]["tolerable_ber"]
    target, error = None, None
    try:
        if tolerance is not None and tolerance.baseline is ToleranceBaseline.ORIGINAL and not (
                0 < tol_before["baseline"]["clean_in_format"] <= 1):
            raise EdenDataError("tolerance baseline 'original': the model before retraining has no accuracy "
                                "to count the drop from")
        target = run.config.resolve_target(tolerable)
    except ValueError as exc:
        error = exc
    _agree(dist, error)
    assert target is not None  # resolved on every rank, else _agree raised
    prog = _Progress(target, 0, [], clean_before, tol_before, run.config.curriculum(target),
                     _make_optimizer(run.config, run.model.parameters()), shuffle)
    _save_checkpoint(run, prog)
    return prog


def _restore(run: _Run, shuffle: torch.Generator, state: dict) -> _Progress:
    """A resumed run: position, weights, optimizer and every RNG as the checkpoint left them."""
    target = float(state["target_ber"])
    prog = _Progress(target, int(state["epoch"]), list(state["history"]), state["clean_before"],
                     state["tolerance_before"], run.config.curriculum(target),
                     _make_optimizer(run.config, run.model.parameters()), shuffle)
    run.model.load_state_dict(state["model"])
    prog.optimizer.load_state_dict(state["optimizer"])
    shuffle.set_state(state["rng"]["shuffle"])
    _set_rng_state(state["rng"]["ranks"][run.dist.rank], run.device)
    return prog


def _save_checkpoint(run: _Run, prog: _Progress) -> None:
    """Write the checkpoint of ``prog.epoch`` finished epochs atomically (rank 0; every rank's RNG)."""
    ranks = run.dist.gather(_rng_state(run.device))
    if run.dist.rank == 0 and run.ckpt_path is not None:
        blob = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                "eden_version": __version__, "model_id": run.model_id, "fingerprint": run.fp_before,
                "config": run.config_dict, "world_size": run.dist.world, "target_ber": prog.target,
                "epoch": prog.epoch, "model": run.model.state_dict(), "optimizer": prog.optimizer.state_dict(),
                "rng": {"shuffle": prog.shuffle.get_state(), "ranks": ranks}, "history": prog.history,
                "clean_before": prog.clean_before, "tolerance_before": prog.tol_before}
        write_with(run.ckpt_path, lambda tmp: _torch_save(blob, tmp), overwrite=True, what="checkpoint")
    run.dist.barrier()


def _train(run: _Run, prog: _Progress) -> None:
    """The remaining epochs, each followed by a checkpoint; DDP when the world has several ranks."""
    model, config = run.model, run.config
    net = model
    if run.dist.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[run.device] if run.device.type == "cuda"
                                                  else None)
    bar = None
    if run.progress and run.dist.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.epochs, initial=prog.epoch, desc="retrain", unit="epoch")
    try:
        while prog.epoch < config.epochs:
            record = _train_epoch(net, model, run.dataset, run.eval_loader, config, prog.curriculum,
                                  prog.optimizer, prog.shuffle, run.dist, prog.epoch, run.device, bar)
            prog.history.append(record)
            prog.epoch += 1
            _save_checkpoint(run, prog)
            if bar is not None:
                bar.update(1)
                loss = "n/a" if record["loss"] is None else f"{record['loss']:.3f}"
                bar.set_postfix_str(f"loss {loss} BER {record['ber']:.2e} "
                                    f"val {record['val_clean'] * 100:.1f}% "
                                    f"(at BER {record['val_at_ber'] * 100:.1f}%)")
    finally:
        if bar is not None:
            bar.close()
        if net is not model:
            # Drop the DDP wrapper now: its reducer holds the process group and gloo work
            # objects, whose threads aborted the process ("terminate called without an
            # active exception") when they were left to interpreter shutdown.
            del net
            gc.collect()


def _measure_after(run: _Run, tol_before: dict | None) -> tuple[float | None, dict | None]:
    """Clean accuracy and tolerance of the retrained model (rank 0; None on the other ranks)."""
    if run.dist.rank != 0:
        return None, None
    clean_after = evaluate(run.model, run.eval_loader, device=run.device)
    tol_after = None
    if run.tolerance is not None:
        reference = None
        if run.tolerance.baseline is ToleranceBaseline.ORIGINAL and tol_before is not None:
            reference = tol_before["baseline"]["clean_in_format"]
        tol_after = run.tolerance.measure(run.model, run.eval_loader, run.config, model_id=run.model_id,
                                          data_id=run.data_id, device=run.device, progress=run.progress,
                                          reference=reference)
    return clean_after, tol_after


def _warn_if_diverged(report: dict, clean_before: float) -> None:
    diverged = report["diverged_epochs"]
    if not diverged:
        return
    h = report["history"][diverged[0] - 1]
    loss = "n/a" if h["loss"] is None else f"{h['loss']:.3g}"
    warnings.warn(
        f"retraining diverged: after epoch {diverged[0]} (BER {h['ber']:.3g}, loss {loss}) the clean "
        f"validation accuracy was {h['val_clean'] * 100:.1f}%, more than {DIVERGED_PP:g} points below the "
        f"{clean_before * 100:.1f}% before retraining ({len(diverged)} such epoch(s)); a lower --lr, a "
        f"longer ramp or a lower target usually avoid this", RetrainDivergedWarning, stacklevel=3)


def _train_epoch(net, model, dataset, eval_loader, config: RetrainConfig, curriculum: Curriculum,
                 optimizer, shuffle, dist: _Dist, epoch: int, device, bar) -> dict:
    """One epoch under emulation at the curriculum's BER; returns its history record."""
    started = time.time()
    ber = curriculum.ber(epoch)
    plan = config.plan(ber)
    lr = _lr_at(config, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr
    batches = _epoch_batches(len(dataset), shuffle, dist, config.batch_size)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches)
    inner = None
    if bar is not None:
        from tqdm.auto import tqdm

        inner = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False)
    loss_sum, samples, finite, skipped, flipped, bits = 0.0, 0, 0, 0, 0, 0
    model.train()
    if config.freeze_norm_stats:
        for mod in model.modules():
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                mod.eval()
    try:
        for b, batch in enumerate(loader):
            if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                raise EdenDataError(f"training samples must be (input, target) pairs, got {type(batch).__name__}")
            x, y = _to(batch[0], device), _to(batch[1], device)
            optimizer.zero_grad(set_to_none=True)
            with emulate(model, plan, seed=derive_seed(config.seed, "train", epoch, dist.rank, b)) as emu:
                loss = task_loss(net(x), y)
                loss.backward()
            # The emulation put the clean weights back: the step updates them (straight-through).
            for s in emu.stats.values():
                flipped += s.flipped_bits
                bits += s.bits
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            if grads and torch.isfinite(torch.stack([g.detach().abs().sum() for g in grads]).sum()):
                if config.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad_norm)
                optimizer.step()
            else:  # the same on every rank: DDP averaged the gradients
                skipped += 1
            n = int(y.shape[0])
            samples += n
            value = float(loss.detach())
            if math.isfinite(value):
                loss_sum += value * n
                finite += n
            if inner is not None:
                inner.update(1)
                inner.set_postfix_str(f"loss {loss_sum / max(1, finite):.3f} BER {ber:.2e}")
    finally:
        if inner is not None:
            inner.close()
    model.eval()
    ranks = dist.gather({"rank": dist.rank, "loss_sum": loss_sum, "samples": samples, "finite": finite,
                         "skipped_steps": skipped, "flipped_bits": flipped, "bits": bits})
    n_finite = sum(r["finite"] for r in ranks)
    record = {"epoch": epoch, "ber": ber, "lr": lr,
              # mean loss over the samples of batches with a finite loss (None: none had one)
              "loss": math.fsum(r["loss_sum"] for r in ranks) / n_finite if n_finite else None,
              "nonfinite_loss_samples": sum(r["samples"] - r["finite"] for r in ranks),
              "skipped_steps": skipped,
              "ranks": [{k: r[k] for k in ("rank", "samples", "flipped_bits", "bits")} for r in ranks]}
    if dist.rank == 0:
        record["val_clean"] = evaluate(model, eval_loader, device=device)
        with emulate(model, plan, seed=derive_seed(config.seed, "val", epoch)):
            record["val_at_ber"] = evaluate(model, eval_loader, device=device)
    record = dist.broadcast(record)
    record["seconds"] = time.time() - started
    return record


# ----------------------------------------------------------------------- report
#: An epoch whose clean validation accuracy is this many points below the accuracy
#: before retraining counts as diverged (warned once, listed in the report).
DIVERGED_PP = 20.0


class RetrainDivergedWarning(UserWarning):
    """Retraining destroyed the model's clean accuracy (see ``DIVERGED_PP``)."""


def _diverged_epochs(history, clean_before) -> list[int]:
    """Epochs (1-based) whose clean validation accuracy fell DIVERGED_PP below clean_before."""
    if clean_before is None:
        return []
    return [h["epoch"] + 1 for h in history
            if h.get("val_clean") is not None and (clean_before - h["val_clean"]) * 100 > DIVERGED_PP]


def _report(model_id, data_id, train_data_id, n_train, config, tolerance, curriculum, world, fp_before, fp_after,
            clean_before, clean_after, tol_before, tol_after, history, seconds) -> dict:
    def tol(rec):
        if rec is None:
            return None
        return {"tolerable_ber": rec["coarse"]["tolerable_ber"], "accuracy": rec["coarse"]["accuracy"],
                "bracket": rec["coarse"]["bracket"], "baseline": rec["baseline"], "points": rec["coarse"]["points"],
                "evaluations": rec["evaluations"]}

    before, after = tol(tol_before), tol(tol_after)
    gain = None
    if before and after and before["tolerable_ber"] > 0:
        gain = after["tolerable_ber"] / before["tolerable_ber"]
    drop_pp = (clean_before - clean_after) * 100
    report = {
        "format": REPORT_FORMAT, "format_version": REPORT_VERSION, "eden_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"id": model_id, "fingerprint_before": fp_before, "fingerprint_after": fp_after},
        "data": {"eval": data_id, "train": train_data_id, "train_samples": n_train},
        "config": config.to_dict(), "world_size": world,
        "curriculum": {**curriculum.to_dict(), "bers": curriculum.bers()},
        "clean_accuracy": {"before": clean_before, "after": clean_after, "drop_pp": drop_pp},
        "tolerance": None if tolerance is None else {
            "settings": tolerance.to_dict(), "error_model": config.error_model.to_spec(),
            "format": str(config.format), "correction": config.correction,
            **({"ecc": config.ecc} if config.ecc != "none" else {}),  # reports without ECC keep their keys
            "before": before, "after": after, "gain": gain},
        "history": history, "diverged_epochs": _diverged_epochs(history, clean_before),
        "train_seconds": seconds,
    }
    if tolerance is not None:
        report["checks"] = {"clean_drop_within_target": drop_pp <= tolerance.target_drop_pp + 1e-9,
                            "gain_at_least_5x": gain is not None and gain >= 5,
                            "gain_at_least_10x": gain is not None and gain >= 10}
    return report


def save_weights(model: nn.Module, path: str | Path, *, overwrite: bool = False) -> None:
    """Write the model's state dict (loadable with ``--weights``) atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    write_with(path, lambda tmp: _torch_save(state, tmp), overwrite=overwrite, what="weights file")


def _torch_save(obj, tmp: Path) -> None:
    # Through a file object: the archive is then named "archive", not after the temporary file,
    # so equal contents give equal bytes.
    with open(tmp, "xb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())


def save_report(report: dict, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a retraining report as JSON atomically (refuses to overwrite by default)."""
    write_json(path, report, overwrite=overwrite, what="retraining report")


def retrain_table(report: dict) -> str:
    """Readable summary of a retraining report."""
    cfg, cur = report["config"], report["curriculum"]
    lines = [f"model {report['model']['id']}  error model {cfg['error_model']}  format {cfg['format']}  "
             f"correction {cfg['correction']}" + (f"  ECC {cfg['ecc']} (BERs are raw, before ECC)"
                                                  if cfg.get("ecc", "none") != "none" else ""),
             f"curriculum {cur['schedule']} to BER {cur['target_ber']:.3g} over {cur['epochs']} epochs "
             f"(ramp {cur['ramp_epochs']}), {cfg['optimizer']} lr {cfg['lr']:g} ({cfg['lr_schedule']}), "
             f"batch {cfg['batch_size']} x {report['world_size']} process(es), seed {cfg['seed']}",
             "",
             f"{'epoch':>5s} {'BER':>9s} {'loss':>8s} {'val clean':>10s} {'val at BER':>11s}"]
    for h in report["history"]:
        loss = "n/a" if h["loss"] is None else f"{h['loss']:.4f}"
        lines.append(f"{h['epoch'] + 1:5d} {h['ber']:9.2e} {loss:>8s} {h['val_clean'] * 100:9.2f}% "
                     f"{h['val_at_ber'] * 100:10.2f}%")
    c = report["clean_accuracy"]
    lines += ["", f"clean accuracy: {c['before'] * 100:.2f}% before, {c['after'] * 100:.2f}% after "
                  f"({-c['drop_pp']:+.2f} pp)"]
    t = report.get("tolerance")
    if t:
        b, a = t["before"]["tolerable_ber"], t["after"]["tolerable_ber"]
        gain = f"{t['gain']:.1f}x" if t["gain"] is not None else "n/a"
        lines.append(f"tolerable BER ({t['settings']['target_drop_pp']:g} pp drop, {len(t['settings']['seeds'])} "
                     f"seeds): {b:.3g} before, {a:.3g} after: {gain}")
    diverged = report.get("diverged_epochs")
    if diverged:
        lines.append(f"warning: diverged: clean accuracy more than {DIVERGED_PP:g} points below the start after "
                     f"epoch(s) {', '.join(map(str, diverged))}")
    return "\n".join(lines)
