"""Distributions shown in scipy's own words, for messages and reprs."""

from __future__ import annotations

import numpy as np


def format_distribution(distribution) -> str:
    """Write a search-space entry as a user would: scipy's ``name(args, kwargs)``.

    A frozen scipy distribution is written as it is built, e.g.
    ``loguniform(1e-06, 0.1)`` or ``uniform(loc=0.5, scale=0.8)``, instead of
    ``<...rv_continuous_frozen object at 0x...>``; lists and tuples show
    their items that way; anything else is its ``repr``.

    Parameters
    ----------
    distribution : object
        An entry of ``param_distributions`` (or part of one).

    Returns
    -------
    text : str

    Examples
    --------
    >>> from scipy.stats import loguniform, uniform
    >>> from skhypergrad.hyperparams import format_distribution
    >>> format_distribution(loguniform(1e-6, 1e-1))
    'loguniform(1e-06, 0.1)'
    >>> format_distribution(uniform(loc=0.5, scale=0.8))
    'uniform(loc=0.5, scale=0.8)'
    """
    family = getattr(distribution, "dist", None)
    name = getattr(family, "name", None)
    if isinstance(name, str) and hasattr(distribution, "args"):
        args = [repr(plain(a)) for a in distribution.args]
        args += [
            f"{k}={plain(v)!r}" for k, v in getattr(distribution, "kwds", {}).items()
        ]
        return f"{name}({', '.join(args)})"
    if isinstance(distribution, list | tuple):
        items = ", ".join(format_distribution(v) for v in distribution)
        if isinstance(distribution, tuple):
            return f"({items},)" if len(distribution) == 1 else f"({items})"
        return f"[{items}]"
    return repr(plain(distribution))


def plain(value):
    """A numpy scalar as the Python number it holds (``0.1``, not
    ``np.float64(0.1)``); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value
