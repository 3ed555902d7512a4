"""fp8: the two 8-bit floats of the OCP 8-bit floating point specification, stored as themselves.

``fp8_e4m3`` (torch's ``float8_e4m3fn``: NaN but no infinity, largest 448) and ``fp8_e5m2``
(``float8_e5m2``: infinities and NaN like IEEE, largest 57344). One value per byte; correction
treats NaN and infinities as implausible like any float.
"""

import numpy as np

from eden.formats.minifloat import E4M3, E5M2, MiniFloatFormat
from eden.formats.registry import register_format

FP8_E4M3 = register_format(MiniFloatFormat(
    "fp8_e4m3", np.dtype(np.uint8), 8, torch_dtypes=("float8_e4m3fn",), numeric=True,
    description="fp8 e4m3fn (OCP FP8: NaN, no infinity, max 448)", view="e4m3", code=E4M3))

FP8_E5M2 = register_format(MiniFloatFormat(
    "fp8_e5m2", np.dtype(np.uint8), 8, torch_dtypes=("float8_e5m2",), numeric=True,
    description="fp8 e5m2 (OCP FP8: infinities and NaN, max 57344)", view="e5m2", code=E5M2))
