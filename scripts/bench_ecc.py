"""Cost of the ECC step next to raw injection, side by side in one run (ratios, not absolute times).

    python scripts/bench_ecc.py [--mib 16] [--reps 5]

For a float32 tensor of --mib MiB and raw BERs 1e-6 .. 1e-3: the median time of ``inject_`` + ``undo``
without ECC and with each code, on the CPU backend. The ECC step decodes only codewords with raw
errors (plus drawing the check bits in their own array), so its cost follows the error count.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from eden.engine.ops import inject_


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    x = np.random.default_rng(0).standard_normal(args.mib * (1 << 18)).astype(np.float32)
    codes = ("secded72", "ondie136", "chipkill144")
    print(f"{'raw BER':>8} {'none [ms]':>10} " + " ".join(f"{c + ' / none':>18}" for c in codes)
          + f" {'raw errors':>11}")
    for p in (1e-6, 1e-5, 1e-4, 1e-3):
        times: dict[str, list[float]] = {"none": [], **{c: [] for c in codes}}
        n = 0
        for rep in range(args.reps + 1):
            for code in times:  # interleaved: all see the same machine load
                t0 = time.perf_counter()
                log = inject_(x, f"em0:p={p}", seed=rep, ecc=code, backend="cpu")
                log.undo()
                if rep:  # the first round warms the caches (plans, numba)
                    times[code].append(time.perf_counter() - t0)
                if code == "secded72":
                    n = log.ecc.raw_bit_errors
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{p:>8.0e} {med['none'] * 1e3:>10.2f} " + " ".join(f"{med[c] / med['none']:>18.2f}" for c in codes)
              + f" {n:>11d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
