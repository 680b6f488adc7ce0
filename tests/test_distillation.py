"""DatasetDistiller: resampler conventions, inputs, errors, and its gradient."""

import doctest
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import (
    check_dont_overwrite_parameters,
    check_estimators_overwrite_params,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from skhypergrad import DatasetDistiller, InvalidParameterError
from skhypergrad.distillation import _distill
from skhypergrad.distillation._distill import _losses
from skhypergrad.exceptions import InvalidInputError, UnsupportedEstimatorError
from skhypergrad.hypergrad import unrolled_hypergradient


class Tiny(nn.Module):
    """One hidden layer; a lazy input layer fits any number of features."""

    def __init__(self, n_classes=3, hidden=8):
        super().__init__()
        self.hidden = nn.LazyLinear(hidden)
        self.out = nn.Linear(hidden, n_classes)

    def forward(self, X):
        return self.out(torch.relu(self.hidden(X)))


def _net(**kwargs):
    return NeuralNetClassifier(Tiny, criterion=nn.CrossEntropyLoss, verbose=0, **kwargs)


def _distiller(**kwargs):
    params = {"max_iter": 4, "inner_steps": 3, "random_state": 0, **kwargs}
    return DatasetDistiller(_net(), **params)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=60, centers=3, n_features=4, random_state=0)
    return X, y


# --- conventions --------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
        check_dont_overwrite_parameters,
        check_estimators_overwrite_params,
    ],
    ids=lambda c: c.__name__,
)
def test_distiller_passes_sklearn_parameter_checks(check):
    check("DatasetDistiller", _distiller())


def test_distiller_clone_keeps_parameters():
    distiller = _distiller(n_per_class=2, lr=0.05)
    copy = clone(distiller)
    assert copy.get_params()["n_per_class"] == 2
    assert copy.get_params()["lr"] == 0.05
    assert copy.set_params(net__lr=0.5).net.lr == 0.5


def test_distiller_pickles_after_fit(blobs):
    distiller = _distiller().fit(*blobs)
    loaded = pickle.loads(pickle.dumps(distiller))
    np.testing.assert_array_equal(loaded.X_distilled_, distiller.X_distilled_)
    np.testing.assert_array_equal(loaded.y_distilled_, distiller.y_distilled_)


# --- what fit_resample returns ------------------------------------------------


@pytest.mark.parametrize("n_per_class", [1, 3])
def test_fit_resample_returns_k_rows_per_class(blobs, n_per_class):
    X, y = blobs
    distiller = _distiller(n_per_class=n_per_class)
    X_small, y_small = distiller.fit_resample(X, y)
    assert X_small.shape == (3 * n_per_class, 4)
    assert X_small.dtype == np.float64
    np.testing.assert_array_equal(y_small, np.repeat([0, 1, 2], n_per_class))
    np.testing.assert_array_equal(distiller.classes_, [0, 1, 2])
    assert distiller.n_features_in_ == 4
    assert distiller.n_iter_ == 4
    assert distiller.loss_path_.shape == (4,)
    assert np.isfinite(distiller.loss_path_).all()
    assert distiller.inner_lr_ > 0


def test_fit_resample_keeps_string_labels(blobs):
    X, y = blobs
    names = np.array(["cat", "dog", "emu"])[y]
    X_small, y_small = _distiller().fit_resample(X, names)
    assert y_small.tolist() == ["cat", "dog", "emu"]
    assert X_small.shape == (3, 4)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64)],
)
def test_fit_resample_output_dtype_follows_input(blobs, dtype, expected):
    X, y = blobs
    X_small, _ = _distiller().fit_resample((X * 10).astype(dtype), y)
    assert X_small.dtype == expected


def test_fit_resample_records_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    distiller = _distiller().fit(frame, y)
    assert distiller.feature_names_in_.tolist() == ["a", "b", "c", "d"]


def test_same_random_state_gives_same_rows(blobs):
    first = _distiller(random_state=3).fit(*blobs)
    second = _distiller(random_state=3).fit(*blobs)
    other = _distiller(random_state=4).fit(*blobs)
    np.testing.assert_array_equal(first.X_distilled_, second.X_distilled_)
    np.testing.assert_array_equal(first.loss_path_, second.loss_path_)
    assert not np.array_equal(first.X_distilled_, other.X_distilled_)


class TinyDropout(Tiny):
    """Tiny with dropout: the unrolled training draws masks."""

    def forward(self, X):
        return self.out(nn.functional.dropout(torch.relu(self.hidden(X)), 0.5))


def test_same_random_state_gives_same_rows_whatever_torch_drew_before(blobs):
    """random_state alone fixes the rows, dropout masks included: torch's
    global generator (which a new process seeds at random) is not read."""
    fits = []
    for torch_seed in (1, 2):
        torch.manual_seed(torch_seed)
        net = NeuralNetClassifier(TinyDropout, criterion=nn.CrossEntropyLoss, verbose=0)
        distiller = DatasetDistiller(net, max_iter=4, inner_steps=3, random_state=3)
        fits.append(distiller.fit(*blobs))
    np.testing.assert_array_equal(fits[0].X_distilled_, fits[1].X_distilled_)
    np.testing.assert_array_equal(fits[0].loss_path_, fits[1].loss_path_)


def test_fixed_inner_lr_is_not_learned(blobs):
    distiller = _distiller(learn_inner_lr=False, inner_lr=0.3).fit(*blobs)
    assert distiller.inner_lr_ == pytest.approx(0.3)


def test_max_iter_zero_returns_real_rows(blobs):
    X, y = blobs
    X_small, y_small = _distiller(max_iter=0).fit_resample(X, y)
    for row, label in zip(X_small, y_small):  # through float32: not bit-exact
        assert (np.all(np.isclose(X, row, rtol=1e-6), axis=1) & (y == label)).any()


def test_distillation_lowers_the_real_loss(blobs):
    distiller = _distiller(max_iter=60, lr=0.05).fit(*blobs)
    path = distiller.loss_path_
    assert path[-10:].mean() < path[:10].mean()


def test_module_given_as_instance_is_reinitialised(blobs):
    module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    net = NeuralNetClassifier(module, criterion=nn.CrossEntropyLoss, verbose=0)
    distiller = DatasetDistiller(net, max_iter=3, inner_steps=2, random_state=0)
    X_small, _ = distiller.fit_resample(*blobs)
    assert X_small.shape == (3, 4)


def test_docstring_example_runs():
    result = doctest.testmod(_distill, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- errors -------------------------------------------------------------------


def test_error_for_a_net_that_is_not_a_skorch_classifier(blobs):
    net = NeuralNetRegressor(Tiny, verbose=0)
    with pytest.raises(UnsupportedEstimatorError, match="skorch classifier.*got"):
        DatasetDistiller(net).fit(*blobs)


def test_error_for_an_invalid_parameter(blobs):
    with pytest.raises(InvalidParameterError, match="n_per_class.*Got 0"):
        _distiller(n_per_class=0).fit(*blobs)


def test_error_without_labels(blobs):
    with pytest.raises(InvalidInputError, match="got y=None"):
        _distiller().fit(blobs[0], None)


def test_error_for_continuous_targets(blobs):
    X, _ = blobs
    with pytest.raises(InvalidInputError, match="looks 'continuous'"):
        _distiller().fit(X, np.linspace(0, 1, len(X)))


def test_error_for_a_single_class(blobs):
    X, _ = blobs
    with pytest.raises(InvalidInputError, match="one class only"):
        _distiller().fit(X, np.zeros(len(X), dtype=int))


def test_error_when_a_class_has_too_few_rows(blobs):
    X, y = blobs
    y = y.copy()
    y[0] = 7  # class 7 has one row
    with pytest.raises(InvalidInputError, match="class 7 has 1"):
        DatasetDistiller(_net(module__n_classes=4), n_per_class=2).fit(X, y)


def test_error_for_nan_in_X(blobs):
    X, y = blobs
    X = X.copy()
    X[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN or infinity"):
        _distiller().fit(X, y)


def test_error_for_inconsistent_lengths(blobs):
    X, y = blobs
    with pytest.raises(InvalidInputError, match="X has 60, y has 59"):
        _distiller().fit(X, y[:-1])


def test_error_when_module_outputs_do_not_match_classes(blobs):
    X, y = blobs
    distiller = DatasetDistiller(_net(module__n_classes=5), max_iter=1)
    with pytest.raises(InvalidInputError, match="returns 5 outputs.*3 classes"):
        distiller.fit(X, y)


# --- the gradient -------------------------------------------------------------


def _tiny_problem(n_steps):
    """A smooth float64 problem small enough for central differences."""
    gen = torch.Generator().manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    params = {
        name: torch.randn(p.shape, generator=gen, dtype=torch.float64)
        for name, p in module.named_parameters()
    }
    X_syn = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    X_real = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    y_real = torch.randint(0, 2, (10,), generator=gen)
    y_syn = torch.tensor([0, 1])

    def loss(X, raw_lr):
        """The oracle: plain gradient steps on the rows, no graph kept."""
        weights = dict(params)
        for _ in range(n_steps):
            w = {n: t.detach().requires_grad_() for n, t in weights.items()}
            out = functional_call(module, w, (X,))
            grads = torch.autograd.grad(F.cross_entropy(out, y_syn), list(w.values()))
            weights = {n: w[n] - raw_lr.exp() * g for n, g in zip(w, grads)}
        return F.cross_entropy(functional_call(module, weights, (X_real,)), y_real)

    def hypergradient(rows, raw_lr):
        """The distiller's gradient: its losses, unrolled by the engine."""
        net = SimpleNamespace(
            module_=module, get_loss=lambda out, y, training: F.cross_entropy(out, y)
        )
        inner, outer = _losses(net, list(params), {}, rows, y_syn, (X_real, y_real))
        return unrolled_hypergradient(
            inner,
            outer,
            list(params.values()),
            [rows, raw_lr],
            lambda _: {"lr": [raw_lr.exp()] * len(params)},
            n_steps=n_steps,
            inner_depends=True,
        )

    return loss, hypergradient, X_syn


# One step: the rows reach the real loss only through the first step's
# gradient, which the engine differentiates only with inner_depends=True.
@pytest.mark.parametrize("n_steps", [1, 4])
def test_gradient_in_synthetic_rows_matches_finite_differences(n_steps):
    loss, hypergradient, X_syn = _tiny_problem(n_steps)
    raw_lr = torch.tensor(np.log(0.5), dtype=torch.float64, requires_grad=True)
    rows = X_syn.clone().requires_grad_()
    grad_rows, grad_lr = hypergradient(rows, raw_lr)
    eps = 1e-6
    numeric = torch.zeros_like(X_syn)
    for index in np.ndindex(*X_syn.shape):
        up, down = X_syn.clone(), X_syn.clone()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (loss(up, raw_lr) - loss(down, raw_lr)).detach() / (2 * eps)
    torch.testing.assert_close(grad_rows, numeric, rtol=1e-5, atol=1e-8)
    lr_up = loss(X_syn, raw_lr.detach() + eps).detach()
    lr_down = loss(X_syn, raw_lr.detach() - eps).detach()
    torch.testing.assert_close(
        grad_lr, (lr_up - lr_down) / (2 * eps), rtol=1e-5, atol=1e-8
    )


# --- imbalanced-learn ---------------------------------------------------------


def test_distiller_runs_inside_an_imblearn_pipeline(blobs):
    pipeline_module = pytest.importorskip("imblearn.pipeline")
    X, y = blobs
    clf = _net(max_epochs=5, lr=0.1, train_split=None)
    pipe = pipeline_module.Pipeline(
        [("distill", _distiller(n_per_class=2)), ("net", clf)]
    )
    pipe.fit(X.astype(np.float32), y)
    assert pipe.named_steps["distill"].X_distilled_.shape == (6, 4)
    assert len(pipe.named_steps["net"].history) == 5
    # Samplers only act in fit: prediction sees every real row.
    assert pipe.predict(X.astype(np.float32)).shape == (60,)
