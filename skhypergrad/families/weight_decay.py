"""Weight decay, one value for the whole network (``optimizer__weight_decay``).

The decay ``lambda`` is an L2 term ``(lambda / 2) ||w||^2`` of the training
loss, whose gradient ``lambda w`` is what torch's SGD / Adam / RMSprop add for
their ``weight_decay``. During the search the current value is written into
the optimizer's parameter groups (no per-batch hook); the refit receives it
as ``optimizer__weight_decay``.
"""

from __future__ import annotations

import torch

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import (
    PerClass,
    PerFeature,
    PerLayer,
    PerParameter,
    as_real,
    format_distribution,
)
from ..penalties import expand_coefficients, l2_penalty, parameter_layout
from ._base import Binding, Hyperparameter

NAME = "optimizer__weight_decay"


def check_coupled_optimizer(net, name: str) -> None:
    """Refuse optimizers whose decay is not a term of the loss (AdamW)."""
    optimizer = net.optimizer
    optimizer_class = optimizer if isinstance(optimizer, type) else type(optimizer)
    if issubclass(optimizer_class, torch.optim.AdamW):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} with optimizer={optimizer_class.__name__}: AdamW "
            "decays weights outside the loss (decoupled), so the decay has no implicit "
            "hypergradient. Use optimizer=torch.optim.Adam (or SGD), whose "
            "weight_decay is an L2 term of the loss; the tuned value then applies "
            "as is. To keep AdamW, wrap the range in skhypergrad.Sampled(...) to "
            "have it drawn by the outer search instead."
        )


class DecayBinding(Binding):
    """Weight decay on one split's net: optimizer groups for training, an L2
    term inside the hypergradient's training loss."""

    optimizer_setting = "weight_decay"

    def __init__(self, net, granularity):
        self.net = net
        self.granularity = granularity
        self.layout = parameter_layout(net.module_)

    def coefficients(self, value, params):
        """One coefficient tensor per trainable parameter."""
        return expand_coefficients(value, self.granularity, self.layout, params)

    def apply(self, value) -> None:  # noqa: D102
        value = value.detach().reshape(-1).tolist()
        for group in self.net.optimizer_.param_groups:
            group["weight_decay"] = value[0]

    def inner_term(self, value, params):  # noqa: D102
        return l2_penalty(params, self.coefficients(value, params))


class WeightDecay(Hyperparameter):
    """``optimizer__weight_decay`` given a continuous range: one shared value.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from skhypergrad import PerLayer
    >>> from skhypergrad.families import LayerDecay, WeightDecay
    >>> decay = loguniform(1e-6, 1e-1)
    >>> WeightDecay.claims("optimizer__weight_decay", decay, None)
    True
    >>> WeightDecay.claims("optimizer__weight_decay", PerLayer(decay), None)
    False
    >>> LayerDecay.claims("optimizer__weight_decay", PerLayer(decay), None)
    True
    """

    wrapper = None  # the PerLayer / PerParameter class a subclass claims

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        if local != NAME:
            return False
        wrapped = (
            type(distribution)
            if isinstance(distribution, PerLayer | PerParameter)
            else None
        )
        return wrapped is cls.wrapper

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        shown = format_distribution(distribution)
        if isinstance(distribution, PerClass | PerFeature):
            raise InvalidHyperparameterError(
                f"{name!r} takes one decay, PerLayer(range) or PerParameter(range); "
                f"got {shown}. PerClass is for criterion__weight, PerFeature "
                "for the scale of an InputNoise callback."
            )
        real, granularity = as_real(distribution, name)
        if real.low < 0:
            raise InvalidHyperparameterError(
                f"{name!r} is a weight decay, which must be >= 0 (torch's optimisers "
                f"refuse a negative one), but its range is [{real.low}, {real.high}] "
                f"(from {shown}). Note that "
                "scipy.stats.uniform(loc, scale) spans [loc, loc + scale]: use e.g. "
                "uniform(0.0, 0.01), or loguniform(1e-6, 1e-1) for a log scale."
            )
        check_coupled_optimizer(net, name)
        return cls(name, local, real, granularity)

    def bind(self, net) -> Binding:  # noqa: D102
        return DecayBinding(net, self.granularity)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        return {self.name: float(value)}


__all__ = ["DecayBinding", "WeightDecay", "check_coupled_optimizer"]
