"""One entry point for memspec files and folders: DRAMPower v6 / DRAMSys JSON, or an HBM-Power config folder."""

from __future__ import annotations

import os
from pathlib import Path

from eden.dram import standards
from eden.errors import EdenConfigError
from eden.power.hbm_power import read_hbm_power_dir
from eden.power.memspec import MemSpec

__all__ = ["load_memspec"]


def load_memspec(path: str | os.PathLike, *, standard: str | None = None) -> MemSpec:
    """A memspec file or folder: a DRAMPower v6 / DRAMSys JSON file, or an HBM-Power config folder.

    Args:
        path: a ``.json`` memspec (its ``memoryType`` names the standard) or a folder with
            HBM-Power's ``power.json`` (+ ``timing.json``, ``organization.json``).
        standard: for a folder, ``"HBM2"`` or ``"HBM3"`` (None: inferred, see
            :func:`eden.power.hbm_power.read_hbm_power_dir`).

    Raises:
        EdenFileNotFoundError: nothing at ``path`` (or a folder without ``power.json``).
        EdenConfigError: a bad memspec (the message names the file and the field).
    """
    p = Path(os.fspath(path))
    if p.is_dir():
        return read_hbm_power_dir(p, standard=standard)
    spec = MemSpec.from_drampower_json(p)
    if standard is not None and standards.get(standard).name != spec.standard:
        raise EdenConfigError(f"{p}: memoryType is {spec.standard}, not the requested {standard}")
    return spec
