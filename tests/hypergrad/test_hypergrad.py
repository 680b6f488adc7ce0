"""``hypergradient`` against the closed-form ridge answer and finite differences."""

import math
import re

import pytest
import torch

from skhypergrad.exceptions import InvalidSolverError, SolverDivergedError
from skhypergrad.hypergrad import CG, Exact, Neumann, hypergradient

N_FEATURES = 5  # the default of make_ridge_problem
TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-3}
# cg in float32 cannot reach the default tol=1e-10, and would warn.
CG_TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
ACCURATE_METHODS = ["exact", "cg", "neumann"]
DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float64, id="float64"),
]
PER_FEATURE = [
    pytest.param(False, id="scalar"),
    pytest.param(True, id="per_feature"),
]


def _accurate_solver(method, dtype):
    """A solver that should solve the ridge problem to precision."""
    if method == "cg":
        return CG(
            max_iter=N_FEATURES,
            tol=CG_TOL[dtype],
            negative_curvature="raise",
            warn=True,
        )
    if method == "neumann":
        return Neumann(max_iter=200)
    return Exact()


def _flat(tensors):
    return torch.cat([t.detach().double().reshape(-1) for t in tensors])


def _relative_error(actual, expected):
    actual, expected = _flat(actual), _flat(expected)
    return float((actual - expected).norm() / expected.norm())


def _finite_differences(problem, step=1e-4):
    """Central differences of the validation loss at the exact inner optimum."""
    theta = problem.hparams[0].detach().double()
    grad = torch.zeros_like(theta)
    for j in range(theta.numel()):
        shift = torch.zeros_like(theta)
        shift.view(-1)[j] = step
        upper = problem.validation_loss_at(theta + shift)
        lower = problem.validation_loss_at(theta - shift)
        grad.view(-1)[j] = (upper - lower) / (2 * step)
    return [grad]


@pytest.mark.parametrize("per_feature", PER_FEATURE)
def test_ridge_closed_form_matches_finite_differences(ridge_problem, per_feature):
    problem = ridge_problem(per_feature=per_feature)

    expected = problem.exact_hypergradient()

    assert _relative_error(_finite_differences(problem), expected) <= 1e-7


@pytest.mark.parametrize("per_feature", PER_FEATURE)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ACCURATE_METHODS)
def test_hypergradient_matches_closed_form_ridge(
    ridge_problem, method, dtype, per_feature
):
    problem = ridge_problem(dtype=dtype, per_feature=per_feature)

    grad = hypergradient(*problem.inputs, solver=_accurate_solver(method, dtype))

    assert _relative_error(grad, problem.exact_hypergradient()) <= TOLERANCE[dtype]


@pytest.mark.parametrize("per_feature", PER_FEATURE)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ACCURATE_METHODS)
def test_hypergradient_matches_finite_differences(
    ridge_problem, method, dtype, per_feature
):
    problem = ridge_problem(dtype=dtype, per_feature=per_feature)

    grad = hypergradient(*problem.inputs, solver=_accurate_solver(method, dtype))

    assert _relative_error(grad, _finite_differences(problem)) <= TOLERANCE[dtype]


@pytest.mark.parametrize("per_feature", PER_FEATURE)
def test_neumann_error_decreases_with_terms(ridge_problem, per_feature):
    problem = ridge_problem(per_feature=per_feature)
    expected = problem.exact_hypergradient()

    errors = [
        _relative_error(
            hypergradient(*problem.inputs, solver=Neumann(max_iter=n_terms)),
            expected,
        )
        for n_terms in [1, 5, 20, 200]
    ]

    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1e-3  # the truncation is visible at first
    assert errors[-1] <= 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_points_the_right_way_on_scalar_ridge(ridge_problem, dtype):
    problem = ridge_problem(dtype=dtype)

    grad = hypergradient(*problem.inputs, solver="identity")

    expected = problem.exact_hypergradient()
    assert torch.sign(grad[0]) == torch.sign(expected[0]) != 0
    cosine = (
        _flat(grad) @ _flat(expected) / (_flat(grad).norm() * _flat(expected).norm())
    )
    assert cosine > 0


@pytest.mark.parametrize("method", ["exact", "cg", "neumann", "identity"])
def test_hypergradient_return_info_at_optimum(ridge_problem, method):
    problem = ridge_problem()

    _, info = hypergradient(*problem.inputs, solver=method, return_info=True)

    expected_loss = problem.validation_loss_at(problem.hparams[0].detach())
    assert math.isfinite(info.outer_loss)
    assert info.outer_loss == pytest.approx(float(expected_loss), rel=1e-12)
    assert info.inner_grad_norm < 1e-10
    assert info.solve.method == method
    if method in ("neumann", "identity"):
        assert info.alpha > 0
    else:
        assert info.alpha is None
    assert [q.shape for q in info.ihvp] == [p.shape for p in problem.params]


def test_hypergradient_cg_warm_start_from_ihvp_runs_no_iteration(ridge_problem):
    problem = ridge_problem()
    first, info = hypergradient(*problem.inputs, solver="cg", return_info=True)

    second, warm = hypergradient(
        *problem.inputs, solver="cg", x0=info.ihvp, return_info=True
    )

    assert warm.solve.n_iter == 0 < info.solve.n_iter
    assert _relative_error(second, first) <= 1e-10


@pytest.mark.parametrize(
    "make_state",
    [lambda: 7, lambda: torch.Generator().manual_seed(7)],
    ids=["int", "generator"],
)
def test_hypergradient_same_random_state_gives_same_neumann_result(
    ridge_problem, make_state
):
    problem = ridge_problem()

    grads = [
        hypergradient(*problem.inputs, solver=Neumann(power_iter=2, random_state=state))
        for state in (7, make_state())
    ]
    other_seed = hypergradient(
        *problem.inputs, solver=Neumann(power_iter=2, random_state=8)
    )

    # Two power iterations leave alpha, hence the truncated series, seed-dependent.
    assert torch.equal(grads[0][0], grads[1][0])
    assert not torch.equal(grads[0][0], other_seed[0])


@pytest.mark.parametrize("how", ["propagates", "added"])
@pytest.mark.parametrize("method", ["exact", "cg", "neumann", "identity"])
def test_hypergradient_nan_outer_loss_raises(ridge_problem, method, how):
    problem = ridge_problem()

    def outer_loss(params, hparams):
        loss = problem.outer_loss(params, hparams)
        # "propagates" makes dL_V/dw NaN too; "added" leaves it finite.
        return loss * math.nan if how == "propagates" else loss + math.nan

    inputs = (problem.inner_loss, outer_loss, problem.params, problem.hparams)
    with pytest.raises(SolverDivergedError, match="not finite"):
        hypergradient(*inputs, solver=method)


def test_hypergradient_invalid_solver_raises(ridge_problem):
    with pytest.raises(
        InvalidSolverError, match=r"Unknown solver 'newton'\. Use one of \['cg', "
    ):
        hypergradient(*ridge_problem().inputs, solver="newton")


@pytest.mark.parametrize("alpha", [0, -1.0, "fast", math.nan])
def test_hypergradient_invalid_alpha_raises(ridge_problem, alpha):
    match = "alpha must be 'auto' or a positive number, got " + re.escape(repr(alpha))
    with pytest.raises(InvalidSolverError, match=match):
        hypergradient(*ridge_problem().inputs, solver=Neumann(alpha=alpha))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("per_feature", PER_FEATURE)
@pytest.mark.parametrize("method", ["exact", "cg", "neumann", "identity"])
def test_hypergradient_is_detached_and_shaped_like_hparams(
    ridge_problem, method, per_feature, dtype
):
    problem = ridge_problem(dtype=dtype, per_feature=per_feature)

    grad = hypergradient(*problem.inputs, solver=_accurate_solver(method, dtype))

    assert isinstance(grad, list)
    assert [g.shape for g in grad] == [h.shape for h in problem.hparams]
    assert all(g.dtype == dtype for g in grad)
    assert not any(g.requires_grad for g in grad)


@pytest.mark.parametrize("method", ["exact", "cg", "neumann", "identity"])
def test_hypergradient_writes_no_grad_and_keeps_inputs(ridge_problem, method):
    problem = ridge_problem(per_feature=True)
    before = [t.detach().clone() for t in problem.params + problem.hparams]

    hypergradient(*problem.inputs, solver=method)

    after = problem.params + problem.hparams
    assert all(t.grad is None for t in after)
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
