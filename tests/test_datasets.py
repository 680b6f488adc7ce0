"""The closed-form oracles in skhypergrad.datasets, checked by a second method."""

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold

from skhypergrad.datasets import ridge_cv_loss


def _fit_linear(X, y, weight_decay):
    """nn.Linear trained on ``(X, y)`` with L-BFGS to convergence, in float64."""
    Xt = torch.as_tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    model = torch.nn.Linear(X.shape[1], 1).double()
    opt = torch.optim.LBFGS(
        model.parameters(),
        max_iter=500,
        tolerance_grad=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = ((model(Xt).squeeze(1) - yt) ** 2).mean()
        loss = loss + weight_decay / 2 * sum((p**2).sum() for p in model.parameters())
        loss.backward()
        return loss

    opt.step(closure)
    return model


def _trained_linear_loss(X, y, splits, weight_decay):
    """The same quantity by training torch's nn.Linear for each split."""
    losses = []
    for train, test in splits:
        model = _fit_linear(X[train], y[train], weight_decay)
        with torch.no_grad():
            pred = model(torch.as_tensor(X[test], dtype=torch.float64)).squeeze(1)
        losses.append(float(((pred.numpy() - y[test]) ** 2).mean()))
    return float(np.mean(losses))


@pytest.mark.parametrize("weight_decay", [0.0, 0.03, 1.0])
def test_ridge_cv_loss_matches_a_trained_linear_model(weight_decay):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = X @ rng.normal(size=5) + 0.5 + rng.normal(scale=0.3, size=40)
    splits = list(KFold(3).split(X))

    expected = _trained_linear_loss(X, y, splits, weight_decay)

    assert ridge_cv_loss(X, y, splits, weight_decay) == pytest.approx(
        expected, rel=1e-6
    )
