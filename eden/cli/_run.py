"""`eden run`: the whole pipeline on a bundled default (resumable run directory)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import (LazyChoice, apply_metadata_errors, ecc_option, executor_from_options,
                              executor_options, mapping_policies, metadata_errors_option, mode_choice)
from eden.cli._deploy import generation_options


@main.command("run")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("eden-run"),
              show_default=True, help="Where every stage's output goes; rerun to resume.")
@click.option("--model", default="digits-lenet", show_default=True,
              help="Bundled model (digits-lenet, tiny-lm, ...), hf:DIR or package.module:factory.")
@click.option("--data", default="digits", show_default=True,
              help="Bundled dataset (digits, pydoc-topics), text:FILE[:N] or package.module:factory.")
@click.option("--profile", default="ddr4-2400-8gb-x8-vendor-c", show_default=True,
              help="DRAM profile (default: one vendor's reduced-VDD chain, not a pooled average).")
@click.option("--error-model", "-m", default="profile", show_default=True,
              help='Error-model shape for characterization/retraining ("profile": the profile\'s own).')
@click.option("--format", "fmt", default="fp32", show_default=True)
@metadata_errors_option
@click.option("--correction", type=mode_choice("eden.engine.correct", "CorrectionMode"),
              default="zero", show_default=True)
@click.option("--correction-bounds", type=mode_choice("eden.workflows.characterize", "CorrectionBounds"),
              default=None,
              help="The correction's plausible range: each data type's range calibrated in advance on the first "
                   "--calibration-batches batches of the train split (calibrated: what a deployed system has; the "
                   "default with a correction), or each IFM's own min/max per batch (batch); stored in the "
                   "tolerance records.")
@click.option("--calibration-batches", type=click.IntRange(min=1), default=4, show_default=True,
              help="Batches of the train split that --correction-bounds calibrated profiles.")
@ecc_option
@click.option("--target-drop", type=float, default=1.0, show_default=True, help="Accuracy drop allowed (pp).")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--resolution", type=click.FloatRange(min=0.01, max=2), default=0.1, show_default=True)
@click.option("--retrain-epochs", type=click.IntRange(min=2), default=60, show_default=True)
@click.option("--retrain-batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Training samples per retraining batch.")
@click.option("--retrain-gain", type=click.FloatRange(min=1, min_open=True), default=10.0, show_default=True,
              help="Retrain to this multiple of the tolerable BER before retraining.")
@click.option("--policy", type=LazyChoice(mapping_policies), default="milp", show_default=True)
@click.option("--memory-bound-fraction", type=click.FloatRange(min=0, max=1, min_open=True), default=0.5,
              show_default=True)
@click.option("--inference-batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Samples (generation: sequences) per inference for the DRAM traffic model.")
@generation_options
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--restart", is_flag=True, help="Discard an existing run directory with other settings.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@executor_options
def run_cmd(run_dir, model, data, profile, error_model, fmt, no_metadata_errors, correction, correction_bounds,
            calibration_batches, ecc, target_drop, seeds,
            resolution, retrain_epochs, retrain_batch_size, retrain_gain, policy, memory_bound_fraction,
            inference_batch, workload, prompt_tokens, new_tokens, decode_memory_bound_fraction, seed, restart,
            progress, as_json, executor, workers, address, gpus_per_worker):
    """Clean accuracy -> characterize -> retrain -> characterize -> map -> validate -> report."""
    from eden.workflows.pipeline import RunConfig, run_pipeline, summary_text

    if not (0 < target_drop < 100):
        raise click.BadParameter(f"must be in (0, 100), got {target_drop}", param_hint="--target-drop")
    fmt = apply_metadata_errors(fmt, no_metadata_errors)
    if correction_bounds == "calibrated" and correction == "none":
        raise click.BadParameter("calibrated bounds are the range of a correction: give --correction zero|clamp",
                                 param_hint="--correction-bounds")
    cfg = RunConfig(model=model, data=data, profile=profile, error_model=error_model, format=fmt,
                    correction=correction, target_drop_pp=target_drop, seeds=seeds, resolution_decades=resolution,
                    retrain_epochs=retrain_epochs, retrain_batch_size=retrain_batch_size, retrain_gain=retrain_gain,
                    policy=policy, memory_bound_fraction=memory_bound_fraction, seed=seed,
                    inference_batch=inference_batch, workload=workload, prompt_tokens=prompt_tokens,
                    new_tokens=new_tokens, decode_memory_bound_fraction=decode_memory_bound_fraction, ecc=ecc,
                    correction_bounds=correction_bounds, calibration_batches=calibration_batches)
    log = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    with executor_from_options(executor, workers, address, gpus_per_worker) as ex:
        summary = run_pipeline(run_dir, cfg, restart=restart, progress=progress, log=log, executor=ex)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo("")
        click.echo(summary_text(summary))
        click.echo(f"\nall outputs in {run_dir}/ (summary.json, report.md, tolerance_*.json, mapping*.json, plots)")
