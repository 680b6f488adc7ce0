"""The hypergradient engine: pure PyTorch, usable without scikit-learn or skorch.

Examples
--------
>>> from skhypergrad.hypergrad import CG, Neumann, hypergradient
"""

from ._hvp import inner_gradient, make_hvp, mixed_vjp, top_eigenvalue
from ._hypergradient import HypergradInfo, hypergradient
from ._linear_solve import SolveInfo, cg, exact, identity, neumann
from ._outer import AdamState, adam_init, adam_step, sgd_step
from ._solvers import CG, SOLVERS, Exact, Identity, Neumann, get_solver, solver_name

__all__ = [
    "CG",
    "SOLVERS",
    "AdamState",
    "Exact",
    "HypergradInfo",
    "Identity",
    "Neumann",
    "SolveInfo",
    "adam_init",
    "adam_step",
    "cg",
    "exact",
    "get_solver",
    "hypergradient",
    "identity",
    "inner_gradient",
    "make_hvp",
    "mixed_vjp",
    "neumann",
    "sgd_step",
    "solver_name",
    "top_eigenvalue",
]
