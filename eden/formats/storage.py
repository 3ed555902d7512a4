"""Storage formats: how a tensor's values are laid out as bits in DRAM.

Each registered format names the unsigned word the injection engine flips
(``word``), whether the values are floating point (implausible-value
correction applies) and its bit width. Packed int4 stores two 4-bit two's
complement codes per byte (low nibble first) and is injected as ``uint8``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class StorageFormat:
    name: str
    word: np.dtype
    bits: int
    is_float: bool


FORMATS: dict[str, StorageFormat] = {
    f.name: f for f in (
        StorageFormat("fp32", np.dtype(np.uint32), 32, True),
        StorageFormat("fp16", np.dtype(np.uint16), 16, True),
        StorageFormat("bf16", np.dtype(np.uint16), 16, True),
        StorageFormat("int32", np.dtype(np.uint32), 32, False),
        StorageFormat("int16", np.dtype(np.uint16), 16, False),
        StorageFormat("int8", np.dtype(np.uint8), 8, False),
        StorageFormat("uint8", np.dtype(np.uint8), 8, False),
        StorageFormat("int4", np.dtype(np.uint8), 8, False),  # packed, two codes per byte
    )
}

_NUMPY_TO_FORMAT = {
    np.dtype(np.float32): "fp32", np.dtype(np.float16): "fp16", np.dtype(np.int32): "int32",
    np.dtype(np.int16): "int16", np.dtype(np.uint16): "int16", np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8", np.dtype(np.uint32): "int32",
}
_TORCH_TO_FORMAT = {
    "torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.int32": "int32",
    "torch.int16": "int16", "torch.int8": "int8", "torch.uint8": "uint8",
}
SUPPORTED_DTYPES = ("float32", "float16", "bfloat16", "int32", "int16", "int8", "uint8")


def format_of(dtype) -> StorageFormat:
    """The storage format of a torch or NumPy dtype; TypeError if unsupported."""
    key = str(dtype)
    name = _TORCH_TO_FORMAT.get(key)
    if name is None:
        try:
            name = _NUMPY_TO_FORMAT.get(np.dtype(dtype))
        except TypeError:
            name = None
    if name is None:
        raise TypeError(f"unsupported dtype {key}: eden injects into {', '.join(SUPPORTED_DTYPES)} "
                        f"(packed int4 as uint8)")
    return FORMATS[name]


def pack_int4(codes: np.ndarray) -> np.ndarray:
    """Pack int4 codes (int8 values in [-8, 7], even count) two per byte, low nibble first."""
    codes = np.asarray(codes)
    if codes.size % 2:
        raise ValueError(f"pack_int4 needs an even number of codes, got {codes.size}")
    if codes.size and (codes.min() < -8 or codes.max() > 7):
        raise ValueError("pack_int4: codes must be in [-8, 7]")
    u = (codes.reshape(-1).astype(np.int16) & 0xF).astype(np.uint8)
    return (u[0::2] | (u[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """Inverse of pack_int4: int8 codes in [-8, 7]."""
    packed = np.asarray(packed, np.uint8).reshape(-1)
    out = np.empty(packed.size * 2, np.int8)
    lo = (packed & 0xF).astype(np.int8)
    hi = (packed >> 4).astype(np.int8)
    out[0::2] = np.where(lo > 7, lo - 16, lo)
    out[1::2] = np.where(hi > 7, hi - 16, hi)
    return out
