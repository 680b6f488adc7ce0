"""The outer optimiser as one value: steps, projection, schedule, rejection,
tail average; on quadratics, without scikit-learn or skorch."""

import math

import pytest
import torch

from skhypergrad.hypergrad import (
    CosineSchedule,
    OuterOptimizer,
    TailAverage,
)


def _theta(value=0.0):
    return torch.tensor([value], dtype=torch.float64, requires_grad=True)


def _run(outer, losses_and_grads, theta, bounds=(-10.0, 10.0), n_steps=None):
    state = outer.init([theta], [bounds], n_steps or len(losses_and_grads))
    records = []
    for loss, grad in losses_and_grads:
        theta.grad = torch.tensor([grad], dtype=torch.float64)
        records.append(outer.update(state, loss))
    return state, records


def test_outer_optimizer_minimises_a_quadratic_with_sgd():
    theta = _theta()
    outer = OuterOptimizer(torch.optim.SGD, lr=0.1, schedule=None)
    state = outer.init([theta], [(-10.0, 10.0)], n_steps=60)
    for k in range(60):
        loss = float((theta.detach() - 2) ** 2)
        theta.grad = 2 * (theta.detach() - 2)
        record = outer.update(state, loss)
        assert record["status"] == "accepted"  # the loss only falls
        # Exactly SGD: theta_k = 2 - 2 * 0.8**k.
        assert float(theta.detach()) == pytest.approx(2 - 2 * 0.8 ** (k + 1))


def test_outer_optimizer_projects_into_the_bounds_and_says_so():
    theta = _theta(0.9)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None)

    state, records = _run(outer, [(1.0, -5.0)], theta, bounds=(-1.0, 1.0))

    assert float(theta.detach()) == 1.0
    assert records[0]["at_bound"] == [True]
    assert state.tensors[0] is theta


def test_outer_optimizer_rejects_a_step_after_which_the_loss_rose():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None, tol=0.05, shrink=0.5)
    # Step 0 measures 1.0 and moves theta to 1; step 1 measures 2.0 there
    # (a rise of 100%, no trend before it): back to 0, nothing taken, the
    # next step half as long.
    state, records = _run(outer, [(1.0, -1.0), (2.0, -1.0), (2.0, -1.0)], theta)

    assert [r["status"] for r in records] == ["accepted", "rejected", "accepted"]
    assert "rose from 1 to 2" in records[1]["reason"]
    assert records[1]["hyper_lr"] == 0.5
    assert records[2]["hyper_lr"] == 0.5
    # After the rejection theta was back at 0; the third step moved it by 0.5.
    assert float(theta.detach()) == pytest.approx(0.5)


def test_outer_optimizer_tolerates_a_rise_within_tol():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None, tol=0.05)

    _, records = _run(outer, [(1.0, -1.0), (1.04, -1.0)], theta)

    assert [r["status"] for r in records] == ["accepted", "accepted"]
    assert float(theta.detach()) == 2.0


def test_outer_optimizer_judges_a_step_against_the_trend_of_the_losses():
    # A net that overfits: the loss rises by 0.1 an interval at any values.
    # Each rise is 10% (above tol) but it is the trend, not the step's doing.
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=0.1, schedule=None, tol=0.05)
    # The gradient alternates in sign, so the values do not drift one way.
    losses = [(1.0 + 0.1 * k, (-1.0) ** k) for k in range(12)]

    _, records = _run(outer, losses, theta)

    # Only the second step's rise has no trend before it to excuse it.
    assert [r["status"] for r in records].count("rejected") <= 1
    assert all(r["status"] == "accepted" for r in records[3:])


def test_outer_optimizer_has_no_ratchet_after_a_rejection():
    # One transient low measurement (0.34) and then every later one higher:
    # the guard that kept the low as its reference undid every later step
    # (190 of 200 on a linear problem). The reference is the latest
    # measurement, and accepted steps give the shrink back.
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=0.1, schedule=None, tol=0.05)
    losses = [(0.5, -1.0), (0.34, -1.0), (0.5, 1.0)]
    losses += [(0.5, (-1.0) ** k) for k in range(20)]

    _, records = _run(outer, losses, theta)

    statuses = [r["status"] for r in records]
    assert statuses.count("rejected") == 1
    assert statuses[2] == "rejected"
    # The step size came back to the schedule's.
    assert records[-1]["hyper_lr"] == pytest.approx(0.1)


def test_outer_optimizer_returns_a_drift_to_the_lowest_point_of_its_window():
    # The collapse: each step raises the loss by 1.5% (within tol=5%) while the
    # values run one way; over four steps the loss climbs 6%: the values go
    # back to where the lowest loss was measured.
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=0.5, schedule=None, tol=0.05, window=5)
    losses = [(1.0 + 0.015 * k, -1.0) for k in range(5)]

    state, records = _run(outer, losses, theta)

    assert [r["status"] for r in records] == ["accepted"] * 4 + ["rejected"]
    assert records[-1]["reason"].startswith("drift")
    # The lowest loss (1.0) was measured at theta = 0.
    assert float(theta.detach()) == 0.0
    assert records[-1]["hyper_lr"] == pytest.approx(0.25)


def test_outer_optimizer_does_not_call_an_oscillation_a_drift():
    # Values that go back and forth while the loss rises slowly are not a
    # run-up: the drift check needs them to travel one way.
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=0.5, schedule=None, tol=0.05, window=5)
    losses = [(1.0 + 0.02 * k, (-1.0) ** k) for k in range(10)]

    _, records = _run(outer, losses, theta)

    assert all(r["status"] == "accepted" for r in records)


def test_outer_optimizer_without_tol_never_rejects():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None, tol=None)

    _, records = _run(outer, [(1.0, -1.0), (5.0, -1.0), (9.0, -1.0)], theta)

    assert all(r["status"] == "accepted" for r in records)
    assert float(theta.detach()) == 3.0


def test_outer_optimizer_skip_keeps_the_values_but_counts_the_loss():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None)
    state = outer.init([theta], [(-10.0, 10.0)], n_steps=2)
    theta.grad = torch.tensor([-1.0], dtype=torch.float64)

    record = outer.update(state, 0.5, skip="non-finite hypergradient")

    assert record["status"] == "skipped"
    assert record["reason"] == "non-finite hypergradient"
    assert float(theta.detach()) == 0.0
    assert theta.grad is None
    assert [loss for loss, _, _ in state.trail] == [0.5]
    assert state.n_steps == 1


def test_outer_optimizer_a_rise_after_a_skipped_step_undoes_nothing():
    # No step was taken before the rise: there is nothing to blame or undo.
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None)
    state = outer.init([theta], [(-10.0, 10.0)], n_steps=3)
    theta.grad = torch.tensor([-1.0], dtype=torch.float64)
    outer.update(state, 1.0)
    theta.grad = torch.tensor([-1.0], dtype=torch.float64)
    outer.update(state, 1.0, skip="non-finite hypergradient")
    theta.grad = torch.tensor([-1.0], dtype=torch.float64)

    record = outer.update(state, 3.0)

    assert record["status"] == "accepted"
    assert float(theta.detach()) == 2.0


def test_outer_optimizer_nan_loss_is_not_a_measurement():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None)

    state, records = _run(outer, [(math.nan, -1.0), (math.nan, -1.0)], theta)

    assert [r["status"] for r in records] == ["accepted", "accepted"]
    assert state.trail == []


def test_outer_optimizer_undoes_a_non_finite_step():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=None)

    _, records = _run(outer, [(1.0, math.inf)], theta, bounds=(-math.inf, math.inf))

    assert records[0]["finite"] is False
    assert float(theta.detach()) == 0.0


def test_cosine_schedule_anneals_to_its_final_fraction():
    theta = _theta(0.0)
    outer = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=CosineSchedule(0.1))

    _, records = _run(outer, [(1.0, 0.0)] * 5, theta)

    rates = [r["hyper_lr"] for r in records]
    assert rates[0] == pytest.approx(1.0)
    assert rates[-1] == pytest.approx(0.1)
    assert rates == sorted(rates, reverse=True)


def test_rejection_shrinks_the_scheduled_rate():
    theta = _theta(0.0)
    outer = OuterOptimizer(
        torch.optim.SGD, lr=1.0, schedule=CosineSchedule(0.1), shrink=0.5
    )

    _, records = _run(outer, [(1.0, -1.0), (3.0, -1.0), (1.0, -1.0)], theta)

    state_free = OuterOptimizer(torch.optim.SGD, lr=1.0, schedule=CosineSchedule(0.1))
    _, free = _run(state_free, [(1.0, 0.0)] * 3, _theta())
    assert records[2]["hyper_lr"] == pytest.approx(0.5 * free[2]["hyper_lr"])


def test_tail_average_is_the_mean_of_the_last_steps():
    theta = _theta(0.0)
    tail = TailAverage(n_planned=8, fraction=0.25)  # the last 2 steps
    for step in range(8):
        theta.data.fill_(float(step))
        tail.add(step, [theta])
    tail.add(7, None)  # a rejected step is not counted

    assert float(tail.result([theta])[0]) == pytest.approx(6.5)


def test_tail_average_without_counted_steps_is_the_current_value():
    theta = _theta(3.0)
    tail = TailAverage(n_planned=4, fraction=0.25)
    tail.add(0, [theta])  # before the tail

    assert float(tail.result([theta])[0]) == 3.0


def test_scheduler_class_gets_its_length_from_the_planned_steps():
    theta = _theta(0.0)
    linear = OuterOptimizer(
        torch.optim.SGD,
        lr=1.0,
        schedule=torch.optim.lr_scheduler.LinearLR,
        schedule_kwargs={"start_factor": 1.0, "end_factor": 0.2},
    )

    _, records = _run(linear, [(1.0, 0.0)] * 5, theta)

    # total_iters = 4 planned intervals: 1.0, 0.8, 0.6, 0.4, 0.2.
    rates = [r["hyper_lr"] for r in records]
    assert rates == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])


def test_scheduler_class_with_its_own_arguments():
    step = OuterOptimizer(
        torch.optim.SGD,
        lr=1.0,
        schedule=torch.optim.lr_scheduler.StepLR,
        schedule_kwargs={"step_size": 2, "gamma": 0.5},
    )

    _, records = _run(step, [(1.0, 0.0)] * 5, _theta())

    assert [r["hyper_lr"] for r in records] == pytest.approx([1, 1, 0.5, 0.5, 0.25])


def test_default_schedule_is_cosine_to_a_tenth_and_none_keeps_the_rate():
    _, cosine = _run(OuterOptimizer(torch.optim.SGD), [(1.0, 0.0)] * 4, _theta())
    _, constant = _run(
        OuterOptimizer(torch.optim.SGD, schedule=None), [(1.0, 0.0)] * 4, _theta()
    )

    assert cosine[0]["hyper_lr"] == pytest.approx(0.5)
    assert cosine[-1]["hyper_lr"] == pytest.approx(0.05)
    assert [r["hyper_lr"] for r in constant] == pytest.approx([0.5] * 4)


@pytest.mark.parametrize(
    ("warmup", "interval", "max_epochs", "expected"),
    [
        ("auto", 1, 9, [3, 4, 5, 6, 7, 8]),
        (2, 3, 12, [2, 5, 8, 11]),
        (0, 2, 6, [2, 4]),  # counted from epoch 0, none before the first
        (5, 1, 5, []),  # nothing after the last epoch
    ],
)
def test_due_epochs_follow_warmup_and_interval(warmup, interval, max_epochs, expected):
    outer = OuterOptimizer(warmup=warmup, interval=interval)

    assert outer.due_epochs(max_epochs) == expected


def test_adam_defaults_to_no_momentum_and_keeps_given_betas():
    theta = _theta()
    default = OuterOptimizer().init([theta], [(-1.0, 1.0)], 3).optimizer
    given = OuterOptimizer(optimizer_kwargs={"betas": (0.5, 0.99)})
    chosen = given.init([theta], [(-1.0, 1.0)], 3).optimizer
    adamw = OuterOptimizer(torch.optim.AdamW).init([theta], [(-1.0, 1.0)], 3)

    assert default.param_groups[0]["betas"] == (0.0, 0.9)
    assert chosen.param_groups[0]["betas"] == (0.5, 0.99)
    assert adamw.optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_tail_is_the_average_of_the_configured_share():
    tail = OuterOptimizer(average_last=0.5).tail(8)

    assert tail.start == 4


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"lr": 0.0}, r"lr must be a positive number, got 0.0"),
        ({"warmup": -1}, r"warmup must be 'auto' or an integer >= 0, got -1"),
        ({"interval": 0}, r"interval must be an integer >= 1, got 0"),
        ({"batch_size": 2.5}, r"batch_size must be an integer >= 1, got 2.5"),
        ({"average_last": 0}, r"average_last must be a number in \(0, 1\], got 0"),
        ({"shrink": 2}, r"shrink must be a number in \(0, 1\], got 2"),
        ({"tol": -0.1}, r"tol must be a finite number >= 0, got -0.1"),
        ({"optimizer_kwargs": {"bogus": 1}}, r"cannot build optimizer=.*bogus"),
        ({"schedule": "cosine"}, r"schedule must be a torch.optim.lr_scheduler"),
        ({"schedule_kwargs": {"eta_min": 0.3}}, r"only a scheduler class takes"),
        (
            {"schedule": torch.optim.lr_scheduler.StepLR},
            r"cannot build schedule=.*StepLR.*step_size",
        ),
    ],
)
def test_invalid_options_are_refused_with_the_value(options, match):
    from skhypergrad.exceptions import InvalidOptionError

    outer = OuterOptimizer(**options)

    with pytest.raises(InvalidOptionError, match=match):
        outer.init([_theta()], [(-1.0, 1.0)], 3)


def test_outer_optimizer_options_round_trip_like_an_estimator():
    import pickle

    from sklearn.base import clone

    outer = OuterOptimizer(torch.optim.SGD, lr=0.1, warmup=2)

    assert clone(outer) == outer
    assert pickle.loads(pickle.dumps(outer)) == outer
    assert outer.set_params(interval=3).get_params()["interval"] == 3
    assert repr(outer) == (
        "OuterOptimizer(optimizer=torch.optim.sgd.SGD, lr=0.1, warmup=2, interval=3)"
    )
    with pytest.raises(ValueError, match="has no option 'lrr'"):
        outer.set_params(lrr=1.0)


def test_reduce_on_plateau_is_stepped_with_the_measured_loss():
    plateau = OuterOptimizer(
        torch.optim.SGD,
        lr=1.0,
        schedule=torch.optim.lr_scheduler.ReduceLROnPlateau,
        schedule_kwargs={"patience": 0, "factor": 0.5},
        tol=None,
    )

    # The loss falls, then stays: the rate halves after the first flat step.
    _, records = _run(
        plateau, [(3.0, 0.0), (2.0, 0.0), (2.0, 0.0), (2.0, 0.0)], _theta()
    )

    assert [r["hyper_lr"] for r in records] == pytest.approx([1.0, 1.0, 1.0, 0.5])


def test_numpy_integers_are_accepted_where_integers_are():
    import numpy as np

    outer = OuterOptimizer(warmup=np.int64(2), interval=np.int64(3))

    assert outer.due_epochs(12) == [2, 5, 8, 11]
    outer.init([_theta()], [(-1.0, 1.0)], 3)  # no error
