"""scikit-learn's search seam, whole: a sequential strategy written in a test
file, touching no package file, as ``BaseSearchCV`` subclasses write theirs."""

import numpy as np
from scipy.stats import loguniform
from sklearn.model_selection import KFold

from skhypergrad import HypergradSearchCV

SPACE = {
    "batch_size": [16, 64],
    "optimizer__weight_decay": loguniform(1e-5, 1e-1),
}


class HalveTheBest(HypergradSearchCV):
    """Evaluate the listed batch sizes, then half the best one: each call of
    ``evaluate_candidates`` returns the results so far."""

    def _run_search(self, evaluate_candidates):
        first = evaluate_candidates([{"batch_size": 16}, {"batch_size": 64}])
        self.seen_ = [len(first["params"])]
        best = first["params"][int(np.argmax(first["mean_test_score"]))]
        results = evaluate_candidates([{"batch_size": best["batch_size"] // 2}])
        self.seen_.append(len(results["params"]))


class Twice(HypergradSearchCV):
    """The same candidate in two calls."""

    def _run_search(self, evaluate_candidates):
        evaluate_candidates([{"batch_size": 16}])
        evaluate_candidates([{"batch_size": 16}])


def test_a_sequential_strategy_sees_the_results_so_far(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier(max_epochs=4)

    search = HalveTheBest(net, SPACE, cv=KFold(2), random_state=0).fit(X, y)
    plain = HypergradSearchCV(net, SPACE, cv=KFold(2), random_state=0).fit(X, y)

    assert search.seen_ == [2, 3]
    results = search.cv_results_
    assert len(results["params"]) == 3
    assert results["params"][2]["batch_size"] in (8, 32)
    # The first call draws the search's own seeds: the rows of the grid are
    # those of HypergradSearchCV on the same grid.
    np.testing.assert_array_equal(
        results["mean_test_score"][:2], plain.cv_results_["mean_test_score"]
    )
    assert results["params"][:2] == plain.cv_results_["params"]
    assert search.best_params_ == results["params"][search.best_index_]
    # Ranks, best_score_ and the refit span every call's rows.
    assert sorted(results["rank_test_score"]) == [1, 2, 3]
    assert hasattr(search, "best_estimator_")


def test_each_call_draws_fresh_seeds(classification_data, make_classifier):
    X, y = classification_data
    search = Twice(
        make_classifier(max_epochs=4), SPACE, cv=KFold(2), random_state=0
    ).fit(X, y)

    losses = search.cv_results_["split0_test_loss"]
    assert len(losses) == 2
    # The same candidate, trained from other initial weights and minibatches.
    assert losses[0] != losses[1]
