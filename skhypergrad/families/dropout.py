"""Dropout rates set by a module argument (``module__<arg>``).

The controlled ``torch.nn.Dropout`` layers are found by building the module
with two probe values; during the search they are replaced by
:class:`~skhypergrad.net.RelaxedDropout` (a concrete relaxation), whose rate
has a gradient. The refit receives the tuned rate as the module argument, so
it trains with ordinary ``nn.Dropout`` layers.
"""

from __future__ import annotations

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import _Vector, as_real, format_distribution
from ..net import find_dropout_layers, relax_dropout
from ._base import Binding, Hyperparameter


class DropoutBinding(Binding):
    """The relaxed dropout layers of one split's net."""

    def __init__(self, layers):
        self.layers = layers

    def apply(self, value) -> None:  # noqa: D102
        for layer in self.layers:
            layer.rate = value.reshape(())


class Dropout(Hyperparameter):
    """A ``module__<arg>`` that sets dropout rates, given a range in [0, 1).

    A range (``uniform(0, 0.6)``) is tuned by hypergradients through a
    relaxed dropout, one training per candidate; wrap it in
    ``Sampled(...)`` to have it drawn by the outer search instead.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    paths : tuple of str, default=()
        Module paths of the ``nn.Dropout`` layers the argument controls.

    Examples
    --------
    ``scipy.stats.uniform(loc, scale)`` spans ``[loc, loc + scale]``: a range
    that reaches a rate of 1 is refused before anything trains.

    >>> from scipy.stats import uniform
    >>> from skhypergrad.families import Dropout
    >>> Dropout.from_entry("module__p", "module__p", uniform(0.0, 2.0), net=None)
    Traceback (most recent call last):
    ...
    skhypergrad.exceptions.InvalidHyperparameterError: 'module__p' sets dropout ...
    """

    def __init__(self, name, local, real, granularity="scalar", paths=()):
        super().__init__(name, local, real, granularity)
        self.paths = tuple(paths)

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        if not local.startswith("module__"):
            return False
        try:
            find_dropout_layers(net, local, local)
        except InvalidHyperparameterError:
            return False
        return True

    @classmethod
    def explain_unclaimed(cls, name, local, distribution, net) -> None:
        """A ``module__<arg>`` in ``Tuned`` that sets no ``nn.Dropout`` layer."""
        if not local.startswith("module__") or net is None:
            return
        try:
            find_dropout_layers(net, local, name)
        except InvalidHyperparameterError as exc:
            # Built, but no layer follows the argument: say so. A module that
            # cannot be built with a rate (a layer size) is not a dropout entry.
            if exc.__cause__ is None:
                raise

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        shown = format_distribution(distribution)
        if isinstance(distribution, _Vector):
            raise InvalidHyperparameterError(
                f"{name!r}: PerLayer / PerParameter apply to weight decay only; a "
                f"dropout rate is one value per module argument. Got {shown}."
            )
        real, granularity = as_real(distribution, name)
        if real.low < 0 or real.high >= 1:
            raise InvalidHyperparameterError(
                f"{name!r} sets dropout rates, which must lie in [0, 1), but its range "
                f"is [{real.low}, {real.high}] (from {shown}). At a rate of "
                "1 every unit is dropped and nothing can be learnt. Note that "
                "scipy.stats.uniform(loc, scale) spans [loc, loc + scale]: use e.g. "
                "uniform(0.0, 0.6) for rates up to 0.6."
            )
        if real.log:
            raise InvalidHyperparameterError(
                f"{name!r} sets dropout rates, which are tuned on a linear (logit) "
                f"scale; got the log-scaled range {shown}. Use "
                "scipy.stats.uniform(low, high - low) or Real(low, high)."
            )
        paths = find_dropout_layers(net, local, name)
        return cls(name, local, real, granularity, paths)

    def bind(self, net) -> Binding:  # noqa: D102
        return DropoutBinding(relax_dropout(net.module_, self.paths, 0.0))


__all__ = ["Dropout"]
