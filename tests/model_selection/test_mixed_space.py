"""The whole grid in one search: outer entries searched as GridSearchCV /
RandomizedSearchCV would, continuous entries tuned inside each candidate."""

import re
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, randint, uniform
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

import skhypergrad
from skhypergrad import (
    HypergradSearchCV,
    PerLayer,
    PerParameter,
    Sampled,
    Tuned,
    bilevel,
)
from skhypergrad.exceptions import InvalidInputError, SkHypergradError

DECAY = loguniform(1e-5, 1e-1)


def _search(estimator, space, **kwargs):
    params = {"cv": 2, "random_state": 0, "error_score": "raise"}
    params.update(kwargs)
    return HypergradSearchCV(estimator, space, **params)


class EpochCounter(Callback):
    """Counts epochs over every copy of the net (class attribute)."""

    calls = 0

    def on_epoch_end(self, net, **kwargs):
        type(self).calls += 1


def test_skorch_readme_grid_runs_as_one_search(classification_data, make_classifier):
    X, y = classification_data
    space = {
        "lr": [0.01, 0.02],
        "max_epochs": [3, 6],
        "module__hidden": [8, 16],
        "optimizer__weight_decay": DECAY,
        "module__dropout": Tuned(uniform(0.0, 0.5)),
    }
    search = _search(make_classifier(), space).fit(X, y)
    grid = GridSearchCV(make_classifier(), {"lr": [0.01], "max_epochs": [3]}, cv=2).fit(
        X.astype(np.float32), y.astype(np.int64)
    )

    results = search.cv_results_
    assert len(results["params"]) == 8  # 2 lr x 2 max_epochs x 2 hidden
    assert set(grid.cv_results_) - {"mean_train_score", "std_train_score"} <= set(
        results
    )
    assert sorted(
        {(p["lr"], p["max_epochs"], p["module__hidden"]) for p in results["params"]}
    ) == sorted((lr, e, h) for lr in (0.01, 0.02) for e in (3, 6) for h in (8, 16))
    assert set(search.best_params_) == set(space)
    assert 1e-5 <= search.best_params_["optimizer__weight_decay"] <= 1e-1
    net_params = search.best_estimator_.get_params()
    for name, value in search.best_params_.items():
        assert net_params[name] == value
    assert np.all(np.isfinite(results["mean_test_score"]))


def test_distributions_draw_n_iter_candidates(classification_data, make_classifier):
    X, y = classification_data
    space = {"module__hidden": randint(4, 17), "optimizer__weight_decay": DECAY}

    first = _search(make_classifier(max_epochs=3), space, n_iter=3).fit(X, y)
    again = _search(make_classifier(max_epochs=3), space, n_iter=3).fit(X, y)

    hidden = [p["module__hidden"] for p in first.cv_results_["params"]]
    assert len(hidden) == 3
    assert all(4 <= h < 17 for h in hidden)
    assert hidden == [p["module__hidden"] for p in again.cv_results_["params"]]
    assert first.best_params_ == again.best_params_


def test_list_for_tunable_entry_is_a_grid_with_hint(
    classification_data, make_classifier
):
    X, y = classification_data
    values = [1e-4, 1e-3, 1e-2]

    with pytest.warns(UserWarning, match="searched as a grid.*loguniform"):
        search = _search(
            make_classifier(max_epochs=3), {"optimizer__weight_decay": values}
        ).fit(X, y)

    assert [p["optimizer__weight_decay"] for p in search.cv_results_["params"]] == (
        values
    )
    assert list(search.cv_results_["n_hypersteps"]) == [0, 0, 0]
    assert search.best_params_["optimizer__weight_decay"] in values


def test_sampled_range_is_drawn_not_tuned(classification_data, make_classifier):
    X, y = classification_data
    space = {"module__dropout": Sampled(uniform(0.0, 0.5))}

    search = _search(make_classifier(), space, n_iter=2).fit(X, y)

    rates = [p["module__dropout"] for p in search.cv_results_["params"]]
    assert len(rates) == 2
    assert rates[0] != rates[1]
    assert list(search.cv_results_["n_hypersteps"]) == [0, 0]


def test_list_of_dicts_is_searched_per_dict(classification_data, make_classifier):
    X, y = classification_data
    space = [
        {"optimizer__weight_decay": DECAY},
        {"module__hidden": [4, 8], "module__dropout": Tuned(uniform(0.0, 0.5))},
    ]

    search = _search(make_classifier(), space).fit(X, y)

    params = search.cv_results_["params"]
    assert [sorted(p) for p in params] == [
        ["optimizer__weight_decay"],
        ["module__dropout", "module__hidden"],
        ["module__dropout", "module__hidden"],
    ]
    assert all(n > 0 for n in search.cv_results_["n_hypersteps"])


def test_other_pipeline_steps_are_searched_as_a_grid(
    classification_data, make_classifier
):
    X, y = classification_data
    pipe = Pipeline([("scale", StandardScaler()), ("net", make_classifier())])
    space = {"scale__with_mean": [True, False], "net__optimizer__weight_decay": DECAY}

    search = _search(pipe, space).fit(X, y)

    assert [p["scale__with_mean"] for p in search.cv_results_["params"]] == [
        True,
        False,
    ]
    assert (
        search.best_estimator_.named_steps["scale"].with_mean
        == (search.best_params_["scale__with_mean"])
    )


# ---------------------------------------------------------------- max_epochs
def test_max_epochs_list_trains_each_split_once(classification_data, make_classifier):
    X, y = classification_data
    EpochCounter.calls = 0
    net = make_classifier(callbacks=[("count", EpochCounter())])

    search = _search(net, {"max_epochs": [2, 4, 6]}, refit=False).fit(X, y)

    assert EpochCounter.calls == 2 * 6  # two splits, to the largest value once
    assert [p["max_epochs"] for p in search.cv_results_["params"]] == [2, 4, 6]


def test_max_epochs_rows_equal_retraining_per_value(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier()
    keys = ["split0_test_score", "split1_test_score", "split0_test_loss"]

    together = _search(net, {"max_epochs": [2, 5]}, refit=False).fit(X, y)
    for row, epochs in enumerate([2, 5]):
        alone = _search(net, {"max_epochs": [epochs]}, refit=False).fit(X, y)
        for key in keys:
            assert together.cv_results_[key][row] == pytest.approx(
                alone.cv_results_[key][0], rel=1e-6
            )


def test_max_epochs_refit_trains_chosen_number(classification_data, make_classifier):
    X, y = classification_data
    space = {"max_epochs": [2, 5], "optimizer__weight_decay": DECAY}

    search = _search(make_classifier(), space).fit(X, y)

    chosen = search.best_params_["max_epochs"]
    assert len(search.best_estimator_.history) == chosen
    rows = search.cv_results_["params"]
    assert [row["max_epochs"] for row in rows] == [2, 5]
    # the short row only counts the hyper-steps taken before its last epoch
    assert search.cv_results_["n_hypersteps"][0] < search.cv_results_["n_hypersteps"][1]


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "space",
    [
        {"optimizer__weight_decay": DECAY},
        {"optimizer__weight_decay": PerLayer(DECAY)},
        {"optimizer__weight_decay": PerParameter(DECAY)},
        {"module__dropout": Tuned(uniform(0.0, 0.5))},
    ],
    ids=["scalar", "PerLayer", "PerParameter", "dropout"],
)
def test_best_params_round_trip_trains_the_same_model(
    classification_data, make_classifier, space
):
    X, y = classification_data
    search = _search(make_classifier(), space).fit(X, y)

    net = clone(search.estimator).set_params(**search.best_params_)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(search._refit_seed)
        net.fit(X.astype(np.float32), y.astype(np.int64))

    Xf = X.astype(np.float32)
    np.testing.assert_array_equal(net.predict_proba(Xf), search.predict_proba(X))


# ------------------------------------------------------------- data at the edge
def test_string_labels_are_encoded_at_the_boundary(
    classification_data, make_classifier
):
    X, y = classification_data
    names = np.array(["cat", "dog", "emu"])[y]

    search = _search(make_classifier(max_epochs=3), {"optimizer__weight_decay": DECAY})
    search.fit(X, names)

    np.testing.assert_array_equal(search.classes_, ["cat", "dog", "emu"])
    assert set(search.predict(X)) <= {"cat", "dog", "emu"}
    accuracy = np.mean(search.predict(X) == names)
    assert search.score(X, names) == pytest.approx(accuracy)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_integer_labels_not_starting_at_zero_are_encoded(
    classification_data, make_classifier
):
    X, y = classification_data
    search = _search(make_classifier(max_epochs=2), {"optimizer__weight_decay": DECAY})

    search.fit(X, y + 10)

    np.testing.assert_array_equal(search.classes_, [10, 11, 12])
    assert set(search.predict(X)) <= {10, 11, 12}


def test_multi_output_width_mismatch_is_refused(regression_data, make_regressor):
    X, y = regression_data
    Y = np.column_stack([y, y, y])

    with pytest.raises(InvalidInputError, match=r"3 output column.*returns 1"):
        _search(make_regressor(), {"optimizer__weight_decay": DECAY}).fit(X, Y)


@pytest.mark.parametrize("pipeline", [False, True])
def test_net_sample_weight_is_refused_before_training(
    classification_data, make_classifier, pipeline
):
    X, y = classification_data
    estimator = make_classifier()
    name = "sample_weight"
    if pipeline:
        estimator = Pipeline([("scale", StandardScaler()), ("net", estimator)])
        name = "net__sample_weight"
    EpochCounter.calls = 0
    search = _search(
        estimator,
        {"optimizer__weight_decay": DECAY}
        if not pipeline
        else {"net__optimizer__weight_decay": DECAY},
    )

    with pytest.raises(InvalidInputError, match="criterion__weight"):
        search.fit(X, y, **{name: np.ones(len(X))})
    assert EpochCounter.calls == 0


def test_every_exception_is_importable_from_the_package():
    for name in skhypergrad.exceptions.__all__:
        error = getattr(skhypergrad, name)
        if issubclass(error, Exception) and not issubclass(error, Warning):
            assert issubclass(error, SkHypergradError)


def test_out_of_memory_in_a_hyper_step_is_not_skipped(
    monkeypatch, classification_data, make_classifier
):
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

    def out_of_memory(*args, **kwargs):
        raise oom("CUDA out of memory (injected)")

    monkeypatch.setattr(bilevel, "hypergradient", out_of_memory)
    search = _search(make_classifier(), {"optimizer__weight_decay": DECAY})

    with pytest.raises(oom, match="injected"):
        search.fit(*classification_data)


# ------------------------------------------------------------------ parallel
def test_n_jobs_runs_candidates_in_parallel_with_same_results(
    classification_data, make_classifier
):
    X, y = classification_data
    space = {"module__hidden": [4, 8], "optimizer__weight_decay": DECAY}

    serial = _search(make_classifier(max_epochs=3), space, n_jobs=1).fit(X, y)
    parallel = _search(make_classifier(max_epochs=3), space, n_jobs=2).fit(X, y)

    assert serial.cv_results_["params"] == parallel.cv_results_["params"]
    np.testing.assert_array_equal(
        serial.cv_results_["mean_test_score"], parallel.cv_results_["mean_test_score"]
    )


# ----------------------------------------------------------- metadata routing
def test_metadata_routing_sends_sample_weight_to_the_scorer(
    classification_data, make_classifier
):
    import sklearn
    from sklearn.metrics import accuracy_score, make_scorer

    X, y = classification_data
    space = {"optimizer__weight_decay": DECAY}
    scores = {}
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(accuracy_score).set_score_request(sample_weight=True)
        for name, weights in [
            ("ones", np.ones(len(y))),
            ("skewed", 1.0 + 9 * (y == 0)),
        ]:
            search = _search(make_classifier(max_epochs=3), space, scoring=scorer)
            search.fit(X, y, sample_weight=weights)
            scores[name] = search.cv_results_["split0_test_score"][0]
    plain = _search(make_classifier(max_epochs=3), space, scoring="accuracy").fit(X, y)

    # Same seed, same networks: only the scorer's weights differ.
    assert scores["ones"] == pytest.approx(plain.cv_results_["split0_test_score"][0])
    assert scores["skewed"] != pytest.approx(scores["ones"])


def test_tail_average_is_the_mean_of_the_last_accepted_steps():
    from skhypergrad.hypergrad import TailAverage

    tail = TailAverage(n_planned=8, fraction=0.25)  # averages steps 6 and 7
    steps = [torch.full((3,), float(i), dtype=torch.float64) for i in range(8)]
    for index, value in enumerate(steps):
        tail.add(index, None if index == 7 else [value])  # step 7 was skipped

    (mean,) = tail.result([steps[-1]])
    torch.testing.assert_close(mean, torch.full((3,), 6.0, dtype=torch.float64))
    untouched = TailAverage(n_planned=8, fraction=0.25)
    (current,) = untouched.result([steps[3]])
    torch.testing.assert_close(current, steps[3])


def test_tail_average_over_two_steps():
    from skhypergrad.hypergrad import TailAverage

    tail = TailAverage(n_planned=4, fraction=0.5)  # steps 2 and 3
    for index in range(4):
        tail.add(index, [torch.tensor([float(index), 10.0 * index])])

    torch.testing.assert_close(tail.result(None)[0], torch.tensor([2.5, 25.0]))


def test_gauss_newton_solver_runs_the_search(classification_data, make_classifier):
    from skhypergrad.hypergrad import CG

    X, y = classification_data
    solver = CG(max_iter=15, damping=1e-3, curvature="gauss-newton")
    space = {
        "optimizer__weight_decay": DECAY,
        "module__dropout": Tuned(uniform(0.0, 0.5)),
    }

    search = _search(make_classifier(), space, solver=solver).fit(X, y)

    assert not any(search.path_["skipped"])
    # PSD curvature: CG does not stop at negative curvature after 1-2 steps.
    assert min(search.path_["solver_iter"]) > 5
    assert len(set(search.path_["module__dropout"])) > 1


@pytest.mark.parametrize("warm_start", [False, True])
def test_warm_start_solves_from_the_split_previous_solution(
    classification_data, make_classifier, monkeypatch, warm_start
):
    from skhypergrad.hypergrad import CG
    from skhypergrad.model_selection._training import _hyper_step

    calls = []
    original = _hyper_step.net_hypergradient

    def spy(net, *args, x0=None, **kwargs):
        grad, info = original(net, *args, x0=x0, **kwargs)
        calls.append((net, x0, info.ihvp))
        return grad, info

    monkeypatch.setattr(_hyper_step, "net_hypergradient", spy)
    solver = CG(max_iter=3, curvature="gauss-newton", warm_start=warm_start)
    X, y = classification_data

    _search(make_classifier(), {"optimizer__weight_decay": DECAY}, solver=solver).fit(
        X, y
    )

    nets = list(dict.fromkeys(net for net, _, _ in calls))
    assert len(nets) == 2  # two splits, several hyper-steps each
    for net in nets:
        mine = [(x0, ihvp) for n, x0, ihvp in calls if n is net]
        assert len(mine) > 1
        assert mine[0][0] is None
        for (_, previous), (x0, _) in zip(mine, mine[1:]):
            if warm_start:  # the split's own previous solution
                for a, b in zip(x0, previous):
                    torch.testing.assert_close(a, b)
            else:
                assert x0 is None


# ------------------------------------------------------------------ progress
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_verbose_shows_summary_and_a_bar_to_the_end_of_the_refit(
    classification_data, make_classifier, capsys, n_jobs
):
    X, y = classification_data
    space = {"module__hidden": [4, 8], "optimizer__weight_decay": DECAY}

    _search(make_classifier(max_epochs=3), space, verbose=1, n_jobs=n_jobs).fit(X, y)

    captured = capsys.readouterr()
    # the summary on stdout, as GridSearchCV prints it; the bar on stderr
    assert "Fitting 2 folds for each of 2 candidates" in captured.out
    assert "totalling 4 trainings" in captured.out
    err = captured.err
    assert "HypergradSearchCV: 100%" in err
    # 2 candidates x 3 epochs of tuning, 2 x 2 constant trainings of 3 epochs
    # (each candidate's tuned and starting values), and the refit.
    assert "19/19" in err


def test_verbose_zero_prints_nothing(classification_data, make_classifier, capsys):
    X, y = classification_data

    _search(make_classifier(max_epochs=3), {"optimizer__weight_decay": DECAY}).fit(X, y)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_verbose_two_prints_a_row_per_hyper_step_and_no_epoch_tables(
    classification_data, make_classifier, capsys, n_jobs
):
    X, y = classification_data
    net = make_classifier(max_epochs=4)

    search = _search(net, {"optimizer__weight_decay": DECAY}, verbose=2, n_jobs=n_jobs)
    search.fit(X, y)

    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if line.startswith("hyper-step after")]
    assert len(steps) == len(search.path_["epoch"])
    assert "weight_decay=" in steps[0]
    assert "train_loss" not in out  # the search's own lines only


def test_verbose_three_adds_the_split_nets_labelled_tables(
    classification_data, make_classifier, capsys
):
    X, y = classification_data
    net = make_classifier(max_epochs=4)

    _search(net, {"optimizer__weight_decay": DECAY}, verbose=3).fit(X, y)

    out = capsys.readouterr().out
    assert "[split 0]   epoch    train_loss" in out
    assert "[split 1]" in out


def test_the_progress_bar_knows_its_total_from_the_start(
    classification_data, make_classifier, capsys
):
    # 3 epochs of tuning, 2 constant trainings (tuned and starting values) of
    # 3 epochs, and the refit: the total is 10 from the first frame on.
    X, y = classification_data
    _search(
        make_classifier(max_epochs=3), {"optimizer__weight_decay": DECAY}, verbose=1
    ).fit(X, y)

    err = capsys.readouterr().err
    totals = set(re.findall(r"\d+/(\d+) \[", err))
    assert totals == {"10"}


def test_rank_test_loss_ranks_ties_as_grid_search_does():
    from skhypergrad.model_selection._results import CandidateRow, more_results

    def row(loss):
        out = [{"loss": loss}, {"loss": loss}]
        return CandidateRow(params={}, out=out, path=[], values={}, entries=[])

    more = more_results([row(0.5), row(0.2), row(0.5), row(float("nan"))])

    assert list(more["rank_test_loss"]) == [2, 1, 2, 4]


# ------------------------------------ dropout: tuned as given, Sampled draws
def test_a_dropout_range_is_tuned_by_hypergradients_as_given(
    classification_data, make_classifier
):
    X, y = classification_data
    space = {"optimizer__weight_decay": DECAY, "module__dropout": uniform(0.0, 0.5)}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: it is the default path
        search = _search(make_classifier(max_epochs=6), space, n_iter=3).fit(X, y)

    # One candidate (nothing drawn), both values followed their hypergradients.
    assert len(search.cv_results_["params"]) == 1
    rates = search.path_["module__dropout"]
    assert len(rates) > 0
    assert len(set(rates)) > 1
    assert all(0.0 <= r <= 0.5 for r in rates)
    tuned = _search(
        make_classifier(max_epochs=6),
        {"optimizer__weight_decay": DECAY, "module__dropout": Tuned(uniform(0.0, 0.5))},
    ).fit(X, y)
    assert tuned.path_ == search.path_  # Tuned(...) changes nothing now


def test_a_sampled_dropout_range_is_drawn_by_the_outer_search(
    classification_data, make_classifier
):
    X, y = classification_data
    space = {
        "optimizer__weight_decay": DECAY,
        "module__dropout": Sampled(uniform(0.0, 0.5)),
    }
    search = _search(make_classifier(max_epochs=3), space, n_iter=3).fit(X, y)

    rates = [p["module__dropout"] for p in search.cv_results_["params"]]
    assert len(rates) == 3  # n_iter draws, the decay tuned within each
    assert len(set(rates)) == 3
    assert "module__dropout" not in search.path_


def test_tuned_dropout_follows_its_hypergradient(classification_data, make_classifier):
    X, y = classification_data
    space = {"module__dropout": Tuned(uniform(0.0, 0.5))}

    search = _search(make_classifier(max_epochs=4), space).fit(X, y)

    assert len(search.cv_results_["params"]) == 1
    assert len(search.path_["module__dropout"]) > 0


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"optimizer__eps": Tuned(uniform(1e-9, 1e-7))}, "family can tune"),
        ({"module__dropout": Tuned([0.1, 0.2])}, "a continuous range"),
        ({"module__dropout": uniform(0.0, 2.0)}, r"must lie in \[0, 1\)"),
    ],
)
def test_tuned_and_sampled_dropout_ranges_are_checked(
    classification_data, make_classifier, space, match
):
    with pytest.raises(SkHypergradError, match=match):
        _search(make_classifier(), space).fit(*classification_data)
