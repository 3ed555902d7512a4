"""``import eden`` stays light, and the DRAM side works without torch.

* ``import eden`` imports no torch, numba or CuPy, and never initialises CUDA; ``import eden.cli``
  not even numpy.
* ``eden.dram``, ``eden.power``, ``eden.errormodels``, ``eden.formats`` (every module) and
  ``eden.workflows.mapping`` import in a fresh interpreter where torch cannot be imported, as if
  it were not installed: a meta-path finder raises ImportError for ``torch`` and its submodules.
  (``sys.modules['torch'] = None`` would too, but scipy.stats probes ``sys.modules['torch']``
  for a ``Tensor`` class on import and fails on the None, which torch's absence never causes.)
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "eden"
TORCH_FREE_PACKAGES = ("dram", "power", "errormodels", "formats")
TORCH_FREE_MODULES = ("eden.workflows.mapping",)


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120, cwd=PKG.parent)


def _torch_free_modules() -> list[str]:
    names = []
    for package in TORCH_FREE_PACKAGES:
        for path in sorted((PKG / package).rglob("*.py")):
            parts = path.relative_to(PKG.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names + list(TORCH_FREE_MODULES)


def test_import_eden_is_lean():
    proc = _run("""
        import sys

        import eden  # noqa: F401

        heavy = sorted(m for m in ("torch", "cupy", "numba") if m in sys.modules)
        assert not heavy, f"import eden imported {heavy}"
        import eden.cli  # noqa: F401  (commands import the library when they run)

        heavy = sorted(m for m in ("torch", "cupy", "numba", "numpy") if m in sys.modules)
        assert not heavy, f"import eden.cli imported {heavy}"
        print("lean")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("lean")


def test_import_eden_initialises_no_cuda():
    proc = _run("""
        import torch

        def _no_cuda(*args, **kwargs):
            raise RuntimeError("import eden initialised CUDA")

        torch.cuda.init = _no_cuda
        torch.cuda.current_device = _no_cuda
        torch.cuda._lazy_init = _no_cuda

        import eden  # noqa: F401
        import eden.cli  # noqa: F401

        assert not torch.cuda.is_initialized(), "import eden initialised CUDA"
        print("no cuda")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("no cuda")


def test_the_torch_free_list_is_complete():
    names = _torch_free_modules()
    assert {"eden.dram.profiles", "eden.power.memspec", "eden.errormodels.model", "eden.formats.registry",
            "eden.workflows.mapping"} <= set(names)


@pytest.mark.parametrize("module", _torch_free_modules())
def test_dram_side_imports_without_torch(module):
    proc = _run(f"""
        import importlib
        import sys

        class NoTorch:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError(f"{{name}} is not installed (test_lean_import)")
                return None

        sys.meta_path.insert(0, NoTorch)
        importlib.import_module({module!r})
        assert "torch" not in sys.modules
        print("imported")
    """)
    assert proc.returncode == 0, f"{module} needs torch:\n{proc.stderr}"
    assert proc.stdout.strip().endswith("imported")


def test_every_public_name_resolves():
    """Each name of ``eden.__all__`` (and each ``eden.<module>`` alias) loads from its layer."""
    proc = _run("""
        import eden
        for name in eden.__all__ + sorted(eden._MODULES):
            assert getattr(eden, name) is not None, name
        assert eden.emulate.__module__ == "eden.nn.emulate" and callable(eden.characterize)
        assert issubclass(eden.EdenConfigError, (eden.EdenError, ValueError))
        print(len(eden.__all__))
    """)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 30
