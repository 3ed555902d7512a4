"""int4: 4-bit two's complement codes packed two per byte, low nibble first.

No dtype maps to it: packed tensors are ``uint8`` and are injected as such. An odd count of
codes is padded by the caller (``eden.nn.quant`` pads one code 0, never read back).
"""

import numpy as np

from eden.formats.base import _QUANT_METADATA, GROUP_METADATA, GROUPED, IntFormat
from eden.formats.registry import register_format

INT4 = register_format(IntFormat(
    "int4", np.dtype(np.uint8), 4, numeric=True, granularities=GROUPED, metadata=_QUANT_METADATA + GROUP_METADATA,
    description="4-bit integer codes, two per byte"))


def pack_int4(codes):
    """Pack int4 codes (values in [-8, 7], even count) two per byte, low nibble first (NumPy)."""
    return INT4.encode(codes)


def unpack_int4(packed):
    """Inverse of :func:`pack_int4`: int8 codes in [-8, 7]."""
    return INT4.decode(packed)
