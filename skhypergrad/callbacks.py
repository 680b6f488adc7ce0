"""skorch callbacks that apply tuned penalties while a network trains."""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback

from .penalties import (
    GRANULARITIES,
    add_l2_gradient,
    expand_coefficients,
    parameter_layout,
    trainable_parameters,
)


class WeightDecayPenalty(Callback):
    """Add per-layer or per-weight L2 decay to the gradients of a skorch net.

    ``HypergradSearchCV`` puts this callback on ``best_estimator_`` when it
    tunes vector weight decay (``PerLayer`` / ``PerParameter``); it can also be
    used by hand. The gradient of ``sum (c / 2) * w^2`` is added after each
    backward pass, which is what the optimizer's ``weight_decay`` does for a
    single ``c``.

    Parameters
    ----------
    values : array-like of shape (n_layers,) or (n_weights,)
        Decay coefficients, in ``module.named_parameters()`` order.
    granularity : {"layer", "parameter", "scalar"}, default="layer"
        Whether ``values`` holds one entry per layer (module owning
        parameters), per weight, or a single value.

    Examples
    --------
    >>> import numpy as np
    >>> from skhypergrad import WeightDecayPenalty
    >>> WeightDecayPenalty(np.array([1e-3, 1e-4]), granularity="layer").granularity
    'layer'
    """

    def __init__(self, values, granularity="layer"):
        self.values = values
        self.granularity = granularity

    def initialize(self):  # noqa: D102
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}."
            )
        self.coefficients_ = None
        return self

    def on_train_begin(self, net, **kwargs):  # noqa: D102
        # Built at the first backward pass, when lazy modules have their shapes.
        self.coefficients_ = None

    def _build(self, net):
        layout = parameter_layout(net.module_)
        values = np.asarray(self.values, dtype=float).reshape(-1)
        expected = layout.size_of(self.granularity)
        if values.size != expected:
            raise ValueError(
                f"WeightDecayPenalty got {values.size} values but the module has "
                f"{expected} {self.granularity} entries ({layout.n_weights} weights in "
                f"{len(layout.layers)} layers). Pass values tuned for this module."
            )
        params = trainable_parameters(net.module_)
        tensor = torch.as_tensor(values, dtype=params[0].dtype, device=params[0].device)
        return expand_coefficients(tensor, self.granularity, layout, params)

    def __getstate__(self):
        # The coefficients live on the net's device and are rebuilt at the next
        # backward pass: leaving them out lets a net fitted on a GPU unpickle on
        # a machine without CUDA (skorch maps the module, not its callbacks).
        state = self.__dict__.copy()
        state.pop("coefficients_", None)
        return state

    def on_grad_computed(self, net, named_parameters, **kwargs):  # noqa: D102
        if getattr(self, "coefficients_", None) is None:
            self.coefficients_ = self._build(net)
        add_l2_gradient(trainable_parameters(net.module_), self.coefficients_)


__all__ = ["WeightDecayPenalty"]
