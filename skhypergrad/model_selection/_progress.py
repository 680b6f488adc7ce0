"""What the search shows while it runs: with ``verbose >= 1`` GridSearchCV's
summary line and a tqdm bar over the epochs every candidate trains, to the end
of the refit (its total planned from the start: the tuning trainings, the
decision rule's constant trainings and the refit); with ``verbose >= 2`` also a
table row per hyper-step; with ``verbose >= 3`` the split networks' own epoch
tables too, each line labelled with its split."""

from __future__ import annotations

import logging
import math

logger = logging.getLogger("skhypergrad")


class SearchProgress:
    """A tqdm bar counting candidate-epochs, plus GridSearchCV's summary line.

    Parameters
    ----------
    verbose : int
        Nothing is shown below 1.
    refit : bool
        Whether a refit follows (one more step on the bar).
    """

    def __init__(self, verbose, refit):
        self.verbose = verbose
        self.refit = refit
        self.bar = None
        self._last = None
        # Candidate-epochs of constant trainings planned but not yet run (None
        # where the decision rule cannot say beforehand).
        self._planned = 0

    def start(self, tasks, n_splits, n_starts, rule=None) -> None:
        """Print the summary line and open the bar (``verbose >= 1`` only);
        a later call (a sequential strategy's next batch) adds to it."""
        n_candidates = len(tasks) // n_starts
        self.open(
            f"Fitting {n_splits} folds for each of {n_candidates} candidates "
            f"({n_starts} starting point{'s' if n_starts > 1 else ''} each), "
            f"totalling {len(tasks) * n_splits} trainings"
            + constants_text(rule, tasks),
            sum(max(t.epochs) for t in tasks),
            constant_epochs(rule, tasks),
        )

    def open(self, text, epochs, constants, desc="HypergradSearchCV") -> None:
        """Print ``text`` and open the bar for ``epochs`` tuning epochs and
        ``constants`` epochs of constant trainings (None: cannot say yet),
        or add them to the open bar (``verbose >= 1`` only)."""
        if self.verbose < 1:
            return
        from tqdm.auto import tqdm

        tqdm.write(text)
        total = epochs + (constants or 0)
        if self._planned is not None:
            self._planned = None if constants is None else self._planned + constants
        if self.bar is not None:
            self.extend(total, planned=True)
            return
        self.bar = tqdm(total=total + bool(self.refit), unit="epoch", desc=desc)

    def say(self, text) -> None:
        """A line of the search's own (``verbose >= 2``)."""
        if self.bar is not None and self.verbose >= 2:
            self.bar.write(text)

    def extend(self, epochs, planned=False) -> None:
        """The constant trainings of ``epochs`` candidate-epochs start: the
        bar's total, planned at the start, is corrected where proposals
        coincided (one training serves them) or could not be planned."""
        if self.bar is None:
            return
        if not planned and self._planned is not None:
            epochs, self._planned = epochs - self._planned, 0
        if epochs:
            self.bar.total += epochs
            self.bar.refresh()

    def count(self, epochs) -> None:
        """Count ``epochs`` finished candidate-epochs."""
        if self.bar is not None:
            self.bar.update(epochs)

    def for_task(self, task):
        """A callback ``on_epoch(record)`` for a job run in this process."""
        if self.bar is None:
            return None
        return _TaskProgress(self, max(task.epochs))

    def task_done(self, task, counted, rows) -> None:
        """Count what a finished job did not report (all of it, if run elsewhere)."""
        if self.bar is None:
            return
        self.bar.update(max(0, max(task.epochs) - counted))
        if not counted and rows and rows[-1].path:  # ran in a worker
            for record in rows[-1].path:
                self.show(record)

    def workers(self, n_jobs, waited, work) -> None:
        """Say when starting the workers cost more than running jobs in them
        saved (``verbose >= 1``): ``waited`` seconds before the first job
        started, ``work`` seconds of jobs in all."""
        from joblib import effective_n_jobs

        n_workers = effective_n_jobs(n_jobs)
        logger.debug("workers: first job after %.2f s, %.2f s of jobs", waited, work)
        if self.verbose < 1 or n_workers < 2 or waited < work * (1 - 1 / n_workers):
            return
        from tqdm.auto import tqdm

        tqdm.write(
            f"n_jobs={n_jobs} did not pay in this fit: the first job waited "
            f"{waited:.1f} s for the {n_workers} workers to start (new processes "
            f"importing torch), and the jobs ran {work:.1f} s in all, which "
            "n_jobs=1 would have run in about that time. joblib keeps its workers "
            "for the next fit in this session, which starts at once; for a single "
            "small search, n_jobs=1 is faster."
        )

    def show(self, record) -> None:
        """Show the last hyper-step's validation loss and values (and its row)."""
        if self.bar is None or record is None:
            return
        values = {_tail(k): _short(v) for k, v in record["values"].items()}
        self.bar.set_postfix({"val_loss": _short(record["val_loss"]), **values})
        if self.verbose >= 2 and record is not self._last:
            self._last = record
            self.bar.write(_step_line(record, values))

    def close(self, refitted=False) -> None:
        """Count the refit and close the bar."""
        if self.bar is None:
            return
        if refitted:
            self.bar.update(1)
        self.bar.close()
        self.bar = None


class _TaskProgress:
    """Counts the epochs of one job run in this process."""

    def __init__(self, progress, epochs):
        self.progress = progress
        self.epochs = epochs
        self.counted = 0

    def __call__(self, record=None) -> None:
        if self.counted < self.epochs:
            self.progress.bar.update(1)
            self.counted += 1
        self.progress.show(record)


def _step_line(record, values) -> str:
    status = _status(record)
    cells = [
        f"hyper-step after epoch {record['epoch']:>3}",
        f"val_loss {_short(record['val_loss']):>8}",
        f"|grad| {_short(record['hypergrad_norm']):>8}",
        f"solver iters {record['solver_iter']:>4.1f}",
        " ".join(f"{k}={v}" for k, v in values.items()),
    ]
    return "  ".join(cells) + (f"  {status}" if status else "")


def _status(record) -> str:
    if record["skipped"]:
        return "skipped: " + record["reason"]
    if record.get("rejected"):
        return "rejected: " + record["reason"]
    return ""


def print_labelled(text, label) -> None:
    """Print a skorch epoch table line by line, prefixed with ``[label]``."""
    from tqdm.auto import tqdm

    for line in str(text).splitlines():
        tqdm.write(f"[{label}] {line}")


def _tail(name: str) -> str:
    return name.rsplit("__", 1)[-1]


def _short(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    return f"{value:.3g}"


def constant_epochs(rule, tasks):
    """Candidate-epochs the rule's constant trainings take at most (None if
    the rule cannot say)."""
    if rule is None:
        return 0
    counts = [rule.n_planned(t) if t.entries else 0 for t in tasks]
    if any(c is None for c in counts):
        return None
    return sum(c * max(t.epochs) for c, t in zip(counts, tasks))


def constants_text(rule, tasks) -> str:
    if rule is None or not any(t.entries for t in tasks):
        return ""
    return f"; then every split trains the proposals of rescore={rule!r} as constants"


__all__ = ["SearchProgress"]
