"""Scores that mean what GridSearchCV's mean: the tuned values as constants.

The tuning trainings of a candidate ran while its values moved, so their
scores are those of a path, not of the constants in ``params`` that the refit
trains. With ``rescore=True`` every split trains again from its
initialisation (the same seed, so the same initial weights and minibatch
order) with the candidate's reported values fixed, exactly as
``cross_val_score(clone(estimator).set_params(**params), cv=splits)`` would;
those scores, losses and times are the row's. Rows of one candidate that
report the same values (several ``max_epochs`` read off one training) share
one such training, read off at each of their epoch counts.

Where the tuned values are suspect (they validate worse as constants than
the tuning training that found them did, by more than ``CONSTANT_TOL``
relative: a value reached late from trained weights that does not train from
scratch, such as a strong decay under Adam; or a value reached a bound of its
range; or the validation loss the tuning recorded ended above where it
started) and every tuned entry of the candidate is a scalar, its starting
values are trained as constants too, and the rows report whichever
of the two reached the lower mean validation loss
(``cv_results_["tuned_values_kept"]`` says which). So a tuned value that
trains well along the path but collapses a network trained from scratch is
not reported.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math

import numpy as np
from joblib import delayed, hash

from ._dispatch import run_jobs
from ._exchange import LocalExchange
from ._outer_loop import assemble, run_splits
from ._results import at_bounds
from ._tasks import with_params

logger = logging.getLogger("skhypergrad")

#: Relative excess of the tuned values' constant validation loss over the
#: tuning training's that has the starting values trained and compared.
CONSTANT_TOL = 0.05


def constant_tasks(task, rows) -> list:
    """The constant-value trainings that score a tuning task's rows.

    Parameters
    ----------
    task : CandidateTask
        The tuning task.
    rows : list of dict
        Its rows (one per epoch value), from :func:`assemble`.

    Returns
    -------
    groups : list of (CandidateTask, list of int)
        Each training (no tuned entry: the values are set on the estimator)
        and the positions in ``rows`` it scores.
    """
    groups = {}
    for i, row in enumerate(rows):
        tuned = {
            k: v
            for k, v in row["params"].items()
            if k not in task.outer_params and k != task.epochs_name
        }
        groups.setdefault(hash(tuned), (tuned, []))[1].append(i)
    out = []
    for tuned, positions in groups.values():
        epochs = tuple(sorted(_epoch(task, rows[i]) for i in positions))
        estimator = with_params(task.estimator, tuned)
        if task.epochs_name is not None:
            estimator.set_params(**{task.epochs_name: max(epochs)})
        constant = dataclasses.replace(
            task, estimator=estimator, entries=[], epochs=epochs, start={}
        )
        out.append((constant, positions))
    return out


def _epoch(task, row):
    if task.epochs_name is None:
        return task.epochs[0]
    return row["params"][task.epochs_name]


def rescore(
    tasks, task_rows, X, y, splits, settings, *, n_jobs, pre_dispatch, progress
):
    """Replace the rows' split results with those of constant-value trainings.

    Every (training, split) pair is one joblib job: they are independent.
    First the tuned values are trained; then, for the candidates whose tuned
    values look suspect (``_constants_fell_short``), the starting values.

    Returns
    -------
    task_rows : list of list of dict
        The same rows; ``out`` now holds the constant trainings' scores, with
        the tuning's fit time added to each split's, and ``estimators`` the
        constant trainings' nets (when the settings keep them). A split whose
        tuning failed keeps its failure.
    """
    run = functools.partial(
        _run_constants,
        X=X,
        y=y,
        splits=splits,
        settings=settings,
        n_jobs=n_jobs,
        pre_dispatch=pre_dispatch,
        progress=progress,
    )
    # A candidate with nothing tuned trained its values as constants already.
    plans = [
        constant_tasks(t, rows) if t.entries else []
        for t, rows in zip(tasks, task_rows)
    ]
    scored = run([c for plan in plans for c, _ in plan])
    starts = [
        _start_task(t) if _constants_fell_short(plan, rows, scored) else None
        for t, plan, rows in zip(tasks, plans, task_rows)
    ]
    scored.update(run([c for c in starts if c is not None]))
    for task, plan, start, rows in zip(tasks, plans, starts, task_rows):
        for constant, positions in plan:
            for i in positions:
                epoch = _epoch(constant, rows[i])
                new = scored[id(constant)][epoch]
                rows[i]["tuned_values_kept"] = True
                if start is not None:
                    new = _lower_loss(task, rows[i], new, scored[id(start)][epoch])
                _merge(rows[i], new)
    return task_rows


def _run_constants(
    constants, *, X, y, splits, settings, n_jobs, pre_dispatch, progress
):
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


def _mean_loss(row) -> float:
    """Mean validation loss of the splits that trained (NaN if none did)."""
    losses = [o["loss"] for o in row["out"] if np.isfinite(o["loss"])]
    return float(np.mean(losses)) if losses else math.nan


def _constants_fell_short(plan, rows, scored) -> bool:
    """Whether the tuned values are suspect for some row: trained as
    constants they validated worse than the tuning training that found them
    (or could not be scored; a value reached late along the path that does not
    train from scratch), they reached a bound of their range, or the
    validation loss the tuning recorded ended above where tuning started."""
    for constant, positions in plan:
        for i in positions:
            fixed = _mean_loss(scored[id(constant)][_epoch(constant, rows[i])])
            path = _mean_loss(rows[i])
            if not math.isfinite(fixed) or _worse(fixed, path):
                return True
            if at_bounds(rows[i]):
                return True
            recorded = [r["val_loss"] for r in rows[i]["path"]]
            recorded = [v for v in recorded if math.isfinite(v)]
            if recorded and _worse(recorded[-1], recorded[0]):
                return True
    return False


def _worse(loss, reference) -> bool:
    return loss > reference + CONSTANT_TOL * abs(reference)


def _start_task(task):
    """The constant training at a candidate's starting values, against which
    its tuned values are checked (scalar entries only; None otherwise)."""
    scalar = all(e.granularity == "scalar" and not e.per_fold for e in task.entries)
    if not task.entries or not scalar:
        return None
    return dataclasses.replace(
        task,
        estimator=with_params(task.estimator, dict(task.start)),
        entries=[],
        start={},
    )


def _lower_loss(task, row, tuned, start):
    """The constant training to report: the tuned values', unless the starting
    values' reached a lower mean validation loss (then the row reports them)."""
    loss = [_mean_loss(r) for r in (tuned, start)]
    if not np.isfinite(loss[1]) or (np.isfinite(loss[0]) and loss[0] <= loss[1]):
        return tuned
    logger.info(
        "Candidate %s: the tuned values %s trained as constants reached a mean "
        "validation loss of %.4g, the starting values %s %.4g; the starting "
        "values are reported.",
        task.outer_params,
        {e.name: row["params"][e.name] for e in task.entries},
        loss[0],
        task.start,
        loss[1],
    )
    row["params"].update(task.start)
    row["tuned_values_kept"] = False
    return start


def _merge(row, new) -> None:
    """Give a tuning row the split results of its constant training."""
    out = []
    for tuning, fixed in zip(row["out"], new["out"]):
        if tuning["fit_error"] is not None:
            out.append(tuning)
            continue
        fixed = dict(fixed)
        fixed["fit_time"] += tuning["fit_time"]
        out.append(fixed)
    row["out"] = out
    row["estimators"] = new["estimators"]


__all__ = ["constant_tasks", "rescore"]
