"""The family extension point: a family written outside the package plugs in,
and per-fold families get one raw vector per split, sized by the split."""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from sklearn.model_selection import KFold

from skhypergrad import HypergradSearchCV
from skhypergrad import families as registry
from skhypergrad.families import Binding, Hyperparameter
from skhypergrad.hyperparams import as_real
from skhypergrad.penalties import l2_penalty


class PerRow:
    """Marks a range as one value per training row of each split."""

    def __init__(self, distribution):
        self.distribution = distribution


class RowDecayBinding(Binding):
    """Weight decay equal to the mean of the split's per-row values."""

    def __init__(self, net):
        self.net = net

    def apply(self, value):
        for group in self.net.optimizer_.param_groups:
            group["weight_decay"] = float(value.mean())

    def inner_term(self, value, params):
        return l2_penalty(params, [value.mean()] * len(params))


class RowDecay(Hyperparameter):
    """A per-fold family: one raw value per training row of the split."""

    per_fold = True
    seen = {}

    @classmethod
    def claims(cls, local, distribution, net):
        return local == "optimizer__weight_decay" and isinstance(distribution, PerRow)

    @classmethod
    def from_entry(cls, name, local, distribution, net):
        real, _ = as_real(distribution.distribution, name)
        return cls(name, local, real, granularity="parameter")

    def size(self, net, n_train):
        return n_train

    def bind(self, net):
        return RowDecayBinding(net)

    def best_params(self, value, net, prefix, layout):
        RowDecay.seen = value  # {split index: array of that split's values}
        means = [float(np.mean(v)) for v in value.values()]
        return {self.name: float(np.exp(np.mean(np.log(means))))}


@pytest.fixture
def row_decay(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", list(registry.FAMILIES))
    registry.register_family(RowDecay)
    return RowDecay


def test_registered_family_tunes_per_fold_values(
    row_decay, classification_data, make_classifier
):
    X, y = classification_data
    X, y = X[:119], y[:119]  # 119 rows: splits of 79 and 80 training rows
    space = {"optimizer__weight_decay": PerRow(loguniform(1e-5, 1e-1))}

    search = HypergradSearchCV(
        make_classifier(), space, cv=KFold(3), random_state=0, error_score="raise"
    ).fit(X, y)

    sizes = sorted(len(v) for v in row_decay.seen.values())
    assert sizes == [79, 79, 80]  # one value per training row of each split
    means = [float(np.mean(v)) for v in row_decay.seen.values()]
    assert len(set(means)) == 3  # each split followed its own hypergradient
    assert all(1e-5 <= m <= 1e-1 for m in means)
    decay = search.best_params_["optimizer__weight_decay"]
    assert search.best_estimator_.optimizer_.param_groups[0]["weight_decay"] == decay


def test_register_family_refuses_a_non_family():
    with pytest.raises(TypeError, match="subclass of Hyperparameter"):
        registry.register_family(torch.nn.Linear)
