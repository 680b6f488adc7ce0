"""Weight decay per weight (``optimizer__weight_decay: PerParameter(range)``).

One value per trainable weight: an optimizer cannot hold that, so the decay
gradient ``c * w`` is added after each backward pass (the binding's
``on_grad_computed``), and the refit carries a :class:`WeightDecayPenalty`
callback that does the same.
"""

from __future__ import annotations

import torch

from ..callbacks import WeightDecayPenalty
from ..hyperparams import PerParameter
from ..penalties import add_l2_gradient, parameter_layout, trainable_parameters
from .weight_decay import DecayBinding, WeightDecay

CALLBACK_NAME = "skhypergrad_weight_decay"


class ParameterDecayBinding(DecayBinding):
    """Elementwise decay added to the gradients of one split's net."""

    optimizer_setting = None  # a hook on the gradients, not the optimiser's groups

    hooks_gradients = True

    def __init__(self, net):
        super().__init__(net, "parameter")
        self._coefficients = None

    def apply(self, value) -> None:  # noqa: D102
        params = trainable_parameters(self.net.module_)
        with torch.no_grad():
            self._coefficients = self.coefficients(value.detach(), params)

    def on_grad_computed(self, params) -> None:
        """Add ``c * w`` to each weight's gradient (training only)."""
        add_l2_gradient(params, self._coefficients)


class ParameterDecay(WeightDecay):
    """``optimizer__weight_decay`` given ``PerParameter(range)``.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    """

    wrapper = PerParameter

    def net_overrides(self, net):  # noqa: D102
        return {"optimizer__weight_decay": 0.0}

    def size(self, net, n_train):  # noqa: D102
        return parameter_layout(net.module_).n_weights

    def bind(self, net):  # noqa: D102
        return ParameterDecayBinding(net)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        callbacks = net.callbacks if isinstance(net.callbacks, list | tuple) else []
        user = [c for c in callbacks if not _is_ours(c)]
        penalty = WeightDecayPenalty(value, granularity="parameter")
        return {
            f"{prefix}optimizer__weight_decay": 0.0,
            f"{prefix}callbacks": [*user, (CALLBACK_NAME, penalty)],
        }


def _is_ours(callback) -> bool:
    return isinstance(callback, tuple) and callback[0] in (CALLBACK_NAME,)


__all__ = ["ParameterDecay"]
