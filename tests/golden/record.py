"""Record eden's golden outputs: what the same inputs and seeds must keep giving, bit for bit.

The goldens were recorded from the code *before* the package was split into layers (issue 15),
and ``tests/integration/test_golden.py`` compares today's code to them. Re-record only when a
change of results is intended, and say so in the commit::

    python tests/golden/record.py            # writes tests/golden/goldens.json

Every entry is a SHA-256 of the exact bytes (tensors), or the exact JSON text (records) with
run-dependent fields (timestamps, versions, file paths) removed. The computations are
``compute()`` below, shared with the test, so the recorder and the checker cannot drift.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "goldens.json"
ROOT = HERE.parent.parent

INJECT_SPECS = [
    "em0:p=1e-3",
    "em0:p=0.3",
    "em1:fraction=0.01,p=0.05,p_else=1e-6",
    "em2:fraction=0.02,p=1e-2,p_else=1e-6",
    "em3:p10=1e-3,p01=1e-5",
    "em1:fraction=0.01,p=0.01,p_else=1e-6+em2:fraction=0.02,p=1e-3",
    "em0:p=1e-3;persistence=fixed",
    "em1:fraction=0.01,p=0.05;persistence=fixed",
]
# (name, torch dtype name, corrections)
INJECT_TENSORS = [
    ("fp32", "float32", ("none", "zero", "clamp")),
    ("fp16", "float16", ("none", "zero")),
    ("bf16", "bfloat16", ("none", "clamp")),
    ("int16", "int16", ("none",)),
    ("int8", "int8", ("none",)),
    ("int4", "uint8", ("none",)),  # packed int4: two values per byte
]
VOLATILE = {"created", "created_utc", "timestamp", "eden_version", "version", "elapsed_s", "wall_s",
            "duration_s", "path", "file", "cache", "cache_path", "started", "finished"}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _scrub(obj):
    """Drop run-dependent fields (timestamps, versions, paths), recursively."""
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list | tuple):
        return [_scrub(v) for v in obj]
    return obj


def _json_digest(obj) -> str:
    return _digest(json.dumps(_scrub(obj), sort_keys=True, allow_nan=True, default=str).encode())


def _tensor(dtype_name: str):
    import torch

    g = torch.Generator().manual_seed(1234)
    n = 3 * 8192 + 77  # several rows, a ragged tail
    if dtype_name.startswith("float") or dtype_name == "bfloat16":
        return (torch.randn(n, generator=g) * 3).to(getattr(torch, dtype_name))
    info = torch.iinfo(getattr(torch, dtype_name))
    return torch.randint(info.min, info.max + 1, (n,), generator=g, dtype=getattr(torch, dtype_name))


def injection() -> dict:
    import torch

    import eden

    out = {}
    for spec in INJECT_SPECS:
        for fmt, dtype_name, corrections in INJECT_TENSORS:
            for corr in corrections:
                t = _tensor(dtype_name)
                clean = t.clone()
                log = eden.inject_(t, spec, seed=7, access=3, correction=corr, base_address=8192 * 5)
                key = f"{spec}|{fmt}|{corr}"
                out[key] = {"sha256": _digest(t.view(torch.uint8).numpy().tobytes()) if t.dtype != torch.bfloat16
                            else _digest(t.view(torch.int16).numpy().tobytes()),
                            "n_bits": int(log.n_bits)}
                log.undo()
                if not torch.equal(t.view(torch.uint8) if t.dtype != torch.bfloat16 else t.view(torch.int16),
                                   clean.view(torch.uint8) if t.dtype != torch.bfloat16 else clean.view(torch.int16)):
                    raise AssertionError(f"undo not exact for {key}")
    return out


def emulation() -> dict:
    import torch

    import eden
    from eden.nn import zoo

    model = zoo.load_model("digits-lenet")
    x, _ = zoo.digits_split("test")
    x = x[:64]
    out = {}
    plans = {
        "fp32-zero": eden.EmulationPlan.uniform("em0:p=1e-3", format="fp32", correction="zero"),
        "int8": eden.EmulationPlan.uniform("em1:fraction=0.01,p=0.05", format="int8"),
        "int4-w": eden.EmulationPlan.uniform("em0:p=1e-2", format="int4", select="*.weight"),
        "bf16-clamp": eden.EmulationPlan.uniform("em3:p10=1e-2,p01=1e-4", format="bf16", correction="clamp"),
    }
    for name, plan in plans.items():
        with torch.no_grad(), eden.emulate(model, plan, seed=11) as emu:
            y1 = model(x)
            y2 = model(x)
            stats = {k: dataclasses.asdict(v) for k, v in emu.stats.items()}
        out[name] = {"logits": _digest(torch.cat([y1, y2]).numpy().tobytes()), "stats": _json_digest(stats)}
    return out


def characterization() -> dict:
    import torch

    import eden
    from eden.nn import zoo

    model = zoo.load_model("digits-lenet")
    x, y = zoo.digits_split("test")
    loader = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 300, 100)]
    rec = eden.characterize(model, loader, "em0:p=1e-3", format="fp32", correction="zero", mode="both",
                            seeds=2, resolution_decades=0.5, ber_min=1e-6, model_id="digits-lenet",
                            data_id="digits[:300]")
    del torch
    return {"tolerance": _json_digest(rec), "record": _scrub(rec)}


def fits() -> dict:
    from eden.dram.fit import fit
    from eden.dram.raw import load_raw

    out = {}
    diva = load_raw(ROOT / "error_models/raw/diva_ddr3_A10.h5")
    for test in ("trcd10.0ns", "summary_trcd7.5ns_tras37.5ns_trp12.5ns"):
        out[f"diva:{test}"] = _json_digest(fit(diva, test=test, seed=0).to_dict())
    voltron = load_raw(ROOT / "error_models/raw/voltron_ddr3l_faulty_lines.h5")
    out["voltron:A1_vdd1.100V"] = _json_digest(fit(voltron, test="A1_vdd1.100V", seed=0).to_dict())
    return out


RECORDED_PRESETS = ("ddr3-diva-a10", "ddr3l-1600-4gb-x16", "ddr3l-vendor-a", "ddr3l-vendor-b", "ddr3l-vendor-c",
                    "ddr4-2400-8gb-x8", "ddr4-2400-8gb-x8-vendor-a", "ddr4-2400-8gb-x8-vendor-b",
                    "ddr4-2400-8gb-x8-vendor-c")
"""The presets the goldens were recorded on (later presets, e.g. DDR5/LPDDR/HBM, have their own tests)."""


def _presets() -> list[str]:
    from eden.dram.profiles import list_presets

    return [name for name in list_presets() if name in RECORDED_PRESETS]


def profiles() -> dict:
    from eden.dram.profiles import load_profile

    return {name: _json_digest(load_profile(name).to_dict()) for name in _presets()}


def power() -> dict:
    from eden.dram.profiles import load_profile
    from eden.power.memspec import background_powers, command_energies
    from eden.workflows.deploy import memspec_of

    out = {}
    for name in _presets():
        prof = load_profile(name)
        for op in prof.op_names:
            ms = memspec_of(prof).at_vdd(prof.operating_point(op).vdd_v)
            out[f"{name}|{op}"] = _json_digest({"cmd": command_energies(ms).to_dict(),
                                                "bg": background_powers(ms).to_dict()})
        out[name] = _json_digest({"cmd": command_energies(memspec_of(prof)).to_dict(),
                                  "bg": background_powers(memspec_of(prof)).to_dict()})
    return out


def mapping(record: dict) -> dict:
    from eden.dram.profiles import load_profile
    from eden.workflows.deploy import DeployOptions, deploy

    out = {}
    for prof in ("ddr4-2400-8gb-x8", "ddr3l-vendor-c", "ddr3-diva-a10"):
        for policy in ("greedy", "milp"):
            for objective in ("energy", "latency"):
                rep = deploy(record, load_profile(prof), options=DeployOptions(policy=policy, objective=objective))
                out[f"{prof}|{policy}|{objective}"] = {
                    "totals": _json_digest(rep["totals"]),
                    "assignment": {r["name"]: r["partition"] for r in rep["datatypes"]},
                    "energy_mapped_j": rep["totals"]["energy_mapped_j"],
                    "energy_nominal_j": rep["totals"]["energy_nominal_j"],
                }
    return out


def compute() -> dict:
    char = characterization()
    return {
        "injection": injection(),
        "emulation": emulation(),
        "characterization": char["tolerance"],
        "fits": fits(),
        "profiles": profiles(),
        "power": power(),
        "mapping": mapping(char["record"]),
    }


if __name__ == "__main__":
    result = compute()
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({sum(len(v) if isinstance(v, dict) else 1 for v in result.values())} entries)",
          file=sys.stderr)
    del np
