"""scikit-learn's common estimator checks on HypergradSearchCV,
HalvingHypergradSearchCV and HypergradRegressor (one training) with a tiny net."""

import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetRegressor
from torch import nn

from skhypergrad import (
    HalvingHypergradSearchCV,
    HypergradRegressor,
    HypergradSearchCV,
    Real,
    Tuned,
)


class TinyRegressor(nn.Module):
    """Dropout then a lazy linear layer: fits any number of input features."""

    def __init__(self, dropout=0.1):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear = nn.LazyLinear(1)

    def forward(self, X):
        return self.linear(self.drop(X))


def _net():
    return NeuralNetRegressor(
        TinyRegressor,
        optimizer=torch.optim.Adam,
        lr=0.05,
        max_epochs=4,
        train_split=None,
        verbose=0,
    )


SPACE = {
    "optimizer__weight_decay": Real(1e-4, 1e-1, log=True),
    "module__dropout": Tuned(Real(0.0, 0.5)),
}


def make_search():
    return HypergradSearchCV(_net(), SPACE, cv=2, random_state=0)


def make_halving():
    return HalvingHypergradSearchCV(_net(), SPACE, cv=2, random_state=0, factor=2)


def make_single_fit():
    return HypergradRegressor(_net(), SPACE, validation_fraction=0.3, random_state=0)


# Listed once, with the reason, as scikit-learn does for its own searches.
EXPECTED_FAILED_CHECKS = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "the check passes a parameter named 'kwargs' (the **kwargs that carries "
        "skorch-style hyper_optimizer__<name> arguments); set_params rejects it "
        "as an unknown parameter, as BaseEstimator does"
    ),
    "check_regressors_no_decision_function": (
        "skorch's NeuralNetRegressor inherits predict_proba from NeuralNet, and the "
        "search delegates every method its estimator has, as GridSearchCV does."
    ),
    "check_regressor_multioutput": (
        "The test module has a single output unit; multi-output regression needs a "
        "module built with one output per target, which a fixed tiny module lacks."
    ),
}


# torch warns once per process when a check's read-only memmap becomes a tensor
# (the networks only read it): which check meets it first depends on the order.
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")
@parametrize_with_checks(
    [make_search(), make_halving(), make_single_fit()],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
