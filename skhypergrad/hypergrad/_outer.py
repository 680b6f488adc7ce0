"""Outer optimisers as pure ``init`` / ``step`` functions on a NamedTuple state."""

from __future__ import annotations

from typing import NamedTuple

import torch


class AdamState(NamedTuple):
    """Moments and step count of :func:`adam_step`.

    Attributes
    ----------
    step : int
        Steps taken so far.
    exp_avg : list of torch.Tensor
        First-moment estimates, shaped like the hyperparameters.
    exp_avg_sq : list of torch.Tensor
        Second-moment estimates.
    """

    step: int
    exp_avg: list
    exp_avg_sq: list


def adam_init(hparams) -> AdamState:
    """Return a zero :class:`AdamState` shaped like ``hparams``.

    Parameters
    ----------
    hparams : list of torch.Tensor
        Raw (unconstrained) hyperparameters.

    Returns
    -------
    state : AdamState
    """
    zeros = [torch.zeros_like(h) for h in hparams]
    return AdamState(0, zeros, [z.clone() for z in zeros])


def adam_step(
    hparams, grads, state: AdamState, *, lr=0.1, betas=(0.9, 0.999), eps=1e-8
):
    """One Adam step; returns new tensors and the new state (inputs untouched).

    Parameters
    ----------
    hparams : list of torch.Tensor
        Current raw hyperparameters.
    grads : list of torch.Tensor
        Hypergradients with respect to ``hparams``.
    state : AdamState
        From :func:`adam_init` or the previous step.
    lr : float, default=0.1
        Step size; each coordinate moves by at most about ``lr``.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates of the first and second moments.
    eps : float, default=1e-8
        Added to the denominator.

    Returns
    -------
    hparams : list of torch.Tensor
    state : AdamState
    """
    b1, b2 = betas
    t = state.step + 1
    m = [b1 * mi + (1 - b1) * g for mi, g in zip(state.exp_avg, grads)]
    v = [b2 * vi + (1 - b2) * g * g for vi, g in zip(state.exp_avg_sq, grads)]
    new = [
        h - lr * (mi / (1 - b1**t)) / (torch.sqrt(vi / (1 - b2**t)) + eps)
        for h, mi, vi in zip(hparams, m, v)
    ]
    return new, AdamState(t, m, v)


def sgd_step(hparams, grads, state=None, *, lr=0.1):
    """One gradient-descent step; returns new tensors and ``state`` unchanged.

    Parameters
    ----------
    hparams : list of torch.Tensor
    grads : list of torch.Tensor
    state : None
        Unused; kept so that every outer optimiser has the same signature.
    lr : float, default=0.1

    Returns
    -------
    hparams : list of torch.Tensor
    state : None
    """
    return [h - lr * g for h, g in zip(hparams, grads)], state
