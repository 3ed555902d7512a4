"""Results are bit-identical to the goldens recorded before the package was split into layers.

``tests/golden/record.py`` holds the computations and wrote ``tests/golden/goldens.json`` from the
code before the move (issue 15): injection outputs in every storage format, emulated logits and
statistics, a tolerance file, fits, profiles, per-command energies and mappings.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"


def _recorder():
    spec = importlib.util.spec_from_file_location("eden_golden_record", GOLDEN_DIR / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}/{k}")
    else:
        yield prefix, obj


@pytest.fixture(scope="module")
def results():
    return _recorder().compute()


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN_DIR / "goldens.json").read_text())


@pytest.mark.parametrize("section", ["injection", "emulation", "characterization", "fits", "profiles", "power",
                                     "mapping"])
def test_bit_identical_to_golden(results, golden, section):
    want = dict(_flatten(golden[section]))
    got = dict(_flatten(json.loads(json.dumps(results[section]))))
    assert want, f"golden section {section} is empty"
    assert sorted(got) == sorted(want), f"{section}: entries differ: {sorted(set(got) ^ set(want))[:10]}"
    wrong = [k for k in want if got[k] != want[k]]
    assert not wrong, f"{section}: {len(wrong)} of {len(want)} entries changed, e.g. {wrong[:5]}"
