"""Benchmark: inject+undo time / tensor.clone() time, measured side by side.

On a 2^26-element fp32 tensor (256 MiB, 2^31 bits) for em0..em3 at p = 1e-6,
1e-4, 1e-2, and for a naive dense per-bit Bernoulli mask (torch.rand per bit,
in chunks). Each figure is the median of --repeats runs; clone() is re-timed
next to every configuration so machine noise hits both alike.

    python scripts/bench_inject.py [--log2-elements 26] [--repeats 5] [--device cpu|cuda]

Targets (CPU): <= 0.05 at 1e-6, <= 0.1 at 1e-4, <= 3 at 1e-2; >= 20x faster
than the naive mask at 1e-4.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eden import ErrorModel, inject_

SHAPES = {
    "em0": "em0:p={p}",
    "em1": "em1:fraction=0.01,p={pw},p_else={p}",
    "em2": "em2:fraction=0.01,p={pw},p_else={p}",
    "em3": "em3:p10={p2},p01={p0}",
}


def model_at(name: str, p: float) -> ErrorModel:
    """Each shape with expected BER p (em1/em2: weak lines 10x worse; em3: 1->0 99% of errors)."""
    if name in ("em1", "em2"):
        return ErrorModel.from_spec(SHAPES[name].format(pw=min(1.0, 10 * p), p=p)).at_ber(p)
    if name == "em3":
        return ErrorModel.from_spec(SHAPES[name].format(p2=1.98 * p, p0=0.02 * p)).at_ber(p)
    return ErrorModel.from_spec(SHAPES[name].format(p=p))


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_clone(t, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    c = t.clone()
    _sync(device)
    dt = time.perf_counter() - t0
    del c
    return dt


def time_inject_undo(t, model, seed, device) -> tuple[float, int]:
    _sync(device)
    t0 = time.perf_counter()
    log = inject_(t, model, seed=seed, access=seed)
    log.undo()
    _sync(device)
    return time.perf_counter() - t0, log.n_words


def time_naive(t, p, device, chunk=1 << 22) -> float:
    """Dense baseline: one Bernoulli per bit (torch.rand < p), packed to a mask, XOR."""
    words = t.view(torch.int32).view(-1)
    shifts = (torch.ones(32, dtype=torch.int64, device=device) << torch.arange(32, device=device))
    _sync(device)
    t0 = time.perf_counter()
    for s in range(0, words.numel(), chunk):
        w = words[s:s + chunk]
        bits = torch.rand(w.numel(), 32, device=device) < p
        mask = (bits.to(torch.int64) * shifts).sum(1).to(torch.int64)
        w ^= mask.to(torch.int32)
        w ^= mask.to(torch.int32)  # undo
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log2-elements", type=int, default=26)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--naive-repeats", type=int, default=1)
    args = ap.parse_args()
    device = args.device
    n = 1 << args.log2_elements
    t = torch.randn(n, device=device)
    print(f"tensor: {n} fp32 ({n * 4 / 2**20:.0f} MiB, {n * 32} bits) on {device}; torch threads "
          f"{torch.get_num_threads()}; medians of {args.repeats}")
    # warm-up: compile kernels (numba caches them on disk) for this signature
    for name in SHAPES:
        inject_(t, model_at(name, 1e-4), seed=99).undo()
    print(f"{'model':6s} {'p':>7s} {'inject+undo ms':>15s} {'clone ms':>9s} {'ratio':>7s} {'target':>7s} {'words':>10s}")
    targets = {1e-6: 0.05, 1e-4: 0.1, 1e-2: 3.0}
    results = {}
    for p in (1e-6, 1e-4, 1e-2):
        for name in SHAPES:
            model = model_at(name, p)
            ratios, inj, cl = [], [], []
            for r in range(args.repeats):
                c = time_clone(t, device)
                dt, words = time_inject_undo(t, model, r + 1, device)
                ratios.append(dt / c)
                inj.append(dt)
                cl.append(c)
            ratio = statistics.median(ratios)
            results[(name, p)] = statistics.median(inj)
            flag = "ok" if ratio <= targets[p] else "MISS"
            print(f"{name:6s} {p:7.0e} {1e3 * statistics.median(inj):15.2f} {1e3 * statistics.median(cl):9.2f} "
                  f"{ratio:7.3f} {targets[p]:7.2f} {words:10d} {flag}")
    for p in (1e-4,):
        naive = min(time_naive(t, p, device) for _ in range(args.naive_repeats))
        c = statistics.median(time_clone(t, device) for _ in range(3))
        ours = results[("em0", p)]
        print(f"naive dense mask p={p:.0e}: {1e3 * naive:.1f} ms = {naive / c:.1f} x clone; "
              f"eden em0 is {naive / ours:.0f}x faster (target >= 20x)")


if __name__ == "__main__":
    main()
