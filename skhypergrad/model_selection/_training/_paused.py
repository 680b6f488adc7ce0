"""Trainings paused between calls of ``evaluate_candidates``, and how they travel.

A call of ``evaluate_candidates(..., until=e)`` trains its candidates to epoch
``e`` and keeps every training that has epochs left, paused; the next call can
go on with some of them (:class:`Resume`) *from where they stopped* (their
nets, optimiser states, tuned values and random streams are kept), so that
their rows are those one uninterrupted training gives. The successive halving
search is this: one call per iteration, the survivors resumed. Under
``n_jobs > 1`` a paused training travels between the workers and the search's
process as bytes (:func:`freeze`).
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import shutil

import torch
from joblib import delayed, effective_n_jobs
from skorch import NeuralNet

try:  # joblib >= 1.5 depends on it; older joblib vendors it
    import cloudpickle
except ImportError:  # pragma: no cover
    from joblib.externals import cloudpickle

from ..._callback_base import SearchCallback
from ...exceptions import InvalidInputError, UnsupportedEstimatorError
from ._dispatch import _refuse_threads, lost_workers, run_jobs
from ._exchange import LocalExchange
from ._fold import portable, restore
from ._outer_loop import RNG_LOCK, Training, begin


@dataclasses.dataclass(frozen=True)
class Resume:
    """A paused row of an earlier ``evaluate_candidates`` call, to go on with.

    Pass it among the candidates of the next call: the training that gave
    the row goes on from where it stopped.

    Attributes
    ----------
    row : int
        The row's index in the results that call returned.
    """

    row: int


class PausedTrainings:
    """The paused trainings of one fit, by the index of the row that paused them.

    :meth:`run` trains a call's racers (new tasks or :class:`Resume` rows) up
    to an epoch; the trainings that have epochs left are kept for the next
    call, the others end. A call discards every paused training it does not
    go on with; :meth:`close` discards the rest (the fit's end, or an error).
    """

    def __init__(self):
        # row index -> (task, a live Training or a Frozen one, epoch reached)
        self.held = {}

    def take(self, racers) -> list:
        """The racers of a call as ``(task, held, epoch)``: a task as
        ``(task, task, 0)``, a :class:`Resume` row as its task, its paused
        training and the epoch it reached. The trainings not taken are
        discarded."""
        rows = {r.row for r in racers if isinstance(r, Resume)}
        missing = sorted(rows - set(self.held))
        if missing:
            raise InvalidInputError(
                f"Resume(row={missing[0]}) names a row whose training is not "
                "paused: only the rows of the previous evaluate_candidates call "
                "that stopped before their last epoch can go on. Resume one of "
                f"{sorted(self.held) or 'none (no training is paused)'}."
            )
        for row in set(self.held) - rows:
            _discard(self.held.pop(row)[1])
        return [
            self.held.pop(r.row) if isinstance(r, Resume) else (r, r, 0) for r in racers
        ]

    def run(
        self, racers, X, y, splits, settings, until, *, on_result, n_jobs, pre_dispatch
    ):
        """Train every racer to epoch ``until`` (a task from its start);
        ``on_result(i)`` is called as racer ``i``'s result arrives.

        Returns
        -------
        done : list of (Training or Frozen or None, dict)
            Per racer (a task or a paused training, :meth:`take`), its
            training if paused (None if it ended) and its part at ``until``;
            the caller keeps the paused ones (:meth:`keep`).
        """
        _refuse_threads(n_jobs)
        # joblib runs the jobs of one worker in this process (they hand back
        # their training as it is); elsewhere a training comes back frozen.
        here = effective_n_jobs(n_jobs) == 1
        jobs = [
            delayed(_run_until)(held, X, y, splits, settings, until, here)
            for held in racers
        ]
        done = []
        try:
            with lost_workers():
                for result in run_jobs(jobs, n_jobs=n_jobs, pre_dispatch=pre_dispatch):
                    done.append(result)
                    on_result(len(done) - 1)
        except BaseException:
            for training, _ in done:
                if training is not None:
                    _discard(training)
            raise
        return done

    def keep(self, row, task, training, epoch) -> None:
        """Hold a paused training (of ``task``, at ``epoch``) under the index
        of the row it gave."""
        self.held[row] = (task, training, epoch)

    def close(self) -> None:
        """Discard every paused training (the fit ended or failed)."""
        for row in list(self.held):
            _discard(self.held.pop(row)[1])


def _run_until(held, X, y, splits, settings, until, here):
    """Train one racer up to epoch ``until``: its training to go on with
    (live if ``here``, frozen otherwise; None if it ended) and its part at
    that epoch."""
    with RNG_LOCK:
        if isinstance(held, Training):
            training = held
        elif isinstance(held, Frozen):
            training = thaw(held.data)
            for fold in training.folds:
                restore(fold, X, y)
        else:  # a task: its first call
            indices = range(len(splits))
            training = begin(held, X, y, splits, indices, LocalExchange(), settings)
        try:
            training.advance(until)
            part = training.part((until,))
            if until < max(training.task.epochs):
                return (training if here else Frozen(training)), part
            training.finish()
        except BaseException:
            training.release()
            raise
    training.release()
    return None, part


def _discard(held) -> None:
    """End a paused training that does not go on: remove its splits' files."""
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


def freeze(training) -> bytes:
    """A paused :class:`Training` as bytes, to go on elsewhere (:func:`thaw`)."""
    buffer = io.BytesIO()
    torch.save(training, buffer, pickle_module=_Pickler, pickle_protocol=4)
    return buffer.getvalue()


def thaw(data) -> Training:
    """The :class:`Training` that :func:`freeze` turned into ``data``."""
    return torch.load(io.BytesIO(data), weights_only=False)


__all__ = ["PausedTrainings", "Resume", "freeze", "thaw"]
