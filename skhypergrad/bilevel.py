"""The bilevel objective of a skorch network, at torch level.

The training loss of a minibatch, with every tuned hyperparameter entered by
its family's binding, is the inner objective; the validation loss of another
minibatch, in eval mode, is the outer one. :func:`net_hypergradient` hands
both to the engine. The search calls it once per split and hyper-step; the
benchmarks call the same function.
"""

from __future__ import annotations

import numpy as np
import torch

from .hypergrad import InnerParts, hypergradient
from .penalties import trainable_parameters


def take_rows(X, indices):
    """Rows ``indices`` of an array or a DataFrame.

    Parameters
    ----------
    X : array-like or pandas.DataFrame
    indices : array of int

    Returns
    -------
    rows : same type as ``X``
    """
    return X.iloc[indices] if hasattr(X, "iloc") else X[indices]


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
    Xb = torch.as_tensor(np.asarray(take_rows(X, index)))
    yb = None if y is None else torch.as_tensor(np.asarray(y[index]))
    return (Xb, yb, index) if return_index else (Xb, yb)


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

    Returns
    -------
    hypergrad : list of torch.Tensor
        Shaped like ``raw``.
    info : HypergradInfo

    Notes
    -----
    The training loss is evaluated in train mode (relaxed dropout active), the
    validation loss in eval mode. Buffers (BatchNorm statistics) are restored
    afterwards, the module is back in train mode and the bindings hold the
    detached current values again.
    """
    params = trainable_parameters(module)
    X_in, y_in = train_batch
    X_out, y_out = valid_batch
    buffers = {k: b.detach().clone() for k, b in module.named_buffers()}

    def inner_loss(params, hparams):
        terms = [b.inner_term(v, params) for b, v in zip(bindings, to_values(hparams))]
        terms = [t for t in terms if t is not None]
        module.train()
        outputs = forward(X_in)
        data_loss = loss(outputs, y_in, X_in, True)
        # In parts, so that a Gauss-Newton solver can use the outputs.
        return InnerParts(outputs, data_loss, sum(terms) if terms else None)

    def outer_loss(params, hparams):
        module.eval()
        return loss(forward(X_out), y_out, X_out, False)

    try:
        return hypergradient(
            inner_loss, outer_loss, params, raw, solver=solver, x0=x0, return_info=True
        )
    finally:
        module.load_state_dict(buffers, strict=False)
        module.train()
        with torch.no_grad():
            for binding, value in zip(bindings, to_values(raw)):
                binding.apply(value.detach())


def net_hypergradient(
    net, bindings, raw, to_values, train_batch, valid_batch, solver, x0=None
):
    """:func:`module_hypergradient` for a skorch net, with its own criterion.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialised, with its weights near a minimum of the training loss.
    bindings, raw, to_values, train_batch, valid_batch, solver, x0
        As in :func:`module_hypergradient`.

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
        )
    finally:
        net.optimizer_.zero_grad(set_to_none=True)


__all__ = ["module_hypergradient", "net_hypergradient", "sample_batch", "take_rows"]
