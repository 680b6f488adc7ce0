"""HypergradClassifier / HypergradRegressor: one training, tuned while it
trains, predicting with the net it trained."""

import pickle

import numpy as np
import pytest
from scipy.stats import loguniform, randint, uniform
from sklearn.base import clone

from skhypergrad import (
    HypergradClassifier,
    HypergradRegressor,
    InvalidHyperparameterError,
    InvalidInputError,
    Sampled,
    Tuned,
    UnsupportedEstimatorError,
)

DECAY = loguniform(1e-5, 1e-1)


def _rows_trained(net):
    return sum(b.get("train_batch_size", 0) for b in net.history[0, "batches"])


def test_classifier_trains_once_and_predicts_with_that_net(
    classification_data, make_classifier
):
    X, y = classification_data
    labels = np.array(["ant", "bee", "cat"])[y]  # labels as users have them
    space = {
        "optimizer__weight_decay": DECAY,
        "module__dropout": Tuned(uniform(0.0, 0.5)),
    }

    model = HypergradClassifier(
        make_classifier(max_epochs=8), space, validation_fraction=0.25, random_state=0
    ).fit(X, labels)

    assert model.refit_time_ == 0.0
    assert model.n_splits_ == 1
    assert len(model.cv_results_["params"]) == 1
    assert _rows_trained(model.best_estimator_) == 90  # 75% of 120 rows, no refit
    assert len(model.path_["epoch"]) > 0
    assert set(model.best_params_) == set(space)
    assert list(model.classes_) == ["ant", "bee", "cat"]
    assert set(model.predict(X)) <= set(labels)
    assert model.predict_proba(X).shape == (120, 3)
    assert model.score(X, labels) > 0.5
    # The validation score is the held-out rows' accuracy of that very net.
    assert 0.0 <= model.best_score_ <= 1.0


def test_same_random_state_same_model_and_it_pickles(
    classification_data, make_classifier
):
    X, y = classification_data

    def fit():
        return HypergradClassifier(
            make_classifier(max_epochs=5),
            {"optimizer__weight_decay": DECAY},
            random_state=3,
        ).fit(X, y)

    a, b = fit(), fit()
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.best_params_ == b.best_params_
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict_proba(X), a.predict_proba(X))
    params = clone(a).get_params(deep=False)
    assert not {"cv", "refit", "n_jobs"} & set(params)
    assert params["validation_fraction"] == 0.1


def test_regressor(regression_data, make_regressor):
    X, y = regression_data
    model = HypergradRegressor(
        make_regressor(max_epochs=10),
        {"optimizer__weight_decay": DECAY},
        validation_fraction=0.2,
        random_state=0,
    ).fit(X, y)

    assert _rows_trained(model.best_estimator_) == 64
    assert model.predict(X).shape == (80,)
    assert model.predict(X).dtype == np.float64


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"optimizer__weight_decay": DECAY, "lr": [0.01, 0.1]}, "'lr' is searched"),
        ({"optimizer__weight_decay": DECAY, "max_epochs": [3, 6]}, "'max_epochs'"),
        ({"optimizer__weight_decay": Sampled(DECAY)}, "Sampled"),
        ({"module__hidden": randint(4, 16)}, "'module__hidden'"),
        ([{"optimizer__weight_decay": DECAY}] * 2, "one dict"),
    ],
)
def test_refuses_what_one_training_cannot_search(
    classification_data, make_classifier, space, match
):
    model = HypergradClassifier(make_classifier(), space)
    with pytest.raises(InvalidHyperparameterError, match=match):
        model.fit(*classification_data)


def test_refuses_the_other_kind_of_net_and_groups(
    classification_data, make_classifier, make_regressor
):
    X, y = classification_data
    with pytest.raises(UnsupportedEstimatorError, match="HypergradClassifier"):
        HypergradRegressor(make_classifier(), {"optimizer__weight_decay": DECAY}).fit(
            X, y
        )
    with pytest.raises(UnsupportedEstimatorError, match="HypergradRegressor"):
        HypergradClassifier(make_regressor(), {"optimizer__weight_decay": DECAY}).fit(
            X, y.astype(float)
        )
    with pytest.raises(InvalidInputError, match="takes no groups"):
        HypergradClassifier(make_classifier(), {"optimizer__weight_decay": DECAY}).fit(
            X, y, groups=np.arange(len(y)) % 4
        )


@pytest.mark.parametrize("rescore", [True, False])
def test_what_the_single_fit_reports_is_what_it_predicts_with(
    classification_data, make_classifier, rescore
):
    from sklearn.model_selection import StratifiedShuffleSplit

    X, y = classification_data
    space = {
        "optimizer__weight_decay": DECAY,
        "module__dropout": Tuned(uniform(0.0, 0.5)),
    }
    model = HypergradClassifier(
        make_classifier(max_epochs=8),
        space,
        validation_fraction=0.25,
        random_state=0,
        rescore=rescore,
    ).fit(X, y)
    net = model.best_estimator_
    # The held-out rows: the estimator's own stratified split of the rows.
    splitter = StratifiedShuffleSplit(1, test_size=0.25, random_state=0)
    _, held_out = next(splitter.split(X, y))
    held_out_score = net.score(X[held_out].astype(np.float32), y[held_out])

    # best_score_ is that net's accuracy on the held-out rows.
    assert model.best_score_ == pytest.approx(held_out_score)
    if rescore:  # the net trained with the reported values, fixed throughout
        params = net.get_params()
        for name, value in model.best_params_.items():
            assert params[name] == pytest.approx(value)
        assert net.module_.dropout.p == pytest.approx(
            model.best_params_["module__dropout"]
        )
