"""`eden power`: per-command energies and background powers of a memspec, a profile, or a command trace."""

from __future__ import annotations

import json

import click

from eden.cli import main
from eden.cli._common import fail, load_profile_or_fail


def _memspec(memspec, profile, standard, overrides=None):
    from eden.power.load import load_memspec
    from eden.power.memspec import MemSpec

    if (memspec is None) == (profile is None):
        raise click.UsageError("give exactly one of --memspec FILE|DIR and --profile NAME")
    if memspec is not None:
        return load_memspec(memspec, standard=standard)
    if standard is not None:
        raise click.UsageError("--standard applies to --memspec only (a profile names its standard)")
    return MemSpec.from_profile(load_profile_or_fail(profile))


def _table(summary: dict) -> str:
    domains = []
    for table in summary["by_domain"].values():
        for values in table.values():
            domains += [d for d in values if d not in domains]
    lines = [f"{summary['memspec'] or summary['source']} ({summary['standard']}): per {summary['per']}, "
             f"{summary['devices']} device(s) per rank",
             f"model: {summary['model']}", f"law: {summary['law']}"]
    for key, unit in (("energy_pJ", "pJ"), ("power_mW", "mW")):
        lines.append(f"  {'':<16}" + "".join(f"{d:>14}" for d in domains) + f"{'total':>16}  [{unit}]")
        for name, total in summary[key].items():
            cells = summary["by_domain"][key][name]
            lines.append(f"  {name:<16}" + "".join(
                f" {'-' if cells.get(d) is None else f'{cells[d]:.10g}':>13}" for d in domains) + f"{total:>16.10g}")
    for name, why in summary["not_available"].items():
        lines.append(f"  {name:<16}n/a ({why})")
    return "\n".join(lines)


def _trace_table(result: dict) -> str:
    lines = [f"command trace on {result['memspec']} ({result['standard']}), window 0..{result['end_cycle']} cycles",
             f"  total {result['total_pJ']:.10g} pJ (all ranks and devices)"]
    for name, value in result["energy_pJ"].items():
        if name != "total" and value:
            lines.append(f"  {name:<16}{value:>18.10g} pJ")
    for i, c in enumerate(result["cycles"]):
        lines.append(f"  rank {i} cycles: " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return "\n".join(lines)


@main.command("power")
@click.option("--memspec", type=click.Path(exists=False), default=None,
              help="A DRAMPower v6 JSON memspec (DDR3/DDR4/DDR5/LPDDR4/LPDDR5) or an HBM-Power config folder.")
@click.option("--profile", default=None, help="A DRAM profile (preset name or .json) instead of --memspec.")
@click.option("--standard", default=None, help="For an HBM-Power folder: HBM2 or HBM3 (default: inferred).")
@click.option("--vdd", type=float, default=None,
              help="Evaluate at this operating VDD [V] (the standard's lead rail; see docs/power-standards.md).")
@click.option("--alpha", type=float, default=1.0, show_default=True, help="IDD(V) ~ (V/V_nominal)**alpha.")
@click.option("--trace", "trace_file", type=click.Path(), default=None,
              help="A command trace (CSV: time in cycles, command, rank, bank group, bank) to book.")
@click.option("--end", type=int, default=None, help="With --trace: the window's last cycle (default: last command).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def power(memspec, profile, standard, vdd, alpha, trace_file, end, as_json):
    """Per-command energies [pJ] and background powers [mW] of one device, or the energy of a command trace.

    \b
    eden power --memspec ddr5.json --json
    eden power --memspec HBM3E_6400MTs/            (an HBM-Power folder)
    eden power --profile lpddr4-3200-6gb-x16 --vdd 1.0
    eden power --memspec lpddr5.json --trace t.csv --end 200 --json
    """
    from eden.power.memspec import device_summary

    spec = _memspec(memspec, profile, standard)
    if vdd is not None:
        spec = spec.at_vdd(vdd, alpha)
    if trace_file is not None:
        from eden.power.trace import read_trace, simulate

        commands, trace_end = read_trace(trace_file)
        result = simulate(spec, commands, end=end if end is not None else trace_end, source=trace_file).to_dict()
        result["model"] = spec.spec.model
        click.echo(json.dumps(result, indent=2) if as_json else _trace_table(result))
        return
    if end is not None:
        fail("--end applies to --trace only")
    summary = device_summary(spec)
    click.echo(json.dumps(summary, indent=2) if as_json else _table(summary))
