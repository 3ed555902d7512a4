"""Language models: the bundled tiny LM, text data, perplexity, local Hugging Face models, the CLI."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from eden.cli import main
from eden.errors import EdenConfigError, EdenDataError, EdenFileError, EdenFileNotFoundError
from eden.nn import lm, zoo
from eden.nn.emulate import EmulationPlan, datatypes, emulate
from eden.nn.evaluate import estimate, evaluate
from eden.workflows.retrain import task_loss


@pytest.fixture(scope="module")
def tiny():
    return zoo.load_model("tiny-lm")


@pytest.fixture(scope="module")
def test_loader():
    return zoo.build_data("pydoc-topics", "test", 128)


def test_bundled_corpus_splits_are_disjoint_documents():
    train, test = lm.corpus_text("train"), lm.corpus_text("test")
    assert len(train) > 300_000 and len(test) > 30_000
    from pydoc_data.topics import topics

    first = topics[sorted(topics)[0]]
    assert first in test and first not in train
    x, y = next(iter(zoo.build_data("pydoc-topics", "test", 8)))
    assert x.shape == (8, lm.TINY_LM_CONTEXT) and torch.equal(x[:, 1:], y[:, :-1])


def test_tiny_lm_is_small_and_good_and_errors_hurt_its_perplexity(tiny, test_loader):
    assert zoo.weights_path("tiny-lm").stat().st_size < 2_500_000
    clean = evaluate(tiny, test_loader, "neg_nll")
    acc = evaluate(tiny, test_loader, "top1")
    assert lm.perplexity(clean) < 6.0 and acc > 0.5  # byte-level: a uniform guess has perplexity 256
    plan = EmulationPlan.uniform("em0:p=1e-3", correction="zero")
    values = []
    for seed in range(3):
        with emulate(tiny, plan, seed=seed):
            values.append(evaluate(tiny, test_loader, "neg_nll"))
    est = estimate(values)
    assert math.exp(-est.ci_high) > 1.01 * lm.perplexity(clean)  # the whole CI is > 1% worse


def test_neg_nll_is_minus_log_perplexity_and_the_lm_loss_matches():
    logits = torch.randn(3, 5, 7)
    targets = torch.randint(0, 7, (3, 5))
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1))
    from eden.nn.evaluate import neg_nll

    s, n = neg_nll(logits, targets)
    assert n == 15 and s / n == pytest.approx(-float(ce), rel=1e-6)
    assert float(task_loss(logits, targets)) == pytest.approx(float(ce))
    assert float(task_loss(logits[:, 0], targets[:, 0])) == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits[:, 0], targets[:, 0])))


def test_text_data_windows_and_short_text(tiny, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("abcdefghij" * 10)
    x, y = next(iter(zoo.build_data(f"text:{f}:16", batch_size=100, model=tiny)))
    assert x.shape == (6, 16) and x[0, 0] == ord("a") and y[0, 0] == ord("b")
    short = tmp_path / "short.txt"
    short.write_text("x" * 64)  # one context of 64 needs 65 tokens
    with pytest.raises(EdenDataError, match="shorter than one context of 64 tokens"):
        zoo.build_data(f"text:{short}", model=tiny)
    with pytest.raises(EdenFileNotFoundError):
        zoo.build_data(f"text:{tmp_path / 'none.txt'}", model=tiny)
    with pytest.raises(EdenConfigError, match="needs the model"):
        zoo.build_data(f"text:{f}")


def test_cli_characterize_with_a_perplexity_target(tmp_path):
    out = tmp_path / "tol.json"
    r = CliRunner().invoke(main, ["characterize", "--model", "tiny-lm", "--data", "pydoc-topics", "--mode", "coarse",
                                  "--select", "*_cache", "--target-ppl-increase", "1%", "--seeds", "2",
                                  "--resolution", "0.5", "--correction", "zero", "--no-progress", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "clean perplexity" in r.output and "+1%" in r.output
    rec = json.loads(out.read_text())
    assert rec["metric"] == "neg_nll" and rec["target_ppl_increase"] == 0.01 and rec["kv_semantics"] == "access"
    assert rec["target_drop_pp"] == pytest.approx(100 * math.log(1.01))
    assert 0 < rec["coarse"]["tolerable_ber"] < 0.5
    kv = [d for d in rec["datatypes"] if d["kind"] == "kv_cache"]
    assert len(kv) == 4 and all(d["bytes_per_token"] == 4 * 32 * 4 for d in kv)
    assert rec["data"]["tokens_per_sample"] == lm.TINY_LM_CONTEXT
    bad = CliRunner().invoke(main, ["characterize", "--model", "tiny-lm", "--data", "pydoc-topics",
                                    "--target-ppl-increase", "1%", "--target-drop", "2", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "either --target-drop or --target-ppl-increase" in bad.output


# ------------------------------------------------------------------ Hugging Face (transformers, optional)
@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    d = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    transformers.LlamaForCausalLM(cfg).save_pretrained(d)
    tok = Tokenizer(models.WordLevel({"[UNK]": 0} | {chr(i): i for i in range(1, 256)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(d)
    (d / "text.txt").write_text(lm.corpus_text("test")[:4000])
    return d


def test_eden_datatypes_on_a_local_llama_lists_weights_ifms_and_kv_caches(hf_dir):
    r = CliRunner().invoke(main, ["datatypes", "--model", f"hf:{hf_dir}", "--data", f"text:{hf_dir / 'text.txt'}:16",
                                  "--batch-size", "2", "--json"])
    assert r.exit_code == 0, r.output
    rows = {d["name"]: d for d in json.loads(r.stdout)}
    assert rows["model.layers.0.self_attn.q_proj.weight"]["kind"] == "weight"
    assert rows["lm_head.weight"]["kind"] == "weight" and rows["model.embed_tokens.weight"]["kind"] == "weight"
    assert rows["model.layers.1.mlp.down_proj.ifm"]["kind"] == "ifm"
    for layer in (0, 1):
        for kv in ("k_cache", "v_cache"):
            d = rows[f"model.layers.{layer}.self_attn.{kv}"]
            assert d["kind"] == "kv_cache" and d["shape"] == [2, 2, 16, 8]
            assert d["bytes_per_token"] == 2 * 8 * 4  # 2 KV heads x head_dim 8 x fp32
    text = CliRunner().invoke(main, ["datatypes", "--model", f"hf:{hf_dir}", "--data", f"text:{hf_dir / 'text.txt'}:16",
                                     "--batch-size", "2"])
    assert "KV cache: 4 data types, 256 B per token" in text.output


def test_hf_model_both_semantics_restore_the_dynamic_cache_exactly(hf_dir):
    model = lm.load_hf(hf_dir)
    ids = torch.randint(1, 256, (2, 12))
    with torch.no_grad():
        clean = lm.new_cache(model)
        model(ids[:, :8], cache=clean)
        ref = model(ids[:, 8:], cache=clean)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for sem in ("access", "stored"):
        cache = lm.new_cache(model)
        plan = EmulationPlan.uniform("em0:p=1e-2", select="*_cache", correction="zero")
        with torch.no_grad(), emulate(model, plan, seed=3, kv_semantics=sem) as emu:
            model(ids[:, :8], cache=cache)
            out = model(ids[:, 8:], cache=cache)
            assert not torch.equal(out, ref)
        assert emu.stats["model.layers.0.self_attn.k_cache"].flipped_bits > 0
        k0 = cache.layers[0].keys
        assert torch.equal(k0.view(torch.int32), clean.layers[0].keys.view(torch.int32))
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    names = {d.name for d in datatypes(model)}
    assert "model.layers.1.self_attn.v_cache" in names


def test_hf_bad_inputs_are_clear_errors(hf_dir, tmp_path):
    with pytest.raises(EdenFileNotFoundError, match="no such model directory"):
        lm.load_hf(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdenFileError, match="config.json"):
        lm.load_hf(tmp_path / "empty")
    bare = tmp_path / "bare"
    lm.load_hf(hf_dir).save_pretrained(bare)  # the model without its tokenizer
    model = lm.load_hf(bare)
    with pytest.raises(EdenFileError, match="holds no tokenizer"):
        zoo.build_data(f"text:{hf_dir / 'text.txt'}", model=model)
    r = CliRunner().invoke(main, ["datatypes", "--model", f"hf:{tmp_path / 'empty'}"])
    assert r.exit_code == 1 and "not a Hugging Face model directory" in r.output


def test_stepwise_decoding_matches_one_pass_and_reads_the_cache_every_step(tiny):
    x, y = next(iter(zoo.build_data("pydoc-topics", "test", 4)))
    with torch.no_grad():
        full = tiny(x)
        step = lm.stepwise_logits(tiny, x, prefill=8)
    assert step.shape == full.shape and torch.allclose(step, full, atol=1e-4)
    plan = EmulationPlan.uniform("em0:p=1e-3", correction="zero", select="blocks.0.attn.k_cache")
    for sem, injections in (("access", 64 - 8 + 1), ("stored", 64 - 8 + 1)):
        with torch.no_grad(), emulate(tiny, plan, seed=0, kv_semantics=sem) as emu:
            lm.Stepwise(tiny, prefill=8)(x)
        assert emu.stats["blocks.0.attn.k_cache"].injections == injections  # one per read / per write
    assert "inner" not in dict(lm.Stepwise(tiny).named_modules())
