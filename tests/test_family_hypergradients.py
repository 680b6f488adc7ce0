"""Hypergradients of the loss families against central finite differences.

A linear softmax classifier with a small fixed weight decay has one training
optimum, which full-batch L-BFGS reaches in float64: the validation loss as a
function of the raw hyperparameter is then smooth, and its central differences
are the oracle for the implicit hypergradient (``solver="exact"``). Input
noise is drawn from a fixed seed, so the noisy training loss is one smooth
function of the scale (common random numbers).
"""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import InputNoise, PerClass, PerFeature
from skhypergrad.bilevel import net_hypergradient
from skhypergrad.families import (
    ClassWeight,
    InputNoiseScale,
    LabelSmoothing,
    WeightDecay,
)
from skhypergrad.penalties import trainable_parameters

N_FEATURES, N_CLASSES = 4, 3
NOISE_SEED = 1234
DECAY = "optimizer__weight_decay"

# family, entry name, range, raw point at which the hypergradient is checked
CASES = {
    "label_smoothing": (
        LabelSmoothing,
        "criterion__label_smoothing",
        uniform(0.0, 0.5),
        [0.3],
    ),
    "class_weight": (
        ClassWeight,
        "criterion__weight",
        PerClass(loguniform(0.2, 5.0)),
        [0.4, -0.3, 0.1],
    ),
    "input_noise": (
        InputNoiseScale,
        "callbacks__noise__scale",
        loguniform(0.01, 2.0),
        [np.log(0.5)],
    ),
    "input_noise_per_feature": (
        InputNoiseScale,
        "callbacks__noise__scale",
        PerFeature(loguniform(0.01, 2.0)),
        list(np.log([0.2, 0.5, 0.8, 0.3])),
    ),
}


class Linear(nn.Module):
    """Softmax regression: one optimum once a weight decay is added."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(N_FEATURES, N_CLASSES)

    def forward(self, X):
        return self.linear(X)


def _data():
    X, y = make_classification(
        n_samples=90,
        n_features=N_FEATURES,
        n_informative=3,
        n_redundant=0,
        n_classes=N_CLASSES,
        flip_y=0.1,
        random_state=0,
    )
    X, y = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.int64)
    return (X[:60], y[:60]), (X[60:], y[60:])


def _problem(case):
    family, name, distribution, raw = CASES[case]
    net = NeuralNetClassifier(
        Linear,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        callbacks=[("noise", InputNoise())],
        train_split=None,
        verbose=0,
    ).initialize()
    net.module_.double()
    entries = [
        WeightDecay.from_entry(DECAY, DECAY, loguniform(1e-3, 1.0), net),
        family.from_entry(name, name, distribution, net),
    ]
    assert entries[1].size(net, 60) == len(raw)
    bindings = [entry.bind(net) for entry in entries]
    raw = [torch.tensor([np.log(0.05)]), torch.tensor(raw, dtype=torch.float64)]
    return net, entries, bindings, raw


def _to_values(entries):
    return lambda raw: [e.real.from_raw(r) for e, r in zip(entries, raw)]


def _train(net, entries, bindings, raw, start, X, y):
    """Full-batch L-BFGS to the optimum of the training loss at ``raw``."""
    values = _to_values(entries)(raw)
    for binding, value in zip(bindings, values):
        binding.apply(value.detach())
    params = trainable_parameters(net.module_)
    with torch.no_grad():
        for p, p0 in zip(params, start):
            p.copy_(p0)
    optimizer = torch.optim.LBFGS(
        params,
        max_iter=400,
        tolerance_grad=1e-13,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        net.module_.train()
        torch.manual_seed(NOISE_SEED)
        loss = net.get_loss(net.infer(X), y, X=X, training=True)
        loss = loss + bindings[0].inner_term(values[0].detach(), params)
        loss.backward()
        return loss

    for _ in range(3):
        optimizer.step(closure)


def _validation_loss(net, X, y):
    net.module_.eval()
    with torch.no_grad():
        loss = float(net.get_loss(net.infer(X), y, X=X, training=False))
    net.module_.train()
    return loss


@pytest.mark.parametrize("case", list(CASES))
def test_family_hypergradient_matches_finite_differences(case):
    (X, y), (X_val, y_val) = _data()
    net, entries, bindings, raw = _problem(case)
    start = [p.detach().clone() for p in trainable_parameters(net.module_)]

    _train(net, entries, bindings, raw, start, X, y)
    hparams = [r.clone().requires_grad_(True) for r in raw]
    torch.manual_seed(NOISE_SEED)  # the training batch's noise, as in _train
    grads = net_hypergradient(
        net, bindings, hparams, _to_values(entries), (X, y), (X_val, y_val), "exact"
    )[0]

    step, expected = 1e-4, []
    for i in range(raw[1].numel()):
        losses = []
        for sign in (1, -1):
            moved = raw[1].clone()
            moved[i] += sign * step
            _train(net, entries, bindings, [raw[0], moved], start, X, y)
            losses.append(_validation_loss(net, X_val, y_val))
        expected.append((losses[0] - losses[1]) / (2 * step))
    expected = torch.tensor(expected, dtype=torch.float64)

    error = float((grads[1] - expected).norm() / expected.norm())
    assert expected.norm() > 1e-3  # the validation loss does depend on it
    assert error < 1e-4, (case, grads[1], expected, error)


def test_sample_weight_hypergradient_matches_finite_differences():
    """Per-example weights: the hypergradient of 60 weights, checked along
    random directions (each direction is two trainings)."""
    from skhypergrad import PerSample, SampleWeight
    from skhypergrad.families import SampleWeightFamily

    (X, y), (X_val, y_val) = _data()
    name = "callbacks__weights__weight"
    net = NeuralNetClassifier(
        Linear,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        callbacks=[("weights", SampleWeight(weight=np.ones(60)))],
        train_split=None,
        verbose=0,
    ).initialize()
    net.module_.double()
    entries = [
        WeightDecay.from_entry(DECAY, DECAY, loguniform(1e-3, 1.0), net),
        SampleWeightFamily.from_entry(name, name, PerSample(loguniform(0.1, 1)), net),
    ]
    assert entries[1].per_fold
    assert entries[1].size(net, 60) == 60
    dict(net.callbacks_)["weights"].on_train_begin(net, X=X, y=y)
    bindings = [entry.bind(net) for entry in entries]
    every_row = np.arange(60)
    rng = np.random.default_rng(0)
    raw = [
        torch.tensor([np.log(0.05)]),
        torch.as_tensor(rng.uniform(np.log(0.1), 0.0, 60)),
    ]
    start = [p.detach().clone() for p in trainable_parameters(net.module_)]
    callback = dict(net.callbacks_)["weights"]

    def train(raw):
        # The training loss of _train, with every row weighted.
        values = _to_values(entries)(raw)
        bindings[1].apply(values[1].detach())
        callback.use_rows(every_row)
        _train(net, entries[:1], bindings[:1], raw[:1], start, X, y)

    train(raw)
    hparams = [r.clone().requires_grad_(True) for r in raw]
    for binding in bindings:
        binding.batch_rows(every_row)
    grads = net_hypergradient(
        net, bindings, hparams, _to_values(entries), (X, y), (X_val, y_val), "exact"
    )[0]

    step = 1e-4
    for direction in rng.standard_normal((3, 60)):
        direction = torch.as_tensor(direction / np.linalg.norm(direction))
        losses = []
        for sign in (1, -1):
            train([raw[0], raw[1] + sign * step * direction])
            losses.append(_validation_loss(net, X_val, y_val))
        expected = (losses[0] - losses[1]) / (2 * step)
        got = float(grads[1] @ direction)
        assert abs(expected) > 1e-4
        assert abs(got - expected) < 1e-3 * abs(expected), (got, expected)
