"""Successive halving over epochs, on the same trainings.

The racers (a candidate from one starting point each) all start training,
planned for ``max_epochs``; at each rung they are ranked by their splits'
validation score at that epoch, and the best ``1 / factor`` go on *from
where they stopped* (their nets, optimiser states, tuned values and random
streams are kept), so that a survivor's training is the one a full search of
that candidate would run. Under ``n_jobs > 1`` a paused training travels
between the workers and the search's process as bytes (:func:`freeze`).
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
import shutil

import numpy as np
import torch
from joblib import delayed
from skorch import NeuralNet

try:  # joblib >= 1.5 depends on it; older joblib vendors it
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle

from ..._callback_base import SearchCallback
from ...exceptions import UnsupportedEstimatorError
from ...utils._validation import InvalidParameterError
from ._dispatch import _refuse_threads, lost_workers, run_jobs
from ._exchange import LocalExchange
from ._fold import portable, restore
from ._outer_loop import RNG_LOCK, Training, assemble, begin


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


def race(tasks, X, y, splits, settings, rungs, progress, *, n_jobs, pre_dispatch):
    """Race the tasks over ``rungs.n_resources``.

    Parameters
    ----------
    tasks : list of CandidateTask
        Their ``epochs`` are the rungs' epochs, ``epochs_name`` the net's
        ``max_epochs`` (with any Pipeline prefix).
    rungs : Rungs
    progress : SearchProgress

    Returns
    -------
    rows : list of dict
        One per racer and iteration it reached, in order of iteration, with
        ``iter`` and ``n_resources``.
    finalists : list of (CandidateTask, dict)
        The racers of the last iteration and their row there.
    n_candidates : list of int
        Racers at each iteration.
    """
    _refuse_threads(n_jobs)
    # A job that runs in this process keeps its training as it is; one that
    # runs elsewhere (it does not find the token) sends it back frozen.
    token = object()
    _SEARCHES_HERE.add(token)
    live = list(range(len(tasks)))
    held = [None] * len(tasks)  # a live Training (here) or a Frozen one
    rows, n_candidates, done = [], [], 0
    last = len(rungs.n_resources) - 1
    try:
        for itr, until in enumerate(rungs.n_resources):
            n_candidates.append(len(live))
            progress.rung(itr, len(live), until)
            jobs = [
                delayed(_run_rung)(
                    held[i] if held[i] is not None else tasks[i],
                    X,
                    y,
                    splits,
                    settings,
                    until,
                    itr == last,
                    token,
                )
                for i in live
            ]
            scores = []
            with lost_workers():
                results = run_jobs(jobs, n_jobs=n_jobs, pre_dispatch=pre_dispatch)
                for i, (part, training) in zip(live, results):
                    held[i] = training
                    task = dataclasses.replace(tasks[i], epochs=(until,))
                    (row,) = assemble(task, [part], settings)
                    row.iter, row.n_resources = itr, until
                    rows.append(row)
                    scores.append((i, row))
                    progress.count(until - done)
            done = until
            if itr == last:
                return rows, [(tasks[i], row) for i, row in scores], n_candidates
            keep = math.ceil(len(live) / rungs.factor)
            survivors = set(_top(scores, keep))
            for i in live:
                if i not in survivors:
                    _discard(held[i])
                    held[i] = None
            live = [i for i in live if i in survivors]
    finally:  # an error on the way: nothing left behind
        _SEARCHES_HERE.discard(token)
        for h in held:
            if h is not None:
                _discard(h)
    raise AssertionError("a race has at least one iteration")  # pragma: no cover


def _top(scores, k) -> list:
    """The ``k`` racers of the best mean validation score, as scikit-learn's
    halving keeps them (failed splits, NaN, last; its order among ties)."""
    means = np.array([_mean_score(row) for _, row in scores])
    order = np.roll(np.argsort(means), np.count_nonzero(np.isnan(means)))
    return [scores[j][0] for j in order[-k:]]


def _mean_score(row) -> float:
    values = [o["test_scores"] for o in row.out]
    if any(isinstance(v, dict) for v in values):
        raise InvalidParameterError(
            "HalvingHypergradSearchCV ranks the candidates by one metric, but the "
            f"scoring callable returned a dict ({sorted(values[0])}). Give "
            "scoring one metric (a name or a callable returning a number), or use "
            "HypergradSearchCV for several."
        )
    return float(np.mean(values))


def _run_rung(held, X, y, splits, settings, until, last, token):
    """Train one racer up to epoch ``until``: its part at that epoch, and its
    training to go on with (live if this is the search's process, frozen
    otherwise; None after the last iteration)."""
    with RNG_LOCK:
        if isinstance(held, Training):
            training = held
        elif isinstance(held, Frozen):
            training = thaw(held.data)
            for fold in training.folds:
                restore(fold, X, y)
        else:  # a task: its first rung
            indices = range(len(splits))
            training = begin(held, X, y, splits, indices, LocalExchange(), settings)
        try:
            training.advance(until)
            part = training.part((until,))
            if not last:
                here = token in _SEARCHES_HERE
                return part, training if here else Frozen(training)
            training.finish()
        except BaseException:
            training.release()
            raise
    training.release()
    return part, None


def _discard(held) -> None:
    """End an eliminated racer: remove its splits' private files."""
    if isinstance(held, Training):
        held.release()
    elif isinstance(held, Frozen):
        for path in held.files:
            shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------ freeze / thaw
class _Pickler:
    """cloudpickle (as joblib sends jobs: a module defined in a script goes
    by value), with skorch nets and skhypergrad's callbacks pickled as plain
    objects.

    skorch pickles a net's module, criterion and optimizer apart from the rest
    of the net (in a ``torch.save`` buffer of their own), so the objects of a
    training that point into the module (the families' bindings, hooks, the
    tuned values' optimiser) would come back pointing at copies; and
    skhypergrad's callbacks leave out what only a training in progress holds
    (their hooks, the net), as a fitted net should. Pickled as plain objects,
    in one stream, every reference comes back to the same one.
    """

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):  # noqa: D102
            if isinstance(obj, NeuralNet | SearchCallback):
                state = dict(obj.__dict__)
                return (_new_object, (type(obj),), state, None, None, _set_dict)
            return super().reducer_override(obj)

    Unpickler = pickle.Unpickler
    load = pickle.load
    dump = pickle.dump


def _new_object(cls):
    return cls.__new__(cls)


def _set_dict(obj, state):
    obj.__dict__.update(state)
    return obj


class Frozen:
    """A paused training as bytes, with its splits' private directories (to
    remove if it is eliminated, without thawing it)."""

    def __init__(self, training):
        self.files = [f.files for f in training.folds if f.files is not None]
        for fold in training.folds:
            portable(fold)
        try:
            self.data = freeze(training)
        except Exception as exc:
            raise UnsupportedEstimatorError(
                "HalvingHypergradSearchCV with n_jobs > 1 moves a paused training "
                "between processes by pickling it, and this one cannot be pickled "
                f"({type(exc).__name__}: {exc}). Use n_jobs=1 (the same results), "
                "or HypergradSearchCV."
            ) from exc


# The tokens of the races of this process (objects compared by identity: a
# copy unpickled in a worker is not one of them).
_SEARCHES_HERE: set = set()


def freeze(training) -> bytes:
    """A paused :class:`Training` as bytes, to go on elsewhere (:func:`thaw`)."""
    buffer = io.BytesIO()
    torch.save(training, buffer, pickle_module=_Pickler, pickle_protocol=4)
    return buffer.getvalue()


def thaw(data) -> Training:
    """The :class:`Training` that :func:`freeze` turned into ``data``."""
    return torch.load(io.BytesIO(data), weights_only=False)


__all__ = ["Rungs", "freeze", "plan_rungs", "race", "thaw"]
