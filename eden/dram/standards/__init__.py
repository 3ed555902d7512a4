"""DRAM standards, registered by name: one module per standard plus one registration line.

Each module (``ddr4.py``, ``ddr3.py``, ``ddr5.py``, ``lpddr4.py``, ``lpddr5.py``, ``hbm2.py``,
``hbm3.py``) builds one :class:`~eden.dram.standards.base.Standard`
(memspec fields, voltage domains, currents, refresh modes, commands, energies,
background powers); the line at the bottom of this file registers it. The DRAM
profile loader (``eden.dram.profiles``) checks a profile's ``power`` section
against :meth:`Standard.fields`; the power model (``eden.power.memspec``)
builds memspecs and evaluates energies through the same record.

Example:
    >>> names()
    ['DDR3', 'DDR4', 'DDR5', 'HBM2', 'HBM3', 'LPDDR4', 'LPDDR5']
    >>> [d.name for d in get("DDR4").domains]
    ['VDD', 'VPP']
"""

from __future__ import annotations

from eden.core.registry import Registry
from eden.dram.standards import ddr3, ddr4, ddr5, hbm2, hbm3, lpddr4, lpddr5
from eden.dram.standards.base import Standard

__all__ = ["Standard", "register", "get", "names"]

_REGISTRY: Registry[Standard] = Registry("DRAM standard")


def register(standard: Standard) -> Standard:
    """Add ``standard`` under ``standard.name`` (a name registers once)."""
    if not isinstance(standard, Standard):
        raise TypeError(f"register: expected a Standard, got {type(standard).__name__}")
    return _REGISTRY.add(standard.name, standard)


def get(name: object) -> Standard:
    """The registered standard ``name``; an unknown name raises ``EdenConfigError`` listing the known ones."""
    return _REGISTRY.lookup(name)


def names() -> list[str]:
    """Registered standard names, sorted."""
    return sorted(_REGISTRY)


# Registration: one line per standard.
register(ddr4.STANDARD)
register(ddr3.STANDARD)
register(ddr5.STANDARD)
register(lpddr4.STANDARD)
register(lpddr5.STANDARD)
register(hbm2.STANDARD)
register(hbm3.STANDARD)
