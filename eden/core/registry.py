"""One registry type for every extension point: a name -> implementation dict that registers once
and explains an unknown name.

Storage formats, DRAM standards, error-model components and fit candidates, importers and mapping
policies each keep one :class:`Registry`; their ``register`` functions add their own checks (a
format's bit layout adds up, a component declares its parameters) and call :meth:`Registry.add`.
A ``Registry`` is a ``dict``: iteration is registration order, and tests may add and remove
entries like any mapping (``monkeypatch.setitem``).

    >>> policies = Registry("mapping policy")
    >>> policies.add("greedy", print) is print
    True
    >>> policies.lookup("gredy")
    Traceback (most recent call last):
    ...
    eden.errors.EdenConfigError: unknown mapping policy 'gredy'; known: greedy; did you mean 'greedy'?
"""

from __future__ import annotations

from typing import Generic, TypeVar

from eden.core.validate import unknown_name

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Registered implementations by name, for one extension point called ``what`` in messages."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def add(self, name: str, item: T) -> T:
        """Register ``item`` as ``name`` and return it. A name registers once: a second registration is
        a mistake in the extension (``ValueError``, a bug, not user input)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.what} is registered under a non-empty name, got {name!r}")
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = item
        return item

    def lookup(self, name: object) -> T:
        """The implementation registered as ``name``; an unknown name raises
        :class:`~eden.errors.EdenConfigError` listing the known ones and the close matches."""
        if isinstance(name, str) and name in self:
            return self[name]
        raise unknown_name(self.what, name, self)

    def copy(self) -> Registry[T]:
        """A registry with the same entries (tests register temporary ones in a copy)."""
        new: Registry[T] = Registry(self.what)
        new.update(self)
        return new

    def names(self) -> tuple[str, ...]:
        """The registered names in registration order."""
        return tuple(self)


__all__ = ["Registry"]
