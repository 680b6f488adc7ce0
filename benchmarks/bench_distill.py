"""Dataset distillation on digits: distilled rows against real rows and class means.

``DatasetDistiller`` learns k synthetic rows per class on the training part of
sklearn's digits (pixels scaled to [0, 1], stratified 70/30 split, seed 0).
Every training set of k rows per class is then judged by the test accuracy of
fresh networks (new random initialisations, ``--nets`` seeds) of the same
architecture (``_common.MLP``: 64-128-10, one ReLU hidden layer, no dropout),
each a skorch ``NeuralNetClassifier`` trained on the small set, full batch, in
two ways:

- ``gd``: plain gradient descent for ``inner_steps`` (20) epochs, the training
  the rows were distilled for. The distilled rows use their learned step size
  ``inner_lr_``; every other set uses the best step size of
  {0.1, 0.3, 1, 3} chosen on the test accuracy itself (generous to them).
- ``adam``: Adam, lr 0.01, 300 epochs, the same for every set.

The sets: the distilled rows (one distillation per seed, ``--seeds``, timed);
k random real rows per class (one draw per seed); the per-class mean images
(k = 1; the same 10 rows at every k); and at k = 10 the per-class k-means
centroids (one clustering per seed). A net trained on all the training rows
(Adam, lr 0.001, batch 128, 30 epochs) gives the ceiling. Figures: for each set
and seed the mean over the fresh nets, then mean ± standard error and median
over the seeds (over the nets for the class means, a single set).

Run: ``python benchmarks/bench_distill.py`` (k = 1 and 10, 5 seeds, 5 nets;
five to eight minutes on two cores) or ``--quick`` (k = 1, 2 seeds, 3 nets,
200 outer steps; under a minute). ``--threads`` (default 1) fixes
``torch.set_num_threads``. Prints markdown tables and saves
``benchmarks/results/distill[_quick].json``.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from _common import MLP, save, timed, warm_up
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import DatasetDistiller

GD_STEPS = 20  # DatasetDistiller's default inner_steps
GD_LRS = (0.1, 0.3, 1.0, 3.0)  # step sizes tried for the sets not distilled
MODULE = {"module__hidden": 128, "module__n_hidden": 1, "module__dropout": 0.0}


def load():
    """Digits scaled to [0, 1], stratified 70/30 split (seed 0), float32."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    return X_tr, y_tr, X_te, y_te


def make_net(protocol, lr=None, seed=0):
    """A fresh skorch net: ``gd`` (SGD, 20 full-batch epochs) or ``adam``."""
    if protocol == "gd":
        options = {"optimizer": torch.optim.SGD, "lr": lr, "max_epochs": GD_STEPS}
    elif protocol == "adam":
        options = {"optimizer": torch.optim.Adam, "lr": 0.01, "max_epochs": 300}
    else:  # all the training rows
        options = {"optimizer": torch.optim.Adam, "lr": 1e-3, "max_epochs": 30}
    return NeuralNetClassifier(
        MLP,
        **MODULE,
        criterion=nn.CrossEntropyLoss,
        batch_size=128 if protocol == "full" else -1,
        train_split=None,
        verbose=0,
        **options,
    )


def accuracy(X_set, y_set, data, protocol, lr, nets):
    """Test accuracy of ``nets`` fresh nets trained on ``(X_set, y_set)``."""
    _, _, X_te, y_te = data
    scores = []
    for seed in range(nets):
        torch.manual_seed(1000 + seed)
        net = make_net(protocol, lr).fit(X_set.astype(np.float32), y_set)
        scores.append(float((net.predict(X_te) == y_te).mean()))
    return scores


def random_rows(data, k, seed):
    X_tr, y_tr, _, _ = data
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(y_tr == c), k, replace=False) for c in range(10)]
    index = np.concatenate(picks)
    return X_tr[index], y_tr[index]


def class_means(data):
    X_tr, y_tr, _, _ = data
    return np.stack([X_tr[y_tr == c].mean(0) for c in range(10)]), np.arange(10)


def kmeans_rows(data, k, seed):
    X_tr, y_tr, _, _ = data
    centres = [
        KMeans(k, n_init=3, random_state=seed).fit(X_tr[y_tr == c]).cluster_centers_
        for c in range(10)
    ]
    return np.concatenate(centres), np.repeat(np.arange(10), k)


def distil(data, k, seed, max_iter):
    X_tr, y_tr, _, _ = data
    net = make_net("gd", lr=0.1)  # DatasetDistiller reuses module and criterion
    distiller = DatasetDistiller(
        net, n_per_class=k, max_iter=max_iter, random_state=seed
    )
    (X_set, y_set), seconds = timed(distiller.fit_resample, X_tr, y_tr)
    return X_set, y_set, distiller.inner_lr_, seconds


def evaluate_sets(sets, data, nets, lr=None):
    """Per protocol: one mean accuracy per set; ``gd`` at ``lr`` or the best of
    ``GD_LRS`` (the same step size for every set of a kind)."""
    out = {"adam": [np.mean(accuracy(X, y, data, "adam", None, nets)) for X, y in sets]}
    if lr is not None:
        out["gd"] = [np.mean(accuracy(X, y, data, "gd", lr, nets)) for X, y in sets]
        out["gd_lr"] = lr
        return out
    best = None
    for step in GD_LRS:
        scores = [np.mean(accuracy(X, y, data, "gd", step, nets)) for X, y in sets]
        if best is None or np.mean(scores) > np.mean(best[1]):
            best = (step, scores)
    out["gd_lr"], out["gd"] = best
    return out


def run_k(data, k, seeds, nets, max_iter):
    rows = {}
    distilled = [distil(data, k, seed, max_iter) for seed in range(seeds)]
    for (_, _, lr, seconds), seed in zip(distilled, range(seeds)):
        print(f"  k={k} seed {seed}: distilled in {seconds:.1f}s, inner_lr_={lr:.3f}")
    mean_acc = lambda d, protocol, lr: np.mean(  # noqa: E731
        accuracy(d[0], d[1], data, protocol, lr, nets)
    )
    rows["distilled"] = {
        "adam": [mean_acc(d, "adam", None) for d in distilled],
        "gd": [mean_acc(d, "gd", d[2]) for d in distilled],
        "gd_lr": [lr for _, _, lr, _ in distilled],
        "seconds": [s for _, _, _, s in distilled],
    }
    rows["random real"] = evaluate_sets(
        [random_rows(data, k, seed) for seed in range(seeds)], data, nets
    )
    means = evaluate_sets([class_means(data)], data, nets)
    # One set: spread over the fresh nets instead of over seeds.
    X_m, y_m = class_means(data)
    means["adam"] = accuracy(X_m, y_m, data, "adam", None, nets)
    means["gd"] = accuracy(X_m, y_m, data, "gd", means["gd_lr"], nets)
    rows["class means"] = means
    if k > 1:
        rows["k-means centroids"] = evaluate_sets(
            [kmeans_rows(data, k, seed) for seed in range(seeds)], data, nets
        )
    return rows


def stats(values):
    values = [float(v) for v in values]
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return statistics.fmean(values), se, statistics.median(values)


def table(k, rows):
    lines = [
        f"k = {k} per class ({10 * k} rows)",
        "",
        "| set | gd: mean ± SE | gd: median | gd step | adam: mean ± SE "
        "| adam: median | distil time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        gd, adam = stats(row["gd"]), stats(row["adam"])
        lr = row["gd_lr"]
        lr = f"{np.median(lr):.2f} (learned)" if isinstance(lr, list) else f"{lr:g}"
        time = f"{stats(row['seconds'])[0]:.1f}" if "seconds" in row else ""
        lines.append(
            f"| {name} | {gd[0]:.4f} ± {gd[1]:.4f} | {gd[2]:.4f} | {lr} "
            f"| {adam[0]:.4f} ± {adam[1]:.4f} | {adam[2]:.4f} | {time} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--nets", type=int, default=None)
    parser.add_argument("--max-iter", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds or (2 if args.quick else 5)
    nets = args.nets or (3 if args.quick else 5)
    max_iter = args.max_iter or (200 if args.quick else 500)
    ks = (1,) if args.quick else (1, 10)
    warm_up()
    data = load()
    X_tr, y_tr, X_te, y_te = data
    full = accuracy(X_tr, y_tr, data, "full", None, nets)
    print(f"all {len(X_tr)} training rows: test accuracy {np.mean(full):.4f}")
    results = {}
    for k in ks:
        results[k] = run_k(data, k, seeds, nets, max_iter)
        print(table(k, results[k]), "\n", flush=True)
    name = "distill_quick" if args.quick else "distill"
    payload = {
        "settings": {"seeds": seeds, "nets": nets, "max_iter": max_iter, "ks": ks},
        "all_rows_accuracy": full,
        "results": {str(k): rows for k, rows in results.items()},
    }
    print("saved", save(name, payload))


if __name__ == "__main__":
    main()
