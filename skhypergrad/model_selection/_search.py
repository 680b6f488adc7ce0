"""HypergradSearchCV: GridSearchCV's search, with the continuous entries tuned
by hypergradients inside each candidate."""

from __future__ import annotations

import logging
import numbers
import time
from dataclasses import replace

import numpy as np
import torch
from sklearn.base import clone, is_classifier
from sklearn.model_selection import check_cv

from .._compat import BaseSearchCV, _num_samples, _warn_or_raise_about_fit_failures
from ..exceptions import (
    AllFitsFailedError,
    InvalidInputError,
)
from ..hypergrad import get_solver
from ..net import split_estimator
from ..utils._random import spawn_seeds
from ..utils._validation import (
    Interval,
    InvalidParameterError,
    sklearn_errors,
    validate_params,
)
from ._boundary import DataBoundaryMixin, net_fit_params
from ._decision import decide
from ._hyper_options import HYPER_CONSTRAINTS, HyperOptionsMixin
from ._progress import SearchProgress
from ._results import more_results, path_table, warn_at_bounds, warn_skipped
from ._space import as_candidates, make_candidates, resolve_space
from ._tasks import make_tasks
from ._training._dispatch import lost_workers, one_pool, run_tasks
from ._training._outer_loop import Settings, assemble
from ._training._paused import PausedTrainings, Resume

logger = logging.getLogger("skhypergrad")


class BaseHypergradSearch(HyperOptionsMixin, DataBoundaryMixin, BaseSearchCV):
    """What every hypergradient search shares, on scikit-learn's ``BaseSearchCV``:
    ``fit`` (validation, the splits, the search, the choice of the best row
    and the refit), ``evaluate_candidates`` and the results. A search is a
    small subclass with its ``__init__``, its ``_parameter_constraints`` and
    its ``_run_search``, as scikit-learn's searches are; it may override
    ``_start_progress`` (what a call of ``evaluate_candidates`` announces) and
    ``_check_space``.
    """

    # Whether the rows hand back the split estimators (the single-fit
    # estimators predict with theirs).
    _keeps_split_estimators = False

    _parameter_constraints = {
        **BaseSearchCV._parameter_constraints,
        **HYPER_CONSTRAINTS,
        "n_starts": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, **params):
        """Run the search, then refit the best values on all the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
        **params : dict
            ``groups`` goes to the CV splitter, the rest to the network's
            ``fit`` (indexed per split when they hold one entry per sample),
            as ``GridSearchCV`` routes them; with metadata routing enabled,
            as the estimators request. In a Pipeline, name them
            ``<net step>__<name>``.

        Returns
        -------
        self : HypergradSearchCV
        """
        self._check_kwargs()
        validate_params(
            self._parameter_constraints,
            self.get_params(deep=False),
            type(self).__name__,
        )
        self._forget_fit()
        net, step = split_estimator(self.estimator)
        subspaces = resolve_space(self.param_distributions, net, step, self.estimator)
        self._check_space(subspaces)
        X, y = self._check_data(X, y, net)
        with sklearn_errors("scoring / refit"):
            scorers, refit_metric = self._get_scorers()
        with sklearn_errors("fit parameters"):
            routed = self._get_routed_params_for_fit(params)
        net_params = net_fit_params(routed.estimator.fit, step)
        splits = self._make_splits(X, y, routed.splitter.split)
        settings = self._settings(scorers, routed.scorer.score, refit_metric)
        progress = SearchProgress(self.verbose, bool(self.refit))
        try:
            plan = (subspaces, splits, settings, net_params, step, refit_metric)
            self._fit_search(X, y, plan, progress)
        finally:
            progress.close()
        self.scorer_ = getattr(scorers, "_scorers", scorers)
        return self

    def _fit_search(self, X, y, plan, progress):
        """The search, the choice of the best row and the refit."""
        subspaces, splits, settings, net_params, step, refit_metric = plan
        results, rows = self._search(
            X, y, subspaces, splits, settings, net_params, progress
        )
        first = rows[0].out[0]["test_scores"]
        self.multimetric_ = isinstance(first, dict)
        if self.multimetric_ and callable(self.scoring):
            # A callable that returns a dict of metrics: refit names one of
            # them, as GridSearchCV checks once it has seen the dict.
            with sklearn_errors("refit"):
                self._check_refit_for_multimetric(first)
            refit_metric = self.refit
        if self.refit or not self.multimetric_:
            with sklearn_errors("refit"):
                self.best_index_ = int(
                    self._select_best_index(self.refit, refit_metric, results)
                )
            if not callable(self.refit):
                self.best_score_ = float(
                    results[f"mean_test_{refit_metric}"][self.best_index_]
                )
            self.best_params_ = results["params"][self.best_index_]
            self.path_ = self.paths_[self.best_index_]
            warn_at_bounds(rows[self.best_index_])
        if self.refit:
            self._refit(X, y, net_params, step, rows)
            progress.close(refitted=True)
        self.cv_results_ = results

    def _forget_fit(self):
        # A refit that fails or is interrupted must not leave the results of
        # an earlier fit looking current.
        for name in [
            k for k in vars(self) if k.endswith("_") and not k.startswith("_")
        ]:
            delattr(self, name)
        for name in ("_n_features", "_label_encoder", "_target_was_1d"):
            self.__dict__.pop(name, None)

    def _make_splits(self, X, y, split_params):
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        try:
            splits = list(cv.split(X, y, **split_params))
        except ValueError as exc:
            hint = "Use fewer splits or more data."
            if "groups" in str(exc) and split_params.get("groups") is None:
                hint = (
                    f"{type(cv).__name__} splits by group: pass the group of "
                    "every sample as fit(X, y, groups=groups)."
                )
            raise InvalidInputError(
                f"The cross-validation splitter {cv!r} cannot split these "
                f"{len(X)} samples: {exc} {hint}"
            ) from exc
        self.n_splits_ = len(splits)
        return splits

    def _settings(self, scorers, score_params, refit_metric="score") -> Settings:
        inner = getattr(scorers, "_scorers", None)
        # The metric the decision rule compares: the refit metric, or the
        # first one where refit is False or callable.
        if inner is not None and refit_metric not in inner:
            refit_metric = next(iter(inner))
        if inner is None and isinstance(self.refit, str):
            refit_metric = self.refit  # a callable returning a dict of metrics
        return Settings(
            solver=get_solver(self.solver),
            outer=self._outer_optimizer(),
            error_score=self.error_score,
            scorer=scorers,
            metric_names=None if inner is None else list(inner),
            score_params=score_params,
            return_train_score=self.return_train_score,
            verbose=self.verbose,
            cast_inputs=self.cast_inputs,
            keep_estimators=self._keeps_split_estimators,
            unroll_steps=self.unroll_steps,
            metric=refit_metric,
        )

    def _search(self, X, y, subspaces, splits, settings, net_params, progress):
        sample_seed, self._refit_seed, start_seed = spawn_seeds(self.random_state, 3)
        rows, more, calls = [], {}, []
        paused = PausedTrainings()

        def evaluate_candidates(
            candidates, more_results=None, *, epochs=None, until=None
        ):
            """Train and score candidates; the ``cv_results_`` of every row so far.

            Parameters
            ----------
            candidates : iterable of dict or Resume
                Outer values (each candidate's tuned entries are tuned
                inside it, from ``n_starts`` starting points), or
                :class:`Resume` rows of the previous call, whose paused
                training goes on.
            more_results : dict of list, optional
                Extra ``cv_results_`` columns, one value per row this call
                adds (as in ``BaseSearchCV``).
            epochs : sequence of int, optional
                The epochs at which the rows of new candidates may be read
                (default: their ``max_epochs`` values); the training is
                planned for the largest.
            until : int, optional
                Train every candidate to this epoch, read one row each there,
                and keep the trainings that have epochs left paused for the
                next call (default: train to the end).
            """
            # Every call draws its own seeds (the first call's are the
            # search's own), so a strategy that proposes a candidate again
            # gets new starting points and networks, as a new draw would.
            seed = (
                start_seed if not calls else spawn_seeds(start_seed + len(calls), 1)[0]
            )
            calls.append(seed)
            racers = self._racers(
                list(candidates), subspaces, seed, epochs, net_params, X
            )
            added = self._evaluate(
                racers, X, y, splits, settings, progress, until=until,
                paused=(paused, len(rows)), more_results=more_results,
            )  # fmt: skip
            _extend_more(more, more_results, len(added))
            rows.extend(added)
            return self._results_so_far(rows, len(splits), more)

        # What _run_search draws from, for this fit only.
        self._space = (subspaces, sample_seed)
        try:
            with one_pool(self.n_jobs):
                self._run_search(evaluate_candidates)
        finally:
            del self._space
            paused.close()
        out = [o for r in rows for o in r.out]
        try:
            _warn_or_raise_about_fit_failures(out, self.error_score)
        except ValueError as exc:
            raise AllFitsFailedError(str(exc)) from exc
        warn_skipped(rows)
        self.paths_ = [path_table(r.path, r.values) for r in rows]
        return self._results_so_far(rows, len(splits), more), rows

    def _racers(self, candidates, subspaces, seed, epochs, net_params, X) -> list:
        """The tasks of the new candidates (``n_starts`` each, in place) and
        the :class:`Resume` rows, in the order given."""
        new = [c for c in candidates if not isinstance(c, Resume)]
        tasks = iter(
            make_tasks(
                self.estimator,
                as_candidates(new, subspaces),
                subspaces,
                (net_params, seed, self.n_starts, _num_samples(X)),
            )
            if new
            else ()
        )
        racers = []
        for candidate in candidates:
            if isinstance(candidate, Resume):
                racers.append(candidate)
                continue
            for _ in range(self.n_starts):
                task = next(tasks)
                if epochs is not None:
                    task = replace(
                        task,
                        epochs=tuple(sorted(set(epochs))),
                        epochs_name=task.prefix + "max_epochs",
                    )
                racers.append(task)
        return racers

    def _results_so_far(self, rows, n_splits, more=None) -> dict:
        """``cv_results_`` of the rows evaluated so far (what
        ``evaluate_candidates`` returns, as in ``BaseSearchCV``)."""
        out = [o for r in rows for o in r.out]
        with sklearn_errors("results"):
            return self._format_results(
                [r.params for r in rows],
                n_splits,
                out,
                {**more_results(rows), **(more or {})},
            )

    def _evaluate(
        self, racers, X, y, splits, settings, progress, *, until, paused, more_results
    ):
        """Train the racers (tuning, then the decision rule's constant
        trainings for those that finished); their rows, one per racer and
        ``max_epochs`` value (one per racer where ``until`` is given)."""
        tasks = [r for r in racers if not isinstance(r, Resume)]
        logger.debug(
            "Fitting %d folds for each of %d candidates (%d starting points "
            "each), totalling %d trainings",
            len(splits),
            len(tasks) // self.n_starts,
            self.n_starts,
            len(tasks) * len(splits),
        )
        rule = self._decision_rule()
        self._start_progress(progress, tasks, len(splits), rule, more_results)
        # Split estimators, where kept, come from the constant trainings.
        tuning = replace(settings, keep_estimators=False) if rule else settings
        jobs = {"n_jobs": self.n_jobs, "pre_dispatch": self.pre_dispatch}
        if until is None and len(tasks) == len(racers):
            task_rows = list(run_tasks(tasks, X, y, splits, tuning, progress, **jobs))
            finished = list(zip(tasks, task_rows))
        else:
            task_rows, finished = self._run_until(
                racers, X, y, splits, tuning, progress, until, paused, jobs
            )
        if rule is not None and finished:
            with lost_workers():
                decide(
                    rule,
                    [t for t, _ in finished],
                    [r for _, r in finished],
                    X,
                    y,
                    splits,
                    settings,
                    progress=progress,
                    **jobs,
                )
        return [r for candidate_rows in task_rows for r in candidate_rows]

    @staticmethod
    def _run_until(racers, X, y, splits, settings, progress, until, paused, jobs):
        """The paused path of :meth:`_evaluate`: every racer trained to
        ``until``, one row each; those with epochs left are kept paused."""
        store, first_row = paused
        if until is None:
            raise InvalidInputError(
                "evaluate_candidates got Resume rows without until=<epoch>: a "
                "paused training goes on to an epoch. Pass until."
            )
        taken = store.take(racers)

        def counted(i):
            progress.count(until - taken[i][2])

        done = store.run(
            [held for _, held, _ in taken], X, y, splits, settings, until,
            on_result=counted, **jobs,
        )  # fmt: skip
        task_rows, finished = [], []
        for (task, _, _), (training, part) in zip(taken, done):
            (row,) = assemble(replace(task, epochs=(until,)), [part], settings)
            if training is None:
                finished.append((task, [row]))
            else:
                store.keep(first_row + len(task_rows), task, training, until)
            task_rows.append([row])
        return task_rows, finished

    def _start_progress(self, progress, tasks, n_splits, rule, more_results):
        """Announce a call of ``evaluate_candidates`` (its summary line, the
        bar's total) before it trains ``tasks``, its new racers; a search
        with a plan of its own (the halving search) overrides it."""
        if tasks:
            progress.start(tasks, n_splits, self.n_starts, rule)

    def _check_space(self, subspaces) -> None:
        """Refuse a space this estimator cannot search (every space is fine here)."""

    def _refit(self, X, y, net_params, step, rows):
        estimator = clone(self.estimator).set_params(
            **clone(self.best_params_, safe=False)
        )
        fit_params = (
            net_params
            if step is None
            else {f"{step}__{k}": v for k, v in net_params.items()}
        )
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._refit_seed)
            estimator.fit(X, y, **fit_params)
        self.refit_time_ = time.perf_counter() - start
        self.best_estimator_ = estimator

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        # skorch modules can emit several outputs per sample.
        tags.target_tags.multi_output = tags.estimator_type == "regressor"
        return tags


class HypergradSearchCV(BaseHypergradSearch):
    """Grid or random search whose continuous entries are tuned by hypergradients.

    ``param_distributions`` is any grid or distribution dict that
    ``GridSearchCV`` or ``RandomizedSearchCV`` accepts. Entries that a
    hyperparameter family can differentiate (weight decay, dropout rates,
    label smoothing, class weights, input noise, learning rates) and that are
    given as a continuous range are tuned inside each
    candidate: every CV split trains one network, and every
    epoch after a warm-up (``hyper_optimizer``) the gradient of the validation
    loss with respect to them is computed by implicit differentiation (for
    learning rates: through the next ``unroll_steps`` training steps),
    averaged over the splits, and a ``hyper_optimizer`` step moves them. The
    other entries (lists, discrete distributions, layer sizes, ``Sampled``
    ranges, other Pipeline steps) are
    searched as ``GridSearchCV`` (all lists) or ``RandomizedSearchCV``
    (``n_iter`` draws) would. A list for ``max_epochs`` is read off the
    validation curves of the same trainings.

    Parameters
    ----------
    estimator : skorch.NeuralNet or Pipeline
        A skorch ``NeuralNetClassifier`` / ``NeuralNetRegressor`` /
        ``NeuralNet``, or a ``Pipeline`` whose last step is one.
    param_distributions : dict or list of dict
        Required: the grid ``GridSearchCV`` takes as ``param_grid`` (or the
        distributions of ``RandomizedSearchCV``), in the same form.
        Name -> list, scipy distribution or continuous range
        (``skhypergrad.Real``, ``scipy.stats.loguniform`` / ``uniform``,
        ``PerLayer(range)`` / ``PerParameter(range)`` for weight decay).
        Tuned: ``optimizer__weight_decay`` (an L2 term of the loss, as torch's
        SGD and Adam apply it), ``lr`` / ``optimizer__lr`` (one rate or
        ``PerLayer``, with SGD, Adam or AdamW), ``module__<arg>`` for a
        module argument that sets ``torch.nn.Dropout`` rates,
        ``criterion__label_smoothing``,
        ``criterion__weight`` (``PerClass``), the scale of an
        ``InputNoise`` callback (one or ``PerFeature``) and the weights of a
        ``SampleWeight`` callback (``PerSample``: one per training row of
        each split; ``best_params_`` holds one per row of ``X``). Wrap a
        range in ``skhypergrad.Sampled`` to draw it instead.
    n_iter : int, default=10
        Outer candidates drawn when any outer entry is a distribution (as in
        ``RandomizedSearchCV``); unused when they are all lists.
    scoring, n_jobs, refit, cv, verbose, pre_dispatch, error_score, \
return_train_score
        As in ``GridSearchCV``. ``n_jobs`` runs candidates and starting points
        in parallel through joblib (the active ``joblib.parallel_config``
        backend decides where: processes, Dask, Ray). With fewer candidates
        than workers and no fewer workers than splits, under joblib's process
        backends, each split trains in its own worker and the splits exchange
        hypergradients through gloo; results are the same for any
        ``n_jobs``. ``return_train_score``
        defaults to False. ``verbose=1`` prints GridSearchCV's summary line
        and shows a tqdm progress bar over the epochs of every candidate and
        the refit, with the last validation loss and tuned values; ``verbose=2``
        adds a line per hyper-step; ``verbose=3`` also the split networks'
        own epoch tables, each line prefixed ``[split k]``; 0 is silent.
    random_state : int, RandomState instance or None, default=None
        Seeds the networks, minibatches, outer draws, starting points and
        refit. The same value repeats a CPU run exactly.
    solver : str, solver object or callable, default="gauss-newton"
        How the inverse curvature-vector product is approximated. The default
        is conjugate gradient on the Gauss-Newton curvature
        (``CG(max_iter=5, damping=1e-3, curvature="gauss-newton")``), which
        converges and tunes dropout rates the right way (5 iterations on 128
        samples tuned as well as 10 on 256 in the sweep of
        ``benchmarks/bench_defaults.py``, at a quarter of the cost); ``"cg"`` (CG on the
        Hessian, truncated at negative curvature), ``"neumann"``,
        ``"identity"`` and ``"exact"`` are the other names. A solver object
        such as ``skhypergrad.CG(max_iter=40, damping=1e-2,
        curvature="gauss-newton")`` sets the options; your own
        ``solver(hvp, rhs) -> (solution, info)`` is used as is.
    hyper_optimizer : torch.optim.Optimizer class or OuterOptimizer, \
default=torch.optim.Adam
        The outer optimisation of the raw (log / logit) hyperparameters, as
        one :class:`~skhypergrad.hypergrad.OuterOptimizer` (import it as
        ``from skhypergrad import OuterOptimizer``): the optimiser and its
        rate (``lr=0.5``; Adam without momentum by default), the rate's
        schedule (a ``torch.optim.lr_scheduler`` class; by default cosine down
        to a tenth), the epochs of ``warmup`` ("auto": a third) before the
        first hyper-step and the ``interval`` between them, the hyper-step's
        ``batch_size`` (128), the share of the last steps averaged into the
        reported values (``average_last=0.25``) and the guard: a step after
        which the splits' validation loss rose by more than ``tol=0.05``
        beyond the trend of the measurements before it is undone, and values
        that ran one way over ``window=5`` steps while the loss climbed by
        more than ``tol`` go back to the window's lowest point
        (``path_["rejected"]``, ``path_["reason"]``). Given a torch optimiser
        class, set any of them skorch-style: ``hyper_optimizer__lr=0.1``,
        ``hyper_optimizer__warmup=5``,
        ``hyper_optimizer__schedule=None``; other ``hyper_optimizer__<name>``
        arguments go to the optimiser (``hyper_optimizer__momentum=0.9``).
    n_starts : int, default=1
        Starting points per candidate: the first is the middle of every range,
        the others are drawn from the ranges.
    rescore : bool or DecisionRule, default=True
        How a candidate's reported values and scores are decided. True is
        :class:`~skhypergrad.ScoreConstants`: the tuned values and (where
        every tuned entry is a scalar) the starting values are each trained
        as constants on every split from its initialisation, as
        ``cross_val_score(clone(estimator).set_params(**params))`` on the same
        folds would, and the row reports whichever scores higher on the
        user's ``scoring`` (the ``refit`` metric), with that training's
        scores (``reported_values`` says which). So ``best_score_`` is the CV
        score of ``best_params_``, and the search never reports values that
        score below the starting values on its own folds. Costs one or two
        more trainings per split. ``ScoreConstants(proposals=("tuned",
        "path_best", "start"))`` also compares the values at the path's
        lowest validation loss; any :class:`~skhypergrad.DecisionRule` is
        used as given. False scores the tuning trainings themselves, which
        ran while the values moved: faster, but ``best_score_`` is then not
        the CV score of ``best_params_``.
    unroll_steps : int, default=1
        Training steps (of the net's batch size) that a learning rate's
        hypergradient differentiates through, from the current weights: 1 is
        hypergradient descent (Baydin et al., 2018). Memory and time of a
        hyper-step grow linearly with it. Unused when no ``lr`` is tuned.
    cast_inputs : bool, default=True
        Cast float64 / integer ``X`` to float32, classifier ``y`` to int64 (and
        class labels that are not integers to codes, keeping ``classes_`` as
        given), regression ``y`` to a float32 column, in ``fit`` and in every
        prediction method, as skorch expects.
    **kwargs : dict
        ``hyper_optimizer__<name>`` arguments: options of the
        ``OuterOptimizer``, or arguments of the torch optimiser class.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        One row per candidate, starting point and ``max_epochs`` value, with
        ``GridSearchCV``'s keys (``params`` holds the tuned values) plus
        ``mean_test_loss``, ``std_test_loss``, ``split<k>_test_loss``,
        ``rank_test_loss``, ``n_hypersteps``, ``n_skipped_hypersteps``,
        ``n_rejected_hypersteps``, ``reported_values`` (the proposal of the
        decision rule that is reported: ``"tuned"``, ``"start"`` or
        ``"path_best"``) and ``tuned_values_kept`` (whether it is
        ``"tuned"``).
    best_estimator_ : estimator
        ``clone(estimator).set_params(**best_params_)`` fitted on all the data.
    best_score_ : float
    best_params_ : dict
        The candidate's outer values and tuned values, ready for
        ``set_params``: a float for scalars, ``optimizer__param_groups`` for
        ``PerLayer`` decay, a ``WeightDecayPenalty`` callback for
        ``PerParameter`` decay; never NaN.
    best_index_ : int
    scorer_ : function or dict
    n_splits_ : int
    refit_time_ : float
    multimetric_ : bool
    path_ : dict of lists
        Per hyper-step of the best row: ``epoch``, ``hyper_lr``, ``val_loss``
        (the splits' mean loss on their whole validation part, measured
        before the step), ``hypergrad_norm``, ``solver_iter``, ``skipped``,
        ``rejected``, ``reason``, ``at_bound`` and each tuned value (a
        geometric mean for vectors) after the step.
    paths_ : list of dict
        ``path_`` of every row of ``cv_results_``.
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (``n_features_in_``,)

    See Also
    --------
    sklearn.model_selection.GridSearchCV : every candidate trained per split.
    sklearn.model_selection.RandomizedSearchCV : random candidates.

    Notes
    -----
    With ``rescore=True`` the scores in ``cv_results_`` are those of the
    values in ``params`` trained as constants from scratch on each split, so
    ``best_score_`` is the cross-validated score of ``best_params_``, what
    ``best_estimator_`` trains on all the data (for a ``max_epochs`` list:
    for the chosen number of epochs, with the values tuned by then). A tuned
    value at a bound of its range raises a ``BoundaryValueWarning``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scipy.stats import loguniform
    >>> from skorch import NeuralNetRegressor
    >>> from skhypergrad import HypergradSearchCV
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(120, 5)
    >>> y = X @ rng.randn(5) + 0.1 * rng.randn(120)
    >>> net = NeuralNetRegressor(torch.nn.Linear(5, 1), max_epochs=15, lr=0.05,
    ...                          optimizer=torch.optim.Adam, verbose=0)
    >>> search = HypergradSearchCV(
    ...     net, {"optimizer__weight_decay": loguniform(1e-5, 1e-1),
    ...           "batch_size": [32, 128]}, cv=3, random_state=0).fit(X, y)
    >>> len(search.cv_results_["params"])   # one row per batch size
    2
    >>> sorted(search.best_params_)
    ['batch_size', 'optimizer__weight_decay']
    """

    _parameter_constraints = {
        **BaseHypergradSearch._parameter_constraints,
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        n_iter=10,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        random_state=None,
        error_score=np.nan,
        return_train_score=False,
        solver="gauss-newton",
        hyper_optimizer=torch.optim.Adam,
        n_starts=1,
        rescore=True,
        unroll_steps=1,
        cast_inputs=True,
        **kwargs,
    ):
        super().__init__(
            estimator=estimator,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.n_starts = n_starts
        self._store_hyper_options(
            random_state, solver, hyper_optimizer, rescore, unroll_steps,
            cast_inputs, kwargs,
        )  # fmt: skip

    def _run_search(self, evaluate_candidates):
        """Draw the outer candidates and evaluate them, as scikit-learn's
        searches do: every combination of the lists (``GridSearchCV``), or
        ``n_iter`` draws where an outer entry is a distribution
        (``RandomizedSearchCV``).

        Parameters
        ----------
        evaluate_candidates : callable
            Takes an iterable of dicts of outer values (each candidate's tuned
            entries are tuned inside it), runs them and returns the
            ``cv_results_`` of every candidate evaluated so far, as in
            ``BaseSearchCV``; it may be called several times (a sequential
            strategy: Bayesian, adaptive, successive halving), each call
            with fresh seeds.
        """
        subspaces, random_state = self._space
        evaluate_candidates(make_candidates(subspaces, self.n_iter, random_state))


def _extend_more(more, more_results, n_rows) -> None:
    """Add a call's extra columns (one value per row it added) to ``more``."""
    for key, values in (more_results or {}).items():
        values = list(values)
        if len(values) != n_rows:
            raise InvalidInputError(
                f"more_results[{key!r}] has {len(values)} values, but this call "
                f"of evaluate_candidates added {n_rows} rows: give one value per "
                "row (n_starts rows per candidate, one per max_epochs value)."
            )
        more.setdefault(key, [])
        more[key].extend(values)


__all__ = ["BaseHypergradSearch", "HypergradSearchCV", "InvalidParameterError"]
