"""A small CNN on digit images: HypergradSearchCV against a grid, Optuna and halving.

The 1797 8x8 images of ``sklearn.datasets.load_digits`` (shipped with
scikit-learn, nothing downloaded), upsampled to 16x16 by pixel repetition
(``--size 8`` keeps them), a CNN of two Conv2d + BatchNorm2d blocks, dropout
and a linear head (Adam, batch 64). Per seed, a stratified 70/30 train/test
split; every method searches weight decay (log range 1e-6..1e-1) and the
dropout rate (0..0.6) with ``cv=3`` on the training part and refits:

- ``untuned``: the net at decay 0 and its default rate 0.25, no search;
- ``GridSearchCV``: 6 decays x 3 rates (18 candidates; ``--grid 6`` for the
  6 decays at the default rate);
- ``Optuna``: TPE, as many trials as the grid has candidates, each scored by
  ``cross_val_score`` (a plain loop: optuna-integration's OptunaSearchCV is
  not installed here), then a refit of the best;
- ``HalvingRandomSearchCV``: as many sampled candidates, ``max_epochs`` as
  the resource, factor 3;
- ``HypergradSearchCV``: decay and rate tuned inside one candidate, scalar
  decay and ``PerLayer`` decay.

Prints test accuracy (mean ± standard error over seeds) and fit time against
the grid's. Run: ``python benchmarks/bench_cnn.py`` (5 seeds, 20 epochs) or
``--quick`` (1 seed, 3 epochs, 4 candidates, 240 8x8 images: a smoke run).
Saves ``benchmarks/results/cnn[_quick].json``. Run one benchmark at a time.
"""

from __future__ import annotations

import argparse
import math
import statistics
import warnings

import numpy as np
import torch
from _common import save, timed, warm_up
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer

DECAY = (1e-6, 1e-1)
RATE = (0.0, 0.6)
WD, DROP = "optimizer__weight_decay", "module__dropout"


class ImageCNN(nn.Module):
    """Two Conv2d-BatchNorm2d-ReLU-MaxPool blocks, dropout, a linear head.

    Parameters
    ----------
    size : int
        Height and width of the (1, size, size) images; a multiple of 4.
    channels : int
        Channels of the first block (the second has twice as many).
    n_classes : int
    dropout : float
    """

    def __init__(self, size=16, channels=8, n_classes=10, dropout=0.25):
        super().__init__()
        wide = 2 * channels
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, wide, 3, padding=1),
            nn.BatchNorm2d(wide),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(wide * (size // 4) ** 2, n_classes),
        )

    def forward(self, X):  # noqa: D102
        return self.head(self.features(X))


def cnn_net(size, epochs, *, channels=8, n_classes=10, lr=3e-3, batch_size=64):
    """A skorch classifier around :class:`ImageCNN` (Adam, no validation split)."""
    return NeuralNetClassifier(
        ImageCNN,
        module__size=size,
        module__channels=channels,
        module__n_classes=n_classes,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        verbose=0,
    )


def digit_images(size, n=None):
    """Digits as float32 (n, 1, size, size) in [0, 1] (``size``: 8 or 16)."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    if size != 8:
        X = X.repeat(size // 8, axis=2).repeat(size // 8, axis=3)
    if n is not None:
        X, y = X[:n], y[:n]
    return X, y


def grid_values(n_decays, n_rates):
    """Log-spaced decays and evenly spaced rates spanning the ranges."""
    decays = np.geomspace(*DECAY, n_decays).tolist()
    rates = np.linspace(RATE[0], 0.5, n_rates).tolist() if n_rates > 1 else [0.25]
    return decays, rates


def _optuna(net, X, y, n_trials, seed, cv):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        params = {
            WD: trial.suggest_float(WD, *DECAY, log=True),
            DROP: trial.suggest_float(DROP, *RATE),
        }
        model = clone(net).set_params(**params)
        return cross_val_score(model, X, y, cv=cv).mean()

    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return clone(net).set_params(**study.best_params).fit(X, y)


def methods(net, args, seed, cv):
    """``name -> fit(X, y) -> fitted estimator with .score``."""
    decays, rates = grid_values(
        6 if not args.quick else 2, 1 if args.grid == "6" else 3
    )
    if args.quick:
        rates = rates[:2]
    grid = {WD: decays, DROP: rates}
    n_candidates = len(decays) * len(rates)
    ranges = {WD: loguniform(*DECAY), DROP: uniform(RATE[0], RATE[1] - RATE[0])}
    per_layer = {WD: PerLayer(loguniform(*DECAY)), DROP: ranges[DROP]}
    epochs = net.max_epochs
    halving = HalvingRandomSearchCV(
        net,
        ranges,
        n_candidates=n_candidates,
        resource="max_epochs",
        min_resources=max(1, epochs // 9),
        max_resources=epochs,
        factor=3,
        cv=cv,
        random_state=seed,
    )
    return {
        "untuned": lambda X, y: clone(net).set_params(**{WD: 0.0}).fit(X, y),
        "GridSearchCV": GridSearchCV(net, grid, cv=cv).fit,
        "Optuna": lambda X, y: _optuna(net, X, y, n_candidates, seed, cv),
        "HalvingRandomSearchCV": halving.fit,
        "HypergradSearchCV": HypergradSearchCV(
            net, ranges, cv=cv, random_state=seed
        ).fit,
        "HypergradSearchCV, PerLayer": HypergradSearchCV(
            net, per_layer, cv=cv, random_state=seed
        ).fit,
    }


def run(args, seed):
    """Every method on one seed's split: rows of test accuracy and seconds."""
    X, y = digit_images(args.size, 240 if args.quick else None)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    net = cnn_net(args.size, args.epochs, channels=args.channels)
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    rows = []
    for name, fit in methods(net, args, seed, cv).items():
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted, seconds = timed(fit, X_tr, y_tr)
        row = {
            "search": name,
            "seed": seed,
            "test_accuracy": float(fitted.score(X_te, y_te)),
            "seconds": seconds,
        }
        if hasattr(fitted, "best_params_"):
            row["best_params"] = _printable(fitted.best_params_)
        rows.append(row)
        print(f"  seed {seed} {name:<28} {row['test_accuracy']:.3f} {seconds:7.1f}s")
    return rows


def _printable(params):
    out = {}
    for key, value in params.items():
        if key.endswith("param_groups"):
            value = {n: o["weight_decay"] for n, o in value}
        out[key] = value
    return out


def table(rows):
    """Markdown: accuracy mean ± standard error, seconds, time against the grid."""
    names = list(dict.fromkeys(r["search"] for r in rows))
    grid = statistics.fmean(r["seconds"] for r in rows if r["search"] == "GridSearchCV")
    lines = [
        "| method | test accuracy (mean ± SE) | seconds | time / grid |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        acc = [r["test_accuracy"] for r in rows if r["search"] == name]
        sec = statistics.fmean(r["seconds"] for r in rows if r["search"] == name)
        se = statistics.stdev(acc) / math.sqrt(len(acc)) if len(acc) > 1 else 0.0
        lines.append(
            f"| {name} | {statistics.fmean(acc):.3f} ± {se:.3f} | {sec:.1f} | "
            f"{sec / grid:.2f}x |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (quick 1)")
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (3)")
    parser.add_argument("--size", type=int, choices=(8, 16), default=16)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--grid", choices=("6", "6x3"), default="6x3")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.seeds = args.seeds or (1 if args.quick else 5)
    args.epochs = args.epochs or (3 if args.quick else 20)
    if args.quick:
        args.size = 8
    torch.set_num_threads(args.threads)
    warm_up()
    rows = []
    for seed in range(args.seeds):
        rows.extend(run(args, seed))
    print(table(rows))
    settings = {k: v for k, v in vars(args).items()}
    print(
        save("cnn_quick" if args.quick else "cnn", {"settings": settings, "rows": rows})
    )


if __name__ == "__main__":
    main()
