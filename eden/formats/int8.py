"""int8: 8-bit two's complement codes."""

import numpy as np

from eden.formats.base import _QUANT_METADATA, GROUP_METADATA, GROUPED, IntFormat
from eden.formats.registry import register_format

INT8 = register_format(IntFormat(
    "int8", np.dtype(np.uint8), 8, numpy_dtypes=("int8",), torch_dtypes=("int8",), numeric=True,
    granularities=GROUPED, metadata=_QUANT_METADATA + GROUP_METADATA,
    description="8-bit integer codes"))
