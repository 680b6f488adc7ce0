"""Each linear solver against ``torch.linalg.solve`` on small random matrices.

The solver objects (``CG()``...) are checked against the dense solve; the
functions they call (``cg``...) for their failure modes and diagnostics.
"""

import math
import re
import warnings

import pytest
import torch

from skhypergrad.exceptions import SolverConvergenceWarning, SolverDivergedError
from skhypergrad.hypergrad import (
    CG,
    Exact,
    Identity,
    Neumann,
    cg,
    exact,
    identity,
    neumann,
)

# A 7-dimensional problem split over two tensors, so that list handling is tested.
SHAPES = [(3,), (2, 2)]
DIM = 7
EIGENVALUES = torch.linspace(1.0, 4.0, DIM, dtype=torch.float64)
LAMBDA_MAX = 4.0

# Solvers that reach float64 accuracy on EIGENVALUES.
ACCURATE = {
    "cg": CG(max_iter=2 * DIM, tol=1e-12, negative_curvature="raise", warn=True),
    "neumann": Neumann(max_iter=200, alpha=1.0 / LAMBDA_MAX),
    "exact": Exact(),
}
ALL_SOLVERS = {
    **ACCURATE,
    # A tol that float32 can reach, so that cg does not warn.
    "cg": CG(max_iter=2 * DIM, tol=1e-5, negative_curvature="raise", warn=True),
    "identity": Identity(alpha=0.5),
}
# Each solver object and the function it calls with the same options.
AS_FUNCTION = {
    "cg": (ACCURATE["cg"], cg, {"max_iter": 2 * DIM, "tol": 1e-12}),
    "neumann": (
        ACCURATE["neumann"],
        neumann,
        {"max_iter": 200, "alpha": 1.0 / LAMBDA_MAX},
    ),
    "exact": (Exact(), exact, {}),
    "identity": (Identity(alpha=0.5), identity, {"alpha": 0.5}),
}
DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float64, id="float64"),
]


def _symmetric(eigenvalues, dtype=torch.float64, seed=0):
    """Return ``Q diag(eigenvalues) Q^T`` with a random orthogonal ``Q``, and ``Q``."""
    generator = torch.Generator().manual_seed(seed)
    gaussian = torch.randn(len(eigenvalues), len(eigenvalues), generator=generator)
    q, _ = torch.linalg.qr(gaussian.double())
    matrix = q @ torch.diag(eigenvalues.double()) @ q.T
    return matrix.to(dtype), q.to(dtype)


def _matrix_hvp(matrix):
    """Return ``v -> matrix @ v`` acting on lists of tensors shaped like SHAPES."""

    def hvp(vectors):
        flat = torch.cat([v.reshape(-1) for v in vectors])
        return _unflatten(matrix @ flat)

    return hvp


def _unflatten(flat):
    sizes = [math.prod(shape) for shape in SHAPES]
    chunks = torch.split(flat, sizes)
    return [c.reshape(shape) for c, shape in zip(chunks, SHAPES, strict=True)]


def _random_rhs(dtype=torch.float64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return _unflatten(torch.randn(DIM, generator=generator, dtype=dtype))


def _dense_solution(matrix, rhs):
    flat = torch.cat([r.reshape(-1) for r in rhs])
    return _unflatten(torch.linalg.solve(matrix, flat))


@pytest.mark.parametrize("name", sorted(ACCURATE))
def test_solver_matches_dense_solve(name):
    solver = ACCURATE[name]
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()

    solution, info = solver(_matrix_hvp(matrix), rhs)

    torch.testing.assert_close(
        solution, _dense_solution(matrix, rhs), rtol=1e-9, atol=1e-12
    )
    assert info.method == name
    assert info.converged


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ALL_SOLVERS))
def test_solver_keeps_dtype_and_shape(name, dtype):
    solver = ALL_SOLVERS[name]
    matrix, _ = _symmetric(EIGENVALUES, dtype=dtype)
    rhs = _random_rhs(dtype=dtype)

    solution, _ = solver(_matrix_hvp(matrix), rhs)

    assert [s.shape for s in solution] == [r.shape for r in rhs]
    assert all(s.dtype == dtype for s in solution)
    if name != "identity":
        expected = _dense_solution(matrix.double(), [r.double() for r in rhs])
        actual = [s.double() for s in solution]
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ALL_SOLVERS))
def test_solver_leaves_rhs_unchanged(name):
    solver = ALL_SOLVERS[name]
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()
    before = [r.clone() for r in rhs]

    solution, _ = solver(_matrix_hvp(matrix), rhs)

    torch.testing.assert_close(rhs, before, rtol=0, atol=0)
    assert all(s is not r for s, r in zip(solution, rhs, strict=True))


@pytest.mark.parametrize("name", sorted(AS_FUNCTION))
def test_solver_object_equals_its_function(name):
    solver, function, kwargs = AS_FUNCTION[name]
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()

    from_object = solver(_matrix_hvp(matrix), rhs)
    from_function = function(_matrix_hvp(matrix), rhs, **kwargs)

    torch.testing.assert_close(from_object[0], from_function[0], rtol=0, atol=0)
    assert from_object[1] == from_function[1]


@pytest.mark.parametrize(
    "solver",
    [
        CG(max_iter=2 * DIM, tol=1e-12, damping=0.5),
        Neumann(max_iter=300, alpha=1.0 / (LAMBDA_MAX + 0.5), damping=0.5),
        Neumann(max_iter=300, damping=0.5),
        Exact(damping=0.5),
    ],
    ids=["cg", "neumann", "neumann-auto", "exact"],
)
def test_solver_damping_solves_shifted_system(solver):
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()
    shifted = matrix + 0.5 * torch.eye(DIM, dtype=matrix.dtype)

    solution, _ = solver(_matrix_hvp(matrix), rhs)

    torch.testing.assert_close(
        solution, _dense_solution(shifted, rhs), rtol=1e-9, atol=1e-12
    )
    undamped = _dense_solution(matrix, rhs)
    assert not torch.allclose(solution[0], undamped[0], rtol=1e-3)


def test_identity_damping_lowers_the_auto_step():
    matrix, _ = _symmetric(EIGENVALUES)
    hvp, rhs = _matrix_hvp(matrix), _random_rhs()

    plain, plain_info = Identity(power_iter=50)(hvp, rhs)
    damped, damped_info = Identity(power_iter=50, damping=1.0)(hvp, rhs)

    # alpha="auto" is 1 / lambda_max of H + damping I: 1/4, then 1/5.
    assert plain_info.alpha == pytest.approx(1.0 / LAMBDA_MAX, rel=1e-3)
    assert damped_info.alpha == pytest.approx(1.0 / (LAMBDA_MAX + 1.0), rel=1e-3)
    torch.testing.assert_close(damped, [damped_info.alpha * r for r in rhs])


def test_neumann_auto_alpha_non_finite_hessian_raises():
    def nan_hvp(vectors):
        return [torch.full_like(v, math.nan) for v in vectors]

    with pytest.raises(
        SolverDivergedError, match=r"top Hessian eigenvalue gave nan.*Neumann\(alpha"
    ):
        Neumann()(nan_hvp, _random_rhs())


def test_solve_info_counts_hessian_vector_products():
    matrix, _ = _symmetric(EIGENVALUES)
    hvp, rhs = _matrix_hvp(matrix), _random_rhs()

    assert exact(hvp, rhs)[1].n_iter == DIM
    assert neumann(hvp, rhs, max_iter=9, alpha=0.1)[1].n_iter == 9
    cg_info = cg(hvp, rhs, max_iter=2 * DIM, tol=1e-12)[1]
    # In exact arithmetic CG needs one iteration per distinct eigenvalue.
    assert cg_info.n_iter <= DIM + 1
    assert cg_info.residual <= 1e-12


def test_identity_returns_alpha_times_rhs():
    def unused_hvp(vectors):
        raise AssertionError("identity must not call hvp")

    rhs = _random_rhs()

    solution, info = identity(unused_hvp, rhs, alpha=0.25)

    torch.testing.assert_close(solution, [0.25 * r for r in rhs], rtol=0, atol=0)
    assert info.n_iter == 0


def test_neumann_too_large_alpha_raises():
    matrix, _ = _symmetric(EIGENVALUES)
    # alpha * lambda_max = 3 > 2: the top eigendirection doubles every term.
    alpha = 3.0 / LAMBDA_MAX

    with pytest.raises(
        SolverDivergedError,
        match=r"'neumann' solver diverged at iteration \d+ .*alpha=0\.75 is too large",
    ):
        neumann(_matrix_hvp(matrix), _random_rhs(), max_iter=100, alpha=alpha)


def test_cg_indefinite_matrix_raises():
    eigenvalues = torch.tensor([-2.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0])
    matrix, q = _symmetric(eigenvalues)
    # Mostly along the negative eigendirection: the first curvature is negative.
    rhs = _unflatten(q[:, 0] + 0.1 * q[:, 1])

    with pytest.raises(
        SolverDivergedError,
        match="'cg' solver diverged at iteration 1 .*not positive definite",
    ):
        cg(_matrix_hvp(matrix), rhs)


def test_cg_non_finite_rhs_raises():
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()
    rhs[0][1] = float("nan")

    with pytest.raises(SolverDivergedError, match="right-hand side or x0 is not"):
        cg(_matrix_hvp(matrix), rhs)


def test_cg_max_iter_warns():
    matrix, _ = _symmetric(torch.logspace(0, 4, DIM))

    with pytest.warns(SolverConvergenceWarning, match="cg stopped at max_iter=2 "):
        _, info = cg(_matrix_hvp(matrix), _random_rhs(), max_iter=2)

    assert info.n_iter == 2
    assert not info.converged


def test_cg_max_iter_silent_with_warn_false():
    matrix, _ = _symmetric(torch.logspace(0, 4, DIM))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, info = cg(_matrix_hvp(matrix), _random_rhs(), max_iter=2, warn=False)

    assert not info.converged


def test_cg_warm_start_at_solution_runs_no_iteration():
    matrix, _ = _symmetric(EIGENVALUES)
    rhs = _random_rhs()
    x0 = _dense_solution(matrix, rhs)

    solution, info = cg(_matrix_hvp(matrix), rhs, x0=x0)

    assert info.n_iter == 0
    assert info.converged
    torch.testing.assert_close(solution, x0, rtol=0, atol=0)


def test_exact_singular_matrix_raises():
    # Diagonal, so that the zero eigenvalue is exact and not rounded to 1e-17.
    matrix = torch.diag(torch.arange(DIM, dtype=torch.float64))

    with pytest.raises(SolverDivergedError, match=re.escape("singular: add damping")):
        exact(_matrix_hvp(matrix), _random_rhs())
