"""Train eden's bundled models on the bundled digits data and store their weights.

    python scripts/train_zoo.py                 # all models
    python scripts/train_zoo.py digits-lenet    # one
    python scripts/train_zoo.py --extract-digits /path/to/scikit_learn-*.whl

Deterministic (fixed seeds, single thread). Prints the clean test accuracy.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
import zipfile

import numpy as np
import torch

from eden.core.io import write_with
from eden.nn import zoo
from eden.nn.evaluate import evaluate


def extract_digits(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read("sklearn/datasets/data/digits.csv.gz")
    d = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",")
    def write(tmp):
        with open(tmp, "xb") as fh:
            np.savez_compressed(fh, images=d[:, :64].astype(np.uint8).reshape(-1, 8, 8),
                                labels=d[:, 64].astype(np.uint8))
    write_with(zoo.ASSETS / "digits.npz", write, overwrite=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=[n for n, e in zoo.MODELS.items() if e.data == "digits"])
    ap.add_argument("--extract-digits", metavar="SKLEARN_WHEEL")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.extract_digits:
        extract_digits(args.extract_digits)
    torch.set_num_threads(1)
    for name in args.models:
        entry = zoo.MODELS[name]
        torch.manual_seed(args.seed)
        model = entry.factory()
        t0 = time.perf_counter()
        zoo.train(model, zoo.digits_loader("train", batch_size=64, shuffle=True, seed=args.seed),
                  epochs=entry.epochs, lr=entry.lr, seed=args.seed)
        dt = time.perf_counter() - t0
        acc = evaluate(model, zoo.digits_loader("test"))
        path = zoo.weights_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_with(path, lambda tmp, m=model: torch.save(m.state_dict(), tmp), overwrite=True)
        print(f"{name}: trained {entry.epochs} epochs in {dt:.1f} s, clean test top-1 {acc * 100:.2f}% -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
