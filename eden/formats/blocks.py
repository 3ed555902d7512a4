"""Block-scaled data in DRAM: elements and their metadata in one byte buffer, in NumPy.

Block formats (the OCP MX formats, group-wise integers) store blocks of ``block`` elements of
``element_bits`` each, plus ``meta_bytes`` of metadata per block (an E8M0 scale; an fp16/bf16
scale and zero point). All of it sits in the same DRAM and takes errors. Where the metadata
sits is the :class:`Placement`:

* ``separate``: all elements first (block after block), then all the metadata (one array of
  scales, then one of zero points), as most kernels keep them;
* ``interleaved``: block after block, each block's metadata right before its elements.

Elements are a little-endian bit stream: element ``i`` of a block occupies bits
``[i * element_bits, (i + 1) * element_bits)`` of the block's element bytes, bit 0 being the
least significant bit of the first byte (fp4/int4: two per byte, low nibble first; fp6: four
per three bytes). A block's elements fill whole bytes (``block * element_bits`` is a multiple
of 8).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from eden.core.validate import Mode
from eden.errors import EdenConfigError


class Placement(Mode):
    """Where a block format's metadata sits relative to its elements."""

    SEPARATE = "separate"
    INTERLEAVED = "interleaved"


@dataclasses.dataclass(frozen=True)
class BlockLayout:
    """The byte layout of ``n_blocks`` blocks.

    Attributes:
        element_bits: bits per element.
        block: elements per block.
        meta_bytes: bytes of metadata per block, as a tuple of field widths in bytes (``(1,)``
            for an E8M0 scale, ``(2, 2)`` for an fp16 scale and zero point).
        placement: :class:`Placement`.
    """

    element_bits: int
    block: int
    meta_bytes: tuple[int, ...]
    placement: Placement = Placement.SEPARATE

    def __post_init__(self):
        object.__setattr__(self, "placement", Placement(self.placement))
        if (self.block * self.element_bits) % 8:
            raise EdenConfigError(f"a block of {self.block} {self.element_bits}-bit elements does not fill whole "
                                  "bytes")

    @property
    def element_bytes(self) -> int:
        """Bytes of one block's elements."""
        return self.block * self.element_bits // 8

    @property
    def block_bytes(self) -> int:
        """Bytes of one block with its metadata."""
        return self.element_bytes + sum(self.meta_bytes)

    def nbytes(self, n_blocks: int) -> int:
        return n_blocks * self.block_bytes

    def offsets(self, n_blocks: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """(byte offset of each block's elements, [byte offset of each block's field k]) (int64)."""
        b = np.arange(n_blocks, dtype=np.int64)
        if self.placement is Placement.SEPARATE:
            elem = b * self.element_bytes
            start, fields = n_blocks * self.element_bytes, []
            for w in self.meta_bytes:
                fields.append(start + b * w)
                start += n_blocks * w
            return elem, fields
        base = b * self.block_bytes
        fields, off = [], 0
        for w in self.meta_bytes:
            fields.append(base + off)
            off += w
        return base + off, fields

    def metadata_mask(self, n_blocks: int) -> np.ndarray:
        """bool per byte of the buffer: True for metadata bytes."""
        mask = np.zeros(self.nbytes(n_blocks), bool)
        _, fields = self.offsets(n_blocks)
        for w, off in zip(self.meta_bytes, fields):
            for j in range(w):
                mask[off + j] = True
        return mask

    def pack(self, codes: np.ndarray, fields: list[np.ndarray]) -> np.ndarray:
        """codes ``[n_blocks, block]`` (unsigned, < 2^element_bits) and metadata fields (one
        array ``[n_blocks]`` of unsigned words per field, ``meta_bytes[k]`` bytes each,
        little-endian) -> the buffer (uint8)."""
        n = codes.shape[0]
        out = np.empty(self.nbytes(n), np.uint8)
        elem_off, field_off = self.offsets(n)
        elem = pack_bits(codes.reshape(-1), self.element_bits).reshape(n, self.element_bytes)
        out[elem_off[:, None] + np.arange(self.element_bytes)] = elem
        for w, off, f in zip(self.meta_bytes, field_off, fields):
            fb = np.ascontiguousarray(f.astype(f"<u{w}")).view(np.uint8).reshape(n, w)
            out[off[:, None] + np.arange(w)] = fb
        return out

    def unpack(self, buf: np.ndarray, n_blocks: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Inverse of :meth:`pack`: (codes ``[n_blocks, block]`` uint8, fields)."""
        buf = np.asarray(buf, np.uint8).reshape(-1)
        if buf.size != self.nbytes(n_blocks):
            raise EdenConfigError(f"a buffer of {n_blocks} blocks has {self.nbytes(n_blocks)} bytes, got {buf.size}")
        elem_off, field_off = self.offsets(n_blocks)
        elem = buf[elem_off[:, None] + np.arange(self.element_bytes)]
        codes = unpack_bits(elem.reshape(-1), self.element_bits, n_blocks * self.block).reshape(n_blocks, self.block)
        fields = [np.ascontiguousarray(buf[off[:, None] + np.arange(w)]).view(f"<u{w}").reshape(n_blocks)
                  for w, off in zip(self.meta_bytes, field_off)]
        return codes, fields


def pack_bits(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned codes (< 2^bits) -> a little-endian bit stream of bytes (count * bits a multiple of 8)."""
    c = np.asarray(codes).astype(np.uint8, copy=False).reshape(-1)
    if bits == 8:
        return c.copy()
    b = np.unpackbits(c[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(b.reshape(-1), bitorder="little")


def unpack_bits(stream: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``count`` codes (uint8)."""
    s = np.asarray(stream, np.uint8).reshape(-1)
    if bits == 8:
        return s[:count].copy()
    b = np.unpackbits(s, bitorder="little")[: count * bits].reshape(count, bits)
    return np.packbits(b, axis=1, bitorder="little").reshape(count)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What the clean tensor looked like when it was encoded (kept in reliable memory: a few
    numbers per tensor), for correction: the range of its values as they read back without
    errors, and of each metadata field."""

    values: tuple[float, float]
    fields: tuple[tuple[float, float], ...]


class BlockCodec:
    """The numerics of one block format (implemented by :class:`eden.formats.mx.MXFormat` and
    :class:`eden.formats.group.GroupQuant`): values <-> element codes and metadata words."""

    layout: BlockLayout

    def encode_blocks(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """float32 ``[n_blocks, block]`` -> (unsigned codes uint8, metadata words per field)."""
        raise NotImplementedError

    def field_values(self, fields: list[np.ndarray]) -> list[np.ndarray]:
        """Metadata words -> their values as float64 (NaN where a word is NaN)."""
        raise NotImplementedError

    def dequantize(self, codes: np.ndarray, meta: list[np.ndarray]) -> np.ndarray:
        """codes ``[n_blocks, block]`` and metadata values -> float32 values."""
        raise NotImplementedError

    # ------------------------------------------------------------------ generic
    def n_blocks(self, count: int) -> int:
        return -(-count // self.layout.block)

    def encode_values(self, values) -> tuple[np.ndarray, Calibration]:
        """Flat float32 values (the last block padded with zeros) -> (buffer, calibration)."""
        x = np.asarray(values, np.float32).reshape(-1)
        n = x.size
        nb = self.n_blocks(n)
        padded = np.zeros(nb * self.layout.block, np.float32)
        padded[:n] = x
        codes, fields = self.encode_blocks(padded.reshape(nb, self.layout.block))
        clean = self.dequantize(codes, self.field_values(fields)).reshape(-1)[:n]
        finite = clean[np.isfinite(clean)]
        vr = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        franges = []
        for v in self.field_values(fields):
            fv = v[np.isfinite(v)]
            franges.append((float(fv.min()), float(fv.max())) if fv.size else (0.0, 0.0))
        return self.layout.pack(codes, fields), Calibration(vr, tuple(franges))

    def decode_values(self, buf, count: int, *, correction: str = "none",
                      plausible: tuple[float, float] | None = None,
                      calibration: Calibration | None = None) -> tuple[np.ndarray, int]:
        """Buffer -> (the first ``count`` values as float32, values the correction changed).

        Correction (``zero`` or ``clamp``): a metadata entry is implausible when it is NaN,
        infinite or outside its calibrated range; ``zero`` zeroes its block, ``clamp`` clamps
        it into the range (NaN -> 0 clamped into the range). Then a value is implausible when
        it is NaN, infinite or outside ``plausible`` widened to the calibrated value range (a
        clean value is never corrected):
        ``zero`` -> 0, ``clamp`` -> the nearer end (NaN -> 0 clamped into the range).
        """
        nb = self.n_blocks(count)
        codes, fields = self.layout.unpack(buf, nb)
        meta = self.field_values(fields)
        if correction == "none":
            return self.dequantize(codes, meta).reshape(-1)[:count], 0
        if calibration is None:
            raise EdenConfigError("correcting a block format needs the calibration of its clean encoding")
        bad_block = np.zeros(nb, bool)
        fixed = []
        for v, (lo, hi) in zip(meta, calibration.fields):
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(v) | (v < lo) | (v > hi)
            bad_block |= bad
            if correction == "clamp":
                v = np.where(np.isnan(v), min(max(0.0, lo), hi), np.clip(v, lo, hi))
            fixed.append(v)
        vals = self.dequantize(codes, fixed)
        if correction == "zero":
            vals[bad_block] = 0.0
        low, high = calibration.values
        if plausible is not None:
            low, high = min(low, float(plausible[0])), max(high, float(plausible[1]))
        low32, high32 = np.float32(low), np.float32(high)
        with np.errstate(invalid="ignore"):
            bad_val = ~np.isfinite(vals) | (vals < low32) | (vals > high32)
        if correction == "zero":
            vals[bad_val] = 0.0
        else:
            nan = np.isnan(vals)
            vals = np.clip(vals, low32, high32)
            vals[nan] = np.float32(min(max(0.0, low), high))
        changed = (bad_block[:, None] | bad_val).reshape(-1)[:count]
        return vals.reshape(-1)[:count], int(changed.sum())
