"""Search-space entries: what a hyperparameter is, its bounds and its raw form.

A tuned value is optimised in an unconstrained *raw* form: ``raw = log(value)``
for log-scaled ranges (kept inside the bounds by projection) and
``raw = logit((value - low) / (high - low))`` for linear ranges.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._format import format_distribution
from ._vectors import (
    PerClass,
    PerFeature,
    PerLayer,
    PerParameter,
    PerSample,
    _Vector,
)
from .exceptions import InvalidHyperparameterError

_GRID_HINT = (
    "Search it with GridSearchCV or RandomizedSearchCV around this estimator, "
    "or fix its value on the estimator."
)
# Linear-scale raw values live in [-_LOGIT_LIMIT, _LOGIT_LIMIT]: sigmoid(12) is
# within 6e-6 of the bound, so the value never sits exactly on it.
_LOGIT_LIMIT = 12.0


class Real:
    """A continuous hyperparameter range, ``[low, high]``.

    Parameters
    ----------
    low, high : float
        Bounds; ``low < high``, and ``low > 0`` when ``log=True``.
    log : bool, default=False
        Search on a log scale (weight decay, penalties) rather than linearly
        (probabilities such as a dropout rate).

    See Also
    --------
    PerLayer : one value per layer of the network.
    PerParameter : one value per weight of the network.

    Examples
    --------
    >>> from skhypergrad import Real
    >>> Real(1e-5, 1e-1, log=True)
    Real(low=1e-05, high=0.1, log=True)
    """

    def __init__(self, low, high, log=False):
        self.low = low
        self.high = high
        self.log = log

    def __repr__(self):
        return f"Real(low={self.low!r}, high={self.high!r}, log={self.log!r})"

    def __eq__(self, other):
        return isinstance(other, Real) and (self.low, self.high, self.log) == (
            other.low,
            other.high,
            other.log,
        )

    def __hash__(self):
        return hash((self.low, self.high, self.log))

    def check(self, name: str) -> Real:
        """Validate the bounds and return ``self``.

        Parameters
        ----------
        name : str
            Parameter name, for the error message.

        Returns
        -------
        self : Real

        Raises
        ------
        InvalidHyperparameterError
            If the bounds are not finite numbers with ``low < high`` (and
            ``low > 0`` on a log scale).
        """
        low, high = self.low, self.high
        if not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in (low, high)
        ):
            raise InvalidHyperparameterError(
                f"Bounds of {name!r} must be finite numbers, got low={low!r}, "
                f"high={high!r}. Use e.g. Real(1e-5, 1e-1, log=True)."
            )
        if low >= high:
            raise InvalidHyperparameterError(
                f"Bounds of {name!r} need low < high, got low={low!r}, high={high!r}. "
                "Swap them or widen the range."
            )
        if self.log and low <= 0:
            raise InvalidHyperparameterError(
                f"{name!r} is on a log scale, so low must be > 0, got low={low!r}. "
                "Use a small positive lower bound (e.g. 1e-6) or log=False."
            )
        return self

    def to_raw(self, value):
        """Map values inside the bounds to the unconstrained raw form."""
        value = np.asarray(value, dtype=float)
        if self.log:
            return np.log(np.clip(value, self.low, self.high))
        unit = (value - self.low) / (self.high - self.low)
        unit = np.clip(unit, 1e-5, 1 - 1e-5)
        return np.log(unit) - np.log1p(-unit)

    def from_raw(self, raw):
        """Map raw values (numpy or torch, differentiably) to values."""
        if isinstance(raw, torch.Tensor):
            if self.log:
                return torch.exp(raw)
            return self.low + (self.high - self.low) * torch.sigmoid(raw)
        raw = np.asarray(raw, dtype=float)
        if self.log:
            return np.clip(np.exp(raw), self.low, self.high)
        return self.low + (self.high - self.low) / (1 + np.exp(-raw))

    def raw_bounds(self) -> tuple[float, float]:
        """Interval the raw form is projected onto after each hyper-step."""
        if self.log:
            return math.log(self.low), math.log(self.high)
        return -_LOGIT_LIMIT, _LOGIT_LIMIT

    def center(self) -> float:
        """Middle of the range (geometric middle on a log scale)."""
        if self.log:
            return math.sqrt(self.low * self.high)
        return 0.5 * (self.low + self.high)

    def sample(self, rng, size=None):
        """Draw uniformly (log-uniformly when ``log=True``) inside the bounds.

        ``rng`` is a numpy ``Generator`` or ``RandomState``.
        """
        if self.log:
            return np.exp(rng.uniform(math.log(self.low), math.log(self.high), size))
        return rng.uniform(self.low, self.high, size)

    def rvs(self, random_state=None):
        """One draw, as a frozen scipy distribution gives it (for sampling).

        Parameters
        ----------
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        value : float
        """
        return float(self.sample(check_random_state(random_state)))


class Sampled:
    """Search an entry by sampling, as ``RandomizedSearchCV`` does.

    Wrap a continuous range in ``Sampled`` to have it drawn ``n_iter`` times
    in the outer search instead of tuned by hypergradients (for example to
    compare the two, or for a rate whose hypergradient is unreliable).

    Parameters
    ----------
    distribution : Real, frozen scipy distribution or list
        What to draw from; a list is drawn from uniformly.

    Examples
    --------
    >>> from scipy.stats import uniform
    >>> from skhypergrad import Sampled
    >>> space = {"module__dropout": Sampled(uniform(0.0, 0.6))}
    >>> round(float(Sampled(uniform(0.0, 0.6)).rvs(random_state=0)), 3)
    0.329
    """

    def __init__(self, distribution):
        self.distribution = distribution

    def __repr__(self):
        return f"Sampled({format_distribution(self.distribution)})"

    def rvs(self, random_state=None):
        """One draw from the wrapped distribution.

        Parameters
        ----------
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        value : object
        """
        distribution = self.distribution
        if hasattr(distribution, "rvs"):
            return distribution.rvs(random_state=random_state)
        if isinstance(distribution, list | tuple | np.ndarray | range):
            rng = check_random_state(random_state)
            return distribution[rng.randint(len(distribution))]
        raise InvalidHyperparameterError(
            f"Sampled() needs a distribution with an rvs method or a list, got "
            f"{format_distribution(distribution)} ({type(distribution).__name__})."
        )


class Tuned:
    """Insist that an entry be tuned by hypergradients.

    A range that a family can tune is tuned anyway; ``Tuned(range)`` makes it
    an error when none can (a module argument that sets no ``nn.Dropout``
    layer, say), instead of a silent outer search. The inverse of
    :class:`Sampled`.

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        The continuous range to tune.

    Examples
    --------
    >>> from scipy.stats import uniform
    >>> from skhypergrad import Tuned
    >>> [float(v) for v in Tuned(uniform(0.0, 0.6)).distribution.support()]
    [0.0, 0.6]
    """

    def __init__(self, distribution):
        self.distribution = distribution

    def __repr__(self):
        return f"Tuned({format_distribution(self.distribution)})"

    def __eq__(self, other):
        return type(other) is Tuned and self.distribution == other.distribution

    def __hash__(self):
        return hash(("Tuned", repr(self.distribution)))


def as_real(distribution, name: str) -> tuple[Real, str]:
    """Turn a search-space entry into a checked :class:`Real` and a granularity.

    Parameters
    ----------
    distribution : Real, PerLayer, PerParameter, PerClass, PerFeature, \
            PerSample or frozen scipy distribution
        The entry of ``param_distributions``.
    name : str
        Its key, for error messages.

    Returns
    -------
    real : Real
    granularity : {"scalar", "layer", "parameter", "class", "feature", "sample"}

    Raises
    ------
    InvalidHyperparameterError
        For discrete or unbounded entries.
    """
    granularity = "scalar"
    if isinstance(distribution, _Vector):
        granularity = distribution.granularity
        distribution = distribution.distribution
    if isinstance(distribution, Real):
        return distribution.check(name), granularity
    if isinstance(distribution, list | tuple | np.ndarray | range):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} with hypergradients: got a list of values "
            f"{_short(distribution)}, but tuned values must come from a continuous "
            f"range such as Real(low, high) or scipy.stats.loguniform(low, high). "
            f"{_GRID_HINT}"
        )
    if isinstance(distribution, numbers.Number | str | bool):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r}: got the single value {distribution!r} "
            f"({type(distribution).__name__}). Give a range such as Real(low, high), "
            "or set a fixed value on the estimator instead."
        )
    return _from_scipy(distribution, name), granularity


def _from_scipy(distribution, name: str) -> Real:
    from scipy import stats

    family = getattr(distribution, "dist", None)
    if isinstance(family, stats.rv_discrete):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} with hypergradients: got the discrete "
            f"distribution {format_distribution(distribution)}, but tuned values "
            f"must be continuous. {_GRID_HINT}"
        )
    if not isinstance(family, stats.rv_continuous) or not hasattr(
        distribution, "support"
    ):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r}: expected Real(low, high, log=...), "
            "scipy.stats.loguniform or scipy.stats.uniform (frozen), got "
            f"{format_distribution(distribution)} ({type(distribution).__name__})."
        )
    low, high = (float(v) for v in distribution.support())
    if family.name in ("loguniform", "reciprocal"):
        return Real(low, high, log=True).check(name)
    if family.name == "uniform":
        return Real(low, high).check(name)
    raise InvalidHyperparameterError(
        f"Cannot tune {name!r}: the distribution {format_distribution(distribution)} "
        f"is not supported (support [{low}, {high}]). Use scipy.stats.loguniform "
        "or uniform, or skhypergrad.Real(low, high, log=...)."
    )


def _short(values) -> str:
    values = list(values)
    text = format_distribution(values[:5])
    return text[:-1] + ", ...]" if len(values) > 5 else text


__all__ = [
    "Tuned",
    "PerClass",
    "PerFeature",
    "PerLayer",
    "PerParameter",
    "PerSample",
    "Real",
    "Sampled",
    "as_real",
    "format_distribution",
]
