"""Train eden's bundled tiny LM (``eden.zoo`` "tiny-lm") and store its weights.

    python scripts/train_tiny_lm.py            # -> eden/assets/zoo/tiny-lm.pt
    python scripts/train_tiny_lm.py --steps 200 --output /tmp/lm.pt

Corpus: the help topics of Python's own ``pydoc_data.topics`` (every CPython ships them;
nothing is downloaded), byte tokens, the train split of ``eden.nn.lm.corpus_text``.
Training: AdamW, cosine learning rate, batches of random windows of 65 bytes drawn by one
seeded generator; one thread, fixed seeds: deterministic for a given Python (the corpus)
and torch. Prints the clean test perplexity and next-token accuracy.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from eden.core.io import write_with
from eden.nn import lm, zoo
from eden.nn.evaluate import evaluate
from eden.workflows.retrain import task_loss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path, default=zoo.weights_path("tiny-lm"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = lm.TinyLM()
    tokens = lm.corpus_tokens("train")
    ctx = model.context_length
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    model.train()
    t0 = time.perf_counter()
    for step in range(args.steps):
        starts = torch.randint(0, tokens.numel() - ctx - 1, (args.batch_size,), generator=gen)
        win = torch.stack([tokens[s:s + ctx + 1] for s in starts.tolist()])
        opt.zero_grad(set_to_none=True)
        loss = task_loss(model(win[:, :-1], use_cache=False), win[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step:5d} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()
    test = lm.pydoc_topics_loader("test", batch_size=64)
    nll = evaluate(model, test, "neg_nll")
    acc = evaluate(model, test, "top1")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_with(args.output, lambda tmp: torch.save(model.state_dict(), tmp), overwrite=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"tiny-lm: {n} parameters, {args.steps} steps in {time.perf_counter() - t0:.0f} s; test perplexity "
          f"{lm.perplexity(nll):.3f} (bytes), next-token accuracy {acc * 100:.2f}%; corpus sha256 "
          f"{lm.corpus_fingerprint()[:16]} -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
