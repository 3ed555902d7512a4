"""fp16: IEEE 754 binary16, stored as itself in 16-bit words."""

import numpy as np

from eden.formats.base import BitLayout, FloatFormat
from eden.formats.registry import register_format

FP16 = register_format(FloatFormat(
    "fp16", np.dtype(np.uint16), 16, numpy_dtypes=("float16",), torch_dtypes=("float16",), numeric=True,
    description="IEEE binary16", layout=BitLayout(sign=1, exponent=5, mantissa=10), view="float16"))
