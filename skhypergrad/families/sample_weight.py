"""Per-example training weights (``callbacks__<name>__weight`` of a
:class:`~skhypergrad.SampleWeight`, given ``PerSample(range)``).

The net carries a :class:`~skhypergrad.SampleWeight` callback under a name of
the user's choice, e.g. ``callbacks=[("weights", SampleWeight())]``; the
search tunes ``callbacks__weights__weight``. The entry is per split
(``per_fold``): every split has one weight per row of its training part,
normalised to mean 1 over those rows (``w = n * softmax(raw)``, as class
weights are), so only the ratios are tuned and the range bounds them. During
a hypergradient evaluation the weights of the training minibatch's rows enter
its loss with a gradient; the validation loss is unweighted.

The refit trains on every row of ``X``: a row's weight is the geometric mean
of its weights in the splits that trained on it (a row no split trained on
gets the mean weight, 1), normalised to mean 1. ``best_params_`` holds these
weights, one per row of the ``X`` given to ``fit``.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from ..callbacks import SampleWeight
from ..exceptions import InvalidHyperparameterError
from ..hyperparams import PerSample
from ._base import Binding, Hyperparameter, named_callback
from .class_weight import mean_one_weights

_PATTERN = re.compile(r"callbacks__(?P<callback>.+)__weight")


def weight_callback(callbacks, name):
    """The :class:`SampleWeight` named ``name`` in a callbacks list, or None."""
    return named_callback(callbacks, name, SampleWeight)


class SampleWeightBinding(Binding):
    """The :class:`SampleWeight` callback of one split's net."""

    def __init__(self, callback):
        self.callback = callback
        self.rows = None

    def apply(self, value) -> None:  # noqa: D102
        self.callback.weight = self.callback.weight_ = value.reshape(-1)
        self.callback.batch_weight_ = None

    def batch_rows(self, rows) -> None:  # noqa: D102
        self.rows = torch.as_tensor(rows)

    def observed(self, grad, rows):
        """Only the minibatch's rows: through the mean-1 normalisation every
        weight gets a small common gradient, which Adam would scale up into a
        full step for every row the minibatch did not hold."""
        rows = torch.as_tensor(rows)
        kept = torch.zeros_like(grad)
        kept[rows] = grad[rows]
        return kept

    def inner_term(self, value, params):  # noqa: D102
        if self.rows is None:
            raise RuntimeError(
                "The per-sample weights need the training minibatch's rows: call "
                "batch_rows(rows) before the training loss is evaluated."
            )
        self.callback.batch_weight_ = value.reshape(-1)[self.rows]
        return None


class SampleWeightFamily(Hyperparameter):
    """``callbacks__<name>__weight`` of a :class:`SampleWeight`, as ``PerSample``.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    callback : str, default=""
        Name of the :class:`SampleWeight` callback on the net.
    """

    per_fold = True

    def __init__(self, name, local, real, granularity="sample", callback=""):
        super().__init__(name, local, real, granularity)
        self.callback = callback

    @classmethod
    def claims(cls, local, distribution, net) -> bool:  # noqa: D102
        match = _PATTERN.fullmatch(local)
        if match is None or net is None:
            return False
        return weight_callback(net.callbacks, match["callback"]) is not None

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        simplex = mean_one_weights(
            name, distribution, PerSample, "training sample", "loguniform(0.01, 1.0)"
        )
        callback = _PATTERN.fullmatch(local)["callback"]
        return cls(name, local, simplex, "sample", callback)

    def size(self, net, n_train):  # noqa: D102
        return int(n_train)

    def bind(self, net) -> Binding:  # noqa: D102
        callback = weight_callback(net.callbacks_, self.callback)
        return SampleWeightBinding(callback)

    def best_params(self, value, net, prefix, layout):
        """One weight per row of ``X``: per row, the geometric mean over the
        splits that trained on it, normalised to mean 1."""
        rows = getattr(value, "rows", None)
        if rows is None:
            raise InvalidHyperparameterError(
                f"{self.name!r}: the per-split weights came without the rows of "
                "the splits, so they cannot be mapped to rows of X."
            )
        log_sum = np.zeros(value.n_samples)
        count = np.zeros(value.n_samples)
        for split, weights in value.items():
            weights = np.asarray(weights, dtype=float).reshape(-1)
            if weights.size == 1:  # no hyper-step yet: equal weights
                weights = np.ones(len(rows[split]))
            np.add.at(log_sum, rows[split], np.log(weights))
            np.add.at(count, rows[split], 1.0)
        log_weight = np.divide(
            log_sum, count, out=np.zeros_like(log_sum), where=count > 0
        )
        weight = np.exp(log_weight)
        return {self.name: weight / weight.mean()}

    def summary(self, raw) -> float:
        """The smallest weight (the weights have mean 1)."""
        return float(np.min(self.real.from_raw(np.asarray(raw, dtype=float))))


__all__ = ["SampleWeightFamily"]
