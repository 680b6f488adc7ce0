"""
Look at a fitted search
=======================

A mixed search on digits: the learning rate as a grid of two values, one
weight decay per layer and the dropout rate tuned by hypergradients inside
each candidate. :mod:`skhypergrad.plotting` then draws the tuned values per
hyper-step, the candidates of the outer grid, and the decay of each layer.
Runs in about 15 seconds on two cores.

Run as a script: ``python examples/plot_search.py [--out search.png]`` (shows
the figure, or saves it with ``--out``).
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import torch
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer, plotting

torch.set_num_threads(2)


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


# %%
# The search
# ----------
# Two values of ``lr`` make two candidates; in each, the three CV splits train
# one network apiece while the per-layer decay and the dropout rate follow
# their hypergradients.

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
    "net__module__dropout": uniform(0.0, 0.6),  # tuned by hypergradients too
}
search = HypergradSearchCV(pipe, space, cv=3, random_state=0).fit(X, y)
print(f"best CV accuracy {search.best_score_:.3f}")
print("best lr", search.best_params_["net__lr"])
print("dropout", round(search.best_params_["net__module__dropout"], 3))

# %%
# The pictures
# ------------
# Left, the tuned values of the best candidate per hyper-step (the geometric
# mean of the layer decays) with the validation loss; middle, the mean CV
# score of each candidate; right, the tuned decay of each layer.

# Constrained layout keeps every label, the loss axis' included, in the figure.
fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
plotting.plot_path(search, ax=axes[0])
plotting.plot_candidates(search, ax=axes[1])
plotting.plot_layer_decays(search, ax=axes[2])
axes[0].set_title("tuned values per hyper-step (best row)")
axes[1].set_title("candidates of the outer grid")
axes[2].set_title("weight decay per layer")

# %%
# Run as a script, save the figure with ``--out`` or show it.

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Look at a fitted search.")
    parser.add_argument("--out", default=None, help="save the figure here")
    args, _ = parser.parse_known_args()
    if args.out:
        fig.savefig(args.out, dpi=80)
        print(f"saved {args.out}")
    else:
        plt.show()
