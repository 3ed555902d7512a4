"""Importers of public DRAM data (eden/dram/importers): registry, source checks, shipped files.

The shipped raw files (``error_models/raw``) must come out of their importers identical in every
dataset and attribute but the root's ``created_utc``; that check reads the public data from
``../shared/data`` beside the checkout (or ``$EDEN_SHARED_DATA``) and is skipped without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from eden.cli import main
from eden.core.resources import resource_dir
from eden.dram.importers import IMPORTERS, Importer, get_importer, import_raw, register
from eden.dram.raw import load_raw
from eden.errors import EdenConfigError, EdenDataError, EdenFileNotFoundError

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EDEN_SHARED_DATA", REPO.parent / "shared" / "data"))
SOURCES = {"diva": "diva-ddr3", "voltron": "voltron-ddr3l"}


def _source(name: str) -> Path:
    path = SHARED / SOURCES[name]
    if not path.is_dir():
        pytest.skip(f"public data {path} not present (set EDEN_SHARED_DATA to its folder)")
    return path


def _h5_items(path: Path) -> dict:
    """Every attribute and dataset of an HDF5 file, by path; the root's created_utc left out."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, node):
            for key, value in node.attrs.items():
                if not (name == "/" and key == "created_utc"):
                    out[f"{name}@{key}"] = (np.asarray(value).dtype.str, np.asarray(value).tolist())
            if isinstance(node, h5py.Dataset):
                out[name] = (node.dtype.str, node.shape, node[()].tolist())
        visit("/", f)
        f.visititems(visit)
    return out


def test_registry_lists_the_importers_and_the_cli_offers_them():
    assert {"diva", "diva-summaries", "voltron"} <= set(IMPORTERS)
    r = CliRunner().invoke(main, ["raw", "import", "--help"])
    assert r.exit_code == 0
    for name in IMPORTERS:
        assert name in r.output


def test_unknown_importer_lists_known_names():
    with pytest.raises(EdenConfigError, match=r"unknown importer 'vltron'; known: .*voltron.*did you mean 'voltron'"):
        get_importer("vltron")
    r = CliRunner().invoke(main, ["raw", "import", "vltron", ".", "-o", "x.h5"])
    assert r.exit_code == 2 and "voltron" in r.output


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        register(Importer("voltron", "again", (), IMPORTERS["voltron"].convert))


@pytest.mark.parametrize("name", sorted(IMPORTERS))
def test_wrong_source_folder_names_what_is_missing(name, tmp_path):
    with pytest.raises(EdenFileNotFoundError, match=f"not a {name} data folder.*it lacks"):
        import_raw(name, tmp_path)
    with pytest.raises(EdenFileNotFoundError, match="does not exist or is not a folder"):
        import_raw(name, tmp_path / "nowhere")
    out = tmp_path / "out.h5"
    r = CliRunner().invoke(main, ["raw", "import", name, str(tmp_path), "-o", str(out)])
    assert r.exit_code == 1 and "it lacks" in r.output and not out.exists()


def test_voltron_rows_that_do_not_parse_name_file_and_line(tmp_path):
    csv = tmp_path / "dimm_faulty_cachelines.csv"
    csv.write_text("dimm_name,vdd,vendor,error_cacheline_percent\nA1,1.1,A,0.5\nA1,low,A,3\n")
    with pytest.raises(EdenDataError, match=r"dimm_faulty_cachelines.csv:3: vdd and error_cacheline_percent"):
        import_raw("voltron", tmp_path)
    csv.write_text("dimm_name,vdd,vendor,error_cacheline_percent\nA1,1.1,A,0.5\n")
    raw = import_raw("voltron", tmp_path)
    assert raw.names == ("A1_vdd1.100V",)
    assert raw.test("A1_vdd1.100V").value == 0.005


def test_cli_writes_atomically_and_refuses_to_clobber(tmp_path):
    csv = tmp_path / "dimm_faulty_cachelines.csv"
    csv.write_text("dimm_name,vdd,vendor,error_cacheline_percent\nB2,1.025,B,12.5\n")
    out = tmp_path / "v.h5"
    r = CliRunner().invoke(main, ["raw", "import", "voltron", str(tmp_path), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert load_raw(out).test("B2_vdd1.025V").value == 0.125
    before = out.read_bytes()
    r = CliRunner().invoke(main, ["raw", "import", "voltron", str(tmp_path), "-o", str(out)])
    assert r.exit_code == 1 and "--force" in r.output and out.read_bytes() == before
    r = CliRunner().invoke(main, ["raw", "import", "voltron", str(tmp_path), "-o", str(out), "--force"])
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("name", ["diva", "voltron"])
def test_import_reproduces_the_shipped_raw_file(name, tmp_path):
    src = _source(name)
    shipped = resource_dir("error_models") / "raw" / IMPORTERS[name].shipped
    out = tmp_path / "out.h5"
    r = CliRunner().invoke(main, ["raw", "import", name, str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    if out.read_bytes() != shipped.read_bytes():  # HDF5 stores the creation time: compare the rest
        got, want = _h5_items(out), _h5_items(shipped)
        assert sorted(got) == sorted(want)
        for key in want:
            assert got[key] == want[key], key


def test_the_cli_starts_without_the_registry():
    # The registry loads numpy and h5py; `eden raw import` reads it only when it runs or prints help.
    import subprocess
    import sys

    code = "import sys, eden.cli; print('eden.dram.importers' in sys.modules, 'h5py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.split() == ["False", "False"]
