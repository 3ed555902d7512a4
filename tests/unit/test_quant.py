"""Numeric formats of DNN data: exact round trips, quantization error bounds, packing."""

import pytest
import torch

from eden.nn.quant import NumericFormat


@pytest.fixture()
def w():
    g = torch.Generator().manual_seed(0)
    return torch.randn(12, 5, 3, 3, generator=g) * torch.linspace(0.1, 3, 12).view(-1, 1, 1, 1)


@pytest.mark.parametrize("spec,bits", [("int16", 16), ("int8", 8), ("int4", 4)])
@pytest.mark.parametrize("scheme", ["symmetric", "affine"])
@pytest.mark.parametrize("gran", ["tensor", "channel"])
def test_quantization_error_within_half_step(w, spec, bits, scheme, gran):
    fmt = NumericFormat.parse(f"{spec}:{scheme},{gran}")
    enc = fmt.encode(w, channel_axis=0)
    back = fmt.decode(enc)
    assert back.shape == w.shape and back.dtype == w.dtype
    assert torch.all((back - w).abs() <= enc.scale * 0.5 + 1e-6)
    codes = enc.storage if spec != "int4" else None
    if codes is not None:
        lo = -(2 ** (bits - 1)) if scheme == "affine" else -(2 ** (bits - 1) - 1)
        assert int(codes.min()) >= lo and int(codes.max()) <= 2 ** (bits - 1) - 1
    if gran == "channel":
        assert enc.scale.shape == (12, 1, 1, 1)
    assert fmt.storage_bytes(w.numel()) * 8 == w.numel() * bits + (w.numel() * bits) % 8


def test_int4_packing_two_per_byte_low_nibble_first():
    fmt = NumericFormat.parse("int4")
    x = torch.tensor([7.0, -7.0, 1.0])  # odd count: padded
    enc = fmt.encode(x)
    assert enc.storage.dtype == torch.uint8 and enc.storage.numel() == 2
    assert int(enc.storage[0]) == (7 & 0xF) | ((-7 & 0xF) << 4)
    assert torch.equal(fmt.decode(enc), x)


def test_float_formats_store_their_own_bits(w):
    for name, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        enc = NumericFormat.parse(name).encode(w)
        assert enc.storage.dtype == dt
        assert torch.equal(NumericFormat.parse(name).decode(enc), w.to(dt).float())
    enc = NumericFormat.parse("fp32").encode(w)
    assert enc.storage.data_ptr() != w.data_ptr() and torch.equal(enc.storage, w)


def test_affine_keeps_zero_exact():
    x = torch.tensor([0.0, 0.3, 2.0, 5.0])
    fmt = NumericFormat.parse("int8:affine")
    assert fmt.decode(fmt.encode(x))[0].item() == 0.0


def test_bad_format_specs():
    with pytest.raises(ValueError, match="float format"):
        NumericFormat.parse("fp16:affine")
    with pytest.raises(ValueError, match="unknown option"):
        NumericFormat.parse("int8:rowwise")
    with pytest.raises(TypeError, match="float tensors"):
        NumericFormat.parse("int8").encode(torch.arange(4))
