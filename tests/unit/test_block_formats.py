"""fp8, the OCP MX formats and group-wise integers: numerics against the specifications' values,
metadata in DRAM (placement, errors, the switch that keeps it clean), correction, bad input, and
the statistics of injection (exact BER over elements plus metadata, uniform bit positions over
element bits and scale bits separately, exact undo)."""

import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from eden import EdenConfigError, inject_
from eden.errors import EdenTypeError
from eden.formats import FORMATS, get_format
from eden.formats.blocks import BlockLayout, pack_bits, unpack_bits
from eden.formats.minifloat import E2M1, E2M3, E3M2, E4M3, E5M2
from eden.formats.mx import SCALE_NAN, e8m0_values
from eden.nn.emulate import DataTypeConfig, EmulationPlan, emulate
from eden.nn.quant import NumericFormat

ALPHA = 1e-3
MX = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"]


# ------------------------------------------------------------------ the specifications' tables
# (code, value) pairs read off the OCP 8-bit floating point spec (v1.0, table 1) and the OCP MX
# spec v1.0 (tables 2-5 and 7): zero, smallest subnormal, largest subnormal, smallest normal, one,
# largest normal, and the special codes.
SPEC = {
    "e4m3": [(0x00, 0.0), (0x01, 2.0 ** -9), (0x07, 7 * 2.0 ** -9), (0x08, 2.0 ** -6), (0x38, 1.0),
             (0x7E, 448.0), (0xFE, -448.0), (0x80, -0.0), (0x7F, math.nan), (0xFF, math.nan), (0x78, 256.0)],
    "e5m2": [(0x00, 0.0), (0x01, 2.0 ** -16), (0x03, 3 * 2.0 ** -16), (0x04, 2.0 ** -14), (0x3C, 1.0),
             (0x7B, 57344.0), (0x7C, math.inf), (0xFC, -math.inf), (0x7D, math.nan), (0x7E, math.nan),
             (0x7F, math.nan)],
    "e3m2": [(0x00, 0.0), (0x01, 0.0625), (0x03, 0.1875), (0x04, 0.25), (0x0C, 1.0), (0x1F, 28.0),
             (0x3F, -28.0)],
    "e2m3": [(0x00, 0.0), (0x01, 0.125), (0x07, 0.875), (0x08, 1.0), (0x1F, 7.5), (0x3F, -7.5)],
    "e2m1": [(0x0, 0.0), (0x1, 0.5), (0x2, 1.0), (0x3, 1.5), (0x4, 2.0), (0x5, 3.0), (0x6, 4.0), (0x7, 6.0),
             (0xF, -6.0), (0x8, -0.0)],
}
CODES = {"e4m3": E4M3, "e5m2": E5M2, "e3m2": E3M2, "e2m3": E2M3, "e2m1": E2M1}


@pytest.mark.parametrize("name", sorted(SPEC))
def test_minifloat_values_match_the_specification(name):
    code = CODES[name]
    for c, v in SPEC[name]:
        got = float(code.table[c])
        if math.isnan(v):
            assert math.isnan(got), (name, hex(c))
        else:
            assert got == v and math.copysign(1, got) == math.copysign(1, v), (name, hex(c), got, v)
            if not math.isinf(v):  # encode(decode(c)) == c for every number, -0.0 included
                assert int(code.encode(np.float32(v))) == c
    assert (code.max_finite, code.emax) == {"e4m3": (448.0, 8), "e5m2": (57344.0, 15), "e3m2": (28.0, 4),
                                            "e2m3": (7.5, 2), "e2m1": (6.0, 2)}[name]
    # only e4m3 and e5m2 have NaN codes; only e5m2 has infinities
    assert np.isnan(code.table).any() == (name in ("e4m3", "e5m2"))
    assert np.isinf(code.table).any() == (name == "e5m2")


@pytest.mark.parametrize("name,x,want", [
    ("e2m1", 2.5, 2.0), ("e2m1", 3.5, 4.0), ("e2m1", 5.0, 4.0), ("e2m1", 0.25, 0.0), ("e2m1", 0.75, 1.0),
    ("e2m1", -2.5, -2.0), ("e2m1", 2.5000002, 3.0), ("e4m3", 17.0, 16.0), ("e4m3", 19.0, 20.0),
    ("e4m3", 2.0 ** -10, 0.0), ("e4m3", 3 * 2.0 ** -10, 2 * 2.0 ** -9), ("e3m2", 0.03125, 0.0),
    ("e2m3", 1.0625, 1.0), ("e2m3", 1.1875, 1.25), ("e5m2", 2.0 ** -17, 0.0), ("e5m2", 1.125, 1.0),
])
def test_rounding_is_to_nearest_even(name, x, want):
    assert float(CODES[name].quantize(np.float32(x))) == want


@pytest.mark.parametrize("name,x,want", [
    ("e4m3", 464.0, 448.0), ("e4m3", 1e6, 448.0), ("e4m3", -math.inf, -448.0), ("e4m3", 3e38, 448.0),
    ("e5m2", 61440.0, 57344.0), ("e5m2", 1e9, 57344.0), ("e5m2", math.inf, math.inf),
    ("e3m2", 30.0, 28.0), ("e3m2", -1e4, -28.0), ("e2m3", 7.9, 7.5), ("e2m1", 7.0, 6.0), ("e2m1", -100.0, -6.0),
])
def test_conversion_saturates(name, x, want):
    assert float(CODES[name].quantize(np.float32(x))) == want


@pytest.mark.parametrize("name", sorted(CODES))
def test_rounding_matches_ml_dtypes(name):
    """ml_dtypes (the JAX/OpenXLA numerics) as the oracle: within range its cast rounds to nearest even."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ref = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2, "e3m2": ml_dtypes.float6_e3m2fn,
           "e2m3": ml_dtypes.float6_e2m3fn, "e2m1": ml_dtypes.float4_e2m1fn}[name]
    code = CODES[name]
    table = np.arange(1 << code.bits, dtype=np.uint8).view(ref).astype(np.float32)
    assert np.array_equal(table, code.table, equal_nan=True)
    grid = np.sort(code.table[np.isfinite(code.table)])
    mids = ((grid[1:].astype(np.float64) + grid[:-1]) / 2).astype(np.float32)  # every tie
    x = np.random.default_rng(3).standard_normal(100_000).astype(np.float32) * np.float32(code.max_finite / 3)
    x = np.concatenate([x[np.abs(x) <= code.max_finite], grid, mids, np.nextafter(mids, np.float32(np.inf)),
                        np.nextafter(mids, np.float32(-np.inf))])
    assert np.array_equal(code.encode(x), x.astype(ref).view(np.uint8))


@pytest.mark.parametrize("name,dtype", [("fp8_e4m3", torch.float8_e4m3fn), ("fp8_e5m2", torch.float8_e5m2)])
def test_fp8_formats_are_torch_float8(name, dtype):
    fmt = FORMATS[name]
    assert fmt.is_float and fmt.word == np.uint8 and fmt.max_finite == float(torch.finfo(dtype).max)
    x = torch.randn(50_000) * 100
    words = torch.from_numpy(fmt.encode(x.numpy()))
    assert torch.equal(words, x.to(dtype).view(torch.uint8))  # torch's cast rounds the same
    assert torch.equal(torch.from_numpy(fmt.decode(words.numpy())), x.to(dtype).float())
    # NumericFormat stores the tensor as torch's fp8, saturating
    enc = NumericFormat(name).encode(torch.tensor([1e9, -1e9, 1.0, math.inf]))
    inf = math.inf if name == "fp8_e5m2" else fmt.max_finite  # as the NumPy encoding
    assert enc.storage.dtype == dtype and enc.storage.float().tolist() == [fmt.max_finite, -fmt.max_finite, 1.0, inf]
    assert enc.storage.view(torch.uint8).tolist() == fmt.encode(np.array([1e9, -1e9, 1.0, np.inf], np.float32)).tolist()


def test_fp8_correction_follows_each_format():
    """e4m3fn: NaN is implausible, there is no infinity; e5m2: infinities are implausible too."""
    for name, dtype, bad in (("fp8_e4m3", torch.float8_e4m3fn, 0x7F), ("fp8_e5m2", torch.float8_e5m2, 0x7C)):
        fmt = FORMATS[name]
        assert not np.isfinite(fmt.to_float32(np.array([bad], np.uint8))[0])
        x = torch.full((4096,), 1.5).to(dtype)
        log = inject_(x, "em0:p=0.05", seed=4, correction="zero")
        v = x.float()
        assert torch.isfinite(v).all() and (v.abs() <= 1.5).all() and log.n_corrected > 0
        log.undo()
        assert torch.equal(x.float(), torch.full((4096,), 1.5))


# ------------------------------------------------------------------------------------ MX
def test_e8m0_scale():
    assert e8m0_values([0x7F, 0x00, 0xFE, 0x80]).tolist() == [1.0, 2.0 ** -127, 2.0 ** 127, 2.0]
    assert np.isnan(e8m0_values([SCALE_NAN])[0])


@pytest.mark.parametrize("name,emax,amax_code", [
    ("mxfp8_e4m3", 8, 0x7E), ("mxfp8_e5m2", 15, 0x7B), ("mxfp6_e3m2", 4, 0x1F), ("mxfp6_e2m3", 2, 0x1F),
    ("mxfp4", 2, 0x7), ("mxint8", 0, 0x7F)])
def test_mx_shared_scale_and_saturation(name, emax, amax_code):
    """X = 2^(floor(log2 amax) - emax_elem); the scaled amax (just below 2^(emax+1)) saturates to
    the largest element."""
    fmt = FORMATS[name]
    block = np.linspace(-1, 1, 32).astype(np.float32) * 3
    block[5] = np.float32(2 ** 4 * 1.99)  # amax: floor(log2) = 4
    codes, (scale,) = fmt.encode_blocks(block[None])
    assert int(scale[0]) == 127 + 4 - emax
    assert int(codes[0, 5]) == amax_code  # 1.99 * 2^emax saturates to the largest element
    back = fmt.decode(fmt.encode(block), 32)
    assert back[5] == np.float32(fmt.max_element * 2.0 ** (4 - emax))
    assert np.all(np.abs(back - block) <= np.abs(block) * 0.25 + 2.0 ** (4 - emax) * 0.5)


def test_mx_special_blocks():
    fmt = FORMATS["mxfp8_e4m3"]
    x = np.zeros(96, np.float32)
    x[32:64] = np.linspace(-2, 2, 32)
    x[70] = np.nan
    buf = fmt.encode(x)
    codes, (scale,) = fmt.layout.unpack(buf, 3)
    assert scale.tolist()[0] == 0 and scale.tolist()[2] == SCALE_NAN  # all zero -> 2^-127; NaN -> NaN scale
    back = fmt.decode(buf, 96)
    assert np.all(back[:32] == 0) and np.all(np.isnan(back[64:]))
    assert np.allclose(back[32:64], x[32:64], rtol=2 ** -4)
    buf[fmt.layout.offsets(3)[1][0][1]] = SCALE_NAN  # a corrupted scale: the NaN scale takes its block
    assert np.all(np.isnan(fmt.decode(buf, 96)[32:64]))


@pytest.mark.parametrize("name", MX)
def test_mx_placement_changes_bytes_not_values(name):
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    sep, inter = FORMATS[name], FORMATS[name].placed("interleaved")
    a, b = sep.encode(x), inter.encode(x)
    assert a.size == b.size == sep.storage_bytes(1000) == 32 * (sep.bits * 32 // 8 + 1)
    assert not np.array_equal(a, b)
    assert np.array_equal(sep.decode(a, 1000), inter.decode(b, 1000), equal_nan=True)
    eb = sep.bits * 32 // 8
    assert np.flatnonzero(sep.layout.metadata_mask(32)).tolist() == list(range(32 * eb, 32 * eb + 32))
    assert np.flatnonzero(inter.layout.metadata_mask(32)).tolist() == [i * (eb + 1) for i in range(32)]


def test_bit_streams_pack_low_bits_first():
    codes = np.array([0x3F, 0x01, 0x20, 0x15], np.uint8)  # four fp6 codes -> three bytes
    stream = pack_bits(codes, 6)
    w = 0x3F | 0x01 << 6 | 0x20 << 12 | 0x15 << 18
    assert stream.tolist() == [w & 0xFF, (w >> 8) & 0xFF, w >> 16]
    assert np.array_equal(unpack_bits(stream, 6, 4), codes)
    assert pack_bits(np.array([1, 0xF], np.uint8), 4).tolist() == [0xF1]  # as packed int4
    with pytest.raises(EdenConfigError, match="whole bytes"):
        BlockLayout(4, 3, (2,))


def test_a_scale_flip_corrupts_the_whole_block():
    """GoldenEye's observation: one flipped bit of a shared exponent changes all 32 values."""
    fmt = NumericFormat("mxfp8_e4m3")
    x = torch.randn(64)
    enc = fmt.encode(x)
    storage = enc.storage.clone()
    storage[64] ^= 0x01  # the first block's scale (separate: after the 64 element bytes)
    clean, hit = fmt.decode(enc), fmt.decode(enc.__class__(**{**enc.__dict__, "storage": storage}))
    changed = (clean != hit).reshape(2, 32)
    assert changed[0].sum() == (clean[:32] != 0).sum() and not changed[1].any()
    assert torch.allclose(hit[:32].abs(), clean[:32].abs() * 2) or torch.allclose(hit[:32].abs(), clean[:32].abs() / 2)


# ------------------------------------------------------------------------------- group-wise
@pytest.mark.parametrize("spec", ["int4:group=32", "int4:group=64,asym", "int8:group=16,scale=bf16",
                                  "int8:group=128,affine,interleaved", "int4:group=32,asym,scale=bf16,interleaved"])
def test_group_quantization_error_within_half_step(spec):
    fmt = NumericFormat.parse(spec)
    w = torch.randn(8, 256) * torch.linspace(0.01, 5, 8)[:, None]
    enc = fmt.encode(w)
    codec = fmt.codec
    g = fmt.group_size
    assert enc.storage.dtype == torch.uint8 and enc.storage.numel() == fmt.storage_bytes(w.numel())
    per_group = (2 if fmt.scheme == "affine" else 1) * 2
    assert fmt.storage_bytes(w.numel()) == w.numel() * fmt.bits // 8 + w.numel() // g * per_group
    _, fields = codec.layout.unpack(enc.storage.numpy(), w.numel() // g)
    scale = torch.from_numpy(codec.field_values(fields)[0]).float().repeat_interleave(g).reshape(w.shape)
    back = fmt.decode(enc)
    assert torch.all((back - w).abs() <= scale * 0.5 * (1 + 1e-6) + 1e-7)
    assert str(NumericFormat.parse(str(fmt))) == str(fmt)


def test_group_scales_are_stored_in_fp16_or_bf16():
    w = torch.randn(4, 64)
    for sf in ("fp16", "bf16"):
        fmt = NumericFormat.parse(f"int8:group=64,scale={sf}")
        enc = fmt.encode(w)
        _, (words,) = fmt.codec.layout.unpack(enc.storage.numpy(), 4)
        s = get_format(sf).to_float32(words.astype(np.uint16))
        assert np.allclose(s, w.abs().amax(1).numpy() / 127, rtol=2 ** -7)


# -------------------------------------------------------------------------------- bad input
def test_group_size_must_divide_the_channel():
    with pytest.raises(EdenConfigError, match=r"group size 128 does not divide the channel.*\[16, 1, 3, 3\].*9 "):
        NumericFormat.parse("int4:group=128").encode(torch.randn(16, 1, 3, 3))
    # ',flat': groups over the flattened tensor (the last padded)
    enc = NumericFormat.parse("int4:group=128,flat").encode(torch.randn(16, 1, 3, 3))
    assert enc.storage.numel() == 2 * (64 + 2)


def test_block_format_of_an_integer_tensor():
    with pytest.raises(EdenTypeError, match="mxfp4: a block format encodes float tensors, got torch.int32"):
        NumericFormat("mxfp4").encode(torch.arange(64, dtype=torch.int32))
    with pytest.raises(EdenTypeError, match="block format"):
        NumericFormat.parse("int4:group=32").encode(torch.zeros(64, dtype=torch.int8))


@pytest.mark.parametrize("spec,match", [
    ("mxfp5", r"unknown numeric format 'mxfp5'.*did you mean 'mxfp4'"),
    ("fp8_e4m2", r"did you mean .*'fp8_e4m3'"),
    ("mxfp6_e3m3", r"did you mean 'mxfp6_e3m2'"),
    ("int4:group=x", "group size .* must be an integer"),
    ("int4:group", "needs its size"),
    ("int4:group=0", "group size"),
    ("int4:group=3", "whole bytes"),
    ("int8:group=32,scale=fp32", "unknown scale format 'fp32'; known: bf16, fp16"),
    ("int8:interleaved", "keeps no metadata in DRAM"),
    ("fp8_e4m3:no-metadata-errors", "keeps no metadata in DRAM"),
    ("mxfp4:asym", "MX format"),
    ("mxfp4:group=16", "MX format"),
    ("mxfp4:sideways", "unknown option 'sideways'"),
])
def test_bad_format_specs(spec, match):
    with pytest.raises(EdenConfigError, match=match):
        NumericFormat.parse(spec)


def test_correction_rejected_for_plain_integers_only():
    with pytest.raises(EdenConfigError, match="float formats and block formats"):
        DataTypeConfig(None, "int8", "zero")
    for spec in ("mxfp4", "int4:group=32", "fp8_e5m2"):
        DataTypeConfig(None, spec, "clamp")


# ------------------------------------------------------------------------------- correction
def test_mx_correction_of_a_nan_scale_and_nan_elements():
    fmt = NumericFormat("mxfp8_e4m3")
    x = torch.linspace(-3, 3, 64)
    enc = fmt.encode(x)
    bad = enc.storage.clone()
    bad[64] = SCALE_NAN  # block 0's scale
    bad[40] = 0x7F  # an element NaN in block 1
    corrupted = enc.__class__(**{**enc.__dict__, "storage": bad})
    raw = fmt.decode(corrupted)
    assert torch.isnan(raw[:32]).all() and torch.isnan(raw[40])
    zeroed, n = fmt._decode(corrupted, None, "zero", None)
    assert n == 33 and (zeroed[:32] == 0).all() and zeroed[40] == 0
    assert torch.equal(zeroed[32:40], raw[32:40])
    clamped, n = fmt._decode(corrupted, None, "clamp", None)
    lo = enc.block.calibration.fields[0][0]  # NaN scale -> 0 clamped into the calibrated range
    assert n == 33 and torch.isfinite(clamped).all()
    assert torch.allclose(clamped[:32], raw.new_tensor(fmt.storage.element_values(
        fmt.codec.layout.unpack(bad.numpy(), 2)[0][0]) * lo).float())


def test_group_correction_of_a_scale_out_of_range():
    fmt = NumericFormat.parse("int4:group=32")
    x = torch.randn(4, 64)
    enc = fmt.encode(x)
    bad = enc.storage.clone()
    off = 4 * 64 // 2  # the scales follow the 128 code bytes; group 1's scale
    bad[off + 2:off + 4] = torch.tensor([0x00, 0x7C], dtype=torch.uint8)  # fp16 +inf
    corrupted = enc.__class__(**{**enc.__dict__, "storage": bad})
    assert torch.isinf(fmt.decode(corrupted).reshape(-1)[32:64]).sum() > 0
    zeroed, n = fmt._decode(corrupted, None, "zero", None)
    assert n == 32 and (zeroed.reshape(-1)[32:64] == 0).all()
    assert torch.equal(zeroed.reshape(-1)[64:], fmt.decode(enc).reshape(-1)[64:])
    clamped, n = fmt._decode(corrupted, None, "clamp", None)
    hi = enc.block.calibration.fields[0][1]
    assert n == 32 and torch.isfinite(clamped).all() and clamped.abs().max() <= 7 * hi + 1e-6


# ------------------------------------------------------------------------------- statistics
STAT_FORMATS = ["fp8_e4m3", "fp8_e5m2"] + MX + [f"{m}:interleaved" for m in MX] + [
    "int4:group=32", "int4:group=128,asym,interleaved", "int8:group=64,scale=bf16", "int8:group=32,asym",
    "nf4:group=64,interleaved"]


def _field_position(fmt: NumericFormat, n_blocks: int):
    """(is metadata, bit position within its element or metadata field) of every stored bit."""
    lay = fmt.codec.layout
    nbytes = lay.nbytes(n_blocks)
    is_meta = np.repeat(lay.metadata_mask(n_blocks), 8)
    pos = np.zeros(nbytes * 8, np.int64)
    elem_off, field_off = lay.offsets(n_blocks)
    within = np.arange(lay.element_bytes * 8)
    pos[(elem_off[:, None] * 8 + within).reshape(-1)] = np.tile(within % lay.element_bits, n_blocks)
    for w, off in zip(lay.meta_bytes, field_off):
        fw = np.arange(w * 8)
        pos[(off[:, None] * 8 + fw).reshape(-1)] = np.tile(fw, n_blocks)
    return is_meta, pos


def _assert_uniform(positions: np.ndarray, width: int, what: str) -> None:
    counts = np.bincount(positions, minlength=width)
    p = st.chisquare(counts).pvalue
    assert p > ALPHA, f"{what}: bit positions are not uniform (chi-square p={p:.2g}, counts {counts.tolist()})"


def _assert_binomial(k: int, n: int, p: float, what: str) -> None:
    lo, hi = st.binom.ppf(ALPHA / 2, n, p), st.binom.isf(ALPHA / 2, n, p)
    assert lo <= k <= hi, f"{what}: {k} of {n} bits flipped, expected [{lo:g}, {hi:g}] at p={p}"


@pytest.mark.parametrize("spec", STAT_FORMATS)
def test_ber_positions_and_undo(spec):
    fmt = NumericFormat.parse(spec)
    x = torch.randn(64, 512)
    enc = fmt.encode(x)
    p = 0.02
    storage = enc.storage.clone()
    before = storage.clone()
    log = inject_(storage, "em0:p=0.02", seed=11)
    _, read = fmt.read_back(enc.__class__(**{**enc.__dict__, "storage": storage}), log)
    n_stored = fmt.storage_bytes(x.numel()) * 8
    assert read.total_bits == log.total_bits == n_stored  # elements plus metadata
    assert read.n_bits == log.n_bits
    _assert_binomial(read.n_bits, n_stored, p, f"{spec}: all stored bits")
    idx, bit = log.positions()
    wb = storage.element_size() * 8
    flat = idx * wb + bit  # bit index in the buffer
    if fmt.codec is None:  # fp8: one element per byte
        _assert_uniform(bit, 8, f"{spec} element bits")
    else:
        is_meta, pos = _field_position(fmt, fmt.codec.n_blocks(x.numel()))
        m = is_meta[flat]
        _assert_binomial(int(m.sum()), int(is_meta.sum()), p, f"{spec}: metadata bits")
        _assert_binomial(int((~m).sum()), int((~is_meta).sum()), p, f"{spec}: element bits")
        _assert_uniform(pos[flat[~m]], fmt.codec.layout.element_bits, f"{spec} element bits")
        _assert_uniform(pos[flat[m]], fmt.codec.layout.meta_bytes[0] * 8, f"{spec} scale bits")
    log.undo()
    assert torch.equal(storage.view(torch.uint8), before.view(torch.uint8))


@pytest.mark.parametrize("spec", ["mxfp4", "mxfp8_e4m3:interleaved", "int4:group=32,asym"])
def test_no_metadata_errors_keeps_element_errors_and_cleans_metadata(spec):
    on = NumericFormat.parse(spec)
    off = on.without_metadata_errors()
    assert str(off).endswith("no-metadata-errors") and NumericFormat.parse(str(off)) == off
    x = torch.randn(32, 256)
    enc_on, enc_off = on.encode(x), off.encode(x)
    assert torch.equal(enc_on.storage, enc_off.storage)  # same bytes at the same addresses
    s_on, s_off = enc_on.storage.clone(), enc_off.storage.clone()
    log_on, log_off = inject_(s_on, "em0:p=0.01", seed=5), inject_(s_off, "em0:p=0.01", seed=5)
    assert torch.equal(s_on, s_off)  # the same draws
    v_on, r_on = on.read_back(enc_on.__class__(**{**enc_on.__dict__, "storage": s_on}), log_on)
    v_off, r_off = off.read_back(enc_off.__class__(**{**enc_off.__dict__, "storage": s_off}), log_off)
    mask = enc_on.block.metadata_mask
    idx, flips = log_on.word_flips()
    meta_flips = int(np.bitwise_count(flips[mask[idx]]).sum())
    assert meta_flips > 0 and r_on.n_bits == r_off.n_bits + meta_flips
    assert r_off.total_bits == int((~mask).sum()) * 8 and r_on.total_bits == mask.size * 8
    # off == the elements' errors decoded with the clean metadata
    fixed = s_on.clone()
    fixed[torch.from_numpy(mask)] = enc_on.storage[torch.from_numpy(mask)]
    want = on.decode(enc_on.__class__(**{**enc_on.__dict__, "storage": fixed}))
    assert torch.equal(v_off.view(torch.int32), want.view(torch.int32))  # bit for bit, NaNs included
    assert not torch.equal(v_on.view(torch.int32), v_off.view(torch.int32))


# ------------------------------------------------------------------------------ emulation
def test_emulation_counts_elements_and_metadata(tiny_model=None):
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)).eval()
    x = torch.randn(16, 256)
    clean = model(x)
    for spec in ("mxfp4", "int4:group=64", "mxfp6_e2m3:interleaved,no-metadata-errors", "fp8_e4m3"):
        fmt = NumericFormat.parse(spec)
        plan = EmulationPlan.uniform("em0:p=1e-3", format=spec, correction="zero", select=["*.weight", "*.ifm"])
        with emulate(model, plan, seed=2) as emu:
            out = model(x)
        assert torch.isfinite(out).all() and not torch.equal(out, clean)
        s = emu.stats["0.weight"]
        bits = fmt.storage_bytes(256 * 64) * 8
        if fmt.codec is not None and not fmt.metadata_errors:
            bits = 256 * 64 * fmt.bits
        assert s.bits == bits and 0 < s.flipped_bits < bits
        ifm = emu.stats["0.ifm"]
        assert ifm.injections == 1 and ifm.bits > 0
        assert torch.equal(model(x), clean)  # restored exactly


def test_plan_option_metadata_errors():
    plan = EmulationPlan.from_dict({"format": "eden-plan", "format_version": 1, "entries": [
        {"select": "*", "format": "mxfp4", "metadata_errors": False, "error_model": "em0:p=1e-4"}]})
    cfg = plan.entries[0][1]
    assert cfg.format == NumericFormat("mxfp4", metadata_errors=False)
    assert EmulationPlan.from_dict(plan.to_dict()).entries == plan.entries
    with pytest.raises(EdenTypeError, match="metadata_errors must be true or false"):
        EmulationPlan.from_dict({"format": "eden-plan", "format_version": 1, "entries": [
            {"select": "*", "format": "mxfp4", "metadata_errors": "no"}]})


def test_sizes_traffic_and_energy_count_the_metadata():
    from eden.nn.emulate import DataType
    from eden.power.traffic import inference_traffic

    dt = DataType("fc.weight", "weight", "fc", "weight", 64 * 256, (64, 256))
    assert dt.size_bytes("mxfp4") == 64 * 256 // 2 + 64 * 256 // 32  # 17 bytes per block of 32
    assert dt.size_bytes("mxfp6_e3m2") == 64 * 256 * 6 // 8 + 64 * 256 // 32
    assert dt.size_bytes("int4:group=128") == 64 * 256 // 2 + 64 * 256 // 128 * 2
    assert dt.size_bytes("int4:group=128,asym,no-metadata-errors") == 64 * 256 // 2 + 64 * 256 // 128 * 4
    assert dt.size_bytes("mxfp8_e4m3") == NumericFormat("mxfp8_e4m3").encode(torch.randn(64, 256)).storage.numel()
    assert NumericFormat("mxfp4").storage_bytes(33) == 2 * 17  # the last block padded
    t = inference_traffic([("fc.weight", "weight", dt.size_bytes("mxfp4"))], batch_size=1)
    assert t[0].bytes_read == 64 * 256 // 2 + 64 * 256 // 32


def test_cli_no_metadata_errors():
    import json

    from click.testing import CliRunner

    from eden.cli import main

    r = CliRunner().invoke(main, ["emulate", "--format", "mxfp4", "--no-metadata-errors", "-m", "em0:p=1e-3",
                                  "--seeds", "1", "--select", "classifier.*", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["plan"]["entries"][0]["format"] == "mxfp4:no-metadata-errors"
    w = out["datatypes"]["classifier.1.weight"]
    assert w["bits"] == 256 * 64 * 4 and w["format"] == "mxfp4:no-metadata-errors"
    r = CliRunner().invoke(main, ["emulate", "--format", "int8", "--no-metadata-errors", "-m", "em0:p=1e-3"])
    assert r.exit_code == 2 and "int8 keeps no metadata in DRAM" in r.output
    r = CliRunner().invoke(main, ["datatypes", "--format", "int4:group=64,flat", "--json"])
    rows = {d["name"]: d for d in json.loads(r.output)}
    assert rows["classifier.1.weight"]["bytes"] == 256 * 64 // 2 + 256 * 2


def test_emulation_names_the_data_type_a_group_does_not_fit():
    from torch import nn

    model = nn.Sequential(nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
    ptr, before = model[0].weight.data_ptr(), model[0].weight.detach().clone()
    plan = EmulationPlan.uniform("em0:p=1e-3", format="int4:group=128", select="*.weight")
    with pytest.raises(EdenConfigError, match=r"data type 2.weight: int4:group=128,symmetric: group size 128 does "
                                              r"not divide the channel: a tensor of shape \[10, 64\]"):
        with emulate(model, plan):
            pass
    assert model[0].weight.data_ptr() == ptr and torch.equal(model[0].weight, before)  # the first one put back
    plan = EmulationPlan.uniform("em0:p=1e-3", format="int4:group=128", select="2.ifm")
    with pytest.raises(EdenConfigError, match=r"data type 2.ifm: .* \[3, 64\] has 64 values per channel"):
        with emulate(model, plan):
            model(torch.randn(3, 256))


def test_nf4():
    from eden.formats.nf4 import NF4_LEVELS

    assert NF4_LEVELS[0] == -1 and NF4_LEVELS[7] == 0 and NF4_LEVELS[15] == 1 and np.all(np.diff(NF4_LEVELS) > 0)
    fmt = NumericFormat.parse("nf4:group=16")
    assert str(fmt) == "nf4:group=16,symmetric" and fmt.storage_bytes(64) == 32 + 4 * 2
    x = torch.from_numpy(np.tile(NF4_LEVELS, 4)) * 3.0  # every level, absmax 3 per group: exact
    enc = fmt.encode(x)
    codes, _ = fmt.codec.layout.unpack(enc.storage.numpy(), 4)
    assert codes.reshape(-1).tolist() == list(range(16)) * 4
    assert torch.equal(fmt.decode(enc), x)
    w = torch.randn(8, 256)
    nf4 = (NumericFormat.parse("nf4:group=64").decode(NumericFormat.parse("nf4:group=64").encode(w)) - w).abs()
    i4 = (NumericFormat.parse("int4:group=64").decode(NumericFormat.parse("int4:group=64").encode(w)) - w).abs()
    assert nf4.mean() < i4.mean()  # the point of NF4: normal data lose less
    with pytest.raises(EdenConfigError, match="no asymmetric"):
        NumericFormat.parse("nf4:group=64,asym")
    with pytest.raises(EdenConfigError, match=r"nf4 quantizes per group, not per tensor \('nf4:group=G'\)"):
        NumericFormat.parse("nf4")


@pytest.mark.parametrize("fmt", ["mxfp4", "int4:group=32,flat,asym", "fp8_e5m2"])
def test_retraining_takes_the_new_formats(fmt):
    """Straight-through updates with the block formats: errors at the scheduled BER over elements
    plus metadata, and a vanishing step leaves the clean weights where they were."""
    from eden.nn import zoo
    from eden.workflows.retrain import RetrainConfig, retrain

    model = zoo.load_model("digits-lenet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = zoo.digits_split("train")
    data = torch.utils.data.TensorDataset(x[:128], y[:128])
    cfg = RetrainConfig("em0:p=1e-3", target_ber=0.01, format=fmt, schedule="constant", epochs=1, optimizer="sgd",
                        lr=1e-12, batch_size=64)
    out = retrain(model, data, zoo.digits_loader("test", batch_size=359), cfg, tolerance=None)
    rank = out.report["history"][0]["ranks"][0]
    _assert_binomial(rank["flipped_bits"], rank["bits"], 0.01, f"{fmt}: retraining")
    for k, v in model.state_dict().items():
        assert torch.allclose(v, before[k], rtol=0, atol=1e-6), k


@pytest.mark.parametrize("spec", ["int4:group=8", "int8:group=8,asym", "nf4:group=8", "mxfp4", "mxint8"])
def test_non_finite_inputs(spec):
    """Group-wise codes have no NaN: inf saturates, NaN reads back as 0, the scale comes from the
    finite values. MX: the block takes the NaN scale (the specification)."""
    fmt = NumericFormat.parse(spec)
    x = torch.tensor([1.0, -2.0, math.nan, math.inf, -math.inf, 0.5, 0.25, 3.0] * 4)
    back = fmt.decode(fmt.encode(x))
    if spec.startswith("mx"):
        assert torch.isnan(back).all()
    else:
        assert back[2] == 0 and back[3] == back.max() and back[4] == back.min()
        assert torch.isfinite(back).all() and abs(back[7] - 3.0) < 0.5


def test_placement_decides_the_rows_and_bitlines_of_the_scales():
    """separate: the scales fill a few rows of their own (em2 hits all or none of them); interleaved:
    one scale byte every 17 bytes, in every row and on bitlines spread over the row (em1)."""
    from eden.dram.address import DEFAULT_ADDRESS_MAP as amap

    n = 64 * 1024  # 2048 blocks: 32 KiB of fp4 elements + 2 KiB of scales, over 5 rows of 8 KiB
    rows, lines = {}, {}
    for placement in ("separate", "interleaved"):
        fmt = NumericFormat("mxfp4", placement=placement)
        mask = fmt.codec.layout.metadata_mask(fmt.codec.n_blocks(n))
        bits = np.flatnonzero(np.repeat(mask, 8))
        loc = amap.locate_bits(0, bits)
        rows[placement] = set(np.unique(loc["row_id"]).tolist())
        lines[placement] = (int(loc["bitline"].min()), int(loc["bitline"].max()))
    assert len(rows["separate"]) == 1 and len(rows["interleaved"]) == 5
    assert lines["separate"] == (0, 2048 * 8 - 1)  # a quarter of one row
    assert lines["interleaved"][0] < 64 and lines["interleaved"][1] > amap.organization.row_bits - 17 * 8
    # em2 (weak wordlines): with separate scales the metadata's errors come all from one row
    x = torch.randn(n)
    for placement in ("separate", "interleaved"):
        fmt = NumericFormat("mxfp4", placement=placement)
        enc = fmt.encode(x)
        log = inject_(enc.storage.clone(), "em2:fraction=0.5,p=0.05,p_else=0", seed=1)
        idx, _ = log.positions()
        meta_rows = set(np.unique(amap.locate_bits(0, idx[enc.block.metadata_mask[idx]] * 8)["row_id"]).tolist())
        assert meta_rows <= rows[placement]
