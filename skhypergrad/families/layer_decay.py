"""Weight decay per layer (``optimizer__weight_decay: PerLayer(range)``).

One value per module that owns parameters. Training and the refit use skorch's
``optimizer__param_groups``: one group per trainable parameter, named exactly,
holding its layer's decay, so ``best_params_`` is plain ``set_params`` input.
"""

from __future__ import annotations

import glob

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import PerLayer
from ..penalties import parameter_layout
from .weight_decay import DecayBinding, WeightDecay


def layer_param_groups(layout, values) -> list:
    """skorch ``optimizer__param_groups`` giving each parameter its layer's decay.

    Parameters
    ----------
    layout : ParameterLayout
    values : sequence of float
        One decay per layer of ``layout``.

    Returns
    -------
    groups : list of (str, dict)
        ``(exact parameter name, {"weight_decay": value})`` in layout order.
    """
    return [
        (glob.escape(name), {"weight_decay": float(values[layer])})
        for name, layer in zip(layout.names, layout.layer_index)
    ]


class LayerDecayBinding(DecayBinding):
    """Per-layer decay written into one optimizer group per parameter."""

    def __init__(self, net):
        super().__init__(net, "layer")
        zeros = [0.0] * len(self.layout.layers)
        net.set_params(optimizer__param_groups=layer_param_groups(self.layout, zeros))
        net.initialize_optimizer()

    def apply(self, value) -> None:  # noqa: D102
        values = value.detach().reshape(-1).tolist()
        groups = self.net.optimizer_.param_groups
        for group, layer in zip(groups, self.layout.layer_index):
            group["weight_decay"] = values[layer]


class LayerDecay(WeightDecay):
    """``optimizer__weight_decay`` given ``PerLayer(range)``.

    Parameters
    ----------
    name, local, real, granularity
        As in :class:`~skhypergrad.families.Hyperparameter`.
    """

    wrapper = PerLayer

    @classmethod
    def from_entry(cls, name, local, distribution, net):  # noqa: D102
        groups = net.get_params().get("optimizer__param_groups")
        if groups:
            raise InvalidHyperparameterError(
                f"Cannot tune {name!r} per layer: the network already sets "
                f"optimizer__param_groups={groups!r}, and the tuned decays are "
                "written into one group per parameter. Remove optimizer__param_groups "
                "or tune a single weight decay."
            )
        return super().from_entry(name, local, distribution, net)

    def size(self, net, n_train):  # noqa: D102
        return len(parameter_layout(net.module_).layers)

    def bind(self, net):  # noqa: D102
        return LayerDecayBinding(net)

    def best_params(self, value, net, prefix, layout):  # noqa: D102
        return {f"{prefix}optimizer__param_groups": layer_param_groups(layout, value)}


__all__ = ["LayerDecay", "layer_param_groups"]
