"""Hyperparameter families: what the search can tune by hypergradients.

Each family is one module with one :class:`Hyperparameter` subclass; the
search asks the registered families, in order, which one claims each entry of
``param_distributions``. Entries no family claims are searched the way
``GridSearchCV`` / ``RandomizedSearchCV`` would search them.

To add a family, subclass :class:`Hyperparameter` (see its docstring for the
protocol) and call :func:`register_family`.
"""

from __future__ import annotations

from ._base import Binding, Hyperparameter, SplitValues, merge_best_params
from .class_weight import ClassWeight
from .dropout import Dropout
from .input_noise import InputNoiseScale
from .label_smoothing import LabelSmoothing
from .layer_decay import LayerDecay
from .learning_rate import LearningRate
from .parameter_decay import ParameterDecay
from .sample_weight import SampleWeightFamily
from .weight_decay import WeightDecay

FAMILIES: list[type[Hyperparameter]] = [
    WeightDecay,
    LayerDecay,
    ParameterDecay,
    Dropout,
    LabelSmoothing,
    ClassWeight,
    InputNoiseScale,
    SampleWeightFamily,
    LearningRate,
]


def register_family(family: type[Hyperparameter]) -> type[Hyperparameter]:
    """Add a family to the registry (usable as a class decorator).

    It is asked before the built-in families, so it can claim a name they
    know (e.g. ``optimizer__weight_decay`` given its own wrapper).

    Parameters
    ----------
    family : subclass of Hyperparameter

    Returns
    -------
    family : subclass of Hyperparameter
        Unchanged.
    """
    if not (isinstance(family, type) and issubclass(family, Hyperparameter)):
        raise TypeError(
            f"register_family expects a subclass of Hyperparameter, got {family!r}."
        )
    if family not in FAMILIES:
        FAMILIES.insert(0, family)
    return family


def claiming_family(local, distribution, net) -> type[Hyperparameter] | None:
    """The first registered family that claims ``local``, or None.

    Parameters
    ----------
    local : str
        Parameter name on the skorch net.
    distribution : object
        The entry's value in ``param_distributions``.
    net : skorch.NeuralNet
        The unfitted network.

    Returns
    -------
    family : subclass of Hyperparameter or None
    """
    for family in FAMILIES:
        if family.claims(local, distribution, net):
            return family
    return None


def explain_unclaimed(name, local, distribution, net) -> None:
    """Let each family say why it cannot tune an entry wrapped in ``Tuned``.

    Called when no family claims ``local``; a family whose kind of entry it
    looks like raises an error with the reason (e.g. a module argument that
    sets no ``torch.nn.Dropout`` layer).

    Parameters
    ----------
    name : str
        Key in ``param_distributions``, with any Pipeline prefix.
    local : str
        Parameter name on the skorch net.
    distribution : object
        The range inside ``Tuned``.
    net : skorch.NeuralNet
        The unfitted network.

    Raises
    ------
    InvalidHyperparameterError
        From the first family that recognises the entry.
    """
    for family in FAMILIES:
        family.explain_unclaimed(name, local, distribution, net)


__all__ = [
    "FAMILIES",
    "Binding",
    "ClassWeight",
    "Dropout",
    "Hyperparameter",
    "InputNoiseScale",
    "LabelSmoothing",
    "LayerDecay",
    "LearningRate",
    "ParameterDecay",
    "SampleWeightFamily",
    "SplitValues",
    "WeightDecay",
    "claiming_family",
    "explain_unclaimed",
    "merge_best_params",
    "register_family",
]
