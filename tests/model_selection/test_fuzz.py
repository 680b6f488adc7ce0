"""Property-based tests.

A valid space (tuned ranges mixed with grid and sampled entries) on valid data
always fits with the rows, scores and bounded values a search promises; the
same cases with one fault in the data, the space or the arguments are each
refused with that fault's own error and message.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import loguniform, uniform
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer, PerParameter, Real, Sampled, Tuned
from skhypergrad.exceptions import InvalidHyperparameterError, InvalidInputError
from skhypergrad.hypergrad import CG, CosineSchedule, Neumann
from skhypergrad.utils._validation import InvalidParameterError


class Fuzzy(nn.Module):
    """Any number of input features (lazy), a dropout layer, n_out outputs."""

    def __init__(self, n_out=2, dropout=0.1):
        super().__init__()
        self.hidden = nn.LazyLinear(8)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(8, n_out)

    def forward(self, X):
        return self.out(self.dropout(torch.relu(self.hidden(X))))


valid_decay = st.one_of(
    st.builds(
        lambda lo, span: Real(lo, lo * 10**span, log=True),
        st.floats(1e-7, 1e-2),
        st.floats(0.5, 5),
    ),
    st.builds(lambda lo: loguniform(lo, 10 * lo), st.floats(1e-7, 1e-2)),
)
valid_spaces = st.fixed_dictionaries(
    {},
    optional={
        "optimizer__weight_decay": st.one_of(
            valid_decay,
            st.builds(PerLayer, valid_decay),
            st.builds(PerParameter, valid_decay),
        ),
        "module__dropout": st.one_of(
            st.builds(
                lambda lo, w: Tuned(uniform(lo, w)),
                st.floats(0.0, 0.5),
                st.floats(0.01, 0.4),
            ),
            st.just(Sampled(uniform(0.0, 0.5))),
            st.just([0.0, 0.3]),
        ),
        "batch_size": st.just([8, 32]),
        "max_epochs": st.just([1, 3]),
        "lr": st.just(loguniform(1e-3, 1e-2)),
    },
).filter(bool)


@st.composite
def problems(draw):
    """A small valid problem: float64, float32 or integer X, as users hand it."""
    n = draw(st.integers(18, 40))
    d = draw(st.integers(1, 5))
    task = draw(st.sampled_from(["classification", "regression"]))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    X = rng.normal(size=(n, d)).astype(
        draw(st.sampled_from([np.float64, np.float32, np.int64]))
    )
    if task == "classification":
        n_classes = draw(st.integers(2, 3))
        y = (np.arange(n) % n_classes).astype(
            draw(st.sampled_from([np.int32, np.int64]))
        )
    else:
        n_classes = 1
        y = rng.normal(size=n)
    return task, n_classes, X, y


settings_ = st.fixed_dictionaries(
    {
        "cv": st.sampled_from([2, 3, 5]),
        "solver": st.one_of(
            st.sampled_from(["cg", "neumann", "identity", "exact"]),
            st.builds(
                lambda k, d: CG(max_iter=k, damping=d),
                st.integers(1, 5),
                st.sampled_from([0.0, 1e-3, 1.0]),
            ),
            st.builds(
                lambda k, d: Neumann(max_iter=k, damping=d),
                st.integers(0, 5),
                st.sampled_from([0.0, 1e-3, 1.0]),
            ),
        ),
        "n_iter": st.integers(1, 3),
        "hyper_optimizer__lr": st.sampled_from([1e-3, 0.5, 5.0]),
        "hyper_optimizer__schedule": st.sampled_from(
            [None, CosineSchedule(0.1), torch.optim.lr_scheduler.LinearLR]
        ),
        "hyper_optimizer__betas": st.sampled_from(
            [(0.0, 0.9), (0.9, 0.999), (0.99, 0.0)]
        ),
        "hyper_optimizer__warmup": st.integers(0, 2),
        "n_starts": st.integers(1, 2),
    }
)


def _net(task, n_classes, max_epochs):
    common = dict(
        module=Fuzzy,
        module__n_out=n_classes,
        max_epochs=max_epochs,
        optimizer=torch.optim.Adam,
        lr=0.01,
        train_split=None,
        verbose=0,
    )
    if task == "classification":
        return NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **common)
    return NeuralNetRegressor(**common)


def _n_rows(space, cfg):
    """Rows of cv_results_: GridSearchCV's candidates (RandomizedSearchCV's
    n_iter where an outer entry is drawn), times the starting points, times
    the max_epochs values read off the same trainings."""
    outer = {k: v for k, v in space.items() if k != "max_epochs"}
    lists = [v for v in outer.values() if isinstance(v, list)]
    drawn = any(isinstance(v, Sampled) for v in outer.values())
    candidates = cfg["n_iter"] if drawn else int(np.prod([len(v) for v in lists]))
    return candidates * cfg["n_starts"] * len(space.get("max_epochs", [0]))


def _check_fitted(search, space, cfg, X):
    """What a fitted search promises, whatever the space."""
    results = search.cv_results_
    assert len(results["params"]) == _n_rows(space, cfg)
    assert np.all(np.isfinite(results["mean_test_score"]))
    assert search.best_score_ == results["mean_test_score"][search.best_index_]
    decay = space.get("optimizer__weight_decay")
    for params in results["params"]:
        for value in params.values():
            if isinstance(value, float):
                assert np.isfinite(value)
        if isinstance(decay, Real | type(loguniform(1, 2))):
            low, high = _bounds(decay)
            value = params["optimizer__weight_decay"]
            assert low * (1 - 1e-9) <= value <= high * (1 + 1e-9)
    assert np.all(np.isfinite(search.predict(X)))


def _bounds(decay):
    if isinstance(decay, Real):
        return decay.low, decay.high
    return decay.support()


def _fuzz(n):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def _fit(problem, space, cfg, max_epochs):
    task, n_classes, X, y = problem
    search = HypergradSearchCV(
        _net(task, n_classes, max_epochs), space, random_state=0, **cfg
    )
    with warnings.catch_warnings():
        # Boundary values and rejected steps are reported, not failures.
        warnings.simplefilter("ignore")
        return search.fit(X, y)


@_fuzz(25)
@given(
    problems(),
    valid_spaces,
    settings_.map(lambda cfg: {**cfg, "cv": min(cfg["cv"], 3)}),
    st.integers(1, 3),
)
def test_fuzzed_valid_search_fits_as_promised(problem, space, cfg, epochs):
    search = _fit(problem, space, cfg, epochs)

    _check_fitted(search, space, cfg, problem[2])


WD = "optimizer__weight_decay"


def _nan_in_X(problem, space):
    task, k, X, y = problem
    X = X.astype(np.float64)
    X[0, 0] = np.nan
    return (task, k, X, y), space


def _inf_in_y(problem, space):
    task, k, X, y = problem
    y = y.astype(np.float64)
    y[-1] = np.inf
    return (task, k, X, y), space


def _short_y(problem, space):
    task, k, X, y = problem
    return (task, k, X, y[:-1]), space


def _entry(name, value):
    return lambda problem, space: (problem, {**space, name: value})


# Each fault, put into a valid case, and the refusal it must get (before any
# training: the message names the value received and what to write instead).
FAULTS = {
    "NaN in X": (_nan_in_X, InvalidInputError, r"X contains NaN.*Impute"),
    "inf in y": (_inf_in_y, InvalidInputError, r"y contains NaN or infinity"),
    "y shorter than X": (_short_y, InvalidInputError, r"X has \d+, y has \d+"),
    "NaN bound": (
        _entry(WD, Real(float("nan"), 1.0)),
        InvalidHyperparameterError,
        r"must be finite numbers, got low=nan",
    ),
    "infinite bound": (
        _entry(WD, Real(1e-3, float("inf"))),
        InvalidHyperparameterError,
        r"must be finite numbers.*high=inf",
    ),
    "bounds reversed": (
        _entry(WD, Real(1.0, 1e-3)),
        InvalidHyperparameterError,
        r"need low < high, got low=1.0, high=0.001",
    ),
    "negative decay": (
        _entry(WD, Real(-1.0, 1.0)),
        InvalidHyperparameterError,
        r"must be >= 0.*\[-1.0, 1.0\]",
    ),
    "misspelt name": (
        _entry("optimizer__weight_decy", loguniform(1e-4, 1e-2)),
        InvalidHyperparameterError,
        r"did you mean 'optimizer__weight_decay'",
    ),
    "per-layer dropout": (
        _entry("module__dropout", PerLayer(uniform(0, 0.5))),
        InvalidHyperparameterError,
        r"apply to weight decay only",
    ),
    "dropout range past 1": (
        _entry("module__dropout", Tuned(uniform(0.5, 0.8))),
        InvalidHyperparameterError,
        r"must lie in \[0, 1\).*\[0.5, 1.3\]",
    ),
    "Tuned layer size": (
        _entry("module__n_out", Tuned(uniform(1, 3))),
        InvalidHyperparameterError,
        r"'module__n_out' is wrapped in Tuned",
    ),
}
# Faults in the search's own arguments.
ARGUMENT_FAULTS = {
    "negative outer rate": (
        {"hyper_optimizer__lr": -1.0},
        r"lr must be a positive number, got -1.0",
    ),
    "unknown schedule": (
        {"hyper_optimizer__schedule": "cosine"},
        r"schedule must be a torch.optim.lr_scheduler class",
    ),
    "old hyper_lr": ({"hyper_lr": 0.1}, r"'hyper_lr'.*hyper_optimizer__lr"),
    "unknown solver": ({"solver": "nope"}, r"'solver' parameter.*Got 'nope'"),
    "zero unroll steps": ({"unroll_steps": 0}, r"'unroll_steps'.*Got 0"),
}


@_fuzz(30)
@given(
    problems(),
    valid_spaces,
    settings_.map(lambda cfg: {**cfg, "cv": min(cfg["cv"], 3)}),
    st.sampled_from(sorted(FAULTS)),
)
def test_fuzzed_fault_is_refused_with_its_message(problem, space, cfg, fault):
    mutate, error, match = FAULTS[fault]
    problem, space = mutate(problem, space)

    with pytest.raises(error, match=match):
        _fit(problem, space, cfg, 2)


@_fuzz(15)
@given(
    problems(),
    valid_spaces,
    settings_.map(lambda cfg: {**cfg, "cv": min(cfg["cv"], 3)}),
    st.sampled_from(sorted(ARGUMENT_FAULTS)),
)
def test_fuzzed_bad_argument_is_refused_with_its_message(problem, space, cfg, fault):
    arguments, match = ARGUMENT_FAULTS[fault]

    with pytest.raises(InvalidParameterError, match=match):
        _fit(problem, space, {**cfg, **arguments}, 2)


@pytest.mark.slow
@_fuzz(300)
@given(problems(), valid_spaces, settings_, st.integers(1, 4))
def test_fuzzed_valid_search_many_cases(problem, space, cfg, epochs):
    search = _fit(problem, space, cfg, epochs)

    _check_fitted(search, space, cfg, problem[2])
