"""eml: per-access line events (a fixed group of member bits of a weak line failing together).

Statistical checks use exact binomial bounds at level 1e-6 with fixed seeds (deterministic).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from eden.dram.address import DEFAULT_ADDRESS_MAP, DramOrganization
from eden.dram.fit import RecordStats, fit, simulate_records, unit_stats
from eden.dram.raw import RawCharacterization
from eden.engine.backends import reference
from eden.engine.events import line_event_bits, merge_events
from eden.engine.group import InjectorGroup
from eden.engine.lean import lean_injection
from eden.engine.ops import Injector, inject_
from eden.engine.plan import cached_plan, compile_plan
from eden.errormodels.component import WeakLines
from eden.errormodels.components import LineEvents, component_class
from eden.errormodels.components.eml import LINE_BITS
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError
from eden.formats import get_format

ALPHA = 1e-6
ROW_BITS = DEFAULT_ADDRESS_MAP.organization.row_bits


def _plan(spec: str, nbytes: int, seed: int = 5, access: int = 0, base_address: int = 0):
    return compile_plan(ErrorModel.from_spec(spec), word_bits=32, nbytes=nbytes, seed=seed, access=access,
                        base_address=base_address, address_map=DEFAULT_ADDRESS_MAP)


def _flips(plan) -> np.ndarray:
    """bool[n_tiles, row_bits] flipped bits (tensor at address 0, whole rows; zero words)."""
    words = np.zeros((plan.bit_hi - plan.bit_lo) // 32, np.uint32)
    idx, mask = reference.sample_flips(plan, words)
    out = np.zeros(words.size * 32, bool)
    out.reshape(-1, 32)[idx] = np.unpackbits(mask.view(np.uint8), bitorder="little").reshape(-1, 32).astype(bool)
    return out.reshape(plan.n_tiles, plan.row_bits)


def _weak_tile_lines(plan):
    """[(tile, block, members int64[])] of every weak line position of every weak-row tile."""
    out = []
    weak_row = plan.tile_wlclass[plan.ev_wl[0]] == 1
    for t in np.flatnonzero(weak_row):
        g = int(plan.tile_group[t])
        for j in range(plan.ev_blk_off[0, g], plan.ev_blk_off[0, g + 1]):
            out.append((int(t), int(plan.ev_blk[j]), plan.ev_mem[plan.ev_mem_off[j]:plan.ev_mem_off[j + 1]]))
    return out


def _inside(p, k, n):
    lo, hi = stats.binom.interval(1 - ALPHA, n, p)
    return lo <= k <= hi


SPEC = "eml:line_fraction=0.25,wl_fraction=0.5,bit_fraction=0.02,e=0.3,p_else=0"


def test_members_flip_together_and_nothing_else_flips():
    """p_else = 0: each weak line of a weak row flips exactly its member set or nothing, every
    other bit stays, and the share of lines with an event is Binomial(lines with members, e)."""
    plan = _plan(SPEC, nbytes=1024 * ROW_BITS // 8)
    flips = _flips(plan)
    expect = np.zeros_like(flips)
    lines = _weak_tile_lines(plan)
    n_lines = events = 0
    for t, b, mem in lines:
        seg = flips[t, b * LINE_BITS:(b + 1) * LINE_BITS]
        got = np.flatnonzero(seg) + b * LINE_BITS
        assert np.all((mem >= b * LINE_BITS) & (mem < (b + 1) * LINE_BITS))
        if len(mem):
            n_lines += 1
            assert len(got) == 0 or np.array_equal(got, mem), (t, b)
            events += len(got) > 0
            if len(got):
                expect[t, mem] = True
        else:
            assert len(got) == 0
    assert np.array_equal(flips, expect)  # nothing outside the events
    assert n_lines > 5000 and _inside(0.3, events, n_lines), (events, n_lines)
    # members: Binomial(512, bit_fraction) per weak line position (positions of distinct (group, block))
    pos = {(int(plan.tile_group[t]), b): len(m) for t, b, m in lines}
    sizes = np.array(list(pos.values()))
    assert _inside(0.02, int(sizes.sum()), len(sizes) * LINE_BITS)


def test_events_are_per_access_and_fixed_under_fixed_persistence():
    n = 256 * ROW_BITS // 8
    a0, a1 = (_flips(_plan(SPEC, n, access=a)) for a in (0, 1))
    assert a0.any() and not np.array_equal(a0, a1)
    # the same weak lines (rows fail again), mostly other lines of them
    f0, f1 = (_flips(_plan(SPEC + ";persistence=fixed", n, access=a)) for a in (0, 1))
    assert f0.any() and np.array_equal(f0, f1)
    # through cached_plan's per-access keys too
    cp = cached_plan(ErrorModel.from_spec(SPEC), word_bits=32, nbytes=n, seed=5, base_address=0,
                     address_map=DEFAULT_ADDRESS_MAP)
    assert np.array_equal(cp.at(1).ev_key, _plan(SPEC, n, access=1).ev_key)
    assert not np.array_equal(cp.at(0).ev_key, cp.at(1).ev_key)


def test_maps_and_fixed_events_are_nested():
    n = 256 * ROW_BITS // 8
    base = dict(line_fraction=0.2, wl_fraction=0.3, bit_fraction=0.02, e=0.2, p_else=0.0)

    def spec(**kw):
        return LineEvents(**{**base, **kw}).to_spec() + ";persistence=fixed"

    def weak(plan):
        return {(int(plan.tile_row_id[t]), b): set(m.tolist()) for t, b, m in _weak_tile_lines(plan)}

    small, large = weak(_plan(spec(), n)), weak(_plan(spec(line_fraction=0.5, wl_fraction=0.6), n))
    assert 0 < len(small) < len(large) and set(small) <= set(large)
    assert all(small[k] == large[k] for k in small)  # same member sets
    few, many = weak(_plan(spec(bit_fraction=0.01), n)), weak(_plan(spec(bit_fraction=0.05), n))
    assert set(few) == set(many) and all(few[k] <= many[k] for k in few)
    assert sum(map(len, few.values())) < sum(map(len, many.values()))
    lo, hi = _flips(_plan(spec(e=0.1), n)), _flips(_plan(spec(e=0.4), n))
    assert lo.sum() < hi.sum() and not (lo & ~hi).any()


@pytest.mark.parametrize("persistence", ["", ";persistence=fixed"])
def test_oracle_equals_numba(persistence):
    pytest.importorskip("numba")
    spec = ("eml:line_fraction=0.2,wl_fraction=0.25,bit_fraction=0.014,e=0.3,p_else=1e-5"
            "+em1:fraction=0.01,p=1e-3" + persistence)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(600_000).astype(np.float32))
    outs = []
    for backend in ("reference", "cpu"):
        y = x.clone()
        log = inject_(y, spec, seed=9, access=3, base_address=8192 * 5 + 128, backend=backend)
        idx, mask = log.word_flips()
        assert np.all(np.diff(idx) > 0)  # the log's contract: unique increasing word indices
        outs.append((y.numpy().view(np.uint32).copy(), log.n_bits, idx, mask))
        log.undo()
        assert torch.equal(y, x)
    assert outs[0][1] > 1000
    assert np.array_equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]
    assert np.array_equal(outs[0][2], outs[1][2]) and np.array_equal(outs[0][3], outs[1][3])
    # the event bits alone: the numba kernel against the oracle, tensors cut anywhere in a line
    from eden.engine.backends import cpu

    for access, base in ((0, 0), (1, 8192 * 3 + 40), (2, 8192 * 7 + 4)):
        plan = _plan(spec, nbytes=300_000, access=access, base_address=base)
        want = line_event_bits(plan)
        assert len(want) > 100 and np.array_equal(cpu.line_event_bits(plan), want)


def test_merge_keeps_the_union_and_the_packed_paths_step_aside():
    words = np.zeros(4, np.uint32)
    idx, mask = np.array([1, 3], np.int64), np.array([0b101, 0b1], np.uint32)
    words[idx] ^= mask
    bits = np.array([32 + 0, 32 + 1, 64 + 4, 96 + 0], np.int64)  # words 1 (overlap), 2, 3 (same bit)
    i, m = merge_events(np, words, idx, mask, bits, 32)
    assert i.tolist() == [1, 2, 3] and m.tolist() == [0b111, 0b10000, 0b1]
    assert words.tolist() == [0, 0b111, 0b10000, 0b1]
    # the packed CPU paths (lean.py, group.py) do not draw events: an eml Injector takes cpu.inject
    inj = Injector(ErrorModel.from_spec(SPEC), get_format("fp32"), 1 << 20, seed=1, base_address=0)
    assert inj.compiled.plan.has_events and lean_injection(inj) is None
    plain = Injector(ErrorModel.from_spec("em0:p=1e-3"), get_format("fp32"), 1 << 20, seed=1, base_address=1 << 20)
    assert not plain.compiled.plan.has_events
    # InjectorGroup: the eml Injector runs alone, with the same bits as on its own
    group = InjectorGroup([inj, plain])
    x = [torch.randn(1 << 18, generator=torch.Generator().manual_seed(i)) for i in (1, 2)]
    y = [t.clone() for t in x]
    logs = group(y, [inj.words(y[0]), plain.words(y[1])], 4)
    z = x[0].clone()
    alone = inj(z, inj.words(z), 4)
    assert logs[0].n_bits == alone.n_bits > 0 and torch.equal(y[0].view(torch.int32), z.view(torch.int32))


def test_spec_and_hdf5_round_trip(tmp_path):
    model = ErrorModel.from_spec("eml:line_fraction=0.125,wl_fraction=0.06,bit_fraction=0.0138,e=0.16,p_else=3.5e-06")
    assert ErrorModel.from_spec(model.to_spec()) == model
    path = tmp_path / "eml.h5"
    model.save(path)
    assert ErrorModel.load(path) == model
    comp = model.components[0]
    assert component_class("eml") is LineEvents and comp.weak_lines is WeakLines.BOTH
    assert comp.weak_fractions() == {WeakLines.BITLINES: 0.125, WeakLines.WORDLINES: 0.06}
    scaled = comp.scaled(2.0)
    assert (scaled.line_fraction, scaled.bit_fraction, scaled.e, scaled.p_else) == (0.125, 0.0138, 0.32, 7e-6)
    # expected BER: background, or a member of a weak line of a weak row in an event
    f = 0.125 * 0.06 * 0.0138 * 0.16
    assert model.expected_ber() == pytest.approx(1 - (1 - 3.5e-6) * (1 - f), rel=1e-12)


def test_bad_parameters_are_refused(monkeypatch):
    with pytest.raises(EdenConfigError, match="eml.bit_fraction"):
        ErrorModel.from_spec("eml:bit_fraction=1.5")
    with pytest.raises(EdenConfigError, match="unknown parameter 'p' for eml"):
        ErrorModel.from_spec("eml:p=0.1")
    with pytest.raises(EdenConfigError, match="eml needs rows of whole 512-bit lines"):
        simulate_records("eml:line_fraction=0.5,wl_fraction=0.5,bit_fraction=0.1,e=0.5",
                         DramOrganization(banks=1, rows=16, row_bytes=32))

    # a component with line events must draw both weak-line maps
    monkeypatch.setattr(LineEvents, "weak_fractions", lambda self: {WeakLines.BITLINES: self.line_fraction})
    with pytest.raises(ValueError, match="line events need both weak-line maps"):
        _plan(SPEC, 1 << 16)


def test_simulated_records_hold_whole_member_groups():
    """simulate_records: with p_else = 0, every faulty line of a sweep holds exactly its line
    position's member count (the same in every row), and those counts average E[k | k > 0]."""
    truth = LineEvents(line_fraction=0.25, wl_fraction=0.2, bit_fraction=0.014, e=0.3, p_else=0.0)
    org = DramOrganization(banks=4, rows=4096, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((truth,)), org, seed=8, iterations=2, column_bits=512, per_iteration=True)
    pos = (t.bank.astype(np.int64) * 8 + t.row // 512) * 128 + t.column
    uniq, inv = np.unique(pos, return_inverse=True)
    k = np.zeros(uniq.size, np.int64)
    k[inv] = t.count
    assert np.array_equal(k[inv], t.count)  # one count per line position
    mean, var = stats.binom.mean(512, 0.014), stats.binom.var(512, 0.014)
    p0 = stats.binom.pmf(0, 512, 0.014)
    m1 = mean / (1 - p0)
    v1 = (var + mean ** 2) / (1 - p0) - m1 ** 2
    assert abs(k.mean() - m1) < 5 * np.sqrt(v1 / k.size), (k.mean(), m1)
    assert truth.events_per_faulty_line() == pytest.approx(m1)
    # sweeps: the errors of sweep 1 repeat in rows more than in lines
    s = unit_stats(t, org)
    assert 0.2 < s["repeat_error_fraction"] < 0.5


def test_fit_recovers_a_planted_model_and_is_selected():
    truth = LineEvents(line_fraction=0.125, wl_fraction=0.1, bit_fraction=0.014, e=0.3, p_else=2e-7)
    org = DramOrganization(banks=2, rows=4096, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((truth,)), org, seed=21, iterations=2, column_bits=512, per_iteration=True)
    r = fit(RawCharacterization((t,), org), gof=False)
    assert r.selected == "eml"
    best = r.candidate("eml")
    for name in ("line_fraction", "wl_fraction", "bit_fraction", "e", "p_else"):
        est = best.estimate(f"eml.{name}")
        assert est.contains(getattr(truth, name)), (est, getattr(truth, name))
    assert best.loglik > r.candidate("emc").loglik > r.candidate("em1+em2").loglik
    fine = simulate_records(ErrorModel((truth,)), DramOrganization(banks=1, rows=512, row_bytes=8192), seed=2,
                            column_bits=64)
    r2 = fit(RawCharacterization((fine,), DramOrganization(banks=1, rows=512, row_bytes=8192)), gof=False)
    assert "eml" in r2.excluded and "64-bit unit" in r2.excluded["eml"]


def test_goodness_of_fit_margins_have_the_model_means():
    comp = LineEvents(line_fraction=0.25, wl_fraction=0.2, bit_fraction=0.02, e=0.3, p_else=1e-6)
    org = DramOrganization(banks=2, rows=2048, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((comp,)), org, seed=4, column_bits=512, iterations=2)
    st = RecordStats(t, org)
    sums = []
    for seed in range(30):
        rows, cols = LineEvents.simulate_margins((comp,), st, np.random.default_rng(seed))
        assert rows.shape == (st.n_rows,) and cols.shape == (st.n_groups,)
        # the same events in both margins; the background drawn separately for each
        assert abs(int(rows.sum()) - int(cols.sum())) < 6 * np.sqrt(2 * 1e-6 * st.bits * st.T)
        sums.append(rows.sum())
    mean = comp.mean_flip_rate(0) * st.bits * st.T
    assert abs(np.mean(sums) - mean) < 5 * np.std(sums) / np.sqrt(len(sums)), (np.mean(sums), mean)
