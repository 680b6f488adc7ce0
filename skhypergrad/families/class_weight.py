"""Per-class loss weights (``criterion__weight: PerClass(range)``).

The weights are normalised to mean 1: with ``raw`` one log-weight per class,
``w = exp(raw) / mean(exp(raw))`` (``K * softmax(raw)``). The mean reduction of
a weighted cross-entropy divides by the weights of the batch's targets, so
their overall scale does not change the loss: only the ratios are tuned, and
the range bounds them (the largest weight is at most ``high / low`` times the
smallest). During the search the weights enter the training loss through
:class:`~skhypergrad.families._criterion.TunedCrossEntropyLoss`; the
validation (outer) loss is unweighted. The refit receives
``criterion__weight`` as a float32 tensor.
"""

from __future__ import annotations

import numpy as np
import torch

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import PerClass, Real, as_real, format_distribution
from ._base import Binding, Hyperparameter
from ._criterion import check_cross_entropy, last_layer_width, tuned_criterion

NAME = "criterion__weight"


class ClassSimplex(Real):
    """Positive weights with mean 1, parametrised by unnormalised log-weights
    (one per class, or one per training sample).

    Parameters
    ----------
    low, high : float
        Bounds of each unnormalised weight, ``0 < low < high``.
    """

    def __init__(self, low, high):
        super().__init__(low, high, log=True)

    def __repr__(self):
        return f"ClassSimplex(low={self.low!r}, high={self.high!r})"

    def from_raw(self, raw):
        """``exp(raw) / mean(exp(raw))`` over the last axis (one raw: weight 1)."""
        if isinstance(raw, torch.Tensor):
            return torch.softmax(raw, dim=-1) * raw.shape[-1] if raw.ndim else raw**0
        raw = np.asarray(raw, dtype=float)
        if raw.ndim == 0:
            return np.ones(())
        shifted = np.exp(raw - raw.max(axis=-1, keepdims=True))
        return shifted / shifted.mean(axis=-1, keepdims=True)


def mean_one_weights(name, distribution, wrapper, what, example) -> ClassSimplex:
    """Check an entry of weights with mean 1 (one per class or per sample).

    Parameters
    ----------
    name : str
        The entry's key, for messages.
    distribution : object
        Its value in ``param_distributions``, which must be a ``wrapper``.
    wrapper : type
        :class:`~skhypergrad.PerClass` or :class:`~skhypergrad.PerSample`.
    what : str
        "class" or "training sample".
    example : str
        A range to suggest, e.g. ``"loguniform(0.2, 5.0)"``.

    Returns
    -------
    simplex : ClassSimplex
    """
    hint = f"{wrapper.__name__}(scipy.stats.{example})"
    shown = format_distribution(distribution)
    if not isinstance(distribution, wrapper):
        raise InvalidHyperparameterError(
            f"{name!r} holds one weight per {what}; got {shown}. Wrap "
            f"the range of the weights in {wrapper.__name__}, e.g. {hint}: the "
            "tuned weights have mean 1 and differ by at most a factor high / low."
        )
    real, _ = as_real(distribution.distribution, name)
    if real.low <= 0:
        raise InvalidHyperparameterError(
            f"{name!r}: {what} weights must be positive, but the range is "
            f"[{real.low}, {real.high}] (from {shown}). Use e.g. {hint}."
        )
    return ClassSimplex(real.low, real.high).check(name)


class ClassWeightBinding(Binding):
    """The tuned cross-entropy of one split's net."""

    def __init__(self, net):
        self.criterion = tuned_criterion(net)
        self.criterion.weight = None  # the validation loss is unweighted

    def apply(self, value) -> None:  # noqa: D102
        self.criterion.class_weight = value.reshape(-1)


class ClassWeight(Hyperparameter):
    """``criterion__weight`` given ``PerClass(range)``: one weight per class.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    n_classes : int or None, default=None
        From :class:`~skhypergrad.PerClass`; None reads it from the net.

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from skhypergrad.families import ClassWeight
    >>> ClassWeight.from_entry(
    ...     "criterion__weight", "criterion__weight", loguniform(0.2, 5.0), net=None
    ... )
    Traceback (most recent call last):
    ...
    skhypergrad.exceptions.InvalidHyperparameterError: 'criterion__weight' holds ...
    """

    def __init__(self, name, local, real, granularity="class", n_classes=None):
        super().__init__(name, local, real, granularity)
        self.n_classes = n_classes

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        return local == NAME

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        simplex = mean_one_weights(
            name, distribution, PerClass, "class", "loguniform(0.2, 5.0)"
        )
        n_classes = distribution.n_classes
        if n_classes is not None and not (
            isinstance(n_classes, int | np.integer) and n_classes >= 2
        ):
            raise InvalidHyperparameterError(
                f"{name!r}: PerClass(n_classes=...) must be an integer >= 2 or None, "
                f"got {n_classes!r}."
            )
        check_cross_entropy(net, name)
        return cls(name, local, simplex, "class", n_classes)

    def size(self, net, n_train):  # noqa: D102
        if self.n_classes is not None:
            return int(self.n_classes)
        classes = getattr(net, "classes", None)
        if classes is not None:
            return len(classes)
        return last_layer_width(net.module_)

    def bind(self, net) -> Binding:  # noqa: D102
        return ClassWeightBinding(net)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        value = np.asarray(value, dtype=np.float32)
        # A single raw value (no hyper-step yet) means equal weights: no weights.
        weight = None if value.size == 1 else torch.as_tensor(value.reshape(-1))
        return {self.name: weight}

    def summary(self, raw) -> float:
        """The largest weight (the weights have mean 1)."""
        return float(np.max(self.real.from_raw(np.asarray(raw, dtype=float))))


__all__ = ["ClassSimplex", "ClassWeight", "mean_one_weights"]
