"""Atomic, no-clobber output files: the one place eden writes results.

Every result file (JSON reports, .npy arrays, checkpoints, HDF5) is written to a
temporary file in the target's directory and moved into place, so a reader never
sees a partial file and a crash never leaves one behind. An existing file is
never replaced unless the caller passes ``overwrite=True``; without it, a file
that appears between the check and the move is not clobbered either (hard link).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eden.errors import EdenError, EdenFileError, EdenFileNotFoundError

__all__ = ["atomic_path", "write_json", "write_text", "exists_error", "move_into_place", "read_json_record",
           "OutputExistsError", "OutputIsDirectoryError", "OutputPermissionError", "OutputWriteError"]


class OutputExistsError(EdenError, FileExistsError):
    """An output file exists and the caller did not allow replacing it (``except FileExistsError`` works)."""


class OutputIsDirectoryError(EdenError, IsADirectoryError):
    """An output path names a directory (``except IsADirectoryError`` works)."""


class OutputPermissionError(EdenError, PermissionError):
    """The output's directory or file may not be written (``except PermissionError`` works)."""


class OutputWriteError(EdenError, OSError):
    """Writing an output failed for another reason the OS gave: a full or read-only disk, a
    pseudo-filesystem that takes no new files (``except OSError`` works)."""


def exists_error(target: Path, what: str = "file") -> OutputExistsError:
    return OutputExistsError(errno.EEXIST, f"{what} already exists; pass overwrite=True "
                             "(--force on the command line) to replace it", str(target))


def move_into_place(tmp: Path, target: Path, overwrite: bool, what: str = "file") -> None:
    """Move the finished temporary file ``tmp`` onto ``target`` atomically."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the target appeared meanwhile
    except FileExistsError:
        raise exists_error(target, what) from None
    except OSError:  # file system without hard links: best effort
        if target.exists():
            raise exists_error(target, what) from None
        os.replace(tmp, target)


@contextmanager
def atomic_path(path: os.PathLike | str, *, overwrite: bool = False, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes ``path`` atomically.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (checked before
            and after writing).
        EdenFileNotFoundError: the parent directory does not exist.
        OutputIsDirectoryError: ``path`` is a directory.
        OutputPermissionError: the directory or the file may not be written.
    """
    target = Path(os.fspath(path))
    if target.is_dir():
        raise OutputIsDirectoryError(errno.EISDIR, f"cannot write a {what} over a directory", str(target))
    if target.exists() and not overwrite:
        raise exists_error(target, what)
    parent = target.parent
    if not parent.is_dir():
        raise EdenFileNotFoundError(errno.ENOENT, f"directory for the {what} does not exist", str(parent))
    tmp = parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        yield tmp
        move_into_place(tmp, target, overwrite, what)
    except PermissionError as exc:  # writing the temporary in, or moving it into, the user's directory
        raise OutputPermissionError(errno.EACCES, f"cannot write the {what}: {exc.strerror}", str(target)) from exc
    except EdenError:
        raise
    except OSError as exc:  # ENOSPC, EROFS, a /proc directory...: the OS's reason, and the path
        raise OutputWriteError(exc.errno, f"cannot write the {what}: {exc.strerror or exc}", str(target)) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: os.PathLike | str, data: bytes, *, overwrite: bool = False, what: str = "file") -> None:
    with atomic_path(path, overwrite=overwrite, what=what) as tmp:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: os.PathLike | str, text: str, *, overwrite: bool = False, what: str = "file") -> None:
    write_bytes(path, text.encode("utf-8"), overwrite=overwrite, what=what)


def write_json(path: os.PathLike | str, obj: Any, *, overwrite: bool = False, what: str = "JSON file") -> None:
    """Write ``obj`` as indented JSON (NaN/Inf refused) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    write_text(path, text, overwrite=overwrite, what=what)


def write_with(path: os.PathLike | str, writer: Callable[[Path], None], *, overwrite: bool = False,
               what: str = "file") -> None:
    """Call ``writer(tmp_path)`` then move the result onto ``path`` atomically."""
    with atomic_path(path, overwrite=overwrite, what=what) as tmp:
        writer(tmp)


def read_json_record(path: os.PathLike | str, fmt: str, version: int, what: str,
                     required: tuple[str, ...] = ()) -> dict:
    """Read a versioned JSON result file and check its ``format``, ``format_version`` and fields.

    Raises:
        EdenFileNotFoundError: no such file.
        EdenFileError: unreadable (permissions, not JSON), another format or version, or a missing
            field; the message names the file, the field and what was expected.
    """
    path = Path(os.fspath(path))
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdenFileNotFoundError(errno.ENOENT, f"no such {what}", str(path)) from None
    except (OSError, ValueError) as exc:
        raise EdenFileError(path, "/", f"not a readable JSON {what}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise EdenFileError(path, "format", f"not an eden {what} (field 'format' should be {fmt!r})")
    if data.get("format_version") != version:
        raise EdenFileError(path, "format_version", f"{what} format_version {data.get('format_version')!r} is "
                            f"not supported (this eden reads {version})")
    for key in required:
        if key not in data:
            raise EdenFileError(path, key, f"{what} lacks the field {key!r}")
    return data
