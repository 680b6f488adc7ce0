"""The outer optimisation as one value: a ``torch.optim`` optimiser on the raw
hyperparameters, its schedule, the projection into the bounds, and steps
judged by the validation loss they lead to.

:class:`OuterOptimizer` holds the settings; :meth:`OuterOptimizer.init` gives
the explicit state of one run (:class:`OuterState`), and
:meth:`OuterOptimizer.update` takes one hyper-step on it. Nothing here knows
skorch, the splits or the hyperparameter families: it moves tensors whose
``.grad`` the caller has set, so it is tested on a quadratic.

The guard follows HOAG's step-size rule (Pedregosa, 2016): the caller measures
the validation loss at the current values before each step. When it has risen
since the previous step by more than ``tol`` (relative), that step is undone,
no new one is taken, and every later step is ``shrink`` times shorter.
:class:`TailAverage` averages the accepted values over the last steps (the
values a run reports).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.optim.swa_utils import AveragedModel

__all__ = ["OuterOptimizer", "OuterState", "TailAverage", "cosine_schedule"]


def cosine_schedule(final_fraction: float = 0.1) -> Callable:
    """Make a cosine schedule of the outer optimiser's rate.

    The rate falls from its first value to ``final_fraction`` of it over the
    planned steps (``torch.optim.lr_scheduler.CosineAnnealingLR``).

    Parameters
    ----------
    final_fraction : float, default=0.1
        Last rate over first rate.

    Returns
    -------
    schedule : callable
        ``schedule(optimizer, n_steps) -> LRScheduler or None`` (None for a
        single step, which has nothing to anneal).
    """

    def schedule(optimizer, n_steps):
        if n_steps <= 1:
            return None
        first = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=n_steps - 1, eta_min=first * final_fraction
        )

    return schedule


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
    best : list of torch.Tensor
        The values at the lowest validation loss measured so far (the start
        values until a loss is measured).
    best_loss : float
        That loss (``inf`` before the first measurement).
    best_step : int or None
        Index of the hyper-step that measured it.
    last_loss : float or None
        The loss the next one is compared with: the last one measured, unless
        it rejected a step.
    scale : float
        Product of the shrinks so far: the schedule's rate times it is used.
    n_steps : int
        Hyper-steps taken so far (accepted, rejected or skipped).
    """

    tensors: list
    bounds: list
    optimizer: torch.optim.Optimizer
    scheduler: object = None
    best: list = field(default_factory=list)
    best_loss: float = math.inf
    best_step: int | None = None
    last_loss: float | None = None
    scale: float = 1.0
    n_steps: int = 0
    _before: list = field(default_factory=list, repr=False)


class OuterOptimizer:
    """Gradient steps on raw hyperparameters, kept where the validation loss is low.

    Parameters
    ----------
    optimizer : type, default=torch.optim.Adam
        A ``torch.optim.Optimizer`` class.
    lr : float, default=0.5
        Its first learning rate, in raw units.
    optimizer_kwargs : dict or None, default=None
        Its other arguments (e.g. ``{"betas": (0.0, 0.9)}``).
    schedule : callable or None, default=None
        ``schedule(optimizer, n_steps) -> LRScheduler or None``, e.g.
        :func:`cosine_schedule`; None keeps the rate constant.
    tol : float or None, default=0.05
        Relative rise of the measured validation loss from one hyper-step to
        the next that rejects the step between them; None never rejects.
        Losses measured epochs apart also differ because the weights trained
        on (a net that overfits sees its validation loss rise at any fixed
        values), so the tolerance catches a step that harms, not a trend.
    shrink : float, default=0.5
        Factor applied to the step size at each rejection.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import OuterOptimizer
    >>> theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    >>> outer = OuterOptimizer(torch.optim.SGD, lr=0.1)
    >>> state = outer.init([theta], [(-5.0, 5.0)], n_steps=20)
    >>> for _ in range(20):
    ...     loss = float((theta - 2) ** 2)
    ...     theta.grad = 2 * (theta.detach() - 2)
    ...     record = outer.update(state, loss)
    >>> round(float(state.best[0]), 2), record["status"]
    (1.98, 'accepted')
    """

    def __init__(
        self,
        optimizer: type = torch.optim.Adam,
        *,
        lr: float = 0.5,
        optimizer_kwargs: dict | None = None,
        schedule: Callable | None = None,
        tol: float | None = 0.05,
        shrink: float = 0.5,
    ):
        self.optimizer = optimizer
        self.lr = lr
        self.optimizer_kwargs = optimizer_kwargs
        self.schedule = schedule
        self.tol = tol
        self.shrink = shrink

    def __repr__(self):
        return (
            f"OuterOptimizer({self.optimizer.__name__}, lr={self.lr}, "
            f"optimizer_kwargs={self.optimizer_kwargs}, tol={self.tol}, "
            f"shrink={self.shrink})"
        )

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
        optimizer = self.optimizer(tensors, lr=self.lr, **(self.optimizer_kwargs or {}))
        scheduler = None if self.schedule is None else self.schedule(optimizer, n_steps)
        return OuterState(
            tensors=list(tensors),
            bounds=list(bounds),
            optimizer=optimizer,
            scheduler=scheduler,
            best=_copy(tensors),
        )

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
        lr = state.optimizer.param_groups[0]["lr"] * state.scale
        record = {"status": "accepted", "reason": None, "hyper_lr": lr}
        record.update(finite=True, at_bound=[False] * len(state.tensors))
        if rejected is not None:
            record.update(status="rejected", reason=rejected)
        elif skip is not None:
            record.update(status="skipped", reason=skip)
        else:
            self._step(state, record)
        state.optimizer.zero_grad(set_to_none=True)
        state.n_steps += 1
        if state.scheduler is not None:
            with warnings.catch_warnings():
                # A first step not taken leaves optimizer.step() uncalled; the
                # schedule still follows the planned hyper-steps.
                warnings.filterwarnings("ignore", "Detected call of", UserWarning)
                state.scheduler.step()
        return record

    def undo(self, state: OuterState) -> None:
        """Put back the values from before the last accepted step."""
        with torch.no_grad():
            for t, b in zip(state.tensors, state._before):
                t.copy_(b)

    def _judge(self, state, loss) -> str | None:
        """Track the losses; the reason to reject the last step, if the loss
        rose after it."""
        if not math.isfinite(loss):
            return None
        if loss <= state.best_loss:
            state.best_loss, state.best_step = float(loss), state.n_steps
            state.best = _copy(state.tensors)
        previous, state.last_loss = state.last_loss, float(loss)
        if (
            self.tol is None
            or previous is None
            or not state._before
            or loss <= previous + self.tol * abs(previous)
        ):
            return None
        # The values go back to where the previous loss was measured, which
        # stays the reference for the next step.
        state.last_loss = previous
        self.undo(state)
        state.scale *= self.shrink
        return (
            f"the validation loss rose from {previous:.4g} to {loss:.4g} after the "
            f"last step, by more than tol={self.tol:g}: the values went back to "
            f"where {previous:.4g} was measured and later steps are "
            f"{self.shrink:g} times shorter"
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


class TailAverage:
    """Mean of the raw values over the last hyper-steps of a run.

    The last ``fraction`` of the planned hyper-steps count, through torch's
    ``swa_utils.AveragedModel`` (a running mean, without a copy per step of a
    million values).

    Parameters
    ----------
    n_planned : int
        Hyper-steps planned.
    fraction : float
        Share of them, counted from the end, whose values are averaged.
    """

    def __init__(self, n_planned: int, fraction: float):
        self.start = n_planned - max(1, math.ceil(fraction * n_planned))
        self.average = None

    def add(self, index: int, tensors) -> None:
        """Count the values after hyper-step ``index`` (None if it was not
        accepted: the values it left are counted by the accepted ones)."""
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


def _copy(tensors) -> list:
    return [t.detach().clone() for t in tensors]
