"""Gaussian input noise (``callbacks__<name>__scale`` of an :class:`InputNoise`).

The net carries a :class:`~skhypergrad.callbacks.InputNoise` callback under a
name of the user's choice, e.g. ``callbacks=[("noise", InputNoise())]``; the
search tunes ``callbacks__noise__scale``, one scale or ``PerFeature(range)``
one per input feature. The callback adds ``scale * eps`` to the module's input
in training mode through a forward pre-hook. During a hypergradient
evaluation the binding sets its ``scale`` to a tensor with a gradient, so the
noise enters the training loss reparametrised (``X + scale * eps``); the
validation loss runs in eval mode, without noise. The refit receives the
tuned scale through ``set_params``, as a float or a float64 array.
"""

from __future__ import annotations

import re

from torch import nn

from ..callbacks import InputNoise
from ..exceptions import InvalidHyperparameterError
from ..hyperparams import PerFeature, _Vector, as_real, format_distribution
from ._base import Binding, Hyperparameter, named_callback

_PATTERN = re.compile(r"callbacks__(?P<callback>.+)__scale")


def noise_callback(callbacks, name):
    """The :class:`InputNoise` named ``name`` in a callbacks list, or None."""
    return named_callback(callbacks, name, InputNoise)


def first_layer_width(module: nn.Module) -> int:
    """Input width of the module's first weight matrix (its number of features).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    width : int
    """
    for param in module.parameters():
        if param.ndim >= 2:
            return int(param.shape[-1])
    raise InvalidHyperparameterError(
        f"Cannot tell the number of input features of {type(module).__name__}: it "
        "has no weight matrix. Pass it explicitly, e.g. PerFeature(range, "
        "n_features=10)."
    )


class InputNoiseBinding(Binding):
    """The :class:`InputNoise` callback of one split's net."""

    def __init__(self, callback, module):
        self.callback = callback
        callback.attach(module)

    def apply(self, value) -> None:  # noqa: D102
        self.callback.scale = value.reshape(()) if value.numel() == 1 else value


class InputNoiseScale(Hyperparameter):
    """``callbacks__<name>__scale`` of an :class:`InputNoise` callback, as a range.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    callback : str, default=""
        Name of the :class:`InputNoise` callback on the net.
    n_features : int or None, default=None
        From :class:`~skhypergrad.PerFeature`; None reads it from the module.
    """

    def __init__(
        self, name, local, real, granularity="scalar", callback="", n_features=None
    ):
        super().__init__(name, local, real, granularity)
        self.callback = callback
        self.n_features = n_features

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        match = _PATTERN.fullmatch(local)
        if match is None or net is None:
            return False
        return noise_callback(net.callbacks, match["callback"]) is not None

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        shown = format_distribution(distribution)
        if isinstance(distribution, _Vector) and not isinstance(
            distribution, PerFeature
        ):
            raise InvalidHyperparameterError(
                f"{name!r} is one noise scale, or one per input feature with "
                f"PerFeature(range); got {shown}."
            )
        real, granularity = as_real(distribution, name)
        if real.low < 0:
            raise InvalidHyperparameterError(
                f"{name!r} is the standard deviation of the input noise, which must "
                f"be >= 0, but its range is [{real.low}, {real.high}] (from "
                f"{shown}). Use e.g. scipy.stats.loguniform(1e-3, 1.0)."
            )
        n_features = getattr(distribution, "n_features", None)
        if n_features is not None and not (
            isinstance(n_features, int) and n_features >= 1
        ):
            raise InvalidHyperparameterError(
                f"{name!r}: PerFeature(n_features=...) must be a positive integer or "
                f"None, got {n_features!r}."
            )
        callback = _PATTERN.fullmatch(local)["callback"]
        return cls(name, local, real, granularity, callback, n_features)

    def size(self, net, n_train):  # noqa: D102
        if self.granularity == "scalar":
            return 1
        if self.n_features is not None:
            return self.n_features
        return first_layer_width(net.module_)

    def bind(self, net) -> Binding:  # noqa: D102
        callback = noise_callback(net.callbacks_, self.callback)
        return InputNoiseBinding(callback, net.module_)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        return {self.name: value}


__all__ = ["InputNoiseScale"]
