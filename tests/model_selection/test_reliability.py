"""Faults, interruptions, skorch traps and memory: each injected on purpose."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.exceptions import FitFailedWarning, NotFittedError
from skorch.callbacks import Callback, EarlyStopping
from torch import nn

from skhypergrad import (
    AllFitsFailedError,
    HypergradSearchCV,
    PerParameter,
    Tuned,
    bilevel,
)
from skhypergrad.exceptions import (
    BoundaryValueWarning,
    HyperstepSkippedWarning,
    InvalidInputError,
    SolverDivergedError,
)
from skhypergrad.hypergrad import Neumann

SPACE = {
    "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    "module__dropout": Tuned(uniform(0.0, 0.5)),
}


def _search(net, space=None, **kwargs):
    params = {"cv": 2, "random_state": 0}
    params.update(kwargs)
    return HypergradSearchCV(net, SPACE if space is None else space, **params)


def _assert_finite_results(search):
    for value in search.best_params_.values():
        assert np.all(np.isfinite(value))
    for params in search.cv_results_["params"]:
        for value in params.values():
            assert np.all(np.isfinite(value))


class RaiseOnSplit(Callback):
    """Raises in on_train_begin of the n-th network it sees (a broken split)."""

    def __init__(self, fail_at=2):
        self.fail_at = fail_at

    def initialize(self):
        self.calls_ = getattr(self, "calls_", 0)
        return self

    def on_train_begin(self, net, **kwargs):
        RaiseOnSplit.seen = getattr(RaiseOnSplit, "seen", 0) + 1
        if RaiseOnSplit.seen == self.fail_at:
            raise RuntimeError("injected training failure")


# ------------------------------------------------------------ skorch traps
class Logits(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.dropout = nn.Dropout(0.1)

    def forward(self, X):
        return self.linear(self.dropout(X))


def test_raw_scores_with_nllloss_are_refused(classification_data):
    from skorch import NeuralNetClassifier

    X, y = classification_data
    net = NeuralNetClassifier(Logits, max_epochs=2, train_split=None, verbose=0)
    with pytest.raises(
        InvalidInputError, match="NLLLoss.*raw scores.*CrossEntropyLoss"
    ):
        _search(net, {"optimizer__weight_decay": loguniform(1e-5, 1e-1)}).fit(X, y)


def test_regressor_1d_target_without_casting_is_refused(
    regression_data, make_regressor
):
    X, y = regression_data
    search = _search(make_regressor(), cast_inputs=False, error_score="raise")
    with pytest.raises(InvalidInputError, match="1-D y.*broadcasts.*reshape"):
        search.fit(X.astype(np.float32), y.astype(np.float32))


@pytest.mark.parametrize(
    ("x_dtype", "y_dtype", "match"),
    [(np.float64, np.int64, "X has dtype float64"), (np.float32, np.int32, "int64")],
)
def test_wrong_dtypes_without_casting_are_refused(
    classification_data, make_classifier, x_dtype, y_dtype, match
):
    X, y = classification_data
    search = _search(make_classifier(), cast_inputs=False, error_score="raise")
    with pytest.raises(InvalidInputError, match=match):
        search.fit(X.astype(x_dtype), y.astype(y_dtype))


class RecordValidSize(Callback):
    sizes: list = []

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        RecordValidSize.sizes.append(
            None if dataset_valid is None else len(dataset_valid)
        )


def test_search_validates_on_its_own_split_not_skorch_split(
    classification_data, make_classifier
):
    X, y = classification_data
    RecordValidSize.sizes = []
    net = make_classifier(callbacks=[RecordValidSize()], train_split=None, max_epochs=3)
    net.set_params(train_split=__import__("skorch").dataset.ValidSplit(5))
    _search(net, cv=2).fit(X, y)
    # Two splits of 60 validate on their 60 held-out rows, never on skorch's
    # 20%: the tuning and the two constant trainings (tuned and starting
    # values) of each split, 3 epochs each.
    assert RecordValidSize.sizes[:18] == [60] * 18
    # The refit keeps the user's own train_split, as GridSearchCV would.
    assert RecordValidSize.sizes[18:] == [24] * 3


# ------------------------------------------------------------ faults
def test_failing_split_follows_error_score(classification_data, make_classifier):
    X, y = classification_data
    RaiseOnSplit.seen = 0
    net = make_classifier(callbacks=[RaiseOnSplit(fail_at=2)])
    with pytest.warns(FitFailedWarning, match="1 fits failed out of a total of 2"):
        search = _search(net, error_score=-1.0).fit(X, y)
    assert search.cv_results_["split1_test_score"][0] == -1.0
    assert np.isfinite(search.cv_results_["split0_test_score"][0])
    _assert_finite_results(search)

    RaiseOnSplit.seen = 0
    with pytest.raises(RuntimeError, match="injected training failure"):
        _search(net, error_score="raise").fit(X, y)


class NaNAfter(nn.CrossEntropyLoss):
    """Cross-entropy that becomes NaN after a number of calls (a diverged run)."""

    calls = 0
    limit = 10**9

    def forward(self, input, target):
        NaNAfter.calls += 1
        loss = super().forward(input, target)
        return loss * float("nan") if NaNAfter.calls > NaNAfter.limit else loss


def test_nonfinite_training_loss_fails_the_split(classification_data, make_classifier):
    X, y = classification_data
    NaNAfter.calls, NaNAfter.limit = 0, 6
    net = make_classifier().set_params(criterion=NaNAfter)
    # Every split diverges: as GridSearchCV, the search raises (refit or not)
    # instead of returning the untuned start with a NaN best_score_.
    with pytest.raises(AllFitsFailedError, match="training loss became nan"):
        _search(net, error_score=0.0, refit=False).fit(X, y)
    NaNAfter.limit = 10**9


def _fake_hypergradient(outcomes):
    """Replace the engine: each call pops the next outcome (an error or a value)."""
    real = bilevel.hypergradient

    def fake(*args, **kwargs):
        outcome = outcomes.pop(0) if outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        grads, info = real(*args, **kwargs)
        if outcome is not None:
            grads = [torch.full_like(g, outcome) for g in grads]
        return grads, info

    return fake


@pytest.mark.parametrize(
    "injected", [SolverDivergedError("injected divergence"), float("nan")]
)
def test_nonfinite_hypergradient_skips_step(
    monkeypatch, classification_data, make_classifier, injected
):
    X, y = classification_data
    # Both splits of the second hyper-step get the fault.
    outcomes = [None, None, injected, injected]
    monkeypatch.setattr(bilevel, "hypergradient", _fake_hypergradient(outcomes))
    with pytest.warns(HyperstepSkippedWarning, match="1 of"):
        search = _search(make_classifier(), hyper_optimizer__warmup=1).fit(X, y)
    assert search.path_["skipped"][:3] == [False, True, False]
    assert search.path_["reason"][1]
    _assert_finite_results(search)
    assert np.isfinite(search.predict_proba(X)).all()


def test_diverging_neumann_is_skipped_and_reported(
    classification_data, make_classifier
):
    X, y = classification_data
    search = _search(
        make_classifier(), solver=Neumann(alpha=1e6), hyper_optimizer__warmup=1
    )
    with pytest.warns(HyperstepSkippedWarning):
        search.fit(X, y)
    assert all(search.path_["skipped"])
    assert "diverged" in search.path_["reason"][0]
    # No step was taken: the values stay at the middle of the ranges.
    assert search.best_params_["module__dropout"] == pytest.approx(0.25)
    _assert_finite_results(search)


def test_hyperparameter_driven_to_bound_is_recorded(
    monkeypatch, classification_data, make_classifier
):
    X, y = classification_data
    # A constant negative hypergradient pushes every value up, to the bound.
    monkeypatch.setattr(bilevel, "hypergradient", _fake_hypergradient([-1.0] * 100))
    space = {"optimizer__weight_decay": loguniform(1e-5, 1e-3)}
    search = _search(
        make_classifier(max_epochs=12),
        space,
        hyper_optimizer__warmup=1,
        hyper_optimizer__lr=1.0,
    )
    with pytest.warns(BoundaryValueWarning, match="reached the upper bound"):
        search.fit(X, y)
    assert "optimizer__weight_decay" in search.path_["at_bound"][-1]
    assert search.best_params_["optimizer__weight_decay"] == pytest.approx(1e-3)


# ------------------------------------------------------------ interruption
class InterruptAfter(nn.Module):
    """Raises KeyboardInterrupt (as Ctrl-C would) after a number of forwards."""

    calls = 0
    limit = 10**9

    def __init__(self, dropout=0.1):
        super().__init__()
        self.linear = nn.Linear(6, 3)
        self.dropout = nn.Dropout(dropout)

    def forward(self, X):
        InterruptAfter.calls += 1
        if InterruptAfter.calls > InterruptAfter.limit:
            raise KeyboardInterrupt
        return self.linear(self.dropout(X))


def test_ctrl_c_stops_fit_and_leaves_search_unfitted(classification_data):
    X, y = classification_data
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(
        InterruptAfter,
        criterion=nn.CrossEntropyLoss,
        max_epochs=4,
        train_split=None,
        verbose=0,
    )
    InterruptAfter.calls, InterruptAfter.limit = 0, 10**9
    search = _search(net).fit(X, y)  # a first, complete fit
    assert hasattr(search, "best_estimator_")

    InterruptAfter.calls, InterruptAfter.limit = 0, 5
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, y)
    InterruptAfter.limit = 10**9
    assert not hasattr(search, "best_params_")
    assert not hasattr(search, "cv_results_")
    with pytest.raises(NotFittedError):
        search.predict(X)


def test_early_stopping_stops_one_split_not_the_search(
    classification_data, make_classifier
):
    X, y = classification_data
    net = make_classifier(
        max_epochs=20, callbacks=[EarlyStopping(patience=1, threshold=10.0)]
    )
    search = _search(net, refit=False).fit(X, y)
    # Each split stopped after 2 epochs (no 10-unit improvement): the loop
    # ended before the warm-up of 20 // 3 = 6 epochs, so no hyper-step was
    # taken; the search still produced results.
    assert search.path_["epoch"] == []
    assert search.cv_results_["n_hypersteps"][0] == 0
    assert np.isfinite(search.cv_results_["mean_test_score"][0])
    _assert_finite_results(search)
    # Without the callback the same search steps after epochs 6 to 19.
    plain = _search(make_classifier(max_epochs=20), refit=False).fit(X, y)
    assert plain.path_["epoch"] == list(range(6, 20))


# ------------------------------------------------------------ memory
def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_is_flat_across_many_hypersteps():
    from skhypergrad.hypergrad import CG, hypergradient

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 256), nn.ReLU(), nn.Linear(256, 10))
    params = list(net.parameters())
    raw = [torch.full((sum(p.numel() for p in params),), -3.0, requires_grad=True)]
    X, y = torch.randn(256, 32), torch.randint(0, 10, (256,))
    Xv, yv = torch.randn(256, 32), torch.randint(0, 10, (256,))

    def inner(ps, hs):
        lam = torch.split(torch.exp(hs[0]), [p.numel() for p in ps])
        penalty = sum((0.5 * l.view_as(p) * p**2).sum() for l, p in zip(lam, ps))
        return nn.functional.cross_entropy(net(X), y) + penalty

    def outer(ps, hs):
        return nn.functional.cross_entropy(net(Xv), yv)

    def step():
        hypergradient(
            inner,
            outer,
            params,
            raw,
            solver=CG(max_iter=5),
        )

    for _ in range(10):
        step()
    before = _rss_bytes()
    for _ in range(60):
        step()
    growth = _rss_bytes() - before
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 60 steps"


# ------------------------------------------------------------ reproducibility
def test_pickled_search_predicts_identically_in_fresh_process(
    tmp_path, classification_data, make_classifier
):
    X, y = classification_data
    search = _search(
        make_classifier(),
        {"optimizer__weight_decay": PerParameter(loguniform(1e-5, 1e-1))},
    ).fit(X, y)
    path = tmp_path / "search.pkl"
    path.write_bytes(pickle.dumps(search))
    np.save(tmp_path / "X.npy", X)
    expected = search.predict_proba(X)
    script = textwrap.dedent(f"""
        import pickle, sys, numpy as np
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        search = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, search.predict_proba(X))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
