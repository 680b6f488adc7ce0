"""Vector hyperparameters: one value per layer, weight, class, feature or
training sample, each drawn from one range (re-exported by
:mod:`skhypergrad.hyperparams`)."""

from __future__ import annotations

from ._format import format_distribution


class _Vector:
    granularity = "scalar"
    # Arguments besides the distribution (shown, compared and hashed).
    _extra: tuple = ()

    def __init__(self, distribution):
        self.distribution = distribution

    def __repr__(self):
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in self._extra)
        return f"{type(self).__name__}({format_distribution(self.distribution)}{extra})"

    def __eq__(self, other):
        return (
            type(self) is type(other)
            and self.distribution == other.distribution
            and all(getattr(self, k) == getattr(other, k) for k in self._extra)
        )

    def __hash__(self):
        extra = tuple(getattr(self, k) for k in self._extra)
        return hash((type(self).__name__, repr(self.distribution), *extra))


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

    _extra = ("n_classes",)

    def __init__(self, distribution, n_classes=None):
        super().__init__(distribution)
        self.n_classes = n_classes


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

    _extra = ("n_features",)

    def __init__(self, distribution, n_features=None):
        super().__init__(distribution)
        self.n_features = n_features


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
