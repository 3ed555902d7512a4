"""emg: grouped line events (fixed groups of K bits in weak 8-bit slots, per-access slot and line
events, two row shares with their own group sizes).

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
from eden.engine.events import line_event_bits
from eden.engine.ops import inject_
from eden.engine.plan import compile_plan
from eden.errormodels.component import WeakLines
from eden.errormodels.components import GroupedLineEvents, component_class
from eden.errormodels.components.emg import LINE_BITS, SLOT_BITS, group_size_candidates
from eden.errormodels.model import ErrorModel
from eden.errors import EdenConfigError

ALPHA = 1e-6
ROW_BITS = DEFAULT_ADDRESS_MAP.organization.row_bits
BASE = dict(line_fraction=0.25, wl_fraction=0.5, hi_fraction=0.5, dense_fraction=0.3, slot_fraction=0.05,
            dense_slot_fraction=0.3, group_hi=7, group_lo=2, e=0.2, e_line=0.0, p_else=0.0)


def _spec(**kw) -> str:
    return GroupedLineEvents(**{**BASE, **kw}).to_spec()


def _plan(spec: str, nbytes: int = 256 * ROW_BITS // 8, seed: int = 5, access: int = 0, base_address: int = 0):
    return compile_plan(ErrorModel.from_spec(spec), word_bits=32, nbytes=nbytes, seed=seed, access=access,
                        base_address=base_address, address_map=DEFAULT_ADDRESS_MAP)


def _flips(plan) -> np.ndarray:
    """bool[n_tiles, row_bits] flipped bits (tensor at address 0, whole rows; zero words)."""
    words = np.zeros((plan.bit_hi - plan.bit_lo) // 32, np.uint32)
    idx, mask = reference.sample_flips(plan, words)
    out = np.zeros(words.size * 32, bool)
    out.reshape(-1, 32)[idx] = np.unpackbits(mask.view(np.uint8), bitorder="little").reshape(-1, 32).astype(bool)
    return out.reshape(plan.n_tiles, plan.row_bits)


def _blocks(plan, e):
    """{(tile, block): member row positions} of event pass ``e`` over its weak rows."""
    out = {}
    for t in np.flatnonzero(plan.tile_wlclass[plan.ev_wl[e]] == 1):
        g = int(plan.tile_group[t])
        for j in range(plan.ev_blk_off[e, g], plan.ev_blk_off[e, g + 1]):
            out[(int(t), int(plan.ev_blk[j]))] = plan.ev_mem[plan.ev_mem_off[j]:plan.ev_mem_off[j + 1]].astype(np.int64)
    return out


def _inside(p, k, n):
    lo, hi = stats.binom.interval(1 - ALPHA, n, p)
    return lo <= k <= hi


def test_slot_events_flip_their_rows_group_and_nothing_else():
    """e_line = p_else = 0, e_faint = e: the six passes are (main hi slots, main hi lines, main lo
    slots, main lo lines, faint hi slots, faint lo slots); every flipped slot of a hi row holds
    exactly its 7 group bits, of a lo row its 2, the four kinds of weak row are disjoint, slots lie
    in weak line positions, and the number of slot events is Binomial(weak tile-slots, e)."""
    plan = _plan(_spec(faint_fraction=0.3, e_faint=0.2, faint_hi_fraction=0.5, e_line=1e-12))
    assert plan.ev_block.tolist() == [SLOT_BITS, LINE_BITS, SLOT_BITS, LINE_BITS, SLOT_BITS, SLOT_BITS]
    flips = _flips(plan)
    slot_passes = ((0, 7, 1), (2, 2, 3), (4, 7, 1), (5, 2, 3))  # (pass, group bits, its share's line pass)
    rows = [plan.tile_wlclass[plan.ev_wl[e]] == 1 for e, _, _ in slot_passes]
    assert all(r.any() for r in rows) and sum(r.astype(int) for r in rows).max() == 1
    assert not flips[~np.any(rows, axis=0)].any()
    # the line passes' blocks of each (bank, subarray) group: the lines with weak slots, shared by all rows
    positions = {g: set(plan.ev_blk[plan.ev_blk_off[1, g]:plan.ev_blk_off[1, g + 1]].tolist())
                 for g in range(plan.ev_blk_off.shape[1] - 1)}
    n_slots = events = 0
    for i, (e, K, _) in enumerate(slot_passes):
        slots = _blocks(plan, e)
        for (t, s), mem in slots.items():
            assert len(mem) == K and np.all(mem // SLOT_BITS == s)
            assert s * SLOT_BITS // LINE_BITS in positions[int(plan.tile_group[t])]  # in a line with weak slots
            got = np.flatnonzero(flips[t, s * SLOT_BITS:(s + 1) * SLOT_BITS]) + s * SLOT_BITS
            assert len(got) == 0 or np.array_equal(got, mem), (t, s)
            events += len(got) > 0
        n_slots += len(slots)
        # nothing flips outside the weak slots
        covered = np.zeros_like(flips)
        for (t, _s), mem in slots.items():
            covered[t, mem] = True
        assert not (flips & ~covered)[rows[i]].any()
    assert n_slots > 1000 and _inside(0.2, events, n_slots), (events, n_slots)


def test_line_events_flip_every_slot_of_the_line_at_once():
    """e = 0, e_line = 0.4: a faulty line holds the groups of all its weak slots, and the number of
    faulty lines is Binomial(weak tile-lines with weak slots, e_line)."""
    plan = _plan(_spec(e=0.0, e_line=0.4))
    assert plan.ev_block.tolist() == [LINE_BITS, LINE_BITS]  # passes that cannot fire are left out
    flips = _flips(plan)
    n_lines = events = 0
    for e in (0, 1):
        for (t, b), mem in _blocks(plan, e).items():
            assert len(mem) and np.all(mem // LINE_BITS == b)
            got = np.flatnonzero(flips[t, b * LINE_BITS:(b + 1) * LINE_BITS]) + b * LINE_BITS
            assert len(got) == 0 or np.array_equal(got, mem), (t, b)
            n_lines += 1
            events += len(got) > 0
    assert n_lines > 300 and _inside(0.4, events, n_lines), (events, n_lines)


def test_maps_groups_and_fixed_events_are_nested():
    def weak(spec, e=0):
        plan = _plan(spec + ";persistence=fixed")
        return {(int(plan.tile_row_id[t]), b): set(m.tolist()) for (t, b), m in _blocks(plan, e).items()}

    small, large = weak(_spec()), weak(_spec(line_fraction=0.5, wl_fraction=0.6))
    assert 0 < len(small) < len(large) and set(small) <= set(large)
    assert all(small[k] == large[k] for k in small)  # same groups
    few, many = weak(_spec(slot_fraction=0.02, dense_slot_fraction=0.1)), weak(_spec())
    assert set(few) < set(many)
    # a smaller group is part of the larger one (the first K of the slot's ranking)
    k2, k5 = weak(_spec(group_hi=2)), weak(_spec(group_hi=5))
    assert set(k2) == set(k5) and all(k2[k] < k5[k] for k in k2)
    # the hi share's rows are nested in hi_fraction
    h1, h2 = weak(_spec(hi_fraction=0.3)), weak(_spec(hi_fraction=0.7))
    assert {r for r, _ in h1} < {r for r, _ in h2}
    lo, hi = _flips(_plan(_spec(e=0.1) + ";persistence=fixed")), _flips(_plan(_spec(e=0.4) + ";persistence=fixed"))
    assert lo.sum() < hi.sum() and not (lo & ~hi).any()


@pytest.mark.parametrize("persistence", ["", ";persistence=fixed"])
def test_oracle_equals_numba(persistence):
    pytest.importorskip("numba")
    spec = _spec(e_line=0.3, p_else=1e-5) + "+em1:fraction=0.01,p=1e-3" + persistence
    x = torch.from_numpy(np.random.default_rng(1).standard_normal(600_000).astype(np.float32))
    outs = []
    for backend in ("reference", "cpu"):
        y = x.clone()
        log = inject_(y, spec, seed=9, access=3, base_address=8192 * 5 + 128, backend=backend)
        idx, mask = log.word_flips()
        assert np.all(np.diff(idx) > 0)
        outs.append((y.numpy().view(np.uint32).copy(), log.n_bits, idx, mask))
        log.undo()
        assert torch.equal(y, x)
    assert outs[0][1] > 1000
    assert np.array_equal(outs[0][0], outs[1][0]) and outs[0][1] == outs[1][1]
    assert np.array_equal(outs[0][2], outs[1][2]) and np.array_equal(outs[0][3], outs[1][3])
    from eden.engine.backends import cpu

    for access, base in ((0, 0), (1, 8192 * 3 + 40), (2, 8192 * 7 + 4)):
        plan = _plan(spec, nbytes=300_000, access=access, base_address=base)
        want = line_event_bits(plan)
        assert len(want) > 100 and np.array_equal(cpu.line_event_bits(plan), want)


def test_spec_and_hdf5_round_trip_and_expected_ber(tmp_path):
    model = ErrorModel.from_spec(_spec(e_line=0.05, p_else=3e-9))
    assert ErrorModel.from_spec(model.to_spec()) == model
    path = tmp_path / "emg.h5"
    model.save(path)
    back = ErrorModel.load(path)
    assert back == model and isinstance(back.components[0].group_hi, int)
    comp = model.components[0]
    assert component_class("emg") is GroupedLineEvents and comp.weak_lines is WeakLines.BOTH
    assert comp.weak_fractions() == {WeakLines.BITLINES: 0.25, WeakLines.WORDLINES: 0.5}
    scaled = comp.scaled(2.0)
    assert (scaled.group_hi, scaled.slot_fraction, scaled.e, scaled.e_line) == (7, 0.05, 0.4, 0.1)
    slots = 0.7 * 0.05 + 0.3 * 0.3
    group = 0.5 * 7 + 0.5 * 2
    f = 0.25 * 0.5 * slots * group / SLOT_BITS * (1 - 0.8 * 0.95)
    assert model.expected_ber() == pytest.approx(1 - (1 - 3e-9) * (1 - f), rel=1e-12)


def test_bad_parameters_are_refused():
    with pytest.raises(EdenConfigError, match=r"emg.group_hi must be"):
        ErrorModel.from_spec(_spec().replace("group_hi=7", "group_hi=9"))
    with pytest.raises(EdenConfigError, match=r"emg.group_lo must be a whole number"):
        ErrorModel.from_spec(_spec().replace("group_lo=2", "group_lo=2.5"))
    with pytest.raises(EdenConfigError, match="emg needs rows of whole 512-bit lines"):
        simulate_records(_spec(), DramOrganization(banks=1, rows=16, row_bytes=32))


def test_group_size_candidates_cover_multiples_of_a_small_group():
    assert group_size_candidates([1, 7, 7, 14, 1, 1, 2, 21, 7]) == [(7, 1), (1, 1)]
    assert group_size_candidates([3, 3, 3, 6, 9]) == [(6, 3), (3, 3)]
    assert group_size_candidates([20, 30]) == [(SLOT_BITS, 1)]
    # groups of 2 in most rows: 4, 6 and 8 (two to four events) outnumber the rarer 7
    counts = np.repeat(np.arange(1, 9), [54, 2862, 0, 718, 0, 381, 325, 274])
    assert (7, 2) in group_size_candidates(counts)


def test_simulated_records_hold_whole_groups_of_their_rows_share():
    """simulate_records with p_else = 0: every record of a row is a multiple of that row's group
    size (7 or 2, never mixed in a row), and the mean errors per faulty line of a sweep equals
    events_per_faulty_line (CLT bound)."""
    truth = GroupedLineEvents(**{**BASE, "e": 0.05, "e_line": 0.1, "wl_fraction": 0.2})
    org = DramOrganization(banks=4, rows=4096, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((truth,)), org, seed=8, iterations=2, column_bits=512, per_iteration=True)
    row = t.bank.astype(np.int64) * org.rows + t.row
    c = np.asarray(t.count, np.int64)
    odd7 = np.bincount(row, weights=(c % 7 != 0), minlength=org.banks * org.rows) > 0
    odd2 = np.bincount(row, weights=(c % 2 != 0), minlength=org.banks * org.rows) > 0
    assert not (odd7 & odd2).any() and odd7.any() and odd2.any()
    m = truth.events_per_faulty_line()
    assert abs(c.mean() - m) < 5 * c.std() / np.sqrt(c.size), (c.mean(), m)
    s = unit_stats(t, org)
    assert s["errors_per_faulty_unit"] == pytest.approx(c.mean())


def test_fit_recovers_a_planted_model_and_is_selected():
    truth = GroupedLineEvents(line_fraction=0.125, wl_fraction=0.1, hi_fraction=0.45, dense_fraction=0.3,
                              slot_fraction=0.05, dense_slot_fraction=0.25, group_hi=7, group_lo=1, e=0.05,
                              e_line=0.1, faint_fraction=0.2, e_faint=0.01, faint_hi_fraction=0.6, p_else=2e-7)
    org = DramOrganization(banks=2, rows=4096, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((truth,)), org, seed=21, iterations=2, column_bits=512, per_iteration=True)
    r = fit(RawCharacterization((t,), org), gof=False)
    assert r.selected == "emg"
    best = r.candidate("emg")
    comp = best.model.components[0]
    assert (comp.group_hi, comp.group_lo) == (7, 1)
    for name in ("line_fraction", "wl_fraction", "hi_fraction", "dense_fraction", "slot_fraction",
                 "dense_slot_fraction", "e", "e_line", "faint_fraction", "e_faint", "faint_hi_fraction", "p_else"):
        est = best.estimate(f"emg.{name}")
        assert est.contains(getattr(truth, name)), (est, getattr(truth, name))
    assert best.loglik > r.candidate("eml").loglik
    fine = simulate_records(ErrorModel((truth,)), DramOrganization(banks=1, rows=512, row_bytes=8192), seed=2,
                            column_bits=64)
    r2 = fit(RawCharacterization((fine,), DramOrganization(banks=1, rows=512, row_bytes=8192)), gof=False)
    assert "emg" in r2.excluded and "64-bit unit" in r2.excluded["emg"]


def test_goodness_of_fit_margins_have_the_model_means():
    comp = GroupedLineEvents(**{**BASE, "e": 0.05, "e_line": 0.1, "p_else": 1e-6})
    org = DramOrganization(banks=2, rows=2048, row_bytes=8192, subarray_rows=512)
    t = simulate_records(ErrorModel((comp,)), org, seed=4, column_bits=512, iterations=2)
    st = RecordStats(t, org)
    sums = []
    for seed in range(30):
        rows, cols = GroupedLineEvents.simulate_margins((comp,), st, np.random.default_rng(seed))
        assert rows.shape == (st.n_rows,) and cols.shape == (st.n_groups,)
        assert abs(int(rows.sum()) - int(cols.sum())) < 6 * np.sqrt(2 * 1e-6 * st.bits * st.T)
        sums.append(rows.sum())
    mean = comp.mean_flip_rate(0) * st.bits * st.T
    assert abs(np.mean(sums) - mean) < 5 * np.std(sums) / np.sqrt(len(sums)), (np.mean(sums), mean)
