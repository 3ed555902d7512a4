"""Autoregressive decoding traffic (eden.power.decode) against a hand count on a 2-layer model."""

import pytest

from eden.errors import EdenConfigError
from eden.power.decode import Generation, generation_report, generation_traffic, merge_reports
from eden.power.memspec import MemSpec
from eden.power.traffic import energy_report

# A 2-layer LM, fp32: width 8, 2 KV heads of dim 2 (K/V entry: 2 * 2 * 4 = 16 B per token), vocabulary 10.
TENSORS = [
    ("emb.weight", "weight", 10 * 8 * 4),
    ("l0.attn.qkv.weight", "weight", 24 * 8 * 4), ("l0.attn.qkv.ifm", "ifm", 8 * 4),
    ("l0.attn.k_cache", "kv_cache", 16), ("l0.attn.v_cache", "kv_cache", 16),
    ("l1.attn.qkv.weight", "weight", 24 * 8 * 4), ("l1.attn.qkv.ifm", "ifm", 8 * 4),
    ("l1.attn.k_cache", "kv_cache", 16), ("l1.attn.v_cache", "kv_cache", 16),
    ("head.weight", "weight", 10 * 8 * 4), ("head.ifm", "ifm", 8 * 4),
]
P, N, B = 3, 4, 2  # prompt 3 tokens, 4 decode steps, 2 sequences


def _by_name(traffic):
    return {t.name: (t.bytes_read, t.bytes_written, t.footprint_bytes) for t in traffic}


def test_prefill_hand_count():
    t = _by_name(generation_traffic(TENSORS, Generation(P, N, B), "prefill"))
    assert t["l0.attn.qkv.weight"] == (768, 0, 768)  # every weight once
    assert t["head.ifm"] == (3 * 2 * 32, 3 * 2 * 32, 3 * 2 * 32)  # per token and sequence, written and read once
    # the prompt's 3 entries of each of 2 sequences: written once, read once by the prefill's attention
    assert t["l1.attn.v_cache"] == (96, 96, 96)


def test_decode_hand_count():
    t = _by_name(generation_traffic(TENSORS, Generation(P, N, B), "decode"))
    assert t["emb.weight"] == (4 * 320, 0, 320)  # weights read once per step
    assert t["l1.attn.qkv.ifm"] == (4 * 2 * 32, 4 * 2 * 32, 2 * 32)  # one token per step and sequence
    # steps read 4, 5, 6, 7 entries (the cache as it grows, the new entry included) of 16 B, for 2 sequences
    assert t["l0.attn.k_cache"] == ((4 + 5 + 6 + 7) * 16 * 2, 4 * 16 * 2, (3 + 4) * 16 * 2)
    assert Generation(P, N, B).kv_entries_read == 22
    total_read = sum(r for r, _, _ in t.values())
    assert total_read == 4 * (320 + 768 + 768 + 320) + 3 * (4 * 2 * 32) + 4 * (22 * 16 * 2)


@pytest.fixture(scope="module")
def device():
    from eden.dram.profiles import load_profile

    prof = load_profile("ddr4-2400-8gb-x8")
    return MemSpec.from_profile(prof), prof.organization.to_address()


def test_per_token_energy_and_time_are_the_phases_over_the_generated_tokens(device):
    spec, org = device
    gen = Generation(P, N, B)
    rep = generation_report(TENSORS, gen, spec, org, vdd_v=spec.vdd.v * 0.9, decode_memory_bound_fraction=0.8)
    pre = energy_report(generation_traffic(TENSORS, gen, "prefill"), spec, org, vdd_v=spec.vdd.v * 0.9,
                        memory_bound_fraction=0.5)
    dec = energy_report(generation_traffic(TENSORS, gen, "decode"), spec, org, vdd_v=spec.vdd.v * 0.9,
                        memory_bound_fraction=0.8)
    pt = rep.per_token()
    n = N * B
    assert pt["energy_nominal_j"] == pytest.approx((pre.nominal.total.total + dec.nominal.total.total) / n)
    assert pt["energy_operating_j_decode"] == pytest.approx(dec.operating.total.total / n)
    assert pt["dram_time_nominal_s_decode"] == pytest.approx(dec.latency.access_time_nominal_s / n)
    assert pt["decode_step_time_nominal_s"] == pytest.approx(dec.latency.access_time_nominal_s / 0.8 / N)
    assert pt["energy_operating_j"] < pt["energy_nominal_j"]  # lower VDD saves energy
    merged = rep.total
    assert merged.data_types[3].counts.wr == pre.data_types[3].counts.wr + dec.data_types[3].counts.wr
    assert merged.latency.memory_bound_fraction == pytest.approx(
        (pre.latency.access_time_nominal_s + dec.latency.access_time_nominal_s)
        / (pre.run_time_nominal_s + dec.run_time_nominal_s))
    assert "per generated token" in rep.describe()


def test_bad_generation_inputs(device):
    spec, org = device
    with pytest.raises(EdenConfigError, match="new_tokens"):
        Generation(4, 0, 1)
    with pytest.raises(EdenConfigError, match="kind of tensor"):
        generation_traffic([("x", "activation", 4)], Generation(), "decode")
    with pytest.raises(EdenConfigError, match="phase"):
        generation_traffic(TENSORS, Generation(), "training")
    with pytest.raises(EdenConfigError, match="same data types"):
        merge_reports(*[energy_report(generation_traffic(t, Generation(), "decode"), spec, org)
                        for t in (TENSORS, TENSORS[:2])])
