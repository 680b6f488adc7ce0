"""The outer loop: splits train in lock-step, and the tuned hyperparameters
follow their hypergradients with a ``torch.optim`` optimiser.

One call of :func:`run_candidate` is one candidate of the outer search (one
draw of the discrete entries) from one starting point; it returns one row of
results per ``max_epochs`` value.
"""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import FitFailedWarning
from torch.optim.swa_utils import AveragedModel

from ..bilevel import net_hypergradient, sample_batch
from ..exceptions import InvalidInputError, SkHypergradError
from ..penalties import parameter_layout
from ._fold import (
    Fold,
    build_fold,
    end_training,
    run_epoch,
    score_fold,
    start_training,
)

logger = logging.getLogger("skhypergrad")
_GLOBAL_RNG_LOCK = threading.Lock()


@dataclass
class Settings:
    """Search knobs, resolved from the estimator's constructor arguments."""

    solver: object
    hyper_optimizer: type
    hyper_optimizer_kwargs: dict
    hyper_lr: float
    hyper_lr_schedule: str
    hyper_interval: int
    warmup: object
    hyper_batch_size: int
    average_last: float
    error_score: object
    scorer: object
    metric_names: list | None
    score_params: dict
    return_train_score: bool
    verbose: int
    cast_inputs: bool


class HyperState:
    """Raw (unconstrained) values of the tuned entries.

    A shared entry has one raw tensor, moved by the splits' mean
    hypergradient; a ``per_fold`` entry has one per split.
    """

    def __init__(self, entries, starts, folds):
        self.entries = entries
        self.raw = []
        for entry in entries:
            if entry.per_fold:
                self.raw.append(
                    {
                        f.index: self._tensor(entry, starts[entry.name], f)
                        for f in folds
                        if f.error is None
                    }
                )
            else:
                fold = next(f for f in folds if f.error is None)
                self.raw.append(self._tensor(entry, starts[entry.name], fold))

    @staticmethod
    def _tensor(entry, value, fold):
        size = entry.size(fold.net, len(fold.train))
        raw = torch.as_tensor(entry.real.to_raw(value), dtype=torch.float64)
        return raw.reshape(1).expand(size).clone().requires_grad_(True)

    def tensors(self) -> list:
        """Every distinct raw tensor (what the optimiser updates)."""
        out = []
        for entry, raw in zip(self.entries, self.raw):
            out.extend(raw.values() if entry.per_fold else [raw])
        return out

    def for_fold(self, index) -> list:
        """The raw tensor each entry uses on split ``index``."""
        return [
            raw[index] if entry.per_fold else raw
            for entry, raw in zip(self.entries, self.raw)
        ]

    def to_values(self, like):
        """A function mapping a split's raw tensors to values with ``like``'s
        dtype and device (the raw values stay float64 on the CPU)."""

        def values(raw):
            return [
                e.real.from_raw(r).to(device=like.device, dtype=like.dtype)
                for e, r in zip(self.entries, raw)
            ]

        return values

    def apply(self, fold) -> None:
        """Give a split's bindings the current values for training."""
        like = next(fold.net.module_.parameters())
        with torch.no_grad():
            values = self.to_values(like)(self.for_fold(fold.index))
            for binding, value in zip(fold.bindings, values):
                binding.apply(value.detach())


class TailAverage:
    """Mean of the raw values over the last ``fraction`` of the planned
    hyper-steps: torch's ``swa_utils.AveragedModel`` (a running mean, without
    a copy per step of a million values)."""

    def __init__(self, n_planned, fraction):
        self.start = n_planned - max(1, math.ceil(fraction * n_planned))
        self.average = None

    def add(self, index, tensors) -> None:
        """Count an accepted hyper-step's values (``tensors`` None if skipped)."""
        if tensors is None or index < self.start:
            return
        values = torch.nn.ParameterList(
            torch.nn.Parameter(t.detach(), requires_grad=False) for t in tensors
        )
        if self.average is None:
            self.average = AveragedModel(values)
        self.average.update_parameters(values)

    def result(self, current) -> list:
        """The mean, or the current values when no step was counted."""
        if self.average is None:
            return [t.detach().clone() for t in current]
        return [p.detach().clone() for p in self.average.module]


def hyper_step(folds, state, optimizer, settings, generator, epoch) -> dict:
    """Set the mean hypergradient of the splits as ``.grad``, take one step.

    Returns the path record; a step whose hypergradient or update is not
    finite is skipped and recorded, never applied.
    """
    record = {"epoch": epoch, "hyper_lr": optimizer.param_groups[0]["lr"]}
    grads, losses, iterations, reasons = {}, [], [], []
    for fold in folds:
        if not fold.active:
            continue
        try:
            grad, info = _fold_hypergradient(fold, state, settings, generator)
        except FloatingPointError as exc:
            # SolverDivergedError included: a diverged step is skipped. Any other
            # error (a misconfigured solver, out of memory) propagates.
            reasons.append(f"split {fold.index}: {exc}")
            continue
        grads[fold.index] = grad
        losses.append(info.outer_loss)
        iterations.append(info.solve.n_iter)
    record["val_loss"] = float(np.mean(losses)) if losses else math.nan
    record["solver_iter"] = float(np.mean(iterations)) if iterations else 0.0
    if reasons or not grads:
        reason = "; ".join(reasons) or "no split is still training"
        return _skipped(record, reason, math.nan)
    _set_grads(state, grads)
    norm = math.sqrt(
        sum(float((t.grad**2).sum()) for t in state.tensors() if t.grad is not None)
    )
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return _skipped(record, "non-finite hypergradient", norm)
    before = [t.detach().clone() for t in state.tensors()]
    optimizer.step()
    at_bound = _project(state)
    if not all(bool(torch.isfinite(t).all()) for t in state.tensors()):
        with torch.no_grad():
            for t, b in zip(state.tensors(), before):
                t.copy_(b)
        return _skipped(record, "non-finite update", norm)
    record.update(hypergrad_norm=norm, skipped=False, reason=None, at_bound=at_bound)
    return record


def _skipped(record, reason, norm):
    record.update(hypergrad_norm=norm, skipped=True, reason=reason, at_bound=[])
    return record


def _fold_hypergradient(fold, state, settings, generator):
    data = fold.data
    size = settings.hyper_batch_size
    train_batch = sample_batch(data["Xt_tr"], data["y_tr"], size, generator)
    valid_batch = sample_batch(data["Xt_val"], data["y_val"], 2 * size, generator)
    raw = [r.detach().clone().requires_grad_(True) for r in state.for_fold(fold.index)]
    return net_hypergradient(
        fold.net,
        fold.bindings,
        raw,
        state.to_values(next(fold.net.module_.parameters())),
        train_batch,
        valid_batch,
        settings.solver,
    )


def _set_grads(state, grads) -> None:
    for j, (entry, raw) in enumerate(zip(state.entries, state.raw)):
        if entry.per_fold:
            for index, tensor in raw.items():
                tensor.grad = grads[index][j] if index in grads else None
        else:
            raw.grad = torch.stack([g[j] for g in grads.values()]).mean(0)


@torch.no_grad()
def _project(state) -> list:
    at_bound = []
    for entry, raw in zip(state.entries, state.raw):
        low, high = entry.real.raw_bounds()
        tensors = raw.values() if entry.per_fold else [raw]
        for t in tensors:
            if bool(((t < low) | (t > high)).any()):
                at_bound.append(entry.name)
            t.clamp_(low, high)
    return sorted(set(at_bound))


def make_optimizer(settings, tensors, n_steps):
    """The hyper-optimiser and its learning-rate schedule (None if constant)."""
    if not tensors:  # nothing tuned: the candidate only trains its splits
        return None, None
    optimizer = settings.hyper_optimizer(
        tensors, lr=settings.hyper_lr, **settings.hyper_optimizer_kwargs
    )
    scheduler = None
    if settings.hyper_lr_schedule == "cosine" and n_steps > 1:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=n_steps - 1, eta_min=settings.hyper_lr / 10
        )
    return optimizer, scheduler


def due_epochs(settings, max_epochs) -> list:
    """Epochs after which a hyper-step is taken."""
    warmup = max(1, max_epochs // 3) if settings.warmup == "auto" else settings.warmup
    # No step after the last epoch: nothing would train with its values.
    return [
        epoch
        for epoch in range(max(1, warmup), max_epochs)
        if (epoch - warmup) % settings.hyper_interval == 0
    ]


def run_candidate(task, X, y, splits, settings, on_epoch=None):
    """Run one candidate from one starting point; return one row per epoch value.

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
    rows : list of dict
        ``params`` (outer and tuned values, ready for ``set_params``),
        ``out`` (one ``_fit_and_score``-style dict per split), ``path``.
    """
    # torch's global generator (weight init, shuffling, dropout masks) is
    # process-wide: candidates sharing a process under a thread backend take turns.
    bad = [e for e in task.epochs if not _is_count(e)]
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
        folds = [Fold(i, tr, te, error=error) for i, (tr, te) in enumerate(splits)]
        return [_row(task, e, folds, [], None, settings) for e in task.epochs]
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.seed)
        generator = torch.Generator().manual_seed(task.seed)
        folds = _build_folds(task, X, y, splits, settings)
        if not any(f.error is None for f in folds):
            return [_row(task, e, folds, [], None, settings) for e in task.epochs]
        return _train(task, folds, settings, generator, on_epoch)


def _build_folds(task, X, y, splits, settings):
    folds = [Fold(index, train, test) for index, (train, test) in enumerate(splits)]
    for fold in folds:
        _guarded(
            lambda f: build_fold(
                f,
                task.estimator,
                task.step,
                X,
                y,
                task.entries,
                settings,
                task.fit_params,
            ),
            fold,
            settings,
        )
    return folds


def _train(task, folds, settings, generator, on_epoch=None):
    max_epochs = max(task.epochs)
    state = HyperState(task.entries, task.start, folds)
    for fold in folds:
        if fold.error is None:
            state.apply(fold)
            _guarded(start_training, fold, settings)
    due = due_epochs(settings, max_epochs) if task.entries else []
    optimizer, scheduler = make_optimizer(settings, state.tensors(), len(due))
    tails = {
        e: TailAverage(sum(d < e for d in due), settings.average_last)
        for e in task.epochs
    }
    path, rows, first = [], [], _first_active(folds)

    def snapshot(epoch):
        tensors = tails[epoch].result(state.tensors())
        rows.append(_row(task, epoch, folds, path, tensors, settings, state))

    for epoch in range(1, max_epochs + 1):
        for fold in folds:
            if fold.active:
                run_epoch(fold, settings)
        if epoch in tails:
            snapshot(epoch)
        if not any(f.active for f in folds):
            break
        if epoch not in due:
            if on_epoch is not None:
                on_epoch(path[-1] if path else None)
            continue
        record = _step(folds, state, (optimizer, scheduler), settings, generator, epoch)
        record["values"] = {
            e.name: e.summary(r.detach().numpy())
            for e, r in zip(state.entries, state.for_fold(first))
        }
        tensors = None if record["skipped"] else state.tensors()
        for e, tail in tails.items():
            if epoch < e:
                tail.add(len(path), tensors)
        path.append(record)
        _log_step(record, settings)
        if on_epoch is not None:
            on_epoch(record)
    for epoch in task.epochs[len(rows) :]:  # every split stopped early
        snapshot(epoch)
    for fold in folds:
        end_training(fold)
    _warn_failures(folds, settings)
    return rows


def _step(folds, state, optimizers, settings, generator, epoch) -> dict:
    """One hyper-step, the schedule's step, and the new values on every split."""
    optimizer, scheduler = optimizers
    start = time.perf_counter()
    record = hyper_step(folds, state, optimizer, settings, generator, epoch)
    if scheduler is not None:
        with warnings.catch_warnings():
            # A skipped first step leaves optimizer.step() uncalled; the
            # schedule still follows the planned hyper-steps.
            warnings.filterwarnings("ignore", "Detected call of", UserWarning)
            scheduler.step()
    for fold in folds:
        if fold.active:
            state.apply(fold)
        fold.fit_time += (time.perf_counter() - start) / len(folds)
    return record


def _is_count(value) -> bool:
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and value >= 1
    )


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


def _first_active(folds) -> int:
    return next(f.index for f in folds if f.error is None)


def _row(task, epoch, folds, path, tensors, settings, state=None):
    """One row of results: the values tuned by ``epoch`` and the splits' scores."""
    params = dict(task.outer_params)
    if task.epochs_name is not None:
        params[task.epochs_name] = epoch
    params.update(_tuned_params(task, folds, tensors, state))
    steps = [r for r in path if r["epoch"] < epoch]
    # Scoring creates DataLoader iterators, which draw from torch's generator:
    # fork it so that a row read off mid-training leaves the rest of the
    # training as it would be without it (the same as retraining per value).
    with torch.random.fork_rng(devices=[]):
        out = [score_fold(f, settings) for f in folds]
    return {
        "params": params,
        "out": out,
        "path": steps,
        "values": _tuned_values(task, tensors, state),
    }


def _tuned_values(task, tensors, state):
    if state is None:
        return {
            e.name: e.python_value(e.real.to_raw(task.start[e.name]))
            for e in task.entries
        }
    by_entry = _split_by_entry(state, tensors)
    return {e.name: v for e, v in zip(task.entries, by_entry)}


def _split_by_entry(state, tensors):
    values, i = [], 0
    for entry, raw in zip(state.entries, state.raw):
        if entry.per_fold:
            n = len(raw)
            values.append(
                {
                    k: entry.python_value(t.numpy())
                    for k, t in zip(raw, tensors[i : i + n])
                }
            )
            i += n
        else:
            values.append(entry.python_value(tensors[i].numpy()))
            i += 1
    return values


def _tuned_params(task, folds, tensors, state):
    if state is None:  # every split failed to build: report the start values
        return {e.name: task.start[e.name] for e in task.entries}
    net = next(f.net for f in folds if f.net is not None)
    layout = parameter_layout(net.module_)
    params = {}
    for entry, value in zip(task.entries, _split_by_entry(state, tensors)):
        params.update(entry.best_params(value, task.user_net, task.prefix, layout))
    return params


def _warn_failures(folds, settings) -> None:
    failed = [f for f in folds if f.error is not None]
    if failed and len(failed) < len(folds):
        details = "; ".join(f"split {f.index}: {f.error!r}" for f in failed)
        warnings.warn(
            f"{len(failed)} of {len(folds)} splits failed to train and were scored "
            f"error_score={settings.error_score!r}. Details: {details}",
            FitFailedWarning,
            stacklevel=3,
        )


def _log_step(record, settings) -> None:
    level = logging.INFO if settings.verbose else logging.DEBUG
    status = "skipped: " + record["reason"] if record["skipped"] else "ok"
    logger.log(
        level,
        "epoch %d: val_loss=%.4f |g|=%.3g %s %s",
        record["epoch"],
        record["val_loss"],
        record["hypergrad_norm"],
        record["values"],
        status,
    )


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
