"""
Per-example weights find mislabelled digits
===========================================

40% of the training labels of digits are replaced by another class at
random. A network trained long enough learns the wrong labels too; one weight
per training example, tuned by hypergradients on the validation loss, learns
to ignore them (the "learning to reweight" idea of Ren et al., 2018, with the
implicit hypergradient of Lorraine et al., 2020).

The validation loss must be worth following: with noisy validation labels too
its cross-entropy rewards a network that hedges between classes as the noisy
labels do, and the weights learn little (the last section measures it). So
the validation rows here are a small trusted set, 250 rows whose labels were
checked, given to the search as a :class:`~sklearn.model_selection.PredefinedSplit`;
the other training rows are noisy.

Compared, on the clean test set: the net trained on every row as it is, the
best weight decay of a ``GridSearchCV`` on the same split, the per-example
weights of ``HypergradSearchCV``, and an oracle trained on the clean rows
only. The learned weights are also scored as a detector of replaced labels
(ROC AUC). Runs in under a minute on two cores.

Run as a script: ``python examples/plot_noisy_labels.py [--out noisy.png]``.
"""

from __future__ import annotations

import argparse
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    PredefinedSplit,
    StratifiedKFold,
    train_test_split,
)
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerSample, SampleWeight

torch.set_num_threads(2)
NOISE, N_TRUSTED = 0.4, 250
SPACE = {"callbacks__weights__weight": PerSample(loguniform(1e-3, 1.0))}
# A hyper-step after every epoch, on 512 training rows at a time.
HYPER = {
    "hyper_optimizer__batch_size": 512,
    "hyper_optimizer__lr": 0.1,
    "hyper_optimizer__warmup": 1,
}


def noisy_digits(seed):
    """Digits scaled to [0, 1]; a clean test set; noisy training labels but
    for ``N_TRUSTED`` trusted rows."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X, X_test, y, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    rng = np.random.default_rng(seed)
    trusted = np.zeros(len(y), dtype=bool)
    trusted[rng.choice(len(y), N_TRUSTED, replace=False)] = True
    replaced = (rng.random(len(y)) < NOISE) & ~trusted
    y_noisy = y.copy()
    y_noisy[replaced] = (y[replaced] + rng.integers(1, 10, replaced.sum())) % 10
    return X, y_noisy, X_test, y_test, trusted, replaced


class MLP(nn.Module):
    """One hidden layer of 128 ReLU units."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, X):
        return self.layers(X)


def make_net(seed):
    """An MLP trained for 100 epochs with Adam: long enough to learn noise."""
    torch.manual_seed(seed)
    return NeuralNetClassifier(
        MLP,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=64,
        max_epochs=100,
        train_split=None,
        verbose=0,
        callbacks=[("weights", SampleWeight())],
    )


def compare(seed=0):
    """Test accuracy, ROC AUC of the weights and time of every approach."""
    X, y, X_test, y_test, trusted, replaced = noisy_digits(seed)
    trusted_split = PredefinedSplit(np.where(trusted, 0, -1))
    net = make_net(seed)
    rows, start = {}, time.perf_counter()

    def record(name, model, weights=None):
        elapsed = time.perf_counter() - start
        rows[name] = {
            "test_accuracy": float(np.mean(model.predict(X_test) == y_test)),
            # Replaced rows should get the low weights: score clean as positive.
            "auc": None
            if weights is None
            else float(roc_auc_score(~replaced[~trusted], weights[~trusted])),
            "time_s": elapsed,
            # A search's score on its validation rows (optimistic, see below).
            "cv_score": float(getattr(model, "best_score_", np.nan)),
        }

    record("untuned net", clone(net).fit(X, y))
    start = time.perf_counter()
    grid = GridSearchCV(
        net,
        {"optimizer__weight_decay": [0.0, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1]},
        cv=trusted_split,
    ).fit(X, y)
    record("weight decay, GridSearchCV", grid)
    start = time.perf_counter()
    search = HypergradSearchCV(
        net, SPACE, cv=trusted_split, random_state=seed, **HYPER
    ).fit(X, y)
    weights = search.best_params_["callbacks__weights__weight"]
    record("per-example weights", search, weights)
    start = time.perf_counter()
    # Without a trusted set: 3-fold CV on the noisy rows only.
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    noisy_cv = HypergradSearchCV(net, SPACE, cv=cv, random_state=seed, **HYPER)
    noisy_cv.fit(X[~trusted], y[~trusted])
    noisy_weights = np.ones(len(y))
    noisy_weights[~trusted] = noisy_cv.best_params_["callbacks__weights__weight"]
    record("per-example weights, noisy CV", noisy_cv, noisy_weights)
    start = time.perf_counter()
    record("oracle: clean rows only", clone(net).fit(X[~replaced], y[~replaced]))
    return rows, weights, trusted, replaced


# %%
# Run the comparison
# ------------------
# (The ``__main__`` guards let ``benchmarks/bench_noisy_labels.py`` import
# ``compare`` without running the example.)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Per-example weights on noisy digits.")
    parser.add_argument("--out", help="save the figure here instead of showing it")
    args, _ = parser.parse_known_args()

    rows, weights, trusted, replaced = compare(seed=0)
    print(f"{'':32s} {'test acc':>8s} {'ROC AUC':>8s} {'time':>7s}")
    for name, row in rows.items():
        auc = "" if row["auc"] is None else f"{row['auc']:.3f}"
        print(f"{name:32s} {row['test_accuracy']:8.3f} {auc:>8s} {row['time_s']:6.1f}s")

# %%
# The learned weights
# -------------------
# Left: the weights of the clean and of the replaced training rows (the
# trusted rows are the validation split and keep the mean weight, 1).
# Right: test accuracy of each approach. With noisy validation labels (the
# "noisy CV" row) the weights do not find the replaced rows: validate on rows
# whose labels you trust.

if __name__ == "__main__":
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.logspace(np.log10(weights.min()), np.log10(weights.max()), 40)
    left.hist(weights[~trusted & ~replaced], bins=bins, alpha=0.7, label="clean")
    left.hist(weights[replaced], bins=bins, alpha=0.7, label="label replaced")
    left.set_xscale("log")
    left.set_xlabel("learned weight (mean 1)")
    left.set_ylabel("training rows")
    left.set_title(f"ROC AUC {rows['per-example weights']['auc']:.3f}")
    left.legend()
    names = list(rows)
    right.barh(names, [rows[n]["test_accuracy"] for n in names])
    right.set_xlim(0.75, 1.0)
    right.set_xlabel("test accuracy (clean labels)")
    right.invert_yaxis()
    fig.tight_layout()
    if args.out:
        fig.savefig(args.out, dpi=120)
    else:
        plt.show()
