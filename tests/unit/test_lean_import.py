"""``import eden`` stays light: no CuPy, no numba, no CUDA initialisation."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    import torch

    def _no_cuda(*args, **kwargs):
        raise RuntimeError("import eden initialised CUDA")

    torch.cuda.init = _no_cuda
    torch.cuda.current_device = _no_cuda
    torch.cuda._lazy_init = _no_cuda

    import eden  # noqa: F401

    heavy = sorted(m for m in ("cupy", "numba") if m in sys.modules)
    assert not heavy, f"import eden imported {heavy}"
    assert not torch.cuda.is_initialized(), "import eden initialised CUDA"
    print("lean")
""")


def test_import_eden_is_lean():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("lean")
