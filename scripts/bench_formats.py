"""Emulated forward time per numeric format, side by side, on the bundled digits models.

    python scripts/bench_formats.py [--model digits-lenet] [--batch 359] [--repeats 7] [--ber 1e-4]

Every data type (weights and IFMs) in each format with em0 errors at ``--ber`` and zero
correction; access persistence, so every forward redraws the errors of every weight and IFM,
re-reads the block formats' buffers, and re-encodes every IFM. Times are medians of interleaved
runs (one forward of each format per round); the ratio to fp32 in the same run is what to read.
Block formats (MX, group-wise) encode and decode on the host in NumPy (docs/formats.md).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from eden.errormodels.model import ErrorModel
from eden.nn import zoo
from eden.nn.emulate import EmulationPlan, emulate

FORMATS = ["fp32", "bf16", "fp8_e4m3", "int8", "mxfp8_e4m3", "mxfp6_e3m2", "mxfp4", "mxfp4:interleaved",
           "int8:group=128,flat", "int4:group=128,flat,asym", "nf4:group=64,flat"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="digits-lenet")
    ap.add_argument("--batch", type=int, default=359)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--ber", type=float, default=1e-4)
    args = ap.parse_args(argv)
    model = zoo.load_model(args.model)
    x = zoo.digits_split("test")[0][: args.batch]
    em = ErrorModel.coerce("em0:p=1e-3;persistence=access").at_ber(args.ber)
    times: dict[str, list[float]] = {f: [] for f in FORMATS}
    emus = {f: emulate(model, EmulationPlan.uniform(em, format=f, correction="zero" if f != "int8" else "none"),
                       seed=1) for f in FORMATS}
    with torch.no_grad():
        for r in range(args.repeats + 1):
            for f, emu in emus.items():
                with emu:
                    model(x)  # the first forward encodes the weights
                    t0 = time.perf_counter()
                    model(x)
                    dt = time.perf_counter() - t0
                if r:  # round 0 warms up
                    times[f].append(dt)
    base = statistics.median(times["fp32"])
    print(f"{args.model}, batch {args.batch}, em0 at BER {args.ber:g}, every data type, median of {args.repeats}")
    print(f"{'format':28s} {'ms/forward':>10s} {'vs fp32':>8s}")
    for f in FORMATS:
        m = statistics.median(times[f])
        print(f"{f:28s} {m * 1e3:10.2f} {m / base:8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
