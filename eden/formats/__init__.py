"""Storage formats: how values sit in DRAM as the words the injection engine flips.

One module per format; each registers itself on import, and the line below imports the
built-in ones (adding a format = one new module + one name on that line). NumPy only: this
package imports without torch.

    >>> from eden.formats import get_format
    >>> get_format("bf16").layout
    BitLayout(sign=1, exponent=8, mantissa=7)
"""

# Registration order is the order of ``FORMATS`` (as before the registry): keep new formats last.
from eden.formats import fp32, fp16, bf16, int32, int16, int8, uint8, int4, fp8, mx, nf4  # noqa: F401 (registers them)
from eden.formats.base import (BitLayout, FloatFormat, Granularity, IntFormat, MetadataField, MetadataLocation,
                               QuantScheme, StorageFormat)
from eden.formats.int4 import pack_int4, unpack_int4
from eden.formats.registry import FORMATS, format_of, get_format, register_format, unregister_format

__all__ = ["FORMATS", "BitLayout", "FloatFormat", "Granularity", "IntFormat", "MetadataField", "MetadataLocation",
           "QuantScheme", "StorageFormat", "format_of", "get_format", "pack_int4", "register_format", "unpack_int4",
           "unregister_format"]
