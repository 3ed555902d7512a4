"""The storage-format registry: layouts, exact coding, lookups, and a format added by a test."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from eden import EdenConfigError, inject_
from eden.errors import EdenTypeError
from eden.formats import (FORMATS, BitLayout, FloatFormat, Granularity, IntFormat, MetadataLocation, format_of,
                          get_format, pack_int4, register_format, unpack_int4, unregister_format)
from eden.nn.quant import FLOAT_FORMATS, GRANULARITIES, NumericFormat, numeric_formats

TORCH_FLOATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
                "fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
MX = {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4", "mxint8"}


def test_builtin_formats_are_registered():
    assert set(FORMATS) == {"fp32", "fp16", "bf16", "int32", "int16", "int8", "uint8", "int4", "fp8_e4m3",
                            "fp8_e5m2", "nf4"} | MX
    assert set(numeric_formats()) == {"fp32", "fp16", "bf16", "int16", "int8", "int4", "fp8_e4m3", "fp8_e5m2",
                                      "nf4"} | MX


def test_formats_import_and_pack_without_torch():
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # import torch -> ImportError
        import numpy as np
        from eden.formats import get_format, pack_int4
        assert pack_int4(np.array([1, -1], np.int8)).tolist() == [0xF1]
        assert get_format("bf16").encode(np.array([1.0], np.float32)).tolist() == [0x3F80]
        print("no torch")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no torch"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_bit_layout_adds_up_to_the_word(name):
    fmt = FORMATS[name]
    if name in MX:  # a byte buffer of bit-packed elements (6-bit ones span bytes) and scales
        assert fmt.layout_bits == fmt.word_bits == 8 and (32 * fmt.bits) % 8 == 0
    else:
        assert fmt.layout_bits == fmt.word_bits == fmt.bits * fmt.values_per_word
    if fmt.is_float:
        assert fmt.layout.sign == 1 and fmt.layout.bits == fmt.bits
        assert fmt.max_finite == float(torch.finfo(TORCH_FLOATS[name]).max)
    for m in fmt.metadata:  # per-tensor/channel metadata is reliable; group and MX scales are in DRAM
        assert (m.location is MetadataLocation.DRAM) == (m.per in (Granularity.GROUP, Granularity.BLOCK))


@pytest.mark.parametrize("name", sorted(n for n, f in FORMATS.items() if f.is_float))
def test_float_formats_round_trip_and_round_like_torch(name):
    fmt = FORMATS[name]
    x = np.random.default_rng(1).standard_normal(4096).astype(np.float32) * 100
    words = fmt.encode(x)
    assert words.dtype == fmt.word and words.shape == x.shape
    # encoding rounds to nearest even exactly as torch's cast does
    want = torch.from_numpy(x).to(TORCH_FLOATS[name]).view(getattr(torch, f"int{fmt.bits}")).numpy()
    assert np.array_equal(words, want.view(fmt.word))
    # representable values come back bit for bit, and encode(decode(w)) == w
    back = fmt.decode(words)
    assert np.array_equal(back, torch.from_numpy(x).to(TORCH_FLOATS[name]).float().numpy())
    assert np.array_equal(fmt.encode(back), words)
    assert np.array_equal(fmt.decode(words, 10), back[:10])


@pytest.mark.parametrize("name", sorted(n for n, f in FORMATS.items() if isinstance(f, IntFormat)))
def test_integer_formats_round_trip_every_code(name):
    fmt = FORMATS[name]
    lo, hi = fmt.code_range("affine")
    rng = np.random.default_rng(2)
    codes = np.concatenate([[lo, hi, 0, -1 if lo < 0 else 1], rng.integers(lo, hi + 1, 996)]).astype(fmt.code_dtype)
    words = fmt.encode(codes)
    assert words.dtype == fmt.word and words.size * fmt.values_per_word == codes.size
    assert np.array_equal(fmt.decode(words), codes) and fmt.decode(words).dtype == codes.dtype
    with pytest.raises(EdenConfigError, match="codes must be in"):
        fmt.encode(np.array([hi + 1] * fmt.values_per_word, np.int64))


def test_int4_has_one_packer_for_numpy_and_torch():
    codes = np.array([7, -7, 1, -8, 0, 3], np.int8)
    packed = pack_int4(codes)
    assert packed.tolist() == [(7 & 0xF) | ((-7 & 0xF) << 4), 1 | (8 << 4), 3 << 4]
    assert np.array_equal(unpack_int4(packed), codes)
    t = get_format("int4").pack(torch.from_numpy(codes))
    assert t.dtype == torch.uint8 and np.array_equal(t.numpy(), packed)
    assert torch.equal(get_format("int4").unpack(t, 5), torch.from_numpy(codes[:5]))
    with pytest.raises(EdenConfigError, match="multiple of 2 codes"):
        pack_int4(codes[:3])


def test_quantize_primitives_match_numeric_format():
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(3))
    for spec in ("int8", "int8:affine", "int4:affine"):
        nf = NumericFormat.parse(spec)
        enc = nf.encode(w)
        zp = None if enc.zero_point is None else enc.zero_point.numpy()
        codes = nf.storage.quantize(w.numpy(), enc.scale.numpy(), zp)
        assert np.array_equal(codes, nf.storage.unpack(enc.storage, w.numel()).numpy().reshape(w.shape))
        back = nf.storage.dequantize(codes, enc.scale.numpy(), zp)
        assert np.array_equal(back, nf.decode(enc).numpy())


def test_lookups_and_unknown_names():
    assert format_of(torch.bfloat16) is get_format("bf16") and format_of(np.uint16) is get_format("int16")
    assert format_of("float32") is get_format("fp32")
    with pytest.raises(EdenConfigError, match=r"unknown storage format 'fp23'; known: .*did you mean 'fp32'"):
        get_format("fp23")
    with pytest.raises(EdenTypeError, match=r"unsupported dtype float64: .*bfloat16.*\(int4 as uint8, nf4 as uint8\)"):
        format_of(np.float64)
    with pytest.raises(EdenConfigError, match=r"unknown numeric format 'imt8'.*did you mean 'int8'"):
        NumericFormat.parse("imt8")
    with pytest.raises(EdenConfigError, match="numeric format 'int32'"):
        NumericFormat("int32")  # a storage format, not a DNN numeric format
    with pytest.raises(EdenConfigError, match="int16 quantizes per tensor or channel, not per group"):
        NumericFormat("int16", granularity="group")
    with pytest.raises(EdenConfigError, match="int8 per group needs its size"):
        NumericFormat("int8", granularity="group")


def test_registration_is_checked():
    with pytest.raises(ValueError, match="already registered"):
        register_format(FloatFormat("fp16", "uint16", 16))
    with pytest.raises(ValueError, match="numpy dtype float16 is already stored as 'fp16'"):
        register_format(FloatFormat("half", "uint16", 16, numpy_dtypes=("float16",), view="float16",
                                    layout=BitLayout(1, 5, 10)))
    with pytest.raises(ValueError, match="covers 15 bits of a 16-bit word"):
        register_format(FloatFormat("e5m9", "uint16", 16, view="float16", layout=BitLayout(1, 5, 9)))
    with pytest.raises(ValueError, match="do not tile"):
        IntFormat("int3", "uint8", 3)
    assert "half" not in FORMATS and "e5m9" not in FORMATS


def test_quant_tables_come_from_the_registry():
    assert GRANULARITIES == ("tensor", "channel", "group", "block")
    assert dict(FLOAT_FORMATS) == TORCH_FLOATS
    assert NumericFormat.parse("int4:affine,channel").bits == 4


@pytest.mark.parametrize("gran, kw, want", [
    ("tensor", {}, (4, 6, 8)), ("channel", {}, (1, 6, 8)), ("channel", {"channel_axis": 1}, (4, 1, 8)),
    ("group", {"group_size": 4}, (1, 1, 4)), ("block", {"group_size": 32}, (32,)),
])
def test_block_size_is_torchao_s(gran, kw, want):
    assert Granularity(gran).block_size((4, 6, 8), **kw) == want


def test_block_size_rejects_groups_that_do_not_divide():
    with pytest.raises(EdenConfigError, match="group_size 5 must divide the last axis"):
        Granularity.GROUP.block_size((4, 8), group_size=5)
    with pytest.raises(EdenConfigError, match="group_size must be an integer >= 1"):
        Granularity.BLOCK.block_size((4, 8), group_size=0)


@pytest.fixture
def int64_format():
    fmt = register_format(IntFormat("int64", "uint64", 64, numpy_dtypes=("int64",), description="test"))
    yield fmt
    unregister_format("int64")


def test_a_format_registered_by_a_test_is_usable_by_inject(int64_format):
    x = np.random.default_rng(4).integers(-2**62, 2**62, 20000)
    ref, got = x.copy(), x.copy()
    spec = "em0:p=1e-3+em3:p10=1e-2,p01=1e-3"
    lr = inject_(ref, spec, seed=3, base_address=64, backend="reference")
    lc = inject_(got, spec, seed=3, base_address=64, backend="cpu")
    assert lc.format is int64_format and lc.n_bits > 0
    assert np.array_equal(ref, got) and lr.n_bits == lc.n_bits
    with pytest.raises(EdenConfigError, match="multiple of the element size"):
        inject_(got, spec, base_address=4)
    lc.undo()
    assert np.array_equal(got, x)
