"""Hessian-vector and mixed second-derivative products by double backward.

Why not ``torch.func.hvp`` / ``jvp``: those take a function and run its
forward pass again for every product. A solver calls the product 5 to 40
times per hyper-step on one minibatch; double backward through the one graph
built by :func:`inner_gradient` reuses that forward pass, and so the same
relaxed dropout mask and input noise in every product, which the curvature of
one stochastic objective needs (a fresh mask per product would make conjugate
gradient solve a different system at each iteration).
"""

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


def make_ggnvp(
    outputs: torch.Tensor,
    data_loss: torch.Tensor,
    params: TensorList,
    penalty: torch.Tensor | None = None,
) -> HVP:
    """Build ``v -> (J^T H_out J + H_penalty) v``, the generalised Gauss-Newton product.

    ``J`` is the Jacobian of ``outputs`` with respect to ``params`` and
    ``H_out`` the Hessian of ``data_loss`` with respect to ``outputs``
    (Schraudolph, 2002; Martens, 2010). It is positive semi-definite when the
    loss is convex in the outputs (cross-entropy, squared error), so conjugate
    gradient converges on it. Every product reuses the one forward graph, so a
    stochastic forward pass (a relaxed dropout mask) is the same noise in all.

    Parameters
    ----------
    outputs : torch.Tensor
        The model's outputs on the batch, built from ``params``.
    data_loss : torch.Tensor
        Scalar loss computed from ``outputs``.
    params : list of torch.Tensor
        Tensors with ``requires_grad=True``.
    penalty : torch.Tensor, optional
        Scalar term of the training loss that does not go through
        ``outputs`` (weight decay); its exact Hessian is added.

    Returns
    -------
    ggnvp : callable
        Maps a list of tensors shaped like ``params`` to the product.
    """
    params = list(params)
    (out_grad,) = torch.autograd.grad(data_loss, outputs, create_graph=True)
    # J^T u for a dummy u, linear in u: differentiating <J^T u, v> in u gives J v.
    dummy = torch.zeros_like(outputs, requires_grad=True)
    jt_dummy = torch.autograd.grad(
        outputs, params, grad_outputs=dummy, create_graph=True, allow_unused=True
    )
    used = [i for i, t in enumerate(jt_dummy) if t is not None]
    penalty_grads = None
    if penalty is not None and penalty.requires_grad:
        penalty_grads = torch.autograd.grad(
            penalty, params, create_graph=True, allow_unused=True
        )

    def ggnvp(vectors: TensorList) -> list[torch.Tensor]:
        (jv,) = torch.autograd.grad(
            [jt_dummy[i] for i in used],
            dummy,
            grad_outputs=[vectors[i] for i in used],
            retain_graph=True,
        )
        (hjv,) = torch.autograd.grad(
            out_grad, outputs, grad_outputs=jv, retain_graph=True, allow_unused=True
        )
        hjv = torch.zeros_like(outputs) if hjv is None else hjv
        products = torch.autograd.grad(
            outputs, params, grad_outputs=hjv, retain_graph=True, allow_unused=True
        )
        out = [
            torch.zeros_like(v) if p is None else p for p, v in zip(products, vectors)
        ]
        if penalty_grads is not None:
            extra = _products(penalty_grads, params, vectors)
            out = [o + e for o, e in zip(out, extra)]
        return out

    return ggnvp


def _products(grads, params, vectors) -> list[torch.Tensor]:
    present = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    products = [torch.zeros_like(v) for v in vectors]
    if present:
        found = torch.autograd.grad(
            [grads[i] for i in present],
            [params[i] for i in present],
            grad_outputs=[vectors[i] for i in present],
            retain_graph=True,
            allow_unused=True,
        )
        for i, p in zip(present, found):
            if p is not None:
                products[i] = p
    return products


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
