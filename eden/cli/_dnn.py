"""`eden datatypes`, `eden emulate`, `eden characterize`: DNNs on emulated approximate DRAM."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import (LazyChoice, apply_metadata_errors, build_model_and_data, ecc_option,
                              error_model_options,
                              executor_from_options, executor_options, fail, metadata_errors_option,
                              mode_choice, model_options, resolve_error_model)
from eden.errors import EdenFileError


def _metrics() -> list[str]:
    from eden.nn.evaluate import METRICS

    return sorted(METRICS)


def _parse_increase(text: str) -> float:
    """``1%`` or ``0.01`` -> 0.01 (a relative perplexity increase, > 0)."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise click.BadParameter(f"expected a relative increase like 1% or 0.01, got {text!r}",
                                 param_hint="--target-ppl-increase") from None
    if not (0 < value < math.e - 1):
        raise click.BadParameter(f"must be in (0%, {100 * (math.e - 1):.0f}%), got {text!r}",
                                 param_hint="--target-ppl-increase")
    return value


@main.command("datatypes")
@model_options
@click.option("--format", "fmt", default="fp32", show_default=True, help="Numeric format for the sizes.")
@click.option("--json", "as_json", is_flag=True)
def datatypes_cmd(model_spec, weights, data_spec, batch_size, device, fmt, as_json):
    """List a model's data types (weights and IFMs) with their sizes."""
    from eden.nn.emulate import datatypes
    from eden.nn.quant import NumericFormat

    model, model_id, loader, dev = build_model_and_data(model_spec, weights, data_spec, batch_size, device)
    first = next(iter(loader), None)
    if first is None:
        fail("the dataset yielded no batches")
    fmt = NumericFormat.parse(fmt)
    x = first[0].to(dev)
    rows = []
    for d in datatypes(model, x):
        row = {"name": d.name, "kind": d.kind, "shape": list(d.shape), "numel": d.numel, "bytes": d.size_bytes(fmt)}
        if d.kind == "kv_cache" and len(d.shape) == 4:  # [batch, kv_heads, tokens, head_dim]
            row["bytes_per_token"] = fmt.storage_bytes(d.shape[1] * d.shape[3])  # one token of one sequence
        rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    kv = [r for r in rows if "bytes_per_token" in r]
    shape = tuple(x.shape)
    click.echo(f"{model_id}: {len(rows)} data types (IFM and KV-cache sizes for an input of shape {shape}), "
               f"format {fmt}")
    for r in rows:
        extra = f"  {r['bytes_per_token']:>8d} B/token" if "bytes_per_token" in r else ""
        click.echo(f"  {r['name']:44s} {r['kind']:8s} {str(tuple(r['shape'])):22s} {r['bytes']:>12d} B{extra}")
    if kv:
        click.echo(f"KV cache: {len(kv)} data types, {sum(r['bytes_per_token'] for r in kv)} B per token of one "
                   "sequence (all layers, K and V)")


def _plan_from_options(plan_path, em, fmt, correction, select, ecc="none"):
    from eden.nn.emulate import EmulationPlan

    if plan_path is not None:
        try:
            data = json.loads(plan_path.read_text())
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON
            raise EdenFileError(plan_path, "/", f"not a readable JSON eden plan: {exc}") from None
        return EmulationPlan.from_dict(data, source=str(plan_path))
    return EmulationPlan.uniform(em, format=fmt, correction=correction, select=list(select) or "*", ecc=ecc)


@main.command("emulate")
@model_options
@error_model_options
@click.option("--format", "fmt", default="fp32", show_default=True,
              help="Numeric format: fp32, fp16, bf16, fp8_e4m3, fp8_e5m2, int16, int8, int4 "
                   "[:symmetric|affine,tensor|channel], int4|int8:group=G[,asym][,scale=bf16], mxfp8_e4m3, "
                   "mxfp8_e5m2, mxfp6_e3m2, mxfp6_e2m3, mxfp4, mxint8 [:interleaved] (docs/formats.md).")
@metadata_errors_option
@click.option("--correction", type=mode_choice("eden.engine.correct", "CorrectionMode"),
              default="none", show_default=True)
@click.option("--select", multiple=True, metavar="PATTERN",
              help="Data types to corrupt (glob; repeatable; a leading '!' leaves matches out, e.g. "
                   "'!stem.0.ifm': all but the input). Default: all.")
@click.option("--plan", "plan_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An eden-plan JSON file instead of the options above.")
@click.option("--metric", type=LazyChoice(_metrics), default="top1", show_default=True,
              help="top1 (accuracy; next-token accuracy of a language model), top5, or neg_nll (-ln perplexity).")
@click.option("--kv-semantics", type=mode_choice("eden.nn.kvcache", "KVSemantics"), default="access",
              show_default=True, help="Errors of the KV cache (transformers): redrawn on every read (access) or "
                                      "stored once and kept for later reads (stored).")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Device seeds 0..N-1.")
@ecc_option
@click.option("--json", "as_json", is_flag=True)
def emulate_cmd(model_spec, weights, data_spec, batch_size, device, error_model, profile, op, fmt, no_metadata_errors,
                correction, select, plan_path, metric, kv_semantics, seeds, ecc, as_json):
    """Evaluate a model with bit errors in its data types (mean and 95% CI over seeds)."""
    from eden.nn.emulate import emulate
    from eden.nn.evaluate import estimate, evaluate

    if plan_path is not None and (error_model or profile or op or select or no_metadata_errors):
        raise click.BadParameter("--plan cannot be combined with --error-model/--profile/--op/--select/"
                                 "--no-metadata-errors (a plan entry says \"metadata_errors\": false)",
                                 param_hint="--plan")
    fmt = apply_metadata_errors(fmt, no_metadata_errors)
    em = None if plan_path is not None else resolve_error_model(error_model, profile, op)
    plan = _plan_from_options(plan_path, em, fmt, correction, select, ecc)
    model, model_id, loader, dev = build_model_and_data(model_spec, weights, data_spec, batch_size, device)
    if plan.entries and not plan.resolve(model):
        fail("the plan leaves no data type of the model to corrupt (see `eden datatypes`)")
    clean = evaluate(model, loader, metric, device=dev)
    values, summaries = [], []
    for seed in range(seeds):
        with emulate(model, plan, seed=seed, kv_semantics=kv_semantics) as emu:
            values.append(evaluate(model, loader, metric, device=dev))
        summaries.append(emu.summary())
    est = estimate(values)
    bits = sum(s["bits"] for s in summaries[0].values())
    flipped = sum(s["flipped_bits"] for summ in summaries for s in summ.values())
    out = {"model": model_id, "plan": plan.to_dict(), "metric": metric, "clean_accuracy": clean,
           "accuracy": est.to_dict(),
           "seeds": list(range(seeds)), "datatypes": summaries[0],
           "realized_ber": flipped / (bits * seeds) if bits else 0.0}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if metric == "neg_nll":
        lo, hi = est.ci_low, est.ci_high
        value = (f"clean perplexity {math.exp(-clean):.4g}, emulated {math.exp(-est.mean):.4g} "
                 f"[{math.exp(-hi):.4g}, {math.exp(-lo):.4g}]")
    else:
        value = f"clean {metric} {clean * 100:.2f}%, emulated {est}"
    click.echo(f"{model_id}: {value} (95% CI over {seeds} seeds), {len(summaries[0])} data types corrupted, "
               f"realized BER {out['realized_ber']:.3g}")


@main.command("characterize")
@model_options
@error_model_options
@click.option("--format", "fmt", default="fp32", show_default=True, help="Numeric format of every data type.")
@metadata_errors_option
@click.option("--correction", type=mode_choice("eden.engine.correct", "CorrectionMode"),
              default="none", show_default=True)
@click.option("--correction-bounds", type=mode_choice("eden.workflows.characterize", "CorrectionBounds"),
              default="batch", show_default=True,
              help="The correction's plausible range: each tensor's own min/max, per batch for an IFM (batch), or "
                   "each data type's range calibrated in advance on the first --calibration-batches batches of the "
                   "data's train split and stored in the tolerance file (calibrated; needs --correction).")
@click.option("--calibration-batches", type=click.IntRange(min=1), default=4, show_default=True,
              help="Batches of the train split that --correction-bounds calibrated profiles.")
@click.option("--mode", type=mode_choice("eden.workflows.characterize", "CharacterizationMode"), default="both",
              show_default=True,
              help="coarse/fine/both: tolerable BERs; leave-one-out: at --ber, every data type, each alone and all "
                   "but each.")
@click.option("--ber", type=click.FloatRange(min=0, max=0.5, min_open=True), default=None,
              help="The BER of --mode leave-one-out (required there).")
@click.option("--target-drop", type=float, default=1.0, show_default=True,
              help="Allowed accuracy drop in percentage points, in (0, 100).")
@click.option("--metric", type=LazyChoice(_metrics), default=None,
              help="What is measured: top1 (accuracy; next-token accuracy of a language model), top5, or neg_nll "
                   "(-ln perplexity). Default: top1, or neg_nll with --target-ppl-increase.")
@click.option("--target-ppl-increase", "ppl_increase", default=None, metavar="X%",
              help="Language models: a BER point passes when its perplexity is at most (1 + X) times the clean "
                   "one, e.g. 1% (the mean of ln perplexity over seeds is compared; sets --metric neg_nll).")
@click.option("--kv-semantics", type=mode_choice("eden.nn.kvcache", "KVSemantics"), default="access",
              show_default=True, help="Errors of the KV cache (transformers): redrawn on every read (access) or "
                                      "stored once and kept for later reads (stored).")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Device seeds per BER point.")
@click.option("--criterion", type=mode_choice("eden.workflows.characterize", "Criterion"),
              default="mean", show_default=True)
@click.option("--resolution", type=click.FloatRange(min=0.01, max=2), default=0.1, show_default=True,
              help="Bisection resolution in decades of BER.")
@click.option("--select", multiple=True, metavar="PATTERN",
              help="Data types to characterize (glob; repeatable; a leading '!' leaves matches out). Default: all.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("tolerance.json"),
              show_default=True, help="Tolerance file to write.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw accuracy-vs-BER curves to this PNG.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the tolerance record instead of the table.")
@executor_options
@ecc_option
def characterize_cmd(model_spec, weights, data_spec, batch_size, device, error_model, profile, op, fmt,
                     no_metadata_errors, correction, correction_bounds, calibration_batches, mode, ber,
                     target_drop, metric, ppl_increase, kv_semantics, seeds, criterion, resolution, select, output,
                     plot_path, force, progress, as_json, ecc, executor, workers, address, gpus_per_worker):
    """Find the tolerable BER of a model: coarse (all data types) and per data type.

    The error model (default em0) gives the *shape* of the errors; it is scaled to
    every BER tried. With --profile/--op, the shape of that operating point's model.
    --mode leave-one-out --ber B explains a failure at one BER instead: accuracy with
    every data type corrupted, each alone (its cost) and all but each (what leaving
    it out saves).

    --executor ray spreads the evaluations over a Ray cluster (--workers, --address); the
    tolerance file is the same, and an interrupted run resumes on either executor.
    """
    from eden.nn.kvcache import set_semantics
    from eden.workflows.characterize import characterize, plot_tolerance, save_tolerance, tolerance_table

    if not (0 < target_drop < 100):
        raise click.BadParameter(f"must be in (0, 100), got {target_drop}", param_hint="--target-drop")
    increase = None
    if ppl_increase is not None:
        ctx = click.get_current_context()
        if ctx.get_parameter_source("target_drop") is not click.core.ParameterSource.DEFAULT:
            raise click.BadParameter("give either --target-drop or --target-ppl-increase", param_hint="--target-drop")
        if metric not in (None, "neg_nll"):
            raise click.BadParameter("--target-ppl-increase measures perplexity: it needs --metric neg_nll",
                                     param_hint="--metric")
        increase = _parse_increase(ppl_increase)
        metric = "neg_nll"
        target_drop = 100 * math.log1p(increase)  # in nats of -ln(perplexity), x 100 ("percentage points")
    metric = metric or "top1"
    fmt = apply_metadata_errors(fmt, no_metadata_errors)
    if (ber is None) == (mode == "leave-one-out"):
        raise click.BadParameter("--mode leave-one-out needs --ber, and --ber belongs to that mode only",
                                 param_hint="--ber")
    for p in (output, plot_path):
        if p is not None and p.exists() and not force:
            fail(f"{p} exists; pass --force to overwrite it")
    if error_model is None and profile is None and op is None:
        error_model = "em0:p=1e-3"
    em = resolve_error_model(error_model, profile, op)
    if em.expected_ber() == 0:
        raise click.BadParameter("the error model has no errors (BER 0), so it has no shape to scale; pick an "
                                 "operating point with errors", param_hint="--op")
    ex = executor_from_options(executor, workers, address, gpus_per_worker)
    model, model_id, loader, dev = build_model_and_data(model_spec, weights, data_spec, batch_size, device)
    set_semantics(model, kv_semantics)
    calibration = None
    if correction_bounds == "calibrated":
        from eden.nn import zoo

        if correction == "none":
            raise click.BadParameter("calibrated bounds are the range of a correction: give --correction zero|clamp",
                                     param_hint="--correction-bounds")
        calibration = zoo.build_data(data_spec, split="train", batch_size=batch_size, model=model)
    cache = output.with_name(output.name + ".partial")
    with ex:
        record = characterize(model, loader, em, format=fmt, correction=correction, mode=mode, metric=metric,
                              target_drop_pp=target_drop, seeds=seeds, criterion=criterion,
                              resolution_decades=resolution, select=list(select) or None, model_id=model_id,
                              data_id=data_spec, cache_path=cache, progress=progress, device=dev, ber=ber,
                              executor=ex, ecc=ecc, correction_bounds=correction_bounds,
                              calibration_loader=calibration, calibration_batches=calibration_batches,
                              calibration_id=f"{data_spec}:train" if calibration is not None else None)
    if increase is not None:
        record["target_ppl_increase"] = increase
    save_tolerance(record, output, overwrite=force)
    if cache.exists():
        cache.unlink()
    if plot_path is not None:
        plot_tolerance(record, plot_path, overwrite=force)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    click.echo(tolerance_table(record))
    click.echo(f"\nwrote {output}" + (f" and {plot_path}" if plot_path else "")
               + f" ({record['evaluations']} evaluations)")
