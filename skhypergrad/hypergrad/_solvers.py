"""Linear solvers as values: objects holding their options, and their registry.

A solver is anything called as ``solver(hvp, rhs) -> (solution, info)``:
an instance of :class:`CG`, :class:`Neumann`, :class:`Identity` or
:class:`Exact`, or a user's own callable. Strings name the defaults through
:data:`SOLVERS`, so ``"cg"`` and ``CG()`` are the same solver.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import torch

from .._typing import HVP, TensorList
from ..exceptions import InvalidSolverError
from . import _linear_solve
from ._linear_solve import SolveInfo
from ._solver_base import (
    _check_bool,
    _check_choice,
    _check_curvature,
    _check_int,
    _check_non_negative,
    _check_step_options,
    _damped,
    _fill_doc,
    _resolve_alpha,
    _Solver,
)

SolverLike = str | Callable[..., tuple[list[torch.Tensor], SolveInfo | None]]


@_fill_doc
class CG(_Solver):
    """Conjugate gradient on ``H + damping I``, truncated at ``max_iter``.

    Parameters
    ----------
    max_iter : int, default=10
        Maximum number of iterations (Hessian-vector products).
    tol : float, default=1e-10
        Stop when ``||H q - rhs|| <= tol * ||rhs||``.
    {damping}
    {curvature}
    negative_curvature : {"stop", "raise"}, default="stop"
        What to do when ``d^T H d <= 0`` along a search direction (usual for
        networks, whose Hessian is indefinite): stop and return the iterate
        so far (truncated CG, as in Newton-CG), or raise
        :class:`~skhypergrad.exceptions.SolverDivergedError`.
    warn : bool, default=False
        Emit :class:`~skhypergrad.exceptions.SolverConvergenceWarning` when
        ``max_iter`` is reached before ``tol``.
    warm_start : bool, default=False
        Tell the search to start each solve from the solution of the same
        split's previous hyper-step (its ``x0``) instead of zero. The solver
        itself keeps no state: a direct call uses the ``x0`` it is given.

    See Also
    --------
    cg : The function this solver calls.
    Neumann : Truncated Neumann series; no positive-definiteness needed.

    {call}
    ``x0`` is a warm start, e.g. the ``ihvp`` of the previous call.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import CG
    >>> CG(max_iter=5, damping=1e-3)
    CG(max_iter=5, damping=0.001)
    >>> diagonal = torch.tensor([2.0, 4.0], dtype=torch.float64)
    >>> hvp = lambda v: [diagonal * v[0]]  # H = diag(2, 4)
    >>> rhs = [torch.tensor([1.0, 4.0], dtype=torch.float64)]
    >>> solution, info = CG()(hvp, rhs)
    >>> solution[0], info.converged
    (tensor([0.5000, 1.0000], dtype=torch.float64), True)
    """

    def __init__(
        self,
        *,
        max_iter: int = 10,
        tol: float = 1e-10,
        damping: float = 0.0,
        negative_curvature: str = "stop",
        warn: bool = False,
        curvature: str = "hessian",
        warm_start: bool = False,
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.damping = damping
        self.negative_curvature = negative_curvature
        self.warn = warn
        self.curvature = curvature
        self.warm_start = warm_start

    def _validate_options(self) -> None:
        _check_int(self, "max_iter", low=1)
        _check_non_negative(self, "tol")
        _check_non_negative(self, "damping")
        _check_choice(self, "negative_curvature", ("stop", "raise"))
        _check_bool(self, "warn")
        _check_bool(self, "warm_start")
        _check_curvature(self)

    def __call__(
        self, hvp: HVP, rhs: TensorList, *, x0: TensorList | None = None
    ) -> tuple[list[torch.Tensor], SolveInfo]:
        self._validate_options()
        return _linear_solve.cg(
            _damped(hvp, self.damping),
            rhs,
            max_iter=self.max_iter,
            tol=self.tol,
            x0=x0,
            warn=self.warn,
            negative_curvature=self.negative_curvature,
        )


@_fill_doc
class Neumann(_Solver):
    """Truncated Neumann series ``alpha * sum_k (I - alpha H)^k rhs``.

    Parameters
    ----------
    max_iter : int, default=20
        Number of series terms after the first one.
    {alpha}
    {damping}
    {curvature}
    {power_iter}
    {random_state}

    See Also
    --------
    neumann : The function this solver calls.
    Identity : The series with zero terms after the first.

    {call}
    ``x0`` is ignored.

    The series converges when ``0 < alpha * eig(H) < 2`` (Lorraine et al.,
    2020, Algorithm 3); ``alpha="auto"`` keeps every ``|alpha * eig| <= 1``.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import Neumann
    >>> diagonal = torch.tensor([2.0, 4.0], dtype=torch.float64)
    >>> hvp = lambda v: [diagonal * v[0]]  # H = diag(2, 4)
    >>> rhs = [torch.tensor([1.0, 4.0], dtype=torch.float64)]
    >>> solution, info = Neumann(max_iter=50, alpha=0.25)(hvp, rhs)
    >>> solution[0]
    tensor([0.5000, 1.0000], dtype=torch.float64)
    """

    def __init__(
        self,
        *,
        max_iter: int = 20,
        alpha: float | str = "auto",
        damping: float = 0.0,
        power_iter: int = 10,
        random_state: int | torch.Generator | None = 0,
        curvature: str = "hessian",
    ):
        self.max_iter = max_iter
        self.alpha = alpha
        self.damping = damping
        self.power_iter = power_iter
        self.random_state = random_state
        self.curvature = curvature

    def _validate_options(self) -> None:
        _check_int(self, "max_iter", low=0)
        _check_step_options(self)

    def __call__(
        self, hvp: HVP, rhs: TensorList, *, x0: TensorList | None = None
    ) -> tuple[list[torch.Tensor], SolveInfo]:
        self._validate_options()
        hvp = _damped(hvp, self.damping)
        alpha = _resolve_alpha(self, hvp, rhs)
        return _linear_solve.neumann(hvp, rhs, max_iter=self.max_iter, alpha=alpha)


@_fill_doc
class Identity(_Solver):
    """Approximate ``H^{-1}`` by ``alpha * I`` (a Neumann series with no terms).

    Parameters
    ----------
    {alpha}
    {damping}
    {curvature}
    {power_iter}
    {random_state}

    See Also
    --------
    identity : The function this solver calls.
    Neumann : The same series with more terms.

    {call}
    ``x0`` is ignored; with a numeric ``alpha``, ``hvp`` is never called.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import Identity
    >>> solution, info = Identity(alpha=0.5)(None, [torch.tensor([1.0, 4.0])])
    >>> solution[0], info.n_iter
    (tensor([0.5000, 2.0000]), 0)
    """

    def __init__(
        self,
        *,
        alpha: float | str = "auto",
        damping: float = 0.0,
        power_iter: int = 10,
        random_state: int | torch.Generator | None = 0,
        curvature: str = "hessian",
    ):
        self.alpha = alpha
        self.damping = damping
        self.power_iter = power_iter
        self.random_state = random_state
        self.curvature = curvature

    def _validate_options(self) -> None:
        _check_step_options(self)

    def __call__(
        self, hvp: HVP, rhs: TensorList, *, x0: TensorList | None = None
    ) -> tuple[list[torch.Tensor], SolveInfo]:
        self._validate_options()
        alpha = _resolve_alpha(self, _damped(hvp, self.damping), rhs)
        return _linear_solve.identity(hvp, rhs, alpha=alpha)


@_fill_doc
class Exact(_Solver):
    """Dense solve of ``(H + damping I) q = rhs``, for tiny problems and tests.

    Parameters
    ----------
    {damping}
    {curvature}

    See Also
    --------
    exact : The function this solver calls.
    CG : The same solution for positive-definite ``H`` without forming it.

    {call}
    ``x0`` is ignored. Builds ``H`` with one Hessian-vector product per
    parameter and ``O(P^2)`` memory.

    Examples
    --------
    >>> import torch
    >>> from skhypergrad.hypergrad import Exact
    >>> diagonal = torch.tensor([2.0, 4.0], dtype=torch.float64)
    >>> hvp = lambda v: [diagonal * v[0]]  # H = diag(2, 4)
    >>> rhs = [torch.tensor([1.0, 4.0], dtype=torch.float64)]
    >>> Exact(damping=2.0)(hvp, rhs)[0][0]
    tensor([0.2500, 0.6667], dtype=torch.float64)
    """

    def __init__(self, *, damping: float = 0.0, curvature: str = "hessian"):
        self.damping = damping
        self.curvature = curvature

    def _validate_options(self) -> None:
        _check_non_negative(self, "damping")
        _check_curvature(self)

    def __call__(
        self, hvp: HVP, rhs: TensorList, *, x0: TensorList | None = None
    ) -> tuple[list[torch.Tensor], SolveInfo]:
        self._validate_options()
        return _linear_solve.exact(_damped(hvp, self.damping), rhs)


# Name -> a solver with set options (a class gives its defaults).
SOLVERS: dict[str, Callable[[], _Solver]] = {
    "cg": CG,
    "neumann": Neumann,
    "identity": Identity,
    "exact": Exact,
    # CG on the positive semi-definite Gauss-Newton curvature: converges where
    # CG on the Hessian stops at negative curvature after a few steps, and gets
    # the sign of a dropout rate's hypergradient right (docs/benchmarks.md).
    "gauss-newton": functools.partial(
        CG, max_iter=5, damping=1e-3, curvature="gauss-newton"
    ),
}


def get_solver(solver: SolverLike) -> Callable:
    """Turn a solver name, object or callable into a solver.

    Parameters
    ----------
    solver : {"cg", "neumann", "identity", "exact", "gauss-newton"}, solver \
object or callable
        A name in :data:`SOLVERS` gives that solver with its default options
        (``"gauss-newton"``: ``CG(max_iter=5, damping=1e-3,
        curvature="gauss-newton")``);
        a solver object (e.g. ``CG(max_iter=20)``, options checked here) or
        any callable ``solver(hvp, rhs) -> (solution, info)`` is returned as
        is.

    Returns
    -------
    solver : callable
        Called as ``solver(hvp, rhs) -> (solution, info)``.

    Raises
    ------
    InvalidSolverError
        If ``solver`` is an unknown name, a class, not callable, or a solver
        object with an invalid option.

    Examples
    --------
    >>> from skhypergrad.hypergrad import CG, get_solver
    >>> get_solver("neumann")
    Neumann()
    >>> get_solver(CG(max_iter=5))
    CG(max_iter=5)
    """
    if isinstance(solver, str):
        if solver not in SOLVERS:
            raise InvalidSolverError(
                f"Unknown solver {solver!r}. Use one of {sorted(SOLVERS)}, a solver "
                "object such as CG(max_iter=20), or a callable "
                "solver(hvp, rhs) -> (solution, info)."
            )
        return SOLVERS[solver]()
    if isinstance(solver, type):
        raise InvalidSolverError(
            f"solver must be a solver object, not the class {solver.__name__}: pass "
            f"an instance such as {solver.__name__}()."
        )
    if isinstance(solver, _Solver):
        solver._validate_options()
        return solver
    if callable(solver):
        return solver
    raise InvalidSolverError(
        f"solver must be one of {sorted(SOLVERS)}, a solver object such as "
        "CG(max_iter=20), or a callable solver(hvp, rhs) -> (solution, info); got "
        f"{solver!r} ({type(solver).__name__})."
    )


def solver_name(solver: SolverLike) -> str:
    """Return a short name of a solver, for logs and results.

    Parameters
    ----------
    solver : str, solver object or callable
        Anything :func:`get_solver` accepts.

    Returns
    -------
    name : str
        The name in :data:`SOLVERS` for a string or one of its classes,
        otherwise the function's or the class's name.

    Examples
    --------
    >>> from skhypergrad.hypergrad import CG, cg, solver_name
    >>> solver_name(CG(max_iter=5)), solver_name(cg), solver_name("exact")
    ('cg', 'cg', 'exact')
    """
    if isinstance(solver, str):
        return solver
    for name, cls in SOLVERS.items():
        if isinstance(cls, type) and type(solver) is cls:
            return name
    if isinstance(solver, functools.partial):
        return solver_name(solver.func)
    return getattr(solver, "__name__", type(solver).__name__)


def _solve(
    solver: Callable, hvp: HVP, rhs: TensorList, x0: TensorList | None = None
) -> tuple[list[torch.Tensor], SolveInfo]:
    """Call a solver from :func:`get_solver` and check what it returns."""
    kwargs = {"x0": x0} if x0 is not None and _accepts_x0(solver) else {}
    result = solver(hvp, rhs, **kwargs)
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise InvalidSolverError(
            f"The solver {solver_name(solver)!r} must return (solution, info), got "
            f"{type(result).__name__}. Return info=None if there is nothing to report."
        )
    solution, info = list(result[0]), result[1]
    shapes = [tuple(getattr(s, "shape", ())) for s in solution]
    expected = [tuple(r.shape) for r in rhs]
    if shapes != expected or not all(isinstance(s, torch.Tensor) for s in solution):
        raise InvalidSolverError(
            f"The solver {solver_name(solver)!r} returned a solution of shapes "
            f"{shapes}, but it must be a list of tensors shaped like rhs: {expected}."
        )
    if info is None:
        info = SolveInfo("custom", 0, math.nan, True)
    return solution, info


def _accepts_x0(solver: Callable) -> bool:
    if isinstance(solver, CG):
        return True
    try:
        return "x0" in inspect.signature(solver).parameters
    except (TypeError, ValueError):  # Some builtins have no signature.
        return False
