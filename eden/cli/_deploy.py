"""`eden map`, `eden report`: data types -> DRAM partitions, energy and latency."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import (LazyChoice, build_model_and_data, ecc_codes, executor_from_options, executor_options,
                              fail, load_profile_or_fail, mapping_policies)


def _objectives() -> tuple[str, ...]:
    from eden.workflows.deploy import Objective

    return Objective.values()


def _tolerance_sources() -> tuple[str, ...]:
    from eden.workflows.deploy import ToleranceSource

    return ToleranceSource.values()


def deploy_options(f):
    """Assumptions shared by `eden map` and `eden run`."""
    options = [
        click.option("--policy", type=LazyChoice(mapping_policies), default="milp", show_default=True,
                     help="Mapping policy: EDEN's greedy, the exact MILP, or another registered one."),
        click.option("--inference-batch", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Samples per inference for the DRAM traffic model."),
        click.option("--alpha", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="VDD law exponent: IDD ~ (V/V_nominal)**alpha."),
        click.option("--memory-bound-fraction", type=click.FloatRange(min=0, max=1, min_open=True), default=0.5,
                     show_default=True, help="Share of run time spent on DRAM accesses."),
        click.option("--hit-rate", type=click.FloatRange(min=0, max=1), default=None,
                     help="Row-buffer hit rate (default: computed from the access order)."),
        click.option("--partition-banks", type=click.IntRange(min=1), default=None,
                     help="Banks per reduced-voltage/latency partition (default: equal shares)."),
        click.option("--objective", type=LazyChoice(_objectives), default="energy", show_default=True,
                     help="What the mapper minimizes per inference: DRAM energy or DRAM access time."),
        click.option("--tolerance-source", type=LazyChoice(_tolerance_sources), default="joint",
                     show_default=True, help="Which tolerable BERs of the tolerance file to use."),
        click.option("--lower-bounds", type=click.Choice(["use", "avoid"]), default="use", show_default=True,
                     help="Operating points whose BER is only a lower bound (saturated measurements): use them "
                          "at that BER, or leave them out (conservative)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _workloads() -> tuple[str, ...]:
    from eden.workflows.deploy import Workload

    return Workload.values()


def generation_options(f):
    """The workload of the traffic model (shared by `eden map` and `eden run`): inference, or an LM generation."""
    options = [
        click.option("--workload", type=LazyChoice(_workloads), default="inference", show_default=True,
                     help="inference: one forward pass of --inference-batch samples; generation: a language model's "
                          "prefill of --prompt-tokens, then --new-tokens decode steps for --inference-batch "
                          "sequences (energy and DRAM time per generated token)."),
        click.option("--prompt-tokens", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Generation: prompt tokens per sequence (the prefill)."),
        click.option("--new-tokens", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Generation: decode steps (tokens generated per sequence)."),
        click.option("--decode-memory-bound-fraction", type=click.FloatRange(min=0, max=1, min_open=True),
                     default=0.9, show_default=True,
                     help="Generation: share of a decode step's time spent on DRAM accesses (--memory-bound-fraction "
                          "is then the prefill's)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def make_options(policy, inference_batch, alpha, memory_bound_fraction, hit_rate, partition_banks, objective,
                 tolerance_source, lower_bounds="use", workload="inference", prompt_tokens=64, new_tokens=64,
                 decode_memory_bound_fraction=0.9, ecc=None):
    from eden.workflows.deploy import DeployOptions

    return DeployOptions(policy=policy, batch_size=inference_batch, alpha=alpha,
                         memory_bound_fraction=memory_bound_fraction, hit_rate=hit_rate,
                         partition_banks=partition_banks, tolerance=tolerance_source, objective=objective,
                         lower_bounds=lower_bounds, workload=workload, prompt_tokens=prompt_tokens,
                         new_tokens=new_tokens, decode_memory_bound_fraction=decode_memory_bound_fraction, ecc=ecc)


@main.command("map")
@click.option("--tolerance", "tolerance_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="tolerance.json from `eden characterize` (fine-grained for per-data-type mapping).")
@click.option("--profile", "profile_name", default="ddr4-2400-8gb-x8", show_default=True,
              help="DRAM profile name or file.")
@deploy_options
@generation_options
@click.option("--ecc", "ecc", type=LazyChoice(ecc_codes), default=None,
              help="ECC of the memory (default: the code the tolerance file was characterized with); another code "
                   "than the tolerance file's is refused: its tolerable BERs are raw BERs behind that code.")
@click.option("--validate/--no-validate", default=True, show_default=True,
              help="Check the mapping by emulation (needs the model the tolerance file belongs to).")
@click.option("--model", "model_spec", default=None,
              help="Model for validation (default: the tolerance file's model id).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", "data_spec", default=None, help="Evaluation data (default: the tolerance file's data id).")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--device", default=None)
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True, help="Validation seeds.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("mapping.json"),
              show_default=True)
@click.option("--force", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@executor_options
def map_cmd(tolerance_path, profile_name, policy, inference_batch, alpha, memory_bound_fraction, hit_rate,
            partition_banks, objective, tolerance_source, lower_bounds, workload, prompt_tokens, new_tokens,
            decode_memory_bound_fraction, ecc, validate, model_spec, weights, data_spec, batch_size, device,
            seeds, output, force, as_json, executor, workers, address, gpus_per_worker):
    """Map each data type to the most aggressive DRAM partition it tolerates; report energy/latency."""
    from eden.core.io import write_json
    from eden.workflows.characterize import load_tolerance
    from eden.workflows.deploy import deploy, report_table

    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it")
    record = load_tolerance(tolerance_path)
    profile = load_profile_or_fail(profile_name)
    opts = make_options(policy, inference_batch, alpha, memory_bound_fraction, hit_rate, partition_banks,
                        objective, tolerance_source, lower_bounds, workload, prompt_tokens, new_tokens,
                        decode_memory_bound_fraction, ecc)
    model = loader = dev = None
    if validate:
        model, _, loader, dev = build_model_and_data(model_spec or record["model"]["id"], weights,
                                                     data_spec or record.get("data", {}).get("id", "digits"),
                                                     batch_size, device)
    with executor_from_options(executor, workers, address, gpus_per_worker) as ex:
        rep = deploy(record, profile, options=opts, model=model, loader=loader, seeds=seeds, device=dev, executor=ex)
    write_json(output, rep, overwrite=force, what="mapping report")
    click.echo(json.dumps(rep, indent=2) if as_json else report_table(rep) + f"\n\nwrote {output}")


@main.command("report")
@click.argument("report_path", metavar="MAPPING.json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the per-data-type table as CSV.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Draw energy per data type, nominal vs mapped, to this PNG.")
@click.option("--force", is_flag=True, help="Overwrite the plot file.")
def report_cmd(report_path, as_json, as_csv, plot_path, force):
    """Show a mapping report as a table, JSON, CSV or plot."""
    from eden.workflows.deploy import load_report, report_table

    rep = load_report(report_path)
    if as_json and as_csv:
        raise click.BadParameter("choose one of --json and --csv", param_hint="--csv")
    if as_json:
        click.echo(json.dumps(rep, indent=2))
    elif as_csv:
        buf = io.StringIO()
        cols = ["name", "kind", "bytes", "tolerable_ber", "partition", "vdd_v", "trcd_ns", "partition_ber",
                "energy_nominal_j", "energy_mapped_j", "access_time_nominal_s", "access_time_mapped_s", "fallback"]
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rep["datatypes"]:
            w.writerow(r)
        click.echo(buf.getvalue(), nl=False)
    else:
        click.echo(report_table(rep))
    if plot_path is not None:
        from eden.workflows.plots import plot_deployment

        plot_deployment(rep, plot_path, overwrite=force)
        if not (as_json or as_csv):
            click.echo(f"wrote {plot_path}")
