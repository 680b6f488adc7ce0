"""The user guide's "Adding a hyperparameter family", done in one file.

An L1 penalty ``strength * sum |w|`` applied by a callback of its own: the
callback trains with it, and the family tells the search how it enters the
training loss. Nothing in the package is touched.
"""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, families
from skhypergrad.callbacks import SearchCallback
from skhypergrad.families import Binding, Hyperparameter
from skhypergrad.hyperparams import as_real

from .conftest import MLP, _net_kwargs

NAME = "callbacks__l1__strength"


class L1Penalty(SearchCallback):
    """Add the gradient of ``strength * sum |w|`` after every backward pass."""

    def __init__(self, strength=0.0):
        self.strength = strength

    def on_grad_computed(self, net, named_parameters, **kwargs):  # noqa: D102
        for _, p in named_parameters:
            if p.grad is not None:
                p.grad.add_(float(self.strength) * torch.sign(p.detach()))


class L1Binding(Binding):
    def __init__(self, callback):
        self.callback = callback

    def apply(self, value):  # training uses the callback's strength
        self.callback.strength = float(value.reshape(-1)[0])

    def inner_term(self, value, params):  # the same term, differentiable
        self.apply(value.detach())
        return value.reshape(-1)[0] * sum(p.abs().sum() for p in params)


class L1Strength(Hyperparameter):
    @classmethod
    def claims(cls, local, distribution, net):
        return local == NAME

    @classmethod
    def from_entry(cls, name, local, distribution, net):
        real, granularity = as_real(distribution, name)
        return cls(name, local, real, granularity)

    def bind(self, net):
        (callback,) = [c for n, c in net.callbacks_ if n == "l1"]
        return L1Binding(callback)

    def best_params(self, value, net, prefix, layout):
        return {self.name: float(value)}


@pytest.fixture
def with_l1_family(monkeypatch):
    monkeypatch.setattr(families, "FAMILIES", list(families.FAMILIES))
    families.register_family(L1Strength)


def test_a_family_in_one_file_is_tuned_scored_and_refitted(
    classification_data, with_l1_family
):
    X, y = classification_data
    net = NeuralNetClassifier(
        MLP,
        module__n_in=X.shape[1],
        module__n_out=3,
        criterion=nn.CrossEntropyLoss,
        callbacks=[("l1", L1Penalty())],
        **_net_kwargs(max_epochs=10, lr=0.02),
    )
    search = HypergradSearchCV(
        net, {NAME: loguniform(1e-5, 1e-1)}, cv=2, random_state=0
    ).fit(X, y)

    strength = search.best_params_[NAME]
    assert isinstance(strength, float)
    assert 1e-5 <= strength <= 1e-1
    path = search.path_[NAME]
    assert len(path) > 1
    assert len(set(np.round(path, 12))) > 1  # it moved
    assert not any(search.path_["skipped"])
    # The refit trained with the reported strength on its callback.
    refit_callback = dict(search.best_estimator_.callbacks_)["l1"]
    assert refit_callback.strength == pytest.approx(strength)
    assert np.isfinite(search.best_score_)
