"""The search finds the validation optimum of a linear model, checked in closed form."""

import numpy as np
import torch
from sklearn.datasets import make_regression
from sklearn.model_selection import KFold
from skorch import NeuralNetRegressor
from torch import nn

from skhypergrad import HypergradSearchCV, Real
from skhypergrad.datasets import ridge_cv_loss as ridge_validation_loss


def test_linear_search_reaches_fine_grid_optimum():
    X, y = make_regression(
        n_samples=90, n_features=60, n_informative=10, noise=30.0, random_state=0
    )
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    splits = list(KFold(3).split(X))
    grid = np.logspace(-4, 1, 200)
    grid_losses = [ridge_validation_loss(X, y, splits, wd) for wd in grid]
    best_grid = min(grid_losses)
    assert 0 < np.argmin(grid_losses) < len(grid) - 1, "optimum must be interior"

    net = NeuralNetRegressor(
        nn.Linear,
        module__in_features=60,
        module__out_features=1,
        optimizer=torch.optim.SGD,
        lr=0.2,
        max_epochs=200,
        batch_size=-1,
        train_split=None,
        verbose=0,
    )
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": Real(1e-4, 10.0, log=True)},
        cv=splits,
        random_state=0,
        refit=False,
    ).fit(X, y)
    found = search.best_params_["optimizer__weight_decay"]
    assert ridge_validation_loss(X, y, splits, found) <= 1.02 * best_grid
