"""
Distil digits into ten images
=============================

:class:`~skhypergrad.DatasetDistiller` learns one synthetic image per class
from the 1257 training images of scikit-learn's digits, so that a fresh
network trained on those ten images recognises the held-out digits. Fresh
networks trained on the distilled images are compared with the same networks
trained on one random real image per class and on the per-class mean images.
Runs in about half a minute on two cores.

Run as a script: ``python examples/plot_distillation.py [--out distil.png]``
(shows the figure, or saves it with ``--out``).
"""

from __future__ import annotations

import argparse

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import DatasetDistiller

torch.set_num_threads(1)  # tiny tensors: one thread is fastest


class MLP(nn.Module):
    """One hidden layer of 128 ReLU units."""

    def __init__(self, hidden=128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, X):
        return self.layers(X)


# %%
# Distil
# ------
# Pixels scaled to [0, 1], a stratified 70/30 split. The distiller reuses the
# net's module and criterion: each of its 500 outer steps trains a freshly
# initialised MLP for 20 gradient steps on the ten synthetic images and moves
# the images along the gradient of that network's loss on real images.

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
net = NeuralNetClassifier(MLP, criterion=nn.CrossEntropyLoss, verbose=0)
distiller = DatasetDistiller(net, n_per_class=1, random_state=0)
X_distilled, y_distilled = distiller.fit_resample(X_train, y_train)
print(f"{len(X_distilled)} images, labels {y_distilled.tolist()}")
print(f"learned inner step size {distiller.inner_lr_:.3f}")

# %%
# Train fresh networks on ten images
# ----------------------------------
# Three new initialisations per training set, each trained by Adam (lr 0.01,
# 300 full-batch epochs); the test accuracy is their mean. The random real
# images are those the distillation started from (``max_iter=0``).

X_start, _ = DatasetDistiller(net, max_iter=0, random_state=0).fit_resample(
    X_train, y_train
)
means = np.stack([X_train[y_train == c].mean(0) for c in range(10)])


def fresh_accuracy(X_small, y_small, n_nets=3):
    """Mean test accuracy of fresh nets trained on ``(X_small, y_small)``."""
    scores = []
    for seed in range(n_nets):
        torch.manual_seed(seed)
        fresh = NeuralNetClassifier(
            MLP,
            criterion=nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=0.01,
            max_epochs=300,
            batch_size=-1,
            train_split=None,
            verbose=0,
        ).fit(X_small, y_small)
        scores.append((fresh.predict(X_test) == y_test).mean())
    return float(np.mean(scores))


sets = {
    "random real": X_start,
    "class means": means,
    "distilled": X_distilled,
}
for name, X_small in sets.items():
    acc = fresh_accuracy(X_small.astype(np.float32), np.arange(10))
    print(f"{name:>12}: test accuracy {acc:.3f}")

# %%
# The images
# ----------
# Top, the real images the distillation started from; middle, the class
# means; bottom, the distilled images (each image on its own grey scale: the
# distilled pixels leave [0, 1]). Distillation keeps the digit's shape and
# adds the strokes that separate it from its neighbours.

fig, axes = plt.subplots(3, 10, figsize=(10, 3.4))
for row, (name, X_small) in enumerate(sets.items()):
    for c in range(10):
        ax = axes[row, c]
        ax.imshow(X_small[c].reshape(8, 8), cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(str(c))
    axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.tight_layout()

# %%
# Run as a script, save the figure with ``--out`` or show it.

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Distil digits into ten images.")
    parser.add_argument("--out", default=None, help="save the figure here")
    args, _ = parser.parse_known_args()
    if args.out:
        fig.savefig(args.out, dpi=80)
        print(f"saved {args.out}")
    else:
        plt.show()
