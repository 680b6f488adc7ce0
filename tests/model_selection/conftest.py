"""Tiny data and tiny skorch networks for the search tests (seconds on a CPU)."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

N_FEATURES = 6
N_CLASSES = 3
HIDDEN = 16
MAX_EPOCHS = 6


class MLP(nn.Module):
    """Linear-ReLU-Dropout-Linear; module level so that nets pickle."""

    def __init__(self, n_in, n_out, hidden=HIDDEN, dropout=0.2):
        super().__init__()
        self.hidden = nn.Linear(n_in, hidden)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_out)

    def forward(self, X):
        return self.output(self.dropout(self.relu(self.hidden(X))))


# Modules owning parameters, and trainable weights, of MLP(6, 3, hidden=16).
N_LAYERS = 2
N_WEIGHTS = N_FEATURES * HIDDEN + HIDDEN + HIDDEN * N_CLASSES + N_CLASSES


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Train on one thread: tiny nets gain nothing from more, and CI shares cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net_kwargs(**overrides):
    kwargs = {
        "optimizer": torch.optim.Adam,
        "lr": 0.01,
        "max_epochs": MAX_EPOCHS,
        "train_split": None,
        "verbose": 0,
    }
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope="session")
def classification_data():
    """Float64 ``X`` (120, 6) and int ``y`` (3 classes), uncast; copy to modify."""
    X, y = make_classification(
        n_samples=120,
        n_features=N_FEATURES,
        n_informative=4,
        n_redundant=0,
        n_classes=N_CLASSES,
        random_state=0,
    )
    return X, y


@pytest.fixture(scope="session")
def regression_data():
    """Float64 ``X`` (80, 6) and a 1-D float64 ``y``, uncast; copy to modify."""
    X, y = make_regression(
        n_samples=80, n_features=N_FEATURES, noise=0.1, random_state=0
    )
    return X, y / np.std(y)


@pytest.fixture(scope="session")
def make_classifier():
    """Return a factory of tiny ``NeuralNetClassifier``; keywords override defaults."""

    def make(**overrides):
        overrides.setdefault("module__n_in", N_FEATURES)
        overrides.setdefault("module__n_out", N_CLASSES)
        return NeuralNetClassifier(
            MLP, criterion=nn.CrossEntropyLoss, **_net_kwargs(**overrides)
        )

    return make


@pytest.fixture(scope="session")
def make_regressor():
    """Return a factory of tiny ``NeuralNetRegressor``; keywords override defaults."""

    def make(**overrides):
        overrides.setdefault("module__n_in", N_FEATURES)
        overrides.setdefault("module__n_out", 1)
        return NeuralNetRegressor(MLP, **_net_kwargs(**overrides))

    return make


def assert_same_search(remote, local, X):
    """A search run elsewhere (a cluster, workers) gave what the local one
    gave: the same rows, scores, best values and predictions."""
    assert remote.best_params_ == local.best_params_
    assert remote.cv_results_["params"] == local.cv_results_["params"]
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    if hasattr(local, "best_estimator_"):
        np.testing.assert_array_equal(remote.predict(X), local.predict(X))
