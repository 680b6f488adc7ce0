"""Shared machinery of the solver objects: options, repr, checks, damping.

Kept apart from :mod:`._solvers` so that the classes there read as their
options and their call only.
"""

from __future__ import annotations

import math
import numbers

import torch

from .._typing import HVP, TensorList
from ..exceptions import InvalidSolverError, SolverDivergedError
from ._hvp import top_eigenvalue
from ._options import Options
from ._options import check_int as _check_int
from ._options import check_non_negative as _check_non_negative
from ._options import invalid as _invalid
from ._options import is_positive as _is_positive

CURVATURES = ("hessian", "gauss-newton")

# Shared numpydoc entries, written once and filled into the class docstrings.
_SHARED_DOCS = {
    "{damping}": """damping : float, default=0.0
        Multiple of the identity added to ``H``: the solver sees
        ``v -> H v + damping * v``, which makes an indefinite ``H`` better
        posed.""",
    "{curvature}": """curvature : {"hessian", "gauss-newton"}, default="hessian"
        Which curvature ``H`` stands for. ``"hessian"``: the Hessian of the
        training loss. ``"gauss-newton"``: the generalised Gauss-Newton matrix
        ``J^T H_out J`` plus the Hessian of the penalty (Schraudolph 2002),
        positive semi-definite, so CG converges instead of stopping at
        negative curvature; the training loss must then be given as
        :class:`InnerParts`.""",
    "{alpha}": """alpha : float or "auto", default="auto"
        Step ``alpha`` standing in for ``1 / lambda_max``. ``"auto"`` uses
        ``1 / |lambda_max|``, the top eigenvalue of ``H + damping I``
        estimated by power iteration.""",
    "{power_iter}": """power_iter : int, default=10
        Hessian-vector products spent estimating ``lambda_max`` when
        ``alpha="auto"``.""",
    "{random_state}": """random_state : int, torch.Generator or None, default=0
        Start vector of the power iteration. An int seeds a new CPU
        ``torch.Generator`` at every call, so each call draws the same start
        on every device; a generator is drawn from (and advanced); None uses
        torch's global random state.""",
    "{call}": """Notes
    -----
    Called as ``solver(hvp, rhs, *, x0=None) -> (solution, info)``, with
    ``hvp`` a map from a list of tensors ``v`` to ``H v``, ``rhs`` a list of
    tensors, and ``info`` a :class:`SolveInfo`. Options are stored as given
    and checked at each call (and by :func:`get_solver`), raising
    :class:`~skhypergrad.exceptions.InvalidSolverError` when invalid.""",
}


def _fill_doc(cls: type) -> type:
    doc = cls.__doc__
    for key, text in _SHARED_DOCS.items():
        doc = doc.replace(key, text)
    cls.__doc__ = doc
    return cls


class _Solver(Options):
    """Options kept exactly as given; repr, equality and get/set_params.

    Subclasses take keyword-only options in ``__init__``, store each under its
    own name, and implement ``_validate_options`` and ``__call__``.
    """

    _error = InvalidSolverError


def _damped(hvp: HVP, damping: float) -> HVP:
    if not damping:
        return hvp

    def damped_hvp(vectors: TensorList) -> list[torch.Tensor]:
        # (H + damping I) v = H v + damping v
        return [h + damping * v for h, v in zip(hvp(vectors), vectors)]

    return damped_hvp


def _resolve_alpha(solver: _Solver, hvp: HVP, like: TensorList) -> float:
    """Return the numeric step: ``alpha`` itself, or ``1 / |lambda_max|``."""
    if not isinstance(solver.alpha, str):
        return float(solver.alpha)
    generator = solver.random_state
    if not (generator is None or isinstance(generator, torch.Generator)):
        generator = torch.Generator().manual_seed(int(generator))
    top = top_eigenvalue(hvp, like, n_iter=solver.power_iter, generator=generator)
    if not math.isfinite(top):
        raise SolverDivergedError(
            f"Estimating the top Hessian eigenvalue gave {top}: the Hessian is not "
            f"finite. Check the training loss, or pass a numeric alpha, e.g. "
            f"{type(solver).__name__}(alpha=0.1)."
        )
    # |lambda| bounds every eigenvalue of a symmetric H, so alpha * eig < 2.
    return 1.0 / max(abs(top), 1e-12)


# ----------------------------------------------------------------- validation
def _check_choice(solver: _Solver, name: str, choices: tuple[str, ...]) -> None:
    if getattr(solver, name) not in choices:
        raise _invalid(solver, name, f"one of {choices}")


def _check_curvature(solver: _Solver) -> None:
    _check_choice(solver, "curvature", CURVATURES)


def _check_bool(solver: _Solver, name: str) -> None:
    if not isinstance(getattr(solver, name), bool):
        raise _invalid(solver, name, "True or False")


def _check_step_options(solver: _Solver) -> None:
    _check_curvature(solver)
    alpha = solver.alpha
    if not (alpha == "auto" if isinstance(alpha, str) else _is_positive(alpha)):
        raise _invalid(solver, "alpha", "'auto' or a positive number")
    _check_non_negative(solver, "damping")
    _check_int(solver, "power_iter", low=1)
    state = solver.random_state
    is_seed = isinstance(state, numbers.Integral) and not isinstance(state, bool)
    if not (state is None or is_seed or isinstance(state, torch.Generator)):
        raise _invalid(solver, "random_state", "None, an int or a torch.Generator")
