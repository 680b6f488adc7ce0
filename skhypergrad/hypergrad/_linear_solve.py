"""Approximate solvers for ``H q = rhs`` using only Hessian-vector products.

Every solver is called as ``solver(hvp, rhs, **options) -> (solution, info)``.
The solver objects of :mod:`._solvers` (``CG()``, ``Neumann()``...) hold these
options and call the functions here.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch

from .._typing import HVP, TensorList
from ..exceptions import (
    InvalidSolverError,
    SolverConvergenceWarning,
    SolverDivergedError,
)


class SolveInfo(NamedTuple):
    """What a linear solve did.

    Attributes
    ----------
    method : str
        Name of the solver.
    n_iter : int
        Iterations (Hessian-vector products) run.
    residual : float
        Last residual norm (``cg``, ``exact``) or last term norm (``neumann``).
    converged : bool
        Whether the tolerance was reached (always True for fixed-term methods).
    alpha : float or None, default=None
        Step used by ``neumann`` and ``identity``; None for the other solvers.
    """

    method: str
    n_iter: int
    residual: float
    converged: bool
    alpha: float | None = None


def _dot(a: TensorList, b: TensorList) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _norm(a: TensorList) -> float:
    return math.sqrt(float(_dot(a, a)))


def _diverged(method: str, iteration: int, value: float, advice: str):
    return SolverDivergedError(
        f"The {method!r} solver diverged at iteration {iteration} (norm became "
        f"{value:.3g}). {advice}"
    )


def identity(
    hvp: HVP, rhs: TensorList, *, alpha: float = 1.0
) -> tuple[list[torch.Tensor], SolveInfo]:
    """Approximate ``H^{-1} rhs`` by ``alpha * rhs`` (zero Neumann terms).

    Parameters
    ----------
    hvp : callable
        Unused; kept so that every solver has the same signature.
    rhs : list of torch.Tensor
        Right-hand side.
    alpha : float, default=1.0
        Scale standing in for ``H^{-1}``.

    Returns
    -------
    solution : list of torch.Tensor
        ``alpha * rhs``.
    info : SolveInfo
        Zero iterations.
    """
    solution = [alpha * r.detach() for r in rhs]
    return solution, SolveInfo("identity", 0, 0.0, True, alpha)


def neumann(
    hvp: HVP,
    rhs: TensorList,
    *,
    max_iter: int = 20,
    alpha: float = 1.0,
    growth_limit: float = 1e3,
) -> tuple[list[torch.Tensor], SolveInfo]:
    """Approximate ``H^{-1} rhs`` with a truncated Neumann series.

    Parameters
    ----------
    hvp : callable
        Maps tensors ``v`` to ``H v``.
    rhs : list of torch.Tensor
        Usually the gradient of the outer loss with respect to the parameters.
    max_iter : int, default=20
        Number of series terms after the first one.
    alpha : float, default=1.0
        Step ``alpha``; the series converges when ``0 < alpha * eig(H) < 2``.
    growth_limit : float, default=1e3
        A term whose norm exceeds ``growth_limit`` times the first one's is
        taken as divergence.

    Returns
    -------
    solution : list of torch.Tensor
        Same shapes, dtype and device as ``rhs``.
    info : SolveInfo
        Terms run, the norm of the last term and ``alpha``.

    Raises
    ------
    SolverDivergedError
        If a term becomes non-finite or grows past ``growth_limit``.

    Notes
    -----
    Uses ``H^{-1} = alpha * sum_k (I - alpha H)^k`` (Lorraine et al., 2020,
    Algorithm 3): ``p = v; repeat: v <- v - alpha H v; p <- p + v``.
    """
    term = [r.detach().clone() for r in rhs]
    total = [t.clone() for t in term]
    first = _norm(term)
    last = first
    for k in range(1, max_iter + 1):
        hv = hvp(term)
        term = [t - alpha * h for t, h in zip(term, hv)]
        last = _norm(term)
        if not math.isfinite(last) or last > growth_limit * max(first, 1e-30):
            raise _diverged(
                "neumann",
                k,
                last,
                f"alpha={alpha:.3g} is too large for this Hessian or the Hessian "
                "is indefinite. Lower alpha, add damping, or use the 'cg' solver.",
            )
        total = [p + t for p, t in zip(total, term)]
    info = SolveInfo("neumann", max_iter, last, True, alpha)
    return [alpha * p for p in total], info


def cg(
    hvp: HVP,
    rhs: TensorList,
    *,
    max_iter: int = 20,
    tol: float = 1e-10,
    x0: TensorList | None = None,
    warn: bool = True,
    negative_curvature: str = "raise",
) -> tuple[list[torch.Tensor], SolveInfo]:
    """Solve ``H q = rhs`` by conjugate gradient.

    Parameters
    ----------
    hvp : callable
        Maps tensors ``v`` to ``H v`` (include damping in it); ``H`` must be
        symmetric positive definite for the method to converge.
    rhs : list of torch.Tensor
        Right-hand side.
    max_iter : int, default=20
        Maximum number of iterations (Hessian-vector products).
    tol : float, default=1e-10
        Stop when ``||H q - rhs|| <= tol * ||rhs||``.
    x0 : list of torch.Tensor, optional
        Warm start, e.g. the previous solution.
    warn : bool, default=True
        Emit :class:`SolverConvergenceWarning` when ``max_iter`` is reached.
    negative_curvature : {"raise", "stop"}, default="raise"
        What to do when ``d^T H d <= 0`` (an indefinite ``H``, usual for
        networks): raise, or stop and return the iterate so far (truncated CG,
        as in Newton-CG; a first step uses ``|d^T H d|``).

    Returns
    -------
    solution : list of torch.Tensor
        Same shapes as ``rhs``.
    info : SolveInfo
        Iterations run and final relative residual.

    Raises
    ------
    SolverDivergedError
        If a value becomes non-finite, or the curvature along a search
        direction is not positive and ``negative_curvature="raise"``.
    InvalidSolverError
        If ``negative_curvature`` is not one of the accepted values.
    """
    if negative_curvature not in ("raise", "stop"):
        raise InvalidSolverError(
            f"negative_curvature must be 'raise' or 'stop', got {negative_curvature!r}."
        )
    rhs = [r.detach() for r in rhs]
    rhs_norm = max(_norm(rhs), 1e-300)
    if x0 is None:
        x = [torch.zeros_like(r) for r in rhs]
        res = [r.clone() for r in rhs]
    else:
        x = [t.detach().clone() for t in x0]
        res = [r - h for r, h in zip(rhs, hvp(x))]
    direction = [r.clone() for r in res]
    rr = float(_dot(res, res))
    if not math.isfinite(rr):
        # Otherwise the loop is skipped and NaN inputs come back as a number.
        raise _diverged(
            "cg",
            0,
            rr,
            "The right-hand side or x0 is not finite: check the "
            "outer loss and the warm start for NaN or inf.",
        )
    n_iter = 0
    while math.sqrt(rr) > tol * rhs_norm and n_iter < max_iter:
        n_iter += 1
        hd = hvp(direction)
        curvature = float(_dot(direction, hd))
        if negative_curvature == "stop" and math.isfinite(curvature) and curvature <= 0:
            if n_iter == 1:
                step = rr / max(abs(curvature), 1e-30)
                x = [a + step * d for a, d in zip(x, direction)]
            return x, SolveInfo("cg", n_iter, math.sqrt(rr) / rhs_norm, False)
        if not math.isfinite(curvature) or curvature <= 0:
            raise _diverged(
                "cg",
                n_iter,
                curvature,
                "The Hessian is not positive definite along a search direction "
                "(curvature shown as the norm). Add damping (e.g. CG(damping=1e-2)) "
                "or train the inner problem closer to its optimum.",
            )
        step = rr / curvature
        x = [a + step * d for a, d in zip(x, direction)]
        res = [r - step * h for r, h in zip(res, hd)]
        rr_new = float(_dot(res, res))
        if not math.isfinite(rr_new):
            raise _diverged("cg", n_iter, rr_new, "Add damping or use float64.")
        direction = [r + (rr_new / rr) * d for r, d in zip(res, direction)]
        rr = rr_new
    relative = math.sqrt(rr) / rhs_norm
    converged = relative <= tol
    if not converged and warn:
        warnings.warn(
            f"cg stopped at max_iter={max_iter} with relative residual "
            f"{relative:.2e} > tol={tol:.1e}. Raise max_iter or add damping.",
            SolverConvergenceWarning,
            stacklevel=3,
        )
    return x, SolveInfo("cg", n_iter, relative, converged)


def exact(hvp: HVP, rhs: TensorList) -> tuple[list[torch.Tensor], SolveInfo]:
    """Solve ``H q = rhs`` with a dense matrix built column by column.

    Parameters
    ----------
    hvp : callable
        Maps tensors ``v`` to ``H v``.
    rhs : list of torch.Tensor
        Right-hand side.

    Returns
    -------
    solution : list of torch.Tensor
        Same shapes as ``rhs``.
    info : SolveInfo
        ``n_iter`` is the number of Hessian-vector products (the dimension).

    Notes
    -----
    Costs one Hessian-vector product per parameter and ``O(P^2)`` memory: for
    small problems and tests only.
    """
    shapes = [r.shape for r in rhs]
    sizes = [r.numel() for r in rhs]
    flat_rhs = torch.cat([r.detach().reshape(-1) for r in rhs])
    dim = flat_rhs.numel()
    columns = []
    for i in range(dim):
        unit = torch.zeros_like(flat_rhs)
        unit[i] = 1.0
        columns.append(
            torch.cat([h.reshape(-1) for h in hvp(_split(unit, sizes, shapes))])
        )
    hessian = torch.stack(columns, dim=1)
    hessian = 0.5 * (hessian + hessian.T)
    try:
        solution = torch.linalg.solve(hessian, flat_rhs)
    except torch.linalg.LinAlgError as err:
        raise _diverged(
            "exact", dim, float("nan"), "The Hessian is singular: add damping."
        ) from err
    residual = float(torch.linalg.norm(hessian @ solution - flat_rhs))
    if not math.isfinite(residual):
        raise _diverged("exact", dim, residual, "The Hessian is singular: add damping.")
    return _split(solution, sizes, shapes), SolveInfo("exact", dim, residual, True)


def _split(flat: torch.Tensor, sizes, shapes) -> list[torch.Tensor]:
    return [c.reshape(s) for c, s in zip(torch.split(flat, sizes), shapes)]
