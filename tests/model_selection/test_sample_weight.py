"""Per-example weights: the SampleWeight callback in plain skorch training, and
the PerSample family through the search (per split, mapped back to rows of X)."""

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import ValidSplit
from torch import nn

from skhypergrad import (
    HypergradClassifier,
    HypergradSearchCV,
    InputNoise,
    InvalidHyperparameterError,
    PerSample,
    SampleWeight,
)
from skhypergrad.model_selection._training import _outer_loop as outer_loop
from skhypergrad.sample_weights import _TrackRows

NAME = "callbacks__weights__weight"
SPACE = {NAME: PerSample(loguniform(1e-2, 1.0))}


def _weighted(make_classifier, weight=None, **overrides):
    return make_classifier(callbacks=[("weights", SampleWeight(weight))], **overrides)


def _data(classification_data):
    X, y = classification_data
    return X.astype(np.float32), y.astype(np.int64)


def test_weighted_step_matches_a_hand_computed_weighted_loss(
    make_classifier, classification_data
):
    X, y = _data(classification_data)
    weight = np.random.default_rng(0).uniform(0.0, 3.0, len(X))
    net = _weighted(
        make_classifier,
        weight,
        optimizer=torch.optim.SGD,
        lr=0.5,
        max_epochs=1,
        batch_size=len(X),
        module__dropout=0.0,
    )
    net.initialize()
    start = [p.detach().clone() for p in net.module_.parameters()]

    net.partial_fit(X, y)

    # One full-batch SGD step on mean_i(w_i * loss_i), by hand.
    module = net.module_.__class__(6, 3, dropout=0.0)
    with torch.no_grad():
        for p, p0 in zip(module.parameters(), start):
            p.copy_(p0)
    losses = nn.functional.cross_entropy(
        module(torch.as_tensor(X)), torch.as_tensor(y), reduction="none"
    )
    (torch.as_tensor(weight, dtype=torch.float32) * losses).mean().backward()
    with torch.no_grad():
        expected = [p - 0.5 * p.grad for p in module.parameters()]
    for got, want in zip(net.module_.parameters(), expected):
        torch.testing.assert_close(got, want)


def test_zero_weights_remove_rows_from_training(make_classifier, classification_data):
    X, y = _data(classification_data)
    flipped = y.copy()
    flipped[:60] = (flipped[:60] + 1) % 3  # wrong labels, weighted 0
    weight = np.r_[np.zeros(60), np.ones(60)]
    kwargs = {"batch_size": len(X), "module__dropout": 0.0, "max_epochs": 3}

    torch.manual_seed(1)
    weighted = _weighted(make_classifier, weight, **kwargs).fit(X, flipped)
    torch.manual_seed(1)
    subset = _weighted(make_classifier, None, **kwargs).fit(X[60:], y[60:])

    # Full batches: a zero weight drops the row, up to the batch mean's scale
    # (mean over 120 rows instead of 60: half the gradient, Adam ignores it).
    for got, want in zip(weighted.module_.parameters(), subset.module_.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


class _Spy(SampleWeight):
    def use_rows(self, rows):
        self.seen = [*getattr(self, "seen", []), np.asarray(rows)]
        super().use_rows(rows)


def test_rows_of_a_skorch_valid_split_map_back_to_rows_of_X(
    make_classifier, classification_data
):
    X, y = _data(classification_data)
    spy = _Spy(np.ones(len(X)))
    net = make_classifier(
        callbacks=[("weights", spy)], train_split=ValidSplit(4), max_epochs=1
    )

    net.fit(X, y)

    seen = np.concatenate(spy.seen)
    assert len(seen) == 90  # the training rows, each once per epoch
    assert len(set(seen.tolist())) == 90
    assert seen.max() > 89  # rows of X, not positions in the training subset


def test_fitted_net_gets_its_own_iterator_and_criterion_back(
    make_classifier, classification_data
):
    X, y = _data(classification_data)
    net = _weighted(make_classifier, np.ones(len(X))).fit(X, y)

    assert "get_iterator" not in vars(net)
    assert not net.criterion_._forward_hooks
    assert not net.criterion_._forward_pre_hooks
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (np.ones(5), "has 5 weights but fit received 120 samples"),
        (-np.ones(120), "one finite weight >= 0 per sample"),
        (np.ones((120, 2)), "one finite weight >= 0 per sample"),
        ("heavy", "one finite weight >= 0 per sample"),
    ],
)
def test_bad_weights_are_refused(make_classifier, classification_data, weight, message):
    X, y = _data(classification_data)
    with pytest.raises(ValueError, match=message):
        _weighted(make_classifier, weight).fit(X, y)


class _NoReduction(nn.Module):
    def forward(self, y_pred, y_true):
        return nn.functional.cross_entropy(y_pred, y_true)


def test_criterion_without_reduction_is_refused(make_classifier, classification_data):
    X, y = _data(classification_data)
    net = _weighted(make_classifier, np.ones(len(X)))
    net.set_params(criterion=_NoReduction)
    with pytest.raises(TypeError, match="has no 'reduction' argument"):
        net.fit(X, y)


def test_search_tunes_one_weight_per_row_and_refits_with_them(
    make_classifier, classification_data
):
    X, y = classification_data
    search = HypergradSearchCV(
        _weighted(make_classifier), SPACE, cv=KFold(3), random_state=0
    ).fit(X, y)

    weight = search.best_params_[NAME]
    assert weight.shape == (120,)
    assert np.isclose(weight.mean(), 1.0)
    assert weight.max() / weight.min() <= 100.0 + 1e-6
    assert weight.std() > 0.01  # the weights moved
    refit = dict(search.best_estimator_.callbacks_)["weights"]
    np.testing.assert_array_equal(refit.weight, weight)
    # Each split's weights are in the path; the per-split table is per row.
    assert np.isfinite(search.path_[NAME]).all()


def test_weights_find_flipped_labels_against_a_trusted_split(make_classifier):
    X, y = make_classification(
        n_samples=200,
        n_features=6,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        class_sep=2.0,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    trusted = np.arange(200) >= 140
    flipped = (rng.random(200) < 0.3) & ~trusted
    y[flipped] = (y[flipped] + 1) % 3
    net = _weighted(make_classifier, max_epochs=30, module__hidden=32)
    search = HypergradSearchCV(
        net,
        SPACE,
        cv=PredefinedSplit(np.where(trusted, 0, -1)),
        random_state=0,
        hyper_optimizer__batch_size=256,
        hyper_optimizer__lr=0.1,
        hyper_optimizer__warmup=1,
    ).fit(X, y)

    weight = search.best_params_[NAME]
    # The trusted rows never trained in the search: they get the mean weight.
    assert np.allclose(weight[trusted], weight[trusted][0])
    auc = roc_auc_score(~flipped[~trusted], weight[~trusted])
    assert auc > 0.8, auc


def test_same_weights_for_any_n_jobs_and_in_a_pipeline(
    make_classifier, classification_data
):
    X, y = classification_data
    pipe = Pipeline([("scale", StandardScaler()), ("net", _weighted(make_classifier))])
    space = {f"net__{NAME}": SPACE[NAME]}

    one = HypergradSearchCV(pipe, space, cv=2, random_state=0).fit(X, y)
    two = HypergradSearchCV(pipe, space, cv=2, random_state=0, n_jobs=2).fit(X, y)

    np.testing.assert_allclose(
        one.best_params_[f"net__{NAME}"], two.best_params_[f"net__{NAME}"]
    )


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        (loguniform(1e-2, 1.0), "Wrap the range of the weights in PerSample"),
        (PerSample(loguniform(1e-2, 1.0).ppf([0, 1]).tolist()), "list of values"),
    ],
)
def test_bad_ranges_are_refused(
    make_classifier, classification_data, distribution, message
):
    X, y = classification_data
    search = HypergradSearchCV(_weighted(make_classifier), {NAME: distribution}, cv=2)
    with pytest.raises(InvalidHyperparameterError, match=message):
        search.fit(X, y)


class _Softmax(nn.Module):
    def __init__(self, n_in=6, n_out=3):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, X):
        return torch.softmax(self.linear(X), dim=-1)


def _first_loss(net, X, y, weight):
    if weight is not None:
        net.set_params(callbacks=[("weights", SampleWeight(weight))])
    torch.manual_seed(0)
    return (
        net.set_params(max_epochs=1, batch_size=len(X))
        .fit(X, y)
        .history[-1, "train_loss"]
    )


@pytest.mark.parametrize(
    "criterion",
    ["nll", "class weights", "ignore_index", "label smoothing"],
)
def test_weights_of_one_give_the_net_its_own_loss(
    make_classifier, classification_data, criterion
):
    X, y = _data(classification_data)
    if criterion == "nll":  # skorch takes the log of the probabilities itself
        net = make_classifier().set_params(module=_Softmax, criterion=nn.NLLLoss)
    elif criterion == "class weights":  # the mean divides by sum(weight[y])
        net = make_classifier(criterion__weight=torch.tensor([5.0, 1.0, 1.0]))
    elif criterion == "ignore_index":
        y = y.copy()
        y[:10] = -100
        net = make_classifier()
    else:
        net = make_classifier(criterion__label_smoothing=0.2)
    plain = _first_loss(clone(net), X, y, None)
    weighted = _first_loss(clone(net), X, y, np.ones(len(X)))
    assert plain == pytest.approx(weighted, rel=1e-6)
    assert weighted > 0


def test_weights_of_one_give_a_multi_output_regressor_its_own_loss(make_regressor):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.standard_normal((40, 2)).astype(np.float32)
    net = make_regressor(module__n_out=2)
    for reduction in ("mean", "sum"):
        net.set_params(criterion__reduction=reduction)
        plain = _first_loss(clone(net), X, y, None)
        weighted = _first_loss(clone(net), X, y, np.ones(len(X)))
        assert plain == pytest.approx(weighted, rel=1e-6)


class _Boom(Callback):
    def on_epoch_end(self, net, **kwargs):
        raise RuntimeError("boom")


def test_a_failed_fit_leaves_nothing_that_a_clone_or_next_fit_sees(
    make_classifier, classification_data
):
    X, y = _data(classification_data)
    net = make_classifier(
        callbacks=[("weights", SampleWeight(np.ones(len(X)))), ("boom", _Boom())]
    )
    with pytest.raises(RuntimeError, match="boom"):
        net.fit(X, y)
    assert isinstance(vars(net).get("get_iterator"), _TrackRows)  # left by skorch

    fresh = clone(net).set_params(callbacks__boom=None)
    assert fresh.get_params()["iterator_train"] is torch.utils.data.DataLoader
    fresh.fit(X, y)
    net.set_params(callbacks__boom=None).fit(X, y)  # the next fit cleans up
    assert "get_iterator" not in vars(net)
    assert "get_iterator" not in vars(fresh)


def test_fixed_weights_per_row_of_X_go_to_each_split(
    make_classifier, classification_data
):
    X, y = classification_data
    weight = np.linspace(0.5, 1.5, len(X))
    net = _weighted(make_classifier, weight)
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-5, 1e-1)},
        cv=3,
        random_state=0,
        error_score="raise",
    ).fit(X, y)
    refit = dict(search.best_estimator_.callbacks_)["weights"]
    np.testing.assert_array_equal(refit.weight, weight)


def test_an_unnamed_callback_is_found_by_its_class_name(
    make_classifier, classification_data
):
    X, y = classification_data
    net = make_classifier(callbacks=[SampleWeight()])
    name = "callbacks__SampleWeight__weight"
    search = HypergradSearchCV(net, {name: SPACE[NAME]}, cv=2, random_state=0)
    assert search.fit(X, y).best_params_[name].shape == (120,)


@pytest.mark.parametrize("rescore", [True, False])
def test_single_fit_estimator_holds_the_reported_weights(
    make_classifier, classification_data, rescore
):
    X, y = classification_data
    model = HypergradClassifier(
        _weighted(make_classifier), SPACE, random_state=0, rescore=rescore
    )
    model.fit(X, y)

    weight = model.best_params_[NAME]
    kept = dict(model.best_estimator_.callbacks_)["weights"]
    np.testing.assert_array_equal(kept.weight, weight)
    X, y = _data(classification_data)
    assert clone(model.best_estimator_).fit(X, y).predict(X).shape == (120,)


@pytest.mark.parametrize(
    ("callbacks", "validates"),
    [
        ([("weights", SampleWeight())], False),
        ([InputNoise(), SampleWeight], False),
        ([("weights", SampleWeight()), ("stop", EarlyStopping(patience=50))], True),
        ([EarlyStopping], True),
    ],
)
def test_split_nets_skip_skorch_validation_unless_a_callback_may_read_it(
    make_classifier, classification_data, callbacks, validates
):
    X, y = classification_data
    search = HypergradSearchCV(
        make_classifier(callbacks=callbacks), {}, cv=2, refit=False, random_state=0
    )
    validated = {}
    original = outer_loop.run_epoch

    def spy(fold, settings):
        validated[fold.index] = fold.net.train_split is not None
        return original(fold, settings)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outer_loop, "run_epoch", spy)
        search.fit(X, y)
    assert set(validated.values()) == {validates}


def test_a_hyper_step_follows_only_the_weights_of_its_minibatch_rows(
    make_classifier, classification_data, monkeypatch
):
    # Through the mean-1 normalisation every weight gets a small common
    # gradient, which Adam would scale up into a full step for the rows the
    # minibatch did not hold: the search keeps only the minibatch's rows.
    from skhypergrad.families.sample_weight import SampleWeightBinding

    seen = []
    original = SampleWeightBinding.observed

    def spy(self, grad, rows):
        kept = original(self, grad, rows)
        seen.append((grad, rows, kept))
        return kept

    monkeypatch.setattr(SampleWeightBinding, "observed", spy)
    X, y = classification_data
    HypergradSearchCV(
        _weighted(make_classifier, max_epochs=3),
        SPACE,
        cv=KFold(2),
        random_state=0,
        hyper_optimizer__batch_size=8,
    ).fit(X, y)

    assert len(seen) == 4  # 2 splits x 2 hyper-steps
    for grad, rows, kept in seen:
        assert len(rows) == 8
        others = np.setdiff1d(np.arange(60), rows)
        assert bool((grad[others] != 0).all())  # the common gradient exists
        assert bool((kept[others] == 0).all())
        torch.testing.assert_close(kept[rows], grad[rows])
