"""One place that finds eden's data folders, from a checkout or an installed wheel.

The wheel installs ``cuda/``, ``error_models/`` and ``dram_profiles/`` inside the
package (``eden/_data/<name>``); a source checkout has them at the repository root.
"""

from __future__ import annotations

import errno
from pathlib import Path

from eden.core.validate import unknown_name
from eden.errors import EdenFileNotFoundError

FOLDERS = ("cuda", "error_models", "dram_profiles")
_PKG = Path(__file__).resolve().parent.parent  # the eden package (this file is eden/core/resources.py)


def resource_dir(name: str) -> Path:
    """Path of a shipped data folder ('cuda', 'error_models' or 'dram_profiles')."""
    if name not in FOLDERS:
        raise unknown_name("resource folder", name, FOLDERS)
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise EdenFileNotFoundError(f"eden resource folder {name!r} not found in {_PKG / '_data'} or "
                                f"{_PKG.parent}; reinstall eden")


def resource_path(name: str, filename: str) -> Path:
    path = resource_dir(name) / filename
    if not path.exists():
        raise EdenFileNotFoundError(errno.ENOENT, f"eden resource {name}/{filename} not found", str(path))
    return path
