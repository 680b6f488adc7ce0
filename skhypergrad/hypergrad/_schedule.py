"""When the outer optimiser steps, at what rate, and which values it reports.

A schedule of the outer rate is a ``torch.optim.lr_scheduler`` class (its
length argument filled in from the planned hyper-steps) or a callable
``schedule(optimizer, n_steps)``; :class:`CosineSchedule` is the default.
:class:`TailAverage` averages the values of the last hyper-steps.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch.optim.swa_utils import AveragedModel

__all__ = ["CosineSchedule", "TailAverage", "make_scheduler"]

# The length argument of torch's schedulers, and the value it gets for a run
# of n planned steps (the scheduler steps once after every hyper-step).
_LENGTH_ARGS = {
    "T_max": lambda n: n - 1,
    "total_iters": lambda n: n - 1,
    "total_steps": lambda n: n,
}


class CosineSchedule:
    """Cosine decay of the outer rate to a fraction of its first value.

    The rate falls from its first value to ``final_fraction`` of it over the
    planned hyper-steps, along ``torch.optim.lr_scheduler.CosineAnnealingLR``
    (whose ``eta_min`` is absolute, so it is set from the first rate here).

    Parameters
    ----------
    final_fraction : float, default=0.1
        Last rate over first rate.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import CosineSchedule
    >>> w = torch.zeros(1, requires_grad=True)
    >>> opt = torch.optim.SGD([w], lr=1.0)
    >>> scheduler = CosineSchedule(0.1)(opt, n_steps=3)
    >>> for _ in range(2):
    ...     opt.step(); scheduler.step()
    >>> round(opt.param_groups[0]["lr"], 6)
    0.1
    """

    def __init__(self, final_fraction: float = 0.1):
        self.final_fraction = final_fraction

    def __call__(self, optimizer, n_steps: int):
        """``CosineAnnealingLR`` over ``n_steps`` (None for a single step)."""
        if n_steps <= 1:
            return None
        first = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=n_steps - 1, eta_min=first * self.final_fraction
        )

    def __repr__(self):
        return f"CosineSchedule({self.final_fraction!r})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.final_fraction == other.final_fraction

    __hash__ = None


def make_scheduler(schedule, kwargs, optimizer, n_steps: int):
    """The scheduler of one run, or None for a constant rate.

    Parameters
    ----------
    schedule : type, callable or None
        A ``torch.optim.lr_scheduler.LRScheduler`` subclass, built with
        ``kwargs`` (its ``T_max``, ``total_iters`` or ``total_steps``, when
        not given, from ``n_steps``), or ``schedule(optimizer, n_steps)``.
    kwargs : dict or None
        Arguments of a scheduler class.
    optimizer : torch.optim.Optimizer
    n_steps : int
        Hyper-steps planned.

    Returns
    -------
    scheduler : torch.optim.lr_scheduler.LRScheduler or None
    """
    if schedule is None or n_steps < 1:
        return None
    if not isinstance(schedule, type):
        return schedule(optimizer, n_steps)
    if n_steps <= 1:  # nothing to anneal
        return None
    kwargs = dict(kwargs or {})
    accepted = inspect.signature(schedule).parameters
    for name, length in _LENGTH_ARGS.items():
        if name in accepted and name not in kwargs:
            kwargs[name] = length(n_steps)
    return schedule(optimizer, **kwargs)


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
