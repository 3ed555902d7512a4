"""Language models on approximate DRAM: the bundled tiny LM, text data, local Hugging Face models.

**Models.** eden runs any causal LM that is an ``nn.Module`` and follows one *cache
convention* (Hugging Face's ``Cache.update``):

* ``model(input_ids)`` takes token ids ``[batch, tokens]`` (int64) and returns next-token
  logits ``[batch, tokens, vocab]`` (a tensor, or an object with a ``logits`` attribute);
* every attention module has an integer ``layer_idx`` and receives the KV cache as the
  keyword argument ``cache`` (or ``past_key_values``); it calls
  ``cache.update(key, value, layer_idx)`` with this call's keys and values, shaped
  ``[batch, kv_heads, new_tokens, head_dim]``, and attends over the keys and values that
  ``update`` returns (``[batch, kv_heads, cached_tokens, head_dim]``);
* the model makes its own cache when it is not given one (``use_cache``), so a plain
  forward pass writes the cache and reads it back.

:class:`KVCache` is eden's minimal cache with that interface; :class:`TinyLM`, the bundled
model, follows the convention, and so do Hugging Face's decoder-only models in
``transformers`` 5 (``hf:DIR``, :func:`load_hf`). The KV cache's data types
(``<attention module>.k_cache`` / ``.v_cache``) are emulated by :mod:`eden.nn.kvcache`.

**Tokenizers.** A model's tokenizer is its ``tokenizer`` attribute (anything with
``encode(str) -> list[int]``): :class:`ByteTokenizer` (UTF-8 bytes, vocabulary 256) for
the tiny LM, the tokenizer saved next to a Hugging Face model for ``hf:DIR``.

**Text data.** ``text:FILE`` (or ``text:FILE:N`` for a context of N tokens) cuts the
tokenized file into non-overlapping windows of ``N + 1`` tokens: inputs are the first N,
targets the last N (the next token of each position). ``pydoc-topics`` is the bundled
corpus (:func:`corpus_text`): the help texts of Python's own ``pydoc_data.topics``, which
every CPython installation ships.

**Metrics.** ``top1`` on logits ``[B, T, V]`` and targets ``[B, T]`` is the next-token
accuracy; ``neg_nll`` (``eden.nn.evaluate``) is minus the mean next-token negative
log-likelihood in nats, i.e. ``-ln(perplexity)`` (higher is better, like an accuracy).
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from eden.core.validate import check_int
from eden.errors import EdenConfigError, EdenDataError, EdenFileError, EdenFileNotFoundError

__all__ = ["ByteTokenizer", "KVCache", "TinyLM", "TINY_LM_CONTEXT", "corpus_text", "corpus_tokens",
           "pydoc_topics_loader", "text_loader", "text_windows", "load_hf", "tokenizer_of", "context_of",
           "logits_of", "new_cache", "perplexity"]

TINY_LM_CONTEXT = 64
"""Context (tokens per window) of the bundled tiny LM and of its bundled data."""
TEST_EVERY = 10
"""Every TEST_EVERY-th help topic of the bundled corpus (in sorted order) is in the test split."""
TEST_WINDOWS = 128
"""Windows of the bundled test split (the first ones; keeps an evaluation under a second)."""


# ------------------------------------------------------------------------ tokenizers
class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256): no files, no unknown tokens."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


# ------------------------------------------------------------------------ cache
class KVCache:
    """A growing KV cache with Hugging Face's ``update`` interface (one entry per layer).

    ``update(key, value, layer_idx)`` appends ``key``/``value`` (``[B, H, new, D]``) along
    the token axis and returns the layer's whole cache; the returned tensors *are* the
    stored ones (so stored corruption stays in them).
    """

    def __init__(self) -> None:
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        if layer_idx in self.keys:
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value], dim=-2)
        else:  # the cache's own storage, never the caller's tensors
            self.keys[layer_idx], self.values[layer_idx] = key.clone(), value.clone()
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        k = self.keys.get(layer_idx)
        return 0 if k is None else int(k.shape[-2])


def new_cache(model: nn.Module):
    """An empty cache for ``model``: Hugging Face's ``DynamicCache`` for ``transformers`` models,
    else the model's own ``new_cache()`` if it has one, else :class:`KVCache`."""
    if _is_hf(model):
        from transformers import DynamicCache

        return DynamicCache(config=getattr(model, "config"))  # noqa: B009
    make = getattr(model, "new_cache", None)
    return make() if callable(make) else KVCache()


# ------------------------------------------------------------------------ the tiny LM
class _Attention(nn.Module):
    """Causal multi-head self-attention that reads its keys and values through the cache."""

    def __init__(self, dim: int, heads: int, layer_idx: int):
        super().__init__()
        self.heads, self.layer_idx = heads, layer_idx
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        past = 0
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
            past = k.shape[-2] - t
        if past == 0:
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # query i (absolute position past + i) sees keys 0 .. past + i
            mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, layer_idx: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads, layer_idx)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache=cache)
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    """eden's bundled byte-level GPT: 2 pre-norm blocks of width 128, 4 heads, context 64.

    Learned token and position embeddings, GELU MLPs, an untied LM head (~0.47 M
    parameters, 1.9 MB in fp32). Follows the cache convention of this module.
    """

    def __init__(self, vocab: int = 256, dim: int = 128, layers: int = 2, heads: int = 4,
                 context: int = TINY_LM_CONTEXT):
        super().__init__()
        self.context_length = context
        self.tokenizer = ByteTokenizer()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(_Block(dim, heads, i) for i in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids: torch.Tensor, cache=None, use_cache: bool = True) -> torch.Tensor:
        if cache is None and use_cache:
            cache = KVCache()
        past = cache.get_seq_length() if cache is not None else 0
        t = input_ids.shape[1]
        if past + t > self.context_length:
            raise EdenDataError(f"TinyLM: {past} cached + {t} new tokens exceed its context of "
                                f"{self.context_length} tokens")
        pos = torch.arange(past, past + t, device=input_ids.device)
        x = self.tok(input_ids) + self.pos(pos)
        for block in self.blocks:
            x = block(x, cache=cache)
        return self.head(self.norm(x))


# ------------------------------------------------------------------------ Hugging Face
def _is_hf(model: nn.Module) -> bool:
    return hasattr(model, "config") and type(model).__module__.startswith("transformers.")


def _need_transformers(what: str):
    try:
        import transformers
    except ImportError:
        raise EdenConfigError(f"{what} needs the optional package transformers: pip install 'eden-dram[llm]'") from None
    return transformers


def _logits_only(module, args, output):
    return output.logits if hasattr(output, "logits") else output


def load_hf(directory: str | os.PathLike) -> nn.Module:
    """A Hugging Face causal LM from a local directory (``save_pretrained``), in eval mode.

    Nothing is downloaded: the directory must hold ``config.json`` and the weights. The
    model's forward returns the logits tensor (a forward hook eden adds), its tokenizer
    (when the directory holds one) is loaded on first use by :func:`tokenizer_of`.

    Raises:
        EdenFileNotFoundError: no such directory.
        EdenFileError: a directory that is not a model (no config.json, no weights, a config
            that is no causal LM); the message names the directory and what was expected.
        EdenConfigError: transformers is not installed (``eden-dram[llm]``).
    """
    path = Path(directory)
    if not path.is_dir():
        raise EdenFileNotFoundError(errno.ENOENT, "no such model directory (hf:DIR needs a local directory made "
                                    "by save_pretrained; eden downloads nothing)", str(path))
    if not (path / "config.json").is_file():
        raise EdenFileError(path, "config.json", "not a Hugging Face model directory: expected config.json and "
                            "the weights (model.safetensors) written by save_pretrained")
    transformers = _need_transformers(f"hf:{path}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise EdenFileError(path, "config.json", f"not a readable model config: {str(exc).splitlines()[0]}") from None
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(path, local_files_only=True, config=config)
    except ValueError as exc:
        raise EdenFileError(path, "config.json", f"model type {getattr(config, 'model_type', '?')!r} is not a "
                            f"causal LM transformers knows: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise EdenFileError(path, "/", f"no loadable weights (expected model.safetensors or pytorch_model.bin): "
                            f"{str(exc).splitlines()[0]}") from None
    model.register_forward_hook(_logits_only)
    model.eden_source = str(path)
    return model.eval()


def tokenizer_of(model: nn.Module):
    """The model's tokenizer: its ``tokenizer`` attribute, or the one saved with an ``hf:`` model.

    Raises:
        EdenFileError: an ``hf:`` directory without tokenizer files.
        EdenConfigError: a model with no tokenizer at all.
    """
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        return tok
    source = getattr(model, "eden_source", None)
    if source is not None:
        transformers = _need_transformers("a Hugging Face tokenizer")
        path = Path(source)
        if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                                  "vocab.json")):
            raise EdenFileError(path, "tokenizer.json", "the model directory holds no tokenizer (expected "
                                "tokenizer.json or tokenizer_config.json, as tokenizer.save_pretrained writes); "
                                "save the tokenizer next to the model")
        try:
            tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EdenFileError(path, "tokenizer.json", f"cannot load the tokenizer: {str(exc).splitlines()[0]}") \
                from None
        model.tokenizer = tok
        return tok
    raise EdenConfigError(f"model {type(model).__name__} has no tokenizer: text data needs a model with a "
                          "`tokenizer` attribute (encode(str) -> list[int]) or an hf:DIR model with its tokenizer")


def context_of(model: nn.Module, default: int = 256) -> int:
    """Tokens per window for ``model``: its ``context_length``, else a Hugging Face config's
    ``max_position_embeddings`` capped at ``default``, else ``default``."""
    n = getattr(model, "context_length", None)
    if isinstance(n, int) and n > 0:
        return n
    cfg = getattr(model, "config", None)
    m = getattr(cfg, "max_position_embeddings", None)
    return min(int(m), default) if isinstance(m, int) and m > 0 else default


def logits_of(outputs: Any) -> torch.Tensor:
    """The logits tensor of a model's outputs (a tensor, or an object with ``logits``)."""
    return outputs.logits if hasattr(outputs, "logits") else outputs


# ------------------------------------------------------------------------ text data
def corpus_text(split: str = "train") -> str:
    """The bundled corpus: the help topics of Python's ``pydoc_data.topics`` (shipped with CPython).

    Topics are taken in sorted key order; every :data:`TEST_EVERY`-th one (indices 0, 10, ...)
    is the ``test`` split, the others ``train`` (whole documents, never a topic in both).
    The text differs between Python versions; :func:`corpus_fingerprint` identifies it.
    """
    from pydoc_data.topics import topics

    if split not in ("train", "test"):
        raise EdenConfigError(f"unknown split {split!r} of the bundled corpus; known: train, test")
    keys = sorted(topics)
    chosen = [k for i, k in enumerate(keys) if (i % TEST_EVERY == 0) == (split == "test")]
    return "\n\n".join(topics[k] for k in chosen)


def corpus_fingerprint() -> str:
    """sha256 of the bundled corpus (both splits): which Python's help topics these are."""
    return hashlib.sha256((corpus_text("train") + "\x00" + corpus_text("test")).encode()).hexdigest()


def corpus_tokens(split: str = "train") -> torch.Tensor:
    return torch.tensor(ByteTokenizer().encode(corpus_text(split)), dtype=torch.int64)


def text_windows(tokens: torch.Tensor, context: int, *, source: str = "text",
                 max_windows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each ``[N, context]``: non-overlapping windows of ``context + 1`` tokens.

    Raises:
        EdenDataError: fewer than ``context + 1`` tokens (not one whole window).
    """
    context = check_int("context", context, lo=1)
    n = (tokens.numel() - 1) // context
    if n < 1:
        raise EdenDataError(f"{source} has {tokens.numel()} tokens, shorter than one context of {context} tokens "
                            f"plus the next one ({context + 1}); give a longer text or a shorter context")
    if max_windows is not None:
        n = min(n, max_windows)
    body = tokens[: n * context + 1]
    inputs = body[:-1].reshape(n, context)
    targets = body[1:].reshape(n, context)
    return inputs.contiguous(), targets.contiguous()


def _loader(inputs, targets, batch_size: int, shuffle: bool = False, seed: int = 0):
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, targets), batch_size=batch_size,
                                       shuffle=shuffle, generator=gen)


def pydoc_topics_loader(split: str = "test", batch_size: int = 64, shuffle: bool = False, seed: int = 0):
    """The bundled corpus as windows of :data:`TINY_LM_CONTEXT` byte tokens (test: the first
    :data:`TEST_WINDOWS` windows)."""
    x, y = text_windows(corpus_tokens(split), TINY_LM_CONTEXT, source=f"the bundled corpus ({split})",
                        max_windows=TEST_WINDOWS if split == "test" else None)
    return _loader(x, y, batch_size, shuffle, seed)


def parse_text_spec(spec: str) -> tuple[Path, int | None]:
    """``text:FILE`` or ``text:FILE:N`` -> (path, context or None)."""
    body = spec[len("text:"):]
    head, sep, tail = body.rpartition(":")
    if sep and tail.isdigit() and head:
        return Path(head), int(tail)
    return Path(body), None


def text_loader(spec: str, model: nn.Module, batch_size: int = 64):
    """A DataLoader of (inputs, targets) windows of a local text file for ``model``.

    Args:
        spec: ``text:FILE`` or ``text:FILE:N`` (N: tokens per window; default
            :func:`context_of` the model).
        model: the model whose tokenizer (:func:`tokenizer_of`) tokenizes the file.

    Raises:
        EdenFileNotFoundError: no such file. EdenFileError: not UTF-8 text.
        EdenDataError: the text is shorter than one context.
    """
    path, context = parse_text_spec(spec)
    if not path.is_file():
        raise EdenFileNotFoundError(errno.ENOENT, "no such text file (--data text:FILE)", str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EdenFileError(path, f"byte {exc.start}", "not UTF-8 text") from None
    tok = tokenizer_of(model)
    ids = tok.encode(text)
    if hasattr(ids, "input_ids"):
        ids = ids.input_ids
    tokens = torch.tensor(list(ids), dtype=torch.int64)
    x, y = text_windows(tokens, context or context_of(model), source=f"text file {path}")
    return _loader(x, y, batch_size)


def stepwise_logits(model: nn.Module, input_ids: torch.Tensor, prefill: int = 1) -> torch.Tensor:
    """Logits ``[B, T, V]`` of ``input_ids`` computed as decoding does: a prefill of the first
    ``prefill`` tokens, then one forward pass per token through the KV cache (teacher forcing).

    A teacher-forced forward pass writes every cache entry once and reads it once, so the KV
    semantics ``access`` and ``stored`` draw the same bits there; here every decode step reads
    the whole cache again, where the two differ.
    """
    t = input_ids.shape[1]
    prefill = check_int("prefill", prefill, lo=1, hi=t)
    cache = new_cache(model)
    out = [logits_of(model(input_ids[:, :prefill], cache=cache))]
    for i in range(prefill, t):
        out.append(logits_of(model(input_ids[:, i:i + 1], cache=cache)))
    return torch.cat(out, dim=1)


class Stepwise(nn.Module):
    """``model`` evaluated by :func:`stepwise_logits` (its data types keep their names: the wrapped
    model is not a submodule but held aside)."""

    def __init__(self, model: nn.Module, prefill: int = 1):
        super().__init__()
        self.__dict__["_inner"] = model
        self.prefill = prefill

    @property
    def inner(self) -> nn.Module:
        return self.__dict__["_inner"]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return stepwise_logits(self.inner, input_ids, self.prefill)


def perplexity(neg_nll: float) -> float:
    """Perplexity from the ``neg_nll`` metric (``exp(-neg_nll)``)."""
    return math.exp(-neg_nll)
