"""HalvingHypergradSearchCV: what must be sampled is raced by successive
halving over epochs, on the same trainings; the continuous entries are tuned
inside every racer as in HypergradSearchCV."""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
import torch
from sklearn.metrics import get_scorer_names

from ..exceptions import InvalidHyperparameterError
from ..hypergrad._options import is_count
from ..net import split_estimator
from ..utils._validation import Interval, StrOptions
from ._decision import decide
from ._search import BaseHypergradSearch
from ._space import make_candidates
from ._training._dispatch import lost_workers
from ._training._race import plan_rungs, race


class HalvingHypergradSearchCV(BaseHypergradSearch):
    """Successive halving over epochs, continuous entries tuned inside.

    The continuous entries are tuned by hypergradients inside every
    candidate, as in :class:`HypergradSearchCV`. The rest is raced as
    ``HalvingRandomSearchCV`` races with ``resource="max_epochs"``, except
    that a candidate that survives an iteration **goes on training from
    where it stopped** instead of starting again: every candidate (an
    outer draw from one starting point) starts the training
    ``HypergradSearchCV`` would run for it, planned for the net's
    ``max_epochs``; after ``n_resources_[i]`` epochs the candidates are ranked
    by their splits' mean validation score and the best ``1 / factor`` train
    on. The last iteration trains to ``max_epochs``, so the survivors' rows
    are exactly those ``HypergradSearchCV`` would give them (on a CPU; on a
    GPU the dropout masks come from the device's one generator, which the
    candidates share in the order they train). What is raced:
    the outer entries (lists, integer and categorical distributions, layer
    sizes, ``Sampled`` ranges) and the ``n_starts`` starting points.

    Parameters
    ----------
    estimator : skorch.NeuralNet or Pipeline
        As in :class:`HypergradSearchCV`; its ``max_epochs`` is the most any
        candidate trains (``max_resources_``).
    param_distributions : dict or list of dict
        As in :class:`HypergradSearchCV`, without ``max_epochs`` (it is the
        resource).
    n_candidates : int or "exhaust", default="exhaust"
        Outer candidates at the first iteration (each from ``n_starts``
        starting points). "exhaust": every combination where all outer
        entries are lists; where some are distributions, ``max_epochs //
        min_resources`` draws (as ``HalvingRandomSearchCV``), which needs an
        integer or "smallest" ``min_resources``. An integer with only lists
        draws that many combinations without replacement.
    factor : float, default=3
        Each iteration keeps the best ``ceil(n / factor)`` candidates and
        ranks them again after ``factor`` times the epochs.
    min_resources : int, "exhaust" or "smallest", default="exhaust"
        Epochs before the first ranking. "exhaust": the most that still
        leaves every iteration ``factor`` times the epochs of the one before
        within ``max_epochs``; "smallest": 1 epoch.
    aggressive_elimination : bool, default=False
        As in scikit-learn: where the epochs do not allow enough iterations
        to narrow the candidates down to one, rank at ``min_resources`` again
        until they do.
    scoring : str, callable or None, default=None
        One metric, as in ``HalvingRandomSearchCV``: it ranks the candidates
        at every iteration and picks the best.
    n_jobs, refit, cv, verbose, pre_dispatch, error_score, \
return_train_score
        As in :class:`HypergradSearchCV`. Under ``n_jobs > 1`` the candidates
        of an iteration train in parallel, and a surviving candidate's
        training travels to the next (its nets, optimiser states, tuned
        values and random streams, pickled; the data is not sent again), so
        the results are those of ``n_jobs=1``. A training that cannot be
        pickled (a module with ``torch.nn.utils.parametrize``
        parametrizations, such as ``weight_norm``) needs ``n_jobs=1``.
    random_state, solver, hyper_optimizer, n_starts, unroll_steps, \
cast_inputs
        As in :class:`HypergradSearchCV`.
    rescore : bool, default=True
        As in :class:`HypergradSearchCV`, for the rows of the last iteration
        (the ones ``best_index_`` is chosen from). The rows of earlier
        iterations hold the scores the racing trainings reached at that
        epoch (before the first hyper-step: the starting values, trained as
        constants for that many epochs).
    **kwargs : dict
        ``hyper_optimizer__<name>`` arguments.

    Attributes
    ----------
    cv_results_ : dict of numpy arrays
        :class:`HypergradSearchCV`'s columns, one row per candidate and
        iteration it reached, plus ``iter`` and ``n_resources`` (its epochs);
        ``params`` holds ``max_epochs`` (with any Pipeline prefix) set to them.
    best_estimator_, best_score_, best_params_, best_index_, scorer_, \
n_splits_, refit_time_, multimetric_, path_, paths_, classes_, \
n_features_in_, feature_names_in_
        As in :class:`HypergradSearchCV`; the best row is chosen among the
        last iteration's.
    n_resources_ : list of int
        Epochs at the ranking of each iteration.
    n_candidates_ : list of int
        Candidates (times starting points) at each iteration.
    n_remaining_candidates_ : int
        Candidates left after the last iteration.
    max_resources_, min_resources_ : int
    n_iterations_, n_possible_iterations_, n_required_iterations_ : int
        As in ``HalvingRandomSearchCV``.

    See Also
    --------
    HypergradSearchCV : every candidate trained to the end.
    sklearn.model_selection.HalvingRandomSearchCV : the same race, with
        every candidate trained again at each iteration.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from scipy.stats import loguniform
    >>> from skorch import NeuralNetRegressor
    >>> from skhypergrad import HalvingHypergradSearchCV
    >>> class MLP(torch.nn.Module):
    ...     def __init__(self, width=8):
    ...         super().__init__()
    ...         self.seq = torch.nn.Sequential(torch.nn.Linear(5, width),
    ...             torch.nn.ReLU(), torch.nn.Linear(width, 1))
    ...     def forward(self, X):
    ...         return self.seq(X)
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(120, 5).astype(np.float32)
    >>> y = (X @ rng.randn(5)).astype(np.float32)
    >>> net = NeuralNetRegressor(MLP, max_epochs=9, lr=0.05,
    ...                          optimizer=torch.optim.Adam, verbose=0)
    >>> search = HalvingHypergradSearchCV(
    ...     net, {"module__width": [4, 8, 16],
    ...           "optimizer__weight_decay": loguniform(1e-5, 1e-1)},
    ...     cv=3, random_state=0).fit(X, y)
    >>> search.n_resources_, search.n_candidates_
    ([3, 9], [3, 1])
    >>> search.cv_results_["iter"].tolist()
    [0, 0, 0, 1]
    """

    _parameter_constraints = {
        **BaseHypergradSearch._parameter_constraints,
        "n_candidates": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"exhaust"}),
        ],
        "factor": [Interval(numbers.Real, 1, None, closed="neither")],
        "min_resources": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"exhaust", "smallest"}),
        ],
        "aggressive_elimination": ["boolean"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "refit": ["boolean"],
    }

    def __init__(
        self,
        estimator,
        param_distributions=None,
        *,
        n_candidates="exhaust",
        factor=3,
        min_resources="exhaust",
        aggressive_elimination=False,
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
        self.n_candidates = n_candidates
        self.factor = factor
        self.min_resources = min_resources
        self.aggressive_elimination = aggressive_elimination
        self.n_starts = n_starts
        self._store_hyper_options(
            random_state, solver, hyper_optimizer, rescore, unroll_steps,
            cast_inputs, kwargs,
        )  # fmt: skip

    def _check_space(self, subspaces) -> None:
        epochs = [s.epochs_name for s in subspaces if s.epochs]
        if epochs:
            raise InvalidHyperparameterError(
                f"{type(self).__name__} races the candidates over epochs, so "
                f"param_distributions cannot search {epochs[0]!r}: remove it and "
                "set max_epochs on the net (the most any candidate trains); the "
                "iterations rank the candidates at fewer epochs (min_resources, "
                "factor)."
            )
        net, _ = split_estimator(self.estimator)
        if not is_count(net.max_epochs, 1):
            raise InvalidHyperparameterError(
                f"{type(self).__name__} races over epochs up to the net's "
                f"max_epochs, which must be a positive integer; got "
                f"{net.max_epochs!r}."
            )
        if isinstance(self.min_resources, numbers.Integral) and (
            self.min_resources > net.max_epochs
        ):
            raise InvalidHyperparameterError(
                f"min_resources={self.min_resources} epochs is more than the net's "
                f"max_epochs={net.max_epochs}, the most any candidate trains. "
                f"Lower min_resources, or raise max_epochs."
            )

    def _run_search(self, evaluate_candidates):
        """Draw the candidates of the first iteration and race them."""
        subspaces, random_state = self._space
        sampled = any(hasattr(v, "rvs") for s in subspaces for v in s.outer.values())
        n_candidates = self.n_candidates
        if n_candidates == "exhaust" and sampled:
            if self.min_resources == "exhaust":
                raise InvalidHyperparameterError(
                    "n_candidates and min_resources cannot both be 'exhaust' when "
                    "param_distributions holds distributions (the number of draws "
                    "would decide the epochs and the epochs the draws). Give "
                    "n_candidates=<number of draws>, or min_resources=<epochs>."
                )
            net, _ = split_estimator(self.estimator)
            low = 1 if self.min_resources == "smallest" else self.min_resources
            n_candidates = max(1, net.max_epochs // low)
        grid = None if sampled else make_candidates(subspaces, 1, random_state)
        if grid is not None and (
            n_candidates == "exhaust" or n_candidates >= len(grid)
        ):
            evaluate_candidates(grid)  # every combination
        else:  # draws (without replacement from a grid of lists)
            evaluate_candidates(
                make_candidates(subspaces, n_candidates, random_state, draw=True)
            )

    def _evaluate(self, tasks, X, y, splits, settings, progress) -> list:
        """Race the tasks over epochs, then rescore the last iteration's rows."""
        net, _ = split_estimator(tasks[0].estimator)
        rungs = plan_rungs(
            len(tasks),
            net.max_epochs,
            self.factor,
            self.min_resources,
            self.aggressive_elimination,
        )
        epochs = tuple(sorted(set(rungs.n_resources)))
        name = tasks[0].prefix + "max_epochs"
        tasks = [dataclasses.replace(t, epochs=epochs, epochs_name=name) for t in tasks]
        rule = self._decision_rule()
        progress.start_race(tasks, len(splits), rungs, rule)
        jobs = {"n_jobs": self.n_jobs, "pre_dispatch": self.pre_dispatch}
        tuning = dataclasses.replace(settings, keep_estimators=False)
        rows, finalists, n_candidates = race(
            tasks, X, y, splits, tuning, rungs, progress, **jobs
        )
        if rule is not None:
            # In place: the finalists' rows are those of the last iteration.
            with lost_workers():
                decide(
                    rule,
                    [t for t, _ in finalists],
                    [[r] for _, r in finalists],
                    X,
                    y,
                    splits,
                    settings,
                    progress=progress,
                    **jobs,
                )
        self.n_resources_ = list(rungs.n_resources)
        self.n_candidates_ = n_candidates
        self.n_remaining_candidates_ = int(np.ceil(n_candidates[-1] / self.factor))
        self.min_resources_ = rungs.min_resources
        self.max_resources_ = rungs.max_resources
        self.n_iterations_ = len(rungs.n_resources)
        self.n_possible_iterations_ = rungs.n_possible_iterations
        self.n_required_iterations_ = rungs.n_required_iterations
        return rows

    @staticmethod
    def _select_best_index(refit, refit_metric, results):
        """The best row of the last iteration (as ``HalvingRandomSearchCV``)."""
        last = np.flatnonzero(results["iter"] == np.max(results["iter"]))
        ranks = results[f"rank_test_{refit_metric}"][last]
        return last[np.argmin(ranks)]


__all__ = ["HalvingHypergradSearchCV"]
