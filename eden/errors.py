"""The root of eden's errors: what a user did wrong, as opposed to a bug in eden.

Every error eden raises on bad input derives from :class:`EdenError`. The CLI turns exactly these
(and click's usage errors) into a one-line message; any other exception is a bug and keeps its
traceback. Each subclass also derives from the built-in exception that code written before the
root existed caught (``ValueError``, ``TypeError``, ``FileNotFoundError``), so ``except ValueError``
keeps working.

    EdenError
    +-- EdenFileError          a file is unreadable or not the layout it should be (file, location, detail)
    +-- EdenFileNotFoundError  a file or resource that does not exist (also a FileNotFoundError)
    +-- EdenConfigError        a bad argument, option, spec, profile field or name
    +-- EdenTypeError          an argument of the wrong type (also a TypeError and a ValueError)
    +-- EdenDataError          data that do not fit: a model that fails on the given data, raw
    |                          records that identify nothing, a record from another model
    +-- EdenInfeasibleError    a request no solution meets (no partition holds a data type, ...)
"""

from __future__ import annotations

import os


class EdenError(Exception):
    """Root of the errors eden raises on bad input (never on its own bugs)."""


class EdenConfigError(EdenError, ValueError):
    """A bad argument, option, spec, name or profile field; the message names it and what was expected."""


class EdenTypeError(EdenError, TypeError, ValueError):
    """An argument of the wrong type. ``except TypeError`` catches it, and so does ``except ValueError``
    (some checks raised that for a wrong type before the error root existed, e.g. a float seed)."""


class EdenDataError(EdenError, ValueError):
    """Data that do not fit what was asked: the message names the model, the data and the shapes."""


class EdenInfeasibleError(EdenError, ValueError):
    """A request that no solution meets, with what was asked and what was available."""


class EdenFileError(EdenError, ValueError):
    """A file is not a valid eden file of some kind (subclasses name the kind).

    Attributes:
        file: Path of the offending file, as given.
        location: Where inside the file the problem is (an HDF5 path, with the attribute name when
            the problem is an attribute; a JSON field; ``"/"`` for the whole file).
        detail: What was expected and what was found.
    """

    kind = "eden"

    def __init__(self, file: os.PathLike | str, location: str, detail: str) -> None:
        self.file = os.fspath(file)
        self.location = location
        self.detail = detail
        super().__init__(f"invalid {self.kind} file {self.file!r} at {location}: {detail}")

    def __reduce__(self):
        return (type(self), (self.file, self.location, self.detail))


class EdenFileNotFoundError(EdenError, FileNotFoundError):
    """A file or resource eden was asked to read does not exist (the message names the path)."""


__all__ = ["EdenError", "EdenConfigError", "EdenTypeError", "EdenDataError", "EdenInfeasibleError",
           "EdenFileError", "EdenFileNotFoundError"]
