"""The hypergradient engine: pure PyTorch, usable without scikit-learn or skorch.

Examples
--------
>>> from skhypergrad.hypergrad import hypergradient, cg, neumann
"""

from ._hvp import inner_gradient, make_hvp, mixed_vjp, top_eigenvalue
from ._hypergradient import METHODS, HypergradInfo, hypergradient
from ._linear_solve import SolveInfo, cg, exact, identity, neumann
from ._outer import AdamState, adam_init, adam_step, sgd_step

__all__ = [
    "METHODS",
    "AdamState",
    "HypergradInfo",
    "SolveInfo",
    "adam_init",
    "adam_step",
    "cg",
    "exact",
    "hypergradient",
    "identity",
    "inner_gradient",
    "make_hvp",
    "mixed_vjp",
    "neumann",
    "sgd_step",
    "top_eigenvalue",
]
