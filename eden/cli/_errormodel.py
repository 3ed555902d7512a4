"""`eden errormodel ...`: inspect (and fit) error models."""

from __future__ import annotations

import json

import click

from eden.cli import main
from eden.cli._common import load_error_model


@main.group()
def errormodel():
    """Inspect error models."""


@errormodel.command("show")
@click.argument("model", metavar="SPEC|FILE.h5")
@click.option("--json", "as_json", is_flag=True)
def errormodel_show(model, as_json):
    """Print an error model (from a spec or an HDF5 file)."""
    em = load_error_model(model)
    info = {
        "spec": em.to_spec(), "persistence": em.persistence, "expected_ber": em.expected_ber(),
        "components": [{"kind": c.kind, **c.params()} for c in em.components],
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{em.to_spec()}\n  persistence: {em.persistence}\n  expected BER (half ones): "
               f"{em.expected_ber():.4g}")
    for c in em.components:
        params = ", ".join(f"{k}={v:g}" for k, v in c.params().items())
        click.echo(f"  {c.kind} ({type(c).__name__}): {params}")


