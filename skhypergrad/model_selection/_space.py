"""Turn ``param_distributions`` into checked hyperparameter specs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch

from ..exceptions import InvalidHyperparameterError
from ..hyperparams import Real, as_real
from ..net import find_dropout_layers

# Settings of the optimizer or the loop only: they change the path to the
# training optimum, not the optimum itself, so the implicit hypergradient of
# the validation loss with respect to them is zero.
_OPTIMIZER_ONLY = {
    "lr": "the learning rate",
    "optimizer__lr": "the learning rate",
    "optimizer__momentum": "momentum",
    "optimizer__betas": "Adam's betas",
    "optimizer__eps": "the optimizer's eps",
    "optimizer__nesterov": "Nesterov momentum",
    "max_epochs": "the number of epochs",
    "batch_size": "the batch size",
    "iterator_train__batch_size": "the batch size",
    "iterator_train__shuffle": "shuffling",
}


class HparamSpec(NamedTuple):
    """One tuned hyperparameter.

    Attributes
    ----------
    name : str
        Key in ``param_distributions`` (with any Pipeline prefix).
    local : str
        Name on the skorch net (prefix removed).
    kind : {"weight_decay", "dropout"}
    granularity : {"scalar", "layer", "parameter"}
    real : Real
        Range and scale.
    dropout_paths : tuple of str
        Module paths of the dropout layers it controls (``kind="dropout"``).
    """

    name: str
    local: str
    kind: str
    granularity: str
    real: Real
    dropout_paths: tuple = ()


def resolve_space(param_distributions, net, step) -> list[HparamSpec]:
    """Check every entry of the search space against the skorch net.

    Parameters
    ----------
    param_distributions : dict
        Name -> distribution, as given to the search.
    net : skorch.NeuralNet
        The (unfitted) network the names refer to.
    step : str or None
        Name of the net's Pipeline step.

    Returns
    -------
    specs : list of HparamSpec
    """
    if not isinstance(param_distributions, Mapping) or not param_distributions:
        raise InvalidHyperparameterError(
            "param_distributions must be a non-empty dict mapping parameter names to "
            f"ranges, got {param_distributions!r}. Example: "
            "{'optimizer__weight_decay': scipy.stats.loguniform(1e-6, 1e-1)}."
        )
    return [
        _resolve_one(name, dist, net, step)
        for name, dist in param_distributions.items()
    ]


def _resolve_one(name, distribution, net, step) -> HparamSpec:
    local = _strip_step(name, step)
    if local in _OPTIMIZER_ONLY or local.startswith("callbacks__"):
        what = _OPTIMIZER_ONLY.get(local, "a callback setting")
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} ({what}) with implicit differentiation: it changes "
            "how training reaches the optimum of the training loss, not where that "
            "optimum is, so its implicit hypergradient is zero. Fix it on the "
            f"estimator, or search it with GridSearchCV around HypergradSearchCV. "
            f"Got {distribution!r}."
        )
    real, granularity = as_real(distribution, name)
    if local == "optimizer__weight_decay":
        _check_optimizer(net, name)
        return HparamSpec(name, local, "weight_decay", granularity, real)
    if local.startswith("module__"):
        if granularity != "scalar":
            raise InvalidHyperparameterError(
                f"{name!r}: PerLayer / PerParameter apply to weight decay only; a "
                f"dropout rate is one value per module argument. Got {distribution!r}."
            )
        paths = find_dropout_layers(net, local, name)
        return HparamSpec(name, local, "dropout", granularity, real, tuple(paths))
    raise InvalidHyperparameterError(
        f"Cannot tune {name!r} with hypergradients: it is not a hyperparameter of the "
        "training loss that skhypergrad knows. Supported: 'optimizer__weight_decay' "
        "(scalar, PerLayer or PerParameter) and 'module__<arg>' for a module argument "
        f"that sets torch.nn.Dropout rates. Got {distribution!r}."
    )


def _strip_step(name, step) -> str:
    if not isinstance(name, str):
        raise InvalidHyperparameterError(
            f"Parameter names must be strings, got {name!r} ({type(name).__name__})."
        )
    if step is None:
        return name
    prefix = f"{step}__"
    if not name.startswith(prefix):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r}: only parameters of the skorch network step "
            f"{step!r} can be tuned, and their names start with {prefix!r} (e.g. "
            f"'{prefix}optimizer__weight_decay'). Search other steps with GridSearchCV."
        )
    return name[len(prefix) :]


def _check_optimizer(net, name) -> None:
    optimizer = net.optimizer
    optimizer_class = optimizer if isinstance(optimizer, type) else type(optimizer)
    if issubclass(optimizer_class, torch.optim.AdamW):
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r} with optimizer={optimizer_class.__name__}: AdamW "
            "decays weights outside the loss (decoupled), so the decay has no implicit "
            "hypergradient. Use optimizer=torch.optim.Adam (or SGD), whose "
            "weight_decay is an L2 term of the loss; the tuned value then applies "
            "as is."
        )
