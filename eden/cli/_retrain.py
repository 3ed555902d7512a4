"""`eden retrain`: curricular retraining for approximate DRAM (one process, or data-parallel under torchrun)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import (apply_metadata_errors, build_model_and_data, ecc_option, error_model_options, fail,
                              metadata_errors_option, mode_choice, model_options, resolve_model_choice)
from eden.errors import EdenError

DEFAULT_SHAPE = "em0:p=1e-3"


def _parse_target(value: str):
    """--target-ber: a BER, '<k>x' or 'model' (RetrainConfig checks the range)."""
    v = value.strip()
    if v == "model" or v.lower().endswith("x"):
        return v
    try:
        return float(v)
    except ValueError:
        raise click.BadParameter(f"expected a BER in (0, 0.5], '<k>x' (e.g. 10x) or 'model', got {value!r}",
                                 param_hint="--target-ber") from None


def _train_dataset(train_spec: str | None, data_spec: str, model=None):
    from eden.nn import zoo

    spec = train_spec if train_spec is not None else data_spec
    if spec.startswith("text:"):
        return zoo.build_data(spec, split="train", model=model).dataset, spec
    if spec in zoo.DATASETS:
        return zoo.build_data(spec, split="train").dataset, f"{spec}:train"
    if train_spec is None:
        raise click.BadParameter(f"--data {data_spec} is a factory, so eden cannot pick its training split: give "
                                 "--train-data too", param_hint="--train-data")
    try:
        factory = zoo.resolve_factory(spec, "training data")
    except EdenError as exc:
        raise click.BadParameter(str(exc), param_hint="--train-data") from None
    return factory(), spec


def _init_distributed(device: str | None):
    """Join torchrun's process group (WORLD_SIZE > 1); returns (rank, device) or (0, device)."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, device
    if not torch.distributed.is_available():
        fail("WORLD_SIZE > 1 but this torch has no torch.distributed")
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda"):
        dev = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(dev))
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.startswith("cuda") else "gloo")
    return torch.distributed.get_rank(), dev


@main.command("retrain")
@model_options
@error_model_options
@click.option("--train-data", "train_spec", default=None,
              help="Training data: a bundled dataset name (its train split), text:FILE[:N] (windows of a text file, "
                   "for language models) or package.module:factory returning a map-style Dataset or a DataLoader "
                   "over one. Default: the train split of --data.")
@click.option("--format", "fmt", default="fp32", show_default=True, help="Numeric format of every data type.")
@metadata_errors_option
@click.option("--correction", type=mode_choice("eden.engine.correct", "CorrectionMode"),
              default="none", show_default=True)
@ecc_option
@click.option("--select", multiple=True, metavar="PATTERN",
              help="Data types with errors (glob; repeatable; a leading '!' leaves matches out, e.g. "
                   "'!stem.0.ifm': all but the input). Default: all.")
@click.option("--target-ber", default="10x", show_default=True, metavar="BER|<k>x|model",
              help="Final BER: a number in (0, 0.5], k times the tolerable BER before retraining, or the error "
                   "model's own BER (e.g. the --profile/--op operating point).")
@click.option("--schedule", type=mode_choice("eden.workflows.retrain", "Schedule"), default="geometric",
              show_default=True, help="How the BER rises over the epochs (constant: the target from epoch 1).")
@click.option("--start-ber", type=float, default=None, help="BER of the first epoch (ramps; default target/100).")
@click.option("--ramp-epochs", type=click.IntRange(min=0), default=None,
              help="Epochs before the target is reached (default: half of --epochs).")
@click.option("--steps", type=click.IntRange(min=1), default=3, show_default=True, help="Levels of the step schedule.")
@click.option("--epochs", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--optimizer", type=mode_choice("eden.workflows.retrain", "Optimizer"), default="adam", show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Peak learning rate.")
@click.option("--lr-schedule", type=mode_choice("eden.workflows.retrain", "LRSchedule"),
              default="cosine", show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--freeze-norm-stats/--update-norm-stats", default=False, show_default=True,
              help="Keep batch-norm layers in eval mode (trained running statistics) while retraining; "
                   "errors then pass unnormalized and training can diverge at high BERs.")
@click.option("--clip-grad-norm", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Rescale each batch's gradients to at most this norm (default: no clipping).")
@click.option("--train-batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Training samples per batch and process.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Root of the seed tree (data order, errors, torch RNG).")
@click.option("--tolerance/--no-tolerance", default=True, show_default=True,
              help="Measure the tolerable BER before and after (coarse characterization).")
@click.option("--tolerance-seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Device seeds per BER point of the tolerance measurement.")
@click.option("--tolerance-before", "before_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A coarse tolerance.json of this model (eden characterize --mode coarse, same error model, "
                   "format, correction, seeds, target drop, resolution) instead of measuring it again.")
@click.option("--target-drop", type=float, default=1.0, show_default=True,
              help="Allowed accuracy drop (percentage points) defining the tolerable BER.")
@click.option("--tolerance-baseline", type=mode_choice("eden.workflows.retrain", "ToleranceBaseline"),
              default="own", show_default=True,
              help="What the drop after retraining counts from: the retrained model's own clean accuracy, or "
                   "the original model's (EDEN's baseline).")
@click.option("--resolution", type=click.FloatRange(min=0.01, max=2), default=0.1, show_default=True,
              help="Tolerance search resolution in decades of BER.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("retrained.pt"),
              show_default=True, help="Retrained weights (state dict; load with --weights).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Report JSON (default: OUTPUT with .json).")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint written after every epoch (default: OUTPUT.ckpt).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint where it stopped.")
@click.option("--force", is_flag=True, help="Overwrite outputs; without --resume also start over.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report instead of the table.")
def retrain_cmd(model_spec, weights, data_spec, batch_size, device, error_model, profile, op, train_spec, fmt,
                no_metadata_errors, correction, ecc, select, target_ber, schedule, start_ber, ramp_epochs, steps,
                epochs, optimizer, lr,
                lr_schedule, weight_decay, freeze_norm_stats, clip_grad_norm, train_batch_size, seed, tolerance,
                tolerance_seeds, before_path, target_drop, tolerance_baseline, resolution, output, report_path,
                checkpoint, resume, force, progress, as_json):
    """Retrain a model with bit errors in its forward pass so that it tolerates a higher BER.

    The BER rises over the epochs (curriculum) to --target-ber; errors go into
    every data type (or --select) in --format with --correction; gradients
    update the clean weights. A checkpoint after every epoch makes the run
    resumable (--resume). Run data-parallel with
    `torchrun --nproc_per_node N -m eden retrain ...`.
    """
    from eden.workflows.retrain import RetrainConfig, ToleranceCheck, retrain, retrain_table, save_report, save_weights

    if not (0 < target_drop < 100):
        raise click.BadParameter(f"must be in (0, 100), got {target_drop}", param_hint="--target-drop")
    target = _parse_target(target_ber)
    fmt = apply_metadata_errors(fmt, no_metadata_errors)
    report_path = report_path or output.with_suffix(".json")
    checkpoint = checkpoint or output.with_name(output.name + ".ckpt")
    if len({output.resolve(), report_path.resolve(), checkpoint.resolve()}) < 3:
        raise click.BadParameter("--output, --report and --checkpoint must be different files",
                                 param_hint="--output")
    for p in (output, report_path):
        if p.exists() and not force:
            fail(f"{p} exists; pass --force to overwrite it")
    choice = resolve_model_choice(error_model, profile, op, required=False)
    shape = choice.model if choice is not None else DEFAULT_SHAPE
    try:
        config = RetrainConfig(shape, target_ber=target, format=fmt, correction=correction, ecc=ecc,
                               select=tuple(select) or ("*",), epochs=epochs, schedule=schedule,
                               start_ber=start_ber, ramp_epochs=ramp_epochs, steps=steps, optimizer=optimizer, lr=lr,
                               lr_schedule=lr_schedule, weight_decay=weight_decay,
                               freeze_norm_stats=freeze_norm_stats, clip_grad_norm=clip_grad_norm,
                               batch_size=train_batch_size, seed=seed)
        check = ToleranceCheck(seeds=tolerance_seeds, target_drop_pp=target_drop, resolution_decades=resolution,
                               baseline=tolerance_baseline)
    except EdenError as exc:
        raise click.BadParameter(str(exc)) from None
    if checkpoint.exists() and not (resume or force):
        fail(f"checkpoint {checkpoint} exists; pass --resume to continue it or --force to start over")
    before = None
    if before_path is not None:
        from eden.workflows.characterize import load_tolerance

        if not tolerance:
            raise click.BadParameter("needs --tolerance (it is the measurement before)",
                                     param_hint="--tolerance-before")
        before = load_tolerance(before_path)
    rank, device = _init_distributed(device)
    finished = False  # this rank's part is done (rank 0: outputs written)
    try:
        model, model_id, loader, dev = build_model_and_data(model_spec, weights, data_spec, batch_size, device)
        train_data, train_id = _train_dataset(train_spec, data_spec, model)
        try:
            result = retrain(model, train_data, loader, config, tolerance=check if tolerance else None,
                             checkpoint=checkpoint, resume=resume, overwrite=force, before=before, model_id=model_id,
                             data_id=data_spec, train_data_id=train_id, progress=progress and rank == 0, device=dev)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: {checkpoint} holds the last finished epoch; rerun with --resume to "
                       "continue", err=True)
            raise click.exceptions.Exit(130) from None
        if rank != 0:
            finished = True
            return
        report = result.report
        if choice is not None:
            report["error_model_source"] = choice.to_dict()
        save_weights(result.model, output, overwrite=force)
        save_report(report, report_path, overwrite=force)
        finished = True
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(retrain_table(report))
        click.echo(f"\nwrote {output} and {report_path} (checkpoint {checkpoint})")
    finally:
        import torch

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            if finished:
                torch.distributed.barrier()  # leave together: rank 0 has written the outputs
            torch.distributed.destroy_process_group()
            if finished:
                # Every output is written (atomically) and the group is gone: leave without the
                # interpreter's teardown, where gloo's worker threads can still hold work objects
                # and abort the process ("terminate called without an active exception", SIGABRT;
                # pytorch/pytorch#179291), which torchrun would report as a failed run.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
