"""Learning rates, one for the net or one per layer (``lr``, ``optimizer__lr``).

A learning rate does not move the minimum of the training loss, so it has no
implicit hypergradient. Its hypergradient comes from differentiating the
validation loss through the next ``unroll_steps`` optimiser steps from the
current weights (:func:`~skhypergrad.hypergrad.unrolled_hypergradient`): with
one step and SGD this is hypergradient descent (Baydin et al., 2018); with a
few steps and ``PerLayer(range)`` it learns per-layer rates as MAML++ does.
The steps are torch's SGD (momentum buffers carried through) or Adam / AdamW
(first moment carried through, second moment held fixed), from the
optimiser's current state.

During the search the current rate is written into the optimiser's parameter
groups; the refit receives ``lr`` (or ``optimizer__lr``) as a float, or per
layer skorch's ``optimizer__param_groups``: one group per trainable
parameter, named exactly, holding its layer's rate.
"""

from __future__ import annotations

import glob

import numpy as np
import torch

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import PerLayer, _Vector, as_real, format_distribution
from ..penalties import expand_coefficients, parameter_layout
from ._base import Binding, Hyperparameter

NAMES = ("lr", "optimizer__lr")
_OPTIMIZERS = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def lr_param_groups(layout, values) -> list:
    """skorch ``optimizer__param_groups`` giving each parameter its layer's rate.

    Parameters
    ----------
    layout : ParameterLayout
    values : sequence of float
        One learning rate per layer of ``layout``.

    Returns
    -------
    groups : list of (str, dict)
        ``(exact parameter name, {"lr": value})`` in layout order.
    """
    return [
        (glob.escape(name), {"lr": float(values[layer])})
        for name, layer in zip(layout.names, layout.layer_index)
    ]


class LearningRateBinding(Binding):
    """The learning rate(s) of one split's optimiser."""

    unrolled = True
    optimizer_setting = "lr"

    def __init__(self, net, granularity):
        self.net = net
        self.granularity = granularity
        self.layout = parameter_layout(net.module_)
        groups = net.optimizer_.param_groups
        if granularity == "layer" and len(groups) != len(self.layout.names):
            # One group per parameter (a per-layer decay may have made them).
            values = [net.lr] * len(self.layout.layers)
            net.set_params(optimizer__param_groups=lr_param_groups(self.layout, values))
            net.initialize_optimizer()

    def apply(self, value) -> None:  # noqa: D102
        values = value.detach().reshape(-1).tolist()
        groups = self.net.optimizer_.param_groups
        if self.granularity == "scalar":
            for group in groups:
                group["lr"] = values[0]
            return
        for group, layer in zip(groups, self.layout.layer_index):
            group["lr"] = values[layer]

    def inner_term(self, value, params):  # noqa: D102
        return None  # a learning rate is not part of the training loss

    def unrolled_settings(self, value, params):  # noqa: D102
        value = value.reshape(-1)
        return {"lr": expand_coefficients(value, self.granularity, self.layout, params)}


class LearningRate(Hyperparameter):
    """``lr`` or ``optimizer__lr`` given a continuous range, or ``PerLayer(range)``.

    Tuned by differentiating the validation loss through the next
    ``unroll_steps`` training steps (see the module's docstring); the other
    families' hypergradients come from the implicit function theorem in the
    same hyper-step.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.

    Examples
    --------
    >>> from scipy.stats import loguniform
    >>> from skhypergrad import PerLayer
    >>> from skhypergrad.families import LearningRate
    >>> LearningRate.claims("lr", loguniform(1e-3, 1.0), None)
    True
    >>> LearningRate.claims("lr", PerLayer(loguniform(1e-3, 1.0)), None)
    True
    >>> LearningRate.claims("lr", [0.01, 0.1], None)   # a list stays a grid
    False
    """

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        if local not in NAMES:
            return False
        inner = (
            distribution.distribution
            if isinstance(distribution, _Vector)
            else distribution
        )
        return not isinstance(inner, list | tuple | np.ndarray | range | int | float)

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        shown = format_distribution(distribution)
        if isinstance(distribution, _Vector) and not isinstance(distribution, PerLayer):
            raise InvalidHyperparameterError(
                f"{name!r} takes one learning rate or PerLayer(range); got "
                f"{shown}. One rate per weight, class, feature or sample is "
                "not supported: tune a single rate, or one per layer."
            )
        real, granularity = as_real(distribution, name)
        if real.low <= 0:
            raise InvalidHyperparameterError(
                f"{name!r} must range over positive learning rates, but its range is "
                f"[{real.low}, {real.high}] (from {shown}). "
                "Use e.g. scipy.stats.loguniform(1e-3, 1.0)."
            )
        _check_optimizer(net, name)
        _check_schedulers(net, name)
        fixed = net.get_params().get("optimizer__lr")
        if local == "lr" and fixed is not None:
            raise InvalidHyperparameterError(
                f"Cannot tune {name!r}: the network sets optimizer__lr={fixed!r}, "
                "which skorch gives the optimiser instead of lr, so the refit would "
                "ignore the tuned rate. Tune optimizer__lr instead (or remove "
                "optimizer__lr from the network)."
            )
        groups = net.get_params().get("optimizer__param_groups")
        if granularity == "layer" and groups:
            raise InvalidHyperparameterError(
                f"Cannot tune {name!r} per layer: the network already sets "
                f"optimizer__param_groups={groups!r}, and the tuned rates are written "
                "into one group per parameter. Remove optimizer__param_groups or "
                "tune a single learning rate."
            )
        return cls(name, local, real, granularity)

    def size(self, net, n_train):  # noqa: D102
        if self.granularity == "layer":
            return len(parameter_layout(net.module_).layers)
        return 1

    def bind(self, net) -> Binding:  # noqa: D102
        return LearningRateBinding(net, self.granularity)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        if self.granularity == "layer":
            groups = lr_param_groups(layout, value)
            return {f"{prefix}optimizer__param_groups": groups}
        return {self.name: float(value)}


def _check_optimizer(net, name) -> None:
    optimizer = net.optimizer
    optimizer_class = optimizer if isinstance(optimizer, type) else type(optimizer)
    if not (
        isinstance(optimizer_class, type) and issubclass(optimizer_class, _OPTIMIZERS)
    ):
        shown = getattr(optimizer_class, "__name__", repr(optimizer_class))
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} with optimizer={shown}: the learning rate is tuned "
            "by differentiating through the optimiser's steps, which skhypergrad "
            "reproduces for torch.optim.SGD, Adam and AdamW. Use one of them, or "
            "wrap the range in skhypergrad.Sampled(...) to have it drawn by the "
            "outer search instead."
        )


def _check_schedulers(net, name) -> None:
    from skorch.callbacks import LRScheduler

    callbacks = net.callbacks if isinstance(net.callbacks, list | tuple) else []

    def is_scheduler(callback) -> bool:
        return isinstance(callback, LRScheduler) or (
            isinstance(callback, type) and issubclass(callback, LRScheduler)
        )

    found = [
        c[0] if isinstance(c, tuple) else getattr(c, "__name__", type(c).__name__)
        for c in callbacks
        if is_scheduler(c[1] if isinstance(c, tuple) else c)
    ]
    if found:
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} while the LRScheduler callback(s) {found} change "
            "the learning rate too. Remove the scheduler, or wrap the range in "
            "skhypergrad.Sampled(...) to have it drawn by the outer search instead."
        )


__all__ = ["LearningRate", "LearningRateBinding", "lr_param_groups"]
