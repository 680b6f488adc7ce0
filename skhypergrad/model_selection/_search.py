"""HypergradSearchCV: a drop-in for RandomizedSearchCV over continuous ranges."""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ..callbacks import WeightDecayPenalty
from ..exceptions import (
    HyperstepSkippedWarning,
    InvalidInputError,
    ParallelWorkerError,
)
from ..net import cast_X, cast_y, split_estimator
from ..utils._random import generator, spawn_seeds
from ..utils._validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    as_array,
    check_consistent_length,
    check_features,
    check_finite,
    validate_params,
)
from ._results import build_cv_results, select_best
from ._runner import Settings, run_start
from ._space import resolve_space


def _estimator_has(attr):
    def check(self):
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
            return True
        getattr(self.estimator, attr)
        return True

    return check


class HypergradSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Tune continuous hyperparameters of a skorch network by hypergradients.

    Each CV split trains one network; every ``hyper_interval`` epochs after a
    warm-up, the gradient of the validation loss with respect to the
    hyperparameters is computed by implicit differentiation, averaged over the
    splits, and one shared set of hyperparameters takes an optimiser step. The
    cost is about one training per split instead of one per candidate.

    Parameters
    ----------
    estimator : skorch.NeuralNet or Pipeline
        A skorch ``NeuralNetClassifier`` / ``NeuralNetRegressor`` / ``NeuralNet``,
        or a ``Pipeline`` whose last step is one.
    param_distributions : dict
        Name -> range. Ranges are ``skhypergrad.Real(low, high, log=...)``,
        frozen ``scipy.stats.loguniform`` / ``uniform``, or ``PerLayer(range)``
        / ``PerParameter(range)`` for vector weight decay. Names:
        ``optimizer__weight_decay`` (an L2 term of the loss, as torch's SGD and
        Adam apply it) and ``module__<arg>`` for a module argument that sets
        ``torch.nn.Dropout`` rates (relaxed to a concrete distribution during
        the search). Prefix them with the net's step name in a Pipeline.
    scoring : str, callable, list, tuple or dict, default=None
        As in ``GridSearchCV``; None uses the estimator's ``score``.
    n_jobs : int, default=None
        Starting points run in parallel through joblib (the active
        ``joblib.parallel_config`` backend decides where).
    refit : bool, str or callable, default=True
        Retrain ``best_estimator_`` on all the data with the best values. With
        ``True`` the best starting point is the one with the lowest mean
        validation loss; a metric name or a callable choose as in
        ``GridSearchCV``.
    cv : int, cross-validation generator or iterable, default=None
        None means 5-fold (stratified for classifiers).
    verbose : int, default=0
        1 logs each hyper-step through the ``"skhypergrad"`` logger; 2 also
        lets the networks print their epoch tables.
    random_state : int, RandomState instance or None, default=None
        Seeds the networks, minibatches, starting points and solver. The same
        value repeats a CPU run exactly.
    error_score : "raise" or float, default=np.nan
        Score given to a split whose training fails; "raise" re-raises.
    return_train_score : bool, default=False
        Also score each split on its training part.
    method : {"cg", "neumann", "identity", "exact"}, default="cg"
        How the inverse Hessian-vector product is approximated.
    solver_max_iter : int, default=10
        CG iterations or Neumann terms per hypergradient.
    solver_damping : float, default=1e-3
        Multiple of the identity added to the training-loss Hessian.
    solver_alpha : float or "auto", default="auto"
        Neumann step; "auto" uses 1 / (estimated top Hessian eigenvalue).
    hyper_optimizer : {"adam", "sgd"}, default="adam"
        Optimiser of the raw (log / logit) hyperparameters.
    hyper_betas : tuple of two floats in [0, 1), default=(0.0, 0.9)
        Adam's decay rates of the first and second moments of the
        hypergradient (ignored by "sgd"). A low first one (less momentum)
        follows the lag between a hyperparameter and the weights' response
        without overshooting; the default is RMSprop-like.
    hyper_lr : float, default=0.5
        Its (first) learning rate, in raw units: with Adam a step changes a
        log-scaled value by up to a factor ``exp(hyper_lr)``.
    hyper_lr_schedule : {"constant", "cosine"}, default="cosine"
        "cosine" lowers the hyper learning rate from ``hyper_lr`` to
        ``hyper_lr / 10`` along a half cosine over the planned hyper-steps:
        large moves first, small ones while ``best_params_`` is averaged.
    hyper_interval : int, default=1
        Epochs of training between hyper-steps.
    warmup : int or "auto", default="auto"
        Epochs before the first hyper-step; "auto" is a third of ``max_epochs``.
    hyper_batch_size : int, default=256
        Training samples in the Hessian; validation gradients use up to twice
        as many validation samples.
    n_starts : int, default=1
        Starting points: the first is the middle of every range, the others are
        drawn from the ranges.
    average_last : float, default=0.25
        Fraction of the last accepted hyper-steps whose raw values are averaged
        into ``best_params_`` (steadier than the last value).
    cast_inputs : bool, default=True
        Cast float64 / integer ``X`` to float32 and classifier ``y`` to int64
        (regression ``y`` to a float32 column) before the network sees them, in
        ``fit`` and in every prediction method, as skorch expects.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        One row per starting point, with ``GridSearchCV``'s keys plus
        ``mean_test_loss``, ``std_test_loss``, ``split<k>_test_loss``,
        ``rank_test_loss``, ``n_hypersteps`` and ``n_skipped_hypersteps``.
        Loads into ``pandas.DataFrame``.
    best_estimator_ : estimator
        Refit on all the data with ``best_params_`` (when ``refit``).
    best_score_ : float
        Mean cross-validated score of the best starting point.
    best_params_ : dict
        Tuned values: floats for scalars, numpy arrays for ``PerLayer`` /
        ``PerParameter``; never NaN.
    best_index_ : int
        Row of ``cv_results_`` of the best starting point.
    scorer_ : callable or dict
    n_splits_ : int
    refit_time_ : float
    multimetric_ : bool
    path_ : dict of lists
        Per hyper-step of the best start: ``epoch``, ``hyper_lr`` (the step's
        learning rate), ``val_loss``, ``hypergrad_norm``, ``solver_iter``,
        ``skipped``, ``reason``, ``at_bound`` and each hyperparameter's
        value (a geometric mean for vectors).
    paths_ : list of dict
        ``path_`` of every starting point.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int

    See Also
    --------
    sklearn.model_selection.GridSearchCV : exhaustive search, also discrete.
    sklearn.model_selection.RandomizedSearchCV : random candidates.

    Notes
    -----
    Scores in ``cv_results_`` are those of the split networks at the end of the
    search, which trained while the values moved; ``best_estimator_`` is
    trained from scratch with the final values.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scipy.stats import loguniform
    >>> from skorch import NeuralNetRegressor
    >>> from skhypergrad import HypergradSearchCV
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(120, 5).astype(np.float32)
    >>> y = X @ rng.randn(5) + 0.1 * rng.randn(120)
    >>> net = NeuralNetRegressor(torch.nn.Linear(5, 1), max_epochs=15, lr=0.05,
    ...                          optimizer=torch.optim.Adam, verbose=0)
    >>> search = HypergradSearchCV(net, {"optimizer__weight_decay":
    ...     loguniform(1e-5, 1e-1)}, cv=3, random_state=0).fit(X, y)
    >>> sorted(search.best_params_)
    ['optimizer__weight_decay']
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"])],
        "param_distributions": [dict],
        "scoring": [None, str, callable, list, tuple, dict],
        "n_jobs": [None, numbers.Integral],
        "refit": ["boolean", str, callable],
        "cv": ["cv_object"],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "error_score": [StrOptions({"raise"}), numbers.Real],
        "return_train_score": ["boolean"],
        "method": [StrOptions({"cg", "neumann", "identity", "exact"})],
        "solver_max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "solver_damping": [Interval(numbers.Real, 0, None, closed="left")],
        "solver_alpha": [
            StrOptions({"auto"}),
            Interval(numbers.Real, 0, None, closed="neither"),
        ],
        "hyper_optimizer": [StrOptions({"adam", "sgd"})],
        "hyper_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "hyper_lr_schedule": [StrOptions({"constant", "cosine"})],
        "hyper_betas": [tuple, list],
        "hyper_interval": [Interval(numbers.Integral, 1, None, closed="left")],
        "warmup": [
            StrOptions({"auto"}),
            Interval(numbers.Integral, 0, None, closed="left"),
        ],
        "hyper_batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_starts": [Interval(numbers.Integral, 1, None, closed="left")],
        "average_last": [Interval(numbers.Real, 0, 1, closed="right")],
        "cast_inputs": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        param_distributions,
        *,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        random_state=None,
        error_score=np.nan,
        return_train_score=False,
        method="cg",
        solver_max_iter=10,
        solver_damping=1e-3,
        solver_alpha="auto",
        hyper_optimizer="adam",
        hyper_betas=(0.0, 0.9),
        hyper_lr=0.5,
        hyper_lr_schedule="cosine",
        hyper_interval=1,
        warmup="auto",
        hyper_batch_size=256,
        n_starts=1,
        average_last=0.25,
        cast_inputs=True,
    ):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.random_state = random_state
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.method = method
        self.solver_max_iter = solver_max_iter
        self.solver_damping = solver_damping
        self.solver_alpha = solver_alpha
        self.hyper_optimizer = hyper_optimizer
        self.hyper_betas = hyper_betas
        self.hyper_lr = hyper_lr
        self.hyper_lr_schedule = hyper_lr_schedule
        self.hyper_interval = hyper_interval
        self.warmup = warmup
        self.hyper_batch_size = hyper_batch_size
        self.n_starts = n_starts
        self.average_last = average_last
        self.cast_inputs = cast_inputs

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, **params):
        """Run the search, then refit the best values on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        **params : dict
            ``groups`` goes to the CV splitter; the others go to the network's
            ``fit`` (indexed per split when they hold one entry per sample).
            In a Pipeline, name them ``<net step>__<name>``.

        Returns
        -------
        self : HypergradSearchCV
        """
        validate_params(
            self._parameter_constraints,
            self.get_params(deep=False),
            type(self).__name__,
        )
        _check_betas(self.hyper_betas)
        self._forget_fit()
        net, step = split_estimator(self.estimator)
        specs = resolve_space(self.param_distributions, net, step)
        X, y = self._check_data(X, y, net)
        groups = params.pop("groups", None)
        net_params = self._net_fit_params(params, step)
        self._check_scoring()
        splits = self._make_splits(X, y, groups)
        results = self._run_starts(X, y, specs, splits, net_params, step)
        self._store_results(specs, results)
        _warn_skipped(self.cv_results_)
        if self.refit:
            self._refit_best(X, y, specs, net_params, step)
        return self

    def _forget_fit(self):
        # A refit that fails or is interrupted must not leave the results of
        # an earlier fit looking current.
        for name in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("_")
        ]:
            delattr(self, name)

    def _check_data(self, X, y, net):
        X = self._as_input(X)
        if y is not None:
            y = np.asarray(
                as_array(y, ensure_2d=False, dtype=None, ensure_all_finite=False)
            )
            check_finite(y, "y")
        check_consistent_length(X, y)
        check_features(self, X, reset=True)
        self._target_was_1d = y is not None and y.ndim == 1
        if not self.cast_inputs:
            return X, y
        return _cast_features(X), cast_y(y, net)

    def _as_input(self, X):
        # A bare net needs a numeric array; a Pipeline may start with steps that
        # take anything (text, DataFrames), so only its length and values are
        # checked here.
        if not isinstance(self.estimator, Pipeline):
            X = as_array(
                X,
                accept_sparse=False,
                dtype="numeric",
                ensure_all_finite=False,
                allow_nd=True,
            )
        check_finite(X, "X")
        return X

    def _net_fit_params(self, params, step):
        if step is None:
            return params
        prefix = f"{step}__"
        wrong = [k for k in params if not k.startswith(prefix)]
        if wrong:
            raise InvalidInputError(
                f"fit parameters {wrong} do not belong to the network step {step!r}. "
                "HypergradSearchCV routes 'groups' to the splitter and "
                f"'{prefix}<name>' to the network; fit the preprocessing separately "
                "if it needs its own."
            )
        return {k[len(prefix) :]: v for k, v in params.items()}

    def _check_scoring(self):
        scoring = self.scoring
        try:
            if scoring is None or callable(scoring) or isinstance(scoring, str):
                scorers = {"score": check_scoring(self.estimator, scoring=scoring)}
                multimetric = False
            elif isinstance(scoring, list | tuple):
                scorers = {name: get_scorer(name) for name in scoring}
                multimetric = True
            else:
                scorers = {name: get_scorer(s) for name, s in scoring.items()}
                multimetric = True
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"scoring={scoring!r} is not usable: {exc} Use a name from "
                "sklearn.metrics.get_scorer_names(), a callable "
                "scorer(estimator, X, y), or a list/dict of them."
            ) from exc
        if multimetric and not scorers:
            raise InvalidInputError(f"scoring={scoring!r} names no metric.")
        if (
            multimetric
            and self.refit is not False
            and not (
                callable(self.refit)
                or (isinstance(self.refit, str) and self.refit in scorers)
            )
        ):
            raise InvalidInputError(
                "For multi-metric scoring, refit must be a metric name, a callable or "
                f"False; got refit={self.refit!r} with metrics {sorted(scorers)}."
            )
        self.multimetric_ = multimetric
        self.scorer_ = scorers if multimetric else scorers["score"]
        self._scorers = scorers

    def _make_splits(self, X, y, groups):
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        try:
            splits = list(cv.split(X, y, groups))
        except ValueError as exc:
            raise InvalidInputError(
                f"The cross-validation splitter {cv!r} cannot split these "
                f"{len(X)} samples: {exc} Use fewer splits or more data."
            ) from exc
        self.n_splits_ = len(splits)
        return splits

    def _settings(self, net) -> Settings:
        warmup = max(1, net.max_epochs // 3) if self.warmup == "auto" else self.warmup
        return Settings(
            method=self.method,
            solver_max_iter=self.solver_max_iter,
            solver_damping=self.solver_damping,
            solver_alpha=self.solver_alpha,
            hyper_optimizer=self.hyper_optimizer,
            hyper_betas=tuple(float(b) for b in self.hyper_betas),
            hyper_lr=self.hyper_lr,
            hyper_lr_schedule=self.hyper_lr_schedule,
            hyper_interval=self.hyper_interval,
            warmup=warmup,
            hyper_batch_size=self.hyper_batch_size,
            average_last=self.average_last,
            error_score=self.error_score,
            scorers=self._scorers,
            return_train_score=self.return_train_score,
            verbose=self.verbose,
            cast_inputs=self.cast_inputs,
        )

    def _starting_points(self, specs, seed):
        rng = generator(seed)
        starts = [{s.name: s.real.center() for s in specs}]
        for _ in range(self.n_starts - 1):
            starts.append({s.name: float(s.real.sample(rng)) for s in specs})
        return starts

    def _run_starts(self, X, y, specs, splits, net_params, step):
        net, _ = split_estimator(self.estimator)
        settings = self._settings(net)
        seeds = spawn_seeds(self.random_state, self.n_starts + 2)
        starts = self._starting_points(specs, seeds[-1])
        self._refit_seed = seeds[-2]
        fold_params = [_index_params(net_params, train, len(X)) for train, _ in splits]
        jobs = (
            delayed(run_start)(
                self.estimator,
                step,
                specs,
                X,
                y,
                splits,
                settings,
                seeds[i],
                starts[i],
                fold_params,
            )
            for i in range(self.n_starts)
        )
        try:
            return Parallel(n_jobs=self.n_jobs)(jobs)
        except Exception as exc:
            if not _is_worker_failure(exc):
                raise
            raise ParallelWorkerError(
                f"A parallel worker was lost while running the search's starting "
                f"points ({type(exc).__name__}: {exc}). Nothing was fitted. Re-run "
                "fit (the same random_state gives the same result), or use n_jobs=1."
            ) from exc

    def _store_results(self, specs, results):
        self.cv_results_ = build_cv_results(
            specs, results, list(self._scorers), self.n_splits_, self.return_train_score
        )
        self.paths_ = [_path_table(r["path"], specs) for r in results]
        index = select_best(self.cv_results_, self.refit, self.multimetric_)
        if index is not None:
            self.best_index_ = index
            self.best_params_ = results[index]["values"]
            self.path_ = self.paths_[index]
            key = (
                "mean_test_score"
                if not self.multimetric_
                else (
                    f"mean_test_{self.refit}" if isinstance(self.refit, str) else None
                )
            )
            if key is not None and not callable(self.refit):
                self.best_score_ = float(self.cv_results_[key][index])

    def _refit_best(self, X, y, specs, net_params, step):
        estimator = clone(self.estimator).set_params(
            **_refit_params(self.estimator, self.best_params_, specs, step)
        )
        start = time.perf_counter()
        fit_params = (
            net_params
            if step is None
            else {f"{step}__{k}": v for k, v in net_params.items()}
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._refit_seed)
            estimator.fit(X, y, **fit_params)
        self.refit_time_ = time.perf_counter() - start
        self.best_estimator_ = estimator

    # ------------------------------------------------------- delegation
    def _prepare(self, X):
        check_is_fitted(self, "best_estimator_")
        X = self._as_input(X)
        check_features(self, X, reset=False)
        return _cast_features(X) if self.cast_inputs else X

    def _delegate(self, method, X):
        X = self._prepare(X)
        return getattr(self.best_estimator_, method)(X)

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_`` (1-D output for a 1-D training ``y``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray
        """
        y_pred = self._delegate("predict", X)
        if self._target_was_1d and np.ndim(y_pred) == 2 and y_pred.shape[1] == 1:
            y_pred = y_pred.ravel()
        if self.cast_inputs and getattr(y_pred, "dtype", None) == np.float32:
            # Back to scikit-learn's default precision at the search's boundary.
            y_pred = y_pred.astype(np.float64)
        return y_pred

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return self._delegate("predict_proba", X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return self._delegate("predict_log_proba", X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray
        """
        return self._delegate("decision_function", X)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Xt : ndarray
        """
        return self._delegate("transform", X)

    def score(self, X, y=None):
        """Score ``best_estimator_`` with ``scorer_`` (the refit metric if several).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        X = self._prepare(X)
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        if self.cast_inputs:
            net, _ = split_estimator(self.best_estimator_)
            y = cast_y(y, net)
        return scorer(self.best_estimator_, X, y)

    @property
    def classes_(self):
        """Class labels of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.classes_

    @property
    def _estimator_type(self):
        return getattr(self.estimator, "_estimator_type", None)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        sub = self.estimator.__sklearn_tags__()
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = sub.classifier_tags
        tags.regressor_tags = sub.regressor_tags
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = False
        # skorch modules can emit several outputs per sample.
        tags.target_tags.multi_output = sub.estimator_type == "regressor"
        return tags


# Errors raised by joblib / Dask when a worker process dies, by class name so
# that neither distributed nor loky has to be imported to recognise them.
_WORKER_FAILURES = {
    "TerminatedWorkerError",
    "KilledWorker",
    "FutureCancelledError",
    "CancelledError",
    "CommClosedError",
    "BrokenProcessPool",
}


def _is_worker_failure(exc) -> bool:
    return any(cls.__name__ in _WORKER_FAILURES for cls in type(exc).__mro__)


def _warn_skipped(cv_results):
    skipped = int(np.sum(cv_results["n_skipped_hypersteps"]))
    if skipped:
        total = int(np.sum(cv_results["n_hypersteps"]))
        warnings.warn(
            f"{skipped} of {total} hyper-steps were skipped (non-finite or diverging "
            "hypergradient) and left the hyperparameters unchanged; path_['reason'] "
            "says why. If many are skipped, lower hyper_lr, raise solver_damping or "
            "train longer before the first hyper-step (warmup).",
            HyperstepSkippedWarning,
            stacklevel=3,
        )


def _cast_features(X):
    X = cast_X(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "iub":
        return X.astype(np.float32)
    return X


def _index_params(params, train, n_samples):
    out = {}
    for key, value in params.items():
        if (
            hasattr(value, "__len__")
            and not isinstance(value, str | Mapping)
            and len(value) == n_samples
        ):
            out[key] = (
                value[train] if hasattr(value, "shape") else [value[i] for i in train]
            )
        else:
            out[key] = value
    return out


def _refit_params(estimator, best_params, specs, step):
    prefix = "" if step is None else f"{step}__"
    out = {}
    for spec in specs:
        value = best_params[spec.name]
        if spec.granularity == "scalar":
            out[spec.name] = value
            continue
        net, _ = split_estimator(estimator)
        callbacks = (
            list(net.callbacks) if isinstance(net.callbacks, list | tuple) else []
        )
        penalty = WeightDecayPenalty(value, granularity=spec.granularity)
        out[f"{prefix}optimizer__weight_decay"] = 0.0
        out[f"{prefix}callbacks"] = [*callbacks, ("skhypergrad_weight_decay", penalty)]
    return out


def _check_betas(betas):
    ok = len(betas) == 2 and all(
        isinstance(b, numbers.Real)
        and not isinstance(b, bool)
        and math.isfinite(b)
        and 0 <= b < 1
        for b in betas
    )
    if not ok:
        raise InvalidParameterError(
            "The 'hyper_betas' parameter of HypergradSearchCV must be two numbers "
            f"in [0, 1) (Adam's moment decay rates). Got {betas!r} instead. Pass "
            "e.g. hyper_betas=(0.5, 0.9)."
        )


_PATH_KEYS = (
    "epoch",
    "hyper_lr",
    "val_loss",
    "hypergrad_norm",
    "solver_iter",
    "skipped",
    "reason",
    "at_bound",
)


def _path_table(records, specs):
    table = {k: [] for k in _PATH_KEYS}
    table.update({s.name: [] for s in specs})
    for record in records:
        for key in _PATH_KEYS:
            table[key].append(record.get(key))
        for spec in specs:
            table[spec.name].append(record["values"][spec.name])
    return table
