"""int32: 32-bit integers (and uint32 words) stored as themselves; not a DNN numeric format."""

import numpy as np

from eden.formats.base import IntFormat
from eden.formats.registry import register_format

INT32 = register_format(IntFormat(
    "int32", np.dtype(np.uint32), 32, numpy_dtypes=("int32", "uint32"), torch_dtypes=("int32",),
    description="32-bit integers"))
