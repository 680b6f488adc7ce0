"""The decision rule: which values a candidate reports, and with which score.

The tuning trainings of a candidate ran while its values moved, so their
scores are those of a path, not of constants that the refit could train, and
the hypergradient follows the validation *loss*, which is not the user's
yardstick (cross-entropy can prefer a net that predicts every class equally to
an overfit one that is far more accurate). A decision rule settles both, as
``GridSearchCV`` settles a grid: it proposes value sets for the candidate (the
tuned values, the starting values, a point of the path...), each is trained as
constants on every split from the split's initialisation (the same seed, so
``cross_val_score(clone(estimator).set_params(**values), cv=splits)``), and
the rule picks among them by the user's ``scoring`` (the ``refit`` metric).
The row then reports the chosen values with the scores, losses and times of
their constant trainings, so ``best_score_`` is the CV score of
``best_params_`` and a search never reports values that score worse, on its
own folds, than the starting values it began from.

A rule is a value (:class:`DecisionRule`): the search takes one as
``rescore``; ``rescore=True`` is :class:`ScoreConstants` with its defaults.
Rows of one candidate that report the same values (several ``max_epochs``
read off one training) share one constant training, read off at each of their
epoch counts, and so do proposals that coincide.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
from joblib import delayed, hash

from ..hypergrad._options import Options, invalid
from ._tasks import with_params
from ._training._dispatch import run_jobs
from ._training._exchange import LocalExchange
from ._training._outer_loop import assemble, run_splits

logger = logging.getLogger("skhypergrad")

_PROPOSALS = ("tuned", "start", "path_best")


class DecisionRule(Options):
    """How a candidate's reported values are chosen (base class).

    A subclass proposes value sets for each row of a tuned candidate
    (:meth:`propose`); the search trains each as constants on every split
    and hands the rule their cross-validated scores (:meth:`choose`). Pass an
    instance as ``rescore`` to :class:`~skhypergrad.HypergradSearchCV`.
    """

    def propose(self, task, row) -> dict:
        """Value sets to train as constants, by name, in order of preference.

        Parameters
        ----------
        task : CandidateTask
            The tuning task: ``task.start`` holds the starting values,
            ``task.entries`` the tuned entries.
        row : CandidateRow
            The tuning row: ``row.params`` (outer and tuned values, ready
            for ``set_params``), ``row.path`` (the path records, each with
            ``val_loss`` and the ``values`` after its step).

        Returns
        -------
        proposals : dict
            Name -> ``set_params`` arguments of the tuned entries. An empty
            dict keeps the row's tuning scores.
        """
        raise NotImplementedError

    def choose(self, scores: dict) -> str:
        """The name of the proposal to report.

        Parameters
        ----------
        scores : dict
            Name -> mean cross-validated score (the ``refit`` metric; greater
            is better, NaN where a split failed), in :meth:`propose` order.

        Returns
        -------
        name : str
        """
        finite = {k: v for k, v in scores.items() if math.isfinite(v)}
        if not finite:
            return next(iter(scores))
        best = max(finite.values())
        return next(k for k, v in finite.items() if v == best)

    def n_planned(self, task):
        """How many value sets :meth:`propose` gives a row of ``task`` at
        most, for the progress bar's total (None: cannot say beforehand)."""
        return None

    def _validate_options(self) -> None:
        """Check the options (none in the base class)."""


class ScoreConstants(DecisionRule):
    """Report the best of the proposals by the user's score, trained as constants.

    Parameters
    ----------
    proposals : tuple of str, default=("tuned", "start")
        What is trained as constants and compared, in order of preference
        among equal scores: ``"tuned"`` (the values tuned, averaged over the
        last hyper-steps), ``"start"`` (the starting values: the search is
        never worse, on its folds, than not searching) and ``"path_best"``
        (the values at which the lowest validation loss of the path was
        measured: a run-up of the values after it is then not reported).
        ``"start"`` and ``"path_best"`` apply to candidates whose tuned
        entries are all scalars; each costs one more training per split
        where its values differ from the others.

    See Also
    --------
    DecisionRule : The base class, to write another rule.

    Examples
    --------
    >>> from skhypergrad.model_selection import ScoreConstants
    >>> ScoreConstants(proposals=("tuned", "path_best", "start"))
    ScoreConstants(proposals=('tuned', 'path_best', 'start'))
    >>> ScoreConstants().choose({"tuned": 0.81, "start": 0.86})
    'start'
    """

    def __init__(self, proposals=("tuned", "start")):
        self.proposals = proposals

    def _validate_options(self) -> None:
        names = self.proposals
        if (
            not isinstance(names, tuple | list)
            or not names
            or any(n not in _PROPOSALS for n in names)
            or len(set(names)) != len(names)
        ):
            raise invalid(
                self,
                "proposals",
                f"a non-empty tuple of distinct names among {list(_PROPOSALS)}",
            )

    def n_planned(self, task) -> int:
        """The proposals that apply to ``task``'s entries."""
        if _scalar(task):
            return len(self.proposals)
        return int("tuned" in self.proposals)

    def propose(self, task, row) -> dict:
        """The tuned values, and the starting values and path's best where
        every tuned entry is a scalar (see the class parameters)."""
        scalar = _scalar(task)
        out = {}
        for name in self.proposals:
            if name == "tuned":
                out[name] = tuned_values(task, row)
            elif name == "start" and scalar:
                out[name] = dict(task.start)
            elif name == "path_best" and scalar and row.path:
                out[name] = _path_best(task, row.path)
        return out


def _scalar(task) -> bool:
    return all(e.granularity == "scalar" and not e.per_fold for e in task.entries)


def tuned_values(task, row) -> dict:
    """The ``set_params`` arguments of a row's tuned entries."""
    return {
        k: v
        for k, v in row.params.items()
        if k not in task.outer_params and k != task.epochs_name
    }


def _path_best(task, path) -> dict:
    """The values at which the lowest validation loss of the path was
    measured (a record's loss is measured before its step: at the values the
    step before left, or the starting values)."""
    losses = [r["val_loss"] if math.isfinite(r["val_loss"]) else math.inf for r in path]
    i = int(np.argmin(losses))
    if i == 0 or not math.isfinite(losses[i]):
        return dict(task.start)
    values = path[i - 1]["values"]
    out = {}
    for entry in task.entries:
        out.update(
            entry.best_params(values[entry.name], task.user_net, task.prefix, None)
        )
    return out


def decide(
    rule, tasks, task_rows, X, y, splits, settings, *, n_jobs, pre_dispatch, progress
):
    """Replace the rows' split results with those of the values ``rule`` chose.

    Every (constant training, split) pair is one joblib job: they are
    independent. Rows are changed in place and returned: ``out`` holds the
    chosen constant training's scores (with the tuning's fit time added to
    each split's), ``params`` the chosen values, ``reported`` the chosen
    proposal's name, ``proposal_scores`` every proposal's mean score, and
    ``estimators`` the chosen training's nets (when the settings keep them).
    A split whose tuning failed keeps its failure.
    """
    # A candidate with nothing tuned trained its values as constants already.
    plans = [
        _plan(rule, t, rows) if t.entries else ([], [])
        for t, rows in zip(tasks, task_rows)
    ]
    constants = [c for trainings, _ in plans for c in trainings]
    scored = _run_constants(
        constants, X, y, splits, settings, n_jobs, pre_dispatch, progress
    )
    for task, (_, proposals), rows in zip(tasks, plans, task_rows):
        for row, proposed in zip(rows, proposals):
            if proposed:
                named = {
                    name: (values, scored[id(c)][_epoch(c, row)])
                    for name, (values, c) in proposed.items()
                }
                _report(rule, task, row, named, settings)
    return task_rows


def _plan(rule, task, rows) -> tuple:
    """The constant trainings of a task, one per distinct value set, and per
    row its proposals: ``{name: (values, training)}``."""
    trainings, proposals = {}, []
    for row in rows:
        proposed = {}
        for name, values in rule.propose(task, row).items():
            key = hash(values)
            if key not in trainings:
                trainings[key] = (values, set())
            trainings[key][1].add(_epoch(task, row))
            proposed[name] = (values, key)
        proposals.append(proposed)
    built = {}
    for key, (values, epochs) in trainings.items():
        epochs = tuple(sorted(epochs))
        estimator = with_params(task.estimator, values)
        if task.epochs_name is not None:
            estimator.set_params(**{task.epochs_name: max(epochs)})
        built[key] = dataclasses.replace(
            task, estimator=estimator, entries=[], epochs=epochs, start={}
        )
    proposals = [
        {name: (values, built[key]) for name, (values, key) in p.items()}
        for p in proposals
    ]
    return list(built.values()), proposals


def _epoch(task, row):
    if task.epochs_name is None:
        return task.epochs[0]
    return row.params[task.epochs_name]


def _run_constants(constants, X, y, splits, settings, n_jobs, pre_dispatch, progress):
    """Train each constant task on every split; ``{id(task): {epoch: row}}``."""
    if not constants:
        return {}
    progress.extend(sum(max(c.epochs) for c in constants))
    jobs = (
        delayed(run_splits)(c, X, y, splits, [k], LocalExchange(), settings)
        for c in constants
        for k in range(len(splits))
    )
    parts = run_jobs(jobs, n_jobs=n_jobs, pre_dispatch=pre_dispatch)
    scored = {}
    for c in constants:
        scored[id(c)] = dict(
            zip(c.epochs, assemble(c, [next(parts) for _ in splits], settings))
        )
        progress.count(max(c.epochs))
    return scored


def mean_score(row, metric) -> float:
    """Mean test score of a constant training's row on ``metric`` (NaN if
    any split failed, as ``GridSearchCV`` ranks such a candidate last)."""
    scores = [_metric(o["test_scores"], metric) for o in row.out]
    scores = np.asarray(scores, dtype=float)
    return float(scores.mean()) if np.isfinite(scores).all() else math.nan


def _metric(scores, metric):
    """A split's score on ``metric``; a dict without it (a callable's own
    metrics, with ``refit`` False or callable) is judged by its first."""
    if not isinstance(scores, dict):
        return scores
    return scores[metric] if metric in scores else next(iter(scores.values()))


def _report(rule, task, row, named, settings) -> None:
    """Give a tuning row the values ``rule`` chose and their trainings' results
    (``named``: ``{proposal: (values, constant training's row)}``)."""
    scores = {name: mean_score(r, settings.metric) for name, (_, r) in named.items()}
    chosen = rule.choose(scores)
    if chosen not in named:
        raise ValueError(
            f"{rule!r}.choose returned {chosen!r}, which is not one of the "
            f"proposals it was given: {list(named)}."
        )
    tuned = tuned_values(task, row)
    values, fixed_row = named[chosen]
    if chosen != "tuned":
        logger.info(
            "Candidate %s: trained as constants, the proposals scored %s; the %s "
            "values %s are reported instead of the tuned values %s.",
            task.outer_params,
            {k: round(v, 4) for k, v in scores.items()},
            chosen,
            values,
            tuned,
        )
    for key in tuned:
        row.params.pop(key)
    row.params.update(values)
    row.reported = chosen
    row.proposal_scores = scores
    out = []
    for tuning, fixed in zip(row.out, fixed_row.out):
        if tuning["fit_error"] is not None:
            out.append(tuning)
            continue
        fixed = dict(fixed)
        fixed["fit_time"] += tuning["fit_time"]
        out.append(fixed)
    row.out = out
    row.estimators = fixed_row.estimators


__all__ = ["DecisionRule", "ScoreConstants", "decide"]
