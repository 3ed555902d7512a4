"""Peer benchmark: eden against MRFI and PyTorchFI on the same ResNet-18, input and bit-error rates.

    python scripts/bench_peers.py [--repeats 21] [--batch 8] [--size 224] [--bers 1e-4,1e-6]
                                  [--skip-mrfi] [--skip-pytorchfi] [--venvs DIR] [--out FILE.md]

Each peer runs in its own virtual environment, made once by this script under --venvs
(default .bench-venvs/ in the repository; an existing one is reused): `python -m venv DIR`,
then `pip install torch==2.13.0` (the CPU build this machine's pip serves), then the peer with
--no-deps and afterwards only its requirements other than torch/torchvision (read from the
installed peer's metadata), so pip never pulls a CUDA torch. eden runs from this checkout in
the current interpreter. Every tool runs in a worker subprocess of this same file
(`--worker TOOL`), one per (tool, BER), all alive at once, driven over a pipe so the runs
interleave: per repeat, for each BER and tool, one clean forward then one forward with the tool
in the same process. Every process builds the same random-initialised ResNet-18 and input from
the same seed (checked by a hash) and runs on --threads CPU threads.

What each tool injects, per forward, at per-bit rate p into fp32 values:
  eden       em0:p (uniform, every bit of every value independently with probability p, fresh
             per forward), into the weights and the input feature maps (IFMs) of all 21
             Conv2d/Linear layers: 42 data types.
  MRFI       its float bit-flip configuration on the same 21 layers, weights and IFMs (42):
             selector RandomPositionByRate(rate=32p, poisson=True), i.e. Poisson(32p x values)
             positions drawn with replacement, and error_mode FloatRandomBitFlip(float32), one
             uniformly random bit of each selected value flipped in its IEEE-754 word (MRFI's
             documented BER = rate / bit width). Weights are reset from MRFI's clean copy and
             redrawn every forward; IFMs are corrupted in place in a forward pre-hook.
  PyTorchFI  weight faults only (its neuron faults set output values, not stored bits):
             declare_weight_fi(function=...) on the 21 layers, a deep copy of the model with
             the faulty weights, redeclared before every forward. PyTorchFI has no rate-based
             sampler, so this script draws Binomial(32 x values, p) distinct bit positions per
             layer (NumPy) and its function flips that bit of the fp32 word at each location.
             21 data types.

Times: the whole forward (the tool's injection included) against the clean forward, medians over
--repeats; and the time spent inside each tool's own hooks per forward, measured by timestamp
hooks registered on every module right around the tool's (a forward pre-hook and a forward hook
registered with prepend=True before them, and one appended after them): this counts exactly the
tool's hook code and excludes the layers' compute and the rest of the forward, with the same
instrumentation on the clean model (its reading is the floor of the method). PyTorchFI has no
hooks for weight faults; its per-forward injection time is the sampler plus declare_weight_fi,
timed directly.

Flip counts: --check-forwards forwards per tool (not timed) count the bits actually flipped by
XOR of the uint32 views: weights against the clean model's, each IFM against a copy taken just
before the tool's pre-hooks. The total is checked against the exact binomial 99.9% interval
(scipy.stats.binom) of (bits exposed) x p; a tool whose count falls outside is marked INVALID.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TORCH_PIN = "torch==2.13.0"
PEERS = {  # name -> pip spec, import name
    "mrfi": ("mrfi>=2.1,<2.2", "mrfi"),
    "pytorchfi": ("pytorchfi", "pytorchfi"),
}
# Requirements never installed from a peer's metadata: torch is pinned first, and torchvision
# (MRFI) only serves its bundled example datasets (mrfi_dataset), not the injector.
SKIP_REQS = {"torch", "torchvision"}
WORKER_REQS = ["numpy"]  # what the worker code itself needs in a peer's venv
TOOLS = ("eden", "mrfi", "pytorchfi")
WHAT = {"eden": "weights + IFMs, 42 data types", "mrfi": "weights + IFMs, 42 data types",
        "pytorchfi": "weights only, 21 data types"}


class BenchError(Exception):
    """A failure reported as one line."""


# ------------------------------------------------------------------- the model
def resnet18(num_classes=1000):
    """ResNet-18 (He et al. 2016): torchvision's layers and parameter count (11.7 M), no torchvision."""
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def _layers(model):
    from torch import nn
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _flipped_bits(a, b) -> int:
    """Bits that differ between two fp32 tensors (XOR of their 32-bit views)."""
    import numpy as np
    import torch
    x = a.detach().contiguous().view(torch.int32) ^ b.detach().contiguous().view(torch.int32)
    nz = x[x != 0]
    return int(np.unpackbits(nz.numpy().view(np.uint8)).sum()) if nz.numel() else 0


class HookClock:
    """Time spent in the hooks already registered on a model's modules.

    On every module, a pre-hook and a forward hook are put first (prepend=True) and
    another of each last: the gap between them is the tool's hooks alone.
    """

    def __init__(self, model):
        self.ns = 0
        self.handles = []
        for m in model.modules():
            t0 = [0]

            def start(*_, _t=t0):
                _t[0] = time.perf_counter_ns()

            def stop(*_, _t=t0):
                self.ns += time.perf_counter_ns() - _t[0]

            self.handles += [m.register_forward_pre_hook(start, prepend=True), m.register_forward_pre_hook(stop),
                             m.register_forward_hook(start, prepend=True), m.register_forward_hook(stop)]

    def take(self) -> float:
        s, self.ns = self.ns * 1e-9, 0
        return s


class FlipCounter:
    """Counts, during forwards, the bits flipped in each Conv2d/Linear's weight and IFM."""

    def __init__(self, model, clean_model):
        self.weight_bits = self.weight_flips = self.ifm_bits = self.ifm_flips = 0
        self.handles = []
        for (_, m), (_, c) in zip(_layers(model), _layers(clean_model)):
            saved = []

            def snap(mod, args, _s=saved):
                _s.append(args[0].detach().clone())

            def count(mod, args, _s=saved, _c=c):
                before = _s.pop()
                self.ifm_bits += 32 * before.numel()
                self.ifm_flips += _flipped_bits(args[0], before)
                self.weight_bits += 32 * mod.weight.numel()
                self.weight_flips += _flipped_bits(mod.weight, _c.weight)

            self.handles += [m.register_forward_pre_hook(snap, prepend=True), m.register_forward_pre_hook(count)]

    def remove(self):
        for h in self.handles:
            h.remove()


# ------------------------------------------------------------------- the tools (run inside a worker)
class Eden:
    def __init__(self, model, clean, args):
        sys.path.insert(0, str(REPO))  # this checkout's eden, whatever else is installed
        import eden
        from eden.nn.emulate import EmulationPlan, emulate
        self.version = eden.__version__
        self.model = model
        names = [n for n, _ in _layers(model)]
        select = [f"{n}.weight" for n in names] + [f"{n}.ifm" for n in names]
        plan = EmulationPlan.uniform(f"em0:p={args.ber!r}", format="fp32", correction="none", select=select)
        self.emu = emulate(model, plan, seed=args.seed)
        self.emu.__enter__()
        self.datatypes = len(self.emu.configs)

    def reported(self) -> int:
        return sum(s.flipped_bits for s in self.emu.stats.values())

    def forward(self, x) -> float:
        self.model(x)
        return 0.0


class Mrfi:
    def __init__(self, model, clean, args):
        import importlib.metadata

        import mrfi
        import numpy as np
        import torch
        self.version = importlib.metadata.version("mrfi")
        self.model = model

        def fi(kind):
            return {"type": kind, "enabled": True, "module_type": ["Conv2d", "Linear"],
                    "selector": {"method": "RandomPositionByRate", "poisson": True, "rate": 32 * args.ber},
                    "error_mode": {"method": "FloatRandomBitFlip", "floattype": "float32"},
                    **({"name": ["weight"]} if kind == "weight" else {})}

        self.fi = mrfi.MRFI(model, mrfi.EasyConfig({"faultinject": [fi("weight"), fi("activation")]}))
        self.datatypes = sum(len(m.FI_config.weights) + len(m.FI_config.activation) for m in model.modules())
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)  # MRFI's Poisson draw (scipy.stats) uses NumPy's global generator

    def reported(self):
        return None

    def forward(self, x) -> float:
        self.model(x)
        return 0.0


class PytorchFI:
    def __init__(self, model, clean, args):
        import importlib.metadata

        import numpy as np
        import torch
        from pytorchfi.core import fault_injection
        from torch import nn
        self.version = importlib.metadata.version("pytorchfi")
        self.torch, self.np = torch, np
        self.ber = args.ber
        self.rng = np.random.default_rng(args.seed)
        self.pfi = fault_injection(model, args.batch, input_shape=[3, args.size, args.size],
                                   layer_types=[nn.Conv2d, nn.Linear], use_cuda=False)
        self.shapes = [tuple(m.weight.shape) for _, m in _layers(model)]
        self.datatypes = len(self.shapes)
        self.bits = iter(())
        self.corrupted = None
        self._sample_s = 0.0

    def _flip(self, weight, idx):
        """PyTorchFI's custom function: the faulty value at ``idx``, one bit of its fp32 word flipped."""
        b = next(self.bits)
        mask = 1 << b if b < 31 else -(1 << 31)
        v = weight[idx].detach().reshape(())
        return (v.view(self.torch.int32) ^ mask).view(self.torch.float32)

    def _declare(self):
        t0 = time.perf_counter()
        np = self.np
        lay, k, d1, d2, d3, bits = [], [], [], [], [], []
        for i, shape in enumerate(self.shapes):
            n_bits = 32 * int(np.prod(shape))
            n = int(self.rng.binomial(n_bits, self.ber))
            if not n:
                continue
            pos = np.sort(self.rng.choice(n_bits, n, replace=False))
            idx = np.unravel_index(pos // 32, shape)
            lay += [i] * n
            k += idx[0].tolist()
            d1 += idx[1].tolist()
            d2 += idx[2].tolist() if len(shape) > 2 else [None] * n
            d3 += idx[3].tolist() if len(shape) > 3 else [None] * n
            bits += (pos % 32).tolist()
        self._sample_s = time.perf_counter() - t0
        self.bits = iter(bits)  # declare_weight_fi visits the faults in list order (layers in order)
        self.corrupted = self.pfi.declare_weight_fi(function=self._flip, layer_num=lay, k=k, dim1=d1, dim2=d2,
                                                    dim3=d3)

    def reported(self):
        return None

    def forward(self, x) -> float:
        t0 = time.perf_counter()
        self._declare()
        inj = time.perf_counter() - t0
        self.corrupted(x)
        return inj

    @property
    def sample_s(self) -> float:
        return self._sample_s


TOOL_CLASSES = {"eden": Eden, "mrfi": Mrfi, "pytorchfi": PytorchFI}


def worker(args) -> None:
    """One tool at one BER: answers JSON commands on stdin, one JSON line each on stdout."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a tool prints goes to stderr, not into the protocol
    import copy

    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    clean = resnet18().eval()
    gen = torch.Generator().manual_seed(args.seed + 1)
    x0 = torch.randn(args.batch, 3, args.size, args.size, generator=gen)
    x = x0.clone()
    h = hashlib.sha256()
    for t in [*clean.state_dict().values(), x0]:
        h.update(t.contiguous().numpy().tobytes())
    model = copy.deepcopy(clean)
    tool = TOOL_CLASSES[args.worker](model, clean, args)
    clocks = {"clean": HookClock(clean), "tool": HookClock(model)}
    nets = {"clean": clean, "tool": tool}

    def send(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    send({"ready": True, "hash": h.hexdigest()[:16], "torch": torch.__version__, "version": tool.version,
          "datatypes": tool.datatypes, "threads": torch.get_num_threads()})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        if cmd["cmd"] == "check":
            counter = None if args.worker == "pytorchfi" else FlipCounter(model, clean)
            before = tool.reported()
            res = {"weight_bits": 0, "weight_flips": 0, "ifm_bits": 0, "ifm_flips": 0}
            for _ in range(cmd["n"]):
                x.copy_(x0)
                with torch.no_grad():
                    tool.forward(x)
                if counter is None:  # PyTorchFI: its corrupted copy's weights against the clean ones
                    for (_, m), (_, c) in zip(_layers(tool.corrupted), _layers(clean)):
                        res["weight_bits"] += 32 * c.weight.numel()
                        res["weight_flips"] += _flipped_bits(m.weight, c.weight)
            if counter is not None:
                counter.remove()
                res = {k: getattr(counter, k) for k in res}
            res["reported"] = None if before is None else tool.reported() - before
            clocks["tool"].take()
            send(res)
            continue
        which = cmd["cmd"]
        x.copy_(x0)  # MRFI corrupts the network input in place: every forward starts from the same input
        clocks[which].take()
        with torch.no_grad():
            t0, c0 = time.perf_counter(), time.process_time()
            inj = clean(x) if which == "clean" else nets["tool"].forward(x)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        hooks = clocks[which].take()
        inj = inj if isinstance(inj, float) else 0.0  # PyTorchFI: its injection, outside the forward
        send({"wall": wall, "cpu": cpu, "hooks": hooks + inj,
              "sample": getattr(tool, "sample_s", 0.0) if which == "tool" else 0.0})


# ------------------------------------------------------------------- venvs
def _run_logged(cmd, log, what):
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(map(str, cmd))}\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if rc:
        lines = [ln.strip() for ln in Path(log).read_text().splitlines() if ln.strip()]
        errs = [ln for ln in lines if ln.startswith("ERROR")] or lines
        raise BenchError(f"cannot install {what}: `{Path(cmd[0]).name} {' '.join(map(str, cmd[1:]))}` exited {rc} "
                         f"({errs[-1] if errs else 'no output'}); no network? full log: {log}; "
                         f"or leave the peer out with --skip-{what.split()[0]}")


def ensure_venv(name: str, root: Path) -> Path:
    """The peer's venv (made on first use): torch==2.13.0, the peer --no-deps, its other requirements."""
    spec, module = PEERS[name]
    d = root / name
    py = d / "bin" / "python"
    probe = f"import torch, numpy, {module}; assert torch.__version__.split('+')[0] == '{TORCH_PIN[7:]}'"
    if py.exists() and subprocess.run([py, "-c", probe], capture_output=True).returncode == 0:
        return py
    root.mkdir(parents=True, exist_ok=True)
    log = root / f"{name}-install.log"
    print(f"[{name}] making {d} (torch is ~700 MB; once; log {log})", file=sys.stderr, flush=True)
    pip = [py, "-m", "pip", "install", "--retries", "1", "--timeout", "30"]
    if not py.exists():
        _run_logged([sys.executable, "-m", "venv", d], log, f"{name} (venv)")
    _run_logged([*pip, TORCH_PIN], log, f"{name} ({TORCH_PIN})")
    _run_logged([*pip, "--no-deps", spec], log, name)
    meta = subprocess.run([py, "-c", f"import importlib.metadata as m, json; print(json.dumps(m.requires("
                                     f"{module!r}) or []))"], capture_output=True, text=True)
    if meta.returncode:
        raise BenchError(f"cannot read {name}'s metadata: {meta.stderr.strip().splitlines()[-1:]}")
    reqs = []
    for r in json.loads(meta.stdout):
        if "extra ==" in r:
            continue
        req_name = re.match(r"[A-Za-z0-9._-]+", r).group(0)
        if req_name.lower() not in SKIP_REQS:
            reqs.append(r.split(";")[0].strip())
    print(f"[{name}] requirements installed besides torch: {reqs + WORKER_REQS}", file=sys.stderr, flush=True)
    _run_logged([*pip, *reqs, *WORKER_REQS], log, f"{name} (its requirements)")
    if subprocess.run([py, "-c", probe], capture_output=True).returncode:
        raise BenchError(f"{name} installed into {d} but `import {module}` fails there; see {log}")
    return py


# ------------------------------------------------------------------- driver
class Worker:
    def __init__(self, tool, ber, python, args, logdir):
        self.tool, self.ber = tool, ber
        self.log = Path(logdir) / f"{tool}-{ber:g}.log"
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", tool, "--ber", repr(ber),
               "--batch", str(args.batch), "--size", str(args.size), "--threads", str(args.threads),
               "--seed", str(args.seed)]
        self.err = open(self.log, "w")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.info = self.recv()

    def recv(self):
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            tail = [ln for ln in self.log.read_text().splitlines() if ln.strip()][-1:]
            raise BenchError(f"{self.tool} worker (BER {self.ber:g}) died, exit {self.p.returncode}: "
                             f"{tail[0] if tail else 'no output'} (log {self.log})")
        return json.loads(line)

    def call(self, cmd, **kw):
        self.p.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.p.stdin.flush()
        return self.recv()

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write('{"cmd": "quit"}\n')
                self.p.stdin.close()
                self.p.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
        self.err.close()


def _cpu_model() -> str:
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_atomic(path: Path, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args) -> str:
    from scipy.stats import binom

    bers = [float(b) for b in args.bers.split(",")]
    tools = [t for t in TOOLS if not getattr(args, f"skip_{t}", False)]
    pythons = {"eden": Path(sys.executable)}
    for t in tools:
        if t != "eden":
            pythons[t] = ensure_venv(t, Path(args.venvs))
    workers = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as logdir:
        try:
            for ber in bers:
                for t in tools:
                    print(f"starting {t} at BER {ber:g}", file=sys.stderr, flush=True)
                    workers[t, ber] = Worker(t, ber, pythons[t], args, logdir)
            hashes = {w.info["hash"] for w in workers.values()}
            if len(hashes) != 1:
                raise BenchError(f"the workers built different models/inputs (hashes {sorted(hashes)})")
            checks = {}
            for key, w in workers.items():
                for _ in range(args.warmup):
                    w.call("clean")
                    w.call("tool")
                print(f"checking flips: {key[0]} at BER {key[1]:g}", file=sys.stderr, flush=True)
                checks[key] = w.call("check", n=args.check_forwards)
            fields = ("clean", "tool", "clean_hooks", "hooks", "sample", "clean_cpu", "cpu")
            times = {key: {f: [] for f in fields} for key in workers}
            t_start = time.perf_counter()
            for r in range(args.repeats):
                for key, w in workers.items():  # clean, eden, clean, mrfi, clean, pytorchfi, ... per BER
                    c = w.call("clean")
                    e = w.call("tool")
                    times[key]["clean"].append(c["wall"])
                    times[key]["clean_hooks"].append(c["hooks"])
                    times[key]["tool"].append(e["wall"])
                    times[key]["hooks"].append(e["hooks"])
                    times[key]["sample"].append(e["sample"])
                    times[key]["clean_cpu"].append(c["cpu"])
                    times[key]["cpu"].append(e["cpu"])
                print(f"repeat {r + 1}/{args.repeats} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr,
                      flush=True)
        finally:
            for w in workers.values():
                w.close()

    med = statistics.median
    ms = 1e3
    out = ["| BER | tool | injects into | clean ms | with tool ms | overhead (medians) | overhead (paired) "
           "| CPU-time overhead (paired) "
           "| ms in hooks / forward "
           "| flipped bits (check) | expected, 99.9% binomial interval | valid |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for ber in bers:
        for t in tools:
            key = (t, ber)
            tm, ck = times[key], checks[key]
            c, e = med(tm["clean"]), med(tm["tool"])
            paired = med(te / tc for te, tc in zip(tm["tool"], tm["clean"])) - 1
            cpu = med(te / tc for te, tc in zip(tm["cpu"], tm["clean_cpu"])) - 1
            hooks = f"{med(tm['hooks']) * ms:.2f} (floor {med(tm['clean_hooks']) * ms:.2f})"
            if t == "pytorchfi":
                hooks = f"{med(tm['hooks']) * ms:.2f} injection (sampler {med(tm['sample']) * ms:.2f})"
            verdicts, parts = [], []
            for kind in ("weight", "ifm"):
                n = ck[f"{kind}_bits"]
                if not n:
                    continue
                lo, hi = binom.interval(0.999, n, ber)
                ok = lo <= ck[f"{kind}_flips"] <= hi
                verdicts.append(ok)
                parts.append(f"{kind}s {n * ber:.0f} [{lo:.0f}, {hi:.0f}]")
            n_all = ck["weight_bits"] + ck["ifm_bits"]
            lo, hi = binom.interval(0.999, n_all, ber)
            flips = ck["weight_flips"] + ck["ifm_flips"]
            verdicts.append(lo <= flips <= hi)
            valid = "ok" if all(verdicts) else "**INVALID**"
            if lo == 0:
                valid += " (weak: interval holds 0)"
            seen = f"{flips} (w {ck['weight_flips']}, i {ck['ifm_flips']})"
            if ck.get("reported") is not None:
                seen += f"; eden's stats: {ck['reported']}"
            out.append(f"| {ber:g} | {t} | {WHAT[t]} | {c * ms:.1f} | {e * ms:.1f} | {(e - c) / c * 100:+.1f}% "
                       f"| {paired * 100:+.1f}% | {cpu * 100:+.1f}% | {hooks} | {seen} "
                       f"| {n_all * ber:.0f} [{lo:.0f}, {hi:.0f}]; {'; '.join(parts)} | {valid} |")
    any_w = next(iter(workers.values())).info
    vers = {t: workers[t, bers[0]].info["version"] for t in tools}
    head = [f"ResNet-18 (random init, seed {args.seed}), input {args.batch}x3x{args.size}x{args.size} "
            f"(seed {args.seed + 1}), {args.threads} threads per process (`torch.set_num_threads`); "
            f"{args.repeats} interleaved repeats (clean, tool per process), medians; flips counted over "
            f"{args.check_forwards} untimed forward(s) per tool and BER; same model and input in every "
            f"process (hash {any_w['hash']}).",
            "",
            "Versions: torch " + ", ".join(sorted({w.info['torch'] for w in workers.values()}))
            + "; " + ", ".join(f"{t} {v}" for t, v in vers.items()) + ".",
            f"Machine: {os.cpu_count()} cores ({_cpu_model()}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}; data types configured: "
            + ", ".join(f"{t} {workers[t, bers[0]].info['datatypes']}" for t in tools) + ".",
            ""]
    return "\n".join(head + out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--repeats", type=int, default=21, help="timed forwards per configuration (default 21)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed clean+tool forwards first (default 2)")
    ap.add_argument("--check-forwards", type=int, default=1, help="untimed forwards whose flips are counted")
    ap.add_argument("--bers", default="1e-4,1e-6", help="per-bit error rates, comma separated")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per process (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--venvs", default=str(REPO / ".bench-venvs"), help="where the peers' venvs live (made once)")
    ap.add_argument("--skip-mrfi", action="store_true", help="leave MRFI out (no venv needed)")
    ap.add_argument("--skip-pytorchfi", action="store_true", help="leave PyTorchFI out (no venv needed)")
    ap.add_argument("--out", help="also write the markdown report to this file (atomically)")
    ap.add_argument("--worker", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--ber", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    try:
        report = run(args)
    except BenchError as exc:
        print(f"bench_peers: {exc}", file=sys.stderr)
        return 1
    print(report, end="")
    if args.out:
        write_atomic(Path(args.out), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
