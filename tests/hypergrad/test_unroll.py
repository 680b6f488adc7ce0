"""Unrolled hypergradients of learning rates: closed form, finite differences
through real torch optimisers, and the update rules against torch's steps."""

import copy

import pytest
import torch
from torch.func import functional_call

from skhypergrad.exceptions import InvalidHyperparameterError, SolverDivergedError
from skhypergrad.hypergrad import (
    optimizer_update,
    sgd_update,
    unrolled_hypergradient,
)


def _problem(n_steps, seed=0):
    """A float64 MLP, ``n_steps`` training batches and a validation batch."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)
    ).double()
    batches = [
        (torch.randn(16, 4, generator=gen, dtype=torch.float64), torch.arange(16) % 3)
        for _ in range(n_steps)
    ]
    valid = (
        torch.randn(24, 4, generator=gen, dtype=torch.float64),
        torch.arange(24) % 3,
    )
    return model, batches, valid


def _losses(model, batches, valid):
    names = [n for n, _ in model.named_parameters()]
    criterion = torch.nn.functional.cross_entropy

    def inner(weights, k):
        X, y = batches[k]
        return criterion(functional_call(model, dict(zip(names, weights)), (X,)), y)

    def outer(weights):
        X, y = valid
        return criterion(functional_call(model, dict(zip(names, weights)), (X,)), y)

    return inner, outer


def _layer_lrs(model, hparams):
    # One rate per Linear layer: its weight and bias share it.
    return {"lr": [hparams[0][i // 2] for i in range(len(list(model.parameters())))]}


def _train_then_validate(model, optimizer_class, lrs, batches, valid, warm=0, **kw):
    """Validation loss after real optimiser steps with the given per-layer rates."""
    model = copy.deepcopy(model)
    groups = [
        {"params": list(layer.parameters()), "lr": float(lr)}
        for layer, lr in zip([model[0], model[2]], lrs)
    ]
    optimizer = optimizer_class(groups, **kw)
    for X, y in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    with torch.no_grad():
        X, y = valid
        return float(torch.nn.functional.cross_entropy(model(X), y))


def test_one_step_is_the_closed_form_of_hypergradient_descent():
    model, batches, valid = _problem(1)
    inner, outer = _losses(model, batches, valid)
    params = [p.detach() for p in model.parameters()]
    lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)

    grad = unrolled_hypergradient(
        inner, outer, params, [lr], lambda h: {"lr": [h[0]] * len(params)}
    )[0]

    w0 = [p.clone().requires_grad_(True) for p in params]
    g_train = torch.autograd.grad(inner(w0, 0), w0)
    w1 = [(w - 0.3 * g).detach().requires_grad_(True) for w, g in zip(w0, g_train)]
    g_val = torch.autograd.grad(outer(w1), w1)
    expected = -sum((a * b).sum() for a, b in zip(g_val, g_train))
    torch.testing.assert_close(grad, expected.detach())


@pytest.mark.parametrize(
    ("optimizer_class", "kwargs", "n_steps"),
    [
        (torch.optim.SGD, {}, 3),
        (torch.optim.SGD, {"momentum": 0.9, "weight_decay": 1e-2}, 3),
        (torch.optim.SGD, {"momentum": 0.5, "nesterov": True}, 2),
        (torch.optim.Adam, {}, 1),
        (torch.optim.AdamW, {"weight_decay": 0.1}, 1),
    ],
)
def test_per_layer_hypergradient_matches_central_differences_of_real_training(
    optimizer_class, kwargs, n_steps
):
    model, batches, valid = _problem(n_steps)
    inner, outer = _losses(model, batches, valid)
    lrs = [0.2, 0.05] if optimizer_class is torch.optim.SGD else [0.01, 0.003]
    raw = torch.tensor(lrs, dtype=torch.float64, requires_grad=True)
    params = list(model.parameters())
    update, state = optimizer_update(optimizer_class(params, lr=1.0, **kwargs), params)

    grad = unrolled_hypergradient(
        inner,
        outer,
        params,
        [raw],
        lambda h: _layer_lrs(model, h),
        n_steps=n_steps,
        update=update,
        state=state,
    )[0]

    expected = []
    for i, lr in enumerate(lrs):
        eps = 1e-6 * lr
        plus, minus = list(lrs), list(lrs)
        plus[i], minus[i] = lr + eps, lr - eps
        run = _train_then_validate
        expected.append(
            (
                run(model, optimizer_class, plus, batches, valid, **kwargs)
                - run(model, optimizer_class, minus, batches, valid, **kwargs)
            )
            / (2 * eps)
        )
    torch.testing.assert_close(
        grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=1e-7
    )


@pytest.mark.parametrize(
    ("optimizer_class", "kwargs"),
    [
        (torch.optim.SGD, {"momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-2}),
        (torch.optim.Adam, {"weight_decay": 1e-2, "amsgrad": True}),
        (torch.optim.AdamW, {"weight_decay": 0.1}),
    ],
)
def test_update_continues_a_real_optimizer_from_its_state(optimizer_class, kwargs):
    model, batches, _ = _problem(4)
    params = list(model.parameters())
    optimizer = optimizer_class(params, lr=0.05, **kwargs)
    for X, y in batches[:2]:  # the optimiser has state (buffers, moments, step)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    update, state = optimizer_update(optimizer, params)
    weights = [p.detach().clone() for p in params]
    for X, y in batches[2:]:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        grads = [p.grad.detach().clone() for p in params]
        weights, state = update(weights, grads, {}, state)
        optimizer.step()
    for w, p in zip(weights, params):
        torch.testing.assert_close(w, p.detach())


def test_weights_are_left_unchanged_and_steps_are_reported():
    model, batches, valid = _problem(3)
    inner, outer = _losses(model, batches, valid)
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    lr = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)

    _, info = unrolled_hypergradient(
        inner,
        outer,
        params,
        [lr],
        lambda h: {"lr": [h[0]] * len(params)},
        n_steps=3,
        return_info=True,
    )

    assert info.n_steps == 3
    assert len(info.inner_losses) == 3
    assert all(p.grad is None for p in params)
    for p, b in zip(params, before):
        torch.testing.assert_close(p.detach(), b)


def test_diverged_unroll_raises():
    lr = torch.tensor(1e30, requires_grad=True)
    with pytest.raises(SolverDivergedError, match="not finite"):
        unrolled_hypergradient(
            lambda p, k: (p[0] ** 4).sum(),
            lambda p: (p[0] ** 4).sum(),
            [torch.ones(2)],
            [lr],
            lambda h: {"lr": [h[0]]},
            n_steps=3,
            update=sgd_update([{"lr": 0.0}]),
        )


def test_other_optimizers_are_refused():
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(InvalidHyperparameterError, match="SGD, Adam and AdamW"):
        optimizer_update(torch.optim.RMSprop(params), params)
    with pytest.raises(InvalidHyperparameterError, match="maximize"):
        optimizer_update(torch.optim.SGD(params, lr=0.1, maximize=True), params)
