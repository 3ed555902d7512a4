"""The one reader and writer of eden's HDF5 error-model files.

Layout (format version 1; full description in ``docs/formats.md``)::

    /                      attrs: format="eden.error_model", format_version=1,
                                  persistence, eden_version, created_utc,
                                  provenance (JSON), spec (informational),
                                  persistence_q (float64; only with persistence="two_level")
    /components/0          attr kind="em0".."em3"
    /components/0/<param>  scalar float64 dataset, one per parameter
    /components/1 ...

The module works on a neutral model: a tuple of registered components and a persistence mode
(``ErrorModel.save``/``ErrorModel.load`` call it), so it does not depend on ``ErrorModel``.

Writes are atomic (temporary file in the target directory, then
``os.replace``) and never overwrite an existing file unless asked to. Loading
validates everything and raises :class:`ErrorModelFileError` with a message that
names the file, the HDF5 path inside it, what was expected and what was found.
Root members other than ``/components`` (e.g. a future ``/fit``) are ignored.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from eden._version import __version__
from eden.core.hdf5 import as_str, attr_location, check_header, describe, describe_node
from eden.core.io import write_with
from eden.errormodels.component import Component, Persistence, check_repeat_q, model_spec
from eden.errormodels.components import component_class, component_kinds
from eden.errors import EdenFileError, EdenFileNotFoundError, EdenTypeError

FORMAT = "eden.error_model"
"""Value of the root ``format`` attribute of every eden error-model file."""

FORMAT_VERSION = 1
"""Layout version this module writes; it reads versions 1..FORMAT_VERSION."""

COMPONENTS_GROUP = "components"

Q_ATTR = "persistence_q"
"""Root attribute of ``two_level`` persistence's q (absent for the other modes and in older files)."""



class ErrorModelFileError(EdenFileError):
    """An HDF5 file is not a valid eden error-model file."""

    kind = "eden error-model"


# --------------------------------------------------------------------- writing
def save_components(path: os.PathLike | str, components: tuple[Component, ...],
                    persistence: Persistence | str, *, provenance: Mapping[str, Any] | None = None,
                    overwrite: bool = False, q: float | None = None) -> None:
    """Write a model (its components and persistence) to ``path`` in the eden error-model HDF5 layout.

    ``ErrorModel.save`` is the usual entry point. The file is written to a temporary file in
    the same directory and moved into place with ``os.replace``, so readers never see a
    partial file and a failed write leaves neither a temporary file nor a changed target behind.

    Args:
        path: Destination file (conventionally ``*.h5``).
        components: The model's registered components, in order (at least one).
        persistence: The model's persistence mode.
        provenance: JSON-serialisable mapping describing where the model came
            from (measurement, fit, "illustrative example", ...). Stored as a
            JSON string in the root ``provenance`` attribute; ``{}`` if None.
        overwrite: Replace an existing file at ``path``. Without it an
            existing file is left untouched.
        q: ``two_level`` persistence's per-access failure probability of a weak cell (root
            attribute ``persistence_q``); None for the other modes.

    Raises:
        EdenTypeError: ``components`` holds something else than components, or
            ``provenance`` is not a JSON-serialisable mapping.
        EdenConfigError: ``persistence`` is not a persistence mode.
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        IsADirectoryError: ``path`` is a directory.
        FileNotFoundError: The directory of ``path`` does not exist.
    """
    components = tuple(components)
    if not components or not all(isinstance(c, Component) for c in components):
        raise EdenTypeError(f"save_components expects a non-empty sequence of components, got {components!r}")
    persistence = Persistence.coerce(persistence)
    q = check_repeat_q(persistence, q)
    provenance_json = provenance_text(provenance)

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "x") as f:
            _write_contents(f, components, persistence, provenance_json, q)

    write_with(path, write, overwrite=overwrite, what="error-model file")


def provenance_text(provenance: Mapping[str, Any] | None) -> str:
    if provenance is None:
        provenance = {}
    if not isinstance(provenance, Mapping):
        raise EdenTypeError(f"provenance must be a mapping (dict), got {type(provenance).__name__}")
    try:
        return json.dumps(dict(provenance), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EdenTypeError(f"provenance must be JSON-serialisable: {exc}") from None


def _write_contents(f: h5py.File, components: tuple[Component, ...], persistence: Persistence,
                    provenance_json: str, q: float | None = None) -> None:
    """Fill an open, empty HDF5 file with the version-1 layout."""
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = np.int64(FORMAT_VERSION)
    f.attrs["persistence"] = persistence.value
    if q is not None:
        f.attrs[Q_ATTR] = np.float64(q)
    f.attrs["eden_version"] = __version__
    f.attrs["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    f.attrs["provenance"] = provenance_json
    f.attrs["spec"] = model_spec(components, persistence, q)
    comps = f.create_group(COMPONENTS_GROUP)
    for i, component in enumerate(components):
        g = comps.create_group(str(i))
        g.attrs["kind"] = component.kind
        for name, value in component.params().items():
            g.create_dataset(name, data=np.float64(value))


# --------------------------------------------------------------------- reading
def load_components(path: os.PathLike | str) -> tuple[tuple[Component, ...], Persistence]:
    """Read and validate a model written by :func:`save_components` (``ErrorModel.load`` wraps it).

    Args:
        path: The HDF5 file.

    Returns:
        ``(components, persistence)``: the stored components, in order, and the persistence mode.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ErrorModelFileError: The file is not a readable HDF5 file or is not a
            valid eden error-model file; the message names the file, the HDF5
            path inside it, what was expected and what was found.
    """
    components, persistence, _ = load_model_parts(path)
    return components, persistence


def load_model_parts(path: os.PathLike | str) -> tuple[tuple[Component, ...], Persistence, float | None]:
    """:func:`load_components` plus ``two_level`` persistence's q (None for the other modes):
    ``(components, persistence, q)``; ``ErrorModel.load`` uses it."""
    with _open(path) as f:
        _check_header(f, path)
        persistence = _read_persistence(f, path)
        q = _read_q(f, path, persistence)
        components = _read_components(f, path)
    return tuple(components), persistence, q


def read_metadata(path: os.PathLike | str) -> dict[str, Any]:
    """Root metadata of a valid error-model file, for display and bookkeeping.

    Args:
        path: The HDF5 file.

    Returns:
        A dict with ``format_version`` (int), ``persistence``, ``eden_version``,
        ``created_utc``, ``spec`` (str, None when absent) and ``provenance``
        (the decoded JSON object).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ErrorModelFileError: As for :func:`load_components`, or when
            ``provenance`` is not a JSON object.
    """
    load_components(path)  # full validation first
    with _open(path) as f:
        meta: dict[str, Any] = {"format_version": int(f.attrs["format_version"])}
        for name in ("persistence", "eden_version", "created_utc", "spec"):
            meta[name] = as_str(f.attrs.get(name))
        meta["q"] = float(f.attrs[Q_ATTR]) if Q_ATTR in f.attrs else None
        raw = f.attrs.get("provenance")
        text = as_str(raw)
        if raw is None:
            meta["provenance"] = {}
        else:
            try:
                meta["provenance"] = json.loads(text) if text is not None else None
            except json.JSONDecodeError as exc:
                raise ErrorModelFileError(path, "/ (attribute 'provenance')",
                                          f"expected a JSON object; found invalid JSON ({exc})") from None
            if not isinstance(meta["provenance"], dict):
                raise ErrorModelFileError(path, "/ (attribute 'provenance')",
                                          f"expected a JSON object; found {describe(raw)}")
    return meta


def _open(path: os.PathLike | str) -> h5py.File:
    p = Path(os.fspath(path))
    if not p.exists():
        raise EdenFileNotFoundError(errno.ENOENT, "error-model file not found", str(p))
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise ErrorModelFileError(path, "/", f"expected an HDF5 file; found a file h5py cannot open "
                                  f"(not HDF5, or truncated): {exc}") from None


def _check_header(f: h5py.File, path) -> None:
    check_header(f, path, format=FORMAT, version=FORMAT_VERSION, error=ErrorModelFileError)


def _read_persistence(f: h5py.File, path) -> Persistence:
    loc = attr_location("/", "persistence")
    modes = [m.value for m in Persistence]
    expected = f"one of {', '.join(repr(m) for m in modes)}"
    if "persistence" not in f.attrs:
        raise ErrorModelFileError(path, loc, f"expected {expected}; found no such attribute")
    value = as_str(f.attrs["persistence"])
    if value not in modes:
        raise ErrorModelFileError(path, loc, f"expected {expected}; found {describe(f.attrs['persistence'])}")
    return Persistence(value)


def _read_q(f: h5py.File, path, persistence: Persistence) -> float | None:
    loc = attr_location("/", Q_ATTR)
    if persistence is not Persistence.TWO_LEVEL:
        if Q_ATTR in f.attrs:
            raise ErrorModelFileError(path, loc, f"expected no such attribute with persistence "
                                      f"{persistence.value!r} (it belongs to 'two_level'); found "
                                      f"{describe(f.attrs[Q_ATTR])}")
        return None
    expected = "a float64 in (0, 1], the per-access failure probability of a weak cell"
    if Q_ATTR not in f.attrs:
        raise ErrorModelFileError(path, loc, f"expected {expected} (persistence is 'two_level'); found no such "
                                  "attribute")
    raw = f.attrs[Q_ATTR]
    value = np.asarray(raw)
    if value.shape != () or value.dtype.kind not in "fiu" or not 0.0 < float(value) <= 1.0:
        raise ErrorModelFileError(path, loc, f"expected {expected}; found {describe(raw)}")
    return float(value)


def _read_components(f: h5py.File, path) -> list:
    loc = f"/{COMPONENTS_GROUP}"
    group = f.get(COMPONENTS_GROUP)
    if group is None:
        raise ErrorModelFileError(path, loc, "expected a group of components; found nothing")
    if not isinstance(group, h5py.Group):
        raise ErrorModelFileError(path, loc, f"expected a group of components; found {describe_node(group)}")
    names = list(group.keys())
    if not names:
        raise ErrorModelFileError(path, loc, "expected at least one component (subgroup '0'); found none")
    expected_names = [str(i) for i in range(len(names))]
    if sorted(names, key=_name_sort_key) != expected_names:
        shown = ", ".join(sorted(names, key=_name_sort_key))
        raise ErrorModelFileError(path, loc, f"expected consecutive component groups named "
                                  f"{', '.join(expected_names)}; found {shown}")
    return [_read_component(group[name], f"{loc}/{name}", path) for name in expected_names]


def _name_sort_key(name: str):
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _read_component(node, loc: str, path):
    if not isinstance(node, h5py.Group):
        raise ErrorModelFileError(path, loc, f"expected a component group; found {describe_node(node)}")
    kind_loc = attr_location(loc, "kind")
    known = ", ".join(sorted(component_kinds()))
    if "kind" not in node.attrs:
        raise ErrorModelFileError(path, kind_loc, f"expected a component kind (one of {known}); "
                                  "found no such attribute")
    kind = as_str(node.attrs["kind"])
    if kind not in component_kinds():
        raise ErrorModelFileError(path, kind_loc, f"expected a component kind (one of {known}); "
                                  f"found {describe(node.attrs['kind'])}")
    cls = component_class(kind)
    expected = cls.param_names()
    for name in node.keys():
        if name not in expected:
            raise ErrorModelFileError(path, f"{loc}/{name}", f"expected only the {kind} parameters "
                                      f"{', '.join(expected)}; found unexpected member {name!r}")
    params = {}
    for name in expected:
        ploc = f"{loc}/{name}"
        if name not in node:
            raise ErrorModelFileError(path, ploc, f"expected a scalar float64 dataset for {kind} parameter "
                                      f"{name!r}; found nothing")
        params[name] = _read_scalar(node[name], ploc, path)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ErrorModelFileError(path, loc, f"expected valid {kind} parameters; {exc}") from None


def _read_scalar(node, loc: str, path) -> float:
    if not isinstance(node, h5py.Dataset):
        raise ErrorModelFileError(path, loc, f"expected a scalar number dataset; found {describe_node(node)}")
    if node.shape != () or node.dtype.kind not in "fiu":
        raise ErrorModelFileError(path, loc, "expected a scalar number dataset (shape (), float64); found "
                                  f"{describe_node(node)}")
    return float(node[()])


# ---------------------------------------------------------------- utilities
