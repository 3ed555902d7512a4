"""DNN emulation: exact restoration, empty plans, persistence, formats, bad input."""

import pytest
import torch
from torch import nn

from eden.errors import EdenConfigError, EdenDataError, EdenError, EdenTypeError
from eden.nn import zoo
from eden.nn.emulate import DataTypeConfig, EmulationPlan, datatype_seed, datatypes, emulate
from eden.nn.evaluate import evaluate
from eden.nn.quant import NumericFormat


def _bits(model):
    return {k: (v.detach().clone().view(torch.uint8) if v.is_floating_point() else v.clone())
            for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def lenet():
    return zoo.load_model("digits-lenet")


@pytest.fixture(scope="module")
def batch():
    x, y = zoo.digits_split("test")
    return x[:64], y[:64]


def test_datatype_names_cover_weights_and_ifms(lenet, batch):
    dts = {d.name: d for d in datatypes(lenet, batch[0])}
    assert {"features.0.weight", "features.0.bias", "features.0.ifm", "classifier.3.ifm"} <= set(dts)
    assert dts["features.0.ifm"].numel == 64 * 64 and dts["features.0.ifm"].kind == "ifm"
    assert dts["classifier.1.weight"].size_bytes("int4") == 64 * 256 // 2


def test_transformer_data_types_include_attention_and_norms():
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    names = {d.name for d in datatypes(nn.Sequential(nn.Embedding(50, 16), layer))}
    assert "0.weight" in names and "0.ifm" not in names  # embedding input is indices
    assert {"1.self_attn.in_proj_weight", "1.self_attn.ifm", "1.self_attn.out_proj.weight",
            "1.norm1.weight", "1.linear1.ifm"} <= names


@pytest.mark.parametrize("fmt,corr", [("fp32", "none"), ("fp32", "zero"), ("int8", "none"),
                                      ("int4:affine,channel", "none"), ("bf16", "clamp"), ("fp16", "none")])
@pytest.mark.parametrize("persistence", ["access", "fixed"])
def test_parameters_bit_identical_after_exit(lenet, batch, fmt, corr, persistence):
    before = _bits(lenet)
    plan = EmulationPlan.uniform(f"em0:p=1e-2;persistence={persistence}", format=fmt, correction=corr)
    with torch.inference_mode():
        clean_out = lenet(batch[0])
    with emulate(lenet, plan, seed=3) as emu:
        with torch.inference_mode():
            out1 = lenet(batch[0])
            lenet(batch[0][:7])  # another batch size
        assert not _same(before, _bits(lenet))  # the weights really were corrupted
    assert emu.forwards == 2
    assert sum(s.flipped_bits for s in emu.stats.values()) > 0
    assert not torch.equal(out1, clean_out)
    assert _same(before, _bits(lenet))


def test_parameters_restored_when_body_raises(lenet, batch):
    before = _bits(lenet)
    with pytest.raises(RuntimeError, match="boom"):
        with emulate(lenet, EmulationPlan.uniform("em0:p=1e-2", format="int8"), seed=1):
            lenet(batch[0])
            raise RuntimeError("boom")
    assert _same(before, _bits(lenet))
    # hooks are gone too: outputs are clean again
    with torch.inference_mode():
        assert torch.equal(lenet(batch[0]), lenet(batch[0]))


def test_empty_plan_changes_no_output_bit(lenet, batch):
    with torch.inference_mode():
        ref = lenet(batch[0]).clone()
    for plan in (EmulationPlan(), None, EmulationPlan.uniform(None, format="fp32")):
        with emulate(lenet, plan, seed=9), torch.inference_mode():
            out = lenet(batch[0])
        assert torch.equal(out.view(torch.int32), ref.view(torch.int32))


def test_same_seed_same_bits_different_seed_differs(lenet, batch):
    plan = EmulationPlan.uniform("em0:p=1e-3", format="fp32", correction="zero")
    outs = []
    for seed in (5, 5, 6):
        with emulate(lenet, plan, seed=seed), torch.inference_mode():
            outs.append(lenet(batch[0]).clone())
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def _weight_after_forward(model, plan, x, n):
    snaps = []
    with emulate(model, plan, seed=2), torch.inference_mode():
        for _ in range(n):
            model(x)
            snaps.append(model.classifier[1].weight.detach().clone())
    return snaps


def test_weight_persistence_access_redraws_fixed_keeps(lenet, batch):
    x = batch[0]
    acc = _weight_after_forward(lenet, EmulationPlan.uniform("em0:p=1e-3", select="*.weight"), x, 3)
    assert not torch.equal(acc[0], acc[1]) and not torch.equal(acc[1], acc[2])
    fix = _weight_after_forward(lenet, EmulationPlan.uniform("em0:p=1e-3;persistence=fixed", select="*.weight"), x, 3)
    assert torch.equal(fix[0], fix[1]) and torch.equal(fix[1], fix[2])
    assert not torch.equal(fix[0], lenet.classifier[1].weight)


def test_ifm_errors_redrawn_every_forward(lenet, batch):
    plan = EmulationPlan.uniform("em0:p=1e-2", correction="zero", select="*.ifm")
    with emulate(lenet, plan, seed=0) as emu, torch.inference_mode():
        a = lenet(batch[0]).clone()
        b = lenet(batch[0]).clone()
    assert not torch.equal(a, b)
    assert emu.stats["features.0.ifm"].injections == 2
    # weights untouched by an IFM-only plan
    assert emu.stats.keys() == {d.name for d in datatypes(lenet) if d.kind == "ifm"}


def test_int8_weight_errors_live_in_the_codes(lenet):
    w = lenet.classifier[1].weight.detach().clone()
    fmt = NumericFormat.parse("int8:symmetric,channel")
    enc = fmt.encode(w, channel_axis=0)
    plan = EmulationPlan({"classifier.1.weight": DataTypeConfig("em0:p=1e-2", fmt)})
    with emulate(lenet, plan, seed=4):
        got = lenet.classifier[1].weight.detach().clone()
    # every emulated value is (code - 0) * channel scale for some int8 code
    codes = got / enc.scale
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert codes.abs().max() <= 128
    diff = (codes.round().to(torch.int16) != enc.storage.to(torch.int16)).float().mean()
    # P(an 8-bit code changes) = 1 - (1 - p)^8 ~ 7.7%: exact bounds not needed here, just the order
    assert 0.04 < float(diff) < 0.12


def test_gradients_pass_straight_through(lenet, batch):
    x = batch[0].clone().requires_grad_(True)
    plan = EmulationPlan.uniform("em0:p=1e-3", correction="zero")
    with emulate(lenet, plan, seed=1):
        loss = nn.functional.cross_entropy(lenet(x), batch[1])
        loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert lenet.features[0].weight.grad is not None
    lenet.zero_grad(set_to_none=True)


def test_unknown_datatype_lists_close_matches(lenet):
    plan = EmulationPlan({"features.0.weigth": DataTypeConfig("em0:p=1e-3")})
    with pytest.raises(ValueError, match="did you mean 'features.0.weight'"):
        emulate(lenet, plan)
    with pytest.raises(ValueError, match="matches no data type"):
        emulate(lenet, EmulationPlan.uniform("em0:p=1e-3", select="encoder.*"))


def test_bad_configs():
    with pytest.raises(ValueError, match="float formats"):
        DataTypeConfig("em0:p=1e-3", "int8", "zero")
    with pytest.raises(ValueError, match="did you mean 'int8'"):
        NumericFormat.parse("imt8")
    with pytest.raises(ValueError, match="unknown correction"):
        DataTypeConfig(None, "fp32", "round")
    with pytest.raises(TypeError, match="nn.Module"):
        emulate(object(), EmulationPlan())
    with pytest.raises(ValueError, match="seed"):
        datatype_seed(-1, "x")


def test_bad_input_raises_eden_errors(lenet):
    with pytest.raises(EdenConfigError, match="did you mean 'features.0.weight'"):
        emulate(lenet, EmulationPlan({"features.0.weigth": DataTypeConfig("em0:p=1e-3")}))
    with pytest.raises(EdenTypeError, match="nn.Module"):
        emulate(object(), EmulationPlan())
    with pytest.raises(EdenConfigError, match="seed must be an integer >= 0, got -1"):
        datatype_seed(-1, "x")
    with pytest.raises(EdenConfigError, match=r"plan entry '\*': unknown correction 'round'"):
        EmulationPlan({"*": {"correction": "round"}})
    with pytest.raises(EdenDataError, match="no batches"):
        evaluate(lenet, [])
    with pytest.raises(EdenConfigError, match="unknown metric 'top2'; known: neg_nll, top1, top5"):
        evaluate(lenet, [], "top2")


def _mnist_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


def test_model_that_does_not_fit_the_data_names_model_data_and_module(batch):
    model = _mnist_mlp()
    with pytest.raises(EdenDataError) as info:
        datatypes(model, batch[0])
    msg = str(info.value)
    assert "model Sequential fails on the example input" in msg and "float32 tensor of shape (64, 1, 8, 8)" in msg
    assert "in module '1' (Linear)" in msg and "mat1 and mat2 shapes cannot be multiplied" in msg
    assert isinstance(info.value.__cause__, RuntimeError)  # the original error stays attached
    with pytest.raises(EdenDataError, match=r"first batch of the data \(list\), a float32 tensor of shape "
                                            r"\(64, 1, 8, 8\), in module '1' \(Linear\)"):
        evaluate(model, [batch])
    with emulate(model, EmulationPlan.uniform("em0:p=1e-3")):  # the emulation's hooks do not hide it
        with pytest.raises(EdenDataError, match=r"in module '1' \(Linear\)"):
            evaluate(model, [batch])


class _Helper(nn.Module):
    """A module whose own code fails in a helper its forward calls (as torchvision's _forward_impl)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self._impl(x)

    def _impl(self, x):
        return x.flatten(1) @ self.fc.weight.t()


def test_failure_in_a_modules_own_helper_is_found(batch):
    with pytest.raises(EdenDataError, match=r"model _Helper fails .* in its forward: mat1 and mat2 shapes cannot be "
                                            r"multiplied \(64x9 and 4x2\)"):
        evaluate(_Helper(), [(batch[0][:, :, :3, :3], batch[1])])


def test_only_failures_inside_a_forward_become_data_errors(lenet, batch):
    # a later batch of another shape is the loader's bug, not a model/data mismatch of the first batch
    other = (batch[0][:, :, :4, :4], batch[1])
    with pytest.raises(RuntimeError) as info:
        evaluate(lenet, [batch, other])
    assert not isinstance(info.value, EdenError)

    # an exception raised by a forward hook (as eden's emulation hooks are) is a bug: unchanged
    def broken_hook(module, args):
        raise RuntimeError("hook bug")

    handle = lenet.features[0].register_forward_pre_hook(broken_hook)
    try:
        with pytest.raises(RuntimeError, match="hook bug") as info:
            evaluate(lenet, [batch])
        assert not isinstance(info.value, EdenError)
        with pytest.raises(RuntimeError, match="hook bug") as info:
            datatypes(lenet, batch[0])
        assert not isinstance(info.value, EdenError)
    finally:
        handle.remove()


def test_plan_json_roundtrip():
    plan = EmulationPlan.uniform("em1:fraction=0.01,p=0.05", format="int4:affine", select="*.weight")
    plan = plan.with_entry("features.0.ifm", DataTypeConfig("em0:p=1e-4", "bf16", "clamp"))
    again = EmulationPlan.from_dict(plan.to_dict())
    assert again == plan
    with pytest.raises(ValueError, match="format_version"):
        EmulationPlan.from_dict({**plan.to_dict(), "format_version": 7})
    with pytest.raises(ValueError, match="unknown keys"):
        EmulationPlan.from_dict({"format": "eden-plan", "format_version": 1,
                                 "entries": [{"select": "*", "errormodel": "em0:p=1"}]})


def test_a_leading_bang_leaves_data_types_out(lenet, batch):
    names = [d.name for d in datatypes(lenet, batch[0])]
    cfg = DataTypeConfig("em0:p=1e-3")
    every_but_input = EmulationPlan.uniform(cfg.error_model, select="!features.0.ifm").resolve(names)
    assert list(every_but_input) == [n for n in names if n != "features.0.ifm"]
    # in order: later keys win, so a name taken out can be put back
    plan = EmulationPlan((("*.weight", cfg), ("!features.*", cfg), ("features.2.weight", cfg)))
    assert set(plan.resolve(names)) == {n for n in names if n.endswith(".weight")
                                        and not n.startswith("features.")} | {"features.2.weight"}
    with torch.no_grad():
        before = _bits(lenet)
        with emulate(lenet, EmulationPlan.uniform("em0:p=0.5", select="!*.weight")):
            assert _same({k: v for k, v in _bits(lenet).items() if k.endswith(".weight")},
                         {k: v for k, v in before.items() if k.endswith(".weight")})
            assert not _same(_bits(lenet), before)  # the biases did get errors
        assert _same(_bits(lenet), before)
    with pytest.raises(ValueError, match="'features.0.imf' in plan key '!features.0.imf'; "
                                         "did you mean 'features.0.ifm'"):
        EmulationPlan.uniform(cfg.error_model, select="!features.0.imf").resolve(names)
    with pytest.raises(ValueError, match="'!encoder.\\*' matches no data type"):
        EmulationPlan.uniform(cfg.error_model, select=["*", "!encoder.*"]).resolve(names)
    for bad in ("!", "!!x", "", []):
        with pytest.raises(ValueError, match="select must be non-empty"):
            EmulationPlan.uniform(cfg.error_model, select=bad)
    # a selection that starts by leaving something out starts from every data type
    assert list(EmulationPlan.uniform(None, select=["!features.0.ifm", "features.*"]).resolve(names)) == names
    assert "features.0.ifm" not in EmulationPlan.uniform(None, select=["!features.0.ifm", "!classifier.*"]).resolve(
        names)
    # a hand-made or loaded plan cannot start with an exclusion (there is nothing to take out)
    for entries in ((("!features.0.ifm", cfg),), (("*", cfg), ("!!x", cfg)), (("*", cfg), ("!", cfg))):
        with pytest.raises(ValueError, match="plan key"):
            EmulationPlan(entries)
    with pytest.raises(ValueError, match="nothing before it"):
        EmulationPlan.from_dict({"format": "eden-plan", "format_version": 1,
                                 "entries": [{"select": "!features.0.ifm", "error_model": "em0:p=1e-3"}]})


@pytest.mark.parametrize("spec,fmt,correction", [
    ("em0:p=1e-3", "fp32", "none"), ("em3:p10=1e-3,p01=1e-4;persistence=fixed", "fp16", "none"),
    ("em1:fraction=0.05,p=0.02+em0:p=1e-4", "bf16", "none"), ("em0:p=1e-3", "fp32", "zero"),
    ("em0:p=2e-3", "bf16", "clamp")])
def test_ifm_lean_path_same_outputs_and_stats(lenet, batch, monkeypatch, spec, fmt, correction):
    """The IFM hook's lean calls (eden.engine.lean) give the outputs and the stats of its Injectors
    (with per-batch correction bounds: the packed inject + correct call)."""
    import eden.nn.emulate as em

    plan = EmulationPlan.uniform(spec, format=fmt, select="*.ifm", correction=correction)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[fmt]
    model = zoo.load_model("digits-lenet").to(dtype)
    x = batch[0].to(dtype)

    def run():
        with emulate(model, plan, seed=5) as emu, torch.inference_mode():
            outs = [model(x).clone() for _ in range(3)]
        return outs, {k: (s.injections, s.flipped_bits, s.bits, s.corrected_values) for k, s in emu.stats.items()}

    made = []
    real = em.lean_injection
    monkeypatch.setattr(em, "lean_injection", lambda inj: made.append(real(inj)) or made[-1])
    lean_outs, lean_stats = run()
    assert made and all(m is not None for m in made)  # every IFM took the lean path
    monkeypatch.setattr(em, "lean_injection", lambda inj: None)
    outs, stats = run()
    assert all(torch.equal(a.view(torch.uint8), b.view(torch.uint8)) for a, b in zip(lean_outs, outs))
    assert lean_stats == stats and sum(s[1] for s in stats.values()) > 0
    if correction != "none":
        assert sum(s[3] for s in stats.values()) > 0  # the correction ran


@pytest.mark.parametrize("spec", ["em0:p=1e-3", "em2:fraction=0.3,p=1e-2,p_else=1e-5"])
def test_weight_lean_group_same_outputs_and_stats(lenet, batch, monkeypatch, spec):
    """The weights' packed group call (eden.engine.lean.LeanGroup) gives the outputs and stats of
    the InjectorGroup path, and the model comes back bit-exactly, also after clear_weights."""
    import eden.nn.emulate as em

    plan = EmulationPlan.uniform(spec, select="*.weight")
    model = zoo.load_model("digits-lenet")
    clean = {k: v.clone() for k, v in model.state_dict().items()}
    x = batch[0]

    def run():
        with emulate(model, plan, seed=9) as emu, torch.inference_mode():
            outs = [model(x).clone() for _ in range(2)]
            emu.clear_weights()
            outs += [model(x).clone() for _ in range(2)]
            lean = emu._lean_weights
        assert all(torch.equal(v.view(torch.uint8), clean[k].view(torch.uint8)) for k, v in model.state_dict().items())
        return outs, {k: (s.injections, s.flipped_bits, s.bits) for k, s in emu.stats.items()}, lean

    lean_outs, lean_stats, lean = run()
    assert lean is not None  # the packed path was taken
    monkeypatch.setattr(em, "lean_group", lambda injectors: None)
    outs, stats, none = run()
    assert none is None
    assert all(torch.equal(a.view(torch.uint8), b.view(torch.uint8)) for a, b in zip(lean_outs, outs))
    assert lean_stats == stats and sum(s[1] for s in stats.values()) > 0


def test_weight_storage_change_that_fails_rebuilds_nothing_stale():
    """A weight replaced by a view the emulation refuses (non-contiguous) fails on every forward with
    the error that says why, and never writes through the old groups (the memory around the view stays
    untouched)."""
    from torch import nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(64, 64, bias=False), nn.Linear(64, 64, bias=False))
    x = torch.randn(2, 64)
    with emulate(m, EmulationPlan.uniform("em0:p=1e-2", select="*.weight"), seed=1, backend="cpu") as emu, \
            torch.no_grad():
        m(x)
        m(x)
        assert emu._lean_weights is not None
        buf = torch.zeros(64 * 64)
        m[0].weight.data = buf.view(64, 64)[:, :32]  # non-contiguous, inside buf
        for _ in range(2):
            with pytest.raises(EdenConfigError, match="contiguous"):
                m(x)
        assert int((buf.view(64, 64)[:, 32:] != 0).sum()) == 0


def test_unlisted_ifm_of_a_tensor_subclass_takes_its_place():
    """An unlisted IFM that is a Parameter (a Tensor subclass) takes its DRAM place like a listed one:
    the layout does not depend on the plan."""
    from torch import nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lat = nn.Parameter(torch.randn(4, 16))
            self.norm = nn.LayerNorm(16)
            self.fc = nn.Linear(16, 16)

        def forward(self, x):
            return self.fc(x + self.norm(self.lat).sum())

    m = M().eval()
    cursors = []
    for plan in (EmulationPlan({"fc.ifm": DataTypeConfig("em0:p=1e-2")}),
                 EmulationPlan({"fc.ifm": DataTypeConfig("em0:p=1e-2"), "norm.ifm": DataTypeConfig("em0:p=0.0")})):
        with emulate(m, plan, seed=1) as emu, torch.no_grad():
            seen: list = []
            h = m.fc.register_forward_pre_hook(lambda mod, a, _s=seen, _e=emu: _s.append(_e._ifm_cursor),
                                               prepend=True)
            m(torch.randn(2, 16))
            h.remove()
        cursors.append(seen)
    assert cursors[0] == cursors[1] and cursors[0][0] > 0
