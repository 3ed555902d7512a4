"""`eden errormodel ...`: inspect and fit error models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import LazyChoice, fail, load_error_model


def _fit_models() -> tuple[str, ...]:
    """The registered fit candidates (``eden.dram.fit.MODELS``), for --model."""
    from eden.errormodels.components import fit_model_names

    return fit_model_names()


def _persistence_modes() -> tuple[str, ...]:
    from eden.errormodels.component import Persistence

    return tuple(m.value for m in Persistence)


@main.group()
def errormodel():
    """Inspect and fit error models."""


@errormodel.command("show")
@click.argument("model", metavar="SPEC|FILE.h5", required=False)
@click.option("--profile", metavar="NAME|FILE.json",
              help="Show the model of a DRAM profile's operating point (with --op).")
@click.option("--op", metavar="OP", help="Operating point of --profile (a name, or vdd=..., trcd=...).")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def errormodel_show(model, profile, op, as_json):
    """Print an error model (from a spec, an HDF5 file, or --profile NAME --op OP)."""
    if model is not None:
        if profile is not None or op is not None:
            raise click.BadParameter("give either SPEC|FILE.h5 or --profile with --op, not both",
                                     param_hint="--profile")
        em = load_error_model(model, param_hint="SPEC|FILE.h5")
    else:
        from eden.cli._common import resolve_model_choice

        if profile is None:
            raise click.BadParameter("give an error model SPEC|FILE.h5, or --profile NAME with --op OP",
                                     param_hint="SPEC|FILE.h5")
        choice = resolve_model_choice(None, profile, op)
        em = choice.model
        path = choice.profile.error_model_path(choice.op)
        model = str(path) if path is not None else em.to_spec()
    info = {
        "spec": em.to_spec(), "persistence": em.persistence, "q": em.q, "expected_ber": em.expected_ber(),
        "components": [{"kind": c.kind, **c.params()} for c in em.components],
    }
    if model.endswith((".h5", ".hdf5")):
        from eden.dram.fit import read_fit_report
        from eden.errormodels import h5 as _h5

        info["provenance"] = _h5.read_metadata(model)["provenance"]
        report = read_fit_report(model)
        if report is not None:
            info["fit"] = {k: report.get(k) for k in ("test", "selected", "forced", "criterion", "confidence")}
            info["fit"]["parameters"] = next((c["parameters"] for c in report["candidates"]
                                              if c["model"] == report["selected"]), [])
            info["fit"]["identifiability"] = report.get("identifiability", [])
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    persistence = str(em.persistence)
    if em.q is not None:
        persistence += (f" (q = {em.q:g}: a fixed map of weak cells per device seed, at every rate / q, each "
                        f"failing with probability q per access; weak map: {em.weak_map().to_spec()})")
    click.echo(f"{em.to_spec()}\n  persistence: {persistence}\n  expected BER per access (half ones): "
               f"{em.expected_ber():.4g}")
    for c in em.components:
        params = ", ".join(f"{k}={v:g}" for k, v in c.params().items())
        click.echo(f"  {c.kind} ({type(c).__name__}): {params}")
    if info.get("provenance"):
        click.echo(f"  provenance: {json.dumps(info['provenance'], sort_keys=True)}")
    if "fit" in info:
        f = info["fit"]
        click.echo(f"  fitted to test {f['test']!r}: {f['selected']} "
                   f"({'forced' if f['forced'] else 'lowest ' + str(f['criterion'])}), "
                   f"{100 * f['confidence']:g}% intervals:")
        for p in f["parameters"]:
            lo, hi = p["ci"]
            ci = f"[{lo:.4g}, {hi:.4g}]" if lo is not None else f"- ({p['method']})"
            click.echo(f"    {p['name']} = {p['value']:.6g} {ci}")


@errormodel.command("fit")
@click.argument("raw_path", metavar="RAW.h5", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, metavar="MODEL.h5",
              type=click.Path(dir_okay=False, path_type=Path), help="error-model file to write")
@click.option("--test", "test_name", default=None, metavar="NAME",
              help="test of RAW.h5 to fit (default: its only test)")
@click.option("--model", "forced", type=LazyChoice(_fit_models), default=None,
              help="fit only this model instead of selecting by BIC")
@click.option("--persistence", type=LazyChoice(_persistence_modes), default="access", show_default=True,
              help="persistence of the saved model (summed counts cannot identify it; per-iteration records "
                   "can: see the report's clustering and persistence section). two_level: q is identified "
                   "from records per iteration (or given with --q)")
@click.option("--q", "q", type=click.FloatRange(0, 1, min_open=True), default=None, metavar="Q",
              help="with --persistence two_level: the per-access failure probability of a weak cell, given "
                   "instead of identified")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.99,
              show_default=True, help="confidence level of the intervals")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the goodness-of-fit Monte Carlo")
@click.option("--sweeps/--no-sweeps", default=True, show_default=True,
              help="compare errors per faulty unit and persistence across iterations with every candidate "
                   "(simulated; records only)")
@click.option("--force", is_flag=True, help="replace MODEL.h5 if it exists")
@click.option("--json", "as_json", is_flag=True, help="print the full report as JSON")
def errormodel_fit(raw_path, output, test_name, forced, persistence, q, confidence, seed, sweeps, force, as_json):
    """Fit the registered models (em0..em3, em1+em2) to profiled bit errors; save the best model.

    RAW.h5 is a raw characterization file (docs/raw-format.md). Every model the
    data can identify is fitted by maximum likelihood; the one with the lowest
    BIC is saved to MODEL.h5 (or the one named by --model), with the report
    (confidence intervals, goodness of fit, what the data cannot identify) in
    the file's /fit group.
    """
    from eden.dram.fit import FitError, fit, save_fit
    from eden.dram.raw import RawFileError, load_raw

    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it")
    if q is not None and persistence != "two_level":
        raise click.BadParameter("--q applies only with --persistence two_level", param_hint="--q")
    try:
        raw = load_raw(raw_path)
    except RawFileError as exc:
        raise click.BadParameter(str(exc), param_hint="RAW.h5") from None
    try:
        test = raw.test(test_name)
    except KeyError as exc:
        raise click.BadParameter(exc.args[0], param_hint="--test") from None
    try:
        result = fit(raw, test.name, models=[forced] if forced else None, persistence=persistence, q=q,
                     confidence=confidence, seed=seed, sweeps=sweeps)
    except FitError as exc:
        fail(str(exc))
    provenance = {"raw_file": os.fspath(raw_path.name), "raw_test": test.name, "raw_provenance": raw.provenance}
    try:
        save_fit(result, output, overwrite=force, provenance=provenance)
    except FileExistsError:
        fail(f"{output} exists; pass --force to overwrite it")
    except OSError as exc:
        fail(f"cannot write {output}: {exc}")
    if as_json:
        report = result.to_dict()
        report["output"] = os.fspath(output)
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(result.format_text())
        click.echo(f"wrote {output}")
