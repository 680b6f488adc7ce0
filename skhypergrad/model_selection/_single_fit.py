"""One training in total: tune while fitting, predict with the net trained.

For data too large for cross-validated training, :class:`HypergradClassifier`
and :class:`HypergradRegressor` hold out a validation fraction of the rows
(as scikit-learn's estimators with ``early_stopping`` and
``validation_fraction`` do), tune the continuous hyperparameters on it by
hypergradients during their single ``fit``, and predict with the network that
this training produced: no cross-validation and no refit.

They are :class:`HypergradSearchCV` with one shuffled train / validation split
and the split's trained estimator kept as ``best_estimator_``, so everything
else (casting and label encoding at the boundary, the path, ``cv_results_``
with its single row, scoring, progress) is the search's own.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

from ..callbacks import SearchCallback
from ..exceptions import (
    AllFitsFailedError,
    InvalidHyperparameterError,
    InvalidInputError,
    UnsupportedEstimatorError,
)
from ..net import is_classifier_net, split_estimator
from ..utils._validation import Interval
from ._search import HypergradSearchCV

# HypergradSearchCV's parameters that a single training has no use for.
_SEARCH_ONLY = (
    "n_iter",
    "n_jobs",
    "refit",
    "cv",
    "pre_dispatch",
    "error_score",
    "return_train_score",
    "n_starts",
)


class _SingleFit(HypergradSearchCV):
    """One train / validation split, tuned while it trains; no refit."""

    # Fixed for a single training; class attributes, not parameters.
    n_iter = 1
    n_jobs = None
    refit = True  # "refit" keeps the split's trained estimator (_refit below)
    cv = None
    pre_dispatch = "2*n_jobs"
    error_score = "raise"
    return_train_score = False
    n_starts = 1
    _keeps_split_estimators = True
    _net_kind = None  # "classifier" or "regressor", set by the subclasses

    _parameter_constraints = {
        **{
            k: v
            for k, v in HypergradSearchCV._parameter_constraints.items()
            if k not in _SEARCH_ONLY
        },
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        validation_fraction=0.1,
        scoring=None,
        verbose=0,
        random_state=None,
        solver="gauss-newton",
        hyper_optimizer=torch.optim.Adam,
        rescore=True,
        unroll_steps=1,
        cast_inputs=True,
        **kwargs,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.verbose = verbose
        self._store_hyper_options(
            random_state, solver, hyper_optimizer, rescore, unroll_steps,
            cast_inputs, kwargs,
        )  # fmt: skip

    def _check_space(self, subspaces) -> None:
        name = type(self).__name__
        net, _ = split_estimator(self.estimator)
        kind = "classifier" if is_classifier_net(net) else "regressor"
        if kind != self._net_kind:
            raise UnsupportedEstimatorError(
                f"{name} wraps a skorch {self._net_kind} (NeuralNet"
                f"{self._net_kind.capitalize()}), but got a {kind}: "
                f"{type(net).__name__}. Use Hypergrad{kind.capitalize()} for it."
            )
        if len(subspaces) > 1:
            raise InvalidHyperparameterError(
                f"{name} trains once, so param_distributions must be one dict; got "
                f"a list of {len(subspaces)}. Search several spaces with "
                "HypergradSearchCV."
            )
        (space,) = subspaces
        outer = dict(space.outer)
        if space.epochs_name is not None:
            outer[space.epochs_name] = list(space.epochs)
        if outer:
            key = next(iter(outer))
            raise InvalidHyperparameterError(
                f"{name} trains once and tunes continuous ranges only, but "
                f"{key!r} is searched over {outer[key]!r} (a list, a discrete "
                "distribution or Sampled). Fix it on the net (set_params), give a "
                "continuous range to tune it, or search it with "
                "HypergradSearchCV, which trains once per value."
            )
        if not space.tuned:
            raise InvalidHyperparameterError(
                f"{name} needs at least one continuous range to tune, got "
                f"{self.param_distributions!r}. Give e.g. "
                "{'optimizer__weight_decay': loguniform(1e-6, 1e-1)}."
            )

    def _make_splits(self, X, y, split_params):
        if split_params.get("groups") is not None:
            raise InvalidInputError(
                f"{type(self).__name__} holds out a random validation_fraction of "
                "the rows and takes no groups. Split by group with "
                "HypergradSearchCV(cv=GroupShuffleSplit(1, ...)) instead."
            )
        n_val = int(np.ceil(self.validation_fraction * len(X)))
        if n_val < 1 or len(X) - n_val < 1:
            raise InvalidInputError(
                f"validation_fraction={self.validation_fraction} of n_samples = "
                f"{len(X)} leaves no row to train or to validate on. Use more data "
                "or a fraction between them."
            )
        splitter = ShuffleSplit(
            n_splits=1,
            test_size=self.validation_fraction,
            random_state=self.random_state,
        )
        if self._net_kind == "classifier" and y is not None and np.ndim(y) == 1:
            counts = np.unique(y, return_counts=True)[1]
            if counts.min() >= 2 and n_val >= len(counts):
                splitter = StratifiedShuffleSplit(
                    n_splits=1,
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                )
        splits = list(splitter.split(X, y))
        self.n_splits_ = 1
        return splits

    def _refit(self, X, y, net_params, step, rows):
        estimators = rows[self.best_index_].estimators
        if not estimators:  # error_score="raise": not reached in practice
            raise AllFitsFailedError(f"{type(self).__name__}: the training failed.")
        self.best_estimator_ = estimators[0]
        _keep_reported_callbacks(self.best_estimator_, self.best_params_, step)
        self.refit_time_ = 0.0


def _keep_reported_callbacks(estimator, best_params, step) -> None:
    """Give the kept net's callbacks the reported values, so that its
    parameters are ``best_params_`` and ``clone(best_estimator_).fit(X, y)``
    works: skhypergrad's callbacks get their values for every row of ``X``
    back (a split kept its own rows' part), and every reported
    ``callbacks__<name>__<param>`` is set on its callback (a net kept with
    ``rescore=False`` trained with the moving values). Only callbacks: setting
    a module or optimizer parameter would re-initialise the trained net."""
    net = estimator.steps[-1][1] if step is not None else estimator
    callbacks = dict(net.callbacks_)
    for callback in callbacks.values():
        if isinstance(callback, SearchCallback):
            callback.restore_rows()
    prefix = "" if step is None else f"{step}__"
    for key, value in best_params.items():
        name, _, param = key.removeprefix(prefix).partition("__")[2].partition("__")
        if key.removeprefix(prefix).startswith("callbacks__") and name in callbacks:
            callbacks[name].set_params(**{param: value})


_DOC = """{summary}

    Holds out ``validation_fraction`` of the rows ({split}), trains the
    skorch net on the rest while its continuous hyperparameters follow
    their hypergradients on the held-out rows, then (``rescore=True``) trains
    it again from the same initialisation with the tuned values fixed, and,
    where every tuned entry is a scalar, with the starting values fixed; it
    predicts with whichever scores higher on the held-out rows (``scoring``):
    what it reports (``best_params_``, ``best_score_``) is what it predicts
    with. No cross-validation and no refit on all the rows: two or three
    plain trainings, for data too large to train ``cv`` times.
    It is :class:`HypergradSearchCV` with one split whose trained estimator
    is kept.

    Parameters
    ----------
    estimator : skorch.{net} or Pipeline ending in one
        The net to train (in a Pipeline, name its entries ``<step>__<param>``).
    param_distributions : dict
        Continuous ranges only (weight decay, dropout rates, label smoothing,
        input noise..., see :class:`HypergradSearchCV`); a list, a discrete
        distribution or ``Sampled`` is refused: fix those on the net or search
        them with ``HypergradSearchCV``.
    validation_fraction : float, default=0.1
        Share of the rows held out to tune on (shuffled{stratified}).
    scoring : str, callable or None, default=None
        Scores the held-out rows (``best_score_``), as in ``GridSearchCV``.
    verbose : int, default=0
        As in :class:`HypergradSearchCV`.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the net and the hyper-steps' minibatches.
    solver, hyper_optimizer, rescore, unroll_steps, cast_inputs
        As in :class:`HypergradSearchCV`.
    **kwargs
        ``hyper_optimizer__<name>`` arguments, as in :class:`HypergradSearchCV`.

    Attributes
    ----------
    best_estimator_ : estimator
        The net (or Pipeline) trained during ``fit`` with ``best_params_``
        fixed (with ``rescore=False``: the tuning net itself, whose values
        moved); predictions use it.
    best_params_ : dict
        The tuned values (averaged over the last quarter of the hyper-steps,
        or the starting values where those scored higher), ready for
        ``set_params`` of a fresh net.
    best_score_ : float
        Score of ``best_estimator_`` on the held-out rows.
    path_ : dict of lists
        Values, validation loss and hypergradient norm per hyper-step.
    cv_results_ : dict of ndarray
        :class:`HypergradSearchCV`'s results, with one row and one split.
    n_splits_ : int
        Always 1.
    classes_ : ndarray of shape (n_classes,)
        Class labels, as given to ``fit`` (classifier only).
    n_features_in_ : int

    See Also
    --------
    HypergradSearchCV : Cross-validated search over the whole grid.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import {data}
    >>> from skorch import {net}
    >>> from skhypergrad.model_selection import {name}
    >>> X, y = {load}
    >>> module = torch.nn.Sequential(
    ...     torch.nn.Linear({n_in}, 32), torch.nn.ReLU(), torch.nn.Linear(32, {n_out}))
    >>> net = {net}(module, {criterion}max_epochs=12, lr=0.01,
    ...     optimizer=torch.optim.Adam, train_split=None, verbose=0)
    >>> model = {name}(net, {{"optimizer__weight_decay": loguniform(1e-6, 1e-1)}},
    ...     validation_fraction=0.2, random_state=0).fit(X, y)
    >>> model.n_splits_, len(model.cv_results_["params"])
    (1, 1)
    >>> 1e-6 <= model.best_params_["optimizer__weight_decay"] <= 1e-1
    True
    >>> {check}
    True
"""


class HypergradClassifier(_SingleFit):
    _net_kind = "classifier"


class HypergradRegressor(_SingleFit):
    _net_kind = "regressor"


HypergradClassifier.__doc__ = _DOC.format(
    summary="A skorch classifier whose hyperparameters are tuned during its one fit.",
    split="stratified by class where every class has two rows or more",
    stratified=", stratified by class",
    net="NeuralNetClassifier",
    name="HypergradClassifier",
    data="load_digits",
    load="load_digits(return_X_y=True)",
    n_in=64,
    n_out=10,
    criterion="criterion=torch.nn.CrossEntropyLoss, ",
    check="bool((model.predict(X) == y).mean() > 0.9)",
)
HypergradRegressor.__doc__ = _DOC.format(
    summary="A skorch regressor whose hyperparameters are tuned during its one fit.",
    split="shuffled",
    stratified="",
    net="NeuralNetRegressor",
    name="HypergradRegressor",
    data="load_diabetes",
    load=(
        "load_diabetes(return_X_y=True)\n"
        "    >>> X = (X - X.mean(0)) / X.std(0); y = (y - y.mean()) / y.std()"
    ),
    n_in=10,
    n_out=1,
    criterion="",
    check="bool(model.score(X, y) > 0.3)",
)

__all__ = ["HypergradClassifier", "HypergradRegressor"]
