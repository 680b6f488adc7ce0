"""The jobs of the outer search: one per candidate and starting point.

A :class:`CandidateTask` holds everything a worker needs to run one
candidate (the estimator with its outer values set, the tuned entries, the
``max_epochs`` values, the starting values and the seed); it is picklable
for joblib.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.base import clone

from ..exceptions import InvalidHyperparameterError
from ..net import split_estimator
from ..utils._random import generator, spawn_seeds


def make_tasks(estimator, candidates, subspaces, context) -> list:
    """One task per candidate and starting point.

    Parameters
    ----------
    estimator : estimator
        The user's estimator (a skorch net or a Pipeline ending in one).
    candidates : list of (int, dict)
        Index of the candidate's subspace, and its outer values.
    subspaces : list of Subspace
    context : tuple
        ``(net_params, seed, n_starts, n_samples)``: the network's fit
        parameters, the seed of the starting points and tasks, starting
        points per candidate, and rows of ``X``.

    Returns
    -------
    tasks : list of CandidateTask
        The starting points of a candidate are consecutive; the first is the
        middle of every range, the others are drawn from the ranges.
    """
    net_params, seed, n_starts, n_samples = context
    net, step = split_estimator(estimator)
    prefix = "" if step is None else f"{step}__"
    rng = generator(seed)
    seeds = spawn_seeds(seed, len(candidates) * n_starts)
    tasks = []
    for i, (index, outer) in enumerate(candidates):
        space = subspaces[index]
        candidate = with_params(estimator, outer)
        epochs = space.epochs or (split_estimator(candidate)[0].max_epochs,)
        if space.epochs:
            candidate.set_params(**{space.epochs_name: max(epochs)})
        for s in range(n_starts):
            start = {
                e.name: e.real.center() if s == 0 else float(e.real.sample(rng))
                for e in space.tuned
            }
            tasks.append(
                CandidateTask(
                    candidate,
                    step,
                    space.tuned,
                    outer,
                    epochs,
                    space.epochs_name,
                    start,
                    seeds[i * n_starts + s],
                    net_params,
                    net,
                    prefix,
                    n_samples,
                )
            )
    return tasks


def with_params(estimator, params):
    """A clone with a candidate's outer values, or a clear error for a bad name."""
    try:
        return clone(estimator).set_params(**params)
    except (ValueError, TypeError) as exc:
        raise InvalidHyperparameterError(
            f"The candidate {params!r} cannot be set on the estimator: {exc} Check "
            "the names in param_distributions (estimator.get_params() lists them; "
            "in a Pipeline, prefix them with the step name)."
        ) from exc


@dataclass
class CandidateTask:
    """Everything one job of the outer search needs, picklable for joblib."""

    estimator: object
    step: str | None
    entries: list
    outer_params: dict
    epochs: tuple
    epochs_name: str | None
    start: dict
    seed: int
    fit_params: dict
    user_net: object
    prefix: str
    n_samples: int = 0
