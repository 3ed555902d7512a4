"""The two KV-cache semantics on the bundled tiny LM, evaluated as decoding does.

    python scripts/llm_kv_semantics.py

A teacher-forced forward pass writes each cache entry once and reads it once, so ``access``
and ``stored`` draw the same bits there. ``eden.nn.lm.Stepwise`` evaluates the same windows
with a prefill of 8 tokens and then one forward pass per token through the KV cache, where
every step reads the whole cache again. Prints the perplexity (mean of ln perplexity over 3
seeds, 95% CI) of 32 test windows with every KV cache at each BER, per semantics.
"""

from __future__ import annotations

import math

from eden.nn import lm, zoo
from eden.nn.emulate import EmulationPlan, emulate
from eden.nn.evaluate import estimate, evaluate


def main() -> int:
    m = zoo.load_model("tiny-lm")
    x, y = next(iter(zoo.build_data("pydoc-topics", "test", 32)))
    loader = [(x, y)]
    sw = lm.Stepwise(m, prefill=8)
    print(f"clean perplexity: stepwise {math.exp(-evaluate(sw, loader, 'neg_nll')):.4f}, "
          f"one pass {math.exp(-evaluate(m, loader, 'neg_nll')):.4f}")
    for ber in (1e-3, 3e-3):
        plan = EmulationPlan.uniform(f"em0:p={ber}", correction="zero", select="*_cache")
        for sem in ("access", "stored"):
            vals = []
            for s in range(3):
                with emulate(m, plan, seed=s, kv_semantics=sem):
                    vals.append(evaluate(sw, loader, "neg_nll"))
            e = estimate(vals)
            print(f"KV caches at BER {ber:g}, {sem}: perplexity {math.exp(-e.mean):.4f} "
                  f"[{math.exp(-e.ci_high):.4f}, {math.exp(-e.ci_low):.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
