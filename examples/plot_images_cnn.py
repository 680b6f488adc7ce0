"""
A convolutional net with BatchNorm on digit images
==================================================

skorch takes images as a 4-D float32 array ``(n, channels, height, width)``;
nothing changes for the search. Here a small CNN (two convolutions with
BatchNorm, dropout, a linear head) reads the 8×8 digit images of
:func:`sklearn.datasets.load_digits`. :class:`~skhypergrad.HypergradSearchCV`
tunes one weight decay per layer (``PerLayer``) and the dropout rate inside a
single candidate, and the result is compared with the same network untuned
(no decay, its default dropout rate) on held-out images.

Runs in about half a minute on two cores.
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer, plotting

torch.set_num_threads(2)
torch.manual_seed(0)


class DigitCNN(nn.Module):
    """Conv-BN-ReLU twice, max-pooling, dropout and a linear head."""

    def __init__(self, channels=8, dropout=0.25):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * 4 * 4, 10)
        )

    def forward(self, X):
        return self.head(self.features(X))


# %%
# Images as skorch takes them
# ---------------------------
# The 64 pixel values of each digit become one 8×8 channel, scaled to [0, 1].
# The search casts float64 input to float32 itself; the untuned net below is
# plain skorch, so the array is cast once here for both.

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
print(f"train images {X_train.shape}, test images {X_test.shape}")

net = NeuralNetClassifier(
    DigitCNN,
    criterion=nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=3e-3,
    max_epochs=10,
    batch_size=64,
    train_split=None,
    verbose=0,
)

# %%
# The untuned net
# ---------------

start = time.perf_counter()
untuned = clone(net).fit(X_train, y_train)
untuned_seconds = time.perf_counter() - start
untuned_accuracy = untuned.score(X_test, y_test)

# %%
# The search
# ----------
# One candidate: its three CV splits train one CNN apiece while the decay of
# each of the five layers that own weights (two convolutions, two BatchNorms,
# the head) and the dropout rate follow their hypergradients.

space = {
    "optimizer__weight_decay": PerLayer(loguniform(1e-6, 1e-1)),
    "module__dropout": uniform(0.0, 0.6),
}
search = HypergradSearchCV(net, space, cv=3, random_state=0)
start = time.perf_counter()
search.fit(X_train, y_train)
search_seconds = time.perf_counter() - start

decays = {
    name: options["weight_decay"]
    for name, options in search.best_params_["optimizer__param_groups"]
    if name.endswith("weight")
}
print(f"tuned dropout rate {search.best_params_['module__dropout']:.3f}")
for name, decay in decays.items():
    print(f"  weight decay of {name:<20} {decay:.2e}")
print(f"reported values: {search.cv_results_['reported_values'][0]}")
print()
print(f"{'':24}{'test accuracy':>14}{'seconds':>10}")
print(f"{'untuned net':24}{untuned_accuracy:>14.3f}{untuned_seconds:>10.1f}")
print(
    f"{'HypergradSearchCV':24}{search.score(X_test, y_test):>14.3f}"
    f"{search_seconds:>10.1f}"
)

# %%
# The pictures
# ------------
# Left, the tuned values per hyper-step with the validation loss; right, the
# weight decay of each layer.

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
plotting.plot_path(search, ax=axes[0])
plotting.plot_layer_decays(search, ax=axes[1])
axes[0].set_title("tuned values per hyper-step")
axes[1].set_title("weight decay per layer")
plt.show()
