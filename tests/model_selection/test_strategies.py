"""scikit-learn's search seam, whole: a sequential strategy written in a test
file, touching no package file, as ``BaseSearchCV`` subclasses write theirs."""

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.model_selection import KFold

from skhypergrad import HypergradSearchCV, InvalidInputError
from skhypergrad.model_selection import Resume

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


class StopAndGoOn(HypergradSearchCV):
    """A strategy of its own that pauses trainings: every candidate to epoch
    2, then only the best goes on, from where it stopped, to the end (a
    one-rung race written in a test file, with ``Resume``)."""

    def _run_search(self, evaluate_candidates):
        candidates = [{"batch_size": 16}, {"batch_size": 64}]
        first = evaluate_candidates(
            candidates, {"stage": ["early"] * 2}, epochs=[2, 4], until=2
        )
        best = int(np.argmax(first["mean_test_score"]))
        evaluate_candidates([Resume(best)], {"stage": ["end"]}, until=4)


def test_a_strategy_resumes_a_paused_training(classification_data, make_classifier):
    """The resumed row is the row of one uninterrupted training of that
    candidate; a paused training not taken by the next call is gone."""
    X, y = classification_data
    net = make_classifier(max_epochs=4)
    space = {**SPACE, "batch_size": [16, 64]}

    search = StopAndGoOn(net, space, cv=KFold(2), random_state=0).fit(X, y)
    plain = HypergradSearchCV(net, space, cv=KFold(2), random_state=0).fit(X, y)

    results = search.cv_results_
    assert list(results["stage"]) == ["early", "early", "end"]
    assert [p["max_epochs"] for p in results["params"]] == [2, 2, 4]
    resumed = results["params"][2]
    (row,) = [
        i
        for i, p in enumerate(plain.cv_results_["params"])
        if p["batch_size"] == resumed["batch_size"]
    ]
    assert {k: v for k, v in resumed.items() if k != "max_epochs"} == (
        plain.cv_results_["params"][row]
    )
    for k in range(2):
        assert (
            results[f"split{k}_test_score"][2]
            == (plain.cv_results_[f"split{k}_test_score"][row])
        )


class ResumeWhatIsNotPaused(HypergradSearchCV):
    def _run_search(self, evaluate_candidates):
        evaluate_candidates([{"batch_size": 16}])  # trained to the end
        evaluate_candidates([Resume(0)], until=4)


def test_resuming_a_finished_training_is_a_clear_error(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier(max_epochs=4)
    search = ResumeWhatIsNotPaused(net, SPACE, cv=KFold(2), random_state=0)
    with pytest.raises(InvalidInputError, match=r"Resume\(row=0\) names a row"):
        search.fit(X, y)
