"""eden: run neural networks on emulated approximate DRAM.

Public API (imports stay light: no CuPy, no CUDA initialisation, numba compiles
on first injection):

Error models and DRAM placement
    ErrorModel, AddressMap, DramOrganization
Injection
    inject_, FlipLog, Correction
Storage formats
    FORMATS, pack_int4, unpack_int4
"""

from eden._version import __version__
from eden.address import AddressMap, DramOrganization
from eden.error_models import ErrorModel
from eden.formats import FORMATS, pack_int4, unpack_int4
from eden.inject import Correction, FlipLog, inject_

__all__ = [
    "__version__",
    # error models and placement
    "ErrorModel", "AddressMap", "DramOrganization",
    # injection
    "inject_", "FlipLog", "Correction",
    # formats
    "FORMATS", "pack_int4", "unpack_int4",
]
