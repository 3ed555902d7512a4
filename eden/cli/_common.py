"""Shared pieces of the command line: failures, model options, atomic outputs."""

from __future__ import annotations

from pathlib import Path

import click


def fail(message: str) -> None:
    """Stop with a one-line error message (exit status 1)."""
    raise click.ClickException(message)


def load_error_model(spec: str, param_hint: str = "--error-model"):
    """An ErrorModel from a spec string or an HDF5 file, or a BadParameter (exit 2)."""
    from eden.error_models import ErrorModel

    try:
        return ErrorModel.coerce(spec)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def atomic_save_npy(path: Path, array, force: bool) -> None:
    """Write an .npy file atomically; refuse to replace an existing file unless force."""
    import numpy as np

    from eden._io import write_with

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            np.save(fh, array, allow_pickle=False)

    try:
        write_with(path, write, overwrite=force, what="output file")
    except FileExistsError:
        fail(f"{path} exists; pass --force to overwrite it")
