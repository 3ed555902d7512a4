"""int16: 16-bit two's complement codes (uint16 data stored alike)."""

import numpy as np

from eden.formats.base import IntFormat
from eden.formats.registry import register_format

INT16 = register_format(IntFormat(
    "int16", np.dtype(np.uint16), 16, numpy_dtypes=("int16", "uint16"), torch_dtypes=("int16",), numeric=True,
    description="16-bit integer codes"))
