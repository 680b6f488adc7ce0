"""The implicit-function-theorem hypergradient."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._typing import LossFn, TensorList
from ..exceptions import InvalidSolverError, SolverDivergedError
from ._hvp import inner_gradient, make_ggnvp, make_hvp, mixed_vjp
from ._linear_solve import SolveInfo
from ._solvers import SolverLike, _solve, get_solver


class InnerParts(NamedTuple):
    """The training loss in parts, as the Gauss-Newton curvature needs it.

    ``inner_loss`` may return this instead of a scalar; the training loss is
    then ``data_loss + penalty``.

    Attributes
    ----------
    outputs : torch.Tensor
        The model's outputs on the training batch.
    data_loss : torch.Tensor
        Scalar loss computed from ``outputs``.
    penalty : torch.Tensor or None
        Scalar term that does not go through ``outputs`` (weight decay).
    """

    outputs: torch.Tensor
    data_loss: torch.Tensor
    penalty: torch.Tensor | None = None

    def total(self) -> torch.Tensor:
        """``data_loss + penalty``."""
        return self.data_loss if self.penalty is None else self.data_loss + self.penalty


class HypergradInfo(NamedTuple):
    """Diagnostics of one hypergradient evaluation.

    Attributes
    ----------
    solve : SolveInfo
        What the linear solver did.
    alpha : float or None
        Step used by ``Neumann`` and ``Identity``; None for other solvers,
        and when a custom solver does not report one.
    outer_loss : float
        Value of the outer (validation) loss.
    inner_grad_norm : float
        ``||dL_T/dw||``: how far the weights are from a stationary point.
    ihvp : list of torch.Tensor
        The approximate ``H^{-1} dL_V/dw`` (a warm start ``x0`` for the next
        call with ``CG``).
    """

    solve: SolveInfo
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
    solver: SolverLike = "cg",
    x0: TensorList | None = None,
    return_info: bool = False,
) -> list[torch.Tensor] | tuple[list[torch.Tensor], HypergradInfo]:
    """Gradient of the outer loss at the inner optimum with respect to ``hparams``.

    Uses ``dL_V/dlambda = dL_V/dlambda|_direct - (dL_V/dw) H^{-1} d2L_T/dw dlambda``
    (implicit function theorem), assuming ``params`` are at a stationary
    point of ``inner_loss``. Never forms ``H`` except with the ``"exact"``
    solver.

    Parameters
    ----------
    inner_loss : callable
        ``inner_loss(params, hparams) -> scalar tensor``: the training
        objective, or an :class:`InnerParts` (outputs, data loss, penalty),
        which a solver with ``curvature="gauss-newton"`` needs. Called once.
    outer_loss : callable
        ``outer_loss(params, hparams) -> scalar tensor``: the validation
        objective. Called once.
    params : list of torch.Tensor
        Inner variables (network weights), ``requires_grad=True``.
    hparams : list of torch.Tensor
        Hyperparameters, ``requires_grad=True``.
    solver : {"cg", "neumann", "exact", "identity"}, solver object or \
            callable, default="cg"
        How ``H^{-1} dL_V/dw`` is approximated. A name gives that solver with
        its default options (see :data:`SOLVERS`); a solver object sets them,
        e.g. ``CG(max_iter=20, damping=1e-3)`` or ``Neumann(alpha=0.1)``; a
        callable ``solver(hvp, rhs) -> (solution, info)`` is used as is
        (``info`` may be None).
    x0 : list of torch.Tensor, optional
        Warm start, passed to ``CG`` objects and to callables with an ``x0``
        parameter; usually ``info.ihvp`` of the previous call.
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
    InvalidSolverError
        If ``solver`` or one of its options is not valid, or a custom solver
        returns something else than ``(solution, info)``.

    See Also
    --------
    get_solver : How ``solver`` is interpreted.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import Exact, hypergradient
    >>> w = torch.tensor([1.0], requires_grad=True)
    >>> lam = torch.tensor([0.5], requires_grad=True)
    >>> inner = lambda p, h: ((p[0] - 2.0) ** 2).sum() + (h[0] * p[0] ** 2).sum()
    >>> outer = lambda p, h: ((p[0] - 1.0) ** 2).sum()
    >>> with torch.no_grad():
    ...     _ = w.copy_(2.0 / (1.0 + lam))   # the inner optimum w*(lam)
    >>> hypergradient(inner, outer, [w], [lam], solver="exact")[0]
    tensor([-0.5926])
    >>> hypergradient(inner, outer, [w], [lam], solver=Exact(damping=1.0))[0]
    tensor([-0.4444])
    """
    solver = get_solver(solver)
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
    inner = inner_loss(params, hparams)
    parts = inner if isinstance(inner, InnerParts) else None
    grads = inner_gradient(inner if parts is None else parts.total(), params)
    operator = _curvature(solver, parts, grads, params)
    ihvp, solve_info = _solve(solver, operator, outer_w, x0)
    mixed = mixed_vjp(grads, hparams, ihvp)
    result = [(-m if d is None else d - m).detach() for d, m in zip(outer_h, mixed)]
    norm = math.sqrt(sum(float((r.double() ** 2).sum()) for r in result))
    if not math.isfinite(norm):
        raise SolverDivergedError(
            f"The hypergradient is not finite (norm {norm}) with solver={solver!r}. "
            "Check the losses for NaN, add damping (e.g. CG(damping=1e-2)), or "
            "lower alpha."
        )
    if not return_info:
        return result
    grad_norm = math.sqrt(sum(float((g.detach() ** 2).sum()) for g in grads))
    alpha = getattr(solve_info, "alpha", None)
    return result, HypergradInfo(solve_info, alpha, outer_value, grad_norm, ihvp)


def _curvature(solver, parts, grads, params):
    """The product the solver inverts: Hessian, or generalised Gauss-Newton."""
    if getattr(solver, "curvature", "hessian") != "gauss-newton":
        return make_hvp(grads, params)
    if parts is None or not isinstance(parts.outputs, torch.Tensor):
        raise InvalidSolverError(
            f"solver={solver!r} uses the Gauss-Newton curvature, which needs the "
            "training loss in parts: make inner_loss return InnerParts(outputs, "
            "data_loss, penalty) with the model's output tensor, or use "
            "curvature='hessian' (in HypergradSearchCV, a module whose forward "
            "returns a tuple needs solver='cg')."
        )
    return make_ggnvp(parts.outputs, parts.data_loss, params, parts.penalty)
