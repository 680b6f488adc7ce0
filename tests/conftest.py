"""Shared fixtures: seeding and problems with known answers (torch only)."""

import numpy as np
import pytest
import torch

from skhypergrad.datasets import make_ridge_problem


@pytest.fixture(autouse=True)
def _seed():
    """Seed torch and numpy for every test, restoring torch's state afterwards."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        # The legacy global state is what third-party code draws from.
        np.random.seed(0)  # noqa: NPY002
        yield


@pytest.fixture
def ridge_problem():
    """Return :func:`make_ridge_problem`, a factory of closed-form ridge problems."""
    return make_ridge_problem
