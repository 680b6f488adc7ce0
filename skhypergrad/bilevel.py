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

from .hypergrad import hypergradient
from .penalties import trainable_parameters


def take_rows(X, indices):
    """Rows ``indices`` of an array or a DataFrame."""
    return X.iloc[indices] if hasattr(X, "iloc") else X[indices]


def sample_batch(X, y, size, generator):
    """A sorted random subset of ``size`` rows (all rows if fewer), as tensors.

    Parameters
    ----------
    X : array-like
    y : array-like or None
    size : int
    generator : torch.Generator

    Returns
    -------
    Xb, yb : torch.Tensor (``yb`` None when ``y`` is None)
    """
    n = len(X)
    index = torch.randperm(n, generator=generator)[: min(size, n)].numpy()
    index.sort()
    Xb = torch.as_tensor(np.asarray(take_rows(X, index)))
    yb = None if y is None else torch.as_tensor(np.asarray(y[index]))
    return Xb, yb


def net_hypergradient(net, bindings, raw, to_values, train_batch, valid_batch, solver):
    """Hypergradient of a skorch net's validation loss w.r.t. raw hyperparameters.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialised, with its weights near a minimum of the training loss.
    bindings : list of Binding
        One per tuned entry, attached to ``net``.
    raw : list of torch.Tensor
        Leaf tensors with ``requires_grad=True``, one per binding.
    to_values : callable
        Maps ``raw`` (differentiably) to the values the bindings receive.
    train_batch, valid_batch : tuple of (X, y) tensors
        Inner (training) and outer (validation) minibatches.
    solver : str or callable
        The engine's linear solver (see :func:`skhypergrad.hypergrad.get_solver`).

    Returns
    -------
    hypergrad : list of torch.Tensor
        Shaped like ``raw``.
    info : HypergradInfo

    Notes
    -----
    Buffers (BatchNorm statistics) are restored afterwards, the module is back
    in train mode, the bindings hold the detached current values again and the
    optimizer's gradients are cleared.
    """
    module = net.module_
    params = trainable_parameters(module)
    X_in, y_in = train_batch
    X_out, y_out = valid_batch
    buffers = {k: b.detach().clone() for k, b in module.named_buffers()}

    def inner_loss(params, hparams):
        terms = [b.inner_term(v, params) for b, v in zip(bindings, to_values(hparams))]
        module.train()
        loss = net.get_loss(net.infer(X_in), _on(y_in, net), X=X_in, training=True)
        return loss + sum(t for t in terms if t is not None)

    def outer_loss(params, hparams):
        module.eval()
        return net.get_loss(net.infer(X_out), _on(y_out, net), X=X_out, training=False)

    try:
        return hypergradient(
            inner_loss, outer_loss, params, raw, solver=solver, return_info=True
        )
    finally:
        module.load_state_dict(buffers, strict=False)
        module.train()
        with torch.no_grad():
            for binding, value in zip(bindings, to_values(raw)):
                binding.apply(value.detach())
        net.optimizer_.zero_grad(set_to_none=True)


def _on(y, net):
    return None if y is None else y.to(net.device)


__all__ = ["net_hypergradient", "sample_batch", "take_rows"]
