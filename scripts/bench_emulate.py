"""Emulated vs clean inference time, side by side, on a ResNet-18-sized model.

    python scripts/bench_emulate.py [--batch 32] [--size 224] [--repeats 9] [--device cpu]
                                    [--datatypes all|layers] [--correction zero|clamp|none]
                                    [--hooks] [--reenter] [--bounds batch|calibrated|both]

Every data type (all weights, all IFMs; ``--datatypes layers``: the weight and the IFM of
each of the 21 conv/linear layers, 42 data types) gets em0 errors at each BER, stored as
fp32 with zero correction (``--correction``). The emulated forward includes drawing fresh errors
for every weight and IFM (access persistence: redrawn per batch). Timings are
medians of interleaved runs (emulated forwards on the model inside one emulation, clean
ones on an identical copy); the ratio emulated/clean is what to read (issue 16's
targets, batch 32: within the noise of zero (<= 2%) at BER 1e-6, <= 8% at 1e-4; and at most
2 ms per forward inside eden's hooks at 1e-6, batch 8, ``--datatypes layers``). The machine's noise shows
in the spread of the three summaries (medians, median of paired ratios, fastest vs fastest).

``--bounds``: the correction's plausible range: each tensor's own min/max, an IFM's per batch
(batch, the default), or ranges calibrated in advance (calibrated: ``calibrate_bounds`` on one
other random batch, so the hooks need no min/max pass); ``both`` runs the two one after the other
at each BER and prints the ratio of their hook times (with ``--hooks``).

``--hooks`` also prints eden's own time per forward: the time spent inside its forward
hooks (root pre-hook, IFM pre-hooks, IFM restore hooks), measured by timestamp hooks the
script registers just before and just after eden's on every module (so eden itself
carries no timers); the timestamps' own cost (~1 us per pair) is included. Both clocks:
wall time and the calling thread's CPU time (``time.thread_time``; eden's hooks run on
the calling thread unless a job is large enough for numba's threads), which a machine
shared with other processes inflates far less than wall time. The forward times are also
given in process CPU time (all threads) next to the wall-clock ratios.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from bench_peers import resnet18  # the same torchvision-free ResNet-18 as the peer benchmark (scripts/)

from eden.nn.emulate import DataTypeConfig, EmulationPlan, calibrate_bounds, datatypes, emulate


def layer_selection(model):
    """The weight and IFM data types of every conv/linear layer (42 for ResNet-18)."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            out += [f"{name}.weight", f"{name}.ifm"]
    return out


class HookTimer:
    """Time spent inside the hooks registered before it on each module (eden's): a pre-hook
    registered first and one registered last bracket the module's pre-hooks, and the same
    for its forward hooks. Register after entering the emulation; ``remove()`` before exit."""

    def __init__(self, model):
        self.total = 0.0  # wall seconds
        self.cpu = 0.0  # calling thread's CPU seconds
        self._t0 = self._c0 = 0.0
        self._handles = []
        for mod in model.modules():
            if not (mod._forward_pre_hooks or mod._forward_hooks):
                continue
            self._handles += [
                mod.register_forward_pre_hook(self._start, prepend=True),
                mod.register_forward_pre_hook(self._stop_pre),
                mod.register_forward_hook(self._start_post, prepend=True, always_call=True),
                mod.register_forward_hook(self._stop_post, always_call=True)]

    def _start(self, module, args):
        self._c0 = time.thread_time()
        self._t0 = time.perf_counter()

    def _stop_pre(self, module, args):
        self.total += time.perf_counter() - self._t0
        self.cpu += time.thread_time() - self._c0

    def _start_post(self, module, args, output):
        self._start(module, args)

    def _stop_post(self, module, args, output):
        self._stop_pre(module, args)

    def remove(self):
        for h in self._handles:
            h.remove()


def timed(fn, cpu_times=None):
    """Wall seconds of fn(); its process CPU seconds (all threads) appended to cpu_times."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    t = time.perf_counter() - t0
    if cpu_times is not None:
        cpu_times.append(time.process_time() - c0)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bers", default="1e-6,1e-4")
    ap.add_argument("--datatypes", choices=("all", "layers"), default="all",
                    help="all: every weight and IFM; layers: weight + IFM of each conv/linear layer")
    ap.add_argument("--reenter", action="store_true",
                    help="enter a new emulation (new seed) before each emulated forward and run the clean "
                         "forwards on the model itself (first forwards, planning included)")
    ap.add_argument("--correction", choices=("zero", "clamp", "none"), default="zero")
    ap.add_argument("--bounds", choices=("batch", "calibrated", "both"), default="batch",
                    help="correction bounds: per batch (each tensor's own min/max), calibrated in advance on "
                         "another random batch, or both side by side")
    ap.add_argument("--hooks", action="store_true",
                    help="also print the time spent inside eden's hooks per forward (ms)")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    model = resnet18().to(dev).eval()
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev)
    dts = datatypes(model, x)
    if args.datatypes == "layers":
        chosen = set(layer_selection(model))
        dts = [d for d in dts if d.name in chosen]
    n_w = sum(d.numel for d in dts if d.kind == "weight")
    n_i = sum(d.numel for d in dts if d.kind == "ifm")
    print(f"ResNet-18: {n_w / 1e6:.1f} M weights, {n_i / 1e6:.1f} M IFM values per batch of {args.batch} "
          f"({args.size}x{args.size}), {len(dts)} data types emulated, device {dev}, {torch.get_num_threads()} threads")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # The clean forwards run on a copy of the model, so the emulation stays entered and
    # every timed emulated forward is a steady-state one (``--reenter``: the old way, a new
    # emulation with a new seed before each emulated forward, i.e. first forwards only).
    twin = model if args.reenter else copy.deepcopy(model)

    def emulated():
        with torch.inference_mode():
            model(x)
        sync()

    def clean():
        with torch.inference_mode():
            twin(x)
        sync()

    clean()  # warm up
    emulated()
    modes = ("batch", "calibrated") if args.bounds == "both" else (args.bounds,)
    calibrated = {}
    if args.bounds != "batch":
        if args.correction == "none":
            ap.error("--bounds calibrated needs a correction (--correction zero|clamp)")
        g = torch.Generator().manual_seed(1)
        other = torch.randn(args.batch, 3, args.size, args.size, generator=g).to(dev)
        calibrated = calibrate_bounds(twin, [(other,)], names=[d.name for d in dts], batches=1)
    hook_medians: dict = {}
    for ber, mode in ((float(b), m) for b in args.bers.split(",") for m in modes):
        select = "*" if args.datatypes == "all" else [d.name for d in dts]
        if mode == "batch":
            plan = EmulationPlan.uniform(f"em0:p={ber}", format="fp32", correction=args.correction,
                                         select=select)
        else:
            plan = EmulationPlan(tuple((d.name, DataTypeConfig(f"em0:p={ber}", "fp32", args.correction,
                                                               bounds=calibrated.get(d.name))) for d in dts))
        t_clean, t_emu, t_hooks, c_hooks, c_clean, c_emu = [], [], [], [], [], []
        t0 = time.perf_counter()
        emu = emulate(model, plan, seed=0).__enter__()
        t_enter = time.perf_counter() - t0
        try:
            emulated()  # warm-up inside the emulation (numba compile, first draws)
            for _ in range(args.repeats):  # interleaved, so drift hits both alike
                timer = HookTimer(model) if args.hooks else None
                t_emu.append(timed(emulated, c_emu))  # every forward redraws all weight and IFM errors
                if timer is not None:
                    timer.remove()
                    t_hooks.append(timer.total)
                    c_hooks.append(timer.cpu)
                if args.reenter:
                    emu.__exit__(None, None, None)
                t_clean.append(timed(clean, c_clean))
                if args.reenter:
                    emu = emulate(model, plan, seed=len(t_emu)).__enter__()
        finally:
            emu.__exit__(None, None, None)
        flipped = sum(s.flipped_bits for s in emu.stats.values())
        n_fw = max(emu.forwards, 1)  # (--reenter: the last emulation ran no forward yet)
        c, e = statistics.median(t_clean), statistics.median(t_emu)
        # each emulated forward against the clean one right after it: drift cancels pairwise
        pairs = statistics.median(te / tc for te, tc in zip(t_emu, t_clean)) - 1
        best = min(t_emu) / min(t_clean) - 1
        print(f"[bounds {mode}]")
        print(f"BER {ber:g}: clean {c * 1e3:8.1f} ms   emulated {e * 1e3:8.1f} ms   overhead "
              f"{(e - c) / c * 100:+6.1f}% (medians; median of paired ratios {pairs * 100:+.1f}%, "
              f"fastest vs fastest {best * 100:+.1f}%)   ({flipped / n_fw:.0f} bits flipped per forward; "
              f"entering emulate once: {t_enter * 1e3:.1f} ms)")
        cc, ce = statistics.median(c_clean), statistics.median(c_emu)
        cpairs = statistics.median(e / c for e, c in zip(c_emu, c_clean)) - 1
        print(f"BER {ber:g}: process CPU time: clean {cc * 1e3:8.1f} ms   emulated {ce * 1e3:8.1f} ms   overhead "
              f"{(ce - cc) / cc * 100:+6.1f}% (medians; median of paired ratios {cpairs * 100:+.1f}%, fastest vs "
              f"fastest {(min(c_emu) / min(c_clean) - 1) * 100:+.1f}%)")
        if t_hooks:
            for clock, ts in (("wall", t_hooks), ("thread CPU", c_hooks)):
                h = statistics.median(ts)
                print(f"BER {ber:g}: time inside eden's hooks per forward ({clock}): median {h * 1e3:.2f} ms, "
                      f"min {min(ts) * 1e3:.2f} ms, max {max(ts) * 1e3:.2f} ms over {len(ts)} forwards "
                      f"({h / len(dts) * 1e3:.3f} ms per data type)")
                hook_medians[(ber, mode, clock)] = h
        if mode == "calibrated" and (ber, "batch", "wall") in hook_medians:
            for clock in ("wall", "thread CPU"):
                b, k = hook_medians[(ber, "batch", clock)], hook_medians[(ber, "calibrated", clock)]
                print(f"BER {ber:g}: hooks ({clock}) calibrated / per-batch bounds: {k / b:.2f} "
                      f"({(b - k) * 1e3:.2f} ms per forward saved)")

if __name__ == "__main__":
    main()
