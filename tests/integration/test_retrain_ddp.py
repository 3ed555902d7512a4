"""Data-parallel retraining: `torchrun --nproc_per_node 2 -m eden retrain` on the gloo backend (CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

TINY = """
import torch
from eden.nn import zoo


def train():
    x, y = zoo.digits_split("train")
    return torch.utils.data.TensorDataset(x[:192], y[:192])


def test():
    x, y = zoo.digits_split("test")
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:128], y[:128]), batch_size=128)
"""

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


def _torchrun(tmp: Path, out: Path, env: dict) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "eden", "retrain", "--no-progress", "--data", "tinydata:test", "--train-data", "tinydata:train",
           "--no-tolerance", "--epochs", "2", "--ramp-epochs", "1", "--target-ber", "4e-3", "--format", "int8",
           "--train-batch-size", "32", "--seed", "3", "-o", str(out)]
    r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return json.loads(out.with_suffix(".json").read_text())


def test_two_gloo_ranks_draw_different_errors_and_reproduce(tmp_path):
    (tmp_path / "tinydata.py").write_text(TINY)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", GLOO_SOCKET_IFNAME=os.environ.get("GLOO_SOCKET_IFNAME", "lo"))
    first = _torchrun(tmp_path, tmp_path / "a.pt", env)
    assert first["world_size"] == 2
    for h in first["history"]:
        r0, r1 = h["ranks"]
        assert (r0["rank"], r1["rank"]) == (0, 1)
        assert r0["samples"] == r1["samples"] == 96  # each rank its half of the 192 samples
        assert r0["flipped_bits"] != r1["flipped_bits"]  # different errors from the same seed tree
        for r in (r0, r1):  # at about the scheduled BER (weights and IFMs of 3 batches)
            assert abs(r["flipped_bits"] / r["bits"] - h["ber"]) < (0.1 if h["ber"] == 4e-3 else 0.5) * h["ber"]
    second = _torchrun(tmp_path, tmp_path / "b.pt", env)
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["history"] == [dict(h, seconds=f["seconds"]) for h, f in zip(second["history"], first["history"])]
