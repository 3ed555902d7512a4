"""Mapping data types to DRAM partitions: greedy vs MILP, constraints, bad input, back-off.

Every mapping is checked by ``independent_check`` below, written from the problem
statement only: it reads the raw inputs and ``result.to_dict()`` (the JSON view)
and never calls eden's own feasibility code.
"""

import itertools
import json
import logging
import math

import numpy as np
import pytest

from eden.errors import EdenError
from eden.workflows.mapping import (MAPPING_POLICIES, DataTypeDemand, MappingInfeasibleError, MappingProblem, Partition,
                                    map_datatypes, register_policy, validate_and_backoff)

POLICIES = ("greedy", "milp")


# ---------------------------------------------------------------------------
# independent checker


def independent_check(sizes, tols, parts, cost, out):
    """Assert ``out`` (a MappingResult.to_dict()) is a feasible mapping of the raw instance.

    Args:
        sizes, tols: per data type ``d{i}``.
        parts: list of (name, ber, capacity or None, is_nominal) as given to the mapper.
        cost: (D, P') array; P' = len(parts) + 1 when no part is nominal (last column).
    Returns:
        The recomputed total cost.
    """
    out = json.loads(json.dumps(out))  # must be JSON-serialisable
    has_nominal = any(p[3] for p in parts)
    table = {name: (ber, cap, col) for col, (name, ber, cap, _) in enumerate(parts)}
    if not has_nominal:
        table["nominal"] = (0.0, None, len(parts))
    nominal_name = next(p[0] for p in parts if p[3]) if has_nominal else "nominal"
    assert out["nominal_partition"] == nominal_name
    names = [f"d{i}" for i in range(len(sizes))]
    assert sorted(out["assignment"]) == sorted(names)
    used = {k: 0 for k in table}
    total = 0.0
    for i, name in enumerate(names):
        p = out["assignment"][name]
        assert p in table, f"{name} in unknown partition {p}"
        ber, _, col = table[p]
        assert ber <= tols[i], f"{name} tolerates {tols[i]} but sits in {p} at BER {ber}"
        used[p] += int(sizes[i])
        total += float(cost[i, col])
    for p, (_, cap, _) in table.items():
        if cap is not None:
            assert used[p] <= cap, f"{p}: {used[p]} bytes > capacity {cap}"
    assert {q["name"]: q["used_bytes"] for q in out["partitions"]} == used
    assert math.isclose(out["total_cost"], total, rel_tol=1e-12, abs_tol=1e-300)
    # fallbacks: exactly the data types no non-nominal partition can take; all in nominal
    other_bers = [ber for name, ber, _, nom in parts if not nom]
    expect_fb = {names[i] for i in range(len(sizes)) if not any(b <= tols[i] for b in other_bers)}
    assert set(out["fallbacks"]) == expect_fb
    for name in expect_fb:
        assert out["assignment"][name] == nominal_name
        assert "nominal" in out["fallbacks"][name]
    return total


def brute_force(sizes, tols, parts, cost):
    """Optimal cost by enumerating every assignment (None when infeasible)."""
    has_nominal = any(p[3] for p in parts)
    bers = [p[1] for p in parts] + ([] if has_nominal else [0.0])
    caps = [p[2] for p in parts] + ([] if has_nominal else [None])
    best = None
    for combo in itertools.product(range(len(bers)), repeat=len(sizes)):
        if any(bers[j] > tols[i] for i, j in enumerate(combo)):
            continue
        load = [0] * len(bers)
        for i, j in enumerate(combo):
            load[j] += int(sizes[i])
        if any(c is not None and load[j] > c for j, c in enumerate(caps)):
            continue
        c = sum(float(cost[i, j]) for i, j in enumerate(combo))
        best = c if best is None else min(best, c)
    return best


# ---------------------------------------------------------------------------
# random instances


def random_instance(rng, max_d=50, max_p=8):
    n_d = int(rng.integers(1, max_d + 1))
    n_p = int(rng.integers(1, max_p + 1))
    sizes = np.rint(10 ** rng.uniform(0, 9 if rng.random() < 0.2 else 6, n_d)).astype(np.int64) + 1
    tols = 10 ** rng.uniform(-9, -1, n_d)
    if rng.random() < 0.2:
        tols[rng.random(n_d) < 0.2] = 0.0
    bers = 10 ** rng.uniform(-8, -2, n_p)
    if rng.random() < 0.1:
        bers[0] = 0.0  # a reliable but non-nominal partition (e.g. reduced tRCD, no errors seen)
    total = int(sizes.sum())
    parts = []
    for j in range(n_p):
        mode = rng.choice(["none", "loose", "tight", "exact"], p=[0.15, 0.25, 0.4, 0.2])
        if mode == "none":
            cap = None
        elif mode == "loose":
            cap = int(total * rng.uniform(1, 2)) + 1
        elif mode == "tight":
            cap = max(1, int(total * rng.uniform(0.01, 0.4)))
        else:  # exactly the size of a random subset: capacity met to the byte
            cap = int(sizes[rng.random(n_d) < rng.uniform(0.1, 0.5)].sum()) or int(sizes.min())
        parts.append((f"p{j}", float(bers[j]), cap, False))
    if rng.random() < 0.3:  # a caller-supplied nominal, sometimes with a binding capacity
        cap = None if rng.random() < 0.3 else max(1, int(total * rng.uniform(0.2, 1.2)))
        parts.insert(int(rng.integers(0, len(parts) + 1)), ("nom", 0.0, cap, True))
    n_cols = len(parts) + (0 if any(p[3] for p in parts) else 1)
    col_ber = [p[1] for p in parts] + ([] if any(p[3] for p in parts) else [0.0])
    if rng.random() < 0.3:  # unstructured costs
        cost = rng.uniform(0.0, 2.0, (n_d, n_cols)) * sizes[:, None] * 1e-12
    else:  # EDEN-like: traffic x energy per byte, cheaper at higher BER, with noise
        e = np.array([1.0 if b == 0 else 0.9 - 0.5 * (np.log10(b) + 8) / 6 for b in col_ber])
        cost = (sizes * rng.uniform(1, 20, n_d))[:, None] * e[None, :] * rng.uniform(0.95, 1.05, (n_d, n_cols))
        cost *= 1e-12
    return sizes, tols, parts, cost


def build(sizes, tols, parts):
    demands = [DataTypeDemand(f"d{i}", int(s), float(t)) for i, (s, t) in enumerate(zip(sizes, tols))]
    partitions = [Partition(n, b, c, nominal=nom) for n, b, c, nom in parts]
    return demands, partitions


def solve_both(sizes, tols, parts, cost):
    demands, partitions = build(sizes, tols, parts)
    out = {}
    for policy in POLICIES:
        try:
            out[policy] = map_datatypes(demands, partitions, cost, policy=policy)
        except MappingInfeasibleError as e:
            assert "bytes" in str(e) and e.needed_bytes > 0
            out[policy] = None
    return out["greedy"], out["milp"]


@pytest.fixture(autouse=True)
def _quiet_fallback_log(caplog):
    caplog.set_level(logging.ERROR, logger="eden.workflows.mapping")


def test_random_instances_milp_never_worse_and_all_constraints_hold():
    rng = np.random.default_rng(20240607)
    stats = dict(both=0, greedy_strictly_worse=0, greedy_failed=0, infeasible=0, fallbacks=0,
                 finite_nominal=0)
    n = 240
    for _ in range(n):
        sizes, tols, parts, cost = random_instance(rng)
        g, m = solve_both(sizes, tols, parts, cost)
        stats["finite_nominal"] += any(p[3] and p[2] is not None for p in parts)
        if m is None:
            # the MILP says no mapping exists: greedy cannot have found one
            assert g is None
            stats["infeasible"] += 1
            continue
        cm = independent_check(sizes, tols, parts, cost, m.to_dict())
        assert m.solver_status == "optimal"
        stats["fallbacks"] += bool(m.fallbacks)
        if g is None:
            stats["greedy_failed"] += 1
            continue
        cg = independent_check(sizes, tols, parts, cost, g.to_dict())
        assert cm <= cg + 1e-9 * abs(cg) + 1e-300, (cm, cg)
        stats["both"] += 1
        stats["greedy_strictly_worse"] += cg > cm * (1 + 1e-9)
    # the sample exercises every case the claims are about
    assert stats["both"] >= 200, stats
    assert stats["greedy_strictly_worse"] >= 10, stats
    assert stats["fallbacks"] >= 50 and stats["infeasible"] >= 3 and stats["finite_nominal"] >= 30, stats


def test_milp_equals_brute_force_on_small_instances():
    rng = np.random.default_rng(7)
    solved = infeasible = greedy_worse = 0
    for _ in range(80):
        sizes, tols, parts, cost = random_instance(rng, max_d=6, max_p=3)
        best = brute_force(sizes, tols, parts, cost)
        g, m = solve_both(sizes, tols, parts, cost)
        if best is None:
            assert m is None and g is None
            infeasible += 1
            continue
        assert m is not None, "MILP called a feasible instance infeasible"
        cm = independent_check(sizes, tols, parts, cost, m.to_dict())
        assert math.isclose(cm, best, rel_tol=1e-9, abs_tol=1e-300), (cm, best)
        if g is not None:
            cg = independent_check(sizes, tols, parts, cost, g.to_dict())
            assert cg >= best * (1 - 1e-12)
            greedy_worse += cg > best * (1 + 1e-9)
        solved += 1
    assert solved >= 60 and infeasible >= 1 and greedy_worse >= 1, (solved, infeasible, greedy_worse)


def test_checker_can_fail():
    """The independent checker rejects broken mappings (so the tests above can fail)."""
    sizes, tols = [10, 10], [1e-3, 1e-6]
    parts = [("a", 1e-4, 15, False)]
    cost = np.array([[1.0, 2.0], [1.0, 2.0]])
    out = map_datatypes(*build(sizes, tols, parts), cost, policy="milp").to_dict()
    independent_check(sizes, tols, parts, cost, out)
    for mutate in (lambda o: o["assignment"].update(d1="a"),          # d1 does not tolerate a
                   lambda o: o["assignment"].update(d0="b"),          # unknown partition
                   lambda o: o.update(total_cost=o["total_cost"] - 1),
                   lambda o: o["fallbacks"].clear()):
        bad = json.loads(json.dumps(out))
        mutate(bad)
        with pytest.raises((AssertionError, KeyError)):
            independent_check(sizes, tols, parts, cost, bad)
    over = json.loads(json.dumps(out))
    over["assignment"]["d1"] = "a"
    with pytest.raises(AssertionError):
        independent_check(sizes, [1e-3, 1e-3], parts, cost, over)  # 20 bytes > capacity 15


# ---------------------------------------------------------------------------
# hand-solvable instances


def test_hand_instance_greedy_strictly_suboptimal():
    """Energy/byte: A 1, B 2, nominal 3; traffic: d_tolerant 1x, d_hot 10x; A holds one.

    Greedy places the most tolerant first, in the cheapest partition (A), so the hot
    data type lands in B: 1*1 + 10*2 = 21. Optimal swaps them: 1*2 + 10*1 = 12.
    """
    parts = [Partition("A", 1e-3, 100, vdd_v=1.2), Partition("B", 1e-5, 100, vdd_v=1.3)]
    dts = [DataTypeDemand("tolerant", 100, 1e-2), DataTypeDemand("hot", 100, 1e-3)]
    energy = {"A": 1.0, "B": 2.0, "nominal": 3.0}
    traffic = {"tolerant": 1.0, "hot": 10.0}

    def cost(d, p):
        return traffic[d.name] * energy[p.name]

    g = map_datatypes(dts, parts, cost, policy="greedy")
    m = map_datatypes(dts, parts, cost, policy="milp")
    assert g.assignment == {"tolerant": "A", "hot": "B"} and g.total_cost == 21.0
    assert m.assignment == {"tolerant": "B", "hot": "A"} and m.total_cost == 12.0
    assert m.nominal_cost == 33.0 and m.solver_status == "optimal" and g.solver_status == "heuristic"
    assert m.used_bytes == {"A": 100, "B": 100, "nominal": 0}
    assert m.fallbacks == {} and m.problem.implicit_nominal


def test_greedy_order_and_tie_breaks():
    # equal cost everywhere: the higher-BER partition wins the tie (most aggressive)
    parts = [Partition("safe", 1e-6), Partition("aggr", 1e-3)]
    res = map_datatypes([DataTypeDemand("x", 8, 1e-2)], parts, np.ones((1, 3)))
    assert res.assignment == {"x": "aggr"}
    # most tolerant first: it takes the only cheap slot even though it is listed last
    parts = [Partition("cheap", 1e-4, 10), Partition("dear", 1e-6, None)]
    dts = [DataTypeDemand("less", 10, 1e-4), DataTypeDemand("more", 10, 1e-3)]
    res = map_datatypes(dts, parts, np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]))
    assert res.assignment == {"less": "dear", "more": "cheap"}


def test_greedy_packing_failure_that_milp_solves():
    """First-fit decreasing fails on bins 10+10, items 5,4,3,3,3,2; 5+3+2 / 4+3+3 fits."""
    sizes = [5, 4, 3, 3, 3, 2]
    dts = [DataTypeDemand(f"d{i}", s, 1e-3) for i, s in enumerate(sizes)]
    parts = [Partition("A", 1e-4, 10), Partition("B", 1e-5, 10), Partition("N", 0.0, 1, nominal=True)]
    cost = np.array([[1.0, 2.0, 3.0]]) * np.array(sizes)[:, None]
    with pytest.raises(MappingInfeasibleError, match="greedy could not place 'd5'.*try policy='milp'") as exc:
        map_datatypes(dts, parts, cost, policy="greedy")
    assert exc.value.needed_bytes == 20 and exc.value.available_bytes == 21
    m = map_datatypes(dts, parts, cost, policy="milp")
    assert m.used_bytes == {"A": 10, "B": 10, "N": 0} and m.total_cost == 30.0


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("policy", POLICIES)
def test_target_no_partition_can_meet_falls_back_to_nominal(policy, caplog):
    caplog.set_level(logging.WARNING, logger="eden.workflows.mapping")
    parts = [Partition("low", 1e-6, None), Partition("high", 1e-4, None)]
    dts = [DataTypeDemand("picky", 64, 1e-9), DataTypeDemand("ok", 64, 1e-5)]
    res = map_datatypes(dts, parts, np.array([[1.0, 0.5, 2.0], [1.0, 0.5, 2.0]]), policy=policy)
    assert res.assignment == {"picky": "nominal", "ok": "low"}
    assert list(res.fallbacks) == ["picky"]
    why = res.fallbacks["picky"]
    assert "1e-09" in why and "'low' at 1e-06" in why and "nominal partition 'nominal'" in why
    assert res.to_dict()["datatypes"][0]["fallback"] == why
    assert "fall back to the nominal partition 'nominal'" in caplog.text and "picky" in caplog.text
    # no non-nominal partition at all: everything falls back, saying so
    res = map_datatypes(dts, [], np.ones((2, 1)), policy=policy)
    assert set(res.fallbacks) == {"picky", "ok"} and "no non-nominal partition" in res.fallbacks["ok"]


@pytest.mark.parametrize("policy", POLICIES)
def test_capacities_too_small(policy):
    parts = [Partition("A", 1e-4, 100), Partition("N", 0.0, 50, nominal=True)]
    # the whole model does not fit: 180 bytes, 150 available
    dts = [DataTypeDemand("w", 120, 1e-3), DataTypeDemand("x", 60, 1e-3)]
    with pytest.raises(MappingInfeasibleError) as exc:
        map_datatypes(dts, parts, np.ones((2, 2)), policy=policy)
    assert "they need 180 bytes but those partitions have 150 bytes available (short by 30 bytes" in str(exc.value)
    assert (exc.value.needed_bytes, exc.value.available_bytes) == (180, 150)
    # a group that does not fit: x (30) + y (40) only tolerate N (50 bytes)
    dts = [DataTypeDemand("x", 30, 1e-9), DataTypeDemand("y", 40, 1e-9), DataTypeDemand("z", 10, 1e-3)]
    with pytest.raises(MappingInfeasibleError) as exc:
        map_datatypes(dts, parts, np.ones((3, 2)), policy=policy)
    msg = str(exc.value)
    assert "they need 70 bytes but those partitions have 50 bytes available (short by 20 bytes" in msg
    assert "'x', 'y'" in msg and "'N'" in msg
    assert (exc.value.needed_bytes, exc.value.available_bytes) == (70, 50)


@pytest.mark.parametrize("policy", POLICIES)
def test_packing_infeasible_message(policy):
    # 18 bytes <= 20 available, but three 6-byte data types cannot share two 10-byte partitions
    parts = [Partition("A", 1e-4, 10), Partition("N", 0.0, 10, nominal=True)]
    dts = [DataTypeDemand(f"d{i}", 6, 1e-3) for i in range(3)]
    with pytest.raises(MappingInfeasibleError, match="total needed 18 bytes, total capacity 20 bytes.*packed"):
        map_datatypes(dts, parts, np.ones((3, 2)), policy=policy)


def test_unknown_policy_lists_known():
    with pytest.raises(ValueError, match=r"unknown mapping policy 'mlip'; known: greedy, milp; did you mean 'milp'"):
        map_datatypes([], [], np.ones((0, 1)), policy="mlip")


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(name="", ber=0.1), TypeError, "name must be a non-empty string"),
    (dict(name="p", ber=1.5), ValueError, r"Partition 'p'.ber must be in \[0, 1\], got 1.5"),
    (dict(name="p", ber=float("nan")), ValueError, "ber must be in"),
    (dict(name="p", ber=-1e-3), ValueError, "ber must be in"),
    (dict(name="p", ber="1e-3"), TypeError, "ber must be a number, got '1e-3'"),
    (dict(name="p", ber=True), TypeError, "ber must be a number"),
    (dict(name="p", ber=0.1, capacity_bytes=0), ValueError, "capacity_bytes must be an integer >= 1, got 0"),
    (dict(name="p", ber=0.1, capacity_bytes=-5), ValueError, "capacity_bytes must be an integer >= 1, got -5"),
    (dict(name="p", ber=0.1, capacity_bytes=1.5), TypeError, "capacity_bytes must be an integer or None"),
    (dict(name="p", ber=0.1, nominal=True), ValueError, "ber must be 0 for the nominal partition, got 0.1"),
    (dict(name="p", ber=0.1, nominal="yes"), TypeError, "nominal must be a bool"),
    (dict(name="p", ber=0.1, vdd_v=0), ValueError, "vdd_v must be a number > 0"),
    (dict(name="p", ber=0.1, trcd_ns=float("inf")), ValueError, "trcd_ns must be a number > 0 and finite, got inf"),
    (dict(name="p", ber=0.1, error_model=3), TypeError, "error_model must be a spec/path string"),
])
def test_partition_validation(kwargs, exc, msg):
    with pytest.raises(exc, match=msg) as info:
        Partition(**kwargs)
    assert isinstance(info.value, EdenError)  # a user error: one line at the CLI


@pytest.mark.parametrize("args, exc, msg", [
    (("d", 0, 1e-3), ValueError, "DataTypeDemand 'd'.size_bytes must be an integer >= 1, got 0"),
    (("d", 1.0, 1e-3), TypeError, "size_bytes must be an integer, got 1.0"),
    (("d", 8, -1e-3), ValueError, "tolerable_ber must be a number >= 0, got -0.001"),
    (("d", 8, float("nan")), ValueError, "tolerable_ber must be a number >= 0, got nan"),
    (("d", 8, None), TypeError, "tolerable_ber must be a number, got None"),
    ((None, 8, 1e-3), TypeError, "name must be a non-empty string"),
])
def test_demand_validation(args, exc, msg):
    with pytest.raises(exc, match=msg) as info:
        DataTypeDemand(*args)
    assert isinstance(info.value, EdenError)


def test_demand_accepts_numpy_and_inf():
    d = DataTypeDemand("d", np.int64(8), math.inf)
    assert d.size_bytes == 8 and type(d.size_bytes) is int and d.tolerable_ber == math.inf
    assert Partition("p", np.float32(0.5), np.int32(7)).capacity_bytes == 7


def test_problem_validation():
    d = [DataTypeDemand("a", 1, 1e-3)]
    with pytest.raises(ValueError, match="data type names must be unique; repeated: 'a'"):
        MappingProblem.build(d + d, [], np.ones((2, 1)))
    with pytest.raises(ValueError, match="partition names must be unique; repeated: 'p'"):
        MappingProblem.build(d, [Partition("p", 0.1), Partition("p", 0.2)], np.ones((1, 3)))
    with pytest.raises(ValueError, match="at most one partition may be nominal, got 'n1', 'n2'"):
        MappingProblem.build(d, [Partition("n1", 0, nominal=True), Partition("n2", 0, nominal=True)],
                             np.ones((1, 2)))
    with pytest.raises(ValueError, match="partition 'nominal' is not marked nominal=True"):
        MappingProblem.build(d, [Partition("nominal", 0.0)], np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"shape .* = \(1, 2\) \(the last column is the implicit nominal"):
        MappingProblem.build(d, [Partition("p", 0.1)], np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"cost\['a', 'nominal'\] must be finite, got nan"):
        MappingProblem.build(d, [Partition("p", 0.1)], np.array([[1.0, np.nan]]))
    with pytest.raises(TypeError, match=r"cost\('a', 'p'\) must return a number, got None"):
        MappingProblem.build(d, [Partition("p", 0.1)], lambda dd, pp: None)
    with pytest.raises(TypeError, match="cost must be an array or a callable"):
        MappingProblem.build(d, [Partition("p", 0.1)], "cheap")
    with pytest.raises(TypeError, match=r"demands\[0\] must be a DataTypeDemand, got tuple"):
        MappingProblem.build([("a", 1, 1e-3)], [], np.ones((1, 1)))
    with pytest.raises(TypeError, match=r"partitions\[0\] must be a Partition, got str"):
        MappingProblem.build(d, ["p"], np.ones((1, 2)))
    # a supplied nominal: no extra column, it keeps its position
    pr = MappingProblem.build(d, [Partition("n", 0, nominal=True), Partition("p", 0.1)], np.ones((1, 2)))
    assert pr.nominal_index == 0 and not pr.implicit_nominal


def test_callable_cost_sees_every_partition_including_implicit_nominal():
    seen = []

    def cost(d, p):
        seen.append((d.name, p.name, p.nominal))
        return 1.0

    map_datatypes([DataTypeDemand("a", 1, 1.0)], [Partition("p", 0.1)], cost)
    assert seen == [("a", "p", False), ("a", "nominal", True)]


def test_bad_policy_output_is_rejected(monkeypatch):
    monkeypatch.setitem(MAPPING_POLICIES, "everything_in_p",
                        lambda problem: ([0] * len(problem.demands), "heuristic", ""))
    with pytest.raises(ValueError, match=r"not feasible: 'a' \(tolerates 1e-06\) in 'p' \(BER 0.1\)"):
        map_datatypes([DataTypeDemand("a", 1, 1e-6)], [Partition("p", 0.1)], np.ones((1, 2)),
                      policy="everything_in_p")
    with pytest.raises(ValueError, match="'p' holds 20 bytes > capacity 10"):
        map_datatypes([DataTypeDemand("a", 10, 1.0), DataTypeDemand("b", 10, 1.0)],
                      [Partition("p", 0.1, 10)], np.ones((2, 2)), policy="everything_in_p")
    with pytest.raises(ValueError, match="already registered"):
        register_policy("greedy")(lambda problem: None)


@pytest.mark.parametrize("policy", POLICIES)
def test_empty_and_options(policy):
    res = map_datatypes([], [Partition("p", 0.1, 5)], np.ones((0, 2)), policy=policy)
    assert res.assignment == {} and res.total_cost == 0.0
    assert json.loads(json.dumps(res.to_dict()))["format"] == "eden.mapping"
    if policy == "milp":
        res = map_datatypes([DataTypeDemand("a", 1, 1.0)], [Partition("p", 0.1)], np.array([[1.0, 2.0]]),
                            policy="milp", time_limit_s=10.0)
        assert res.assignment == {"a": "p"} and res.runtime_s >= 0
        with pytest.raises(TypeError):
            map_datatypes([], [], np.ones((0, 1)), policy="milp", bogus=1)


@pytest.mark.parametrize("seed", [697, 3227])
def test_milp_keeps_stdout_clean_on_instances_where_highs_prints(seed, capfd):
    """With scipy 1.17's HiGHS these instances print a debug line from C++ (ERGO-Code/HiGHS#2783)."""
    sizes, tols, parts, cost = random_instance(np.random.default_rng(seed))
    m = map_datatypes(*build(sizes, tols, parts), cost, policy="milp")
    independent_check(sizes, tols, parts, cost, m.to_dict())
    out, _ = capfd.readouterr()
    assert out == ""


def test_stdout_filter_keeps_other_output(monkeypatch, capfd):
    import os

    from scipy import optimize
    real = optimize.milp

    def noisy(*args, **kwargs):
        os.write(1, b"before\nHighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();\nafter\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(optimize, "milp", noisy)
    m = map_datatypes([DataTypeDemand("a", 1, 1.0)], [Partition("p", 0.1)], np.array([[1.0, 2.0]]), policy="milp")
    assert m.assignment == {"a": "p"}
    out, _ = capfd.readouterr()
    assert out == "before\nafter\n"


def test_to_dict_round_trip_fields():
    parts = [Partition("p", 1e-4, 100, vdd_v=1.25, trcd_ns=10.0, error_model="em0:p=1e-4")]
    res = map_datatypes([DataTypeDemand("a", 10, 1e-3)], parts, np.array([[1.0, 2.0]]), policy="milp")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["policy"] == "milp" and d["solver_status"] == "optimal" and d["format_version"] == 1
    assert d["partitions"][0] == dict(name="p", ber=1e-4, capacity_bytes=100, nominal=False, vdd_v=1.25,
                                      trcd_ns=10.0, error_model="em0:p=1e-4", used_bytes=10)
    assert d["partitions"][1]["name"] == "nominal" and d["implicit_nominal"] is True
    assert d["datatypes"] == [dict(name="a", size_bytes=10, tolerable_ber=1e-3, partition="p", cost=1.0,
                                   fallback=None)]
    assert d["total_cost"] == 1.0 and d["nominal_cost"] == 2.0 and d["backed_off"] == []


# ---------------------------------------------------------------------------
# validate_and_backoff


def _ladder():
    parts = [Partition("P1", 1e-3), Partition("P2", 1e-4), Partition("P3", 1e-5)]
    dts = [DataTypeDemand("a", 10, 1e-2), DataTypeDemand("b", 10, 1e-3), DataTypeDemand("c", 10, 5e-3)]
    cost = np.array([[1.0, 2.0, 3.0, 4.0]] * 3)
    return dts, parts, cost


def test_backoff_passes_at_once():
    res = map_datatypes(*_ladder())
    out = validate_and_backoff(res, lambda m: True)
    assert out.passed and out.steps == () and out.checks == 1 and out.result is res


def test_backoff_moves_least_tolerant_one_step_at_a_time():
    dts, parts, cost = _ladder()
    res = map_datatypes(dts, parts, cost, policy="milp")
    assert set(res.assignment.values()) == {"P1"}
    bers = {p.name: p.ber for p in parts} | {"nominal": 0.0}
    out = validate_and_backoff(res, lambda m: bers[m.assignment["b"]] <= 1e-5)
    assert out.passed and out.checks == 3
    assert [(s.datatype, s.from_partition, s.to_partition) for s in out.steps] == [("b", "P1", "P2"),
                                                                                     ("b", "P2", "P3")]
    assert out.result.assignment == {"a": "P1", "b": "P3", "c": "P1"}
    assert out.result.backed_off == ("b", "b") and out.steps[-1].total_cost_after == 5.0
    d = json.loads(json.dumps(out.to_dict()))
    assert d["passed"] and d["result"]["backed_off"] == ["b", "b"] and len(d["steps"]) == 2


def test_backoff_never_passing_ends_in_nominal():
    res = map_datatypes(*_ladder())
    out = validate_and_backoff(res, lambda m: False)
    assert not out.passed and "nothing can back off" in out.message
    assert set(out.result.assignment.values()) == {"nominal"}
    # b (least tolerant), then c, then a, each down the whole ladder P1 -> P2 -> P3 -> nominal
    assert [(s.datatype, s.to_partition) for s in out.steps] == [
        (n, p) for n in "bca" for p in ("P2", "P3", "nominal")]
    assert out.checks == len(out.steps) + 1
    assert out.result.total_cost == 12.0
    out = validate_and_backoff(res, lambda m: False, max_steps=2)
    assert not out.passed and len(out.steps) == 2 and out.checks == 3 and "max_steps=2" in out.message


def test_backoff_respects_capacity_and_skips_stuck_data_types():
    parts = [Partition("P1", 1e-3, 100), Partition("P2", 1e-4, 10), Partition("N", 0.0, 20, nominal=True)]
    dts = [DataTypeDemand("a", 10, 1e-2), DataTypeDemand("b", 20, 1e-3), DataTypeDemand("fill", 10, 1e-4)]
    cost = np.array([[1.0, 2.0, 3.0]] * 3)
    res = map_datatypes(dts, parts, cost, policy="milp")
    assert res.assignment == {"a": "P1", "b": "P1", "fill": "P2"}
    out = validate_and_backoff(res, lambda m: False)
    # fill (least tolerant) -> N; b (20 bytes) is stuck (P2 has 10, N 10 free) so a moves,
    # P1 -> P2 -> N; then b is still stuck and nothing else can move
    assert [(s.datatype, s.to_partition) for s in out.steps] == [("fill", "N"), ("a", "P2"), ("a", "N")]
    assert not out.passed and out.result.assignment == {"a": "N", "b": "P1", "fill": "N"}
    # with room in N, b moves after fill (straight to N: P2 is too small for it)
    parts[2] = Partition("N", 0.0, 40, nominal=True)
    out = validate_and_backoff(map_datatypes(dts, parts, cost, policy="milp"), lambda m: False)
    assert [(s.datatype, s.to_partition) for s in out.steps] == [
        ("fill", "N"), ("b", "N"), ("a", "P2"), ("a", "N")]
    assert set(out.result.assignment.values()) == {"N"}


def test_backoff_bad_check_and_args():
    res = map_datatypes(*_ladder())
    with pytest.raises(TypeError, match="check must return a bool, got 0.93"):
        validate_and_backoff(res, lambda m: 0.93)
    with pytest.raises(ValueError, match="max_steps must be an integer >= 0, got -1"):
        validate_and_backoff(res, lambda m: True, max_steps=-1)
    assert validate_and_backoff(res, lambda m: np.bool_(True)).passed


def test_backoff_random_instances_stay_feasible():
    rng = np.random.default_rng(99)
    for _ in range(30):
        sizes, tols, parts, cost = random_instance(rng, max_d=12, max_p=4)
        demands, partitions = build(sizes, tols, parts)
        try:
            res = map_datatypes(demands, partitions, cost, policy="milp")
        except MappingInfeasibleError:
            continue
        k = int(rng.integers(0, 8))
        seen = []

        def check(m, k=k, seen=seen, inst=(sizes, tols, parts, cost)):
            independent_check(*inst, m.to_dict())
            seen.append(m.assignment)
            return len(seen) > k

        out = validate_and_backoff(res, check)
        assert out.checks == len(seen) == len(out.steps) + 1
        bers = {p.name: p.ber for p in out.result.problem.partitions}
        nominal = out.result.nominal_partition
        for step, before, after in zip(out.steps, seen, seen[1:]):
            changed = [n for n in before if before[n] != after[n]]
            assert changed == [step.datatype]
            assert bers[step.to_partition] < bers[step.from_partition] or step.to_partition == nominal
        assert out.passed == (len(seen) > k)
