"""Where a search's jobs run: joblib, one job per candidate or per split.

Both give the same rows. With fewer candidates than workers and at least as
many workers as splits, in a process-based backend, every split trains in its
own worker and the splits exchange their hypergradients through gloo at each
hyper-step (``run_split``). A worker lost on the way is reported as
:class:`~skhypergrad.exceptions.ParallelWorkerError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import re
import time

import torch
from joblib import Parallel, delayed, effective_n_jobs

from ..._compat import joblib_backend_kind, worker_failure_types
from ...exceptions import ParallelWorkerError
from ...utils._validation import InvalidParameterError
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
        delayed(_Timed(run_candidate))(t, X, y, splits, settings, on_epoch=c)
        for t, c in zip(tasks, callbacks)
    )
    results, clock = [], _Clock()
    done = run_jobs(jobs, n_jobs=n_jobs, pre_dispatch=pre_dispatch)
    for task, callback, timed in zip(tasks, callbacks, done):
        result = clock.add(timed)
        progress.task_done(task, getattr(callback, "counted", 0), result)
        results.append(result)
    if not here:
        progress.workers(n_jobs, *clock.summary())
    return results


def _run_by_split(tasks, X, y, splits, settings, progress, n_jobs):
    rendezvous = Rendezvous(local=_workers(n_jobs)[1] == "processes")
    addresses = [rendezvous.address() for _ in tasks]
    jobs = (
        delayed(_Timed(run_split, f"run_split{k}"))(
            task, X, y, splits, k, address, settings
        )
        for task, address in zip(tasks, addresses)
        for k in range(len(splits))
    )
    # A candidate's splits wait for each other: one job per worker call,
    # dispatched in order (a pre_dispatch below the number of splits
    # would leave a split waiting for a sibling never sent).
    parts = run_jobs(
        jobs, together=True, n_jobs=n_jobs, pre_dispatch="all", batch_size=1
    )
    clock = _Clock()
    results = []
    try:
        for task in tasks:
            rows = assemble(task, [clock.add(next(parts)) for _ in splits], settings)
            progress.task_done(task, 0, rows)
            results.append(rows)
    finally:
        rendezvous.close()
    progress.workers(n_jobs, *clock.summary())
    return results


class _Timed:
    """A job that hands back its result, when it started and how long it ran
    (named as the job, so that a cluster's dashboard shows what runs)."""

    def __init__(self, job, name=None):
        self.job = job
        self.__name__ = name or job.__name__

    def __call__(self, *args, **kwargs):
        start = time.time()
        result = self.job(*args, **kwargs)
        return result, start, time.time() - start


class _Clock:
    """When the jobs of one ``Parallel`` call started and how long they ran,
    to tell how long the first waited for the workers (process start, imports)."""

    def __init__(self):
        self.dispatched = time.time()
        self.starts, self.durations = [], []

    def add(self, timed):
        result, start, duration = timed
        self.starts.append(start)
        self.durations.append(duration)
        return result

    def summary(self) -> tuple[float, float]:
        """Seconds before the first job started, and seconds of work in all
        (on a multi-host cluster the hosts' clocks may differ a little)."""
        if not self.starts:
            return 0.0, 0.0
        return max(0.0, min(self.starts) - self.dispatched), sum(self.durations)


# The workers of the fit in progress, where the backend starts new ones for
# every Parallel call (one_pool).
_POOL: contextvars.ContextVar = contextvars.ContextVar("skhypergrad_pool", default=None)

# Backends that start a pool of worker processes for every Parallel call
# (loky reuses its executor; Dask's workers are the cluster's).
_POOL_PER_CALL = ("ray", "multiprocessing")


@contextlib.contextmanager
def one_pool(n_jobs):
    """Run every ``Parallel`` call of a fit in one set of workers.

    Ray's joblib backend (and the multiprocessing one) start new worker
    processes for every ``Parallel`` call, each importing torch again; a fit
    makes several calls (the tuning, the constant trainings, an iteration of
    a race each). Within this context they share one managed ``Parallel``.
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    kind = joblib_backend_kind(backend)
    if kind not in _POOL_PER_CALL or effective_n_jobs(n_jobs) == 1:
        yield
        return
    # One job per training, all handed out at once (a candidate's splits
    # must be able to meet, as _run_by_split asks).
    with Parallel(
        n_jobs=n_jobs, return_as="list", pre_dispatch="all", batch_size=1
    ) as parallel:
        token = _POOL.set(parallel)
        try:
            yield
        finally:
            _POOL.reset(token)


def run_jobs(jobs, *, together=False, **kwargs):
    """Run joblib jobs; their results, in order, as they come.

    Within :func:`one_pool` (a backend that hands back one list per call),
    the jobs go to the fit's pool in groups of one per worker, so that the
    progress bar moves as each group finishes rather than once at the end;
    ``together=True`` (jobs that must all run at once, such as a candidate's
    splits exchanging hypergradients) sends them in one call.
    """
    shared = _POOL.get()
    if shared is None:
        yield from make_parallel(**kwargs)(jobs)
        return
    if together:  # the pool hands out every job at once (one_pool)
        yield from shared(jobs)
        return
    jobs = iter(jobs)
    size = max(1, effective_n_jobs(kwargs.get("n_jobs")))
    while group := list(itertools.islice(jobs, size)):
        yield from shared(group)


def make_parallel(**kwargs) -> Parallel:
    """joblib's ``Parallel``, handing results back as they come where the
    active backend can (loky, threads, Dask) and as one list where it cannot
    (Ray's and the multiprocessing backend): the results are the same, only
    the progress bar then moves when the list is complete."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    streams = getattr(backend, "supports_return_generator", False)
    return Parallel(return_as="generator" if streams else "list", **kwargs)


@contextlib.contextmanager
def lost_workers():
    """Turn the error of a worker process that died into a clear one."""
    try:
        yield
    except Exception as exc:
        if not _is_worker_failure(exc):
            raise
        # A cluster names the lost job; split jobs are named run_split<k>.
        split = re.search(r"run_split(\d+)", str(exc))
        where = (
            f" (split {split[1]} of a candidate whose splits trained each in a "
            "worker of its own)"
            if split
            else ""
        )
        raise ParallelWorkerError(
            f"A parallel worker was lost while running the search's candidates"
            f"{where} ({type(exc).__name__}: {exc}). Nothing was fitted. Re-run "
            "fit (the same random_state gives the same result), or use n_jobs=1."
        ) from exc


def _by_split(tasks, splits, settings, n_jobs) -> bool:
    """Whether the splits of each candidate should run in workers of their own.

    Only where it pays and is safe: several splits, fewer candidates than
    workers and no fewer workers than splits, workers that are processes of
    their own, and ``error_score`` not ``"raise"`` (a raising split would
    leave its siblings waiting). Under loky or multiprocessing, jobs are
    handed out in order, so a candidate's splits always meet. A cluster's
    scheduler (Dask, Ray) may hand them out in any order: there, every split
    of every candidate must be able to run at once (no more split jobs than
    single-threaded worker processes), or a split could wait for a sibling
    that never starts.
    """
    n_workers, kind = _workers(n_jobs)
    fits = len(splits) > 1 and n_workers >= len(splits) and len(tasks) < n_workers
    if kind == "cluster":
        fits = fits and len(tasks) * len(splits) <= n_workers
    return (
        torch.distributed.is_available()  # builds without it keep splits together
        and kind in {"processes", "cluster"}
        and fits
        and not (
            isinstance(settings.error_score, str) and settings.error_score == "raise"
        )
    )


def _workers(n_jobs) -> tuple[int, str]:
    """How many workers the active joblib backend gives, and what they are:
    ``"processes"`` on this machine, ``"cluster"`` processes a scheduler
    places, or ``"other"`` (threads, or workers that run several jobs at once
    in one process)."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    kind = joblib_backend_kind(backend)
    if kind in ("loky", "multiprocessing"):
        return effective_n_jobs(n_jobs), "processes"
    if kind == "ray":  # every worker of Ray's pool is an actor process
        return effective_n_jobs(n_jobs), "cluster"
    if kind == "dask":
        threads = list(backend.client.nthreads().values())
        # Two splits in threads of one worker process would take turns with
        # torch's process-wide generator, and wait for each other forever.
        single = bool(threads) and all(t == 1 for t in threads)
        return len(threads), "cluster" if single else "other"
    return effective_n_jobs(n_jobs), "other"


def _refuse_threads(n_jobs) -> None:
    """Refuse a thread-based joblib backend with several workers: it would
    run one candidate at a time, silently."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if effective_n_jobs(n_jobs) > 1 and joblib_backend_kind(backend) == "threads":
        raise InvalidParameterError(
            f"HypergradSearchCV got n_jobs={n_jobs} under joblib's thread-based "
            f"backend ({type(backend).__name__}), which would run one candidate "
            "at a time: every candidate seeds torch's process-wide random "
            "generator for its trainings, so candidates in threads of one "
            "process take turns. Use a process-based backend (joblib's default, "
            "loky; or Dask, Ray), or n_jobs=1."
        )


def _is_worker_failure(exc) -> bool:
    return isinstance(exc, worker_failure_types())


__all__ = ["lost_workers", "make_parallel", "one_pool", "run_jobs", "run_tasks"]
