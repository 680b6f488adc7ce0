"""Where a search's jobs run: joblib, one job per candidate or per split.

Both give the same rows. With fewer candidates than workers and at least as
many workers as splits, in a process-based backend, every split trains in its
own worker and the splits exchange their hypergradients through gloo at each
hyper-step (``run_split``). A worker lost on the way is reported as
:class:`~skhypergrad.exceptions.ParallelWorkerError`.
"""

from __future__ import annotations

import contextlib

import torch
from joblib import Parallel, delayed, effective_n_jobs

from ..exceptions import ParallelWorkerError
from ..utils._validation import InvalidParameterError
from ._exchange import Rendezvous
from ._outer_loop import assemble, run_candidate, run_split


def run_tasks(tasks, X, y, splits, settings, progress, *, n_jobs, pre_dispatch):
    """Run the tasks through joblib: each in one job, or each split in one.

    Both give the same rows. With fewer candidates than workers and at
    least as many workers as splits, in a process-based backend, every
    split trains in its own worker and the splits exchange their
    hypergradients through gloo at each hyper-step (``run_split``).
    """
    _refuse_threads(n_jobs)
    with lost_workers():
        if _by_split(tasks, splits, settings, n_jobs):
            return _run_by_split(tasks, X, y, splits, settings, progress, n_jobs)
        return _run_by_candidate(
            tasks, X, y, splits, settings, progress, n_jobs, pre_dispatch
        )


def _run_by_candidate(tasks, X, y, splits, settings, progress, n_jobs, pre_dispatch):
    # In this process (n_jobs=1) every epoch moves the bar; in workers, each
    # finished job does.
    here = effective_n_jobs(n_jobs) == 1
    callbacks = [progress.for_task(t) if here else None for t in tasks]
    jobs = (
        delayed(run_candidate)(t, X, y, splits, settings, on_epoch=c)
        for t, c in zip(tasks, callbacks)
    )
    parallel = Parallel(n_jobs=n_jobs, pre_dispatch=pre_dispatch, return_as="generator")
    results = []
    for task, callback, result in zip(tasks, callbacks, parallel(jobs)):
        progress.task_done(task, getattr(callback, "counted", 0), result)
        results.append(result)
    return results


def _run_by_split(tasks, X, y, splits, settings, progress, n_jobs):
    rendezvous = Rendezvous()
    addresses = [rendezvous.address() for _ in tasks]
    jobs = (
        delayed(run_split)(task, X, y, splits, k, address, settings)
        for task, address in zip(tasks, addresses)
        for k in range(len(splits))
    )
    # A candidate's splits wait for each other: one job per worker call,
    # dispatched in order (a pre_dispatch below the number of splits
    # would leave a split waiting for a sibling never sent).
    parallel = Parallel(
        n_jobs=n_jobs, pre_dispatch="all", batch_size=1, return_as="generator"
    )
    parts = iter(parallel(jobs))
    results = []
    for task in tasks:
        rows = assemble(task, [next(parts) for _ in splits], settings)
        progress.task_done(task, 0, rows)
        results.append(rows)
    return results


@contextlib.contextmanager
def lost_workers():
    """Turn the error of a worker process that died into a clear one."""
    try:
        yield
    except Exception as exc:
        if not _is_worker_failure(exc):
            raise
        raise ParallelWorkerError(
            f"A parallel worker was lost while running the search's candidates "
            f"({type(exc).__name__}: {exc}). Nothing was fitted. Re-run fit "
            "(the same random_state gives the same result), or use n_jobs=1."
        ) from exc


# Errors raised by joblib / Dask when a worker process dies, by class name so
# that neither distributed nor loky has to be imported to recognise them.
_WORKER_FAILURES = {
    "TerminatedWorkerError",
    "KilledWorker",
    "FutureCancelledError",
    "CancelledError",
    "CommClosedError",
    "BrokenProcessPool",
}


def _by_split(tasks, splits, settings, n_jobs) -> bool:
    """Whether the splits of each candidate should run in workers of their own.

    Only where it pays and is safe: several splits, fewer candidates than
    workers and no fewer workers than splits, a process-based joblib backend
    (loky or multiprocessing hand jobs out in order; a cluster's scheduler
    may not, and a split could wait for a sibling that never starts), and
    ``error_score`` not ``"raise"`` (a raising split would leave its siblings
    waiting).
    """
    from joblib.parallel import get_active_backend

    n_workers = effective_n_jobs(n_jobs)
    backend, _ = get_active_backend()
    processes = type(backend).__name__ in {"LokyBackend", "MultiprocessingBackend"}
    return (
        torch.distributed.is_available()  # builds without it keep splits together
        and len(splits) > 1
        and n_workers >= len(splits)
        and len(tasks) < n_workers
        and processes
        and not (
            isinstance(settings.error_score, str) and settings.error_score == "raise"
        )
    )


def _refuse_threads(n_jobs) -> None:
    """Refuse a thread-based joblib backend with several workers: it would
    run one candidate at a time, silently."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if effective_n_jobs(n_jobs) > 1 and getattr(backend, "uses_threads", False):
        raise InvalidParameterError(
            f"HypergradSearchCV got n_jobs={n_jobs} under joblib's thread-based "
            f"backend ({type(backend).__name__}), which would run one candidate "
            "at a time: every candidate seeds torch's process-wide random "
            "generator for its trainings, so candidates in threads of one "
            "process take turns. Use a process-based backend (joblib's default, "
            "loky; or Dask, Ray), or n_jobs=1."
        )


def _is_worker_failure(exc) -> bool:
    return any(cls.__name__ in _WORKER_FAILURES for cls in type(exc).__mro__)


__all__ = ["lost_workers", "run_tasks"]
