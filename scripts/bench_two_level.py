#!/usr/bin/env python
"""Benchmark: cost of two-level persistence against access and fixed, measured side by side.

One fp32 tensor of 2^--log2-elements elements, em0 at each --p, a prepared ``Injector`` (numba CPU
backend) called with a new access per repeat and undone; each figure is the median of --repeats
runs divided by the median time of ``tensor.clone()`` timed next to it. Two-level persistence draws
the weak map (every rate / q) and keeps each flipped weak cell with q on the host from the log
(``eden/engine/twolevel.py``), so its cost grows like the weak map's flips, O(errors / q).

    python scripts/bench_two_level.py [--log2-elements 24] [--repeats 5] [--p 1e-4 1e-3]
                                      [--q 1 0.5 0.1 0.05]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eden import ErrorModel  # noqa: E402
from eden.engine.ops import Injector  # noqa: E402
from eden.formats import format_of  # noqa: E402


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log2-elements", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--p", type=float, nargs="+", default=[1e-4, 1e-3])
    ap.add_argument("--q", type=float, nargs="+", default=[1.0, 0.5, 0.1, 0.05])
    args = ap.parse_args(argv)
    x = torch.randn(1 << args.log2_elements)
    words = x.numpy().view(np.uint32)
    print(f"fp32 tensor of 2^{args.log2_elements} elements; inject+undo / clone, median of {args.repeats}")
    print(f"{'model':<48}{'ratio':>8}{'bits/access':>14}")
    for p in args.p:
        specs = [f"em0:p={p!r}", f"em0:p={p!r};persistence=fixed"]
        specs += [f"em0:p={p!r};persistence=two_level,q={q!r}" for q in args.q if q >= p]
        for spec in specs:
            inj = Injector(ErrorModel.from_spec(spec), format_of(x.dtype), x.numel() * 4, seed=1, base_address=0,
                           backend="cpu")
            inj(x, words, 0).undo()  # compile / warm up
            counter = iter(range(1, 10**9))
            bits = []

            def run(inj=inj, counter=counter, bits=bits):
                log = inj(x, words, next(counter))
                bits.append(log.n_bits)
                log.undo()

            t_inj = _median(run, args.repeats)
            t_clone = _median(lambda: x.clone(), args.repeats)
            print(f"{spec:<48}{t_inj / t_clone:>8.2f}{statistics.median(bits):>14.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
