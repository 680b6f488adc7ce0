"""Differentiable terms that bring a hyperparameter into the training loss.

Weight decay ``lambda`` enters as ``(lambda / 2) * ||w||^2``, whose gradient
``lambda * w`` is exactly what ``torch.optim.SGD`` / ``Adam`` add for their
``weight_decay``: a tuned value can be handed back to the optimizer as is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

GRANULARITIES = ("scalar", "layer", "parameter")


class ParameterLayout(NamedTuple):
    """Which trainable tensors a module has and which layer owns each.

    Attributes
    ----------
    names : list of str
        Names of the trainable parameters, in ``named_parameters()`` order.
    layers : list of str
        Names of the modules that own parameters directly, in order.
    layer_index : list of int
        For each parameter, the index of its layer in ``layers``.
    sizes : list of int
        Number of elements of each parameter.
    """

    names: list
    layers: list
    layer_index: list
    sizes: list

    @property
    def n_weights(self) -> int:
        """Total number of trainable weights."""
        return sum(self.sizes)

    def size_of(self, granularity: str) -> int:
        """Number of hyperparameters one entry of ``granularity`` needs."""
        return {"scalar": 1, "layer": len(self.layers), "parameter": self.n_weights}[
            granularity
        ]


def parameter_layout(module: nn.Module) -> ParameterLayout:
    """Describe the trainable parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    layout : ParameterLayout
    """
    names, layers, layer_index, sizes = [], [], [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        layer = name.rpartition(".")[0]
        if layer not in layers:
            layers.append(layer)
        names.append(name)
        layer_index.append(layers.index(layer))
        sizes.append(param.numel())
    return ParameterLayout(names, layers, layer_index, sizes)


def trainable_parameters(module: nn.Module) -> list[torch.Tensor]:
    """Trainable parameters in the order :func:`parameter_layout` lists them."""
    return [p for p in module.parameters() if p.requires_grad]


def expand_coefficients(values: torch.Tensor, granularity: str, layout, params):
    """Broadcast tuned values to one coefficient tensor per parameter.

    Parameters
    ----------
    values : torch.Tensor
        Shape ``(1,)``, ``(n_layers,)`` or ``(n_weights,)`` by ``granularity``.
    granularity : {"scalar", "layer", "parameter"}
    layout : ParameterLayout
    params : list of torch.Tensor
        The tensors the coefficients multiply.

    Returns
    -------
    coefficients : list of torch.Tensor
        Each broadcastable to its parameter; differentiable in ``values``.
    """
    if granularity == "scalar":
        return [values.reshape(()) for _ in params]
    if granularity == "layer":
        return [values[i] for i in layout.layer_index]
    chunks = torch.split(values, layout.sizes)
    return [c.reshape(p.shape) for c, p in zip(chunks, params)]


def l2_penalty(params, coefficients) -> torch.Tensor:
    """``sum_i (c_i / 2) * ||w_i||^2`` with per-tensor or elementwise ``c_i``.

    Parameters
    ----------
    params : list of torch.Tensor
    coefficients : list of torch.Tensor

    Returns
    -------
    penalty : torch.Tensor
        Scalar.
    """
    return sum((0.5 * c * p.pow(2)).sum() for p, c in zip(params, coefficients))


@torch.no_grad()
def add_l2_gradient(params, coefficients) -> None:
    """Add ``c_i * w_i`` (the gradient of :func:`l2_penalty`) to ``w_i.grad``.

    Parameters
    ----------
    params : list of torch.Tensor
        Parameters whose ``.grad`` was just computed by ``backward``.
    coefficients : list of torch.Tensor
    """
    for p, c in zip(params, coefficients):
        if p.grad is not None:
            p.grad.add_(c.to(p.dtype) * p)


__all__ = [
    "GRANULARITIES",
    "ParameterLayout",
    "add_l2_gradient",
    "expand_coefficients",
    "l2_penalty",
    "parameter_layout",
    "trainable_parameters",
]
