"""The bilevel objective of a skorch network, at torch level.

The training loss of a minibatch, with every tuned hyperparameter entered by
its family's binding, is the inner objective; the validation loss of another
minibatch, in eval mode, is the outer one. :func:`net_hypergradient` hands
both to the engine. The search calls it once per split and hyper-step; the
benchmarks call the same function.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch.func import functional_call

from ._compat import _safe_indexing
from .hypergrad import (
    HypergradInfo,
    InnerParts,
    SolveInfo,
    hypergradient,
    optimizer_update,
    unrolled_hypergradient,
)
from .penalties import parameter_layout, trainable_parameters


def sample_batch(X, y, size, generator, return_index=False):
    """A sorted random subset of ``size`` rows (all rows if fewer), as tensors.

    Parameters
    ----------
    X : array-like
    y : array-like or None
    size : int
    generator : torch.Generator
    return_index : bool, default=False
        Also return the positions of the rows.

    Returns
    -------
    Xb, yb : torch.Tensor (``yb`` None when ``y`` is None)
    index : ndarray of int
        Only with ``return_index``.
    """
    n = len(X)
    index = torch.randperm(n, generator=generator)[: min(size, n)].numpy()
    index.sort()
    Xb = torch.as_tensor(np.asarray(_safe_indexing(X, index)))
    yb = None if y is None else torch.as_tensor(np.asarray(y[index]))
    return (Xb, yb, index) if return_index else (Xb, yb)


@contextlib.contextmanager
def kept_modes(module, train=None):
    """Give every submodule of ``module`` its train/eval mode back on exit.

    Parameters
    ----------
    module : torch.nn.Module
        Its submodules' ``training`` flags are read on entry and set back on
        exit, one by one.
    train : bool, optional
        Put the module in this mode on entry (``module.train(train)``, as
        skorch sets it), e.g. ``False`` for a forward pass in eval mode.

    Notes
    -----
    ``module.train()`` after a forward pass in eval mode is not the same: it
    puts a layer that the user holds in eval mode (a frozen BatchNorm, whose
    module overrides ``train``) or that skorch left in eval mode (after its
    validation pass) in train mode.
    """
    modes = [(m, m.training) for m in module.modules()]
    try:
        if train is not None:
            module.train(train)
        yield module
    finally:
        for submodule, mode in modes:
            submodule.training = mode


def module_hypergradient(
    module,
    forward,
    loss,
    bindings,
    raw,
    to_values,
    train_batch,
    valid_batch,
    solver,
    x0=None,
    optimizer=None,
    unroll_batches=(),
):
    """Hypergradient of a module's validation loss w.r.t. raw hyperparameters.

    Parameters
    ----------
    module : torch.nn.Module
        Its weights near a minimum of the training loss.
    forward : callable
        ``forward(X) -> output`` (the module itself, or skorch's ``net.infer``).
    loss : callable
        ``loss(output, y, X, training) -> scalar tensor``: the criterion.
    bindings : list of Binding
        One per tuned entry: each enters its value into the training loss.
    raw : list of torch.Tensor
        Leaf tensors with ``requires_grad=True``, one per binding.
    to_values : callable
        Maps ``raw`` (differentiably) to the values the bindings receive.
    train_batch, valid_batch : tuple of (X, y) tensors
        Inner (training) and outer (validation) minibatches.
    solver : str or callable
        The engine's linear solver (see :func:`skhypergrad.hypergrad.get_solver`).
    x0 : list of torch.Tensor, optional
        Warm start of the solver (``info.ihvp`` of a previous call).
    optimizer : torch.optim.Optimizer, optional
        The module's optimiser; needed when a binding is ``unrolled``.
    unroll_batches : sequence of (X, y, rows)
        Training minibatches of the unrolled steps, one per step (``rows``:
        their positions in the training part, or None).

    Returns
    -------
    hypergrad : list of torch.Tensor
        Shaped like ``raw``.
    info : HypergradInfo

    Notes
    -----
    The implicit bindings get their hypergradient from the implicit function
    theorem, the ``unrolled`` ones (learning rates) from differentiating the
    validation loss through ``len(unroll_batches)`` optimiser steps from the
    current weights (:func:`unrolled_part`); both in one call. The training
    loss is evaluated in train mode (relaxed dropout active), the
    validation loss in eval mode, both through ``module.train(mode)`` as
    skorch's training and validation steps set it (so a module that keeps a
    frozen layer in eval mode by overriding ``train`` keeps it there).
    Buffers (BatchNorm statistics) are restored afterwards, every submodule
    is back in the mode it was in before the call (:func:`kept_modes`) and
    the bindings hold the detached current values again.
    """
    params = trainable_parameters(module)
    X_in, y_in = train_batch
    X_out, y_out = valid_batch
    buffers = {k: b.detach().clone() for k, b in module.named_buffers()}
    implicit = [i for i, b in enumerate(bindings) if not _unrolled(b)]
    unrolled = [i for i, b in enumerate(bindings) if _unrolled(b)]

    def with_raw(hparams):
        # The raw list with the implicit entries replaced by ``hparams``.
        full = list(raw)
        for i, h in zip(implicit, hparams):
            full[i] = h
        return full

    def inner_loss(params, hparams):
        values = to_values(with_raw(hparams))
        terms = [bindings[i].inner_term(values[i], params) for i in implicit]
        terms = [t for t in terms if t is not None]
        module.train()
        outputs = forward(X_in)
        data_loss = loss(outputs, y_in, X_in, True)
        # In parts, so that a Gauss-Newton solver can use the outputs.
        return InnerParts(outputs, data_loss, sum(terms) if terms else None)

    def outer_loss(params, hparams):
        module.eval()
        return loss(forward(X_out), y_out, X_out, False)

    with kept_modes(module):
        try:
            result, info = [torch.zeros_like(r) for r in raw], None
            if implicit:
                grads, info = hypergradient(
                    inner_loss,
                    outer_loss,
                    params,
                    [raw[i] for i in implicit],
                    solver=solver,
                    x0=x0,
                    return_info=True,
                )
                for i, g in zip(implicit, grads):
                    result[i] = g
            if unrolled:
                parts = (module, forward, loss, bindings, raw, to_values)
                grads, unroll = unrolled_part(
                    parts, unrolled, optimizer, unroll_batches, valid_batch
                )
                for i, g in zip(unrolled, grads):
                    result[i] = g
                if info is None:
                    solve = SolveInfo("unrolled", unroll.n_steps, 0.0, True)
                    info = HypergradInfo(
                        solve, None, unroll.outer_loss, math.nan, x0 or []
                    )
            return result, info
        finally:
            module.load_state_dict(buffers, strict=False)
            with torch.no_grad():
                for binding, value in zip(bindings, to_values(raw)):
                    binding.apply(value.detach())


def unrolled_part(parts, unrolled, optimizer, batches, valid_batch):
    """Hypergradient of the ``unrolled`` bindings by differentiating through steps.

    From a copy of the current weights, the optimiser's update (SGD with its
    momentum buffers, or Adam with its moments; see
    :func:`~skhypergrad.hypergrad.optimizer_update`) is taken once per
    training minibatch of ``batches``, with the learning rates as
    differentiable tensors, then the validation loss is differentiated.
    The training loss of the steps is the training criterion with the other
    bindings' current values (detached): a weight decay the optimiser applies
    is read from its groups, as training does.

    Parameters
    ----------
    parts : tuple
        ``(module, forward, loss, bindings, raw, to_values)`` as given to
        :func:`module_hypergradient`.
    unrolled : list of int
        Positions of the unrolled bindings.
    optimizer : torch.optim.Optimizer
    batches : sequence of (X, y, rows)
    valid_batch : tuple of (X, y)

    Returns
    -------
    hypergrad : list of torch.Tensor
        One per unrolled binding.
    info : UnrollInfo
    """
    module, forward, loss, bindings, raw, to_values = parts
    names = parameter_layout(module).names
    wrapper = _Stateless(module, forward)
    hparams = [raw[i] for i in unrolled]
    with torch.no_grad():
        current = [v.detach() for v in to_values(raw)]
    # Bindings whose value the optimiser applies (a weight decay in its groups)
    # are left out of the loss: the update reads them from the groups.
    in_loss = [
        i
        for i, b in enumerate(bindings)
        if not _unrolled(b) and getattr(b, "optimizer_setting", None) is None
    ]

    def run(weights, X):
        return functional_call(
            wrapper, {f"module.{n}": w for n, w in zip(names, weights)}, (X,)
        )

    def inner_loss(weights, k):
        X, y, rows = batches[k]
        if rows is not None:
            for binding in bindings:
                binding.batch_rows(rows)
        terms = [bindings[i].inner_term(current[i], weights) for i in in_loss]
        terms = [t for t in terms if t is not None]
        module.train()
        data_loss = loss(run(weights, X), y, X, True)
        return data_loss + sum(terms) if terms else data_loss

    def outer_loss(weights):
        module.eval()
        X, y = valid_batch
        return loss(run(weights, X), y, X, False)

    def settings(hparams):
        values = to_values(
            [
                hparams[unrolled.index(i)] if i in unrolled else r
                for i, r in enumerate(raw)
            ]
        )
        out = {}
        for i in unrolled:
            out.update(bindings[i].unrolled_settings(values[i], params))
        return out

    params = trainable_parameters(module)
    update, state = optimizer_update(optimizer, params)
    return unrolled_hypergradient(
        inner_loss,
        outer_loss,
        params,
        hparams,
        settings,
        n_steps=len(batches),
        update=update,
        state=state,
        return_info=True,
    )


def _unrolled(binding) -> bool:
    return getattr(binding, "unrolled", False)


class _Stateless(torch.nn.Module):
    """The module behind a forward function (skorch's ``net.infer``), so that
    ``torch.func.functional_call`` can run it with other weights."""

    def __init__(self, module, forward):
        super().__init__()
        self.module = module
        self._forward = forward

    def forward(self, X):  # noqa: D102
        return self._forward(X)


def net_hypergradient(
    net,
    bindings,
    raw,
    to_values,
    train_batch,
    valid_batch,
    solver,
    x0=None,
    unroll_batches=(),
):
    """:func:`module_hypergradient` for a skorch net, with its own criterion.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialised, with its weights near a minimum of the training loss.
    bindings, raw, to_values, train_batch, valid_batch, solver, x0, unroll_batches
        As in :func:`module_hypergradient` (the optimiser is the net's).

    Returns
    -------
    hypergrad : list of torch.Tensor
    info : HypergradInfo
    """

    def loss(output, y, X, training):
        y = None if y is None else y.to(net.device)
        return net.get_loss(output, y, X=X, training=training)

    try:
        return module_hypergradient(
            net.module_,
            net.infer,
            loss,
            bindings,
            raw,
            to_values,
            train_batch,
            valid_batch,
            solver,
            x0,
            net.optimizer_,
            unroll_batches,
        )
    finally:
        net.optimizer_.zero_grad(set_to_none=True)


__all__ = [
    "kept_modes",
    "module_hypergradient",
    "net_hypergradient",
    "sample_batch",
    "unrolled_part",
]
