"""Hessian-vector and mixed second-derivative products by double backward."""

from __future__ import annotations

import torch

from .._typing import HVP, TensorList


def inner_gradient(
    inner_loss: torch.Tensor, params: TensorList
) -> tuple[torch.Tensor, ...]:
    """Return ``dL_T/dw`` with a graph kept, for later second derivatives.

    Parameters
    ----------
    inner_loss : torch.Tensor
        Scalar training objective, built from ``params`` (and hyperparameters).
    params : list of torch.Tensor
        Tensors with ``requires_grad=True``.

    Returns
    -------
    grads : tuple of torch.Tensor
        Same shapes as ``params``; differentiable again.
    """
    return torch.autograd.grad(inner_loss, params, create_graph=True)


def make_hvp(grads: TensorList, params: TensorList, damping: float = 0.0) -> HVP:
    """Build ``v -> (H + damping I) v`` from gradients that keep their graph.

    Parameters
    ----------
    grads : list of torch.Tensor
        Output of :func:`inner_gradient`.
    params : list of torch.Tensor
        The tensors ``grads`` were taken with respect to.
    damping : float, default=0.0
        Added multiple of the identity; makes an indefinite ``H`` better posed.

    Returns
    -------
    hvp : callable
        Maps a list of tensors shaped like ``params`` to ``(H + damping I) v``.
    """

    def hvp(vectors: TensorList) -> list[torch.Tensor]:
        # d/dw <dL_T/dw, v> = H v, since v does not depend on w.
        products = torch.autograd.grad(
            grads,
            params,
            grad_outputs=list(vectors),
            retain_graph=True,
            allow_unused=True,
        )
        out = []
        for prod, vec in zip(products, vectors):
            prod = torch.zeros_like(vec) if prod is None else prod
            out.append(prod + damping * vec if damping else prod)
        return out

    return hvp


def mixed_vjp(
    grads: TensorList, hparams: TensorList, vectors: TensorList
) -> list[torch.Tensor]:
    """Return ``v^T d^2 L_T / dw dlambda^T`` as tensors shaped like ``hparams``.

    Parameters
    ----------
    grads : list of torch.Tensor
        Output of :func:`inner_gradient` (depends on ``hparams``).
    hparams : list of torch.Tensor
        Hyperparameter tensors with ``requires_grad=True``.
    vectors : list of torch.Tensor
        Shaped like the parameters, usually ``H^{-1} dL_V/dw``.

    Returns
    -------
    products : list of torch.Tensor
        Zeros where the training loss does not depend on a hyperparameter.
    """
    products = torch.autograd.grad(
        grads,
        hparams,
        grad_outputs=list(vectors),
        retain_graph=True,
        allow_unused=True,
    )
    return [torch.zeros_like(h) if p is None else p for p, h in zip(products, hparams)]


def top_eigenvalue(
    hvp: HVP,
    like: TensorList,
    *,
    n_iter: int = 10,
    generator: torch.Generator | None = None,
) -> float:
    """Estimate the largest-magnitude eigenvalue of ``H`` by power iteration.

    Parameters
    ----------
    hvp : callable
        Hessian-vector product.
    like : list of torch.Tensor
        Tensors giving shapes, dtype and device of the vectors.
    n_iter : int, default=10
        Number of Hessian-vector products.
    generator : torch.Generator, optional
        Source of the random start vector; drawn on the generator's device and
        moved to that of ``like``, so a CPU generator gives the same start on
        every device. None uses torch's global random state.

    Returns
    -------
    eigenvalue : float
        Rayleigh quotient of the last iterate; ``nan`` if it became non-finite.
    """
    vec = [
        torch.randn_like(t)
        if generator is None
        else torch.randn(
            t.shape, dtype=t.dtype, device=generator.device, generator=generator
        ).to(t.device)
        for t in like
    ]
    norm = _norm(vec)
    vec = [v / norm for v in vec]
    eigenvalue = float("nan")
    for _ in range(max(1, n_iter)):
        hv = hvp(vec)
        eigenvalue = float(sum((a * b).sum() for a, b in zip(vec, hv)))
        norm = _norm(hv)
        if not torch.isfinite(norm) or norm == 0:
            break
        vec = [h / norm for h in hv]
    return eigenvalue


def _norm(tensors: TensorList) -> torch.Tensor:
    return torch.sqrt(sum((t.detach() ** 2).sum() for t in tensors))
