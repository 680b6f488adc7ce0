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

from .exceptions import InvalidHyperparameterError

_GRID_HINT = (
    "Search it with GridSearchCV or RandomizedSearchCV around this estimator, "
    "or fix its value on the estimator."
)
# Linear-scale raw values live in [-_LOGIT_LIMIT, _LOGIT_LIMIT]: sigmoid(12) is
# within 6e-6 of the bound, so the value never sits exactly on it.
_LOGIT_LIMIT = 12.0


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
        args = [repr(_plain(a)) for a in distribution.args]
        args += [
            f"{k}={_plain(v)!r}" for k, v in getattr(distribution, "kwds", {}).items()
        ]
        return f"{name}({', '.join(args)})"
    if isinstance(distribution, list | tuple):
        items = ", ".join(format_distribution(v) for v in distribution)
        if isinstance(distribution, tuple):
            return f"({items},)" if len(distribution) == 1 else f"({items})"
        return f"[{items}]"
    return repr(_plain(distribution))


def _plain(value):
    """A numpy scalar as the Python number it holds (``0.1``, not
    ``np.float64(0.1)``); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


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
    """Tune an entry by hypergradients although its family samples it by default.

    A few families (dropout rates) are searched by the outer random search
    unless asked otherwise, because their hypergradient did not reliably reach
    a grid's choice in the benchmarks (``docs/benchmarks.md``, Section 6).
    ``Tuned(range)`` tunes them by hypergradients anyway: one training per
    candidate instead of ``n_iter`` draws. The inverse of :class:`Sampled`.

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        The continuous range to tune.

    Examples
    --------
    >>> from scipy.stats import uniform
    >>> from skhypergrad import Tuned
    >>> Tuned(uniform(0.0, 0.6)).distribution.support()
    (np.float64(0.0), np.float64(0.6))
    """

    def __init__(self, distribution):
        self.distribution = distribution

    def __repr__(self):
        return f"Tuned({format_distribution(self.distribution)})"

    def __eq__(self, other):
        return type(other) is Tuned and self.distribution == other.distribution

    def __hash__(self):
        return hash(("Tuned", repr(self.distribution)))


class _Vector:
    granularity = "scalar"

    def __init__(self, distribution):
        self.distribution = distribution

    def __repr__(self):
        return f"{type(self).__name__}({format_distribution(self.distribution)})"

    def __eq__(self, other):
        return type(self) is type(other) and self.distribution == other.distribution

    def __hash__(self):
        return hash((type(self).__name__, repr(self.distribution)))


class PerLayer(_Vector):
    """One hyperparameter per layer (per module that owns parameters).

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        Range shared by every layer's value.

    Examples
    --------
    >>> from skhypergrad import PerLayer, Real
    >>> PerLayer(Real(1e-6, 1e-1, log=True))
    PerLayer(Real(low=1e-06, high=0.1, log=True))
    """

    granularity = "layer"


class PerParameter(_Vector):
    """One hyperparameter per weight of the network (millions are fine).

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        Range shared by every weight's value.

    Notes
    -----
    With as many hyperparameters as weights the search can overfit the
    validation folds; keep them large (``cv=3`` or fewer folds).
    """

    granularity = "parameter"


class PerClass(_Vector):
    """One hyperparameter per class of a classifier (class weights).

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        Range of each class's weight before normalisation: the tuned weights
        have mean 1, and the largest is at most ``high / low`` times the
        smallest.
    n_classes : int or None, default=None
        Number of classes. None reads it from the net's ``classes`` or, failing
        that, from the width of the module's last parameter (checked at the
        first forward pass).

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from skhypergrad import PerClass
    >>> PerClass(loguniform(0.2, 5.0), n_classes=3).n_classes
    3
    """

    granularity = "class"

    def __init__(self, distribution, n_classes=None):
        super().__init__(distribution)
        self.n_classes = n_classes

    def __repr__(self):
        shown = format_distribution(self.distribution)
        return f"PerClass({shown}, n_classes={self.n_classes!r})"

    def __eq__(self, other):
        return super().__eq__(other) and self.n_classes == other.n_classes

    def __hash__(self):
        return hash((super().__hash__(), self.n_classes))


class PerFeature(_Vector):
    """One hyperparameter per input feature of the network (input noise).

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        Range shared by every feature's value.
    n_features : int or None, default=None
        Number of input features of the network. None reads it from the
        module's first weight matrix (checked at the first forward pass).

    Examples
    --------
    >>> from skhypergrad import PerFeature, Real
    >>> PerFeature(Real(1e-3, 1.0, log=True))
    PerFeature(Real(low=0.001, high=1.0, log=True), n_features=None)
    """

    granularity = "feature"

    def __init__(self, distribution, n_features=None):
        super().__init__(distribution)
        self.n_features = n_features

    def __repr__(self):
        shown = format_distribution(self.distribution)
        return f"PerFeature({shown}, n_features={self.n_features!r})"

    def __eq__(self, other):
        return super().__eq__(other) and self.n_features == other.n_features

    def __hash__(self):
        return hash((super().__hash__(), self.n_features))


class PerSample(_Vector):
    """One hyperparameter per training sample (per-example loss weights).

    The values are per CV split: every split tunes one weight per row of its
    training part, and the refit receives one weight per row of ``X`` (the
    geometric mean over the splits that trained on the row).

    Parameters
    ----------
    distribution : Real or frozen scipy distribution
        Range of each sample's weight before normalisation: the tuned weights
        have mean 1 over a split's training rows, and the largest is at most
        ``high / low`` times the smallest.

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from skhypergrad import PerSample
    >>> PerSample(loguniform(0.01, 1.0)).granularity
    'sample'
    """

    granularity = "sample"


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
