"""The generalised Gauss-Newton curvature: equal to the Hessian where the model
is linear, positive semi-definite on a network, and solved by CG to the
dense answer."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from skhypergrad.exceptions import InvalidSolverError
from skhypergrad.hypergrad import CG, Exact, InnerParts, hypergradient, make_ggnvp


def _ridge_data(seed, n=40, d=5):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(d, generator=gen, dtype=torch.float64)
    Xv = torch.randn(n, d, generator=gen, dtype=torch.float64)
    yv = Xv @ torch.randn(d, generator=gen, dtype=torch.float64)
    return X, y, Xv, yv


def _ridge_optimum(X, y, lam):
    """argmin of ||X w - y||^2 / n + lam ||w||^2 / 2, in closed form."""
    n, d = X.shape
    A = 2 * X.T @ X / n + lam * torch.eye(d, dtype=torch.float64)
    return torch.linalg.solve(A, 2 * X.T @ y / n)


def _ridge(seed=0):
    X, y, Xv, yv = _ridge_data(seed)
    lam = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    w = _ridge_optimum(X, y, lam.detach()).requires_grad_(True)

    def parts(params, hparams):
        outputs = X @ params[0]
        data = ((outputs - y) ** 2).mean()
        return InnerParts(
            outputs, data, 0.5 * hparams[0].sum() * (params[0] ** 2).sum()
        )

    def scalar(params, hparams):
        return parts(params, hparams).total()

    def outer(params, hparams):
        return ((Xv @ params[0] - yv) ** 2).mean()

    return w, lam, parts, scalar, outer


def test_gauss_newton_equals_hessian_for_a_linear_model():
    w, lam, parts, scalar, outer = _ridge()

    hessian = hypergradient(scalar, outer, [w], [lam], solver=Exact())[0]
    ggn = hypergradient(
        parts, outer, [w], [lam], solver=Exact(curvature="gauss-newton")
    )[0]
    cg = hypergradient(
        parts, outer, [w], [lam], solver=CG(max_iter=50, curvature="gauss-newton")
    )[0]

    torch.testing.assert_close(ggn, hessian)
    torch.testing.assert_close(cg, hessian)


def test_gauss_newton_finite_difference_on_ridge():
    w, lam, parts, _, outer = _ridge(seed=1)
    grad = hypergradient(
        parts, outer, [w], [lam], solver=CG(max_iter=50, curvature="gauss-newton")
    )[0]

    X, y, Xv, yv = _ridge_data(seed=1)

    def outer_at(value):
        return float(((Xv @ _ridge_optimum(X, y, value) - yv) ** 2).mean())

    eps = 1e-6
    slope = (outer_at(0.3 + eps) - outer_at(0.3 - eps)) / (2 * eps)
    assert float(grad) == pytest.approx(slope, rel=1e-5)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


def _net_problem():
    torch.manual_seed(0)
    net = _Net().double()
    X = torch.randn(30, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    params = list(net.parameters())
    lam = torch.tensor([-3.0], dtype=torch.float64, requires_grad=True)

    def inner(params, hparams):
        outputs = net(X)
        penalty = 0.5 * torch.exp(hparams[0]).sum() * sum((p**2).sum() for p in params)
        return InnerParts(outputs, F.cross_entropy(outputs, y), penalty)

    def outer(params, hparams):
        return F.cross_entropy(net(X[:10] + 0.1), y[:10])

    return params, lam, inner, outer


def test_gauss_newton_matrix_is_positive_semi_definite_on_a_network():
    params, lam, inner, _ = _net_problem()
    parts = inner(params, [lam])
    ggnvp = make_ggnvp(parts.outputs, parts.data_loss, params)
    sizes = [p.numel() for p in params]
    columns = []
    for i in range(sum(sizes)):
        unit = torch.zeros(sum(sizes), dtype=torch.float64)
        unit[i] = 1.0
        pieces = [c.reshape(p.shape) for c, p in zip(torch.split(unit, sizes), params)]
        columns.append(torch.cat([c.reshape(-1) for c in ggnvp(pieces)]))
    matrix = torch.stack(columns, 1)

    torch.testing.assert_close(matrix, matrix.T)
    assert float(torch.linalg.eigvalsh(matrix).min()) > -1e-10


def test_gauss_newton_cg_converges_to_the_dense_solve_on_a_network():
    params, lam, inner, outer = _net_problem()
    dense = hypergradient(
        inner,
        outer,
        params,
        [lam],
        solver=Exact(damping=1e-3, curvature="gauss-newton"),
    )[0]
    grad, info = hypergradient(
        inner,
        outer,
        params,
        [lam],
        solver=CG(max_iter=200, tol=1e-12, damping=1e-3, curvature="gauss-newton"),
        return_info=True,
    )

    assert info.solve.converged
    torch.testing.assert_close(grad[0], dense, rtol=1e-6, atol=1e-10)


def test_gauss_newton_needs_the_loss_in_parts():
    w, lam, _, scalar, outer = _ridge()

    with pytest.raises(InvalidSolverError, match="InnerParts"):
        hypergradient(scalar, outer, [w], [lam], solver=CG(curvature="gauss-newton"))


def test_unknown_curvature_is_refused():
    w, lam, parts, _, outer = _ridge()

    with pytest.raises(InvalidSolverError, match="curvature"):
        hypergradient(parts, outer, [w], [lam], solver=CG(curvature="fisher"))
