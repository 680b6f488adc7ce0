"""The outer loop: splits train in lock-step, and the tuned hyperparameters
follow their hypergradients with a ``torch.optim`` optimiser.

One call of :func:`run_candidate` is one candidate of the outer search (one
draw of the discrete entries) from one starting point; it returns one row of
results per ``max_epochs`` value.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

import torch

from ...exceptions import (
    InvalidInputError,
    SkHypergradError,
)
from ...families import SplitValues, merge_best_params
from ...hypergrad import OuterOptimizer
from ...hypergrad._options import is_count
from ...penalties import parameter_layout
from ...utils._random import spawn_seeds
from .._results import CandidateRow
from ._exchange import GlooExchange, LocalExchange, gather_values
from ._fold import (
    Fold,
    build_fold,
    end_training,
    release,
    run_epoch,
    score_fold,
    start_training,
)
from ._hyper_step import HyperState, hyper_step

logger = logging.getLogger("skhypergrad")
RNG_LOCK = threading.Lock()


@dataclass
class Settings:
    """Search knobs, resolved from the estimator's constructor arguments."""

    solver: object
    outer: OuterOptimizer
    error_score: object
    scorer: object
    metric_names: list | None
    score_params: dict
    return_train_score: bool
    verbose: int
    cast_inputs: bool
    keep_estimators: bool = False
    unroll_steps: int = 1
    # The scorer key the decision rule compares ("score" for one metric).
    metric: str = "score"


def run_candidate(task, X, y, splits, settings, on_epoch=None):
    """Run one candidate from one starting point, every split in this process.

    Parameters
    ----------
    task : CandidateTask
        The estimator with the candidate's outer values set, its tuned
        entries, epoch values, starting values and seed.
    X, y : data, already cast
    splits : list of (train, test) index arrays
    settings : Settings
    on_epoch : callable, optional
        Called after every epoch with the hyper-step's path record (or None
        when no hyper-step followed it): the progress bar of a job run in the
        search's own process.

    Returns
    -------
    rows : list of CandidateRow
        One per ``max_epochs`` value.
    """
    indices = range(len(splits))
    part = run_splits(task, X, y, splits, indices, LocalExchange(), settings, on_epoch)
    return assemble(task, [part], settings)


def run_split(task, X, y, splits, index, address, settings):
    """Run split ``index`` of a candidate in a worker, in step with the others.

    The other splits of the candidate run in other workers; at every
    hyper-step they exchange their hypergradients through gloo
    (:class:`~skhypergrad.model_selection._training._exchange.GlooExchange`), so the
    candidate's results are those of :func:`run_candidate`. Returns this
    split's part, for :func:`assemble`.
    """
    exchange = GlooExchange(address, index, len(splits))
    try:
        return run_splits(task, X, y, splits, [index], exchange, settings)
    finally:
        exchange.close()


def run_splits(task, X, y, splits, indices, exchange, settings, on_epoch=None):
    """Build and train the splits ``indices`` of a candidate; return their part."""
    bad = [e for e in task.epochs if not is_count(e, low=1)]
    if bad:
        # A drawn max_epochs that is not an epoch count fails the candidate's
        # splits (error_score), as its training would in GridSearchCV.
        error = InvalidInputError(
            f"max_epochs must be a positive integer, got {bad[0]!r} "
            f"({type(bad[0]).__name__}). Give max_epochs as a list of integers or "
            "an integer distribution such as scipy.stats.randint."
        )
        if settings.error_score == "raise":
            raise error
        folds = [Fold(i, *splits[i], error=error) for i in indices]
        return _part(
            task, folds, {e: _snapshot(folds, None, settings) for e in task.epochs}
        )
    # torch's global generator (weight init, shuffling, dropout masks) is
    # process-wide: candidates sharing a process under a thread backend take
    # turns. Each split swaps its own stream in (Fold.rng).
    with RNG_LOCK:
        training = begin(task, X, y, splits, indices, exchange, settings)
        try:
            training.advance(max(task.epochs), on_epoch)
            return training.finish()
        finally:
            training.release()


def begin(task, X, y, splits, indices, exchange, settings):
    """Build the splits ``indices`` of a candidate and start their
    :class:`Training` (the caller holds ``RNG_LOCK``)."""
    seeds = spawn_seeds(task.seed, len(splits))
    folds = [Fold(i, *splits[i], seed=seeds[i]) for i in indices]
    try:
        for fold in folds:
            with fold.rng():
                _guarded(lambda f: _build(f, task, X, y, settings), fold, settings)
        return Training(task, folds, exchange, settings)
    except BaseException:
        for fold in folds:
            release(fold)
        raise


def _build(fold, task, X, y, settings) -> None:
    build_fold(
        fold,
        task.estimator,
        task.step,
        X,
        y,
        task.entries,
        settings,
        task.fit_params,
    )


class Training:
    """A candidate's splits in training, resumable between epochs.

    Built on splits that :func:`build_fold` set up, it plans the hyper-steps
    for ``max(task.epochs)`` epochs; :meth:`advance` trains up to an epoch
    (the hyper-steps due on the way included) and can be called again to go
    on where it stopped, so that a training stopped at ``e`` epochs and
    continued to ``max(task.epochs)`` gives what one call would.
    :meth:`part` reads what the splits give so far; :meth:`finish` ends the
    training. ``evaluate_candidates(..., until=e)`` keeps trainings paused this
    way (between processes:
    :func:`~skhypergrad.model_selection._training._paused.freeze`).
    """

    def __init__(self, task, folds, exchange, settings):
        self.task, self.folds, self.exchange = task, folds, exchange
        self.settings = settings
        self.epoch, self.done = 0, False
        self.path, self.snapshots = [], {}
        built = gather_values(exchange, {f.index: _built(f, task) for f in folds})
        ok = [i for i, v in built.items() if v.built > 0]
        self.state = None
        if not ok:  # every split failed to build
            self.done = True
            return
        self.first = ok[0]
        state = HyperState(
            task.entries, task.start, folds, built[self.first].sizes[0].tolist()
        )
        for fold in folds:
            if fold.error is None:
                state.apply(fold)
                with fold.rng():
                    _guarded(start_training, fold, settings)
        max_epochs = max(task.epochs)
        self.due = settings.outer.due_epochs(max_epochs) if task.entries else []
        # A process whose splits hold no tensor still steps along (and keeps the
        # schedule): a placeholder stands in.
        tensors, bounds = state.tensors(), state.bounds()
        if not tensors:
            tensors = [torch.zeros(0, dtype=torch.float64, requires_grad=True)]
            bounds = [(-math.inf, math.inf)]
        state.outer = settings.outer.init(tensors, bounds, len(self.due))
        self.state = state
        self.tails = {
            e: settings.outer.tail(sum(d < e for d in self.due)) for e in task.epochs
        }
        self.per_fold = [e for e in state.entries if e.per_fold]

    def _snapshot(self, epoch) -> None:
        state = self.state
        raw = _by_entry(state, self.tails[epoch].result(state.tensors()))
        self.snapshots[epoch] = _snapshot(self.folds, raw, self.settings)

    def advance(self, until, on_epoch=None) -> None:
        """Train up to epoch ``until`` (or until every split stopped)."""
        folds, state, settings = self.folds, self.state, self.settings
        while not self.done and self.epoch < until:
            self.epoch = epoch = self.epoch + 1
            for fold in folds:
                if fold.active:
                    with fold.rng():
                        run_epoch(fold, settings)
            if epoch in self.task.epochs:
                self._snapshot(epoch)
            active = gather_values(
                self.exchange, {f.index: Active(float(f.active)) for f in folds}
            )
            if not any(v.active > 0 for v in active.values()):
                self.done = True
                break
            if epoch not in self.due:
                if on_epoch is not None:
                    on_epoch(self.path[-1] if self.path else None)
                continue
            record = _step(folds, self.exchange, state, settings, epoch)
            record["values"] = _summaries(
                state, folds, self.exchange, self.per_fold, self.first
            )
            accepted = not (record["skipped"] or record["rejected"])
            for e, tail in self.tails.items():
                if epoch < e:
                    tail.add(len(self.path), state.tensors() if accepted else None)
            self.path.append(record)
            _log_step(record, settings)
            if on_epoch is not None:
                on_epoch(record)

    def part(self, epochs=None) -> dict:
        """What the splits give for ``epochs`` (default: all of the task's)
        as the training stands; an epoch not reached because every split
        stopped reads the splits as they stopped."""
        epochs = self.task.epochs if epochs is None else epochs
        if self.state is None:  # every split failed to build
            snapshots = {e: _snapshot(self.folds, None, self.settings) for e in epochs}
            return _part(self.task, self.folds, snapshots)
        for epoch in epochs:
            if epoch not in self.snapshots and self.done:
                self._snapshot(epoch)
        snapshots = {e: self.snapshots[e] for e in epochs}
        return _part(
            self.task, self.folds, snapshots, self.path, self.settings.keep_estimators
        )

    def finish(self) -> dict:
        """End the training (the callbacks' ``on_train_end``); its part."""
        if self.state is not None:
            self.done = True
            out = self.part()
            for fold in self.folds:
                with fold.rng():
                    end_training(fold)
            return out
        return self.part()

    def release(self) -> None:
        """Remove the splits' private files (after the training ended or failed)."""
        for fold in self.folds:
            release(fold)


@dataclass(frozen=True)
class Built:
    """What a split sends once built: whether it was, and the size of each
    shared entry on its net (0 for a per-split entry or a failed build)."""

    built: float
    sizes: tuple


@dataclass(frozen=True)
class Active:
    """What a split sends after each epoch: whether it still trains."""

    active: float


@dataclass(frozen=True)
class Summaries:
    """What a split sends for the path: one number per per-split entry."""

    values: tuple


def _built(fold, task) -> Built:
    sizes = [
        0 if fold.error is not None or e.per_fold else e.size(fold.net, len(fold.train))
        for e in task.entries
    ]
    return Built(float(fold.error is None), (torch.tensor(sizes, dtype=torch.float64),))


def _summaries(state, folds, exchange, per_fold, first) -> dict:
    """One number per entry for the path (a per-split entry: split ``first``'s)."""
    values = {
        e.name: e.summary(r.detach().numpy())
        for e, r in zip(state.entries, state.raw)
        if not e.per_fold
    }
    if per_fold:
        summaries = {
            f.index: Summaries(
                (
                    torch.tensor(
                        [
                            e.summary(raw[f.index].detach().numpy())
                            if f.index in raw
                            else math.nan
                            for e, raw in zip(state.entries, state.raw)
                            if e.per_fold
                        ],
                        dtype=torch.float64,
                    ),
                )
            )
            for f in folds
        }
        gathered = gather_values(exchange, summaries)
        for e, v in zip(per_fold, gathered[first].values[0]):
            values[e.name] = float(v)
    return {e.name: values[e.name] for e in state.entries}


def _step(folds, exchange, state, settings, epoch) -> dict:
    """One hyper-step, and the new values on every split."""
    start = time.perf_counter()
    record = hyper_step(folds, exchange, state, settings.outer, settings, epoch)
    for fold in folds:
        if fold.active:
            state.apply(fold)
        fold.fit_time += (time.perf_counter() - start) / len(folds)
    return record


def _guarded(step, fold, settings) -> None:
    """Run a step of a split's life; a failure fails the split (error_score)."""
    try:
        step(fold)
    except SkHypergradError:
        raise
    except Exception as exc:
        if settings.error_score == "raise":
            raise
        fold.error = exc


def _by_entry(state, tensors) -> list:
    """Tail-averaged raw values per entry: an array, or ``{split: array}``."""
    values, i = [], 0
    for entry, raw in zip(state.entries, state.raw):
        if entry.per_fold:
            n = len(raw)
            values.append({k: t.numpy() for k, t in zip(raw, tensors[i : i + n])})
            i += n
        else:
            values.append(tensors[i].numpy())
            i += 1
    return values


@dataclass(frozen=True)
class Snapshot:
    """The local splits read off at one epoch count.

    Attributes
    ----------
    out : dict
        ``{split: _fit_and_score-style result}`` of the local splits.
    raw : list or None
        The tail-averaged raw values per entry then (None if no split built).
    """

    out: dict
    raw: list | None


@dataclass(frozen=True)
class Part:
    """What one process hands back for its splits of a candidate (one
    producer, :func:`_part`; one reader, :func:`assemble`).

    Attributes
    ----------
    rows : dict
        ``{split: training row indices}``.
    snapshots : dict
        ``{epoch count: Snapshot}``.
    path : list of dict
        The hyper-step records.
    layout : object or None
        The net's parameter layout (None if no split built).
    estimators : dict
        ``{split: trained estimator}`` where kept.
    """

    rows: dict
    snapshots: dict
    path: list
    layout: object
    estimators: dict


def _snapshot(folds, raw, settings) -> Snapshot:
    """The local splits' scores now, and the raw values tuned so far."""
    out = {}
    for fold in folds:
        # Scoring creates DataLoader iterators, which draw from torch's
        # generator: its draws are forgotten, so that a row read off
        # mid-training leaves the training as it would be without it.
        with fold.rng(keep=False):
            out[fold.index] = score_fold(fold, settings)
    return Snapshot(out, raw)


def _part(task, folds, snapshots, path=(), keep=False) -> Part:
    """What a process hands back for its splits of a candidate (with their
    trained estimators if ``keep``)."""
    net = next((f.net for f in folds if f.net is not None), None)
    return Part(
        rows={f.index: f.train for f in folds},
        snapshots=snapshots,
        path=list(path),
        layout=None if net is None else parameter_layout(net.module_),
        estimators={f.index: f.estimator for f in folds if keep and f.error is None},
    )


def assemble(task, parts, settings) -> list:
    """The candidate's rows (one per epoch value) from its splits' parts."""
    layout = next((p.layout for p in parts if p.layout is not None), None)
    path = next((p.path for p in parts if p.path), [])
    estimators, train_rows = {}, {}
    for part in parts:
        estimators.update(part.estimators)
        train_rows.update(part.rows)
    rows = []
    for epoch in task.epochs:
        out = {}
        for part in parts:
            out.update(part.snapshots[epoch].out)
        values, tuned = _tuned(
            task, [p.snapshots[epoch].raw for p in parts], layout, train_rows
        )
        params = dict(task.outer_params)
        if task.epochs_name is not None:
            params[task.epochs_name] = epoch
        params.update(tuned)
        rows.append(
            CandidateRow(
                params=params,
                out=[out[i] for i in sorted(out)],
                path=[r for r in path if r["epoch"] < epoch],
                values=values,
                entries=task.entries,
                estimators=estimators,
            )
        )
    return rows


def _tuned(task, raws, layout, rows):
    """Tuned values (for the path tables) and ``set_params`` arguments."""
    raws = [r for r in raws if r is not None]
    if not raws:  # every split failed to build: report the start values
        values = {
            e.name: e.python_value(e.real.to_raw(task.start[e.name]))
            for e in task.entries
        }
        return values, {e.name: task.start[e.name] for e in task.entries}
    values, params = {}, {}
    for j, entry in enumerate(task.entries):
        if entry.per_fold:
            value = {k: entry.python_value(v) for r in raws for k, v in r[j].items()}
            value = SplitValues(dict(sorted(value.items())), rows, task.n_samples)
        else:
            value = entry.python_value(raws[0][j])
        values[entry.name] = value
        merge_best_params(
            params, entry.best_params(value, task.user_net, task.prefix, layout)
        )
    return values, params


def _log_step(record, settings) -> None:
    level = logging.INFO if settings.verbose else logging.DEBUG
    status = (
        f"{'skipped' if record['skipped'] else 'rejected'}: {record['reason']}"
        if record["reason"]
        else "ok"
    )
    logger.log(
        level,
        "epoch %d: val_loss=%.4f |g|=%.3g %s %s",
        record["epoch"],
        record["val_loss"],
        record["hypergrad_norm"],
        record["values"],
        status,
    )
