"""The splits of a candidate in separate worker processes, exchanging their
hypergradients through gloo, give the same results as in one process."""

import numpy as np
import pytest
from joblib import parallel_backend
from scipy.stats import loguniform
from sklearn.exceptions import FitFailedWarning
from sklearn.model_selection import KFold
from skorch.callbacks import Callback

from skhypergrad import HypergradSearchCV, PerSample, SampleWeight
from skhypergrad.model_selection._training import _dispatch as dispatch

DECAY = loguniform(1e-5, 1e-1)


def _search(estimator, space, **kwargs):
    params = {"cv": 2, "random_state": 0, "refit": False}
    params.update(kwargs)
    return HypergradSearchCV(estimator, space, **params)


def _assert_same(serial, parallel):
    a, b = serial.cv_results_, parallel.cv_results_
    assert a["params"] == b["params"]
    for key in a:
        if key.endswith("_time") or key == "params":
            continue
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), key)
    for path_a, path_b in zip(serial.paths_, parallel.paths_):
        for key in ("val_loss", "hypergrad_norm", "optimizer__weight_decay"):
            np.testing.assert_array_equal(path_a[key], path_b[key], key)


@pytest.fixture
def by_split(monkeypatch):
    """Record whether the search ran its splits in workers of their own."""
    calls = []
    original = dispatch._run_by_split

    def spy(*args, **kwargs):
        calls.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(dispatch, "_run_by_split", spy)
    return calls


def test_splits_in_workers_give_the_same_results(
    classification_data, make_classifier, by_split
):
    X, y = classification_data
    space = {"optimizer__weight_decay": DECAY}
    net = make_classifier(max_epochs=5)

    serial = _search(net, space, n_jobs=1).fit(X, y)
    assert not by_split
    parallel = _search(net, space, n_jobs=2).fit(X, y)

    assert by_split  # one candidate, two splits, two workers
    _assert_same(serial, parallel)
    assert len(parallel.paths_[0]["epoch"]) > 0


def test_more_candidates_than_a_wave_of_workers(
    classification_data, make_classifier, by_split
):
    # Two candidates × two splits on three workers: a candidate's second
    # split waits for a worker that the first candidate frees.
    X, y = classification_data
    space = {"module__hidden": [4, 8], "optimizer__weight_decay": DECAY}
    net = make_classifier(max_epochs=4)

    serial = _search(net, space, n_jobs=1).fit(X, y)
    parallel = _search(net, space, n_jobs=3).fit(X, y)

    assert by_split
    _assert_same(serial, parallel)


class ShortSplitStops(Callback):
    """Ends training after two epochs on the split with 59 training rows, as
    skorch's EarlyStopping would (it raises KeyboardInterrupt)."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.rows_ = len(X)

    def on_epoch_end(self, net, **kwargs):
        if self.rows_ == 59 and len(net.history) >= 2:
            raise KeyboardInterrupt


def test_a_split_that_stops_early_keeps_its_sibling_going(
    classification_data, make_classifier, by_split
):
    X, y = classification_data
    X, y = X[:119], y[:119]  # KFold(2): splits with 59 and 60 training rows
    net = make_classifier(max_epochs=6, callbacks=[ShortSplitStops()])
    space = {"optimizer__weight_decay": DECAY}

    serial = _search(net, space, cv=KFold(2), n_jobs=1).fit(X, y)
    parallel = _search(net, space, cv=KFold(2), n_jobs=2).fit(X, y)

    assert by_split
    _assert_same(serial, parallel)


class FailOnShortSplit(Callback):
    """Fails the training of the split with 59 training rows."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if len(X) == 59:
            raise RuntimeError("injected failure")


def test_a_failed_split_is_scored_error_score_and_its_sibling_tunes(
    classification_data, make_classifier, by_split
):
    X, y = classification_data
    X, y = X[:119], y[:119]
    net = make_classifier(max_epochs=4, callbacks=[FailOnShortSplit()])
    space = {"optimizer__weight_decay": DECAY}

    # sklearn's ranking then warns of the failed split's NaN score.
    nan_score = pytest.warns(UserWarning, match="test scores are non-finite")
    with pytest.warns(FitFailedWarning, match="failed"), nan_score:
        serial = _search(net, space, cv=KFold(2), n_jobs=1).fit(X, y)
    nan_score = pytest.warns(UserWarning, match="test scores are non-finite")
    with pytest.warns(FitFailedWarning, match="failed"), nan_score:
        parallel = _search(net, space, cv=KFold(2), n_jobs=2).fit(X, y)

    assert by_split
    assert np.isnan(parallel.cv_results_["split0_test_score"][0])
    assert np.isfinite(parallel.cv_results_["split1_test_score"][0])
    _assert_same(serial, parallel)


@pytest.mark.parametrize(
    ("backend", "kwargs"),
    [
        ("loky", {"error_score": "raise"}),  # a raising split would strand its sibling
        ("loky", {"n_jobs": 1}),
        ("loky", {"cv": 3}),  # fewer workers than splits
    ],
)
def test_splits_stay_together_where_workers_of_their_own_do_not_fit(
    classification_data, make_classifier, by_split, backend, kwargs
):
    X, y = classification_data
    params = {"n_jobs": 2, **kwargs}
    with parallel_backend(backend):
        _search(
            make_classifier(max_epochs=2), {"optimizer__weight_decay": DECAY}, **params
        ).fit(X, y)
    assert not by_split


def test_per_split_values_come_back_from_their_workers(
    classification_data, make_classifier, by_split, monkeypatch
):
    from skhypergrad import families as registry

    from .test_families import PerRow, RowDecay

    monkeypatch.setattr(registry, "FAMILIES", list(registry.FAMILIES))
    registry.register_family(RowDecay)
    X, y = classification_data
    X, y = X[:119], y[:119]
    space = {"optimizer__weight_decay": PerRow(DECAY)}

    serial = _search(make_classifier(), space, cv=KFold(2), n_jobs=1).fit(X, y)
    serial_values = RowDecay.seen
    parallel = _search(make_classifier(), space, cv=KFold(2), n_jobs=2).fit(X, y)

    assert by_split
    assert sorted(len(v) for v in RowDecay.seen.values()) == [59, 60]
    for index, values in serial_values.items():
        np.testing.assert_array_equal(values, RowDecay.seen[index])
    assert serial.best_params_ == parallel.best_params_


@pytest.mark.parametrize(
    ("space", "per_step"),
    [
        # Shared entries only: the splits' reports, once per hyper-step.
        ({"optimizer__weight_decay": loguniform(1e-5, 1e-1)}, 1),
        # A per-split entry also sends its check and its path summary.
        ({"callbacks__weights__weight": PerSample(loguniform(1e-2, 1.0))}, 3),
    ],
    ids=["shared", "per-split"],
)
def test_the_splits_exchange_once_per_hyper_step(
    monkeypatch, space, per_step, classification_data, make_classifier
):
    """What the splits send each other: once when built, once per epoch (who
    still trains) and ``per_step`` times per hyper-step."""
    from skhypergrad.model_selection._training._exchange import LocalExchange

    calls = []
    gather = LocalExchange.gather
    monkeypatch.setattr(
        LocalExchange, "gather", lambda self, v: calls.append(1) or gather(self, v)
    )
    X, y = classification_data
    net = make_classifier(max_epochs=6, callbacks=[("weights", SampleWeight())])
    search = HypergradSearchCV(
        net, space, cv=KFold(2), random_state=0, rescore=False
    ).fit(X, y)
    (n_steps,) = search.cv_results_["n_hypersteps"]
    assert n_steps > 0
    assert len(calls) == 1 + 6 + per_step * n_steps
