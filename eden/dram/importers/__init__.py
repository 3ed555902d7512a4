"""Importers: public DRAM characterization data -> eden raw characterization files.

An importer reads one published data set (a folder as its authors released it) and
returns a :class:`~eden.dram.raw.RawCharacterization` (layout: docs/raw-format.md),
recording only what the source gives. ``eden raw import NAME SRC -o OUT.h5`` runs one.

Adding an importer: write ``eden/dram/importers/<name>.py`` defining a module-level
:class:`Importer` (the conversion and the files it needs in the source folder), and
add its module to the registration line at the end of this file. Its name becomes a
choice of ``eden raw import``; nothing else changes.

    >>> raw = import_raw("voltron", "../shared/data/voltron-ddr3l")  # doctest: +SKIP
    >>> raw.save("voltron.h5")                                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

from eden.core.registry import Registry
from eden.dram.raw import RawCharacterization
from eden.errors import EdenFileNotFoundError


@dataclasses.dataclass(frozen=True)
class Importer:
    """One published data set and how it becomes an eden raw characterization.

    Attributes:
        name: registry name (the ``eden raw import`` choice), lower case.
        summary: one line for ``eden raw import --help``: the data set and what is written.
        requires: paths inside the source folder that must exist (files or folders);
            checked before anything is read, so a wrong folder fails with one message.
        convert: ``convert(src: Path) -> RawCharacterization``; raises
            :class:`~eden.errors.EdenDataError` on source files that do not parse.
        shipped: file name under ``error_models/raw/`` that this importer made, or None.
    """

    name: str
    summary: str
    requires: tuple[str, ...]
    convert: Callable[[Path], RawCharacterization]
    shipped: str | None = None

    def check_source(self, src: os.PathLike | str) -> Path:
        """``src`` as a Path, or an error naming what the folder lacks."""
        path = Path(os.fspath(src))
        if not path.is_dir():
            raise EdenFileNotFoundError(f"{self.name} importer: source folder {str(path)!r} does not exist "
                                        "or is not a folder")
        missing = [r for r in self.requires if not (path / r).exists()]
        if missing:
            raise EdenFileNotFoundError(f"{str(path)!r} is not a {self.name} data folder ({self.summary}): "
                                        f"it lacks {', '.join(missing)}")
        return path

    def __call__(self, src: os.PathLike | str) -> RawCharacterization:
        return self.convert(self.check_source(src))


IMPORTERS: Registry[Importer] = Registry("importer")


def register(importer: Importer) -> Importer:
    """Add ``importer`` to :data:`IMPORTERS` (a name is registered once)."""
    return IMPORTERS.add(importer.name, importer)


def get_importer(name: str) -> Importer:
    """The registered importer ``name``; an unknown name lists the known ones and close matches."""
    return IMPORTERS.lookup(name)


def import_raw(name: str, src: os.PathLike | str) -> RawCharacterization:
    """Convert the data set in folder ``src`` with the importer ``name``.

    Raises:
        EdenConfigError: unknown importer name.
        EdenFileNotFoundError: ``src`` is not a folder or lacks a file the importer needs.
        EdenDataError: a source file does not parse (the message names file and line).
    """
    return get_importer(name)(src)


# Registration: one module per importer; each registers the Importer(s) it defines.
from eden.dram.importers import diva, voltron  # noqa: E402,F401

__all__ = ["Importer", "IMPORTERS", "register", "get_importer", "import_raw"]
