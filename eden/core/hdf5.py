"""What eden's HDF5 readers share: the versioned header check and readable descriptions of values.

Each eden HDF5 layout (error models: ``eden.errormodels.h5``; raw characterization data:
``eden.dram.raw``) has root attributes ``format`` and ``format_version``; :func:`check_header`
checks both and raises that layout's :class:`~eden.errors.EdenFileError` subclass naming the file,
the attribute and what was expected. h5py is not imported here: callers pass open files and nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eden._version import __version__
from eden.errors import EdenFileError


def attr_location(h5path: str, name: str) -> str:
    """Where an attribute is, for error messages: ``"/ (attribute 'format')"``."""
    return f"{h5path} (attribute {name!r})"


def as_str(value: Any) -> str | None:
    """An attribute value as str (h5py may return bytes for fixed-length strings); None if it is not text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def describe(value: Any) -> str:
    """Short, readable description of an attribute value for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = as_str(value)
    if text is not None:
        return repr(text)
    if isinstance(value, np.generic):
        value = value.item()
    return f"{value!r} ({type(value).__name__})"


def describe_node(node: Any) -> str:
    """A dataset's shape and dtype, "a group", or the node's type (without importing h5py)."""
    if hasattr(node, "shape") and hasattr(node, "dtype"):
        return f"a dataset of shape {node.shape} and dtype {node.dtype}"
    if hasattr(node, "keys"):
        return "a group"
    return f"a {type(node).__name__}"


def check_header(f: Any, path: Any, *, format: str, version: int, error: type[EdenFileError]) -> int:
    """Check the root attributes ``format`` (== ``format``) and ``format_version`` (1..``version``).

    Returns the file's version; raises ``error(path, location, detail)`` otherwise (a newer version
    says to upgrade eden).
    """
    supported = "1" if version == 1 else f"1..{version}"
    loc = attr_location("/", "format")
    if "format" not in f.attrs:
        raise error(path, loc, f"expected {format!r}; found no such attribute (not an {error.kind} file)")
    if as_str(f.attrs["format"]) != format:
        raise error(path, loc, f"expected {format!r}; found {describe(f.attrs['format'])}")
    loc = attr_location("/", "format_version")
    if "format_version" not in f.attrs:
        raise error(path, loc, f"expected an integer format version {supported}; found no such attribute")
    raw = f.attrs["format_version"]
    if not is_integer(raw):
        raise error(path, loc, f"expected an integer format version {supported}; found {describe(raw)}")
    found = int(raw)
    if found > version:
        raise error(path, loc, f"expected format version {supported} (eden {__version__}); found {found}, "
                    "written by a newer eden: upgrade eden to read this file")
    if found < 1:
        raise error(path, loc, f"expected format version {supported}; found unsupported version {found}")
    return found


__all__ = ["attr_location", "as_str", "is_integer", "describe", "describe_node", "check_header"]
