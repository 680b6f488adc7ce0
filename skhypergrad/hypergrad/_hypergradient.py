"""The implicit-function-theorem hypergradient."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._typing import LossFn, TensorList
from ..exceptions import SolverDivergedError
from . import _linear_solve
from ._hvp import inner_gradient, make_hvp, mixed_vjp, top_eigenvalue

METHODS = ("exact", "cg", "neumann", "identity")


class HypergradInfo(NamedTuple):
    """Diagnostics of one hypergradient evaluation.

    Attributes
    ----------
    solve : SolveInfo
        What the linear solver did.
    alpha : float or None
        Neumann step used (None for ``cg`` and ``exact``).
    outer_loss : float
        Value of the outer (validation) loss.
    inner_grad_norm : float
        ``||dL_T/dw||``: how far the weights are from a stationary point.
    ihvp : list of torch.Tensor
        The approximate ``H^{-1} dL_V/dw`` (a warm start for the next ``cg``).
    """

    solve: _linear_solve.SolveInfo
    alpha: float | None
    outer_loss: float
    inner_grad_norm: float
    ihvp: list


def hypergradient(
    inner_loss: LossFn,
    outer_loss: LossFn,
    params: TensorList,
    hparams: TensorList,
    *,
    method: str = "neumann",
    max_iter: int = 20,
    alpha: float | str = "auto",
    damping: float = 0.0,
    tol: float = 1e-10,
    power_iter: int = 10,
    x0: TensorList | None = None,
    generator: torch.Generator | None = None,
    solver_options: dict | None = None,
    return_info: bool = False,
):
    """Gradient of the outer loss at the inner optimum with respect to ``hparams``.

    Uses ``dL_V/dlambda = dL_V/dlambda|_direct - (dL_V/dw) H^{-1} d2L_T/dw dlambda``
    (implicit function theorem), assuming ``params`` are at a stationary
    point of ``inner_loss``. Never forms ``H`` except for ``method="exact"``.

    Parameters
    ----------
    inner_loss : callable
        ``inner_loss(params, hparams) -> scalar tensor``: the training
        objective. Called once.
    outer_loss : callable
        ``outer_loss(params, hparams) -> scalar tensor``: the validation
        objective. Called once.
    params : list of torch.Tensor
        Inner variables (network weights), ``requires_grad=True``.
    hparams : list of torch.Tensor
        Hyperparameters, ``requires_grad=True``.
    method : {"neumann", "cg", "exact", "identity"}, default="neumann"
        How ``H^{-1} dL_V/dw`` is approximated: truncated Neumann series,
        conjugate gradient on ``H + damping I``, a dense solve, or
        ``alpha * I`` (zero Neumann terms).
    max_iter : int, default=20
        Neumann terms or CG iterations.
    alpha : float or "auto", default="auto"
        Neumann / identity step. ``"auto"`` uses ``1 / lambda_max`` with the
        top eigenvalue of ``H + damping I`` estimated by power iteration.
    damping : float, default=0.0
        Multiple of the identity added to ``H``.
    tol : float, default=1e-10
        Relative residual at which ``cg`` stops.
    power_iter : int, default=10
        Hessian-vector products spent estimating ``lambda_max``.
    x0 : list of torch.Tensor, optional
        Warm start for ``cg``.
    generator : torch.Generator, optional
        Randomness of the power iteration.
    solver_options : dict, optional
        Extra keyword arguments of the solver, e.g.
        ``{"negative_curvature": "stop", "warn": False}`` for ``cg``.
    return_info : bool, default=False
        Also return a :class:`HypergradInfo`.

    Returns
    -------
    hypergrad : list of torch.Tensor
        Same shapes, dtype and device as ``hparams``; detached.
    info : HypergradInfo
        Only if ``return_info=True``.

    Raises
    ------
    SolverDivergedError
        If the solve or the result is not finite (never returned as a number).
    ValueError
        If ``method`` or ``alpha`` is not one of the accepted values.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import hypergradient
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> lam = torch.tensor([0.5], requires_grad=True)
    >>> inner = lambda p, h: ((p[0] - 2.0) ** 2).sum() + (h[0] * p[0] ** 2).sum()
    >>> outer = lambda p, h: ((p[0] - 1.0) ** 2).sum()
    >>> with torch.no_grad():
    ...     _ = w.copy_(2.0 / (1.0 + lam))   # the inner optimum w*(lam)
    >>> hypergradient(inner, outer, [w], [lam], method="exact")[0]
    tensor([-0.5926])
    """
    if method not in METHODS:
        raise ValueError(
            f"method must be one of {METHODS}, got {method!r}. Use 'cg' or "
            "'neumann' for networks and 'exact' only for tiny problems."
        )
    if not (alpha == "auto" or (isinstance(alpha, int | float) and alpha > 0)):
        raise ValueError(f"alpha must be 'auto' or a positive number, got {alpha!r}.")
    params, hparams = list(params), list(hparams)
    outer = outer_loss(params, hparams)
    outer_value = float(outer.detach())
    if not math.isfinite(outer_value):
        # Its gradient can still be finite (e.g. loss + nan), hiding the problem.
        raise SolverDivergedError(
            f"The outer loss is not finite (got {outer_value}), so it has no "
            "hypergradient. Check the validation data and predictions for NaN."
        )
    outer_w = torch.autograd.grad(outer, params, retain_graph=True, allow_unused=True)
    outer_w = [torch.zeros_like(p) if g is None else g for g, p in zip(outer_w, params)]
    outer_h = torch.autograd.grad(outer, hparams, allow_unused=True)
    grads = inner_gradient(inner_loss(params, hparams), params)
    hvp = make_hvp(grads, params, damping)
    step = None
    if method in ("neumann", "identity"):
        step = (
            _auto_alpha(hvp, params, power_iter, generator)
            if alpha == "auto"
            else alpha
        )
    options = dict(solver_options or {})
    ihvp, solve_info = _solve(method, hvp, outer_w, max_iter, step, tol, x0, options)
    mixed = mixed_vjp(grads, hparams, ihvp)
    result = [(-m if d is None else d - m).detach() for d, m in zip(outer_h, mixed)]
    norm = math.sqrt(sum(float((r.double() ** 2).sum()) for r in result))
    if not math.isfinite(norm):
        raise SolverDivergedError(
            f"The hypergradient is not finite (norm {norm}) with method={method!r}. "
            "Check the losses for NaN, add damping, or lower alpha."
        )
    if not return_info:
        return result
    grad_norm = math.sqrt(sum(float((g.detach() ** 2).sum()) for g in grads))
    info = HypergradInfo(solve_info, step, outer_value, grad_norm, ihvp)
    return result, info


def _auto_alpha(hvp, params, power_iter, generator) -> float:
    top = top_eigenvalue(hvp, params, n_iter=power_iter, generator=generator)
    if not math.isfinite(top):
        raise SolverDivergedError(
            f"Estimating the top Hessian eigenvalue gave {top}: the Hessian is not "
            "finite. Check the training loss, or pass a numeric alpha."
        )
    # |lambda| bounds every eigenvalue of a symmetric H, so alpha * eig < 2.
    return 1.0 / max(abs(top), 1e-12)


def _solve(method, hvp, rhs, max_iter, alpha, tol, x0, options):
    if method == "exact":
        return _linear_solve.exact(hvp, rhs, **options)
    if method == "cg":
        return _linear_solve.cg(hvp, rhs, max_iter=max_iter, tol=tol, x0=x0, **options)
    if method == "identity":
        return _linear_solve.identity(hvp, rhs, alpha=alpha, **options)
    return _linear_solve.neumann(hvp, rhs, max_iter=max_iter, alpha=alpha, **options)
