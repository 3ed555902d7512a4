"""Evaluation harness: a metric over a DataLoader, and mean +- 95% CI over seeds.

A metric is a callable ``metric(outputs, targets) -> (score_sum, count)``;
the result is ``sum(score_sum) / sum(count)`` over all batches. ``top1`` (the
default) counts correct arg-max predictions. Evaluation runs under
``torch.inference_mode`` with the model in eval mode (restored afterwards).

A model that fails on the first batch (shapes, dtypes: the model and the data do not belong
together) raises :class:`eden.errors.EdenDataError` naming the model, the data, the input shape
and the module that failed; :func:`model_failure` builds that error.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence

import torch

from eden.core.validate import unknown_name
from eden.errors import EdenConfigError, EdenDataError, EdenError

# Where torch.nn.Module.__call__ runs hooks and dispatches to forward (not a module's own code).
_MODULE_CALL_FILE = torch.nn.modules.module.__file__

Metric = Callable[[torch.Tensor, torch.Tensor], tuple[float, int]]


def top1(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Number of correct arg-max predictions, and the number of samples."""
    return float((outputs.argmax(dim=-1) == targets).sum()), int(targets.numel())


def top5(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    k = min(5, outputs.shape[-1])
    hit = (outputs.topk(k, dim=-1).indices == targets.unsqueeze(-1)).any(dim=-1)
    return float(hit.sum()), int(targets.numel())


def neg_nll(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Minus the summed negative log-likelihood (nats) of the targets, and their number.

    Its mean over a data set is ``-ln(perplexity)`` (higher is better, like an accuracy): for a
    language model, logits ``[B, T, V]`` and next tokens ``[B, T]``; for a classifier, logits
    ``[B, C]`` and labels ``[B]``.
    """
    logits = outputs.logits if hasattr(outputs, "logits") else outputs
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                            reduction="sum")
    return -float(nll), int(targets.numel())


METRICS: dict[str, Metric] = {"top1": top1, "top5": top5, "neg_nll": neg_nll}
"""``top1`` on LM logits ``[B, T, V]`` is the next-token accuracy; ``neg_nll`` is ``-ln(perplexity)``."""


def _describe(x, depth: int = 0) -> str:
    """A short description of a model input: dtype and shape of tensors, container types."""
    if isinstance(x, torch.Tensor):
        return f"{str(x.dtype).removeprefix('torch.')} tensor of shape {tuple(x.shape)}"
    if isinstance(x, (list, tuple)) and depth < 2:
        inner = ", ".join(_describe(v, depth + 1) for v in x[:4]) + (", ..." if len(x) > 4 else "")
        return f"{type(x).__name__} of [{inner}]"
    if isinstance(x, dict) and depth < 2:
        inner = ", ".join(f"{k!r}: {_describe(v, depth + 1)}" for k, v in list(x.items())[:4])
        return f"dict of {{{inner}{', ...' if len(x) > 4 else ''}}}"
    return type(x).__name__


def model_failure(model: torch.nn.Module, inputs, exc: BaseException, data: str) -> EdenDataError | None:
    """The EdenDataError for ``model`` failing on ``inputs``, or None when ``exc`` is not such a failure.

    A failure is an exception raised in the code of one of the model's modules (its ``forward`` or a
    helper it calls: a shape or dtype mismatch surfaces there); the failing module is the innermost
    one on the traceback, found after the fact (no hooks, nothing paid when the model runs). An
    exception raised in torch's module call machinery, i.e. by a forward hook (eden's emulation
    hooks among them), or outside the model, is not one: None, and the caller re-raises it.

    Args:
        model: the model that was called.
        inputs: what it was called with (described by dtype and shape).
        exc: the exception the call raised.
        data: what the inputs are, e.g. ``"the first batch of the data (DataLoader)"``.
    """
    if isinstance(exc, EdenError):
        return None
    names = {id(m): name for name, m in model.named_modules()}
    innermost = None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            innermost = (names[id(owner)], owner, tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if innermost is None or innermost[2] == _MODULE_CALL_FILE:
        return None
    name, module, _ = innermost
    where = f"in module {name!r} ({type(module).__name__})" if name else "in its forward"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return EdenDataError(f"model {type(model).__name__} fails on {data}, a {_describe(inputs)}, {where}: "
                         f"{first} (does the model expect other data?)")


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def evaluate(model: torch.nn.Module, loader: Iterable, metric: Metric | str = "top1", *,
             device: torch.device | str | None = None, progress: bool = False, desc: str = "eval",
             max_batches: int | None = None) -> float:
    """Metric of ``model`` over ``loader`` (e.g. top-1 accuracy in [0, 1]).

    Args:
        model: the network; put in eval mode for the call and restored after.
        loader: iterable of ``(inputs, targets)`` batches.
        metric: a name from METRICS or a callable (see module docstring).
        device: where to run; default: the device of the model's first parameter.
        progress: show a tqdm progress bar.
        max_batches: stop after this many batches.

    Raises:
        EdenConfigError: an unknown metric name.
        EdenDataError: the loader yields no batches, a batch is not (inputs, targets), the
            model fails on the first batch (see :func:`model_failure`), or the metric counts
            no samples.
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise unknown_name("metric", metric, METRICS)
        metric = METRICS[metric]
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    total, count, batches = 0.0, 0, 0
    it = loader
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(loader, desc=desc, leave=False, unit="batch")
    try:
        with torch.inference_mode():
            for batch in it:
                if not isinstance(batch, (list, tuple)) or len(batch) < 2:
                    raise EdenDataError("each batch must be an (inputs, targets) pair, got "
                                        f"{type(batch).__name__}")
                inputs, targets = _to(batch[0], device), _to(batch[1], device)
                outputs = _first_forward(model, inputs, loader) if batches == 0 else model(inputs)
                s, c = metric(outputs, targets)
                total += float(s)
                count += int(c)
                batches += 1
                if max_batches is not None and batches >= max_batches:
                    break
    finally:
        model.train(was_training)
    if batches == 0:
        raise EdenDataError("the dataset yielded no batches; nothing to evaluate")
    if count == 0:
        raise EdenDataError("the metric counted no samples")
    return total / count


def _first_forward(model: torch.nn.Module, inputs, loader):
    """``model(inputs)`` for the first batch: a model that does not fit the data raises EdenDataError."""
    try:
        return model(inputs)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        mismatch = model_failure(model, inputs, exc, f"the first batch of the data ({type(loader).__name__})")
        if mismatch is None:
            raise
        raise mismatch from exc


@dataclasses.dataclass(frozen=True)
class Estimate:
    """Mean of repeated measurements with a two-sided 95% Student-t confidence interval."""

    mean: float
    ci_low: float
    ci_high: float
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci95": [self.ci_low, self.ci_high], "values": list(self.values)}

    def __str__(self) -> str:
        return f"{self.mean * 100:.2f}% ± {self.half_width * 100:.2f}"


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student-t CI of ``values`` (a zero-width CI for one value or no spread)."""
    vals = tuple(float(v) for v in values)
    if not vals:
        raise EdenConfigError("estimate needs at least one value")
    n = len(vals)
    mean = math.fsum(vals) / n
    if n == 1:
        return Estimate(mean, mean, mean, vals)
    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, vals)
