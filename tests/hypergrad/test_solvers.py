"""Solvers as values: the registry, options, repr, pickle and users' own solvers."""

import doctest
import functools
import math
import pickle
import re

import pytest
import torch

from skhypergrad.exceptions import InvalidSolverError
from skhypergrad.hypergrad import (
    CG,
    SOLVERS,
    Exact,
    Identity,
    Neumann,
    _solvers,
    cg,
    get_solver,
    hypergradient,
    solver_name,
)

NAMES = sorted(SOLVERS)
# Solvers with some options changed, and their expected repr.
REPRS = [
    (CG(), "CG()"),
    (CG(max_iter=5, damping=1e-3), "CG(max_iter=5, damping=0.001)"),
    (
        CG(negative_curvature="raise", warn=True),
        "CG(negative_curvature='raise', warn=True)",
    ),
    (Neumann(alpha=0.1, random_state=None), "Neumann(alpha=0.1, random_state=None)"),
    (Identity(power_iter=3), "Identity(power_iter=3)"),
    (Exact(damping=0.5), "Exact(damping=0.5)"),
]
# An invalid option of each kind, and the value the message must show.
INVALID_OPTIONS = [
    (CG, "max_iter", 0),
    (CG, "max_iter", 2.5),
    (CG, "max_iter", True),
    (CG, "tol", -1.0),
    (CG, "damping", math.nan),
    (CG, "damping", "small"),
    (CG, "negative_curvature", "ignore"),
    (CG, "warn", "yes"),
    (CG, "warm_start", 1),
    (Neumann, "max_iter", -1),
    (Neumann, "alpha", 0),
    (Neumann, "alpha", "fast"),
    (Neumann, "power_iter", 0),
    (Neumann, "random_state", "seed"),
    (Identity, "alpha", -1.0),
    (Identity, "damping", math.inf),
    (Exact, "damping", -1.0),
]


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten(flat, like):
    chunks = torch.split(flat, [t.numel() for t in like])
    return [c.reshape(t.shape) for c, t in zip(chunks, like, strict=True)]


def dense_solve(hvp, rhs):
    """A user's own solver: build ``H`` column by column and solve densely."""
    flat_rhs = _flat(rhs)
    columns = [_flat(hvp(_unflatten(unit, rhs))) for unit in torch.eye(len(flat_rhs))]
    hessian = torch.stack(columns, dim=1).to(flat_rhs.dtype)
    return _unflatten(torch.linalg.solve(hessian, flat_rhs), rhs), None


@pytest.mark.parametrize("name", NAMES)
def test_get_solver_string_gives_default_object(name):
    solver = get_solver(name)

    assert type(solver) is type(SOLVERS[name]())
    assert solver == SOLVERS[name]()
    assert get_solver(name) is not solver  # a fresh object each time


# The Gauss-Newton preset needs the loss in parts (see test_gauss_newton.py).
@pytest.mark.parametrize("name", [n for n in NAMES if n != "gauss-newton"])
def test_hypergradient_string_and_default_object_agree(ridge_problem, name):
    problem = ridge_problem(per_feature=True)

    by_name, name_info = hypergradient(*problem.inputs, solver=name, return_info=True)
    by_object, object_info = hypergradient(
        *problem.inputs, solver=SOLVERS[name](), return_info=True
    )

    torch.testing.assert_close(by_name, by_object, rtol=0, atol=0)
    assert name_info.solve == object_info.solve


def test_solver_defaults_are_the_documented_ones():
    assert CG().get_params() == {
        "max_iter": 10,
        "tol": 1e-10,
        "damping": 0.0,
        "negative_curvature": "stop",
        "warn": False,
        "curvature": "hessian",
        "warm_start": False,
    }
    assert Neumann().get_params() == {
        "max_iter": 20,
        "alpha": "auto",
        "damping": 0.0,
        "power_iter": 10,
        "random_state": 0,
        "curvature": "hessian",
    }
    assert Identity().get_params() == {
        "alpha": "auto",
        "damping": 0.0,
        "power_iter": 10,
        "random_state": 0,
        "curvature": "hessian",
    }
    assert Exact().get_params() == {"damping": 0.0, "curvature": "hessian"}


@pytest.mark.parametrize(("solver", "expected"), REPRS, ids=[r for _, r in REPRS])
def test_solver_repr_shows_changed_options_and_evaluates_back(solver, expected):
    assert repr(solver) == expected
    assert eval(repr(solver)) == solver


@pytest.mark.parametrize("solver", [s for s, _ in REPRS], ids=[r for _, r in REPRS])
def test_solver_pickle_round_trip_is_equal(solver):
    restored = pickle.loads(pickle.dumps(solver))

    assert restored == solver
    assert restored is not solver


def test_solver_equality_compares_type_and_options():
    assert CG() == CG()
    assert CG(max_iter=5) == CG(max_iter=5)
    assert CG() != CG(max_iter=5)
    assert Neumann() != Identity()
    assert Exact() != CG()
    assert CG() != "cg"


def test_solver_set_params_updates_and_returns_self():
    solver = CG()

    assert solver.set_params(max_iter=3, damping=0.1) is solver
    assert solver == CG(max_iter=3, damping=0.1)


def test_solver_set_params_unknown_option_raises():
    with pytest.raises(
        InvalidSolverError, match=r"CG has no option 'maxiter'; its options are \["
    ):
        CG().set_params(maxiter=3)


@pytest.mark.parametrize(
    ("cls", "option", "value"),
    INVALID_OPTIONS,
    ids=[f"{c.__name__}-{o}-{v!r}" for c, o, v in INVALID_OPTIONS],
)
def test_solver_invalid_option_raises_when_checked(cls, option, value):
    solver = cls(**{option: value})  # stored as given, checked later
    match = re.escape(f"Invalid option of {cls.__name__}: {option} must be ")
    match += f".*got {re.escape(repr(value))} \\({type(value).__name__}\\)"

    assert getattr(solver, option) is value
    with pytest.raises(InvalidSolverError, match=match):
        get_solver(solver)
    with pytest.raises(InvalidSolverError, match=match):
        solver(lambda v: v, [torch.ones(2)])


def test_get_solver_unknown_string_raises():
    match = (
        r"Unknown solver 'newton'\. Use one of \['cg', 'exact', 'gauss-newton', "
        r"'identity', 'neumann'\]"
    )
    with pytest.raises(InvalidSolverError, match=match):
        get_solver("newton")


@pytest.mark.parametrize("solver", [None, 3, [1, 2]], ids=repr)
def test_get_solver_non_callable_raises(solver):
    match = f"solver must be one of .*got {re.escape(repr(solver))}"
    with pytest.raises(InvalidSolverError, match=match):
        get_solver(solver)


def test_get_solver_class_raises_with_hint():
    with pytest.raises(InvalidSolverError, match=r"not the class CG: .* CG\(\)"):
        get_solver(CG)


def test_get_solver_returns_callables_as_they_are():
    solver = CG(max_iter=3)

    assert get_solver(solver) is solver
    assert get_solver(dense_solve) is dense_solve


@pytest.mark.parametrize("per_feature", [False, True], ids=["scalar", "per_feature"])
def test_hypergradient_user_callable_matches_exact(ridge_problem, per_feature):
    problem = ridge_problem(per_feature=per_feature)

    expected = hypergradient(*problem.inputs, solver=Exact())
    grad, info = hypergradient(*problem.inputs, solver=dense_solve, return_info=True)

    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-12)
    assert info.solve[:2] == ("custom", 0)
    assert math.isnan(info.solve.residual)
    assert info.solve.converged
    assert info.alpha is None


def test_hypergradient_passes_x0_only_to_callables_accepting_it(ridge_problem):
    problem = ridge_problem()
    x0 = [torch.zeros_like(p) for p in problem.params]
    seen = []

    def with_x0(hvp, rhs, x0=None):
        seen.append(x0)
        return dense_solve(hvp, rhs)

    def without_x0(hvp, rhs):
        return dense_solve(hvp, rhs)

    first = hypergradient(*problem.inputs, solver=with_x0, x0=x0)
    second = hypergradient(*problem.inputs, solver=without_x0, x0=x0)

    assert seen == [x0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_hypergradient_partial_of_cg_function_is_a_solver(ridge_problem):
    problem = ridge_problem()
    solver = functools.partial(cg, max_iter=20, tol=1e-12)

    grad, info = hypergradient(*problem.inputs, solver=solver, return_info=True)

    expected = hypergradient(*problem.inputs, solver=CG(max_iter=20, tol=1e-12))
    torch.testing.assert_close(grad, expected, rtol=0, atol=0)
    assert info.solve.method == "cg"


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ([torch.zeros(1)], r"must return \(solution, info\), got list"),
        (([torch.zeros(7)], None), r"solution of shapes \[\(7,\)\].*rhs: \[\(5,\)\]"),
        (([], None), r"solution of shapes \[\].*rhs: \[\(5,\)\]"),
    ],
    ids=["no-info", "wrong-shape", "empty"],
)
def test_hypergradient_user_callable_bad_return_raises(ridge_problem, result, match):
    def bad_solver(hvp, rhs):
        return result

    with pytest.raises(InvalidSolverError, match="'bad_solver' .*" + match):
        hypergradient(*ridge_problem().inputs, solver=bad_solver)


@pytest.mark.parametrize(
    ("solver", "expected"),
    [
        ("neumann", "neumann"),
        (CG(max_iter=5), "cg"),
        (Identity(), "identity"),
        (Exact(), "exact"),
        (cg, "cg"),
        (functools.partial(cg, max_iter=5), "cg"),
        (dense_solve, "dense_solve"),
    ],
    ids=repr,
)
def test_solver_name(solver, expected):
    assert solver_name(solver) == expected


def test_solvers_docstring_examples_run():
    result = doctest.testmod(_solvers, optionflags=doctest.ELLIPSIS)

    assert result.attempted > 0
    assert result.failed == 0
