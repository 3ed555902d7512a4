"""ECC applied to a flip log: after raw injection, before implausible-value correction.

The raw errors are drawn over data and check bits:

* the data bits' errors are the flip log of the injection into the tensor (any backend);
* the check bits live in a separate array (the ECC chip of a DIMM rank, the parity cells of an
  on-die code) with its own cells: they are drawn by injecting the same error model into a
  check-bit buffer of ``codewords * r`` bits, on the host's CPU path (bit-identical to every
  backend), with a device seed derived from the tensor's seed and the code, at the address
  ``first codeword * r / 8`` of that array. Under ``fixed`` persistence the check cells'
  weak map is fixed per seed like the data's (``two_level``: and each of its cells fails per
  access as :mod:`eden.engine.twolevel` draws it, under that seed). The buffer holds zeros unless the model is
  data-dependent (em3), in which case it holds the clean data's true check bits (one O(bits)
  encoding pass); a data-independent model flips the same cells whatever they store.

Only codewords with at least one raw error are decoded (the syndrome of a linear code depends
on the error pattern alone), so the cost is O(errors). The decoder's corrections, miscorrections
and the DUE policy's zeroed bytes are XORed into the tensor and folded into the log, so
``undo()`` still restores the original bits. Data bits of a codeword outside the tensor (its
first or last codeword may be partial) carry no errors here, and a miscorrection that lands
there changes nothing in this tensor.

This step runs on the host from the log (a CUDA tensor's log is read back, the few changed words
are written back on the device): same semantics and bits on every backend.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib

import numpy as np

from eden.dram.address import AddressMap
from eden.engine.contract import Op, call, kernel, select
from eden.engine.ecc.base import OUTCOMES, Code, DuePolicy, Outcome
from eden.engine.plan import cached_plan
from eden.engine.twolevel import split_entries
from eden.errormodels.model import ErrorModel
from eden.formats import get_format

_MAX_SEED = (1 << 63) - 1


@functools.lru_cache(maxsize=1)
def _uint8():
    return get_format("uint8")


@dataclasses.dataclass(frozen=True)
class EccStats:
    """What ECC did to one injection (counts over the codewords the tensor spans).

    ``raw_bit_errors`` counts data and check bits; ``post_ecc_bit_errors`` the tensor's data bits
    that differ from the original after decoding (before the DUE policy's zeroing, which is in
    ``zeroed_bytes``). ``sdc`` counts codewords whose data are wrong after ECC and not signalled
    to the controller; ``due`` the signalled ones (0 for on-die codes, which signal nothing).
    ``by_raw_errors[k]`` holds the outcome counts of codewords with ``k`` raw errors;
    ``by_raw_symbols[k]`` (symbol codes only, else None) those of codewords with ``k`` erroneous
    symbols (a symbol with any raw error counts once).
    """

    code: str
    policy: str
    codewords: int
    data_bits: int
    raw_bit_errors: int
    raw_data_bit_errors: int
    raw_check_bit_errors: int
    codewords_with_errors: int
    corrected: int
    detected: int
    miscorrected: int
    undetected: int
    post_ecc_bit_errors: int
    sdc: int
    due: int
    zeroed_bytes: int
    by_raw_errors: dict[int, dict[str, int]]
    by_raw_symbols: dict[int, dict[str, int]] | None = None

    @property
    def post_ecc_ber(self) -> float:
        return self.post_ecc_bit_errors / self.data_bits if self.data_bits else 0.0

    @property
    def sdc_rate(self) -> float:
        """Silently corrupted codewords per codeword."""
        return self.sdc / self.codewords if self.codewords else 0.0

    @property
    def due_rate(self) -> float:
        """Signalled uncorrectable codewords per codeword."""
        return self.due / self.codewords if self.codewords else 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["by_raw_errors"] = {str(k): v for k, v in sorted(self.by_raw_errors.items())}
        if self.by_raw_symbols is None:  # bit codes: the keys they always had
            del d["by_raw_symbols"]
        else:
            d["by_raw_symbols"] = {str(k): v for k, v in sorted(self.by_raw_symbols.items())}
        d.update(post_ecc_ber=self.post_ecc_ber, sdc_rate=self.sdc_rate, due_rate=self.due_rate)
        return d


def check_seed(seed: int, code: Code) -> int:
    """The device seed of the check-bit array of ``code`` for a tensor injected with ``seed``."""
    h = hashlib.blake2b(f"eden-ecc-check:{code.name}:{int(seed)}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & _MAX_SEED


def codeword_span(code: Code, base_address: int, nbytes: int) -> tuple[int, int]:
    """(first codeword, number of codewords) the bytes ``[base, base + nbytes)`` touch."""
    L = code.layout.line_bytes
    S = code.layout.codewords_per_line(code.k)
    first_line = base_address // L
    last_line = (base_address + max(nbytes, 1) - 1) // L
    return first_line * S, (last_line - first_line + 1) * S


def _byte_to_codeword(code: Code, addr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(global codeword, byte within the codeword's data) of byte addresses."""
    L = code.layout.line_bytes
    S = code.layout.codewords_per_line(code.k)
    o = addr % L
    return (addr // L) * S + o % S, o // S


def _codeword_bytes(code: Code, cw: np.ndarray) -> np.ndarray:
    """int64[m, k/8]: byte addresses of the data bytes of global codewords."""
    L = code.layout.line_bytes
    S = code.layout.codewords_per_line(code.k)
    line, j = cw // S, cw % S
    return (line * L + j)[:, None] + S * np.arange(code.k // 8)[None, :]


def _data_dependent(model: ErrorModel) -> bool:
    return any(len({c.rate_table(a, b)[0] - c.rate_table(a, b)[1] for a in (False, True) for b in (False, True)}
                   - {0.0}) > 0 for c in model.components)


def _bits_of(idx: np.ndarray, mask: np.ndarray, itemsize: int) -> tuple[np.ndarray, np.ndarray]:
    """(byte offset, bit in byte) of every set bit of (word index, mask) entries (little endian)."""
    if len(idx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    m = np.asarray(mask).astype(np.uint64)
    single = (m & (m - np.uint64(1))) == 0  # one flipped bit: most entries at realistic BERs
    # its index: the exponent of the (exact) float of a power of two
    b1 = (np.frexp(m[single].astype(np.float64))[1] - 1).astype(np.int64)
    i1 = idx[single].astype(np.int64)
    multi = ~single
    bits = np.unpackbits(np.ascontiguousarray(mask[multi]).view(np.uint8).reshape(-1, itemsize), axis=1,
                         bitorder="little")
    rows, cols = np.nonzero(bits)
    word = np.concatenate([i1, idx[multi][rows].astype(np.int64)])
    col = np.concatenate([b1, cols.astype(np.int64)])
    return word * itemsize + col // 8, col % 8


def check_bit_errors(code: Code, model: ErrorModel, *, seed: int, access: int, base_address: int,
                     nbytes: int, address_map: AddressMap, data_bytes=None) -> tuple[np.ndarray, np.ndarray]:
    """(global codeword, check bit 0..r-1) of the raw errors of the check bits of the codewords
    the tensor spans; ``data_bytes``: the clean tensor bytes (needed for a data-dependent model)."""
    first_cw, n_cw = codeword_span(code, base_address, nbytes)
    rb = code.r // 8
    buf = np.zeros(n_cw * rb, np.uint8)
    if _data_dependent(model):
        if data_bytes is None:
            raise ValueError("internal error: a data-dependent model needs the clean data to encode")
        addr = _codeword_bytes(code, np.arange(first_cw, first_cw + n_cw, dtype=np.int64)) - base_address
        inside = (addr >= 0) & (addr < nbytes)
        data = np.zeros(addr.shape, np.uint8)
        data[inside] = data_bytes[addr[inside]]
        buf[:] = code.encode(data).reshape(-1)
    fmt = _uint8()
    be = select("auto", "cpu")
    plan = cached_plan(model, word_bits=8, nbytes=buf.size, seed=check_seed(seed, code),
                       base_address=first_cw * rb, address_map=address_map, weak_lines=be.weak_lines)
    _, idx, mask, off, cnt = kernel(Op.INJECT, be.name)(plan.at(access), buf, fmt)
    i, m = call(Op.READ_LOG, be.name, idx, mask, off, cnt)
    if model.q is not None:  # two_level: the check cells of the weak map that fail on this access
        m = split_entries(np.asarray(i), np.asarray(m), 1, base_address=first_cw * rb,
                          seed=check_seed(seed, code), access=access, q=model.q)[0]
        i = np.asarray(i)[m != 0]
        m = m[m != 0]
    byte, bit = _bits_of(np.asarray(i), np.asarray(m), 1)
    g = byte * 8 + bit
    return first_cw + g // code.r, g % code.r


def _array_module(a):
    """NumPy for host arrays, else the array's own package (CuPy for a CUDA log), not named here."""
    if isinstance(a, np.ndarray):
        return np
    return importlib.import_module(type(a).__module__.split(".")[0])


def apply_ecc(code: Code, policy: DuePolicy, words, idx, mask, off, cnt, *, backend: str, itemsize: int,
              model: ErrorModel, seed: int, access: int, base_address: int, nbytes: int,
              address_map: AddressMap):
    """Decode the codewords a raw injection touched; returns the new log and the statistics.

    Args:
        words, idx, mask, off, cnt: the tensor's words (after raw injection) and its log.
        backend: the backend that made the log (to read it back).
        itemsize: bytes of a storage word.
        model, seed, access, base_address, nbytes, address_map: the injection's arguments.

    Returns:
        (idx, mask, off, cnt, EccStats): the log of the tensor after ECC (one segment, on the
        log's device), ``words`` updated in place.
    """
    first_cw, n_cw = codeword_span(code, base_address, nbytes)
    ridx, rmask = call(Op.READ_LOG, backend, idx, mask, off, cnt)
    ridx, rmask = np.asarray(ridx, np.int64), np.asarray(rmask)
    byte, bit = _bits_of(ridx, rmask, itemsize)
    cw_d, b_d = _byte_to_codeword(code, base_address + byte)
    pos_d = b_d * 8 + bit
    xp = _array_module(words)
    data_bytes = None
    if _data_dependent(model):  # the clean bytes: current words with the raw flips undone
        host = words if xp is np else xp.asnumpy(words)
        clean = np.array(host, copy=True).reshape(-1)
        clean[ridx] ^= rmask.astype(clean.dtype)
        data_bytes = clean.view(np.uint8)
    cw_c, pos_c = check_bit_errors(code, model, seed=seed, access=access, base_address=base_address,
                                   nbytes=nbytes, address_map=address_map, data_bytes=data_bytes)
    cw = np.concatenate([cw_d, cw_c])
    pos = np.concatenate([pos_d, code.k + pos_c])
    order = np.lexsort((pos, cw))
    cw, pos = cw[order], pos[order]
    counts = {o: 0 for o in OUTCOMES}
    by_k: dict[int, dict[str, int]] = {}
    by_sym: dict[int, dict[str, int]] | None = {} if code.symbol_width > 1 else None
    flip_byte = zero_byte = due_cw = np.zeros(0, np.int64)
    flip_val = zero_val = np.zeros(0, np.uint8)
    if cw.size:
        starts = np.flatnonzero(np.concatenate([[True], cw[1:] != cw[:-1]]))
        ucw = cw[starts]
        n_err = np.diff(np.append(starts, cw.size))
        syn = np.bitwise_xor.reduceat(code.column_array[pos], starts)
        out, entry = code.decode(syn)
        # the decoder's flips (one bit, or a symbol's pattern): (codeword row, bit position)
        frow, fpos = code.correction_bits(entry)
        # the codeword's error pattern after decoding: raw XOR flips, over data and check bits (both
        # lists hold each (codeword, bit) once: keys occurring twice cancel)
        rkeys = cw * code.n + pos  # sorted (lexsort above)
        fkeys = ucw[frow] * code.n + fpos
        at = np.minimum(np.searchsorted(rkeys, fkeys), rkeys.size - 1)
        undid = rkeys[at] == fkeys  # the flip undid a raw error
        m = ucw.size
        left = (n_err - np.bincount(frow[undid], minlength=m)  # wrong bits of each codeword after decoding
                + np.bincount(frow[~undid], minlength=m))
        out[(entry >= 0) & (left > 0)] = OUTCOMES.index(Outcome.MISCORRECTED)
        for oi, o in enumerate(OUTCOMES):
            counts[o] = int(np.count_nonzero(out == oi))
        by_k = _by_count(n_err, out)
        if by_sym is not None:  # erroneous symbols per codeword
            sym_of = np.empty(code.n, np.int64)
            sym_of[code.symbol_bits] = np.arange(code.symbol_bits.shape[0])[:, None]
            row = np.repeat(np.arange(m), n_err)
            u = np.unique(row * code.symbol_bits.shape[0] + sym_of[pos])
            by_sym = _by_count(np.bincount(u // code.symbol_bits.shape[0], minlength=m), out)
        # the decoder's flips of data bits -> tensor bytes
        f = np.flatnonzero(fpos < code.k)
        fb = _codeword_bytes(code, ucw[frow[f]])[np.arange(f.size), fpos[f] // 8] - base_address
        inside = (fb >= 0) & (fb < nbytes)
        flip_byte = fb[inside]
        flip_val = np.left_shift(1, fpos[f][inside] % 8).astype(np.uint8)
        due_cw = ucw[out == OUTCOMES.index(Outcome.DETECTED)]
        if policy is DuePolicy.ZERO and code.signals_due and due_cw.size:  # on-die: nothing signalled
            zb = (_codeword_bytes(code, due_cw) - base_address).reshape(-1)
            zero_byte = zb[(zb >= 0) & (zb < nbytes)]
            host = words if xp is np else xp.asnumpy(words)
            # detected codewords get no decoder flips: their current bytes are raw data
            zero_val = np.ascontiguousarray(host).reshape(-1).view(np.uint8)[zero_byte]
    wdt = rmask.dtype if rmask.size else np.dtype(f"uint{itemsize * 8}")
    fidx, fmask = _word_entries(flip_byte, flip_val, itemsize, wdt)
    zidx, zmask = _word_entries(zero_byte, zero_val, itemsize, wdt)
    # after decoding (before the DUE policy): raw flips XOR the decoder's flips
    didx, dmask = _merge((ridx, rmask.astype(wdt)), (fidx, fmask))
    signalled = due_cw if code.signals_due else np.zeros(0, np.int64)
    sdc = 0
    if cw.size:  # codewords whose data in this tensor are wrong after decoding and not signalled
        n_data = np.add.reduceat((pos < code.k).astype(np.int64), starts)  # raw data errors (all in the tensor)
        fd = f[inside]  # flips of this tensor's data bits
        residual = (n_data - np.bincount(frow[fd][undid[fd]], minlength=m)
                    + np.bincount(frow[fd][~undid[fd]], minlength=m))
        wrong = residual > 0
        if code.signals_due:
            wrong &= out != OUTCOMES.index(Outcome.DETECTED)
        sdc = int(np.count_nonzero(wrong))
    cidx, cmask = _merge((fidx, fmask), (zidx, zmask))
    if cidx.size:  # apply the ECC's changes to the words
        if xp is np:
            words[cidx] ^= cmask
        else:
            words[xp.asarray(cidx)] ^= xp.asarray(cmask)
    uidx, umask = _merge((didx, dmask), (zidx, zmask))
    stats = EccStats(
        code=code.name, policy=str(policy), codewords=int(n_cw), data_bits=int(nbytes) * 8,
        raw_bit_errors=int(cw.size), raw_data_bit_errors=int(byte.size), raw_check_bit_errors=int(cw_c.size),
        codewords_with_errors=sum(counts.values()), corrected=counts[Outcome.CORRECTED],
        detected=counts[Outcome.DETECTED], miscorrected=counts[Outcome.MISCORRECTED],
        undetected=counts[Outcome.UNDETECTED], post_ecc_bit_errors=_popcount(dmask), sdc=sdc,
        due=int(signalled.size), zeroed_bytes=int(zero_byte.size), by_raw_errors=by_k, by_raw_symbols=by_sym)
    new_idx = uidx.astype(np.asarray(ridx).dtype if xp is np else idx.dtype)
    if xp is not np:
        return xp.asarray(new_idx), xp.asarray(umask), np.zeros(1, np.int64), np.array([uidx.size], np.int64), stats
    return new_idx, umask, np.zeros(1, np.int64), np.array([uidx.size], np.int64), stats


def _by_count(k: np.ndarray, out: np.ndarray) -> dict[int, dict[str, int]]:
    """{k: outcome counts} of codewords with ``k`` (raw errors, or erroneous symbols)."""
    no = len(OUTCOMES)
    tab = np.bincount(k * no + out, minlength=(int(k.max()) + 1) * no).reshape(-1, no)
    return {int(i): {str(o): int(tab[i, j]) for j, o in enumerate(OUTCOMES)} for i in np.flatnonzero(tab.sum(axis=1))}


def _word_entries(byte: np.ndarray, val: np.ndarray, itemsize: int, wdt) -> tuple[np.ndarray, np.ndarray]:
    """Byte XOR changes -> (word index, word mask) entries (unsorted, may repeat)."""
    shift = ((byte % itemsize) * 8).astype(np.uint64)
    return byte // itemsize, (val.astype(np.uint64) << shift).astype(wdt)


def _merge(*logs) -> tuple[np.ndarray, np.ndarray]:
    """XOR of (word index, mask) entry lists: sorted unique words with non-zero masks."""
    idx = np.concatenate([np.asarray(i, np.int64) for i, _ in logs])
    mask = np.concatenate([m for _, m in logs])
    if idx.size == 0:
        return idx, mask
    order = np.argsort(idx, kind="stable")
    idx, mask = idx[order], mask[order]
    starts = np.flatnonzero(np.concatenate([[True], idx[1:] != idx[:-1]]))
    uidx, umask = idx[starts], np.bitwise_xor.reduceat(mask, starts)
    keep = umask != 0
    return uidx[keep], umask[keep]


def _popcount(a: np.ndarray) -> int:
    return int(np.unpackbits(np.ascontiguousarray(a).view(np.uint8)).sum()) if a.size else 0
