"""Convolutional nets with BatchNorm and dropout: the hyper-steps leave the
training alone (its BatchNorm statistics, weights and random stream), so a
tuning training whose values do not move is plain training at those values."""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradClassifier, HypergradSearchCV
from skhypergrad.hypergrad import OuterOptimizer


class NoStep(torch.optim.Optimizer):
    """Takes no step: the hyper-steps run, the values never move."""

    def __init__(self, params, lr=1.0):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):  # noqa: D102
        return None


class SequenceCNN(nn.Module):
    """Conv1d, BatchNorm1d, ReLU and dropout on (n, 1, 32) sequences."""

    def __init__(self, dropout=0.1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(1, 8, 5, padding=2),
            nn.BatchNorm1d(8),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.AdaptiveAvgPool1d(4),
            nn.Flatten(),
            nn.Linear(32, 3),
        )

    def forward(self, X):
        return self.body(X)


class ImageCNN(nn.Module):
    """Conv2d, BatchNorm2d, ReLU and dropout on (n, 1, 8, 8) digit images."""

    def __init__(self, dropout=0.2):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 10),
        )

    def forward(self, X):
        return self.body(X)


def _sequences():
    rng = np.random.RandomState(0)
    X = rng.randn(240, 1, 32).astype(np.float32)
    y = (X[:, 0, :8].sum(1) > 0).astype(np.int64) + (X[:, 0, 8:16].sum(1) > 1)
    return X, y


def _net(module, **overrides):
    kwargs = {
        "criterion": nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.01,
        "max_epochs": 6,
        "batch_size": 32,
        "train_split": None,
        "verbose": 0,
    }
    kwargs.update(overrides)
    return NeuralNetClassifier(module, **kwargs)


def test_hyper_steps_leave_batchnorm_statistics_and_training_alone():
    X, y = _sequences()
    space = {"optimizer__weight_decay": loguniform(1e-4, 1e-2)}
    frozen = OuterOptimizer(NoStep)
    # With rescore=False the kept net is the tuning training itself; with
    # rescore=True it is the training of the (unmoved) values as constants.
    tuning = HypergradClassifier(
        _net(SequenceCNN), space, hyper_optimizer=frozen, rescore=False, random_state=0
    ).fit(X, y)
    plain = HypergradClassifier(
        _net(SequenceCNN), space, hyper_optimizer=frozen, rescore=True, random_state=0
    ).fit(X, y)

    assert len(tuning.path_["epoch"]) > 0  # hyper-steps ran
    tuned, fixed = tuning.best_estimator_.module_, plain.best_estimator_.module_
    for (name, a), (_, b) in zip(
        tuned.state_dict().items(), fixed.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert int(tuned.body[1].num_batches_tracked) == 6 * 7  # 6 epochs x 7 batches


@pytest.mark.parametrize("rescore", [True, False])
def test_a_search_tunes_decay_and_dropout_of_a_conv2d_batchnorm_net(rescore):
    X, y = load_digits(return_X_y=True)
    X = (X[:360] / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    y = y[:360]
    search = HypergradSearchCV(
        _net(ImageCNN, max_epochs=5),
        {
            "optimizer__weight_decay": loguniform(1e-5, 1e-1),
            "module__dropout": uniform(0.0, 0.5),
        },
        cv=2,
        rescore=rescore,
        random_state=0,
    ).fit(X, y)

    assert len(search.path_["epoch"]) > 0
    assert 0.0 <= search.best_params_["module__dropout"] < 0.5
    bn = search.best_estimator_.module_.body[1]
    assert torch.isfinite(bn.running_mean).all()
    assert torch.isfinite(bn.running_var).all()
    assert search.score(X, y) > 0.5
