"""Benchmark: inject+undo time / tensor.clone() time, measured side by side.

On a 2^26-element fp32 tensor (256 MiB, 2^31 bits) for em0..em3 at p = 1e-6,
1e-4, 1e-2, and for a naive dense per-bit Bernoulli mask (one uniform per bit,
packed into XOR masks, in chunks). Each figure is the median of --repeats runs;
clone() is re-timed next to every configuration so machine noise hits both alike.
The main figure injects one device (seed 1) with a new access per repeat, as
emulation does batch after batch; the first access of a new device (which also
builds its weak-bitline map, em1) is timed and printed beside it.

    python scripts/bench_inject.py [--log2-elements 26] [--repeats 5] [--device cpu|cuda]
    python scripts/bench_inject.py --small [--batch 8] [--repeats 21]

``--small``: instead, the engine's time per forward pass for the 42 data types of ResNet-18
(the weight and the input of each of its 21 conv/linear layers, fp32, at batch --batch),
each a prepared ``eden.engine.ops.Injector`` called with a new access and undone, em0 at
1e-6 and 1e-4 (no torch model, no hooks: the engine alone; ``bench_emulate.py --hooks``
times the hooks).

Targets (CPU): <= 0.05 at 1e-6, <= 0.1 at 1e-4, <= 3 at 1e-2; >= 20x faster
than the naive mask at 1e-4.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time

import numpy as np
import torch

# Run from a checkout: benchmark this tree's eden, whatever else is installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def time_inject_undo(t, model, seed, access, device) -> tuple[float, float, int]:
    """(inject + undo seconds, undo seconds, words changed). undo() only XORs the logged
    words back: it is the memory system's share (one scattered read-modify-write per word)."""
    _sync(device)
    t0 = time.perf_counter()
    log = inject_(t, model, seed=seed, access=access)
    _sync(device)
    t1 = time.perf_counter()
    log.undo()
    _sync(device)
    t2 = time.perf_counter()
    return t2 - t0, t2 - t1, log.n_words


def time_naive(t, p, device, seed=0, chunk=1 << 16) -> float:
    """Dense baseline: one Bernoulli(p) per bit, packed into an XOR mask per word, applied
    and undone, chunk by chunk (vectorized; buffers reused). CPU: NumPy's float32
    uniforms (its fastest dense sampler) + packbits; CUDA: torch.rand + shift-and-sum."""
    if device == "cuda":
        words = t.view(torch.int32).view(-1)
        shifts = torch.ones(32, dtype=torch.int64, device=device) << torch.arange(32, device=device)
        _sync(device)
        t0 = time.perf_counter()
        for s in range(0, words.numel(), chunk):
            w = words[s:s + chunk]
            mask = ((torch.rand(w.numel(), 32, device=device) < p).to(torch.int64) * shifts).sum(1)
            mask = mask.to(torch.int32)
            w ^= mask
            w ^= mask  # undo
        _sync(device)
        return time.perf_counter() - t0
    words = t.view(torch.int32).view(-1).numpy().view(np.uint32)
    gen = np.random.default_rng(seed)
    u = np.empty(chunk * 32, np.float32)
    hit = np.empty(chunk * 32, np.bool_)
    t0 = time.perf_counter()
    for s in range(0, len(words), chunk):
        m = min(chunk, len(words) - s)
        gen.random(dtype=np.float32, out=u[:m * 32])
        np.less(u[:m * 32], p, out=hit[:m * 32])
        mask = np.packbits(hit[:m * 32], bitorder="little").view(np.uint32)
        w = words[s:s + m]
        w ^= mask
        w ^= mask  # undo
    return time.perf_counter() - t0


def resnet18_datatypes(batch: int) -> list[tuple[str, int]]:
    """(name, fp32 elements) of the weight and the input of each of ResNet-18's 21 conv/linear
    layers (224x224 inputs)."""
    out = [("conv1.weight", 64 * 3 * 7 * 7), ("conv1.input", batch * 3 * 224 * 224)]
    cin, hw = 64, 56
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            out.append((f"layer{stage}.{block}.conv1.weight", cout * cin * 9))
            out.append((f"layer{stage}.{block}.conv1.input", batch * cin * hw * hw))
            hw_out = hw // stride
            out.append((f"layer{stage}.{block}.conv2.weight", cout * cout * 9))
            out.append((f"layer{stage}.{block}.conv2.input", batch * cout * hw_out * hw_out))
            if stride == 2:
                out.append((f"layer{stage}.{block}.downsample.weight", cout * cin))
                out.append((f"layer{stage}.{block}.downsample.input", batch * cin * hw * hw))
            cin, hw = cout, hw_out
    out += [("fc.weight", 1000 * 512), ("fc.input", batch * 512)]
    assert len(out) == 42
    return out


def _numba_threads() -> int:
    import numba

    return numba.get_num_threads()


def bench_small(batch: int, repeats: int) -> None:
    """The engine's time per forward for ResNet-18's 42 data types (see the module docstring)."""
    from eden.engine.ops import Injector
    from eden.formats import format_of

    fmt = format_of(torch.float32)
    types = resnet18_datatypes(batch)
    tensors = [torch.randn(n) for _, n in types]
    bases = np.concatenate([[0], np.cumsum([(t.numel() * 4 + 8191) // 8192 * 8192 for t in tensors])])
    print(f"ResNet-18, batch {batch}: {len(types)} fp32 data types, {sum(t.numel() for t in tensors)} values; "
          f"engine time per forward (Injector call + undo for every data type, a new access each "
          f"forward), median (min) of {repeats} forwards; numba threads {_numba_threads()}")
    for p in (1e-6, 1e-4):
        model = ErrorModel.from_spec(f"em0:p={p}")
        injectors = [Injector(model, fmt, t.numel() * 4, seed=1, base_address=int(b)) for t, b in zip(tensors, bases)]
        words = [inj.words(t) for inj, t in zip(injectors, tensors)]
        for a in range(3):  # warm-up (compiles, plan cache)
            for inj, t, w in zip(injectors, tensors, words):
                inj(t, w, a).undo()
        times, cpu, bits = [], [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            c0 = time.thread_time()
            nb = 0
            for inj, t, w in zip(injectors, tensors, words):
                log = inj(t, w, 10 + r)
                nb += log.n_bits
                log.undo()
            cpu.append(time.thread_time() - c0)
            times.append(time.perf_counter() - t0)
            bits.append(nb)
        print(f"  em0 p={p:.0e}: {1e3 * statistics.median(times):8.3f} ms ({1e3 * min(times):.3f}) per forward, "
              f"calling thread's CPU {1e3 * statistics.median(cpu):.3f} ms ({1e3 * min(cpu):.3f}); "
              f"{statistics.median(bits):.0f} bits flipped per forward")
        _bench_weights_group(injectors, tensors, words, types, repeats)


def _bench_weights_group(injectors, tensors, words, types, repeats) -> None:
    """The 21 weights: one Injector call each vs one InjectorGroup call (thread CPU, inject + undo)."""
    try:
        from eden.engine.group import InjectorGroup
    except ImportError:  # a tree without it
        return
    sel = [i for i, (name, _) in enumerate(types) if name.endswith(".weight")]
    injs = [injectors[i] for i in sel]
    ts = [tensors[i] for i in sel]
    ws = [words[i] for i in sel]
    group = InjectorGroup(injs)
    for a in range(3):
        for log in group(ts, ws, a):
            log.undo()
    single, grouped = [], []
    for r in range(repeats):
        c0 = time.thread_time()
        for inj, t, w in zip(injs, ts, ws):
            inj(t, w, 100 + r).undo()
        c1 = time.thread_time()
        for log in group(ts, ws, 100 + r):
            log.undo()
        c2 = time.thread_time()
        single.append(c1 - c0)
        grouped.append(c2 - c1)
    print(f"    the {len(injs)} weights: one Injector call each {1e3 * statistics.median(single):.3f} ms "
          f"({1e3 * min(single):.3f}), one InjectorGroup call {1e3 * statistics.median(grouped):.3f} ms "
          f"({1e3 * min(grouped):.3f}) thread CPU per forward (inject + undo)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log2-elements", type=int, default=26)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--naive-repeats", type=int, default=1)
    ap.add_argument("--naive-rates", type=float, nargs="*", default=[1e-4],
                    help="rates for the dense baseline (its cost does not depend on p)")
    ap.add_argument("--small", action="store_true", help="ResNet-18's 42 data types instead (engine only)")
    ap.add_argument("--batch", type=int, default=8, help="--small: the batch size of the IFMs")
    args = ap.parse_args()
    if args.small:
        bench_small(args.batch, args.repeats)
        return
    device = args.device
    n = 1 << args.log2_elements
    t = torch.randn(n, device=device)
    print(f"tensor: {n} fp32 ({n * 4 / 2**20:.0f} MiB, {n * 32} bits) on {device}; torch threads "
          f"{torch.get_num_threads()}; medians of {args.repeats}")
    # warm-up: compile kernels (numba caches them on disk) for this signature, every path
    for p in (1e-6, 1e-4, 1e-2):
        for name in SHAPES:
            inject_(t, model_at(name, p), seed=1, access=0).undo()
    print("inject+undo: one device (seed 1), a new access (fresh errors) per repeat, as emulation runs a\n"
          "  device batch after batch; undo: the scattered XOR of the changed words alone (inject pays\n"
          "  about as much again); new device: the first access of a never-seen device seed, which also\n"
          "  builds the device's weak-line maps (em1: weak bitlines, kept for later accesses)")
    print(f"{'model':6s} {'p':>7s} {'inject+undo ms':>15s} {'undo ms':>8s} {'clone ms':>9s} {'ratio':>7s} "
          f"{'target':>7s} {'words':>10s}      {'new device ms':>13s} {'ratio':>7s}")
    targets = {1e-6: 0.05, 1e-4: 0.1, 1e-2: 3.0}
    results = {}
    fresh_seeds = itertools.count(1000)  # never reused: a weak-line map cached for one would hide its cost
    for p in (1e-6, 1e-4, 1e-2):
        for name in SHAPES:
            model = model_at(name, p)
            ratios, inj, und, cl, new_dev, new_ratios = [], [], [], [], [], []
            for r in range(args.repeats):
                c = time_clone(t, device)
                dt, du, words = time_inject_undo(t, model, 1, r + 1, device)
                ratios.append(dt / c)
                inj.append(dt)
                und.append(du)
                cl.append(c)
                dn = time_inject_undo(t, model, next(fresh_seeds), 1, device)[0]
                new_dev.append(dn)
                new_ratios.append(dn / c)
            ratio = statistics.median(ratios)
            results[(name, p)] = statistics.median(inj)
            flag = "ok  " if ratio <= targets[p] else "MISS"
            print(f"{name:6s} {p:7.0e} {1e3 * statistics.median(inj):15.2f} {1e3 * statistics.median(und):8.2f} "
                  f"{1e3 * statistics.median(cl):9.2f} "
                  f"{ratio:7.3f} {targets[p]:7.2f} {words:10d} {flag} {1e3 * statistics.median(new_dev):13.2f} "
                  f"{statistics.median(new_ratios):7.3f}")
    if device == "cuda":
        # The dense part of the work: the XOR kernel reads each entry's index and mask and
        # reads and writes its word; clone() reads and writes every byte once. Timed over
        # 20 kernel runs (an even number: the tensor ends unchanged), without undo()'s
        # per-call host overhead.
        from eden.engine.backends import cuda as gpu

        idx_bytes = 4 if n < 2**31 else 8
        print("XOR kernel bandwidth at 1e-2 (target >= 70% of clone's):")
        for name in SHAPES:
            log = inject_(t, model_at(name, 1e-2), seed=1, access=1)
            args_ = (log._words, log._idx, log._mask, log._off, log._cnt)
            gpu.xor_segments(*args_)
            gpu.xor_segments(*args_)
            clones = [time_clone(t, device) for _ in range(5)]
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(20):
                gpu.xor_segments(*args_)
            _sync(device)
            dt = (time.perf_counter() - t0) / 20
            log.undo()
            bw = log.n_words * (idx_bytes + 3 * 4) / dt
            copy_bw = 2 * n * 4 / statistics.median(clones)
            print(f"  {name}: {bw / 1e9:.0f} GB/s = {100 * bw / copy_bw:.0f}% of clone's {copy_bw / 1e9:.0f} GB/s "
                  f"({log.n_words} words, {1e3 * dt:.3f} ms per XOR)")
    for p in args.naive_rates:
        naive, clones = [], []
        for r in range(args.naive_repeats):
            clones.append(time_clone(t, device))
            naive.append(time_naive(t, p, device, seed=r))
        dt = statistics.median(naive)
        c = statistics.median(clones)
        print(f"naive dense mask p={p:.0e}: {1e3 * dt:.0f} ms = {dt / c:.1f} x clone (median of {len(naive)})")
        for name in SHAPES:
            if (name, p) in results:
                print(f"  eden {name} is {dt / results[(name, p)]:.0f}x faster (target >= 20x)")


if __name__ == "__main__":
    main()
