"""Learning rates tuned by unrolled hypergradients: the net-level hypergradient
against finite differences of real skorch training steps, the family through
HypergradSearchCV, and the errors for what stays unsupported."""

import copy

import numpy as np
import pytest
import torch
from scipy.stats import loguniform
from skorch.callbacks import LRScheduler

from skhypergrad import HypergradClassifier, HypergradSearchCV, PerLayer, PerParameter
from skhypergrad.bilevel import net_hypergradient
from skhypergrad.exceptions import InvalidHyperparameterError
from skhypergrad.families.learning_rate import LearningRateBinding
from skhypergrad.families.weight_decay import DecayBinding
from skhypergrad.utils._validation import InvalidParameterError

LR = loguniform(1e-3, 0.3)
DECAY = loguniform(1e-5, 1e-1)


def _search(net, space, **kwargs):
    kwargs.setdefault("cv", 2)
    kwargs.setdefault("random_state", 0)
    return HypergradSearchCV(net, space, **kwargs)


def _double_net(make_classifier, **kwargs):
    net = make_classifier(optimizer=torch.optim.SGD, **kwargs).initialize()
    net.module_.double()
    return net


def _batches(X, y, n, size, seed=0):
    rng = np.random.default_rng(seed)
    rows = [np.sort(rng.choice(len(X), size, replace=False)) for _ in range(n)]
    return [(torch.as_tensor(X[r]), torch.as_tensor(y[r]), r) for r in rows]


def _validation_after_steps(net, lr, batches, valid):
    """Real skorch / torch training steps with learning rate ``lr``."""
    net = copy.deepcopy(net)
    for group in net.optimizer_.param_groups:
        group["lr"] = lr
    net.module_.train()
    for X, y, _ in batches:
        net.optimizer_.zero_grad()
        net.get_loss(net.infer(X), y, X=X, training=True).backward()
        net.optimizer_.step()
    net.module_.eval()
    with torch.no_grad():
        X, y = valid
        return float(net.get_loss(net.infer(X), y, X=X, training=False))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_net_hypergradient_of_lr_matches_finite_differences_of_training(
    classification_data, make_classifier, momentum
):
    X, y = classification_data
    net = _double_net(
        make_classifier, optimizer__momentum=momentum, module__dropout=0.0
    )
    batches = _batches(X, y, 3, 32)
    valid = (torch.as_tensor(X[:40]), torch.as_tensor(y[:40]))
    lr, decay = 0.05, 1e-2
    bindings = [LearningRateBinding(net, "scalar"), DecayBinding(net, "scalar")]
    raw = [
        torch.tensor([np.log(lr)], dtype=torch.float64, requires_grad=True),
        torch.tensor([np.log(decay)], dtype=torch.float64, requires_grad=True),
    ]
    for binding, r in zip(bindings, raw):  # the values training uses
        binding.apply(r.detach().exp())

    grad, info = net_hypergradient(
        net,
        bindings,
        raw,
        lambda raw: [r.exp() for r in raw],
        batches[0][:2],
        valid,
        "exact",
        unroll_batches=batches,
    )

    eps = 1e-5
    expected = (
        _validation_after_steps(net, lr * np.exp(eps), batches, valid)
        - _validation_after_steps(net, lr * np.exp(-eps), batches, valid)
    ) / (2 * eps)  # per unit of log(lr)
    torch.testing.assert_close(float(grad[0]), expected, rtol=1e-4, atol=1e-8)
    # The decay's implicit hypergradient is the one computed without the rate.
    alone, _ = net_hypergradient(
        net,
        bindings[1:],
        raw[1:],
        lambda r: [r[0].exp()],
        batches[0][:2],
        valid,
        "exact",
    )
    torch.testing.assert_close(grad[1], alone[0])
    assert info.solve.method == "exact"


def test_search_tunes_lr_within_its_range_and_refits_with_it(
    classification_data, make_classifier
):
    X, y = classification_data
    search = _search(make_classifier(), {"lr": LR}, unroll_steps=2).fit(X, y)

    lr = search.best_params_["lr"]
    assert 1e-3 <= lr <= 0.3
    assert lr != pytest.approx(LR.ppf(0.5), rel=1e-3)  # it moved off the centre
    assert len(search.path_["lr"]) > 0
    assert search.path_["solver_iter"][0] == 2  # the unrolled steps
    assert search.best_estimator_.optimizer_.param_groups[0]["lr"] == lr


def test_per_layer_rates_refit_through_param_groups_merged_with_decay(
    classification_data, make_classifier
):
    X, y = classification_data
    space = {"lr": PerLayer(LR), "optimizer__weight_decay": PerLayer(DECAY)}
    search = _search(make_classifier(optimizer=torch.optim.SGD), space).fit(X, y)

    groups = search.best_params_["optimizer__param_groups"]
    assert [name for name, _ in groups] == [
        "hidden.weight",
        "hidden.bias",
        "output.weight",
        "output.bias",
    ]
    assert all(set(options) == {"lr", "weight_decay"} for _, options in groups)
    assert groups[0][1]["lr"] == groups[1][1]["lr"]  # one rate per layer
    fitted = search.best_estimator_.optimizer_.param_groups
    assert [g["lr"] for g in fitted] == [o["lr"] for _, o in groups]
    assert [g["weight_decay"] for g in fitted] == [o["weight_decay"] for _, o in groups]


def test_same_random_state_gives_the_same_path(classification_data, make_classifier):
    X, y = classification_data
    space = {"optimizer__lr": LR, "optimizer__weight_decay": DECAY}

    paths = [_search(make_classifier(), space).fit(X, y).path_ for _ in range(2)]

    assert paths[0]["optimizer__lr"] == paths[1]["optimizer__lr"]
    assert paths[0]["optimizer__weight_decay"] == paths[1]["optimizer__weight_decay"]


def test_single_training_tunes_lr(classification_data, make_classifier):
    X, y = classification_data
    model = HypergradClassifier(
        make_classifier(optimizer=torch.optim.SGD), {"lr": LR}, random_state=0
    ).fit(X, y)
    assert 1e-3 <= model.best_params_["lr"] <= 0.3


@pytest.mark.parametrize(
    ("net_kwargs", "space", "match"),
    [
        ({"optimizer": torch.optim.RMSprop}, {"lr": LR}, "SGD, Adam and AdamW"),
        ({}, {"lr": PerParameter(LR)}, "PerLayer"),
        (
            {"callbacks": [("sched", LRScheduler())]},
            {"lr": LR},
            "LRScheduler",
        ),
        ({"callbacks": [("sched", LRScheduler)]}, {"lr": LR}, "LRScheduler"),
        ({"optimizer__lr": 0.05}, {"lr": LR}, "Tune optimizer__lr instead"),
        (
            {"optimizer__param_groups": [("output.*", {"lr": 0.1})]},
            {"lr": PerLayer(LR)},
            "optimizer__param_groups",
        ),
    ],
)
def test_what_cannot_be_unrolled_is_refused_clearly(
    classification_data, make_classifier, net_kwargs, space, match
):
    with pytest.raises(InvalidHyperparameterError, match=match):
        _search(make_classifier(**net_kwargs), space).fit(*classification_data)


def test_unroll_steps_is_validated(classification_data, make_classifier):
    with pytest.raises(InvalidParameterError, match="unroll_steps"):
        _search(make_classifier(), {"lr": LR}, unroll_steps=0).fit(*classification_data)


def test_lists_of_lr_stay_a_grid(classification_data, make_classifier):
    X, y = classification_data
    search = _search(
        make_classifier(), {"lr": [0.01, 0.02], "optimizer__weight_decay": DECAY}
    ).fit(X, y)
    assert sorted(p["lr"] for p in search.cv_results_["params"]) == [0.01, 0.02]
