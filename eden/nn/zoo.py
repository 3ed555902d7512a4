"""eden's bundled models and data: small, real, and available offline.

The default workload is a LeNet-style CNN on the 8x8 handwritten digits of
``eden/assets/digits.npz`` (1,797 images, UCI; see ``eden/assets/README.md``).
A second architecture, a small ResNet with batch norm, uses the same data.
Trained weights ship in ``eden/assets/zoo/``; ``scripts/train_zoo.py`` rebuilds
them deterministically in well under a minute on 2 CPU cores.

Example:
    >>> model = eden.zoo.load_model("digits-lenet")
    >>> loader = eden.zoo.digits_loader("test", batch_size=128)
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eden.core.validate import Mode, unknown_name
from eden.errors import EdenConfigError, EdenDataError, EdenFileError, EdenFileNotFoundError, EdenTypeError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SPLIT_SEED = 20191012  # EDEN's MICRO 2019 date; fixes the train/test split forever
TEST_FRACTION = 0.2


class Split(Mode):
    """A split of the bundled data."""

    TRAIN = "train"
    TEST = "test"


class WeightsFileError(EdenFileError):
    """A weights file torch cannot read as a state dict."""

    kind = "weights"


# ------------------------------------------------------------------------- data
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [1797, 1, 8, 8] in [0, 1], labels int64 [1797])."""
    with np.load(ASSETS / "digits.npz") as z:
        images, labels = z["images"], z["labels"]
    return (images.astype(np.float32) / 16.0)[:, None], labels.astype(np.int64)


def digits_split(split: Split | str) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed ``"train"`` (1,438) or ``"test"`` (359) split, stratified by nothing, seeded."""
    split = Split.coerce(split, "digits split")
    x, y = digits_arrays()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test = int(round(TEST_FRACTION * len(y)))
    idx = order[:n_test] if split is Split.TEST else order[n_test:]
    return torch.from_numpy(x[idx]), torch.from_numpy(y[idx])


def digits_loader(split: Split | str = "test", batch_size: int = 128, shuffle: bool = False,
                  seed: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over a digits split (shuffling, if asked, is seeded)."""
    x, y = digits_split(split)
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size,
                                       shuffle=shuffle, generator=gen)


# ----------------------------------------------------------------------- models
class DigitsLeNet(nn.Module):
    """LeNet-style CNN for 1x8x8 digits: 3 conv + 2 fully connected layers (~40k weights)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """A small ResNet (stem + 3 basic blocks, batch norm) for 1x8x8 digits."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.layer1 = _BasicBlock(width, width, 1)
        self.layer2 = _BasicBlock(width, 2 * width, 2)
        self.layer3 = _BasicBlock(2 * width, 4 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str
    factory: Callable[[], nn.Module]
    weights: str
    data: str
    epochs: int
    lr: float
    description: str


def _tiny_lm() -> nn.Module:
    from eden.nn.lm import TinyLM

    return TinyLM()


def _pydoc_topics(split: Split | str = "test", batch_size: int = 64) -> torch.utils.data.DataLoader:
    from eden.nn.lm import pydoc_topics_loader

    return pydoc_topics_loader(Split.coerce(split, "pydoc-topics split").value, batch_size=batch_size)


MODELS: dict[str, ZooEntry] = {e.name: e for e in (
    ZooEntry("digits-lenet", DigitsLeNet, "digits-lenet.pt", "digits", 40, 3e-3,
             "LeNet-style CNN on the bundled 8x8 digits (default)"),
    ZooEntry("digits-resnet", DigitsResNet, "digits-resnet.pt", "digits", 30, 3e-3,
             "small ResNet with batch norm on the bundled 8x8 digits"),
    ZooEntry("tiny-lm", _tiny_lm, "tiny-lm.pt", "pydoc-topics", 0, 3e-3,
             "byte-level 2-layer transformer LM on Python's help topics (scripts/train_tiny_lm.py)"),
)}
DATASETS: dict[str, Callable] = {"digits": digits_loader, "pydoc-topics": _pydoc_topics}


def weights_path(name: str) -> Path:
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    return ASSETS / "zoo" / MODELS[name].weights


def load_model(name: str = "digits-lenet", weights: str | Path | None = None) -> nn.Module:
    """A bundled model with its shipped trained weights (or ``weights``), in eval mode.

    Raises:
        EdenConfigError: not a bundled model (lists them, with close matches).
        EdenFileNotFoundError: no weights file (the shipped one: how to rebuild it).
        WeightsFileError, EdenDataError: see :func:`load_weights`.
    """
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    model = MODELS[name].factory()
    path = Path(weights) if weights is not None else weights_path(name)
    if not path.exists():
        raise EdenFileNotFoundError(errno.ENOENT, f"weights for {name} not found; rebuild them with "
                                    f"'python scripts/train_zoo.py {name}'", str(path))
    load_weights(model, path)
    return model.eval()


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a state dict (or a checkpoint with a 'model' entry) into ``model``, strictly.

    Raises:
        EdenFileNotFoundError: no such file.
        WeightsFileError: torch cannot read it (permissions, not a weights-only torch file).
        EdenDataError: the state dict does not fit the model (missing, unexpected or
            differently shaped entries).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise EdenFileNotFoundError(errno.ENOENT, "no such weights file", str(path)) from None
    except Exception as exc:  # torch.load raises many kinds (pickle, zip, OS, unsafe globals)
        raise WeightsFileError(path, "/", f"cannot be read by torch.load(weights_only=True): {exc}") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise EdenDataError(f"weights file {path} does not fit {type(model).__name__}: {first}") from None


def train(model: nn.Module, loader, *, epochs: int, lr: float, seed: int = 0) -> nn.Module:
    """Plain Adam + cross-entropy training with a cosine schedule (deterministic on CPU)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        sched.step()
    return model.eval()


def fingerprint(model: nn.Module) -> str:
    """sha256 over parameter/buffer names, shapes, dtypes and bytes: identifies a trained model."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ------------------------------------------------------------- user factories
def resolve_factory(spec: str, kind: str):
    """Import ``package.module:attr`` and return the attribute (a callable).

    Raises:
        EdenConfigError: a malformed spec, a module that does not import, no such attribute.
        EdenTypeError: the attribute is not callable.
    """
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise EdenConfigError(f"{kind} factory must look like 'package.module:function', got {spec!r}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise EdenConfigError(f"cannot import {mod_name!r} for {kind} factory {spec!r}: {exc}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise EdenConfigError(f"module {mod_name!r} has no attribute {attr!r} ({kind} factory {spec!r})") from None
    if not callable(obj):
        raise EdenTypeError(f"{kind} factory {spec!r} is not callable")
    return obj


def build_model(spec: str = "digits-lenet", weights: str | Path | None = None) -> tuple[nn.Module, str]:
    """(model in eval mode, model id) from a bundled name, ``hf:DIR`` (a local Hugging Face causal LM,
    :func:`eden.nn.lm.load_hf`), ``torchvision:NAME`` or ``pkg.mod:factory``.

    Raises:
        EdenConfigError: an unknown name (with close matches) or a bad factory spec.
        EdenTypeError: the factory returned no ``torch.nn.Module``.
        EdenFileError, EdenDataError: ``weights`` unreadable or not fitting (:func:`load_weights`).
    """
    if spec in MODELS:
        return load_model(spec, weights), spec
    if spec.startswith("hf:"):
        from eden.nn.lm import load_hf

        model = load_hf(spec[3:])
        if weights is not None:
            load_weights(model, weights)
        return model.eval(), spec
    if spec.startswith("torchvision:"):
        try:
            import torchvision.models as tvm
        except ImportError:
            raise EdenConfigError(f"{spec!r} needs torchvision (pip install torchvision)") from None
        name = spec.split(":", 1)[1]
        try:
            model = tvm.get_model(name, weights=None)
        except (ValueError, KeyError):
            raise unknown_name("torchvision model", name, tvm.list_models()) from None
    elif ":" in spec:
        model = resolve_factory(spec, "model")()
    else:
        raise unknown_name("model", spec, MODELS)
    if not isinstance(model, nn.Module):
        raise EdenTypeError(f"model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        load_weights(model, weights)
    return model.eval(), spec


def build_data(spec: str = "digits", split: Split | str = "test", batch_size: int = 128,
               model: nn.Module | None = None):
    """A DataLoader (any iterable of (inputs, targets) batches) from a bundled name, a factory or
    ``text:FILE[:N]`` (windows of a local text file, tokenized by ``model``: :func:`eden.nn.lm.text_loader`;
    every split is the whole file).

    Raises:
        EdenConfigError: an unknown name (with close matches) or a bad factory spec; ``text:`` without a model.
        EdenTypeError: the factory returned something that is not iterable.
        EdenFileError, EdenFileNotFoundError, EdenDataError: a text file that is missing, not UTF-8 or
            shorter than one context.
    """
    if spec.startswith("text:"):
        if model is None:
            raise EdenConfigError(f"data {spec!r} needs the model whose tokenizer reads it")
        from eden.nn.lm import text_loader

        return text_loader(spec, model, batch_size=batch_size)
    if spec in DATASETS:
        return DATASETS[spec](split=split, batch_size=batch_size)
    if ":" in spec:
        loader = resolve_factory(spec, "data")()
    else:
        raise unknown_name("dataset", spec, DATASETS)
    try:
        iter(loader)
    except TypeError:
        raise EdenTypeError(f"data factory {spec!r} returned {type(loader).__name__}, which is not iterable "
                            "(expected a DataLoader of (inputs, targets) batches)") from None
    return loader
