"""What a new user meets first: misspelt names, ranges a family cannot take,
a continuous target given to a classifier, a functional dropout, the types in
``best_params_`` (issue 20)."""

import numbers
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import loguniform, randint, uniform
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from skhypergrad import (
    HypergradSearchCV,
    InputNoise,
    PerClass,
    PerLayer,
    PerParameter,
    Sampled,
    Tuned,
)
from skhypergrad.exceptions import InvalidHyperparameterError, InvalidInputError
from skhypergrad.hyperparams import format_distribution
from skhypergrad.model_selection._space import (
    check_names,
    make_candidates,
    resolve_space,
)
from skhypergrad.net import split_estimator
from skhypergrad.utils._validation import InvalidParameterError

from .conftest import MLP

DECAY = loguniform(1e-5, 1e-1)


class CountTrainings(Callback):
    """Counts the trainings that began (none may, for a refused space)."""

    started = 0

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        type(self).started += 1


class FunctionalDropout(nn.Module):
    """Applies its rate with F.dropout in forward: no nn.Dropout layer to find."""

    def __init__(self, n_in=6, n_out=3, dropout=0.2):
        super().__init__()
        self.hidden = nn.Linear(n_in, 8)
        self.output = nn.Linear(8, n_out)
        self.dropout = dropout

    def forward(self, X):
        hidden = F.dropout(torch.relu(self.hidden(X)), self.dropout, self.training)
        return self.output(hidden)


class FixedDropout(FunctionalDropout):
    """Has an nn.Dropout layer, but with a fixed rate the argument does not set."""

    def __init__(self, n_in=6, n_out=3, dropout=0.2):
        super().__init__(n_in, n_out, dropout)
        self.drop = nn.Dropout(0.1)


class AnyOptions(torch.optim.SGD):
    """An optimiser that takes any keyword (it passes them on)."""

    def __init__(self, params, lr=0.01, **kwargs):
        super().__init__(params, lr=lr)


def _net(module=MLP, **kwargs):
    return NeuralNetClassifier(
        module,
        **{"module__n_in": 6, "module__n_out": 3, "max_epochs": 2, "verbose": 0},
        **kwargs,
    )


def _check(space, estimator):
    net, step = split_estimator(estimator)
    spaces = space if isinstance(space, list) else [space]
    check_names(spaces, estimator, net, step)


# ------------------------------------------------------------------ item 2
def test_misspelt_entry_is_refused_before_training_with_a_close_match(
    classification_data, make_classifier
):
    CountTrainings.started = 0
    net = make_classifier(callbacks=[CountTrainings()])
    space = {"optimizer__weight_decy": DECAY}
    search = HypergradSearchCV(net, space, cv=2, n_iter=2, random_state=0)

    with pytest.raises(
        InvalidHyperparameterError,
        match=r"'optimizer__weight_decy' \(did you mean 'optimizer__weight_decay'\?\)",
    ):
        search.fit(*classification_data)
    assert CountTrainings.started == 0


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("max_epoch", "max_epochs"),
        ("optimiser__weight_decay", "optimizer__weight_decay"),
        ("module__hiden", "module__hidden"),
        ("criterion__label_smothing", "criterion__label_smoothing"),
        ("iterator_train__shufle", "iterator_train__shuffle"),
        ("callbacks__nois__scale", "callbacks__noise__scale"),
        ("callbacks__noise__scal", "callbacks__noise__scale"),
    ],
)
def test_unknown_names_get_the_closest_known_one(make_classifier, name, suggestion):
    net = make_classifier(callbacks=[("noise", InputNoise())])

    with pytest.raises(
        InvalidHyperparameterError,
        match=rf"{name!r} \(did you mean {suggestion!r}\?\)",
    ):
        _check({name: [1, 2]}, net)


def test_every_unknown_name_is_listed_in_one_error(make_classifier):
    space = [{"max_epoch": [2, 4], "lr": DECAY}, {"module__hiden": [4, 8]}]

    with pytest.raises(InvalidHyperparameterError) as info:
        _check(space, make_classifier())

    message = str(info.value)
    assert "2 parameter(s)" in message
    assert "'max_epoch' (did you mean 'max_epochs'?)" in message
    assert "'module__hiden' (did you mean 'module__hidden'?)" in message
    assert "'lr'" not in message


def test_names_skorch_routes_are_accepted(make_classifier):
    net = make_classifier(callbacks=[("noise", InputNoise())])
    space = {
        "max_epochs": [2, 4],
        "lr": DECAY,
        "module__hidden": [4, 8],  # an argument of the module, not in get_params
        "module__dropout": Tuned(uniform(0.0, 0.5)),
        "optimizer__weight_decay": DECAY,
        "optimizer__betas": [(0.9, 0.99)],
        "optimizer__param_groups": [[("hidden.*", {"lr": 0.1})]],
        "criterion__label_smoothing": uniform(0.0, 0.2),
        "iterator_train__shuffle": [True, False],
        "callbacks__noise__scale": loguniform(1e-3, 1.0),
        "callbacks__print_log__floatfmt": [".3f"],
    }

    _check(space, net)


def test_an_optimizer_that_takes_any_keyword_takes_any_name(make_classifier):
    _check({"optimizer__anything": [1.0]}, make_classifier(optimizer=AnyOptions))


def test_a_pipeline_s_names_are_checked_with_their_step(make_classifier):
    pipe = Pipeline([("scale", StandardScaler()), ("net", make_classifier())])
    _check({"scale__with_mean": [True], "net__module__hidden": [4, 8]}, pipe)

    with pytest.raises(
        InvalidHyperparameterError,
        match=r"'optimizer__weight_decay' \(did you mean "
        r"'net__optimizer__weight_decay'\?\).*'scale__with_meen' \(did you mean "
        r"'scale__with_mean'\?\)",
    ):
        _check({"optimizer__weight_decay": DECAY, "scale__with_meen": [True]}, pipe)


def test_a_name_a_family_claims_keeps_the_family_s_message():
    # NLLLoss takes no label_smoothing: the family says which criterion to use.
    net = _net(criterion=nn.NLLLoss)
    with pytest.raises(InvalidHyperparameterError, match="criterion=torch.nn.Cross"):
        resolve_space(
            {"criterion__label_smoothing": uniform(0.0, 0.2)},
            net,
            None,
            estimator=net,
        )


# ------------------------------------------------------------------ item 3
@pytest.mark.parametrize("wrapper", [None, PerLayer, PerParameter])
def test_negative_weight_decay_is_refused_up_front(make_classifier, wrapper):
    decay = uniform(-0.01, 0.02)
    entry = decay if wrapper is None else wrapper(decay)
    shown = "uniform(-0.01, 0.02)"

    with pytest.raises(
        InvalidHyperparameterError,
        match=r"weight decay, which must be >= 0.*\[-0.01, 0.01\] \(from "
        + re.escape(shown if wrapper is None else f"{wrapper.__name__}({shown})"),
    ):
        resolve_space({"optimizer__weight_decay": entry}, make_classifier(), None)


@pytest.mark.parametrize(
    ("distribution", "expected"),
    [
        (loguniform(1e-6, 1e-1), "loguniform(1e-06, 0.1)"),
        (uniform(loc=0.5, scale=0.8), "uniform(loc=0.5, scale=0.8)"),
        (uniform(0.0, np.float64(0.6)), "uniform(0.0, 0.6)"),
        (randint(1, 5), "randint(1, 5)"),
        (Tuned(uniform(0, 0.5)), "Tuned(uniform(0, 0.5))"),
        (Sampled(loguniform(1e-3, 1.0)), "Sampled(loguniform(0.001, 1.0))"),
        (PerLayer(loguniform(1e-6, 1e-1)), "PerLayer(loguniform(1e-06, 0.1))"),
        ([np.float64(0.1), np.int64(2)], "[0.1, 2]"),
    ],
)
def test_distributions_are_shown_in_scipy_s_words(distribution, expected):
    assert format_distribution(distribution) == expected
    if isinstance(distribution, Tuned | Sampled | PerLayer):
        assert repr(distribution) == expected


@pytest.mark.parametrize(
    ("space", "shown"),
    [
        ({"criterion__label_smoothing": uniform(0.5, 0.8)}, "uniform(0.5, 0.8)"),
        ({"module__dropout": Tuned(uniform(loc=0.5, scale=0.8))}, "loc=0.5"),
        ({"lr": uniform(-0.1, 0.2)}, "uniform(-0.1, 0.2)"),
        ({"criterion__weight": loguniform(0.2, 5.0)}, "loguniform(0.2, 5.0)"),
        ({"callbacks__noise__scale": uniform(-1, 2)}, "uniform(-1, 2)"),
        ({"optimizer__weight_decay": PerClass(DECAY)}, "PerClass(loguniform("),
        ({"module__hidden": Tuned(randint(4, 8))}, "Tuned(randint(4, 8))"),
        ({"optimizer__weight_decay": Tuned([1e-3, 1e-2])}, "[0.001, 0.01]"),
    ],
)
def test_range_errors_show_the_range_as_given(make_classifier, space, shown):
    net = make_classifier(callbacks=[("noise", InputNoise())])

    with pytest.raises(InvalidHyperparameterError) as info:
        resolve_space(space, net, None, estimator=net)

    assert shown in str(info.value)
    assert "object at 0x" not in str(info.value)


# ------------------------------------------------------------------ item 4
class NeverSplit(KFold):
    """A splitter that must not be asked."""

    def split(self, X, y=None, groups=None):
        raise AssertionError("the splitter was asked to split")


def test_classifier_given_a_continuous_target_gets_sklearn_s_words(
    classification_data, make_classifier
):
    X, y = classification_data
    y = y + 0.5 * np.random.RandomState(0).randn(len(y))
    search = HypergradSearchCV(make_classifier(), {"lr": DECAY}, cv=NeverSplit(2))

    with pytest.raises(
        InvalidInputError,
        match=r"^Unknown label type: continuous\. .*NeuralNetClassifier was given a y "
        r"of dtype float64 with 120 distinct values.*NeuralNetRegressor",
    ):
        search.fit(X, y)


# ------------------------------------------------------------------ item 5
@pytest.mark.parametrize(
    ("module", "found"),
    [
        (FunctionalDropout, "the module has no torch.nn.Dropout layer"),
        (FixedDropout, r"its torch.nn.Dropout layers \['drop'\] keep their rate"),
    ],
)
def test_tuned_dropout_without_a_dropout_layer_says_what_to_write(module, found):
    net = _net(module, criterion=nn.CrossEntropyLoss)
    space = {"module__dropout": Tuned(uniform(0.0, 0.5))}

    with pytest.raises(InvalidHyperparameterError) as info:
        resolve_space(space, net, None, estimator=net)

    message = str(info.value)
    assert re.search(found, message)
    assert "Only torch.nn.Dropout layers" in message
    assert "F.dropout(x, self.dropout)" in message
    assert "self.drop = nn.Dropout(dropout)" in message
    assert "Sampled(...)" in message


# ------------------------------------------------------------------ item 6
def _python_numbers(params):
    for name, value in params.items():
        if isinstance(value, np.ndarray):
            continue
        assert not isinstance(value, np.generic), (name, value)
        assert isinstance(value, numbers.Number), (name, value)


def test_candidates_hold_python_numbers(make_classifier):
    net = make_classifier()
    grid = {
        "lr": list(np.logspace(-3, -2, 3)),
        "module__hidden": list(np.array([4, 8])),
    }
    drawn = {**grid, "batch_size": randint(8, 32), "max_epochs": Sampled([2, 3])}
    for space in (grid, drawn):
        candidates = make_candidates(resolve_space(space, net, None), 4, 0)
        for candidate in candidates:
            _python_numbers(candidate.params)
            assert type(candidate.params["lr"]) is float
            assert type(candidate.params["module__hidden"]) is int


def test_best_params_hold_python_numbers(classification_data, make_classifier):
    space = {
        "optimizer__weight_decay": Sampled(DECAY),  # drawn from scipy
        "module__hidden": list(np.array([4, 8])),  # numpy grid
        "criterion__label_smoothing": uniform(0.0, 0.2),  # tuned
    }
    search = HypergradSearchCV(
        make_classifier(max_epochs=3), space, cv=2, n_iter=2, random_state=0
    ).fit(*classification_data)

    _python_numbers(search.best_params_)
    assert type(search.best_params_["optimizer__weight_decay"]) is float
    assert type(search.best_params_["module__hidden"]) is int
    assert type(search.best_params_["criterion__label_smoothing"]) is float
    for params in search.cv_results_["params"]:
        _python_numbers(params)
    assert "np." not in repr(search.best_params_)


# ------------------------------------------------- first contact, second round
def test_param_grid_names_param_distributions(classification_data, make_classifier):
    X, y = classification_data
    search = HypergradSearchCV(
        make_classifier(), param_grid={"optimizer__weight_decay": [1e-3]}
    )
    with pytest.raises(
        InvalidParameterError, match="param_distributions \\(GridSearch"
    ):
        search.fit(X, y)


def test_a_float_range_on_an_integer_argument_names_randint(
    classification_data, make_classifier
):
    X, y = classification_data
    search = HypergradSearchCV(make_classifier(), {"module__hidden": uniform(16, 64)})
    with pytest.raises(InvalidHyperparameterError, match="randint\\(16, 81\\)") as info:
        search.fit(X, y)
    assert "'module__hidden' is an integer (16 now)" in str(info.value)


class FunctionalDropout(torch.nn.Module):
    """Dropout applied in forward (F.dropout), with no nn.Dropout layer."""

    def __init__(self, rate=0.0):
        super().__init__()
        self.rate = rate
        self.hidden = torch.nn.Linear(6, 8)
        self.output = torch.nn.Linear(8, 3)

    def forward(self, X):
        hidden = torch.relu(self.hidden(X))
        return self.output(F.dropout(hidden, self.rate, self.training))


def test_a_range_no_family_can_tune_says_so_and_names_sampled(classification_data):
    X, y = classification_data
    net = NeuralNetClassifier(
        FunctionalDropout,
        criterion=nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    )
    search = HypergradSearchCV(net, {"module__rate": uniform(0.0, 0.5)}, n_iter=2, cv=2)
    with pytest.warns(UserWarning, match="no hyperparameter family can tune it") as w:
        search.fit(X, y)
    message = str(w[0].message)
    assert "F.dropout" in message  # the dropout family's own reason
    assert "skhypergrad.Sampled(uniform(0.0, 0.5))" in message
    assert len(search.cv_results_["params"]) == 2  # drawn, as it said

    # Sampled draws it without a word.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HypergradSearchCV(
            net, {"module__rate": Sampled(uniform(0.0, 0.5))}, n_iter=2, cv=2
        ).fit(X, y)
