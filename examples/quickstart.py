"""Quick start: tune weight decay and dropout of a skorch MLP on digits.

HypergradSearchCV (about one training per CV split) next to GridSearchCV over
a 6 x 3 grid of the same two hyperparameters with the same ``cv``.

Run: ``python examples/quickstart.py`` (about a minute on two CPU cores;
``--no-grid`` skips GridSearchCV).
"""

import argparse
import time

import numpy as np
import torch
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV


class MLP(nn.Module):
    """Two hidden ReLU layers, each followed by dropout."""

    def __init__(self, n_features=64, n_classes=10, hidden=128, dropout=0.5):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.layers(X)


def make_pipeline(max_epochs):
    net = NeuralNetClassifier(
        MLP,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=max_epochs,
        batch_size=128,
        train_split=None,
        verbose=0,
    )
    return Pipeline([("scale", StandardScaler()), ("net", net)])


def report(name, search, X_test, y_test, seconds):
    params = {
        k.split("__", 1)[1]: round(float(np.mean(v)), 6)
        for k, v in search.best_params_.items()
    }
    accuracy = search.score(X_test, y_test)
    print(
        f"{name:<18} cv={search.best_score_:.4f} test={accuracy:.4f} "
        f"time={seconds:6.1f}s  {params}"
    )
    return accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-grid", action="store_true", help="skip GridSearchCV")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    pipe = make_pipeline(args.epochs)

    # Float64 X and int y go in as they are: the search casts them for skorch.
    # Both tuned by hypergradients within one training per split (wrap a range
    # in skhypergrad.Sampled to have it drawn by the outer search instead).
    space = {
        "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
        "net__module__dropout": uniform(0.0, 0.6),
    }
    search = HypergradSearchCV(pipe, space, cv=3, random_state=args.seed)
    start = time.perf_counter()
    search.fit(X_train, y_train)
    hyper_time = time.perf_counter() - start
    hyper_acc = report("HypergradSearchCV", search, X_test, y_test, hyper_time)

    if args.no_grid:
        return
    # GridSearchCV hands data to skorch unchanged, so cast it by hand.
    grid = GridSearchCV(
        pipe,
        {
            "net__optimizer__weight_decay": np.logspace(-6, -1, 6),
            "net__module__dropout": [0.0, 0.3, 0.6],
        },
        cv=3,
    )
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    grid.fit(X_train.astype(np.float32), y_train.astype(np.int64))
    grid_time = time.perf_counter() - start
    grid_acc = report(
        "GridSearchCV 6x3",
        grid,
        X_test.astype(np.float32),
        y_test.astype(np.int64),
        grid_time,
    )
    print(f"\ntest accuracy difference (hypergrad - grid): {hyper_acc - grid_acc:+.4f}")
    print(f"wall time ratio (hypergrad / grid): {hyper_time / grid_time:.3f}")


if __name__ == "__main__":
    main()
