"""Figures of energy-accuracy tradeoffs (matplotlib, Agg backend, PNGs written atomically)."""

from __future__ import annotations

from pathlib import Path

from eden.core.io import write_with


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path, overwrite: bool) -> None:
    plt = _plt()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), overwrite=overwrite, what="plot")
    plt.close(fig)


def plot_deployment(rep: dict, path: str | Path, *, overwrite: bool = False) -> None:
    """Energy per data type, nominal vs mapped (and the Pareto front when the report has one)."""
    plt = _plt()
    pareto = rep.get("pareto") or []
    ncols = 2 if pareto else 1
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols, 5), squeeze=False)
    ax = axes[0][0]
    rows = rep["datatypes"]
    names = [r["name"] for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["energy_nominal_j"] * 1e9 for r in rows], width=0.4, label="nominal")
    ax.bar([i + 0.2 for i in x], [r["energy_mapped_j"] * 1e9 for r in rows], width=0.4, label="mapped")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("DRAM energy per inference (nJ)")
    t = rep["totals"]
    ax.set_title(f"{rep['model']['id']} on {rep['profile']}: {t['energy_saving_fraction'] * 100:.1f}% energy saved",
                 fontsize=9)
    ax.legend(fontsize=8)
    if pareto:
        ax2 = axes[0][1]
        pts = sorted(pareto, key=lambda p: p["energy_saving_fraction"])
        ax2.errorbar([p["energy_saving_fraction"] * 100 for p in pts], [p["accuracy"]["mean"] * 100 for p in pts],
                     yerr=[[(p["accuracy"]["mean"] - p["accuracy"]["ci95"][0]) * 100 for p in pts],
                           [(p["accuracy"]["ci95"][1] - p["accuracy"]["mean"]) * 100 for p in pts]],
                     marker="o", capsize=3)
        for p in pts:
            ax2.annotate(f"{p['target_drop_pp']:g} pp",
                         (p["energy_saving_fraction"] * 100, p["accuracy"]["mean"] * 100),
                         fontsize=7, textcoords="offset points", xytext=(4, 4))
        ax2.set_xlabel("DRAM energy saved vs nominal (%)")
        ax2.set_ylabel("accuracy under the mapping (%)")
        ax2.set_title("energy-accuracy tradeoff across accuracy targets", fontsize=9)
    fig.tight_layout()
    _save(fig, path, overwrite)
