"""`eden profiles list`, `eden profiles show NAME [--resolved] [--json] [--set KEY=VALUE]`."""

from __future__ import annotations

import json
import textwrap

import click

from eden.cli import main
from eden.cli._common import fail, load_profile_or_fail


@main.group()
def profiles():
    """DRAM device profiles: organization, timings, currents, operating points."""


def _op_rows(prof, with_models: bool) -> list[list[str]]:
    from eden.dram.profiles import ProfileError

    rows = [["NAME", "VDD[V]", "tRCD[ns]", "BER", "MEASURED BER", "SOURCE"] + (["MODEL"] if with_models else [])]
    for op in prof.operating_points:
        src = prof.sources[op.source]
        measured = "-" if op.measured is None or op.measured.ber is None else f"{op.measured.ber:.3g}"
        row = [op.name, f"{op.vdd_v:g}", f"{op.trcd_ns:g}", f"{op.ber:.3g}", measured,
               op.source + (" (assumption)" if src.is_assumption else "")]
        if with_models:
            try:
                row.append(str(prof.error_model(op)))
            except ProfileError as exc:
                fail(str(exc))
        rows.append(row)
    return rows


def _table(rows: list[list[str]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


@profiles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON.")
def profiles_list(as_json):
    """List the DRAM profiles eden ships (presets)."""
    from eden.dram.profiles import ProfileError, list_presets, load_profile

    entries, bad = [], []
    for name in list_presets():
        try:
            prof = load_profile(name)
        except ProfileError as exc:
            bad.append(str(exc))
            entries.append({"name": name, "error": str(exc)})
            continue
        entries.append({
            "name": name, "standard": prof.power.standard, "description": prof.description, "file": prof.path,
            "extends": [str(b) for b in prof.bases],
            "nominal": {"vdd_v": prof.power.vdd_v, "trcd_ns": prof.timing.trcd_ns},
            "operating_points": [{"name": op.name, "vdd_v": op.vdd_v, "trcd_ns": op.trcd_ns, "ber": op.ber}
                                 for op in prof.operating_points],
        })
    if as_json:
        click.echo(json.dumps(entries, indent=2))
    else:
        rows = [["NAME", "STANDARD", "VDD[V]", "tRCD[ns]", "OPS", "MAX BER"]]
        for e in entries:
            if "error" in e:
                rows.append([e["name"], "INVALID", "-", "-", "-", "-"])
                continue
            bers = [op["ber"] for op in e["operating_points"]]
            rows.append([e["name"], e["standard"], f"{e['nominal']['vdd_v']:g}", f"{e['nominal']['trcd_ns']:g}",
                         str(len(bers)), f"{max(bers):.3g}"])
        click.echo(_table(rows, indent=""))
        click.echo("\n`eden profiles show NAME [--resolved]` prints one; use one with --profile NAME --op OP.")
    if bad:
        fail("invalid shipped profile(s):\n" + "\n".join(bad))


def _parse_sets(values) -> dict[str, str]:
    out = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE (e.g. timing.trcd_ns=14.16), got {item!r}",
                                     param_hint="--set")
        out[key.strip()] = value.strip()
    return out


@profiles.command("show")
@click.argument("name", metavar="NAME|FILE.json")
@click.option("--resolved", is_flag=True,
              help="Print the complete resolved record (bases merged, every field with its citation, "
                   "each operating point's error model).")
@click.option("--set", "sets", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override a field (checked; implies --resolved), e.g. --set timing.trcd_ns=14.16.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: the file as stored, or with --resolved the complete record.")
def profiles_show(name, resolved, sets, as_json):
    """Print a DRAM profile (a preset name or a .json file)."""
    overrides = _parse_sets(sets)
    resolved = resolved or bool(overrides)
    prof = load_profile_or_fail(name, param_hint="NAME" if not overrides else "--set", overrides=overrides or None)
    if as_json:
        if resolved:
            click.echo(json.dumps(prof.to_dict(), indent=2))
        else:
            with open(prof.path, encoding="utf-8") as fh:
                click.echo(fh.read().rstrip("\n"))
        return
    org, pw, tm = prof.organization, prof.power, prof.timing
    click.echo(f"{prof.name} ({pw.standard}) {prof.path}")
    if prof.bases:
        click.echo(f"  extends: {' -> '.join(prof.bases)}")
    click.echo(_wrap(prof.description))
    click.echo(f"  {org.devices_per_rank} x{org.device_width_bits} devices per rank, {org.banks} banks x "
               f"{org.rows} rows x {org.row_bytes} B rows ({org.to_address().capacity_bytes / 2**30:g} GiB); "
               f"nominal VDD {pw.vdd_v:g} V, tRCD {tm.trcd_ns:g} ns, tCK {tm.tck_ns:g} ns")
    if resolved:
        for section in ("organization", "power", "timing"):
            click.echo(f"\n{section}")
            values = getattr(prof, section).to_dict()
            rows = [[k, f"{v:g}" if isinstance(v, float) else str(v), prof.cite[f"{section}.{k}"]]
                    for k, v in values.items()]
            click.echo(_table(rows))
    click.echo("\noperating points")
    click.echo(_table(_op_rows(prof, with_models=resolved)))
    if resolved:
        click.echo("\nsources")
        for sid, src in prof.sources.items():
            url = f" <{src.url}>" if src.url else ""
            click.echo(_wrap(f"{sid} [{src.kind}]: {src.citation}{url}"))
        assumptions = prof.assumptions()
        if assumptions:
            click.echo("\nassumptions")
            seen = {}
            for where, text in assumptions:
                seen.setdefault(text, []).append(where)
            for text, wheres in seen.items():
                click.echo(_wrap(f"{', '.join(wheres)}: {text}"))
    if prof.notes:
        click.echo("\nnotes")
        for note in prof.notes:
            click.echo(_wrap(note))
    if not resolved:
        click.echo("\n(--resolved: every field with its citation, the sources and assumptions, each point's model)")
