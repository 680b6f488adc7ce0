"""The tuned cross-entropy and the input-noise callback, unit by unit."""

import pickle

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn
from torch.nn import functional as F

from skhypergrad import InputNoise
from skhypergrad.families._criterion import (
    TunedCrossEntropyLoss,
    cross_entropy,
    tuned_criterion,
)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_torch(reduction, weighted):
    scores = torch.randn(7, 4, dtype=torch.float64)
    target = torch.tensor([0, 1, 2, 3, -100, 1, 2])
    weight = torch.tensor([0.5, 2.0, 1.0, 0.7], dtype=torch.float64)
    weight = weight if weighted else None

    got = cross_entropy(scores, target, weight, 0.2, reduction=reduction)
    expected = F.cross_entropy(
        scores, target, weight, label_smoothing=0.2, reduction=reduction
    )

    torch.testing.assert_close(got, expected)


def test_cross_entropy_differentiates_smoothing_and_weights():
    scores, target = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    smoothing = torch.tensor(0.1, requires_grad=True)
    weight = torch.ones(3, requires_grad=True)

    cross_entropy(scores, target, weight * torch.tensor([1.0, 2.0, 3.0]), smoothing)
    loss = cross_entropy(scores, target, weight, smoothing)
    loss.backward()

    assert smoothing.grad is not None
    assert weight.grad is not None


def test_tuned_criterion_is_plain_when_the_module_evaluates():
    net = NeuralNetClassifier(
        nn.Linear,
        module__in_features=3,
        module__out_features=4,
        criterion=nn.CrossEntropyLoss,
        criterion__label_smoothing=0.3,
    ).initialize()
    criterion = tuned_criterion(net)
    criterion.label_smoothing = 0.0
    criterion.smoothing = torch.tensor(0.4)
    criterion.class_weight = torch.tensor([1.0, 2.0, 0.5, 0.5])
    scores, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])

    net.module_.train()
    smoothed = criterion(scores, target)
    # skorch leaves the criterion in train mode after a training epoch; the
    # search's evaluations switch only the module: the loss follows the module.
    criterion.train()
    net.module_.eval()
    plain = criterion(scores, target)

    assert net.criterion_ is criterion
    assert tuned_criterion(net) is criterion
    torch.testing.assert_close(plain, F.cross_entropy(scores, target))
    expected = F.cross_entropy(
        scores, target, criterion.class_weight, label_smoothing=0.4
    )
    torch.testing.assert_close(smoothed, expected)
    assert "network" not in dict(criterion.named_modules())  # not its parameters


def test_tuned_criterion_pickles_with_its_net():
    net = NeuralNetClassifier(
        nn.Linear,
        module__in_features=3,
        module__out_features=2,
        criterion=nn.CrossEntropyLoss,
    ).initialize()
    tuned_criterion(net)

    copy = pickle.loads(pickle.dumps(net))

    assert isinstance(copy.criterion_, TunedCrossEntropyLoss)
    assert copy.criterion_.__dict__["_network"] is copy.module_


def test_class_weights_of_the_wrong_length_are_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"PerClass\(range, n_classes=4\)"):
        cross_entropy(torch.randn(2, 4), torch.tensor([0, 1]), torch.ones(3))


def _noisy_net(scale, **kwargs):
    return NeuralNetClassifier(
        nn.Linear,
        module__in_features=3,
        module__out_features=2,
        criterion=nn.CrossEntropyLoss,
        callbacks=[("noise", InputNoise(scale=scale))],
        max_epochs=1,
        train_split=None,
        verbose=0,
        **kwargs,
    )


def _inputs_seen(net, X):
    seen = []
    net.module_.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    net.module_(X)
    return seen[-1]


def test_input_noise_applies_in_training_mode_only():
    X = np.zeros((20, 3), dtype=np.float32)
    y = np.arange(20) % 2
    net = _noisy_net(np.array([0.0, 1.0, 10.0])).fit(X, y)
    assert not net.module_._forward_pre_hooks  # removed at the end of training
    callback = dict(net.callbacks_)["noise"]
    callback.attach(net.module_)
    callback.attach(net.module_)  # once per module
    X_t = torch.zeros(500, 3)

    net.module_.train()
    noisy = _inputs_seen(net, X_t)
    net.module_.eval()
    clean = _inputs_seen(net, X_t)

    assert len(net.module_._forward_pre_hooks) == 1
    np.testing.assert_allclose(noisy.std(0), [0.0, 1.0, 10.0], atol=0.1, rtol=0.15)
    assert torch.equal(clean, X_t)


def test_input_noise_changes_training():
    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    torch.manual_seed(0)
    plain = _noisy_net(0.0).fit(X, y)
    torch.manual_seed(0)
    noisy = _noisy_net(1.0).fit(X, y)

    assert plain.history[-1, "train_loss"] != noisy.history[-1, "train_loss"]


def test_input_noise_scale_tensor_gets_a_gradient():
    net = _noisy_net(0.0).initialize()
    callback = dict(net.callbacks_)["noise"]
    callback.attach(net.module_)
    callback.scale = torch.tensor(0.5, requires_grad=True)

    net.module_.train()
    net.module_(torch.ones(4, 3)).sum().backward()

    assert callback.scale.grad is not None


@pytest.mark.parametrize(
    ("scale", "match"),
    [(-0.1, "scale >= 0"), ([[0.1]], "scale >= 0"), ("big", "scale >= 0")],
)
def test_input_noise_refuses_bad_scales(scale, match):
    X, y = np.zeros((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        _noisy_net(scale).fit(X, y)


def test_input_noise_refuses_a_scale_per_feature_of_the_wrong_length():
    X, y = np.zeros((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="2 scales but the module's input has 3"):
        _noisy_net([0.1, 0.2]).fit(X, y)


def test_input_noise_net_clones_and_pickles():
    from sklearn.base import clone

    X, y = np.zeros((8, 3), dtype=np.float32), np.arange(8) % 2
    net = _noisy_net(0.3).fit(X, y)

    copy = pickle.loads(pickle.dumps(net)).partial_fit(X, y)
    fresh = clone(net)

    assert not copy.module_._forward_pre_hooks
    assert fresh.callbacks[0][1].scale == 0.3
    assert not hasattr(fresh.callbacks[0][1], "hooked_")
