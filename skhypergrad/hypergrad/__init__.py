"""The hypergradient engine: pure PyTorch, usable without scikit-learn or skorch.

Examples
--------
>>> from skhypergrad.hypergrad import CG, Neumann, hypergradient
"""

from ._hvp import inner_gradient, make_ggnvp, make_hvp, mixed_vjp, top_eigenvalue
from ._hypergradient import HypergradInfo, InnerParts, hypergradient
from ._linear_solve import SolveInfo, cg, exact, identity, neumann
from ._outer import OuterOptimizer, OuterState
from ._schedule import CosineSchedule, TailAverage
from ._solvers import CG, SOLVERS, Exact, Identity, Neumann, get_solver, solver_name
from ._unroll import (
    UnrollInfo,
    adam_update,
    optimizer_update,
    sgd_update,
    unrolled_hypergradient,
)

__all__ = [
    "CG",
    "CosineSchedule",
    "SOLVERS",
    "Exact",
    "HypergradInfo",
    "Identity",
    "InnerParts",
    "Neumann",
    "OuterOptimizer",
    "OuterState",
    "SolveInfo",
    "TailAverage",
    "UnrollInfo",
    "adam_update",
    "cg",
    "exact",
    "get_solver",
    "hypergradient",
    "identity",
    "inner_gradient",
    "make_ggnvp",
    "make_hvp",
    "mixed_vjp",
    "neumann",
    "optimizer_update",
    "sgd_update",
    "solver_name",
    "top_eigenvalue",
    "unrolled_hypergradient",
]
