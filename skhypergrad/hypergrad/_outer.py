"""The outer optimisation as one value: a ``torch.optim`` optimiser on the raw
hyperparameters, its schedule, the projection into the bounds, and steps
judged by the validation loss they lead to.

:class:`OuterOptimizer` holds the settings; :meth:`OuterOptimizer.init` gives
the explicit state of one run (:class:`OuterState`), and
:meth:`OuterOptimizer.update` takes one hyper-step on it. Nothing here knows
skorch, the splits or the hyperparameter families: it moves tensors whose
``.grad`` the caller has set, so it is tested on a quadratic.

The guard follows HOAG's step-size rule (Pedregosa, 2016), on measurements
that differ only by the step they judge: the caller measures the validation
loss at the current values before each step. The weights train between two
measurements, so a net that overfits sees its loss rise at any fixed values:
a step is rejected (undone, and later steps ``shrink`` times shorter) only
when the loss rose after it by more than ``tol`` (relative) *beyond the trend*
of the measurements before it, and the reference is always the latest
measurement (never one kept from a state the weights have left). A drift that
no single step shows, values running one way over ``window`` steps while the
loss climbs from its lowest point in that window by more than ``tol``, is
caught over the window: the values go back to where that lowest loss was
measured. Accepted steps give back a rejection's shrink, so no sequence of
rejections can freeze the run. :class:`TailAverage` averages the accepted
values over the last steps (the values a run reports).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ._compat import remark_scheduler_step
from ._options import (
    Options,
    check_int,
    check_non_negative,
    invalid,
    is_count,
    is_positive,
)
from ._schedule import CosineSchedule, TailAverage, make_scheduler

__all__ = ["OuterOptimizer", "OuterState"]

_COSINE = CosineSchedule(0.1)


@dataclass
class OuterState:
    """One run of the outer optimisation (from :meth:`OuterOptimizer.init`).

    Attributes
    ----------
    tensors : list of torch.Tensor
        The raw values being tuned (``requires_grad``; updated in place).
    bounds : list of (float, float)
        Raw bounds of each tensor.
    optimizer : torch.optim.Optimizer
    scheduler : torch.optim.lr_scheduler.LRScheduler or None
    trail : list of (float, list of torch.Tensor, float)
        The last measurements since the window last restarted: the loss, the
        values it was measured at, and the distance (raw units) the values
        travelled from the previous measurement's values. The last entry is
        the reference of the next step.
    scale : float
        The step-size factor left by rejections (1 when none is pending): the
        schedule's rate times it is used.
    n_steps : int
        Hyper-steps taken so far (accepted, rejected or skipped).
    """

    tensors: list
    bounds: list
    optimizer: torch.optim.Optimizer
    scheduler: object = None
    trail: list = field(default_factory=list, repr=False)
    scale: float = 1.0
    n_steps: int = 0
    _before: list = field(default_factory=list, repr=False)

    def __setstate__(self, state):
        # A torch scheduler marks its optimizer's step() when built (to warn
        # about a step() called in the wrong order); the optimizer pickles
        # without the mark, so a state unpickled mid-run marks it again.
        self.__dict__.update(state)
        remark_scheduler_step(self.scheduler)


class OuterOptimizer(Options):
    """The outer optimisation: when to step, how, and which values to report.

    A ``torch.optim`` optimiser moves the raw (log / logit) hyperparameters
    along their hypergradients; its rate follows a schedule over the planned
    hyper-steps; each step is projected into the bounds and judged by the
    validation loss it leads to; the reported values are averaged over the
    last steps. :class:`~skhypergrad.HypergradSearchCV` and the single-fit
    estimators take one as ``hyper_optimizer``, or build one from
    ``hyper_optimizer=<torch optimiser class>`` and ``hyper_optimizer__<name>``
    arguments (an option below, or else an argument of the torch optimiser).

    Parameters
    ----------
    optimizer : type, default=torch.optim.Adam
        A ``torch.optim.Optimizer`` class.
    lr : float, default=0.5
        Its first learning rate, in raw units: with Adam a step changes a
        log-scaled value by up to a factor ``exp(lr)``.
    optimizer_kwargs : dict or None, default=None
        Its other arguments (e.g. ``{"momentum": 0.9}`` for SGD). Adam's
        ``betas`` default to ``(0.0, 0.9)`` here (no momentum), chosen by a
        sweep (docs/benchmarks.md): it follows the lag between a
        hyperparameter and the weights' response without overshooting. No
        other class gets a default of this class's choosing.
    schedule : type, callable or None, default=CosineSchedule(0.1)
        The rate's schedule over the planned hyper-steps: a
        ``torch.optim.lr_scheduler`` class (built with ``schedule_kwargs``; its
        ``T_max``, ``total_iters`` or ``total_steps`` from the planned steps
        when not given), a callable ``schedule(optimizer, n_steps) ->
        LRScheduler or None`` such as :class:`CosineSchedule`, or None for a
        constant rate. The default falls to a tenth of ``lr``.
        ``ReduceLROnPlateau`` is stepped with the validation loss measured
        before each hyper-step.
    schedule_kwargs : dict or None, default=None
        Arguments of a scheduler class, e.g. ``{"step_size": 3}`` for
        ``StepLR``.
    warmup : int or "auto", default="auto"
        Epochs of training before the first hyper-step; "auto" is a third of
        the epochs. Hyper-steps follow epochs ``warmup``, ``warmup +
        interval``, ... (none before the first epoch: ``warmup=0`` with
        ``interval=2`` steps after epochs 2, 4, ...).
    interval : int, default=1
        Epochs of training between hyper-steps.
    batch_size : int, default=128
        Training samples in the curvature of a hyper-step; validation
        gradients use up to twice as many validation samples.
    average_last : float, default=0.25
        Share of the planned hyper-steps, counted from the end, whose accepted
        raw values are averaged into the reported values (steadier than the
        last value).
    tol : float or None, default=0.05
        Relative rise of the measured validation loss, beyond the trend of
        the measurements before it, that rejects the step it followed; and
        the relative climb over a ``window`` of steps that returns a drift to
        its lowest point. Losses measured epochs apart also differ because the
        weights trained on (a net that overfits sees its validation loss rise
        at any fixed values), so a step is judged against that trend, not
        against an older measurement. None never rejects.
    shrink : float, default=0.5
        Factor applied to the step size at each rejection; every accepted
        step multiplies it back by ``shrink ** -0.5`` (up to 1).
    window : int, default=5
        Steps over which a drift is caught: values that travelled mostly one
        way (their net move at least three quarters of the distance they
        travelled, and at least ``0.5`` in raw units, a factor 1.65 for a
        log-scaled value) while the loss climbed by more than ``tol`` from
        the lowest point of the window go back to that point.

    See Also
    --------
    CosineSchedule : The default schedule.
    TailAverage : The averaging of the last steps.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import OuterOptimizer
    >>> theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    >>> outer = OuterOptimizer(torch.optim.SGD, lr=0.1, schedule=None)
    >>> state = outer.init([theta], [(-5.0, 5.0)], n_steps=20)
    >>> for _ in range(20):
    ...     loss = float((theta - 2) ** 2)
    ...     theta.grad = 2 * (theta.detach() - 2)
    ...     record = outer.update(state, loss)
    >>> round(float(theta), 2), record["status"]
    (1.98, 'accepted')
    >>> OuterOptimizer(warmup=2, interval=3).due_epochs(12)
    [2, 5, 8, 11]
    """

    def __init__(
        self,
        optimizer: type = torch.optim.Adam,
        *,
        lr: float = 0.5,
        optimizer_kwargs: dict | None = None,
        schedule: type | Callable | None = _COSINE,
        schedule_kwargs: dict | None = None,
        warmup: int | str = "auto",
        interval: int = 1,
        batch_size: int = 128,
        average_last: float = 0.25,
        tol: float | None = 0.05,
        shrink: float = 0.5,
        window: int = 5,
    ):
        self.optimizer = optimizer
        self.lr = lr
        self.optimizer_kwargs = optimizer_kwargs
        self.schedule = schedule
        self.schedule_kwargs = schedule_kwargs
        self.warmup = warmup
        self.interval = interval
        self.batch_size = batch_size
        self.average_last = average_last
        self.tol = tol
        self.shrink = shrink
        self.window = window

    def due_epochs(self, max_epochs: int) -> list[int]:
        """Epochs after which a hyper-step is taken, for ``max_epochs`` epochs.

        Parameters
        ----------
        max_epochs : int

        Returns
        -------
        epochs : list of int
            From the warm-up on, every ``interval`` epochs; none after the
            last epoch (nothing would train with its values).
        """
        warmup = max(1, max_epochs // 3) if self.warmup == "auto" else self.warmup
        return [
            epoch
            for epoch in range(max(1, warmup), max_epochs)
            if (epoch - warmup) % self.interval == 0
        ]

    def tail(self, n_planned: int) -> TailAverage:
        """The average of the last ``average_last`` of ``n_planned`` steps."""
        return TailAverage(n_planned, self.average_last)

    def init(self, tensors, bounds, n_steps: int) -> OuterState:
        """Start a run on ``tensors`` (raw values, updated in place).

        Parameters
        ----------
        tensors : list of torch.Tensor
            Leaf tensors with ``requires_grad=True``.
        bounds : list of (float, float)
            Raw lower and upper bound of each tensor.
        n_steps : int
            Hyper-steps planned (the schedule's length).

        Returns
        -------
        state : OuterState
        """
        self._validate_options()
        optimizer = self.optimizer(tensors, lr=self.lr, **self._optimizer_kwargs())
        scheduler = make_scheduler(
            self.schedule, self.schedule_kwargs, optimizer, n_steps
        )
        return OuterState(
            tensors=list(tensors),
            bounds=list(bounds),
            optimizer=optimizer,
            scheduler=scheduler,
        )

    def _optimizer_kwargs(self) -> dict:
        kwargs = dict(self.optimizer_kwargs or {})
        if self.optimizer is torch.optim.Adam:
            kwargs.setdefault("betas", (0.0, 0.9))
        return kwargs

    def _validate_options(self) -> None:
        """Check every option; raise :class:`InvalidOptionError` naming it."""
        if not is_positive(self.lr):
            raise invalid(self, "lr", "a positive number")
        for name in ("optimizer_kwargs", "schedule_kwargs"):
            if not isinstance(getattr(self, name), dict | None):
                raise invalid(self, name, "a dict or None")
        self._check_classes()
        if self.warmup != "auto" and not is_count(self.warmup, low=0):
            raise invalid(self, "warmup", "'auto' or an integer >= 0")
        check_int(self, "interval", low=1)
        check_int(self, "batch_size", low=1)
        if not (is_positive(self.average_last) and self.average_last <= 1):
            raise invalid(self, "average_last", "a number in (0, 1]")
        if self.tol is not None:
            check_non_negative(self, "tol")
        if not (is_positive(self.shrink) and self.shrink <= 1):
            raise invalid(self, "shrink", "a number in (0, 1]")
        check_int(self, "window", low=2)

    def _check_classes(self) -> None:
        """The optimiser and the schedule can be built with their arguments."""
        probe = [torch.zeros(1, requires_grad=True)]
        try:
            optimizer = self.optimizer(probe, lr=self.lr, **self._optimizer_kwargs())
        except Exception as exc:
            raise self._error(
                f"OuterOptimizer cannot build optimizer={self.optimizer!r} with "
                f"lr={self.lr!r} and {self._optimizer_kwargs()}: {exc} Give a "
                "torch.optim.Optimizer class and its own arguments, e.g. "
                "optimizer=torch.optim.Adam, optimizer_kwargs={'betas': (0.5, 0.9)} "
                "(in a search: hyper_optimizer__betas=(0.5, 0.9))."
            ) from exc
        schedule = self.schedule
        if schedule is not None and not callable(schedule):
            raise invalid(
                self, "schedule", "a torch.optim.lr_scheduler class, a callable or None"
            )
        if self.schedule_kwargs and not isinstance(schedule, type):
            raise self._error(
                f"OuterOptimizer got schedule_kwargs={self.schedule_kwargs!r}, which "
                f"only a scheduler class takes, but schedule={schedule!r} is not one: "
                "the arguments would be ignored. Give schedule a "
                "torch.optim.lr_scheduler class (e.g. StepLR), or set the options "
                "on the callable itself (e.g. CosineSchedule(0.05))."
            )
        try:
            make_scheduler(schedule, self.schedule_kwargs, optimizer, 3)
        except Exception as exc:
            raise self._error(
                f"OuterOptimizer cannot build schedule={schedule!r} with "
                f"schedule_kwargs={self.schedule_kwargs!r}: {exc} Give a "
                "torch.optim.lr_scheduler class and its arguments other than "
                "the optimizer, e.g. schedule=torch.optim.lr_scheduler.StepLR, "
                "schedule_kwargs={'step_size': 3}."
            ) from exc

    def update(self, state: OuterState, loss: float, *, skip: str | None = None):
        """Judge the values by ``loss``, then step along the tensors' ``.grad``.

        Parameters
        ----------
        state : OuterState
        loss : float
            The validation loss measured at the current values (NaN if none
            could be measured).
        skip : str or None, default=None
            A reason not to step (the caller found the hypergradient
            unusable); the loss still counts and the schedule still moves.

        Returns
        -------
        record : dict
            ``status`` ("accepted", "rejected" or "skipped"), ``reason``
            (None when accepted), ``hyper_lr`` (the rate of this step, after
            any shrink),
            ``finite`` (whether the new values are finite; if not they were
            put back) and ``at_bound`` (per tensor, whether the step hit a
            bound and was projected).
        """
        rejected = self._judge(state, loss)
        # Only the step just before this measurement can be undone by the next.
        state._before = []
        lr = state.optimizer.param_groups[0]["lr"] * state.scale
        record = {"status": "accepted", "reason": None, "hyper_lr": lr}
        record.update(finite=True, at_bound=[False] * len(state.tensors))
        if rejected is not None:
            record.update(status="rejected", reason=rejected)
        elif skip is not None:
            record.update(status="skipped", reason=skip)
        else:
            self._step(state, record)
            # An accepted step gives back half a rejection's shrink (in log
            # terms): no run of rejections can freeze the values for good.
            state.scale = min(1.0, state.scale / math.sqrt(self.shrink))
        state.optimizer.zero_grad(set_to_none=True)
        state.n_steps += 1
        if state.scheduler is not None:
            with warnings.catch_warnings():
                # A first step not taken leaves optimizer.step() uncalled; the
                # schedule still follows the planned hyper-steps.
                warnings.filterwarnings("ignore", "Detected call of", UserWarning)
                if isinstance(state.scheduler, ReduceLROnPlateau):
                    # It lowers the rate when the measured loss stops falling.
                    if math.isfinite(loss):
                        state.scheduler.step(loss)
                else:
                    state.scheduler.step()
        return record

    def undo(self, state: OuterState) -> None:
        """Put back the values from before the last accepted step."""
        with torch.no_grad():
            for t, b in zip(state.tensors, state._before):
                t.copy_(b)

    def _judge(self, state, loss) -> str | None:
        """Record the measurement; the reason to take back the values, if the
        last step (or a drift over the window) raised the loss."""
        if not math.isfinite(loss):
            return None
        trail = state.trail
        moved = _distance(state.tensors, trail[-1][1]) if trail else 0.0
        trail.append((float(loss), _copy(state.tensors), moved))
        if self.tol is None or len(trail) < 2:
            return None
        reason = self._step_rise(state) or self._drift(state)
        # Only the window's measurements can judge a later step.
        del state.trail[: -(self.window + 1)]
        if reason is not None:
            state.scale *= self.shrink
        return reason

    def _step_rise(self, state) -> str | None:
        """Undo the last step if the loss rose after it beyond the trend."""
        losses = [loss for loss, _, _ in state.trail]
        previous, loss = losses[-2], losses[-1]
        # The trend: the median rise of up to three earlier intervals (a
        # fall counts as none, so a step is never blamed for a trend's end).
        before = losses[:-1]
        rises = sorted([b - a for a, b in zip(before, before[1:])][-3:])
        trend = max(0.0, rises[len(rises) // 2]) if rises else 0.0
        if not state._before or loss - previous - trend <= self.tol * abs(previous):
            return None
        self.undo(state)
        state.trail[-1] = (loss, _copy(state.tensors), 0.0)
        return (
            f"the validation loss rose from {previous:.4g} to {loss:.4g} after the "
            f"last step, by more than tol={self.tol:g} beyond the trend of the "
            f"steps before ({trend:+.3g}): the step was undone and later steps are "
            "shorter"
        )

    def _drift(self, state) -> str | None:
        """Return to the window's lowest point if, since it, the values ran
        one way while the loss climbed by more than ``tol``."""
        trail = state.trail[-(self.window + 1) :]
        low = min(range(len(trail)), key=lambda i: trail[i][0])
        best, loss = trail[low][0], trail[-1][0]
        if len(trail) - 1 - low < 3 or loss <= best + self.tol * abs(best):
            return None
        travelled = sum(moved for _, _, moved in trail[low + 1 :])
        net = _distance(trail[-1][1], trail[low][1])
        if net < 0.5 or net < 0.75 * travelled:
            return None
        with torch.no_grad():
            for t, b in zip(state.tensors, trail[low][1]):
                t.copy_(b)
        state._before = []
        # The window starts again from the values put back.
        state.trail = [(loss, _copy(state.tensors), 0.0)]
        return (
            f"drift: over the last {len(trail) - 1 - low} steps the values moved "
            f"one way while the validation loss climbed from {best:.4g} to "
            f"{loss:.4g}, by more than tol={self.tol:g}: the values went back to "
            f"where {best:.4g} was measured and later steps are shorter"
        )

    def _step(self, state, record) -> None:
        state._before = _copy(state.tensors)
        groups = state.optimizer.param_groups
        scheduled = [g["lr"] for g in groups]
        for g in groups:
            g["lr"] = g["lr"] * state.scale
        state.optimizer.step()
        for g, lr in zip(groups, scheduled):
            g["lr"] = lr
        with torch.no_grad():
            for i, (t, (low, high)) in enumerate(zip(state.tensors, state.bounds)):
                record["finite"] = record["finite"] and bool(torch.isfinite(t).all())
                record["at_bound"][i] = bool(((t < low) | (t > high)).any())
                t.clamp_(low, high)
        if not record["finite"]:
            self.undo(state)


def _copy(tensors) -> list:
    return [t.detach().clone() for t in tensors]


def _distance(tensors, others) -> float:
    """Euclidean distance between two lists of raw values."""
    square = sum(float(((a.detach() - b) ** 2).sum()) for a, b in zip(tensors, others))
    return math.sqrt(square)
