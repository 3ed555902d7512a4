"""Evaluation harness: a metric over a DataLoader, and mean +- 95% CI over seeds.

A metric is a callable ``metric(outputs, targets) -> (score_sum, count)``;
the result is ``sum(score_sum) / sum(count)`` over all batches. ``top1`` (the
default) counts correct arg-max predictions. Evaluation runs under
``torch.inference_mode`` with the model in eval mode (restored afterwards).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence

import torch

Metric = Callable[[torch.Tensor, torch.Tensor], tuple[float, int]]


def top1(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    """Number of correct arg-max predictions, and the number of samples."""
    return float((outputs.argmax(dim=-1) == targets).sum()), int(targets.numel())


def top5(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[float, int]:
    k = min(5, outputs.shape[-1])
    hit = (outputs.topk(k, dim=-1).indices == targets.unsqueeze(-1)).any(dim=-1)
    return float(hit.sum()), int(targets.numel())


METRICS: dict[str, Metric] = {"top1": top1, "top5": top5}


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
        ValueError: the loader yields no batches, or a batch is not (inputs, targets).
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
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
                    raise ValueError("each batch must be an (inputs, targets) pair, got "
                                     f"{type(batch).__name__}")
                inputs, targets = _to(batch[0], device), _to(batch[1], device)
                s, c = metric(model(inputs), targets)
                total += float(s)
                count += int(c)
                batches += 1
                if max_batches is not None and batches >= max_batches:
                    break
    finally:
        model.train(was_training)
    if batches == 0:
        raise ValueError("the dataset yielded no batches; nothing to evaluate")
    if count == 0:
        raise ValueError("the metric counted no samples")
    return total / count


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
        raise ValueError("estimate needs at least one value")
    n = len(vals)
    mean = math.fsum(vals) / n
    if n == 1:
        return Estimate(mean, mean, mean, vals)
    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * math.sqrt(var / n)
    return Estimate(mean, mean - half, mean + half, vals)
