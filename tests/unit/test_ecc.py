"""ECC: exact post-ECC statistics, the codes' syndrome tables, and the O(errors) path against a
dense oracle that encodes, corrupts and decodes every codeword bit by bit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from eden.engine.ecc import DuePolicy, code_names, get_code
from eden.engine.ecc.apply import _codeword_bytes, check_seed, codeword_span
from eden.engine.ops import inject_
from eden.errors import EdenConfigError
from eden.formats import get_format

ALPHA = 1e-6  # per-test false-alarm rate of each exact test


def _binom_ok(k: int, n: int, p: float) -> bool:
    return stats.binomtest(k, n, p).pvalue > ALPHA


def _column_fraction(code, k: int) -> float:
    """Exact share of k-subsets of the n bits whose syndrome is a column (-> miscorrection)."""
    cols = set(code.columns)
    hit = total = 0
    for sub in itertools.combinations(code.columns, k):
        s = 0
        for c in sub:
            s ^= c
        hit += s in cols
        total += 1
    return hit / total


def _syndrome_zero_fraction(code, k: int) -> float:
    hit = total = 0
    for sub in itertools.combinations(code.columns, k):
        s = 0
        for c in sub:
            s ^= c
        hit += s == 0
        total += 1
    return hit / total


# ---------------------------------------------------------------------- the codes
def test_registry_names_and_unknown():
    assert code_names()[0] == "none" and {"secded72", "ondie136"} <= set(code_names())
    assert get_code("none") is None and get_code(None) is None
    with pytest.raises(EdenConfigError, match="secded72"):
        get_code("secded27")


@pytest.mark.parametrize("name", ["secded72", "ondie136"])
def test_encode_gives_zero_syndrome_and_single_errors_are_columns(name):
    code = get_code(name)
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (200, code.k // 8), dtype=np.uint8)
    check = code.encode(data)
    bits = np.concatenate([np.unpackbits(data, axis=1, bitorder="little"),
                           np.unpackbits(check, axis=1, bitorder="little")], axis=1).astype(np.int64)
    h = (code.column_array[:, None] >> np.arange(code.r)) & 1
    assert not ((bits @ h) % 2).any()  # codewords
    assert code.syndrome_table[code.column_array].tolist() == list(range(code.n))


def test_secded72_is_hsiao_doubles_always_detected():
    code = get_code("secded72")
    assert all(bin(c).count("1") % 2 == 1 for c in code.columns)
    assert _column_fraction(code, 2) == 0.0  # no double looks like a single
    assert _syndrome_zero_fraction(code, 2) == 0.0 and _syndrome_zero_fraction(code, 3) == 0.0
    assert 0.0 < _column_fraction(code, 3) < 1.0  # some triples miscorrect


def test_ondie136_is_sec_only():
    code = get_code("ondie136")
    assert code.n == 136 and code.k == 128 and not code.signals_due
    assert 0.0 < _column_fraction(code, 2) < 1.0


# ------------------------------------------------------------ exact statistics
@pytest.mark.parametrize("p", [1e-3, 1e-2, 3e-2])
def test_secded72_post_ecc_statistics_are_exact(p):
    """em0: each codeword's 72 bits err i.i.d. with p, so #codewords with k raw errors is
    Binomial(N, C(72,k) p^k (1-p)^(72-k)); corrected = exactly one error: 72 p (1-p)^71;
    given 2 errors: always detected; given 3: miscorrected with the exact triple share."""
    code = get_code("secded72")
    x = np.zeros(1 << 19, np.float32)  # 2 MiB: 262144 codewords
    log = inject_(x, f"em0:p={p}", seed=11, ecc="secded72")
    st = log.ecc
    n = st.codewords
    assert n == x.nbytes // 8
    assert _binom_ok(st.corrected, n, 72 * p * (1 - p) ** 71)
    for k in (1, 2, 3):
        got = sum(st.by_raw_errors.get(k, {}).values())
        assert _binom_ok(got, n, math.comb(72, k) * p ** k * (1 - p) ** (72 - k)), k
    assert st.by_raw_errors[1] == {"corrected": sum(st.by_raw_errors[1].values()), "detected": 0,
                                   "miscorrected": 0, "undetected": 0}
    two = st.by_raw_errors.get(2, {})
    assert two.get("detected", 0) == sum(two.values()) > (0 if p < 3e-3 else 1000)
    three = st.by_raw_errors.get(3, {})
    n3 = sum(three.values())
    if n3:
        assert three["undetected"] == 0 and three["corrected"] == 0
        assert _binom_ok(three["miscorrected"], n3, _column_fraction(code, 3))
    assert st.due == st.detected and st.sdc == st.miscorrected + st.undetected
    # the raw errors really are over data and check bits: 72/64 of the data's
    assert _binom_ok(st.raw_check_bit_errors, n * 8, p) and _binom_ok(st.raw_data_bit_errors, n * 64, p)


@pytest.mark.parametrize("p", [3e-3, 2e-2])
def test_ondie136_miscorrections_match_their_combinatorial_rate(p):
    code = get_code("ondie136")
    x = np.zeros(1 << 19, np.float32)
    st = inject_(x, f"em0:p={p}", seed=5, ecc="ondie136").ecc
    n = st.codewords
    assert _binom_ok(st.corrected, n, 136 * p * (1 - p) ** 135)
    two = st.by_raw_errors[2]
    n2 = sum(two.values())
    m2 = _column_fraction(code, 2)
    assert two["corrected"] == two["undetected"] == 0
    assert _binom_ok(two["miscorrected"], n2, m2) and two["detected"] == n2 - two["miscorrected"]
    assert st.due == 0  # on-die SEC signals nothing: every wrong codeword is silent
    assert st.sdc >= st.miscorrected + st.undetected


def test_post_ecc_ber_of_secded_at_low_rate():
    """At p = 1e-3 almost every error is single and corrected: post-ECC BER ~ doubles' data bits."""
    x = np.zeros(1 << 18, np.float32)
    log = inject_(x, "em0:p=1e-3", seed=2, ecc="secded72")
    assert log.ecc.post_ecc_bit_errors == log.n_bits
    assert log.n_bits < 0.1 * log.ecc.raw_data_bit_errors


# ------------------------------------------------------------------- the oracle
def _bytes(t) -> np.ndarray:
    """The uint8 view of a NumPy array or CPU torch tensor (shares memory)."""
    if isinstance(t, np.ndarray):
        return t.reshape(-1).view(np.uint8)
    import torch

    return t.reshape(-1).view(torch.uint8).numpy()


def _copy(t):
    return t.copy() if isinstance(t, np.ndarray) else t.clone()


def _oracle(clean, model, seed, code, base, policy, access=0):
    """Dense: encode every codeword, corrupt data (reference injection) and check bits (the check
    array injected by the reference backend with the clean check bits), decode bit by bit."""
    y = _copy(clean)
    inject_(y, model, seed=seed, base_address=base, backend="reference", access=access)
    nbytes = _bytes(clean).size
    first, ncw = codeword_span(code, base, nbytes)
    addr = _codeword_bytes(code, np.arange(first, first + ncw, dtype=np.int64)) - base
    inside = (addr >= 0) & (addr < nbytes)
    cb, yb = _bytes(clean), _bytes(y)
    cdata = np.zeros(addr.shape, np.uint8)
    cdata[inside] = cb[addr[inside]]
    check = np.ascontiguousarray(code.encode(cdata).reshape(-1))
    inject_(check, model, seed=check_seed(seed, code), base_address=first * (code.r // 8),
            backend="reference", access=access)
    rdata = np.zeros(addr.shape, np.uint8)
    rdata[inside] = yb[addr[inside]]
    bits = np.concatenate([np.unpackbits(rdata, axis=1, bitorder="little"),
                           np.unpackbits(check.reshape(ncw, -1), axis=1, bitorder="little")], axis=1)
    h = ((code.column_array[:, None] >> np.arange(code.r)) & 1).astype(np.int64)
    syn = (((bits.astype(np.int64) @ h) % 2) << np.arange(code.r)).sum(axis=1)
    flip = code.syndrome_table[syn]
    rows = np.flatnonzero((syn != 0) & (flip >= 0))
    bits[rows, flip[rows]] ^= 1
    out = np.packbits(bits[:, :code.k], axis=1, bitorder="little")
    if policy == "zero" and code.signals_due:  # on-die SEC signals nothing: nothing to zero
        out[(syn != 0) & (flip < 0)] = 0
    yb[addr[inside]] = out[inside]
    return y


FORMATS = ["fp32", "fp16", "bf16", "int32", "int16", "int8", "int4"]


def _clean(fmt_name, n, rng):
    fmt = get_format(fmt_name)
    if fmt_name == "int4":
        return rng.integers(0, 256, n, dtype=np.uint8)
    if fmt_name == "bf16":  # no NumPy dtype: a torch tensor
        import torch

        return torch.from_numpy(rng.standard_normal(n).astype(np.float32)).to(torch.bfloat16)
    if fmt.is_float:
        vals = rng.standard_normal(n).astype(np.float32)
        return fmt.from_float32(vals).view(fmt.numpy_dtypes[0]) if fmt_name != "fp32" else vals
    info = np.iinfo(fmt.word)
    return rng.integers(info.min, info.max, n, dtype=fmt.word, endpoint=True).view(fmt.numpy_dtypes[0])


@pytest.mark.parametrize("code_name", ["secded72", "ondie136"])
@pytest.mark.parametrize("fmt_name", FORMATS)
def test_fast_path_equals_dense_oracle(code_name, fmt_name):
    code = get_code(code_name)
    rng = np.random.default_rng(hash((code_name, fmt_name)) % 2**32)
    clean = _clean(fmt_name, 3001, rng)  # not a whole number of codewords
    nbytes = _bytes(clean).size
    base = 8192 * 3 + 4  # not codeword-aligned: partial first and last codewords
    for model in ("em0:p=2e-2", "em1:fraction=0.05,p=0.3,p_else=1e-3+em2:fraction=0.02,p=0.2",
                  "em3:p10=3e-2,p01=1e-3", "em0:p=1e-2;persistence=fixed"):
        for policy in ("leave", "zero"):
            want = _bytes(_oracle(clean, model, 7, code, base, policy))
            for be in ("reference", "cpu"):
                got = _copy(clean)
                log = inject_(got, model, seed=7, base_address=base, ecc=code_name, ecc_policy=policy, backend=be)
                assert np.array_equal(_bytes(got), want), (model, policy, be)
                diff = np.unpackbits(_bytes(got) ^ _bytes(clean))
                assert log.n_bits == int(diff.sum()) and log.ecc.codewords_with_errors > 0
                assert log.ecc.codewords == codeword_span(code, base, nbytes)[1]
                log.undo()
                assert np.array_equal(_bytes(got), _bytes(clean))


def test_access_redraws_data_and_check_errors():
    clean = np.zeros(1 << 14, np.float32)
    a, b = clean.copy(), clean.copy()
    la = inject_(a, "em0:p=2e-2", seed=1, access=0, ecc="secded72")
    lb = inject_(b, "em0:p=2e-2", seed=1, access=1, ecc="secded72")
    assert not np.array_equal(a, b) and la.ecc != lb.ecc
    want = _oracle(clean, "em0:p=2e-2", 1, get_code("secded72"), 0, "leave", access=1)
    assert np.array_equal(b.view(np.uint32), want.view(np.uint32))


def test_zero_policy_zeroes_detected_codewords_and_undo_restores():
    rng = np.random.default_rng(3)
    clean = rng.standard_normal(1 << 14).astype(np.float32) + 10.0
    x = clean.copy()
    log = inject_(x, "em0:p=2e-2", seed=4, ecc="secded72", ecc_policy="zero")
    st = log.ecc
    assert st.detected > 0 and st.zeroed_bytes == 8 * st.detected
    assert np.count_nonzero(x == 0.0) == 2 * st.detected  # two fp32 values per 64-bit codeword
    log.undo()
    assert np.array_equal(x.view(np.uint32), clean.view(np.uint32))


def test_correction_runs_after_ecc():
    rng = np.random.default_rng(6)
    clean = np.abs(rng.standard_normal(1 << 14)).astype(np.float32)
    x = clean.copy()
    log = inject_(x, "em0:p=3e-2", seed=9, ecc="ondie136", correction="zero")
    assert log.n_corrected > 0 and np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= clean.max()
    y = _oracle(clean, "em0:p=3e-2", 9, get_code("ondie136"), 0, "leave")
    # values the correction left alone are the ECC's output
    same = x == y
    assert np.count_nonzero(~same) <= log.n_corrected
    log.undo()
    assert np.array_equal(x.view(np.uint32), clean.view(np.uint32))


def test_no_errors_no_codewords_decoded():
    x = np.ones(4096, np.float32)
    log = inject_(x, "em0:p=0", seed=0, ecc="secded72")
    assert log.ecc.codewords_with_errors == 0 and log.n_bits == 0 and log.ecc.codewords == 2048


def test_bad_policy():
    with pytest.raises(EdenConfigError, match="policy"):
        inject_(np.zeros(64, np.float32), "em0:p=1e-3", ecc="secded72", ecc_policy="drop")


def test_due_policy_values():
    assert [str(p) for p in DuePolicy] == ["leave", "zero"]


def test_cli_inject_ecc_json(tmp_path):
    import json

    from click.testing import CliRunner

    from eden.cli import main

    src = tmp_path / "in.npy"
    np.save(src, np.random.default_rng(0).standard_normal(1 << 14).astype(np.float32))
    res = CliRunner().invoke(main, ["inject", str(src), "-o", str(tmp_path / "out.npy"), "-m", "em0:p=1e-2",
                                    "--ecc", "secded72", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    for key in ("codewords", "raw_bit_errors", "corrected", "detected", "miscorrected", "post_ecc_ber",
                "sdc_rate", "due_rate"):
        assert key in d
    assert d["codewords"] == 8192 and d["raw_bit_errors"] == d["raw_data_bit_errors"] + d["raw_check_bit_errors"]
    out = np.load(tmp_path / "out.npy")
    clean = np.load(src)
    assert int(np.unpackbits(out.view(np.uint8) ^ clean.view(np.uint8)).sum()) == d["flipped_bits"] \
        == d["post_ecc_bit_errors"]
    res = CliRunner().invoke(main, ["inject", str(src), "-o", str(tmp_path / "o2.npy"), "-m", "em0:p=1e-2",
                                    "--ecc", "secded27"])
    assert res.exit_code == 2 and "secded72" in res.output


def test_emulation_plans_carry_the_code():
    import torch

    from eden.nn.emulate import DataTypeConfig, EmulationPlan, emulate

    cfg = DataTypeConfig("em0:p=1e-2", "fp32", "none", "secded72")
    assert cfg.to_dict()["ecc"] == "secded72" and DataTypeConfig.from_dict(cfg.to_dict()) == cfg
    assert "ecc" not in DataTypeConfig("em0:p=1e-2").to_dict()  # records without ECC keep their keys
    with pytest.raises(EdenConfigError, match="secded72"):
        DataTypeConfig("em0:p=1e-2", ecc="secdd")
    torch.manual_seed(0)
    net = torch.nn.Linear(256, 64)
    clean = net.weight.detach().clone()
    x = torch.randn(4, 256)
    flips = {}
    for code in ("none", "secded72"):
        plan = EmulationPlan.uniform("em0:p=1e-3", select="weight", ecc=code)
        with emulate(net, plan, seed=1) as emu, torch.no_grad():
            net(x)
            flips[code] = sum(s["flipped_bits"] for s in emu.summary().values())
            w = net.weight.detach().clone()
        assert torch.equal(net.weight.detach(), clean)
        assert not torch.equal(w, clean)
    assert flips["secded72"] < 0.2 * flips["none"]  # at 1e-3 SECDED corrects almost every error


def test_device_branch_with_a_stand_in_array_module(monkeypatch):
    """The branch a CUDA log takes (the words' own array module, host copies, device writes) run with a
    NumPy stand-in for CuPy: the same bits, counts and undo as the host branch."""
    import types

    import eden.engine.ecc.apply as ap

    fake = types.SimpleNamespace(asnumpy=lambda a: np.array(a, copy=True), asarray=np.asarray)
    rng = np.random.default_rng(8)
    clean = rng.standard_normal(5000).astype(np.float32)
    for spec in ("em0:p=2e-2", "em3:p10=3e-2,p01=1e-3"):
        want = clean.copy()
        lw = inject_(want, spec, seed=2, base_address=64, ecc="secded72", ecc_policy="zero", backend="cpu")
        monkeypatch.setattr(ap, "_array_module", lambda a: fake)
        got = clean.copy()
        lg = inject_(got, spec, seed=2, base_address=64, ecc="secded72", ecc_policy="zero", backend="cpu")
        monkeypatch.undo()
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)) and lg.ecc == lw.ecc
        lg.undo()
        assert np.array_equal(got.view(np.uint32), clean.view(np.uint32))
