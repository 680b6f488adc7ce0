"""Randomness: one ``random_state`` in, independent seeds out."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state


def spawn_seeds(random_state, n: int) -> list[int]:
    """Draw ``n`` integer seeds from ``random_state`` (int, RandomState or None).

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
    n : int

    Returns
    -------
    seeds : list of int
    """
    rng = check_random_state(random_state)
    return [int(s) for s in rng.randint(0, 2**31 - 1, size=n)]


def generator(seed: int) -> np.random.Generator:
    """A numpy Generator seeded with ``seed``."""
    return np.random.default_rng(seed)
