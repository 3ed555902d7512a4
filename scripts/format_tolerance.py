"""Issue-18 study: tolerable BER of the bundled models per numeric format, with and without errors
in the metadata the format stores in DRAM, and the metadata's share of the damage.

    python scripts/format_tolerance.py [--models digits-lenet digits-resnet] [--seeds 5]
                                       [--out docs/format_tolerance.md] [--cache format_tolerance.json]

For every model and format: a coarse tolerable-BER search (em0, every data type, target: mean
top-1 within 1 percentage point of the model in the same format without errors, bisection to 0.1
decade, zero correction) once per device seed, so each seed gives its own tolerable BER; the
table shows their geometric mean and the 95% t-interval of log10 BER over the seeds. Block
formats (MX, group-wise) run twice: metadata errors on (default) and off (--no-metadata-errors).
Then the metadata's share of the damage: at the tolerable BER with metadata errors (the geometric
mean), the accuracy drop with metadata errors and without, over the same seeds (the element
errors are the same draws in both). Every finished cell is kept in the cache JSON, so a rerun
resumes. Writes a markdown fragment (pasted into docs/formats.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats as st

from eden.core.io import write_json, write_text
from eden.errormodels.model import ErrorModel
from eden.nn import zoo
from eden.nn.emulate import EmulationPlan, emulate
from eden.nn.evaluate import evaluate
from eden.nn.quant import NumericFormat
from eden.workflows.characterize import characterize

FORMATS = [("fp32 + zero", "fp32"), ("bf16", "bf16"), ("fp8 e4m3", "fp8_e4m3"), ("MXFP8 (e4m3)", "mxfp8_e4m3"),
           ("MXFP4", "mxfp4"), ("int8, g=128", "int8:group=128,flat"), ("int4, g=128", "int4:group=128,flat")]
SHAPE = "em0:p=1e-3"
CORRECTION = "zero"


def _ci(values: list[float]) -> tuple[float, float, float]:
    """(geometric mean, low, high) of BERs: mean and 95% t-interval of log10 BER."""
    logs = np.log10(np.asarray(values, float))
    m = float(logs.mean())
    if len(logs) < 2:
        return 10 ** m, 10 ** m, 10 ** m
    h = float(st.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)))
    return 10 ** m, 10 ** (m - h), 10 ** (m + h)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["digits-lenet", "digits-resnet"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("docs/format_tolerance.md"))
    ap.add_argument("--cache", type=Path, default=Path("format_tolerance.json"))
    args = ap.parse_args(argv)
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    loader = zoo.digits_loader("test", batch_size=512)
    t0 = time.perf_counter()
    em = ErrorModel.coerce(SHAPE)
    for model_id in args.models:
        model = zoo.load_model(model_id)
        for _label, spec in FORMATS:
            variants = [spec]
            if NumericFormat.parse(spec).codec is not None:
                variants.append(str(NumericFormat.parse(spec).without_metadata_errors()))
            for fmt in variants:
                for seed in range(args.seeds):
                    key = f"{model_id}|{fmt}|{seed}"
                    if key in cache:
                        continue
                    rec = characterize(model, loader, SHAPE, format=fmt, correction=CORRECTION, mode="coarse",
                                       seeds=[seed], model_id=model_id, data_id="digits")
                    cache[key] = {"tolerable_ber": rec["coarse"]["tolerable_ber"],
                                  "clean_in_format": rec["baseline"]["clean_in_format"]}
                    write_json(args.cache, cache, overwrite=True)
                    print(f"{time.perf_counter() - t0:7.0f}s {key}: {cache[key]}", flush=True)
            if len(variants) == 2:  # the metadata's share of the damage at the tolerable BER with metadata errors
                key = f"{model_id}|{spec}|share"
                if key not in cache:
                    bers = [cache[f"{model_id}|{spec}|{s}"]["tolerable_ber"] for s in range(args.seeds)]
                    ber = _ci(bers)[0]
                    clean = cache[f"{model_id}|{spec}|0"]["clean_in_format"]
                    acc = {}
                    for fmt in variants:
                        plan = EmulationPlan.uniform(em.at_ber(ber), format=fmt, correction=CORRECTION)
                        accs = []
                        for seed in range(args.seeds):
                            with emulate(model, plan, seed=seed):
                                accs.append(evaluate(model, loader))
                        acc[fmt] = accs
                    cache[key] = {"ber": ber, "clean_in_format": clean, "accuracy_with": acc[variants[0]],
                                  "accuracy_without": acc[variants[1]]}
                    write_json(args.cache, cache, overwrite=True)
                    print(f"{time.perf_counter() - t0:7.0f}s {key}: {cache[key]}", flush=True)
    lines = [f"Made by `python scripts/format_tolerance.py --seeds {args.seeds}` (eden, CPU): error model shape "
             f"`{SHAPE}` scaled to each BER, every data type (weights and IFMs) in the format, `{CORRECTION}` "
             "correction, target: mean top-1 within 1 pp of the model in that format without errors, 0.1-decade "
             f"bisection, one search per device seed (0..{args.seeds - 1}); geometric mean [95% CI] of the "
             "seeds' tolerable BERs.", ""]
    for model_id in args.models:
        lines += [f"### {model_id}", "",
                  "| format | clean top-1 | metadata | tolerable BER, metadata errors on | metadata errors off |"
                  " metadata bits | drop at the BER (on / off) | metadata's share of the drop |",
                  "|---|---|---|---|---|---|---|---|"]
        for label, spec in FORMATS:
            nf = NumericFormat.parse(spec)
            rows = [cache.get(f"{model_id}|{spec}|{s}") for s in range(args.seeds)]
            if any(r is None for r in rows):
                continue
            gm, lo, hi = _ci([r["tolerable_ber"] for r in rows])
            on = f"{gm:.2g} [{lo:.2g}, {hi:.2g}]"
            clean = f"{rows[0]['clean_in_format'] * 100:.2f}%"
            if nf.codec is None:
                lines.append(f"| {label} | {clean} | none in DRAM | {on} | (same) | 0% | | |")
                continue
            off_rows = [cache.get(f"{model_id}|{nf.without_metadata_errors()}|{s}") for s in range(args.seeds)]
            gm2, lo2, hi2 = _ci([r["tolerable_ber"] for r in off_rows])
            lay = nf.codec.layout
            meta_pct = 100 * sum(lay.meta_bytes) / lay.block_bytes
            share = cache[f"{model_id}|{spec}|share"]
            d_on = share["clean_in_format"] - float(np.mean(share["accuracy_with"]))
            d_off = share["clean_in_format"] - float(np.mean(share["accuracy_without"]))
            frac = f"{100 * (d_on - d_off) / d_on:.0f}%" if d_on > 0 else "n/a"
            what = "E8M0 scale per 32" if "mx" in spec else f"fp16 scale per {nf.group_size}"
            lines.append(f"| {label} | {clean} | {what} | {on} | {gm2:.2g} [{lo2:.2g}, {hi2:.2g}] | "
                         f"{meta_pct:.1f}% | {100 * d_on:.2f} / {100 * d_off:.2f} pp at {share['ber']:.2g} | "
                         f"{frac} |")
        lines.append("")
    write_text(args.out, "\n".join(lines), overwrite=True)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
