"""Two-level persistence on a flip log: fixed weak cells, each failing with probability q per access.

A ``two_level`` error model (``ErrorModel.q``) is injected in two steps:

1. the backend draws the model's *weak map*, the ``fixed`` map of ``model.weak_map()`` (every
   rate divided by ``q``): ``plan.py`` compiles that model, so its cells, streams and nesting are
   exactly ``fixed``'s, on every backend;
2. this module keeps each weak cell that the kernel flipped with probability ``q``, on the host from
   the log (like the ECC step, :mod:`eden.engine.ecc.apply`), and XORs the others back.

The draw of a weak cell is a function of the device seed, the access and the cell's position
alone: with key ``derive_key(seed, access, TAG_TWO_LEVEL)``, bit ``b`` of the partition's address
space (``8 * byte address + bit``, bit 0 the LSB) fails iff ``u53(w0, w1) < floor(q 2^53)``, where
``(w0, w1, w2, w3) = philox4x32_10(b mod 2^32, b >> 32, 0, 0)``. So the same seed and access give
the same bits on every backend, whatever the placement's chunking, and draws are independent across
cells and accesses. ``q = 1`` keeps every weak cell: the bits of ``fixed`` (the weak map is then the
model itself). The cost is O(weak-map flips) = O(errors / q).
"""

from __future__ import annotations

import importlib

import numpy as np

from eden.engine import rng
from eden.engine.contract import Op, call
from eden.engine.sampling import TAG_TWO_LEVEL, TWO53

_LOW32 = np.uint64(0xFFFFFFFF)


def threshold(q: float) -> int:
    """Integer acceptance threshold of ``q``: a weak cell fails iff its 53-bit draw is below it."""
    return min(TWO53, int(np.floor(float(q) * TWO53)))


def fails(bit_address: np.ndarray, *, seed: int, access: int, q: float) -> np.ndarray:
    """bool[n]: whether the weak cells at these global bit addresses fail on ``access`` (the oracle)."""
    b = np.asarray(bit_address, np.uint64)
    k0, k1 = rng.derive_key(int(seed), int(access), TAG_TWO_LEVEL)
    w0, w1, _, _ = rng.philox4x32_10(b & _LOW32, b >> np.uint64(32), 0, 0, k0, k1)
    return rng.u53(w0, w1) < np.uint64(threshold(q))


def _numba_kernel():
    """The numba kernel of :func:`split_entries` (``backends/_twolevel_kernels.py``), or None
    without numba (the NumPy path then runs: the same bits)."""
    try:
        from eden.engine.backends import _twolevel_kernels
    except ImportError:
        return None
    return _twolevel_kernels.kept_bits


def split_entries(idx: np.ndarray, mask: np.ndarray, itemsize: int, *, base_address: int, seed: int,
                  access: int, q: float, impl: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """(kept, dropped) masks of host (word index, xor mask) entries of a weak map: each set bit of
    ``mask`` kept iff its cell fails on ``access`` (:func:`fails`); ``kept ^ dropped == mask``.

    ``impl``: ``"numpy"`` (the specification), ``"numba"`` (one compiled loop, bit-identical), or
    ``"auto"`` (numba where it is installed)."""
    idx = np.asarray(idx, np.int64)
    mask = np.asarray(mask)
    if idx.size == 0:
        return mask.copy(), np.zeros_like(mask)
    wb = itemsize * 8
    kernel = _numba_kernel() if impl != "numpy" else None
    if impl == "numba" and kernel is None:
        raise ImportError("split_entries(impl='numba') needs numba")
    if kernel is not None:
        k0, k1 = rng.derive_key(int(seed), int(access), TAG_TWO_LEVEL)
        out = np.empty(idx.size, np.uint64)
        kernel(idx, mask.astype(np.uint64), np.uint64(wb), np.uint64(base_address * 8), np.uint32(k0),
               np.uint32(k1), np.uint64(threshold(q)), out)
        kept_k = out.astype(mask.dtype)
        return kept_k, mask ^ kept_k
    m = mask.astype(np.uint64)
    single = (m & (m - np.uint64(1))) == 0  # one flipped bit: most entries at realistic rates
    kept = np.zeros(idx.size, np.uint64)
    # single-bit entries: the bit's index is the exponent of the (exact) float of a power of two
    s = np.flatnonzero(single)
    bit1 = (np.frexp(m[s].astype(np.float64))[1] - 1).astype(np.uint64)
    addr1 = np.uint64(base_address * 8) + idx[s].astype(np.uint64) * np.uint64(wb) + bit1
    kept[s] = np.where(fails(addr1, seed=seed, access=access, q=q), m[s], np.uint64(0))
    multi = np.flatnonzero(~single)
    if multi.size:
        bits = np.unpackbits(np.ascontiguousarray(mask[multi]).view(np.uint8).reshape(-1, itemsize), axis=1,
                             bitorder="little")
        rows, cols = np.nonzero(bits)  # row-major: each entry's bits together, >= 2 of them
        addr = (np.uint64(base_address * 8) + idx[multi][rows].astype(np.uint64) * np.uint64(wb)
                + cols.astype(np.uint64))
        val = np.where(fails(addr, seed=seed, access=access, q=q), np.uint64(1) << cols.astype(np.uint64),
                       np.uint64(0))
        starts = np.flatnonzero(np.concatenate([[True], rows[1:] != rows[:-1]]))
        kept[multi] = np.bitwise_or.reduceat(val, starts)
    kept_m = kept.astype(mask.dtype)
    return kept_m, mask ^ kept_m


def _array_module(a):
    """NumPy for host arrays, else the array's own package (CuPy for a CUDA log), not named here."""
    if isinstance(a, np.ndarray):
        return np
    return importlib.import_module(type(a).__module__.split(".")[0])


def thin_log(words, idx, mask, off, cnt, *, backend: str, itemsize: int, base_address: int, seed: int,
             access: int, q: float):
    """The two-level step of an ``Injector``: ``words`` hold the weak map's flips (logged by
    ``idx, mask, off, cnt``, made by ``backend``); the flips of cells that do not fail on
    ``access`` are XORed back. Returns the log of what stays (one segment, on the log's device)."""
    ridx, rmask = call(Op.READ_LOG, backend, idx, mask, off, cnt)
    ridx, rmask = np.asarray(ridx, np.int64), np.asarray(rmask)
    kept, dropped = split_entries(ridx, rmask, itemsize, base_address=base_address, seed=seed, access=access,
                                  q=q)
    xp = _array_module(words)
    back = np.flatnonzero(dropped)
    if back.size:
        if xp is np:
            words[ridx[back]] ^= dropped[back]
        else:
            words[xp.asarray(ridx[back])] ^= xp.asarray(dropped[back])
    stay = np.flatnonzero(kept)
    new_idx = ridx[stay].astype(np.asarray(idx).dtype if xp is np else idx.dtype)
    new_mask = kept[stay]
    off1, cnt1 = np.zeros(1, np.int64), np.array([stay.size], np.int64)
    if xp is not np:
        return xp.asarray(new_idx), xp.asarray(new_mask), off1, cnt1
    return new_idx, new_mask, off1, cnt1
