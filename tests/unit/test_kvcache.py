"""The KV cache as data types: both semantics proven, exact restore, layouts, placement."""

import numpy as np
import pytest
import torch
from scipy.stats import binom
from torch import nn

from eden.errors import EdenConfigError, EdenDataError
from eden.nn import kvcache
from eden.nn.emulate import DataTypeConfig, EmulationPlan, datatypes, emulate
from eden.nn.lm import KVCache, TinyLM

P = 0.01  # BER of the cache in these tests


class _Att(nn.Module):
    """A one-layer 'attention' that returns the keys and values it read from the cache."""

    def __init__(self):
        super().__init__()
        self.layer_idx = 0
        self.proj = nn.Linear(8, 8)  # a parameter, so the model has weights too

    def forward(self, x, cache=None):
        k = x.view(x.shape[0], 1, x.shape[1], 8)  # [B, H=1, T, D=8]
        return cache.update(k, 2 * k, self.layer_idx)


class _LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = _Att()

    def forward(self, x, cache=None):
        return self.attn(x, cache=KVCache() if cache is None else cache)  # the convention: a cache of its own


def _bits(t):
    return t.detach().contiguous().view(torch.int32).clone()


def _plan(select="*_cache", p=P):
    return EmulationPlan.uniform(f"em0:p={p}", select=select)


def _prefill(n_tokens=256, batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_tokens, 8, generator=g) + 3.0  # away from 0: every bit matters


def test_kv_datatypes_are_listed_per_attention_module_with_shapes():
    m = TinyLM()
    dts = {d.name: d for d in datatypes(m, torch.zeros(3, 10, dtype=torch.int64))}
    for layer in (0, 1):
        for kv in ("k_cache", "v_cache"):
            d = dts[f"blocks.{layer}.attn.{kv}"]
            assert d.kind == "kv_cache" and d.module == f"blocks.{layer}.attn"
            assert d.shape == (3, 4, 10, 32) and d.numel == 3 * 4 * 10 * 32
    # without an example input the names are there, unmeasured
    assert {d.name: d.numel for d in datatypes(m)}["blocks.1.attn.v_cache"] == 0


def test_stored_corruption_stays_for_later_tokens_and_is_undone_exactly():
    m, x = _LM(), _prefill()
    clean = KVCache()
    m(x, cache=clean)
    for t in range(3):
        m(_prefill(1, seed=10 + t), cache=clean)
    cache = KVCache()
    with torch.no_grad(), emulate(m, _plan(), seed=5, kv_semantics="stored") as emu:
        k_read, _ = m(x, cache=cache)
        after_prefill = _bits(cache.keys[0])
        diff = torch.bitwise_xor(after_prefill, _bits(clean.keys[0][:, :, :256]))
        n_bits = int(np.unpackbits(diff.numpy().view(np.uint8)).sum())
        assert n_bits > 0
        assert torch.equal(_bits(k_read), after_prefill)  # what attention read is what is stored
        for t in range(3):  # later tokens read the same corrupted entries
            k_read, _ = m(_prefill(1, seed=10 + t), cache=cache)
            assert torch.equal(_bits(k_read[:, :, :256]), after_prefill)
        assert emu.stats["attn.k_cache"].injections == 4  # one write per update, never on a read
    nbits = 256 * 4 * 8 * 32
    lo, hi = binom.ppf(1e-6, nbits, P), binom.isf(1e-6, nbits, P)
    assert lo <= n_bits <= hi
    # clean values come back bit-exactly, also for the entries the later updates concatenated
    assert torch.equal(_bits(cache.keys[0]), _bits(clean.keys[0]))
    assert torch.equal(_bits(cache.values[0]), _bits(clean.values[0]))


def test_access_persistence_redraws_on_every_read_and_never_touches_the_store():
    m, x = _LM(), _prefill()
    cache = KVCache()
    with torch.no_grad(), emulate(m, _plan(select="attn.k_cache"), seed=5, kv_semantics="access") as emu:
        k1, v1 = m(x, cache=cache)
        stored = _bits(cache.keys[0])
        k2, _ = m(_prefill(1, seed=1), cache=cache)
        # the store stays clean; each read is its own corruption of it
        assert torch.equal(stored, _bits(x.view(4, 1, 256, 8)))
        first, second = _bits(k1), _bits(k2[:, :, :256])
        changed1 = int((first != stored).sum())
        both = int(((first != stored) & (second != stored)).sum())
        assert changed1 > 0 and not torch.equal(first, second)
        # redrawn: a word corrupted on the first read is corrupted again only by chance (access
        # persistence draws independently); with ~8 words per 1000 hit per read, overlaps are rare
        n_words = first.numel()
        q = 1 - (1 - P) ** 32
        assert both <= binom.isf(1e-6, n_words, q * q)
        assert torch.equal(_bits(v1), _bits(2 * x.view(4, 1, 256, 8)))  # V not selected: exact
        assert emu.stats["attn.k_cache"].injections == 2  # one per read
        assert "attn.v_cache" not in emu.stats
    assert torch.equal(_bits(cache.keys[0][:, :, :256]), _bits(x.view(4, 1, 256, 8)))


def test_model_state_and_every_cache_restored_after_tiny_lm_decoding():
    m = TinyLM().eval()
    ids = torch.randint(0, 256, (2, 20))
    state = {k: v.clone() for k, v in m.state_dict().items()}
    clean = KVCache()
    with torch.no_grad():
        ref = m(ids)
        m(ids[:, :12], cache=clean)
        for t in range(12, 20):
            m(ids[:, t:t + 1], cache=clean)
    for sem, select in (("access", "*"), ("stored", "*_cache")):
        cache = KVCache()
        plan = EmulationPlan.uniform("em0:p=1e-3", correction="zero", select=select)
        with torch.no_grad(), emulate(m, plan, seed=1, kv_semantics=sem):
            m(ids[:, :12], cache=cache)
            for t in range(12, 20):
                m(ids[:, t:t + 1], cache=cache)
        if select != "*_cache":  # errors upstream (weights, IFMs) change what is written to the cache
            continue
        # layer 0's keys and values depend on the tokens only (layer 1's on what layer 0 read)
        for layer in (0,):
            assert torch.equal(_bits(cache.keys[layer]), _bits(clean.keys[layer]))
            assert torch.equal(_bits(cache.values[layer]), _bits(clean.values[layer]))
        assert all(torch.equal(v.view(torch.uint8), state[k].view(torch.uint8)) for k, v in m.state_dict().items())
        with torch.no_grad():
            assert torch.equal(m(ids), ref)


def test_cache_placement_is_token_major_and_plan_independent():
    m = _LM()
    emu = emulate(m, _plan())
    with emu:
        kv = emu._kv
        assert kv is not None
        k, v = kv.base["attn.k_cache"], kv.base["attn.v_cache"]
        assert v - k == kv.slot_bytes and kv.slot_bytes % emu.address_map.organization.row_bytes == 0
        assert emu._ifm_region[1] <= k  # IFMs below, caches above
        # the entry of token p lives at slot + p * entry_bytes
        assert kv._place("attn.k_cache", 3, 1, 128) == k + 3 * 128
    with emulate(m, EmulationPlan.uniform("em0:p=1e-3", select="attn.proj.weight")) as other:
        assert other._kv.base == kv.base


def test_kv_formats_other_than_the_cache_dtype_work_in_both_semantics():
    m, x = _LM(), _prefill(32)
    for sem in ("access", "stored"):
        cache = KVCache()
        plan = EmulationPlan((("*_cache", DataTypeConfig("em0:p=1e-3", "int8")),))
        with torch.no_grad(), emulate(m, plan, seed=2, kv_semantics=sem):
            k, _ = m(x, cache=cache)
            assert (k - x.view(4, 1, 32, 8)).abs().max() > 0
        assert torch.equal(_bits(cache.keys[0]), _bits(x.view(4, 1, 32, 8)))


def test_unknown_cache_layout_and_bad_semantics_are_clear_errors():
    class Flat(_Att):
        def forward(self, x, cache=None):
            return cache.update(x, x, self.layer_idx)  # 3-D: not [B, H, T, D]

    class FlatLM(_LM):
        def __init__(self):
            super().__init__()
            self.attn = Flat()

    class NoUpdate:
        pass

    m = FlatLM()
    with pytest.raises(EdenDataError, match="unknown cache layout in 'attn'"), emulate(m, _plan()):
        m(torch.ones(2, 4, 8), cache=KVCache())
    m = _LM()
    with pytest.raises(EdenDataError, match="no update"), emulate(m, _plan()):
        m(_prefill(2), cache=NoUpdate())
    with pytest.raises(EdenConfigError, match="KV cache semantics"):
        emulate(m, _plan(), kv_semantics="sometimes")
    with pytest.raises(EdenDataError, match="unknown cache layout"):
        datatypes(FlatLM(), torch.ones(2, 4, 8))


def test_shared_layer_idx_is_an_unknown_layout():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = _Att(), _Att()

    with pytest.raises(EdenDataError, match="share layer_idx 0"):
        kvcache.KVCacheEmulation(Two(), {}, {}, lambda n: 0, emulate(Two(), None).address_map, (0, 1 << 20),
                                 "auto", "access")


def test_gradients_pass_straight_through_kv_errors():
    m = TinyLM()
    ids = torch.randint(0, 256, (2, 16))
    with emulate(m, EmulationPlan.uniform("em0:p=1e-3", correction="zero", select="*_cache"), seed=0,
                 kv_semantics="stored"):
        m(ids).logsumexp(-1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters() if p.requires_grad)
