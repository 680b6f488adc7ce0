"""Hypergradients of optimiser settings by differentiating through training steps.

A learning rate does not move the minimum of the training loss, so its
implicit hypergradient is zero. Its effect is on the path: from weights
``w_0``, ``K`` optimiser steps ``w_{k+1} = w_k - lr_k * d_k(w_k)`` on
training minibatches, then the validation loss ``L_V(w_K)``, are one
differentiable function of the learning rates (truncated back-propagation,
Shaban et al., 2019). ``K = 1`` with SGD is the hypergradient of Baydin et
al. (2018), ``-grad L_V(w_1) . grad L_T(w_0)``; a few steps with one rate per
layer learn the rates as MAML++ does (Antoniou et al., 2019).

The steps are written here rather than taken from ``torch.optim``. On torch
2.13, ``torch.optim.SGD(..., lr=<tensor>, differentiable=True)`` does carry
the gradient to a tensor rate (checked), but the oldest torch this package
supports (2.2) was not checked, and the Adam step here deliberately holds
the second moment fixed through the unrolled steps, which torch's Adam does
not. The forms here are checked against real ``torch.optim`` training by
central differences (``tests/hypergrad/test_unroll.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .._typing import TensorList
from ..exceptions import InvalidHyperparameterError, SolverDivergedError

# update(params, grads, settings, state) -> (params, state): one optimiser step.
Update = Callable[[list, list, dict, list], tuple[list, list]]


class UnrollInfo(NamedTuple):
    """Diagnostics of one unrolled hypergradient.

    Attributes
    ----------
    n_steps : int
        Training steps differentiated through.
    outer_loss : float
        Validation loss after the steps.
    inner_losses : list of float
        Training loss of each step, before it was taken.
    """

    n_steps: int
    outer_loss: float
    inner_losses: list


def unrolled_hypergradient(
    inner_loss: Callable[[list, int], torch.Tensor],
    outer_loss: Callable[[list], torch.Tensor],
    params: TensorList,
    hparams: TensorList,
    settings: Callable[[TensorList], dict],
    *,
    n_steps: int = 1,
    update: Update | None = None,
    state: list | None = None,
    inner_depends: bool = False,
    return_info: bool = False,
) -> list[torch.Tensor] | tuple[list[torch.Tensor], UnrollInfo]:
    """Gradient of the outer loss after ``n_steps`` optimiser steps w.r.t. ``hparams``.

    The steps start from a detached copy of ``params`` (the tensors given are
    never changed) and are kept in the autograd graph, so memory grows
    linearly with ``n_steps``.

    Parameters
    ----------
    inner_loss : callable
        ``inner_loss(params, k) -> scalar tensor``: the training loss of step
        ``k``'s minibatch at weights ``params`` (a list shaped like
        ``params``, used functionally).
    outer_loss : callable
        ``outer_loss(params) -> scalar tensor``: the validation loss.
    params : list of torch.Tensor
        Weights the steps start from.
    hparams : list of torch.Tensor
        Leaf tensors, ``requires_grad=True``.
    settings : callable
        ``settings(hparams) -> {name: list of tensors}``: differentiable
        optimiser settings, one tensor (broadcastable to its parameter) per
        parameter, e.g. ``{"lr": [...]}``; they override ``update``'s own.
    n_steps : int, default=1
        Steps differentiated through (``K``).
    update : callable, optional
        ``update(params, grads, settings, state) -> (params, state)``, one
        optimiser step written with differentiable tensor operations (see
        :func:`optimizer_update`). Default: plain SGD, ``w - lr * grad``.
    state : list, optional
        The update's state (momentum buffers...); None for a fresh one.
    inner_depends : bool, default=False
        Whether ``inner_loss`` itself depends on ``hparams`` (dataset
        distillation: the synthetic rows are the hyperparameters). Then the
        first step's gradient keeps its graph too; otherwise it is a
        constant of the settings and is not differentiated.
    return_info : bool, default=False
        Also return an :class:`UnrollInfo`.

    Returns
    -------
    hypergrad : list of torch.Tensor
        Same shapes as ``hparams``; detached.
    info : UnrollInfo
        Only if ``return_info=True``.

    Raises
    ------
    SolverDivergedError
        If the validation loss or the hypergradient is not finite.

    Examples
    --------
    One SGD step on ``(w - 2)^2`` from ``w = 0`` and the validation loss
    ``(w - 1)^2``: ``w_1 = 4 lr``, so the slope is ``2 (4 lr - 1) 4 = -4`` at
    ``lr = 0.125``.

    >>> import torch
    >>> from skhypergrad.hypergrad import unrolled_hypergradient
    >>> lr = torch.tensor(0.125, requires_grad=True)
    >>> unrolled_hypergradient(
    ...     lambda p, k: ((p[0] - 2.0) ** 2).sum(),
    ...     lambda p: ((p[0] - 1.0) ** 2).sum(),
    ...     [torch.zeros(1)], [lr], lambda h: {"lr": [h[0]]})[0]
    tensor(-4.)
    """
    update = sgd_update([{"lr": 0.0}] * len(params)) if update is None else update
    weights = [p.detach().clone().requires_grad_(True) for p in params]
    values = settings(list(hparams))
    losses = []
    for k in range(n_steps):
        loss = inner_loss(weights, k)
        losses.append(float(loss.detach()))
        # The first step's gradient does not depend on the settings; the
        # later ones do, through the weights: keep their graph.
        grads = torch.autograd.grad(
            loss, weights, create_graph=inner_depends or k > 0, allow_unused=True
        )
        grads = [
            torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)
        ]
        weights, state = update(weights, grads, values, state)
    outer = outer_loss(weights)
    outer_value = float(outer.detach())
    if not math.isfinite(outer_value):
        raise SolverDivergedError(
            f"The validation loss after {n_steps} unrolled training steps is not "
            f"finite (got {outer_value}): the learning rates are too large for these "
            "weights. Narrow the range of the learning rate, or lower the outer rate "
            "(OuterOptimizer's lr, hyper_optimizer__lr in a search)."
        )
    grads = torch.autograd.grad(outer, list(hparams), allow_unused=True)
    result = [
        torch.zeros_like(h) if g is None else g.detach() for g, h in zip(grads, hparams)
    ]
    norm = math.sqrt(sum(float((r.double() ** 2).sum()) for r in result))
    if not math.isfinite(norm):
        raise SolverDivergedError(
            f"The unrolled hypergradient is not finite (norm {norm}) after {n_steps} "
            "steps. Unroll fewer steps or narrow the range of the learning rate."
        )
    if not return_info:
        return result
    return result, UnrollInfo(n_steps, outer_value, losses)


def _getter(index, groups, settings):
    def get(name):
        values = settings.get(name)
        return groups[index][name] if values is None else values[index]

    return get


def sgd_update(groups: list) -> Update:
    """One ``torch.optim.SGD`` step as a differentiable function.

    Parameters
    ----------
    groups : list of dict
        For each parameter, its settings (``lr``, ``momentum``,
        ``dampening``, ``nesterov``, ``weight_decay``; missing ones are 0 /
        False).

    Returns
    -------
    update : callable
        ``update(params, grads, settings, state) -> (params, state)``; the
        state is one momentum buffer (or None) per parameter, carried through
        the steps with its graph, as torch's SGD updates it.
    """
    groups = [{"momentum": 0, "dampening": 0, "weight_decay": 0, **g} for g in groups]

    def update(params, grads, settings, state):
        state = [None] * len(params) if state is None else state
        new_params, new_state = [], []
        for i, (p, g) in enumerate(zip(params, grads)):
            get = _getter(i, groups, settings)
            d = g + get("weight_decay") * p
            buf, momentum = state[i], get("momentum")
            if momentum:
                buf = d if buf is None else momentum * buf + (1 - get("dampening")) * d
                d = d + momentum * buf if groups[i].get("nesterov") else buf
            new_params.append(p - get("lr") * d)
            new_state.append(buf)
        return new_params, new_state

    return update


def adam_update(groups: list) -> Update:
    """One ``torch.optim.Adam`` / ``AdamW`` step, its preconditioner held fixed.

    The first moment is carried through the steps with its graph; the second
    moment is updated as Adam does but without a gradient (the
    preconditioner ``1 / (sqrt(v) + eps)`` is treated as a constant of the
    hyperparameters), as is usual for hypergradients through Adam.

    Parameters
    ----------
    groups : list of dict
        For each parameter, its settings: ``lr``, ``betas``, ``eps``,
        ``weight_decay``, ``amsgrad`` and ``decoupled_weight_decay`` (True
        for AdamW: ``w <- w (1 - lr * weight_decay)``).

    Returns
    -------
    update : callable
        ``update(params, grads, settings, state) -> (params, state)``; the
        state is ``(exp_avg, exp_avg_sq, max_exp_avg_sq, step)`` per
        parameter (None entries for a fresh state).
    """

    def update(params, grads, settings, state):
        state = [None] * len(params) if state is None else state
        new_params, new_state = [], []
        for i, (p, g) in enumerate(zip(params, grads)):
            get = _getter(i, groups, settings)
            lr, decay = get("lr"), get("weight_decay")
            beta1, beta2 = get("betas")
            m, v, v_max, step = state[i] or (0.0, torch.zeros_like(p), None, 0)
            if groups[i].get("decoupled_weight_decay"):
                p = p * (1 - lr * decay)
            else:
                g = g + decay * p
            step += 1
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g.detach() ** 2
            if groups[i].get("amsgrad"):
                v_max = v if v_max is None else torch.maximum(v_max, v)
            second = v if v_max is None else v_max
            denom = second.sqrt() / math.sqrt(1 - beta2**step) + get("eps")
            new_params.append(p - lr / (1 - beta1**step) * m / denom)
            new_state.append((m, v, v_max, step))
        return new_params, new_state

    return update


def optimizer_update(
    optimizer: torch.optim.Optimizer, params: TensorList
) -> tuple[Update, list]:
    """The differentiable step of a torch optimiser, and its current state.

    Parameters
    ----------
    optimizer : torch.optim.SGD, Adam or AdamW
        Its parameter groups give each parameter's settings; its state (the
        momentum buffers, Adam's moments and step count) is copied, detached.
    params : list of torch.Tensor
        Parameters of ``optimizer``, in the order the update receives them.

    Returns
    -------
    update : callable
        :func:`sgd_update` or :func:`adam_update`.
    state : list
        Its state for ``params``.

    Raises
    ------
    InvalidHyperparameterError
        For another optimiser, or settings the unrolled step does not
        reproduce (``maximize``).
    """
    where = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    groups = [where.get(id(p), optimizer.defaults) for p in params]
    if any(g.get("maximize") for g in groups):
        raise InvalidHyperparameterError(
            "Cannot unroll an optimizer with maximize=True: its steps ascend the "
            "loss. Use maximize=False (the default)."
        )
    if isinstance(optimizer, torch.optim.SGD):
        buffers = [optimizer.state.get(p, {}).get("momentum_buffer") for p in params]
        state = [None if b is None else b.detach().clone() for b in buffers]
        return sgd_update(groups), state
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        decoupled = isinstance(optimizer, torch.optim.AdamW)
        groups = [
            {"decoupled_weight_decay": decoupled, **{k: v for k, v in g.items()}}
            for g in groups
        ]
        return adam_update(groups), [
            _adam_state(optimizer.state.get(p)) for p in params
        ]
    raise InvalidHyperparameterError(
        f"Cannot differentiate through the steps of {type(optimizer).__name__}: the "
        "unrolled steps reproduce torch.optim.SGD, Adam and AdamW. Use one of them."
    )


def _adam_state(state):
    if not state or "exp_avg" not in state:
        return None
    v_max = state.get("max_exp_avg_sq")
    return (
        state["exp_avg"].detach().clone(),
        state["exp_avg_sq"].detach().clone(),
        None if v_max is None else v_max.detach().clone(),
        int(float(state["step"])),
    )


__all__ = [
    "UnrollInfo",
    "adam_update",
    "optimizer_update",
    "sgd_update",
    "unrolled_hypergradient",
]
