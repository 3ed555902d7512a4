"""The storage-format registry: name -> :class:`~eden.formats.base.StorageFormat`, dtype -> format.

Formats register once, at import of their module (``eden/formats/__init__.py`` imports the
built-in ones); lookups raise :func:`eden.core.validate.unknown_name` for a name nobody registered.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from eden.core.registry import Registry
from eden.errors import EdenTypeError
from eden.formats.base import Granularity, StorageFormat

_FORMATS: Registry[StorageFormat] = Registry("storage format")


def register_format(fmt: StorageFormat) -> StorageFormat:
    """Add ``fmt`` under ``fmt.name``; returns it (usable as a module-level one-liner).

    Raises:
        ValueError: the name or one of its dtypes is taken, or its bit layout does not add up to
            the word width (a mistake in the extension: a bug, not user input).
    """
    if fmt.name in _FORMATS:  # checked first: a taken name explains the dtype clash too
        raise ValueError(f"storage format {fmt.name!r} is already registered")
    if fmt.layout_bits != fmt.word_bits:
        raise ValueError(f"format {fmt.name!r}: its bit layout covers {fmt.layout_bits} bits of a "
                         f"{fmt.word_bits}-bit word")
    for kind, names in (("numpy", fmt.numpy_dtypes), ("torch", fmt.torch_dtypes)):
        for other in _FORMATS.values():
            taken = set(names) & set(other.numpy_dtypes if kind == "numpy" else other.torch_dtypes)
            if taken:
                raise ValueError(f"format {fmt.name!r}: {kind} dtype {min(taken)} is already "
                                 f"stored as {other.name!r}")
    return _FORMATS.add(fmt.name, fmt)


def unregister_format(name: str) -> None:
    """Remove a registered format (tests and plug-ins that register temporary ones)."""
    del _FORMATS[_FORMATS.lookup(name).name]


def get_format(name: str | StorageFormat) -> StorageFormat:
    """The format registered as ``name`` (a format passes through)."""
    if isinstance(name, StorageFormat):
        return name
    return _FORMATS.lookup(name)


def format_of(dtype) -> StorageFormat:
    """The storage format of a torch or NumPy dtype.

    Raises:
        EdenTypeError: no registered format stores this dtype.
    """
    key = str(dtype)
    if key.startswith("torch."):
        name = key[len("torch."):]
        for fmt in _FORMATS.values():
            if name in fmt.torch_dtypes:
                return fmt
    else:
        try:
            name = key = np.dtype(dtype).name
        except TypeError:
            name = None
        for fmt in _FORMATS.values():
            if name in fmt.numpy_dtypes:
                return fmt
    supported = sorted({d for f in _FORMATS.values() for d in (*f.torch_dtypes, *f.numpy_dtypes)})
    # (block formats such as MX are byte buffers of elements and scales: not a dtype's storage)
    packed = [f"{f.name} as {f.word}" for f in _FORMATS.values()
              if not (f.torch_dtypes or f.numpy_dtypes or Granularity.BLOCK in f.granularities)]
    raise EdenTypeError(f"unsupported dtype {key}: eden injects into {', '.join(supported)}"
                        + (f" ({', '.join(packed)})" if packed else ""))


class _Registered(Mapping):
    """Read-only live view of the registry (``FORMATS``): name -> format."""

    def __getitem__(self, name: str) -> StorageFormat:
        return _FORMATS[name]  # KeyError, as a mapping should; get_format() explains

    def __iter__(self) -> Iterator[str]:
        return iter(list(_FORMATS))

    def __len__(self) -> int:
        return len(_FORMATS)

    def __repr__(self) -> str:
        return f"FORMATS({', '.join(_FORMATS)})"


#: Every registered format by name (live: includes formats registered later).
FORMATS: Mapping[str, StorageFormat] = _Registered()
