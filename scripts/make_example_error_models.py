#!/usr/bin/env python
"""(Re)create the bundled example error-model files in ``error_models/examples/``.

The examples are illustrative: their parameters are round numbers chosen to show
each error-model kind, not fitted to measured DRAM data. Running the script is
idempotent: a file whose stored model and provenance already match is left as
is (so reruns produce no spurious changes); anything else is rewritten with
``overwrite=True``.

Usage::

    python scripts/make_example_error_models.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import eden  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(REPO))

from eden.errormodels.model import ErrorModel  # noqa: E402

NOTE = ("Illustrative example shipped with eden; parameters are round numbers chosen to "
        "demonstrate the model kind, NOT fitted to measured DRAM data.")

EXAMPLES: dict[str, tuple[str, str]] = {
    "em0_uniform_1e-4.h5": (
        "em0:p=1e-4",
        "Uniform random bit errors: every bit flips with probability 1e-4.",
    ),
    "em1_weak_bitlines.h5": (
        "em1:fraction=0.01,p=0.01,p_else=1e-6",
        "1% of the bitlines are weak (flip probability 1e-2); all other bits flip with 1e-6.",
    ),
    "em2_weak_wordlines.h5": (
        "em2:fraction=0.01,p=0.01,p_else=1e-6",
        "1% of the wordlines (rows) are weak (flip probability 1e-2); all other bits flip with 1e-6.",
    ),
    "em3_data_dependent.h5": (
        "em3:p10=1e-3,p01=1e-5",
        "Data-dependent errors: a stored 1 reads as 0 with 1e-3, a stored 0 reads as 1 with 1e-5.",
    ),
}


def provenance_for(description: str) -> dict:
    """Provenance record stored with every example file."""
    return {"kind": "illustrative example", "fitted_to_measured_data": False,
            "note": NOTE, "description": description,
            "generator": "scripts/make_example_error_models.py"}


def _up_to_date(path: Path, model: ErrorModel, provenance: dict) -> bool:
    """The file holds ``model`` with ``provenance`` (root attribute, docs/formats.md): no rewrite needed."""
    import h5py

    if not path.is_file():
        return False
    try:
        if ErrorModel.load(path) != model:
            return False
        with h5py.File(path, "r") as f:
            stored = f.attrs.get("provenance")
        return stored is not None and json.loads(stored) == provenance
    except ValueError:  # unreadable or invalid: rewrite it
        return False


def main(argv: list[str] | None = None) -> int:
    """Write the example files; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "error_models" / "examples",
                        help="output folder (default: error_models/examples in the repository)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (spec, description) in EXAMPLES.items():
        path = args.out / name
        model = ErrorModel.from_spec(spec)
        provenance = provenance_for(description)
        if _up_to_date(path, model, provenance):
            print(f"unchanged {path}")
            continue
        model.save(path, provenance=provenance, overwrite=True)
        print(f"wrote     {path}  ({model.to_spec()}, expected BER {model.expected_ber():.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
