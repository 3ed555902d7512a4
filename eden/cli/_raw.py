"""`eden raw import`: published DRAM characterization data -> an eden raw file (docs/raw-format.md).

The importer registry (``eden.dram.importers``) loads numpy and h5py, so it is read only when
this command parses its arguments or prints its help: other commands start without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from eden.cli import main
from eden.cli._common import LazyChoice, fail


def _importers() -> dict:
    from eden.dram.importers import IMPORTERS

    return IMPORTERS


class _ImportCommand(click.Command):
    """Lists every importer with its one-line summary after the options in ``--help``."""

    def format_epilog(self, ctx, formatter) -> None:
        with formatter.section("Importers"):
            formatter.write_dl([(name, imp.summary) for name, imp in sorted(_importers().items())])


@main.group("raw")
def raw_group() -> None:
    """Raw DRAM characterization data (docs/raw-format.md)."""


@raw_group.command("import", cls=_ImportCommand)
@click.argument("importer", type=LazyChoice(lambda: sorted(_importers())))
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Raw characterization file to write (.h5).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def import_cmd(importer, src, output, force):
    """Convert the data set in folder SRC with IMPORTER into an eden raw file.

    Example: eden raw import diva ../shared/data/diva-ddr3 -o diva_ddr3_A10.h5
    """
    from eden.errors import EdenError

    if output.exists() and not force:
        fail(f"{output} exists; pass --force to overwrite it")
    try:
        raw = _importers()[importer](src)
        raw.save(output, overwrite=force)
    except (EdenError, FileExistsError, FileNotFoundError, IsADirectoryError) as exc:
        fail(str(exc))
    click.echo(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, {len(raw.tests)} tests)")
