"""Emulation with two-level persistence: weight errors are redrawn per forward pass among the fixed
weak cells (the grouped weight path, not the packed one), q = 1 equals ``fixed``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eden.nn import zoo
from eden.nn.emulate import EmulationPlan, emulate


@pytest.fixture(scope="module")
def lenet():
    return zoo.load_model("digits-lenet")


def _flips(model, spec, n=3):
    """Per forward, the set of flipped bits of every weight (int32 view) against the clean weights."""
    x = torch.zeros(4, 1, 8, 8)
    clean = {k: v.detach().clone() for k, v in model.named_parameters() if k.endswith("weight")}
    out = []
    with emulate(model, EmulationPlan.uniform(spec, select="*.weight"), seed=2), torch.inference_mode():
        for _ in range(n):
            model(x)
            cur = dict(model.named_parameters())
            out.append(np.concatenate([
                np.flatnonzero(np.unpackbits((cur[k].detach().view(torch.int32) ^ c.view(torch.int32)).numpy()
                                             .view(np.uint8)))
                + 10**9 * i for i, (k, c) in enumerate(clean.items())]))
    for k, c in clean.items():  # restored after the emulation
        assert torch.equal(dict(model.named_parameters())[k].detach(), c)
    return out


def test_weights_redrawn_among_the_weak_cells(lenet):
    two = _flips(lenet, "em0:p=2e-3;persistence=two_level,q=0.25")
    weak = _flips(lenet, "em0:p=8e-3;persistence=fixed", n=1)[0]
    assert all(len(f) > 0 and np.isin(f, weak).all() for f in two)
    assert not np.array_equal(two[0], two[1]) and not np.array_equal(two[1], two[2])
    assert len(np.intersect1d(two[0], two[1])) > 0  # some weak cells fail on both


def test_q_one_is_fixed(lenet):
    a = _flips(lenet, "em0:p=2e-3;persistence=two_level,q=1")
    b = _flips(lenet, "em0:p=2e-3;persistence=fixed")
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a[0]) > 0
    assert np.array_equal(a[0], a[1])
