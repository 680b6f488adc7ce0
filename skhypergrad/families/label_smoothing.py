"""Label smoothing of a cross-entropy (``criterion__label_smoothing``).

torch's ``CrossEntropyLoss`` takes the smoothing as a float; during the
search each split net's criterion is a
:class:`~skhypergrad.families._criterion.TunedCrossEntropyLoss`, which applies
the tuned value (a tensor with a gradient) to the training loss only. The
validation (outer) loss is the unsmoothed cross-entropy. The refit receives
``criterion__label_smoothing`` as a float, so it trains with torch's own loss.
"""

from __future__ import annotations

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import _Vector, as_real, format_distribution
from ._base import Binding, Hyperparameter
from ._criterion import check_cross_entropy, tuned_criterion

NAME = "criterion__label_smoothing"


class LabelSmoothingBinding(Binding):
    """The tuned cross-entropy of one split's net."""

    def __init__(self, net):
        self.criterion = tuned_criterion(net)
        self.criterion.label_smoothing = 0.0  # the validation loss is unsmoothed

    def apply(self, value) -> None:  # noqa: D102
        self.criterion.smoothing = value.reshape(())


class LabelSmoothing(Hyperparameter):
    """``criterion__label_smoothing`` given a range in [0, 1).

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.

    Examples
    --------
    ``scipy.stats.uniform(loc, scale)`` spans ``[loc, loc + scale]``: a range
    that reaches 1 is refused before anything trains.

    >>> from scipy.stats import uniform
    >>> from skhypergrad.families import LabelSmoothing
    >>> name = "criterion__label_smoothing"
    >>> LabelSmoothing.from_entry(name, name, uniform(0.0, 1.0), net=None)
    Traceback (most recent call last):
    ...
    skhypergrad.exceptions.InvalidHyperparameterError: 'criterion__label_smoothing' ...
    """

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        return local == NAME

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        shown = format_distribution(distribution)
        if isinstance(distribution, _Vector):
            raise InvalidHyperparameterError(
                f"{name!r} is one value for the whole loss; got {shown}. "
                "Give a range such as scipy.stats.uniform(0.0, 0.3)."
            )
        real, granularity = as_real(distribution, name)
        if real.low < 0 or real.high >= 1:
            raise InvalidHyperparameterError(
                f"{name!r} must lie in [0, 1), but its range is [{real.low}, "
                f"{real.high}] (from {shown}). At 1 the targets are uniform "
                "and nothing can be learnt. Note that scipy.stats.uniform(loc, scale) "
                "spans [loc, loc + scale]: use e.g. uniform(0.0, 0.3) for values up "
                "to 0.3."
            )
        check_cross_entropy(net, name)
        return cls(name, local, real, granularity)

    def bind(self, net) -> Binding:  # noqa: D102
        return LabelSmoothingBinding(net)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        return {self.name: float(value)}


__all__ = ["LabelSmoothing"]
