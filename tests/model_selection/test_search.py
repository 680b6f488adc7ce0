"""HypergradSearchCV against scikit-learn's search API, on tiny skorch networks."""

import pickle
import re

import joblib
import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    LeaveOneGroupOut,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, EpochScoring

from skhypergrad import (
    HypergradSearchCV,
    PerLayer,
    PerParameter,
    Real,
    Tuned,
    WeightDecayPenalty,
)
from skhypergrad.exceptions import (
    InvalidHyperparameterError,
    InvalidInputError,
    UnsupportedEstimatorError,
)
from skhypergrad.hypergrad import OuterOptimizer
from skhypergrad.utils._validation import InvalidParameterError

from .conftest import MAX_EPOCHS, N_LAYERS, N_WEIGHTS

WEIGHT_DECAY = Real(1e-5, 1e-1, log=True)
DROPOUT = Tuned(Real(0.0, 0.5))
SPACE = {"optimizer__weight_decay": WEIGHT_DECAY, "module__dropout": DROPOUT}


def _search(estimator, space=None, **kwargs):
    """A seeded search over ``SPACE`` on 2 splits, raising any training error."""
    params = {"cv": 2, "random_state": 0, "error_score": "raise"}
    params.update(kwargs)
    return HypergradSearchCV(estimator, SPACE if space is None else space, **params)


def _as_float32(X, y):
    """What skorch needs when it is fitted without the search's casting."""
    return X.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def fitted_search(classification_data, make_classifier):
    """Two starting points over weight decay and dropout, train scores included."""
    X, y = classification_data
    search = _search(make_classifier(), cv=3, n_starts=2, return_train_score=True)
    return search.fit(X, y)


# ---------------------------------------------------------------- fitted state
def test_cv_results_has_grid_search_cv_keys(fitted_search, classification_data):
    pd = pytest.importorskip("pandas")
    X, y = classification_data
    grid = GridSearchCV(
        clone(fitted_search.estimator),
        {"optimizer__weight_decay": [1e-3], "module__dropout": [0.2]},
        cv=3,
        return_train_score=True,
        refit=False,
    ).fit(*_as_float32(X, y))
    results = fitted_search.cv_results_

    assert set(grid.cv_results_) <= set(results)
    for k in range(3):
        assert f"split{k}_test_score" in results
        assert f"split{k}_train_score" in results
    frame = pd.DataFrame(results)
    assert len(frame) == 2
    assert frame["rank_test_score"].min() == 1
    assert np.isfinite(frame["mean_test_score"]).all()


def test_cv_results_has_no_train_keys_by_default(classification_data, make_classifier):
    search = _search(make_classifier(max_epochs=2)).fit(*classification_data)

    assert not any("train" in key for key in search.cv_results_)
    assert "split1_test_score" in search.cv_results_


def test_best_params_are_python_floats_inside_bounds(fitted_search):
    best = fitted_search.best_params_

    assert set(best) == set(SPACE)
    for name, value in best.items():
        assert type(value) is float
        assert not np.isnan(value)
        real = getattr(SPACE[name], "distribution", SPACE[name])  # Tuned(...)
        assert real.low <= value <= real.high
    assert fitted_search.cv_results_["params"][fitted_search.best_index_] == best


def test_best_params_accepted_by_cloned_estimator(fitted_search, classification_data):
    net = clone(fitted_search.estimator).set_params(**fitted_search.best_params_)

    for name, value in fitted_search.best_params_.items():
        assert net.get_params()[name] == value
    net.fit(*_as_float32(*classification_data))


def test_search_fit_sets_fitted_attributes(fitted_search, classification_data):
    X, y = classification_data
    search = fitted_search

    assert search.best_estimator_ is not None
    assert 0.0 <= search.best_score_ <= 1.0
    assert (
        search.best_score_ == search.cv_results_["mean_test_score"][search.best_index_]
    )
    assert search.best_index_ in (0, 1)
    assert callable(search.scorer_)
    assert search.n_splits_ == 3
    assert search.refit_time_ > 0
    assert search.multimetric_ is False
    np.testing.assert_array_equal(search.classes_, np.unique(y))
    assert search.n_features_in_ == X.shape[1]
    n_steps = len(search.path_["epoch"])
    assert n_steps > 0
    for key in ("val_loss", "hypergrad_norm", *SPACE):
        assert isinstance(search.path_[key], list)
        assert len(search.path_[key]) == n_steps
    assert np.isfinite(search.path_["val_loss"]).all()
    assert len(search.paths_) == 2


def test_search_predict_methods_use_best_estimator(fitted_search, classification_data):
    X, y = classification_data

    y_pred = fitted_search.predict(X)
    proba = fitted_search.predict_proba(X)

    assert y_pred.shape == y.shape
    assert set(np.unique(y_pred)) <= set(np.unique(y))
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(y_pred, proba.argmax(axis=1))
    assert fitted_search.score(X, y) == pytest.approx(accuracy_score(y, y_pred))


# ------------------------------------------------------------------- pipelines
def test_search_tunes_net_step_of_pipeline(classification_data, make_classifier):
    pipe = Pipeline([("scale", StandardScaler()), ("net", make_classifier())])
    space = {
        "net__optimizer__weight_decay": WEIGHT_DECAY,
        "net__module__dropout": DROPOUT,
    }

    search = _search(pipe, space).fit(*classification_data)

    best = search.best_params_
    assert set(best) == set(space)
    net = search.best_estimator_.named_steps["net"]
    assert net.module_.dropout.p == pytest.approx(best["net__module__dropout"])
    weight_decay = net.optimizer_.param_groups[0]["weight_decay"]
    assert weight_decay == pytest.approx(best["net__optimizer__weight_decay"])
    assert search.predict(classification_data[0]).shape == (120,)


def test_search_works_as_pipeline_step(classification_data, make_classifier):
    X, y = classification_data
    pipe = Pipeline(
        [("scale", StandardScaler()), ("search", _search(make_classifier()))]
    )

    pipe.fit(X, y)

    assert pipe.predict(X).shape == y.shape
    np.testing.assert_allclose(pipe.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)
    assert 0.0 <= pipe.score(X, y) <= 1.0


def test_search_nested_cross_validation(classification_data, make_classifier):
    X, y = classification_data
    search = _search(make_classifier(max_epochs=3))

    scores = cross_val_score(search, X, y, cv=2, error_score="raise")
    results = cross_validate(
        search,
        X,
        y,
        cv=2,
        scoring=["accuracy", "neg_log_loss"],
        return_estimator=True,
        error_score="raise",
    )

    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.isfinite(results["test_accuracy"]).all()
    assert np.all(results["test_neg_log_loss"] <= 0)
    for fitted in results["estimator"]:
        assert set(fitted.best_params_) == set(SPACE)


# ------------------------------------------------------- clone, params, pickle
def test_clone_keeps_constructor_arguments(make_classifier):
    search = _search(make_classifier(), n_starts=2, hyper_optimizer__lr=0.1, cv=3)

    cloned = clone(search)

    params = search.get_params(deep=False)
    cloned_params = cloned.get_params(deep=False)
    assert cloned_params.keys() == params.keys()
    assert cloned.estimator is not search.estimator
    assert cloned.estimator.get_params(deep=False) == search.estimator.get_params(
        deep=False
    )
    for name in set(params) - {"estimator"}:
        assert cloned_params[name] == params[name], name


def test_get_params_set_params_round_trip(make_classifier):
    search = _search(make_classifier())

    rebuilt = HypergradSearchCV(**search.get_params(deep=False))
    search.set_params(
        cv=3, solver="exact", estimator__lr=0.05, estimator__module__dropout=0.1
    )

    assert rebuilt.get_params(deep=False) == {
        **search.get_params(deep=False),
        "cv": 2,
        "solver": "gauss-newton",
    }
    params = search.get_params()
    assert params["cv"] == 3
    assert params["solver"] == "exact"
    assert params["estimator__lr"] == 0.05
    assert search.estimator.module__dropout == 0.1


@pytest.mark.parametrize("backend", ["pickle", "joblib"])
def test_fitted_search_pickles_with_identical_predictions(
    fitted_search, classification_data, backend, tmp_path
):
    X, _ = classification_data
    if backend == "pickle":
        restored = pickle.loads(pickle.dumps(fitted_search))
    else:
        joblib.dump(fitted_search, tmp_path / "search.joblib")
        restored = joblib.load(tmp_path / "search.joblib")

    np.testing.assert_array_equal(restored.predict(X), fitted_search.predict(X))
    np.testing.assert_array_equal(
        restored.predict_proba(X), fitted_search.predict_proba(X)
    )
    assert restored.best_params_ == fitted_search.best_params_


# ------------------------------------------------------------- reproducibility
def test_same_random_state_repeats_search(classification_data, make_classifier):
    X, y = classification_data

    first = _search(make_classifier(), random_state=3).fit(X, y)
    second = _search(make_classifier(), random_state=3).fit(X, y)

    assert first.best_params_ == second.best_params_
    np.testing.assert_equal(first.path_, second.path_)
    # The path must have moved for the comparison to mean anything.
    assert not all(first.path_["skipped"])
    assert len(set(first.path_["optimizer__weight_decay"])) > 1
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


_STEP = torch.optim.lr_scheduler.StepLR


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ({"hyper_optimizer__schedule": None}, [0.4] * 4),
        # the default: half cosine from lr to lr / 10 over the 4 planned steps
        ({}, [0.4, 0.4 * (0.1 + 0.9 * 0.75), 0.4 * (0.1 + 0.9 * 0.25), 0.04]),
        (
            {
                "hyper_optimizer__schedule": _STEP,
                "hyper_optimizer__schedule_kwargs": {"step_size": 2, "gamma": 0.5},
            },
            [0.4, 0.4, 0.2, 0.2],
        ),
    ],
)
def test_outer_schedule_sets_each_step_rate(
    classification_data, make_classifier, schedule, expected
):
    X, y = classification_data
    # 6 epochs, warm-up 2: hyper-steps after epochs 2, 3, 4, 5 (4 planned).
    search = _search(
        make_classifier(),
        hyper_optimizer__lr=0.4,
        hyper_optimizer__warmup=2,
        **schedule,
    ).fit(X, y)

    assert search.path_["epoch"] == [2, 3, 4, 5]
    np.testing.assert_allclose(search.path_["hyper_lr"], expected, rtol=1e-12)


def test_outer_optimizer_instance_gives_the_same_path_as_its_arguments(
    classification_data, make_classifier
):
    X, y = classification_data
    by_arguments = _search(
        make_classifier(), hyper_optimizer__lr=0.3, hyper_optimizer__warmup=2
    ).fit(X, y)
    outer = OuterOptimizer(lr=0.3, warmup=2)
    by_instance = _search(make_classifier(), hyper_optimizer=outer).fit(X, y)

    assert by_instance.path_ == by_arguments.path_
    # Nested set_params reaches the instance, as for a Pipeline step.
    by_instance.set_params(hyper_optimizer__interval=2)
    assert outer.interval == 2
    assert by_instance.get_params()["hyper_optimizer__interval"] == 2


@pytest.mark.parametrize("betas", [(0.9,), (1.0, 0.9), (0.5, -0.1), ("a", 0.9)])
def test_hyper_optimizer_rejects_bad_arguments(
    classification_data, make_classifier, betas
):
    X, y = classification_data
    search = _search(make_classifier(), hyper_optimizer__betas=betas)

    with pytest.raises(InvalidParameterError, match=r"hyper_optimizer__betas"):
        search.fit(X, y)


def test_hyper_optimizer_arguments_change_the_path(
    classification_data, make_classifier
):
    X, y = classification_data
    name = "optimizer__weight_decay"
    heavy = _search(make_classifier(), hyper_optimizer__betas=(0.9, 0.999)).fit(X, y)
    light = _search(make_classifier()).fit(X, y)  # default betas (0.0, 0.9)

    # Same first step (Adam's first step is lr * sign), then momentum differs.
    assert heavy.path_[name][0] == pytest.approx(light.path_[name][0])
    assert heavy.path_[name][1:] != pytest.approx(light.path_[name][1:])
    assert heavy.get_params()["hyper_optimizer__betas"] == (0.9, 0.999)
    assert clone(heavy).hyper_optimizer__betas == (0.9, 0.999)


def test_hyper_optimizer_can_be_sgd(classification_data, make_classifier):
    X, y = classification_data
    search = _search(
        make_classifier(),
        hyper_optimizer=torch.optim.SGD,
        hyper_optimizer__lr=0.1,
        hyper_optimizer__momentum=0.5,
    ).fit(X, y)

    assert not any(search.path_["skipped"])
    assert len(set(search.path_["optimizer__weight_decay"])) > 1


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (
            {"hyper_optimizer__schedule": "linear"},
            r"schedule must be a torch.optim.lr_scheduler class.*got 'linear'",
        ),
        ({"hyper_optimizer__warmup": -2}, r"warmup must be 'auto' or an integer"),
        ({"hyper_optimizer__lr": 0}, r"lr must be a positive number, got 0"),
        (
            {"hyper_optimizer": OuterOptimizer(), "hyper_optimizer__lr": 0.1},
            r"holds its own options",
        ),
    ],
)
def test_outer_options_are_refused_with_the_argument_named(
    classification_data, make_classifier, arguments, match
):
    X, y = classification_data
    with pytest.raises(InvalidParameterError, match=match):
        _search(make_classifier(), **arguments).fit(X, y)


# Starting two worker processes that import torch takes ~15 s on 2 cores.
@pytest.mark.slow
def test_n_jobs_gives_same_best_params(classification_data, make_classifier):
    X, y = classification_data
    net = make_classifier(max_epochs=4)

    serial = _search(net, n_starts=2, n_jobs=1).fit(X, y)
    with joblib.parallel_config(backend="loky"):
        parallel = _search(net, n_starts=2, n_jobs=2).fit(X, y)

    assert parallel.cv_results_["params"] == serial.cv_results_["params"]
    assert parallel.best_index_ == serial.best_index_
    assert parallel.best_params_ == serial.best_params_


def test_threading_backend_with_several_jobs_is_refused(
    classification_data, make_classifier
):
    X, y = classification_data
    search = _search(make_classifier(max_epochs=2), n_jobs=2)
    with (
        joblib.parallel_config(backend="threading"),
        pytest.raises(ValueError, match="thread-based backend.*one candidate at a"),
    ):
        search.fit(X, y)
    # One job in threads runs nothing in parallel, and is fine.
    with joblib.parallel_config(backend="threading"):
        _search(make_classifier(max_epochs=2), n_jobs=1).fit(X, y)


class _TwoRounds(HypergradSearchCV):
    """A subclass in scikit-learn's style: its own rounds of candidates."""

    def _run_search(self, evaluate_candidates):
        evaluate_candidates([{"lr": 0.01}])
        evaluate_candidates([{"lr": 0.05}])


def test_run_search_has_scikit_learns_meaning(classification_data, make_classifier):
    X, y = classification_data
    space = {"lr": [0.01, 0.02, 0.05], "optimizer__weight_decay": WEIGHT_DECAY}

    search = _TwoRounds(make_classifier(max_epochs=3), space, cv=2, random_state=0)
    search.fit(X, y)

    assert [p["lr"] for p in search.cv_results_["params"]] == [0.01, 0.05]
    assert all("optimizer__weight_decay" in p for p in search.cv_results_["params"])


def test_run_search_refuses_a_candidate_of_no_subspace(
    classification_data, make_classifier
):
    class Wrong(HypergradSearchCV):
        def _run_search(self, evaluate_candidates):
            evaluate_candidates([{"batch_size": 16}])

    X, y = classification_data
    search = Wrong(
        make_classifier(), {"lr": [0.01], "optimizer__weight_decay": WEIGHT_DECAY}
    )
    with pytest.raises(ValueError, match=r"names the outer entries \['batch_size'\]"):
        search.fit(X, y)


# ---------------------------------------------------------- vector weight decay
@pytest.mark.parametrize(
    ("wrapper", "size"),
    [(PerLayer, N_LAYERS), (PerParameter, N_WEIGHTS)],
    ids=["PerLayer", "PerParameter"],
)
def test_vector_weight_decay_gives_arrays_and_penalised_refit(
    classification_data, make_classifier, wrapper, size
):
    X, y = classification_data
    space = {"optimizer__weight_decay": wrapper(loguniform(1e-5, 1e-1))}

    search = _search(make_classifier(), space).fit(X, y)

    best = search.best_estimator_
    if wrapper is PerLayer:
        groups = search.best_params_["optimizer__param_groups"]
        decays = [options["weight_decay"] for _, options in groups]
        assert len(set(decays)) == size  # one value per layer, per parameter group
        assert [g["weight_decay"] for g in best.optimizer_.param_groups] == decays
        value = np.array(decays)
    else:
        assert search.best_params_["optimizer__weight_decay"] == 0.0
        penalties = [
            cb for _, cb in best.callbacks_ if isinstance(cb, WeightDecayPenalty)
        ]
        assert len(penalties) == 1
        value = penalties[0].values
        assert value.shape == (size,)
    assert np.all((value >= 1e-5) & (value <= 1e-1))
    proba = search.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)

    restored = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(restored.predict_proba(X.astype(np.float32)), proba)
    refit = clone(search.estimator).set_params(**search.best_params_)
    refit.fit(*_as_float32(X, y))
    assert refit.predict(X.astype(np.float32)).shape == y.shape


# ------------------------------------------------------------------- scoring
@pytest.mark.parametrize(
    "scoring",
    [["accuracy", "neg_log_loss"], {"accuracy": "accuracy", "nll": "neg_log_loss"}],
    ids=["list", "dict"],
)
def test_multimetric_scoring_refits_named_metric(
    classification_data, make_classifier, scoring
):
    X, y = classification_data
    other = "neg_log_loss" if isinstance(scoring, list) else "nll"

    search = _search(make_classifier(), scoring=scoring, refit="accuracy", n_starts=2)
    search.fit(X, y)

    results = search.cv_results_
    for name in ("accuracy", other):
        for key in ("mean_test_", "std_test_", "rank_test_", "split0_test_"):
            assert key + name in results
    assert "mean_test_score" not in results
    assert search.multimetric_ is True
    assert set(search.scorer_) == {"accuracy", other}
    assert search.best_index_ == int(np.argmin(results["rank_test_accuracy"]))
    assert search.best_score_ == results["mean_test_accuracy"][search.best_index_]
    assert search.score(X, y) == pytest.approx(accuracy_score(y, search.predict(X)))


def test_multimetric_refit_false_leaves_no_best(classification_data, make_classifier):
    X, y = classification_data
    search = _search(
        make_classifier(max_epochs=3), scoring=["accuracy", "neg_log_loss"], refit=False
    )

    search.fit(X, y)

    assert "mean_test_neg_log_loss" in search.cv_results_
    for name in ("best_estimator_", "best_params_", "best_index_", "best_score_"):
        assert not hasattr(search, name)
    with pytest.raises(AttributeError, match="has no attribute 'predict'"):
        search.predict(X)


def test_refit_false_keeps_best_params_without_estimator(
    classification_data, make_classifier
):
    X, y = classification_data

    search = _search(make_classifier(max_epochs=3), refit=False).fit(X, y)

    assert set(search.best_params_) == set(SPACE)
    assert not hasattr(search, "best_estimator_")
    assert not hasattr(search, "refit_time_")
    with pytest.raises(AttributeError, match="has no attribute 'predict'"):
        search.predict(X)


def test_refit_callable_chooses_best_index(classification_data, make_classifier):
    X, y = classification_data
    seen = []

    def choose_last(cv_results):
        seen.append(cv_results)
        return len(cv_results["params"]) - 1

    search = _search(make_classifier(max_epochs=3), refit=choose_last, n_starts=2)
    search.fit(X, y)

    assert len(seen) == 1
    assert "mean_test_score" in seen[0]
    assert search.best_index_ == 1
    assert search.best_params_ == search.cv_results_["params"][1]
    assert hasattr(search, "best_estimator_")
    assert search.predict(X).shape == y.shape


def test_neg_log_loss_scoring_scores_probabilities(
    classification_data, make_classifier
):
    X, y = classification_data

    search = _search(make_classifier(), scoring="neg_log_loss").fit(X, y)

    assert search.best_score_ < 0
    assert np.all(search.cv_results_["mean_test_score"] < 0)
    expected = -log_loss(y, search.predict_proba(X))
    assert search.score(X, y) == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------- groups and callbacks
def test_fit_groups_reach_splitter(classification_data, make_classifier):
    X, y = classification_data
    groups = np.arange(len(X)) % 3
    net = make_classifier(max_epochs=2)

    search = _search(net, cv=LeaveOneGroupOut()).fit(X, y, groups=groups)

    assert search.n_splits_ == 3
    with pytest.raises(InvalidInputError, match=r"pass the group .*groups=groups"):
        _search(net, cv=GroupKFold(n_splits=2)).fit(X, y)


class EpochCounter(Callback):
    """Counts ``on_epoch_end`` calls over every copy (class attribute)."""

    calls = 0

    def on_epoch_end(self, net, **kwargs):
        type(self).calls += 1


def test_user_callbacks_run_during_search(classification_data, make_classifier):
    X, y = classification_data
    EpochCounter.calls = 0
    net = make_classifier(
        callbacks=[
            ("counter", EpochCounter()),
            ("train_acc", EpochScoring("accuracy", on_train=True, name="train_acc")),
        ]
    )

    search = _search(net, cv=2).fit(X, y)

    # Each of the two splits trains three networks for MAX_EPOCHS epochs (the
    # tuning, then the tuned and the starting values as constants, which the
    # score chooses between), and the refit one.
    assert EpochCounter.calls == 7 * MAX_EPOCHS
    history = search.best_estimator_.history
    assert len(history) == MAX_EPOCHS
    assert all(0.0 <= score <= 1.0 for score in history[:, "train_acc"])


# --------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"optimizer__weight_decay": Real(1.0, 0.1)}, "need low < high"),
        ({"optimizer__weight_decay": Real(0.0, 1.0, log=True)}, "low must be > 0"),
        ({"optimizer__weight_decay": 1e-3}, "single value 0.001"),
        ({"module__hidden": 16}, "Wrap a single value in a list"),
        ({"module__hidden": []}, "non-empty list"),
        ([], "non-empty list of dicts"),
        ({"module__dropout": uniform(0.0, 2.0)}, r"must lie in \[0, 1\).*2\.0"),
        ({"module__dropout": loguniform(1e-3, 0.5)}, "linear"),
    ],
    ids=[
        "low_above_high",
        "log_with_zero_low",
        "single_value",
        "single_outer_value",
        "empty_list",
        "no_dict",
        "dropout_above_one",
        "dropout_log",
    ],
)
def test_search_rejects_unusable_space(
    classification_data, make_classifier, space, match
):
    search = _search(make_classifier(), space)

    with pytest.raises(InvalidHyperparameterError, match=match):
        search.fit(*classification_data)


def test_search_rejects_adamw_weight_decay(classification_data, make_classifier):
    net = make_classifier(optimizer=torch.optim.AdamW)

    with pytest.raises(InvalidHyperparameterError, match="AdamW decays weights"):
        _search(net, {"optimizer__weight_decay": WEIGHT_DECAY}).fit(
            *classification_data
        )


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
    ],
    ids=["LogisticRegression", "Pipeline"],
)
def test_search_rejects_non_skorch_estimator(classification_data, estimator):
    search = _search(estimator, {"C": loguniform(1e-2, 1e2)})

    with pytest.raises(UnsupportedEstimatorError, match="tunes skorch networks"):
        search.fit(*classification_data)


def _with_value(array, value):
    out = array.astype(float)
    out[3] = value
    return out


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda X, y: (_with_value(X, np.nan), y), "Input X contains NaN or infinity"),
        (lambda X, y: (_with_value(X, np.inf), y), "Input X contains NaN or infinity"),
        (lambda X, y: (X, _with_value(y, np.nan)), "Input y contains NaN or infinity"),
        (lambda X, y: (X, y[:-1]), re.escape("X has 120, y has 119")),
    ],
    ids=["nan_X", "inf_X", "nan_y", "lengths"],
)
def test_search_rejects_bad_data(classification_data, make_classifier, corrupt, match):
    X, y = corrupt(*classification_data)

    with pytest.raises(InvalidInputError, match=match):
        _search(make_classifier()).fit(X, y)


def test_search_rejects_multimetric_refit_true(classification_data, make_classifier):
    search = _search(make_classifier(), scoring=["accuracy", "neg_log_loss"])

    with pytest.raises(InvalidInputError, match="refit must be set to a scorer key"):
        search.fit(*classification_data)


@pytest.mark.parametrize(
    "scoring", ["not_a_metric", ["accuracy", "not_a_metric"]], ids=["str", "list"]
)
def test_search_rejects_unknown_scorer(classification_data, make_classifier, scoring):
    search = _search(make_classifier(), scoring=scoring, refit=False)

    with pytest.raises(InvalidInputError, match="not_a_metric"):
        search.fit(*classification_data)


# ------------------------------------------------------------------ regression
def test_regressor_with_1d_float64_target(regression_data, make_regressor):
    X, y = regression_data
    assert y.dtype == np.float64
    assert y.ndim == 1

    search = _search(make_regressor()).fit(X, y)

    y_pred = search.predict(X)
    assert y_pred.shape == y.shape
    assert np.isfinite(y_pred).all()
    assert np.isfinite(search.best_score_)
    assert search.score(X, y) == pytest.approx(
        1 - np.sum((y - y_pred) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-4
    )


def test_adams_no_momentum_default_goes_to_adam_only(make_classifier):
    net = make_classifier()

    adam = _search(net)._outer_optimizer()
    adamw = _search(net, hyper_optimizer=torch.optim.AdamW)._outer_optimizer()

    assert adam._optimizer_kwargs() == {"betas": (0.0, 0.9)}
    assert adamw._optimizer_kwargs() == {}


class _Silent(Callback):
    """A callback of the user's that reads nothing and changes nothing."""


@pytest.mark.parametrize(
    "callback",
    [_Silent(), EpochScoring("accuracy", use_caching=False)],
    ids=["silent", "scoring"],
)
def test_a_callback_that_only_reads_leaves_the_results_as_they_are(
    classification_data, make_classifier, callback
):
    # A callback of the user's makes every split validate each epoch (so
    # that callbacks reading valid_loss work), and a scoring callback without
    # caching predicts again; their DataLoaders draw from torch's generator,
    # which drives the shuffling and dropout masks of the next epoch.
    X, y = classification_data
    space = {"lr": [0.01, 0.03], "optimizer__weight_decay": loguniform(1e-5, 1e-1)}
    plain = _search(make_classifier(max_epochs=8), space=space).fit(X, y)
    logged = make_classifier(max_epochs=8, callbacks=[clone(callback)])
    with_callback = _search(logged, space=space).fit(X, y)

    assert with_callback.best_params_ == plain.best_params_
    np.testing.assert_array_equal(
        with_callback.cv_results_["mean_test_score"],
        plain.cv_results_["mean_test_score"],
    )
    np.testing.assert_array_equal(with_callback.predict(X), plain.predict(X))


def test_set_params_with_an_old_name_says_the_new_one(make_classifier):
    search = _search(make_classifier())

    with pytest.raises(
        InvalidParameterError, match="hyper_lr is now hyper_optimizer__lr"
    ):
        search.set_params(hyper_lr=0.1)


def test_switching_to_an_outer_optimizer_drops_the_class_arguments(
    classification_data, make_classifier
):
    X, y = classification_data
    search = _search(make_classifier(), hyper_optimizer__lr=0.1)

    search.set_params(hyper_optimizer=OuterOptimizer(lr=0.2, schedule=None))
    search.fit(X, y)

    assert "hyper_optimizer__lr" not in search.get_params(deep=False)
    assert search.get_params()["hyper_optimizer__lr"] == 0.2  # the instance's
    assert set(search.path_["hyper_lr"]) == {0.2}
