"""Look at a fitted search: tuned values per hyper-step, candidates, layer decays.

A mixed search on digits: the learning rate as a grid of two values, weight
decay per layer and the dropout rate tuned by hypergradients inside each
candidate. Runs in about 15 seconds on two cores and writes one figure.

Run: ``python examples/plot_search.py [--out search.png]``.
"""

from __future__ import annotations

import argparse

import matplotlib
import torch
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer, plotting


class MLP(nn.Module):
    """Two hidden layers with dropout."""

    def __init__(self, hidden=128, dropout=0.3):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, X):
        return self.layers(X)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="search.png")
    args = parser.parse_args()
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    torch.set_num_threads(2)
    X, y = load_digits(return_X_y=True)
    net = NeuralNetClassifier(
        MLP,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        max_epochs=15,
        train_split=None,
        verbose=0,
    )
    pipe = Pipeline([("scale", StandardScaler()), ("net", net)])
    space = {
        "net__lr": [1e-3, 3e-3],
        "net__optimizer__weight_decay": PerLayer(loguniform(1e-6, 1e-1)),
        "net__module__dropout": uniform(0.0, 0.6),
    }
    search = HypergradSearchCV(pipe, space, cv=3, random_state=0).fit(X, y)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    plotting.plot_path(search, ax=axes[0])
    plotting.plot_candidates(search, ax=axes[1])
    plotting.plot_layer_decays(search, ax=axes[2])
    axes[0].set_title("tuned values per hyper-step (best row)")
    axes[1].set_title("candidates of the outer grid")
    axes[2].set_title("weight decay per layer")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
