"""fp32: IEEE 754 binary32, stored as itself in 32-bit words."""

import numpy as np

from eden.formats.base import BitLayout, FloatFormat
from eden.formats.registry import register_format

FP32 = register_format(FloatFormat(
    "fp32", np.dtype(np.uint32), 32, numpy_dtypes=("float32",), torch_dtypes=("float32",), numeric=True,
    description="IEEE binary32", layout=BitLayout(sign=1, exponent=8, mantissa=23), view="float32"))
