"""Convolutional nets on images: layers the user holds in eval mode stay there,
the train/eval modes are given back after a hyper-step, and every family that
makes sense for a CNN tunes a Conv2d + BatchNorm + dropout net on 4-D digit
images, in a search and in the single fit."""

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from torch import nn

from skhypergrad import (
    HypergradClassifier,
    HypergradSearchCV,
    InputNoise,
    PerLayer,
)
from skhypergrad.bilevel import module_hypergradient
from skhypergrad.families import Binding
from skhypergrad.hypergrad import OuterOptimizer
from skhypergrad.net import RelaxedDropout, relax_dropout

N_IMAGES = 240
EPOCHS = 4
DECAY = loguniform(1e-5, 1e-1)


class NoStep(torch.optim.Optimizer):
    """Takes no step: the hyper-steps run, the values never move."""

    def __init__(self, params, lr=1.0):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):  # noqa: D102
        return None


class Probe(nn.Module):
    """The identity, recording the mode of every forward pass through it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):  # noqa: D102
        self.seen.append(self.training)
        return x


class FrozenStemCNN(nn.Module):
    """A frozen, "pretrained" Conv2d + BatchNorm2d stem and a trainable head.

    The stem is held in eval mode the usual way (``train`` overridden), so
    its BatchNorm normalises with its stored statistics and never updates them.
    """

    def __init__(self, dropout=0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), Probe()
        )
        with torch.no_grad():  # "pretrained": fixed weights and statistics
            generator = torch.Generator().manual_seed(0)
            for tensor in self.stem.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        for param in self.stem.parameters():
            param.requires_grad_(False)
        self.head = nn.Sequential(
            nn.Conv2d(4, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            Probe(),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 10),
        )
        self.stem.eval()

    def train(self, mode=True):  # noqa: D102
        super().train(mode)
        self.stem.eval()
        return self

    def forward(self, X):  # noqa: D102
        return self.head(self.stem(X))


class ImageCNN(nn.Module):
    """Conv2d, BatchNorm2d, ReLU and (channel) dropout on (n, 1, 8, 8) images."""

    def __init__(self, dropout=0.2, channel_dropout=False):
        super().__init__()
        drop = nn.Dropout2d(dropout) if channel_dropout else nn.Dropout(dropout)
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            drop,
            nn.Flatten(),
            nn.Linear(8 * 8 * 8, 10),
        )

    def forward(self, X):  # noqa: D102
        return self.body(X)


class Modes(Callback):
    """Records the mode of every submodule at skorch's epoch and train events."""

    def initialize(self):  # noqa: D102
        self.log_ = []
        return self

    def _record(self, net, event):
        self.log_.append((event, [m.training for m in net.module_.modules()]))

    def on_train_begin(self, net, **kwargs):  # noqa: D102
        self._record(net, "train_begin")

    def on_epoch_begin(self, net, **kwargs):  # noqa: D102
        self._record(net, "epoch_begin")

    def on_epoch_end(self, net, **kwargs):  # noqa: D102
        self._record(net, "epoch_end")

    def on_train_end(self, net, **kwargs):  # noqa: D102
        self._record(net, "train_end")


class Decay(Binding):
    """A scalar L2 term, for calling the hypergradient directly."""

    def inner_term(self, value, params):  # noqa: D102
        return 0.5 * value.reshape(()) * sum((p**2).sum() for p in params)


def _digits(n=N_IMAGES):
    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16).astype(np.float32).reshape(-1, 1, 8, 8), y[:n]


def _net(module=ImageCNN, **overrides):
    kwargs = {
        "criterion": nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.01,
        "max_epochs": EPOCHS,
        "batch_size": 32,
        "train_split": None,
        "verbose": 0,
    }
    kwargs.update(overrides)
    return NeuralNetClassifier(module, **kwargs)


def test_a_frozen_block_stays_in_eval_mode_through_tuning_and_hyper_steps():
    X, y = _digits()
    space = {
        "optimizer__weight_decay": PerLayer(DECAY),
        "module__dropout": uniform(0.0, 0.5),
    }
    start = FrozenStemCNN().stem.state_dict()
    tuning = HypergradClassifier(
        _net(FrozenStemCNN), space, rescore=False, random_state=0
    ).fit(X, y)

    module = tuning.best_estimator_.module_
    assert len(tuning.path_["epoch"]) == EPOCHS - 1  # hyper-steps ran
    stem_probe, head_probe = module.stem[3], module.head[3]
    # Every forward pass through the stem (training batches, the hyper-steps'
    # training and validation losses, scoring) ran in eval mode; the head's
    # ran in both modes.
    assert stem_probe.seen
    assert not any(stem_probe.seen)
    assert set(head_probe.seen) == {True, False}
    assert not any(m.training for m in module.stem.modules())
    # Frozen weights and stored statistics unchanged, none tracked.
    for name, value in module.stem.state_dict().items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0, msg=name)
    # The per-layer decay covers the trainable layers only (head: 3 layers).
    groups = tuning.best_params_["optimizer__param_groups"]
    assert [name for name, _ in groups] == [
        n for n, p in module.named_parameters() if p.requires_grad
    ]
    assert all(name.startswith("head.") for name, _ in groups)
    assert tuning.score(X, y) > 0.5


@pytest.mark.parametrize("before", ["eval", "train", "mixed"])
def test_a_hypergradient_gives_every_submodule_its_mode_back(before):
    X, y = _digits(64)
    net = _net(FrozenStemCNN, max_epochs=1).fit(X, y)
    module = net.module_
    if before == "eval":  # as skorch's validation pass leaves it
        module.eval()
    elif before == "train":
        module.train()
    else:  # a mode no train()/eval() call gives: only a restore keeps it
        module.train()
        module.head[4].eval()
    modes = [m.training for m in module.modules()]
    for probe in (module.stem[3], module.head[3]):
        probe.seen.clear()
    raw = [torch.tensor([-6.0], dtype=torch.float64, requires_grad=True)]

    grad, _ = module_hypergradient(
        module,
        net.infer,
        lambda out, yb, Xb, training: net.get_loss(out, yb, X=Xb, training=training),
        [Decay()],
        raw,
        lambda r: [torch.exp(r[0]).float()],
        (torch.as_tensor(X[:32]), torch.as_tensor(y[:32])),
        (torch.as_tensor(X[32:]), torch.as_tensor(y[32:])),
        "cg",
    )

    assert torch.isfinite(grad[0]).all()
    assert [m.training for m in module.modules()] == modes
    # The training loss ran the head in train mode, the stem as its module
    # holds it (eval); the validation loss ran everything in eval mode.
    assert not any(module.stem[3].seen)
    assert set(module.head[3].seen) == {True, False}


def test_modes_around_hyper_steps_are_plain_skorch_training_modes():
    X, y = _digits()
    space = {"optimizer__weight_decay": DECAY}
    # A callback of the user's: each split validates on its test part.
    frozen = OuterOptimizer(NoStep)
    tuning = HypergradClassifier(
        _net(FrozenStemCNN, callbacks=[("modes", Modes())]),
        space,
        hyper_optimizer=frozen,
        rescore=False,
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    n_valid = N_IMAGES // 4
    plain = _net(
        FrozenStemCNN,
        callbacks=[("modes", Modes())],
        train_split=predefined_split(Dataset(X[:n_valid], y[:n_valid])),
    ).fit(X[n_valid:], y[n_valid:])

    assert len(tuning.path_["epoch"]) > 0
    tuned_log = dict(tuning.best_estimator_.callbacks_)["modes"].log_
    plain_log = dict(plain.callbacks_)["modes"].log_
    assert tuned_log == plain_log
    assert [m.training for m in tuning.best_estimator_.module_.modules()] == [
        m.training for m in plain.module_.modules()
    ]


def test_relaxed_channel_dropout_drops_whole_channels():
    torch.manual_seed(0)
    layer = RelaxedDropout(0.5, temperature=1e-3, channelwise=True).train()
    out = layer(torch.ones(4, 6, 5, 5))

    # One mask value per image and channel: each channel map is constant,
    # nearly 0 or nearly 1 / (1 - p) = 2.
    flat = out.reshape(4, 6, -1)
    torch.testing.assert_close(flat, flat[..., :1].expand_as(flat))
    assert ((flat[..., 0] < 0.1) | (flat[..., 0] > 1.9)).all()
    assert layer.eval()(torch.ones(2, 3, 4, 4)).eq(1).all()
    # The search relaxes a Dropout2d as channel dropout, a Dropout elementwise.
    for channel_dropout in (True, False):
        module = ImageCNN(channel_dropout=channel_dropout)
        (relaxed,) = relax_dropout(module, ["body.3"], 0.1)
        assert module.body[3] is relaxed
        assert relaxed.channelwise is channel_dropout


def _families():
    noise = {"callbacks": [("noise", InputNoise())]}
    return {
        "weight_decay": ({"optimizer__weight_decay": DECAY}, {}),
        "per_layer_decay": ({"optimizer__weight_decay": PerLayer(DECAY)}, {}),
        "dropout": ({"module__dropout": uniform(0.0, 0.5)}, {}),
        "channel_dropout": (
            {"module__dropout": uniform(0.0, 0.5)},
            {"module__channel_dropout": True},
        ),
        "label_smoothing": ({"criterion__label_smoothing": uniform(0.0, 0.3)}, {}),
        "input_noise": ({"callbacks__noise__scale": loguniform(1e-3, 1.0)}, noise),
    }


FAMILIES = _families()


def _moved(path, name):
    values = np.asarray(path[name], dtype=float).reshape(len(path["epoch"]), -1)
    return bool(np.ptp(values, axis=0).max() > 0)


def _check_fitted(estimator, net, X, y):
    assert estimator.predict(X).shape == (len(X),)
    assert estimator.predict_proba(X).shape == (len(X), 10)
    assert estimator.score(X, y) > 0.5  # chance: 0.1
    # best_params_ are constants a plain skorch net takes.
    plain = clone(net).set_params(**estimator.best_params_).fit(X, y)
    assert plain.score(X, y) > 0.5


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_search_tunes_each_family_on_a_conv2d_batchnorm_net(family):
    X, y = _digits()
    space, net_params = FAMILIES[family]
    net = _net(**net_params)
    search = HypergradSearchCV(net, space, cv=2, rescore=False, random_state=0).fit(
        X, y
    )

    (name,) = space
    assert len(search.path_["epoch"]) == EPOCHS - 1
    assert _moved(search.path_, name)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    _check_fitted(search, net, X, y)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_single_fit_tunes_each_family_on_a_conv2d_batchnorm_net(family):
    X, y = _digits()
    space, net_params = FAMILIES[family]
    net = _net(**net_params)
    single = HypergradClassifier(net, space, random_state=0).fit(X, y)

    (name,) = space
    assert len(single.path_["epoch"]) == EPOCHS - 1
    assert _moved(single.path_, name)
    bn = single.best_estimator_.module_.body[1]
    assert torch.isfinite(bn.running_mean).all()
    assert torch.isfinite(bn.running_var).all()
    _check_fitted(single, net, X, y)
