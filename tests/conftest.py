"""Shared pytest configuration: deterministic global RNGs for every test."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_global_rngs():
    torch.manual_seed(0)
    np.random.seed(0)
    yield
