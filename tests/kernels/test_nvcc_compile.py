"""Every CUDA source compiles with nvcc (host-side syntax/type check, no GPU needed).

``-DEDEN_NVCC_CHECK`` turns on the explicit template instantiations that the
CUDA backend asks NVRTC for at run time, so every kernel is compiled here.
"""

import shutil
import subprocess

import pytest

from eden.core.resources import resource_dir

NVCC = shutil.which("nvcc")
SOURCES = sorted(resource_dir("cuda").glob("*.cu"))


def test_cuda_sources_exist():
    assert SOURCES, "no cuda/*.cu sources found"


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("source", SOURCES, ids=[p.name for p in SOURCES])
def test_nvcc_compiles(source, tmp_path):
    cmd = [NVCC, "-std=c++17", "-DEDEN_NVCC_CHECK", "-fmad=false", "-arch=sm_80", "-c", str(source),
           "-o", str(tmp_path / (source.stem + ".o"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}\n{proc.stdout}"
