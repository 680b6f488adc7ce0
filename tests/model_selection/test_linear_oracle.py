"""The search finds the validation optimum of a linear model, checked in closed form."""

import numpy as np
import torch
from skorch import NeuralNetRegressor
from torch import nn

from skhypergrad import HypergradSearchCV, Real
from skhypergrad.datasets import make_linear_oracle


def test_linear_search_reaches_fine_grid_optimum():
    oracle = make_linear_oracle()
    assert 0 < np.argmin(oracle.grid_losses) < len(oracle.grid) - 1, (
        "optimum must be interior"
    )

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
        cv=oracle.splits,
        random_state=0,
        refit=False,
    ).fit(oracle.X, oracle.y)
    found = search.best_params_["optimizer__weight_decay"]
    assert oracle.loss_ratio(found) <= 1.02
