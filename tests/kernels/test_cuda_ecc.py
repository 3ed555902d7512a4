"""ECC on a CUDA tensor (the step runs on the host from the log, writes the changed words back on
the device) gives the CPU path's bits and counts. Needs CuPy and a CUDA device; skipped otherwise."""

import warnings

import numpy as np
import pytest
import torch

import eden

pytestmark = pytest.mark.gpu

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cupy = pytest.importorskip("cupy")

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)


def _bits(t):
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().copy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int8])
@pytest.mark.parametrize("ecc", ["secded72", "ondie136", "chipkill144"])
@pytest.mark.parametrize("spec", ["em0:p=2e-2", "em3:p10=2e-2,p01=1e-3", "em0:p=1e-2;persistence=fixed"])
def test_cuda_ecc_equals_cpu(dtype, ecc, spec):
    g = torch.Generator().manual_seed(0)
    clean = (torch.randn(50001, generator=g) * 3).to(dtype)
    cpu, dev = clean.clone(), clean.clone().cuda()
    kw = dict(seed=3, base_address=8192 + 12, ecc=ecc, ecc_policy="zero")
    lc = eden.inject_(cpu, spec, backend="cpu", **kw)
    ld = eden.inject_(dev, spec, **kw)
    assert ld.backend == "cuda"
    assert np.array_equal(_bits(dev), _bits(cpu))
    assert ld.ecc == lc.ecc and ld.n_bits == lc.n_bits
    ld.undo()
    assert np.array_equal(_bits(dev), _bits(clean))
