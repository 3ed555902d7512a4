"""chipkill144, the Reed-Solomon SSC (144,128) over GF(2^8): the code against GF arithmetic done
independently of its binary matrix, every single-symbol error, every double-symbol error against a
syndrome enumeration, exact post-ECC statistics under em0, and the O(errors) path against a dense
oracle that decodes every codeword by GF arithmetic."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

from eden.engine.ecc import get_code
from eden.engine.ecc.apply import _codeword_bytes, check_seed, codeword_span
from eden.engine.ops import inject_

ALPHA = 1e-6
CODE = get_code("chipkill144")
N_SYM, K_SYM = 18, 16


# ------------------------------------------------------------------ GF(2^8), from scratch
@functools.lru_cache(maxsize=1)
def _gf():
    """(exp[510], log[256], mul[256, 256]) of GF(2^8) with x^8+x^4+x^3+x^2+1, alpha = 2."""
    exp = np.zeros(510, np.int64)
    log = np.zeros(256, np.int64)
    v = 1
    for i in range(255):
        exp[i] = exp[i + 255] = v
        log[v] = i
        v <<= 1
        if v & 0x100:
            v ^= 0x11D
    assert len(set(exp[:255].tolist())) == 255  # primitive: alpha generates the field
    a = np.arange(256)
    mul = np.where((a[:, None] == 0) | (a[None, :] == 0), 0, exp[(log[a][:, None] + log[a][None, :]) % 255])
    return exp, log, mul


def _symbols_of(bits: np.ndarray) -> np.ndarray:
    """int64[m, 18] symbol values of codewords ``bits`` [m, 144] (symbol bit j = bit symbol_bits[s, j])."""
    sb = CODE.symbol_bits
    return (bits[:, sb].astype(np.int64) << np.arange(8)).sum(axis=2)


def _rs_syndrome(sym: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S0, S1) = (sum_i c_i, sum_i alpha^i c_i) over GF(2^8) of symbol rows [m, 18]."""
    exp, _, mul = _gf()
    s0 = np.bitwise_xor.reduce(sym, axis=1)
    s1 = np.bitwise_xor.reduce(mul[exp[np.arange(N_SYM)][None, :], sym], axis=1)
    return s0, s1


def _rs_decode(s0, s1):
    """GF decoding of a single-symbol error: (symbol to correct or -1, its error value); -1 and s0 != 0 or
    s1 != 0: detected."""
    _, log, _ = _gf()
    loc = np.full(s0.shape, -1, np.int64)
    both = (s0 != 0) & (s1 != 0)
    i = (log[s1[both]] - log[s0[both]]) % 255
    loc[np.flatnonzero(both)[i < N_SYM]] = i[i < N_SYM]
    return loc, s0


def _binary_syndrome(err_bits: np.ndarray) -> np.ndarray:
    """eden's syndrome (XOR of the columns of the set bits) of error patterns [m, 144]."""
    h = ((CODE.column_array[:, None] >> np.arange(CODE.r)) & 1).astype(np.int64)
    return (((err_bits.astype(np.int64) @ h) % 2) << np.arange(CODE.r)).sum(axis=1)


# ---------------------------------------------------------------------- the code
def test_shape_and_layout():
    assert (CODE.n, CODE.k, CODE.r, CODE.signals_due) == (144, 128, 16, True)
    assert CODE.symbol_bits.shape == (18, 8)
    # data symbol d: device d's nibble in beat 0 (bytes 0-7) and beat 1 (bytes 8-15) of 16 consecutive bytes
    assert CODE.symbol_bits[0].tolist() == [0, 1, 2, 3, 64, 65, 66, 67]
    assert CODE.symbol_bits[5].tolist() == [20, 21, 22, 23, 84, 85, 86, 87]
    assert CODE.symbol_bits[17].tolist() == list(range(136, 144))
    assert _codeword_bytes(CODE, np.array([0, 3]))[:, [0, 15]].tolist() == [[0, 15], [48, 63]]


def test_encoded_words_are_rs_codewords():
    """code.encode (eden's systematic binary matrix) gives words whose symbols satisfy the RS checks
    computed in GF(2^8): the same code."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (2000, 16), dtype=np.uint8)
    bits = np.concatenate([np.unpackbits(data, axis=1, bitorder="little"),
                           np.unpackbits(CODE.encode(data), axis=1, bitorder="little")], axis=1)
    s0, s1 = _rs_syndrome(_symbols_of(bits))
    assert not s0.any() and not s1.any()
    # and a word that is not a codeword has a non-zero GF syndrome
    bits[:, 7] ^= 1
    s0, s1 = _rs_syndrome(_symbols_of(bits))
    assert (s0 != 0).all()


def _pattern_bits(sym_idx: np.ndarray, pat: np.ndarray) -> np.ndarray:
    """Error patterns [m, 144] with ``pat`` (8 bits) in symbol ``sym_idx`` of each row."""
    e = np.zeros((sym_idx.size, CODE.n), np.uint8)
    sb = CODE.symbol_bits
    for j in range(8):
        e[np.arange(sym_idx.size), sb[sym_idx, j]] = (pat >> j) & 1
    return e


def test_every_single_symbol_error_is_corrected():
    """All 18 x 255 single-symbol errors: the decoder flips exactly the erroneous bits."""
    s, pat = np.divmod(np.arange(N_SYM * 255), 255)
    pat = pat + 1
    e = _pattern_bits(s, pat)
    out, entry = CODE.decode(_binary_syndrome(e))
    assert (out == 0).all()  # CORRECTED (decode's provisional outcome for a correction)
    rows, pos = CODE.correction_bits(entry)
    fixed = np.zeros_like(e)
    fixed[rows, pos] = 1
    assert np.array_equal(fixed, e)


@functools.lru_cache(maxsize=1)
def _double_enumeration():
    """Every double-symbol error (153 pairs x 255 x 255 patterns): decoded by eden's binary syndrome table
    and by GF arithmetic; returns miscorrections [9, 9] by the two patterns' weights, and the totals."""
    exp, log, mul = _gf()
    h = ((CODE.column_array[:, None] >> np.arange(CODE.r)) & 1)
    # the binary syndrome of pattern p in symbol s: XOR of the columns of its bits (linear: per bit)
    sb = CODE.symbol_bits
    pats = np.arange(1, 256)
    syn_of = np.zeros((N_SYM, 255), np.int64)
    for j in range(8):
        syn_of ^= np.where(((pats >> j) & 1)[None, :] == 1, CODE.column_array[sb[:, j]][:, None], 0)
    del h
    weight = np.array([bin(p).count("1") for p in pats])
    by_w = np.zeros((9, 9), np.int64)
    n_mis = n_det = 0
    e1, e2 = np.meshgrid(pats, pats, indexing="ij")
    e1, e2 = e1.reshape(-1), e2.reshape(-1)
    w1, w2 = weight[e1 - 1], weight[e2 - 1]
    for a in range(N_SYM):
        for b in range(a + 1, N_SYM):
            syn = syn_of[a, e1 - 1] ^ syn_of[b, e2 - 1]
            out, entry = CODE.decode(syn)
            s0 = e1 ^ e2
            s1 = mul[exp[a], e1] ^ mul[exp[b], e2]
            loc, _ = _rs_decode(s0, s1)
            assert (syn != 0).all()  # distance 3: never undetected
            eden_fix = entry >= 0
            assert np.array_equal(eden_fix, loc >= 0), (a, b)
            # where both correct, the same symbol and value (a third symbol: a miscorrection)
            esym = np.full(entry.shape, -1)
            esym[eden_fix] = CODE._corrections[1][entry[eden_fix]]
            assert np.array_equal(esym[eden_fix], loc[eden_fix])
            assert not np.isin(loc[eden_fix], (a, b)).any()
            assert np.array_equal(CODE._corrections[2][entry[eden_fix]], s0[eden_fix])
            n_mis += int(eden_fix.sum())
            n_det += int((~eden_fix).sum())
            np.add.at(by_w, (w1[eden_fix], w2[eden_fix]), 1)
    return by_w, n_mis, n_det


def test_double_symbol_errors_match_the_syndrome_enumeration():
    by_w, n_mis, n_det = _double_enumeration()
    assert n_mis + n_det == 153 * 255 * 255
    assert by_w.sum() == n_mis
    share = n_mis / (n_mis + n_det)
    assert 0.0 < share < 0.2  # SSC, not DSD: some doubles are miscorrected into triples


def _miscorrect_share_given_two(p: float) -> float:
    """Exact P(miscorrected | exactly two erroneous symbols) under i.i.d. bit errors p: patterns of
    weight w in an erroneous symbol have probability p^w (1-p)^(8-w) / (1 - (1-p)^8) each."""
    by_w, _, _ = _double_enumeration()
    q = 1 - (1 - p) ** 8
    pi = np.array([p ** w * (1 - p) ** (8 - w) / q for w in range(9)])
    return float((by_w * pi[:, None] * pi[None, :]).sum() / 153)


def _binom_ok(k, n, p):
    return stats.binomtest(k, n, p).pvalue > ALPHA


@pytest.mark.parametrize("p", [1e-3, 5e-3, 2e-2])
def test_post_ecc_statistics_are_exact(p):
    """em0: a symbol is erroneous with q = 1 - (1-p)^8, independently, so codewords with j erroneous
    symbols ~ Binomial(N, C(18,j) q^j (1-q)^(18-j)); corrected = exactly one: 18 q (1-q)^17; given two,
    miscorrected with the enumerated share, the rest detected (DUE)."""
    x = np.zeros(1 << 19, np.float32)  # 2 MiB: 131072 codewords
    st = inject_(x, f"em0:p={p}", seed=21, ecc="chipkill144").ecc
    n = st.codewords
    assert n == x.nbytes // 16
    q = 1 - (1 - p) ** 8
    assert _binom_ok(st.corrected, n, 18 * q * (1 - q) ** 17)
    sym = st.by_raw_symbols
    for j in (1, 2, 3):
        assert _binom_ok(sum(sym.get(j, {}).values()), n, math.comb(18, j) * q ** j * (1 - q) ** (18 - j)), j
    one = sym[1]
    assert one["corrected"] == sum(one.values())  # every single-symbol error, whatever its bits
    two = sym.get(2, {})
    n2 = sum(two.values())
    assert n2 > 50
    assert two["corrected"] == two["undetected"] == 0
    assert _binom_ok(two["miscorrected"], n2, _miscorrect_share_given_two(p))
    assert st.due == st.detected and st.sdc == st.miscorrected + st.undetected
    assert _binom_ok(st.raw_check_bit_errors, n * 16, p) and _binom_ok(st.raw_data_bit_errors, n * 128, p)
    d = st.to_dict()
    assert d["by_raw_symbols"]["1"] == one and "by_raw_symbols" not in \
        inject_(np.zeros(64, np.float32), "em0:p=0.1", seed=0, ecc="secded72").ecc.to_dict()


def test_a_failed_device_is_always_corrected():
    """A whole x4 device failing (every bit of its symbol random) in every codeword: all corrected."""
    rng = np.random.default_rng(4)
    clean = rng.standard_normal(1 << 12).astype(np.float32)
    nbytes = clean.nbytes
    ncw = nbytes // 16
    dev = rng.integers(0, K_SYM, ncw)
    pat = rng.integers(1, 256, ncw)
    e = _pattern_bits(dev, pat)[:, :128]
    raw = clean.view(np.uint8).reshape(ncw, 16) ^ np.packbits(e, axis=1, bitorder="little")
    syn = _binary_syndrome(np.concatenate([e, np.zeros((ncw, 16), np.uint8)], axis=1))
    out, entry = CODE.decode(syn)
    rows, pos = CODE.correction_bits(entry)
    bits = np.unpackbits(raw, axis=1, bitorder="little")
    bits[rows, pos] ^= 1
    assert np.array_equal(np.packbits(bits, axis=1, bitorder="little").reshape(-1), clean.view(np.uint8))


# ------------------------------------------------------------------- the oracle
def _oracle(clean, model, seed, base, policy, access=0):
    """Dense: encode every codeword, corrupt data (reference backend) and check bits, decode every
    codeword by GF(2^8) arithmetic on its symbols."""
    y = clean.copy()
    inject_(y, model, seed=seed, base_address=base, backend="reference", access=access)
    nbytes = clean.view(np.uint8).size
    first, ncw = codeword_span(CODE, base, nbytes)
    addr = _codeword_bytes(CODE, np.arange(first, first + ncw, dtype=np.int64)) - base
    inside = (addr >= 0) & (addr < nbytes)
    cb, yb = clean.reshape(-1).view(np.uint8), y.reshape(-1).view(np.uint8)
    cdata = np.zeros(addr.shape, np.uint8)
    cdata[inside] = cb[addr[inside]]
    check = np.ascontiguousarray(CODE.encode(cdata).reshape(-1))
    inject_(check, model, seed=check_seed(seed, CODE), base_address=first * 2, backend="reference", access=access)
    rdata = np.zeros(addr.shape, np.uint8)
    rdata[inside] = yb[addr[inside]]
    bits = np.concatenate([np.unpackbits(rdata, axis=1, bitorder="little"),
                           np.unpackbits(check.reshape(ncw, -1), axis=1, bitorder="little")], axis=1)
    sym = _symbols_of(bits)
    s0, s1 = _rs_syndrome(sym)
    loc, val = _rs_decode(s0, s1)
    fix = np.flatnonzero(loc >= 0)
    sym[fix, loc[fix]] ^= val[fix]
    sb = CODE.symbol_bits
    for j in range(8):
        bits[:, sb[:, j]] = (sym >> j) & 1
    out = np.packbits(bits[:, :128], axis=1, bitorder="little")
    if policy == "zero":
        out[((s0 != 0) | (s1 != 0)) & (loc < 0)] = 0
    yb[addr[inside]] = out[inside]
    return y


def _clean(fmt_name, n, rng):
    from eden.formats import get_format

    if fmt_name == "int4":
        return rng.integers(0, 256, n, dtype=np.uint8)
    if fmt_name == "fp16":
        return rng.standard_normal(n).astype(np.float16)
    if fmt_name == "int8":
        return rng.integers(-128, 128, n, dtype=np.int8)
    assert get_format(fmt_name).is_float
    return rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("fmt_name", ["fp32", "fp16", "int8", "int4"])
def test_fast_path_equals_dense_oracle(fmt_name):
    rng = np.random.default_rng(len(fmt_name))
    clean = _clean(fmt_name, 3001, rng)
    base = 4096 * 5 + 4  # not codeword-aligned: partial first and last codewords
    for model in ("em0:p=2e-2", "em1:fraction=0.05,p=0.3,p_else=1e-3+em2:fraction=0.02,p=0.2",
                  "em3:p10=3e-2,p01=1e-3", "em0:p=1e-2;persistence=fixed",
                  "emc:line_fraction=0.1,wl_fraction=0.1,p=0.05,p_else=1e-3"):  # clustered: several per line
        for policy in ("leave", "zero"):
            want = _oracle(clean, model, 7, base, policy).view(np.uint8)
            for be in ("reference", "cpu"):
                got = clean.copy()
                log = inject_(got, model, seed=7, base_address=base, ecc="chipkill144", ecc_policy=policy, backend=be)
                assert np.array_equal(got.view(np.uint8), want), (model, policy, be)
                assert log.n_bits == int(np.unpackbits(got.view(np.uint8) ^ clean.view(np.uint8)).sum())
                st = log.ecc
                assert st.codewords_with_errors > 0 and st.corrected > 0
                assert sum(sum(v.values()) for v in st.by_raw_symbols.values()) == st.codewords_with_errors
                log.undo()
                assert np.array_equal(got.view(np.uint8), clean.view(np.uint8))


def test_multi_bit_symbol_errors_count_as_corrected():
    """At a high BER many single-symbol codewords hold 2+ raw bit errors: corrected, not miscorrected."""
    st = inject_(np.zeros(1 << 16, np.float32), "em0:p=3e-2", seed=3, ecc="chipkill144").ecc
    assert st.by_raw_errors[2]["corrected"] > 0 and st.by_raw_symbols[1]["corrected"] > st.by_raw_errors[1]["corrected"]


def test_cli_inject_chipkill_json(tmp_path):
    import json

    from click.testing import CliRunner

    from eden.cli import main

    src = tmp_path / "in.npy"
    np.save(src, np.random.default_rng(0).standard_normal(1 << 12).astype(np.float32))
    res = CliRunner().invoke(main, ["inject", str(src), "-o", str(tmp_path / "out.npy"), "-m", "em0:p=1e-2",
                                    "--ecc", "chipkill144", "--ecc-policy", "zero", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["codewords"] == 1024 and d["corrected"] > 0 and d["zeroed_bytes"] == 16 * d["detected"]
    assert sum(sum(v.values()) for v in d["by_raw_symbols"].values()) == d["codewords_with_errors"]


def test_device_branch_with_a_stand_in_array_module(monkeypatch):
    """The branch a CUDA log takes, with a NumPy stand-in for CuPy: multi-bit symbol corrections and zeroed
    codewords written back give the host branch's bits, counts and undo."""
    import types

    import eden.engine.ecc.apply as ap

    fake = types.SimpleNamespace(asnumpy=lambda a: np.array(a, copy=True), asarray=np.asarray)
    clean = np.random.default_rng(9).standard_normal(5000).astype(np.float32)
    for spec in ("em0:p=2e-2", "em3:p10=3e-2,p01=1e-3"):
        want = clean.copy()
        lw = inject_(want, spec, seed=2, base_address=48, ecc="chipkill144", ecc_policy="zero", backend="cpu")
        monkeypatch.setattr(ap, "_array_module", lambda a: fake)
        got = clean.copy()
        lg = inject_(got, spec, seed=2, base_address=48, ecc="chipkill144", ecc_policy="zero", backend="cpu")
        monkeypatch.undo()
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)) and lg.ecc == lw.ecc
        assert lw.ecc.by_raw_symbols[1]["corrected"] > lw.ecc.by_raw_errors[1]["corrected"]
        lg.undo()
        assert np.array_equal(got.view(np.uint32), clean.view(np.uint32))
