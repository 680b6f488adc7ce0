"""HalvingHypergradSearchCV: what must be sampled is raced by successive
halving over epochs, on the same trainings; the continuous entries are tuned
inside every racer as in HypergradSearchCV."""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np
import torch
from sklearn.metrics import get_scorer_names

from ..exceptions import InvalidHyperparameterError
from ..hypergrad._options import is_count
from ..net import split_estimator
from ..utils._validation import Interval, InvalidParameterError, StrOptions
from ._progress import constant_epochs, constants_text
from ._search import BaseHypergradSearch
from ._space import make_candidates
from ._training._paused import Resume


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
        """Race the candidates: one call of ``evaluate_candidates`` per
        iteration, as scikit-learn's successive halving, the survivors
        resumed from where they stopped."""
        candidates = self._first_candidates()
        rungs = self._plan(len(candidates) * self.n_starts)
        racers, n_candidates = candidates, []
        for itr, until in enumerate(rungs.n_resources):
            n = len(racers) * (self.n_starts if itr == 0 else 1)
            n_candidates.append(n)
            more = {"iter": [itr] * n, "n_resources": [until] * n}
            results = evaluate_candidates(
                racers, more, epochs=rungs.n_resources, until=until
            )
            if "mean_test_score" not in results:
                names = sorted(
                    k[len("mean_test_") :]
                    for k in results
                    if k.startswith("mean_test_") and k != "mean_test_loss"
                )
                raise InvalidParameterError(
                    "HalvingHypergradSearchCV ranks the candidates by one metric, "
                    f"but the scoring callable returned a dict ({names}). Give "
                    "scoring one metric (a name or a callable returning a "
                    "number), or use HypergradSearchCV for several."
                )
            keep = math.ceil(n / self.factor)
            # In the order they were evaluated (the rows of an iteration
            # keep the order of the first).
            racers = [Resume(int(i)) for i in sorted(_top_k(results, keep, itr))]
        self.n_resources_ = list(rungs.n_resources)
        self.n_candidates_ = n_candidates
        self.n_remaining_candidates_ = int(np.ceil(n_candidates[-1] / self.factor))
        self.min_resources_ = rungs.min_resources
        self.max_resources_ = rungs.max_resources
        self.n_iterations_ = len(rungs.n_resources)
        self.n_possible_iterations_ = rungs.n_possible_iterations
        self.n_required_iterations_ = rungs.n_required_iterations

    def _first_candidates(self) -> list:
        """The outer candidates of the first iteration."""
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
            return list(grid)  # every combination
        # draws (without replacement from a grid of lists)
        return list(make_candidates(subspaces, n_candidates, random_state, draw=True))

    def _plan(self, n_racers) -> Rungs:
        net, _ = split_estimator(self.estimator)
        return plan_rungs(
            n_racers,
            net.max_epochs,
            self.factor,
            self.min_resources,
            self.aggressive_elimination,
        )

    def _start_progress(self, progress, tasks, n_splits, rule, more_results):
        """The race's plan on its first call; each iteration's line."""
        itr, until = more_results["iter"][0], more_results["n_resources"][0]
        if itr == 0:
            rungs = self._plan(len(tasks))
            n, planned, done, finalists = len(tasks), 0, 0, len(tasks)
            for epochs in rungs.n_resources:
                planned += n * (epochs - done)
                finalists = n
                n, done = math.ceil(n / rungs.factor), epochs
            progress.open(
                f"Racing {len(tasks)} candidates over {n_splits} folds by "
                f"successive halving: ranked after {rungs.n_resources} epochs, "
                f"keeping the best 1/{rungs.factor:g} each time; the survivors "
                "train on" + constants_text(rule, tasks),
                planned,
                constant_epochs(rule, tasks[:finalists]),
                type(self).__name__,
            )
        n = len(more_results["iter"])
        progress.say(
            f"iter {itr}: {n} candidate{'s' if n != 1 else ''}, trained to "
            f"{until} epochs"
        )

    @staticmethod
    def _select_best_index(refit, refit_metric, results):
        """The best row of the last iteration (as ``HalvingRandomSearchCV``)."""
        last = np.flatnonzero(results["iter"] == np.max(results["iter"]))
        ranks = results[f"rank_test_{refit_metric}"][last]
        return last[np.argmin(ranks)]


@dataclasses.dataclass
class Rungs:
    """The resources (epochs) of every iteration, scikit-learn's arithmetic.

    Attributes
    ----------
    n_resources : list of int
        Epochs every racer of iteration ``i`` has trained when it is ranked;
        the last is ``max_resources`` (the survivors finish their training).
    min_resources, max_resources : int
    n_required_iterations, n_possible_iterations : int
        As ``HalvingRandomSearchCV`` computes them.
    """

    n_resources: list
    factor: float
    min_resources: int
    max_resources: int
    n_required_iterations: int
    n_possible_iterations: int


def plan_rungs(n_racers, max_resources, factor, min_resources, aggressive) -> Rungs:
    """The epochs of each iteration of a race of ``n_racers``.

    As ``HalvingRandomSearchCV`` plans them with ``resource`` a count: the
    iterations needed to narrow ``n_racers`` down to one, the iterations the
    resources allow from ``min_resources`` ("exhaust": the most that still
    lets the last iteration reach ``max_resources``; "smallest": 1 epoch) by
    steps of ``factor``, and with ``aggressive`` the first iterations all at
    ``min_resources`` until the racers fit. One change: the last iteration
    always trains to ``max_resources``, since the hyper-steps of every
    training are planned for ``max_epochs`` and survivors finish theirs.
    """
    # scikit-learn's expressions, floating point included.
    n_required = 1 + math.floor(math.log(n_racers, factor))
    if min_resources == "exhaust":
        low = max(1, int(max_resources // factor ** (n_required - 1)))
    elif min_resources == "smallest":
        low = 1
    else:
        low = int(min_resources)
    n_possible = 1 + math.floor(math.log(max_resources // low, factor))
    n_iterations = n_required if aggressive else min(n_possible, n_required)
    epochs = []
    for itr in range(n_iterations):
        power = max(0, itr - n_required + n_possible) if aggressive else itr
        epochs.append(min(int(factor**power * low), max_resources))
    epochs[-1] = max_resources
    return Rungs(epochs, factor, low, max_resources, n_required, n_possible)


def _top_k(results, k, itr) -> np.ndarray:
    """The rows of the ``k`` best candidates of iteration ``itr``, as
    scikit-learn's successive halving keeps them (``_top_k``: failed rows,
    NaN, last; its order among ties)."""
    rows = np.flatnonzero(np.asarray(results["iter"]) == itr)
    scores = np.asarray(results["mean_test_score"])[rows]
    order = np.roll(np.argsort(scores), np.count_nonzero(np.isnan(scores)))
    return rows[order[-k:]]


__all__ = ["HalvingHypergradSearchCV", "Rungs", "plan_rungs"]
