"""HalvingHypergradSearchCV: candidates raced over epochs, survivors going on
from where they stopped."""

import math
import pickle
import re
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, randint
from sklearn.base import clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from skhypergrad import (
    HalvingHypergradSearchCV,
    HypergradSearchCV,
    InputNoise,
    InvalidHyperparameterError,
    InvalidParameterError,
    PerSample,
    Real,
    Sampled,
    SampleWeight,
    Tuned,
    UnsupportedEstimatorError,
)
from skhypergrad.model_selection._halving import plan_rungs
from skhypergrad.model_selection._tasks import make_tasks
from skhypergrad.model_selection._training._exchange import LocalExchange
from skhypergrad.model_selection._training._outer_loop import RNG_LOCK, begin
from skhypergrad.model_selection._training._paused import freeze, thaw
from skhypergrad.net import split_estimator

WIDTHS = [2, 4, 8, 16, 24, 32, 48, 64, 96]


def _cast(X, y):
    return X.astype(np.float32), y.astype(np.int64)


def _search(net, space, **kwargs):
    kwargs.setdefault("cv", 3)
    kwargs.setdefault("random_state", 0)
    return HalvingHypergradSearchCV(net, space, **kwargs)


def test_a_survivor_goes_on_from_where_it_stopped(make_classifier, classification_data):
    """The winner's row is the row HypergradSearchCV gives the same candidate:
    the race stopped its training at every rung and continued it, it did not
    start again (a restart from the rung's values would differ)."""
    X, y = classification_data
    net = make_classifier(max_epochs=9)
    space = {
        "module__hidden": [4, 8, 16],
        "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    }

    race = _search(net, space).fit(X, y)
    full = HypergradSearchCV(net, space, cv=3, random_state=0).fit(X, y)

    assert race.n_resources_ == [3, 9]
    assert race.n_candidates_ == [3, 1]
    (last,) = np.flatnonzero(race.cv_results_["iter"] == 1)
    winner = race.cv_results_["params"][last]
    (row,) = [
        i
        for i, p in enumerate(full.cv_results_["params"])
        if p["module__hidden"] == winner["module__hidden"]
    ]
    assert winner["max_epochs"] == 9
    assert {k: v for k, v in winner.items() if k != "max_epochs"} == (
        full.cv_results_["params"][row]
    )
    for key in ("mean_test_score", "split0_test_score", "mean_test_loss"):
        assert race.cv_results_[key][last] == full.cv_results_[key][row]
    assert (
        race.paths_[last]["optimizer__weight_decay"]
        == (full.paths_[row]["optimizer__weight_decay"])
    )


def test_survivors_are_the_best_of_each_iteration(make_classifier, classification_data):
    X, y = classification_data
    space = {
        "module__hidden": WIDTHS,
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    search = _search(make_classifier(max_epochs=9), space).fit(X, y)

    results = search.cv_results_
    assert search.n_resources_ == [1, 3, 9]
    assert search.n_candidates_ == [9, 3, 1]
    assert search.n_remaining_candidates_ == 1
    assert (search.min_resources_, search.max_resources_) == (1, 9)
    assert search.n_iterations_ == search.n_required_iterations_ == 3
    assert list(results["iter"]) == [0] * 9 + [1] * 3 + [2]
    assert list(results["n_resources"]) == [1] * 9 + [3] * 3 + [9]
    for itr in (0, 1):
        rows = np.flatnonzero(results["iter"] == itr)
        nxt = np.flatnonzero(results["iter"] == itr + 1)
        keep = math.ceil(len(rows) / 3)
        widths = {results["params"][i]["module__hidden"]: i for i in rows}
        kept = {results["params"][i]["module__hidden"] for i in nxt}
        assert len(kept) == keep
        worst_kept = min(results["mean_test_score"][widths[w]] for w in kept)
        best_dropped = max(
            results["mean_test_score"][i] for w, i in widths.items() if w not in kept
        )
        assert worst_kept >= best_dropped  # ties broken as scikit-learn does
        assert all(
            results["params"][i]["max_epochs"] == search.n_resources_[itr] for i in rows
        )
    assert search.best_index_ == 12
    assert search.best_params_["max_epochs"] == 9
    assert search.best_score_ == results["mean_test_score"][12]
    assert search.best_estimator_.max_epochs == 9


@pytest.mark.parametrize(
    ("n", "max_epochs", "factor", "min_resources", "aggressive"),
    [
        (9, 30, 3, "exhaust", False),
        (9, 30, 3, "smallest", False),
        (10, 30, 3, 2, False),
        (27, 10, 3, 2, True),
        (27, 10, 3, 2, False),
        (5, 40, 2, "exhaust", False),
        (8, 100, 2.5, 4, False),
        (1, 12, 3, "exhaust", False),
        (8, 5, 2.5, 2, False),
        (10, 7, 1.5, 2, False),
        (243, 1000, 3, "smallest", False),
    ],
)
def test_rungs_are_scikit_learns_but_the_last_trains_to_max_epochs(
    n, max_epochs, factor, min_resources, aggressive
):
    """The same iterations, epochs and candidates as HalvingGridSearchCV with
    max_iter as its resource, except that the last iteration is at max_epochs."""
    X = np.random.RandomState(0).randn(60, 2)
    y = np.arange(60) % 2
    sk = HalvingGridSearchCV(
        SGDClassifier(tol=None),
        {"alpha": list(np.logspace(-5, 0, n))},
        resource="max_iter",
        max_resources=max_epochs,
        factor=factor,
        min_resources=min_resources,
        aggressive_elimination=aggressive,
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X, y)

    rungs = plan_rungs(n, max_epochs, factor, min_resources, aggressive)

    assert rungs.n_resources[:-1] == sk.n_resources_[:-1]
    assert rungs.n_resources[-1] == max_epochs
    assert rungs.min_resources == sk.min_resources_
    assert rungs.n_required_iterations == sk.n_required_iterations_
    assert rungs.n_possible_iterations == sk.n_possible_iterations_


def test_workers_give_the_results_of_one_process(make_classifier, classification_data):
    """Under n_jobs=2 a survivor's training travels between processes as
    bytes; nothing about it changes."""
    X, y = classification_data
    space = {
        "module__hidden": [4, 8, 16],
        "module__dropout": Real(0.0, 0.5),
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }
    net = make_classifier(max_epochs=9)

    local = _search(net, space).fit(X, y)
    remote = _search(net, space, n_jobs=2).fit(X, y)

    assert remote.cv_results_["params"] == local.cv_results_["params"]
    for key in ("mean_test_score", "mean_test_loss", "iter", "n_resources"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))


def test_a_frozen_training_goes_on_as_if_never_frozen(
    make_classifier, classification_data
):
    """Families whose bindings point into the net (decay, dropout, input noise
    hooks, per-row weights) keep pointing at the same objects after a
    freeze and thaw: the training continues bit for bit."""
    X, y = _cast(*classification_data)
    net = make_classifier(
        max_epochs=6,
        callbacks=[("noise", InputNoise()), ("weights", SampleWeight())],
    )
    space = {
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
        "module__dropout": Tuned(Real(0.0, 0.5)),
        "callbacks__noise__scale": Real(1e-3, 1.0, log=True),
        "callbacks__weights__weight": PerSample(Real(0.2, 5.0, log=True)),
    }
    search = HypergradSearchCV(
        net, space, cv=2, random_state=0, hyper_optimizer__warmup=1
    )
    settings, tasks, splits = _plan(search, X, y)

    def run(freeze_at):
        with RNG_LOCK:
            training = begin(tasks[0], X, y, splits, [0, 1], LocalExchange(), settings)
            if freeze_at:
                training.advance(freeze_at)
                training = thaw(freeze(training))
            training.advance(6)
            part = training.finish()
            training.release()
        return part

    straight, frozen = run(None), run(3)

    assert len(straight.path) == len(frozen.path) >= 4
    for a, b in zip(straight.path, frozen.path):
        assert a["values"] == b["values"]
        assert a["val_loss"] == b["val_loss"]
    for k in (0, 1):
        assert (
            straight.snapshots[6].out[k]["loss"] == (frozen.snapshots[6].out[k]["loss"])
        )


def _plan(search, X, y):
    """Settings, tasks and splits of a search, as its fit builds them."""
    from sklearn.model_selection import KFold

    from skhypergrad.model_selection._space import make_candidates, resolve_space

    net, step = split_estimator(search.estimator)
    subspaces = resolve_space(search.param_distributions, net, step, search.estimator)
    scorers, _ = search._get_scorers()
    settings = search._settings(scorers, {})
    tasks = make_tasks(
        search.estimator,
        make_candidates(subspaces, 1, 0),
        subspaces,
        ({}, 0, 1, len(X)),
    )
    splits = list(KFold(2).split(X))
    return settings, tasks, splits


def test_starting_points_and_sampled_entries_are_raced(
    make_classifier, classification_data
):
    X, y = classification_data
    space = {
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
        "module__dropout": Sampled(Real(0.0, 0.5)),
        "module__hidden": randint(4, 32),
    }

    search = _search(
        make_classifier(max_epochs=8), space, n_candidates=3, n_starts=2
    ).fit(X, y)

    assert search.n_candidates_ == [6, 2]
    assert search.n_resources_ == [2, 8]
    first = [
        p
        for p, i in zip(search.cv_results_["params"], search.cv_results_["iter"])
        if i == 0
    ]
    assert len({p["module__dropout"] for p in first}) == 3  # drawn, not tuned
    assert search.best_params_["max_epochs"] == 8


def test_exhaust_draws_as_scikit_learn_with_distributions(
    make_classifier, classification_data
):
    X, y = classification_data
    space = {
        "module__hidden": randint(4, 32),
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    search = _search(make_classifier(max_epochs=6), space, min_resources=2).fit(X, y)

    assert search.n_candidates_[0] == 3  # max_epochs // min_resources
    assert search.n_resources_ == [2, 6]


def test_in_a_pipeline_the_resource_is_prefixed(make_classifier, classification_data):
    X, y = classification_data
    pipe = make_pipeline(StandardScaler(), make_classifier(max_epochs=4))
    space = {
        "neuralnetclassifier__module__hidden": [4, 8],
        "neuralnetclassifier__optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    search = _search(pipe, space, factor=2).fit(X, y)

    assert search.best_params_["neuralnetclassifier__max_epochs"] == 4
    assert search.best_estimator_[-1].max_epochs == 4
    assert list(search.cv_results_["n_resources"]) == [2, 2, 4]


def test_clone_pickle_and_params(make_classifier, classification_data):
    X, y = classification_data
    search = _search(
        make_classifier(), {"module__hidden": [4, 8]}, factor=2, hyper_optimizer__lr=0.1
    )
    params = search.get_params(deep=False)
    assert params["factor"] == 2
    assert params["hyper_optimizer__lr"] == 0.1
    assert "n_iter" not in params
    clone(search).fit(X, y)
    fitted = search.fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))


@pytest.mark.parametrize(
    ("space", "kwargs", "error", "message"),
    [
        (
            {"max_epochs": [2, 4]},
            {},
            InvalidHyperparameterError,
            "cannot search 'max_epochs'",
        ),
        (
            {"module__hidden": [4, 8]},
            {"min_resources": 50},
            InvalidHyperparameterError,
            "min_resources=50",
        ),
        (
            {"module__hidden": randint(4, 9)},
            {},
            InvalidHyperparameterError,
            "cannot both be 'exhaust'",
        ),
        ({"module__hidden": [4, 8]}, {"factor": 1}, InvalidParameterError, "factor"),
        (
            {"module__hidden": [4, 8]},
            {"scoring": ["accuracy", "f1_macro"]},
            InvalidParameterError,
            "scoring",
        ),
        (
            {"module__hidden": [4, 8]},
            {"refit": "accuracy"},
            InvalidParameterError,
            "refit",
        ),
        ({"module__hidden": [4, 8]}, {"n_iter": 5}, InvalidParameterError, "n_iter"),
    ],
)
def test_bad_settings_are_refused(
    make_classifier, classification_data, space, kwargs, error, message
):
    X, y = classification_data
    with pytest.raises(error, match=message):
        _search(make_classifier(), space, **kwargs).fit(X, y)


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_says_what_is_raced_and_the_bar_reaches_its_end(
    make_classifier, classification_data, capsys, verbose
):
    X, y = classification_data
    space = {
        "module__hidden": [4, 8, 16],
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    _search(make_classifier(max_epochs=9), space, verbose=verbose).fit(X, y)

    captured = capsys.readouterr()
    assert "Racing 3 candidates over 3 folds" in captured.out
    assert "ranked after [3, 9] epochs" in captured.out
    done = re.findall(r"HalvingHypergradSearchCV: 100%\S* (\d+)/(\d+)", captured.err)
    assert done
    assert done[-1][0] == done[-1][1]
    # 3 x 3 racing epochs, 6 more for the survivor, its constant training
    # (9, or 18 with the starting values') and the refit.
    assert int(done[-1][0]) in (25, 34)
    if verbose == 2:
        assert "iter 0: 3 candidates, trained to 3 epochs" in captured.out
        assert "iter 1: 1 candidate, trained to 9 epochs" in captured.out


def test_ties_are_broken_as_scikit_learn_breaks_them():
    from sklearn.model_selection._search_successive_halving import _top_k as sk_top_k

    from skhypergrad.model_selection._halving import _top_k

    # Two iterations: only the rows of the one asked for are ranked.
    means = [0.9, 0.1, 0.5, 0.7, 0.7, np.nan, 0.5, 0.7, 0.2]
    results = {
        "iter": np.array([0, 0] + [1] * 7),
        "mean_test_score": np.array(means),
        "params": np.array([{"i": i} for i in range(len(means))]),
    }
    for k in (1, 2, 3, 4):
        expected = [p["i"] for p in sk_top_k(results, k, 1)]
        assert list(_top_k(results, k, 1)) == expected


class _Unpicklable(RuntimeError):
    """An exception that cannot be rebuilt from its args."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


class _FailNarrow(Callback):
    """Fails the training of the narrowest nets at their second epoch."""

    def on_epoch_begin(self, net, **kwargs):
        if net.module_.hidden.out_features < 8 and len(net.history) == 2:
            raise _Unpicklable("narrow", 7)


def test_a_split_that_failed_travels_as_its_traceback(
    make_classifier, classification_data
):
    """A failed split's exception may not unpickle in another process: it
    travels as text, and the rows say the same as under n_jobs=1."""
    X, y = classification_data
    net = make_classifier(max_epochs=6, callbacks=[("fail", _FailNarrow())])
    space = {
        "module__hidden": [4, 8, 16],
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = _search(net, space, factor=1.5).fit(X, y)
        remote = _search(net, space, factor=1.5, n_jobs=2).fit(X, y)

    failed = np.isnan(local.cv_results_["mean_test_score"])
    assert failed.any()
    np.testing.assert_array_equal(
        local.cv_results_["mean_test_score"], remote.cv_results_["mean_test_score"]
    )
    assert local.cv_results_["params"] == remote.cv_results_["params"]
    assert not any(
        p["module__hidden"] == 4
        for p, i in zip(local.cv_results_["params"], local.cv_results_["iter"])
        if i > 0
    )


class _WeightNormMLP(torch.nn.Module):
    def __init__(self, n_in=6, n_out=3, hidden=8):
        super().__init__()
        self.hidden = torch.nn.utils.parametrizations.weight_norm(
            torch.nn.Linear(n_in, hidden)
        )
        self.output = torch.nn.Linear(hidden, n_out)

    def forward(self, X):
        return self.output(torch.relu(self.hidden(X)))


def test_a_training_that_cannot_travel_is_a_clear_error(
    make_classifier, classification_data
):
    X, y = classification_data
    net = make_classifier(max_epochs=4).set_params(module=_WeightNormMLP)
    space = {
        "module__hidden": [4, 8],
        "optimizer__weight_decay": Real(1e-5, 1e-1, log=True),
    }

    _search(net, space, factor=2).fit(X, y)  # in one process: fine
    with pytest.raises(UnsupportedEstimatorError, match="Use n_jobs=1"):
        _search(net, space, factor=2, n_jobs=2).fit(X, y)


def test_a_frozen_training_does_not_carry_the_data(make_classifier):
    """What travels is the nets and the state, not X: it comes back from the
    rows on the other side."""
    from sklearn.datasets import make_classification

    from skhypergrad.model_selection._training._paused import Frozen

    X, y = _cast(
        *make_classification(4000, 64, n_informative=10, n_classes=3, random_state=0)
    )
    net = make_classifier(module__n_in=64, max_epochs=2)
    search = HypergradSearchCV(
        net, {"optimizer__weight_decay": Real(1e-5, 1e-1, log=True)}, cv=3
    )
    settings, tasks, splits = _plan(search, X, y)
    with RNG_LOCK:
        training = begin(tasks[0], X, y, splits, [0, 1], LocalExchange(), settings)
        training.advance(1)
        frozen = Frozen(training)
        training.release()

    assert len(frozen.data) < 0.25 * X.nbytes


def test_a_scorer_of_several_metrics_is_refused(make_classifier, classification_data):
    from sklearn.metrics import accuracy_score

    def two(estimator, X, y):
        accuracy = accuracy_score(y, estimator.predict(X))
        return {"a": accuracy, "b": accuracy}

    X, y = classification_data
    with pytest.raises(
        InvalidParameterError, match="ranks the candidates by one metric"
    ):
        _search(
            make_classifier(), {"module__hidden": [4, 8]}, scoring=two, factor=2
        ).fit(X, y)


def test_more_candidates_than_the_grid_runs_the_grid(
    make_classifier, classification_data
):
    X, y = classification_data
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ParameterSampler warning about n_iter
        search = _search(
            make_classifier(max_epochs=4),
            {"module__hidden": [4, 8]},
            n_candidates=5,
            factor=2,
        ).fit(X, y)
    assert search.n_candidates_ == [2, 1]
