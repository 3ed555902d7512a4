"""uint8: raw bytes (images, packed data); also the words packed int4 is injected as."""

import numpy as np

from eden.formats.base import IntFormat
from eden.formats.registry import register_format

UINT8 = register_format(IntFormat(
    "uint8", np.dtype(np.uint8), 8, numpy_dtypes=("uint8",), torch_dtypes=("uint8",), signed=False,
    description="unsigned bytes"))
