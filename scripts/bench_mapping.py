"""Benchmark: EDEN's greedy mapping vs the exact MILP on random instances.

Instances: 1..50 data types x 1..8 partitions (+ nominal), EDEN-like costs
(traffic_d x energy-per-byte_p, lower energy at higher BER, with per-pair noise;
a quarter of the instances have unstructured random costs), capacities mixed
unlimited / loose / tight, and a finite nominal partition in some instances.

Prints greedy's relative gap ``(greedy - milp) / milp`` (min/median/p90/max, fraction
optimal), the share of the achievable saving greedy loses
``(greedy - milp) / (nominal - milp)``, how often greedy fails to pack an instance
the MILP solves, and run times (median/max).

    python scripts/bench_mapping.py [--instances 1000] [--seed 0] [--max-datatypes 50] [--max-partitions 8]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from eden.workflows.mapping import DataTypeDemand, MappingInfeasibleError, Partition, map_datatypes


def random_instance(rng: np.random.Generator, max_d: int, max_p: int):
    n_d = int(rng.integers(1, max_d + 1))
    n_p = int(rng.integers(1, max_p + 1))
    sizes = np.rint(10 ** rng.uniform(2, 7, n_d)).astype(np.int64)
    tols = 10 ** rng.uniform(-10, -1, n_d)
    bers = 10 ** rng.uniform(-8, -2, n_p)
    total = int(sizes.sum())
    parts = []
    for j in range(n_p):
        mode = rng.choice(["unlimited", "loose", "tight"], p=[0.2, 0.3, 0.5])
        cap = None if mode == "unlimited" else max(1, int(total * (rng.uniform(1, 2) if mode == "loose"
                                                                   else rng.uniform(0.02, 0.5))))
        parts.append(Partition(f"p{j}", float(bers[j]), cap))
    finite_nominal = rng.random() < 0.25
    if finite_nominal:
        parts.append(Partition("nom", 0.0, max(1, int(total * rng.uniform(0.3, 1.2))), nominal=True))
    all_bers = np.append(bers, 0.0)
    kind = "random" if rng.random() < 0.25 else "eden"
    if kind == "random":
        cost = rng.uniform(0.5, 1.5, (n_d, n_p + 1)) * sizes[:, None] * 1e-12
    else:
        energy = 1.0 - 0.4 * np.clip((np.log10(np.maximum(all_bers, 1e-8)) + 8) / 6, 0, 1)
        energy[-1] = 1.0
        traffic = sizes * rng.uniform(1, 10, n_d)
        cost = traffic[:, None] * energy[None, :] * rng.uniform(0.97, 1.03, (n_d, n_p + 1)) * 1e-12
    demands = [DataTypeDemand(f"d{i}", int(sizes[i]), float(tols[i])) for i in range(n_d)]
    return demands, parts, cost, kind


def pct(a, q):
    return float(np.percentile(a, q)) if len(a) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-datatypes", type=int, default=50)
    ap.add_argument("--max-partitions", type=int, default=8)
    args = ap.parse_args()
    logging.getLogger("eden.workflows.mapping").setLevel(logging.ERROR)  # fallbacks are expected here
    rng = np.random.default_rng(args.seed)
    gaps, lost, kinds, t_milp, t_greedy, t_milp_big = [], [], [], [], [], []
    n_both_infeasible = n_greedy_fail = n_fallback = 0
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(args.instances):
        demands, parts, cost, kind = random_instance(rng, args.max_datatypes, args.max_partitions)
        try:
            m = map_datatypes(demands, parts, cost, policy="milp")
        except MappingInfeasibleError:
            m = None
        try:
            g = map_datatypes(demands, parts, cost, policy="greedy")
        except MappingInfeasibleError:
            g = None
        if m is None:
            if g is not None:
                raise SystemExit("BUG: greedy found a mapping for an instance the MILP calls infeasible")
            n_both_infeasible += 1
            continue
        statuses[m.solver_status] = statuses.get(m.solver_status, 0) + 1
        t_milp.append(m.runtime_s)
        if len(demands) >= 40:
            t_milp_big.append(m.runtime_s)
        n_fallback += bool(m.fallbacks)
        if g is None:
            n_greedy_fail += 1
            continue
        t_greedy.append(g.runtime_s)
        gap = (g.total_cost - m.total_cost) / m.total_cost
        if gap < -1e-9:
            raise SystemExit(f"BUG: MILP worse than greedy by {-gap:.3g} (relative)")
        gaps.append(max(gap, 0.0))
        kinds.append(kind)
        room = m.nominal_cost - m.total_cost
        lost.append((g.total_cost - m.total_cost) / room if room > 0 else 0.0)
    wall = time.perf_counter() - t0
    gaps, lost, kinds = np.array(gaps), np.array(lost), np.array(kinds)
    n = args.instances
    print(f"instances: {n} (seed {args.seed}, up to {args.max_datatypes} data types x "
          f"{args.max_partitions} partitions + nominal), wall {wall:.1f} s")
    print(f"  infeasible (both policies agree): {n_both_infeasible}; MILP feasible: {len(t_milp)} "
          f"(status {statuses}); with nominal fallbacks: {n_fallback}")
    print(f"  greedy failed to pack where MILP found a mapping: {n_greedy_fail} "
          f"({n_greedy_fail / max(1, len(t_milp)):.1%} of feasible)")
    print(f"greedy relative cost gap (greedy - milp) / milp over {len(gaps)} instances both solved:")
    print(f"  min {gaps.min():.3g}  median {pct(gaps, 50):.3g}  p90 {pct(gaps, 90):.3g}  "
          f"max {gaps.max():.3g}  optimal (gap <= 1e-9): {np.mean(gaps <= 1e-9):.1%}")
    for kind, label in (("eden", "EDEN-like costs"), ("random", "unstructured costs")):
        g = gaps[kinds == kind]
        print(f"  {label} ({len(g)}): median {pct(g, 50):.3g}  p90 {pct(g, 90):.3g}  max {g.max():.3g}  "
              f"optimal {np.mean(g <= 1e-9):.1%}")
    print("share of the achievable saving greedy loses (greedy - milp) / (nominal - milp):")
    print(f"  median {pct(lost, 50):.3g}  p90 {pct(lost, 90):.3g}  max {lost.max():.3g}")
    print(f"MILP run time: median {pct(t_milp, 50) * 1e3:.1f} ms  p90 {pct(t_milp, 90) * 1e3:.1f} ms  "
          f"max {max(t_milp) * 1e3:.1f} ms; >= 40 data types: median {pct(t_milp_big, 50) * 1e3:.1f} ms  "
          f"max {max(t_milp_big, default=float('nan')) * 1e3:.1f} ms")
    print(f"greedy run time: median {pct(t_greedy, 50) * 1e3:.2f} ms  max {max(t_greedy) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
