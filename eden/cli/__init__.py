"""eden's command line: parses, calls the library, prints. No logic of its own.

Each command group lives in its own module of this package and registers itself on
``main`` when imported below. ``main`` is the error boundary (``_common.EdenGroup``):
eden's input errors become one-line messages, anything else keeps its traceback.
"""

from __future__ import annotations

import click

from eden._version import __version__
from eden.cli._common import EdenGroup


@click.group(cls=EdenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="eden")
def main() -> None:
    """eden: run neural networks on emulated approximate DRAM."""


# Command modules register on ``main``; imported for that side effect, in help order.
# isort: off
from eden.cli import _inject, _errormodel  # noqa: E402,F401
from eden.cli import _profiles  # noqa: E402,F401
from eden.cli import _dnn  # noqa: E402,F401
from eden.cli import _deploy  # noqa: E402,F401
from eden.cli import _run  # noqa: E402,F401
from eden.cli import _retrain  # noqa: E402,F401
from eden.cli import _raw  # noqa: E402,F401
from eden.cli import _power  # noqa: E402,F401
# isort: on

__all__ = ["main"]
