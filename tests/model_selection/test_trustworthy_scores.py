"""What the search reports is what the refit trains: scores of the reported
values as constants, steps the validation loss contradicts rejected, values
that collapse a network trained from scratch not reported."""

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score

from skhypergrad import BoundaryValueWarning, HypergradSearchCV, Tuned
from skhypergrad.hypergrad import OuterOptimizer

SPACE = {
    "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    "module__dropout": Tuned(uniform(0.0, 0.5)),
}


class AlwaysUp(torch.optim.Optimizer):
    """Raises every raw value by ``lr`` per step, whatever the hypergradient:
    a stand-in for a hypergradient that keeps pointing up."""

    def __init__(self, params, lr=1.0):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(group["lr"])


def _constants_as_grid(best_params):
    return {k: [v] for k, v in best_params.items()}


@pytest.mark.parametrize(
    "space",
    [SPACE, {"optimizer__weight_decay": SPACE["optimizer__weight_decay"]}],
    ids=["decay+dropout", "decay"],
)
def test_split_scores_are_those_of_the_reported_values_trained_as_constants(
    classification_data, make_classifier, space
):
    X, y = classification_data
    net = make_classifier(max_epochs=8)
    search = HypergradSearchCV(net, space, cv=KFold(3), random_state=0, refit=False)
    search.fit(X, y)
    params = search.cv_results_["params"][0]

    # The same random_state trains the same split networks (seeds, minibatch
    # order) for a one-candidate search: here with the reported values fixed.
    fixed = HypergradSearchCV(
        net, _constants_as_grid(params), cv=KFold(3), random_state=0, refit=False
    )
    with pytest.warns(UserWarning, match="is given as a list"):
        fixed.fit(X, y)

    for key in (
        "split0_test_score",
        "split1_test_score",
        "split2_test_score",
        "mean_test_loss",
    ):
        assert search.cv_results_[key][0] == pytest.approx(fixed.cv_results_[key][0])
    # The path's own scores are another thing (the values moved during it).
    path = HypergradSearchCV(
        net, space, cv=KFold(3), random_state=0, refit=False, rescore=False
    ).fit(X, y)
    assert path.cv_results_["mean_test_loss"][0] != pytest.approx(
        search.cv_results_["mean_test_loss"][0]
    )


def test_best_score_estimates_the_refit_values_under_cross_val_score(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier(max_epochs=10)
    folds = KFold(3, shuffle=True, random_state=0)
    search = HypergradSearchCV(net, SPACE, cv=folds, random_state=0).fit(X, y)

    torch.manual_seed(0)
    constants = clone(net).set_params(**search.best_params_)
    # skorch itself needs float32 X and int64 y (the search casts them).
    scores = cross_val_score(
        constants, X.astype(np.float32), y.astype(np.int64), cv=folds
    )

    # Only the networks' seeds differ: the same configuration on the same folds.
    assert abs(search.best_score_ - scores.mean()) <= 0.1


def test_a_step_after_which_the_validation_loss_rose_is_rejected(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier(max_epochs=12, lr=0.02)
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-4, 10.0)},
        cv=KFold(2),
        random_state=0,
        # A tolerance below this net's rises, so that a rise is seen.
        hyper_optimizer=OuterOptimizer(AlwaysUp, lr=1.5, tol=0.002),
        refit=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryValueWarning)
        search.fit(X, y)

    path = search.paths_[0]
    rejected = [i for i, r in enumerate(path["rejected"]) if r]
    assert rejected, path["val_loss"]
    decay = path["optimizer__weight_decay"]
    start = np.sqrt(1e-4 * 10.0)
    for i in rejected:
        reason = path["reason"][i]
        if reason.startswith("drift"):
            # The values went back to an earlier point of the path.
            assert any(
                decay[i] == pytest.approx(v, rel=1e-6) for v in [start, *decay[:i]]
            )
            continue
        assert "validation loss rose" in reason
        # It rose from the previous measurement by more than the tolerance.
        assert path["val_loss"][i] > 1.002 * path["val_loss"][i - 1]
        # The step after the previous measurement (recorded at i - 1) is
        # undone: the values are those after step i - 2 (or the start).
        assert not path["rejected"][i - 1]
        before = decay[i - 2] if i >= 2 else start
        assert decay[i] == pytest.approx(before, rel=1e-6)
    assert search.cv_results_["n_rejected_hypersteps"][0] == len(rejected)


def test_values_that_collapse_the_net_as_constants_are_not_reported(
    classification_data, make_classifier
):
    # The collapse of a search whose hypergradient kept pointing up: without
    # the guard, weight decay runs to 10 (Adam + L2 10 trains to chance from
    # scratch). The reported values are the starting ones, whose constant
    # training validated better, and the refit is a working net.
    X, y = classification_data
    net = make_classifier(max_epochs=12, lr=0.02)
    unguarded = OuterOptimizer(AlwaysUp, lr=1.5, tol=None)
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-4, 10.0)},
        cv=KFold(2),
        random_state=0,
        hyper_optimizer=unguarded,
    )
    with pytest.warns(
        BoundaryValueWarning, match="upper bound.*optimizer__weight_decay"
    ):
        search.fit(X, y)

    assert search.path_["optimizer__weight_decay"][-1] == pytest.approx(10.0)
    assert not search.cv_results_["tuned_values_kept"][0]
    assert search.best_params_["optimizer__weight_decay"] == pytest.approx(
        np.sqrt(1e-4 * 10.0)
    )
    chance = np.bincount(y).max() / len(y)
    # The refit is a plain skorch net: float32 X.
    assert search.best_estimator_.score(X.astype(np.float32), y) > chance + 0.2
    assert search.best_score_ > chance + 0.1
