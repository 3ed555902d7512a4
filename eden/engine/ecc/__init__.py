"""ECC codes (one module each, registered in :mod:`eden.engine.ecc.base`) and their application
to a flip log (:mod:`eden.engine.ecc.apply`). A new code: one module building a ``Code`` and
calling ``register``, plus its name on the import line below."""

from eden.engine.ecc import chipkill144, ondie136, secded72  # noqa: F401  (registers the built-in codes)
from eden.engine.ecc.base import NONE, Code, DuePolicy, Layout, Outcome, code_names, get_code, register

__all__ = ["NONE", "Code", "DuePolicy", "Layout", "Outcome", "code_names", "get_code", "register"]
