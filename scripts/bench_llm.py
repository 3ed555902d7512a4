"""LLM benchmarks, ratios measured side by side in one run.

    python scripts/bench_llm.py                   # both parts
    python scripts/bench_llm.py --part inject     # 1B bf16 weight injection only
    python scripts/bench_llm.py --part decode --new-tokens 8

1. **1B-parameter bf16 weight injection** (synthetic initialisation: a TinyLM of width
   2048 and 20 blocks, 1.0 B parameters, ``torch.randn`` in bf16): every weight at BER
   1e-4 (em0), injected in place through ``eden.nn.emulate`` (enter) and undone (exit).
   Prints the inject+undo time over the time of ``clone()`` of all weights (what a copy of
   the model would cost), and the peak extra resident memory during inject+undo as a
   fraction of the weights' size (resident memory sampled by a thread every 2 ms).
   Checks that the weights come back bit-exactly.
2. **Emulated vs clean decode time per token** (greedy decoding with eden's KVCache: a
   prefill of ``--prompt`` tokens, then ``--new-tokens`` steps at batch 1), on the bundled
   tiny LM and on the synthetic 1B model: clean, and emulated with every data type
   (weights redrawn every step under access persistence, IFMs, KV caches) at BER 1e-4
   with correction zero, for both KV semantics. CPU, plus CUDA when a GPU and CuPy are there.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time

import torch

from eden.nn import zoo
from eden.nn.emulate import EmulationPlan, emulate
from eden.nn.lm import KVCache, TinyLM

BER = 1e-4


def synthetic_1b(device="cpu") -> TinyLM:
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("meta"):
            model = TinyLM(vocab=256, dim=2048, layers=20, heads=16, context=1024)
        model = model.to_empty(device=device)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.02)
    finally:
        torch.set_default_dtype(prev)
    return model.eval()


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory over a block, sampled by a thread every 2 ms."""

    def __enter__(self):
        self.base = _rss()
        self.peak = self.base
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()
        self.peak = max(self.peak, _rss())


def bench_inject() -> None:
    model = synthetic_1b()
    params = [p for p in model.parameters()]
    n = sum(p.numel() for p in params)
    nbytes = sum(p.numel() * p.element_size() for p in params)
    before = {id(p): p.detach().view(torch.int16)[:4096].clone() for p in params}
    bias_plan = EmulationPlan.uniform(f"em0:p={BER}", format="bf16", select=["*.weight", "*.bias"])
    # warm-up: numba compilation and plan caches on a small model
    small = TinyLM().to(torch.bfloat16)
    with emulate(small, bias_plan, seed=0):
        pass
    gc.collect()
    inject, undo, clone, peak = [], [], [], 0
    for _ in range(3):  # best of 3 for each, interleaved (a busy machine slows either)
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            emu = emulate(model, bias_plan, seed=1)
            emu.__enter__()
            t1 = time.perf_counter()
            emu.__exit__(None, None, None)
            t2 = time.perf_counter()
        inject.append(t1 - t0)
        undo.append(t2 - t1)
        peak = max(peak, mem.peak - mem.base)
        flips = sum(s.flipped_bits for s in emu.stats.values())
        t3 = time.perf_counter()
        copies = [p.detach().clone() for p in params]
        t4 = time.perf_counter()
        del copies
        gc.collect()
        clone.append(t4 - t3)
    ok = all(torch.equal(p.detach().view(torch.int16)[:4096], before[id(p)]) for p in params)
    t_inj, t_undo, t_clone = min(inject), min(undo), min(clone)
    print(f"1B bf16 weight injection: {n / 1e9:.3f} B parameters, {nbytes / 2**30:.2f} GiB, {flips} bits flipped "
          f"(BER {flips / (nbytes * 8):.3g})")
    print(f"  first (plans compiled): inject {inject[0]:.2f} s + undo {undo[0]:.2f} s; clone() {clone[0]:.2f} s; "
          f"ratio {(inject[0] + undo[0]) / clone[0]:.2f}")
    print(f"  inject {t_inj:.2f} s + undo {t_undo:.2f} s = {t_inj + t_undo:.2f} s; clone() of all weights "
          f"{t_clone:.2f} s (best of 3 each, plans cached as in every later forward pass); ratio (inject+undo)/clone "
          f"= {(t_inj + t_undo) / t_clone:.2f}")
    print(f"  peak extra RSS during inject+undo {peak / 2**20:.1f} MiB = {peak / nbytes * 100:.2f}% of the "
          f"weights; restored bit-exactly: {ok}")


def _decode(model, prompt: torch.Tensor, new_tokens: int) -> tuple[float, float]:
    """(prefill seconds, seconds per decode step) of greedy decoding."""
    cache = KVCache()
    with torch.no_grad():
        t0 = time.perf_counter()
        logits = model(prompt, cache=cache)
        t1 = time.perf_counter()
        nxt = logits[:, -1:].float().argmax(-1)
        for _ in range(new_tokens):
            nxt = model(nxt, cache=cache)[:, -1:].float().argmax(-1)
        t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) / new_tokens


def bench_decode(name: str, model, prompt_len: int, new_tokens: int, device: str, fmt: str) -> None:
    prompt = torch.tensor([list(zoo_text()[:prompt_len])], device=device)
    plan = EmulationPlan.uniform(f"em0:p={BER}", format=fmt, correction="zero")
    _decode(model, prompt[:, :4], 2)  # warm-up
    with emulate(model, plan, seed=0):
        _decode(model, prompt[:, :4], 2)
    rows = [("clean", _decode(model, prompt, new_tokens))]
    for sem in ("access", "stored"):
        with emulate(model, plan, seed=1, kv_semantics=sem):
            rows.append((f"emulated, KV {sem}", _decode(model, prompt, new_tokens)))
    base = rows[0][1][1]
    print(f"{name} on {device}: prompt {prompt_len}, {new_tokens} decode steps, batch 1, every data type at BER "
          f"{BER:g} ({fmt}, correction zero)")
    for label, (pre, step) in rows:
        print(f"  {label:22s} prefill {pre * 1e3:9.2f} ms   per token {step * 1e3:9.2f} ms   "
              f"ratio to clean {step / base:6.2f}")


def zoo_text() -> bytes:
    from eden.nn.lm import corpus_text

    return corpus_text("test").encode()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("inject", "decode", "all"), default="all")
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--new-tokens-1b", type=int, default=4)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    if args.part in ("inject", "all"):
        bench_inject()
        gc.collect()
    if args.part in ("decode", "all"):
        devices = ["cpu"]
        try:
            import cupy  # noqa: F401

            if torch.cuda.is_available():
                devices.append("cuda")
        except ImportError:
            pass
        for dev in devices:
            tiny = zoo.load_model("tiny-lm").to(dev)
            bench_decode("tiny-lm (fp32)", tiny, args.prompt, args.new_tokens, dev, "fp32")
            big = synthetic_1b(dev)
            bench_decode("synthetic 1B (bf16)", big, args.prompt, args.new_tokens_1b, dev, "bf16")
            del big
            gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
