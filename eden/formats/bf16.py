"""bf16: bfloat16, the upper half of a binary32, in 16-bit words (NumPy has no bfloat16 dtype)."""

import numpy as np

from eden.formats.base import BitLayout, FloatFormat
from eden.formats.registry import register_format

BF16 = register_format(FloatFormat(
    "bf16", np.dtype(np.uint16), 16, torch_dtypes=("bfloat16",), numeric=True,
    description="bfloat16 (binary32 truncated to 16 bits, rounded to nearest even)",
    layout=BitLayout(sign=1, exponent=8, mantissa=7), view=None))
