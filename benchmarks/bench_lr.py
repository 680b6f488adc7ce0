"""Learning rates tuned by unrolled hypergradients, against a fine grid of them.

(a) Digits (1797 rows, standardised), an MLP 64-64-64-10 trained by plain SGD
(batch 64, 20 epochs). Per seed, on the same 3 stratified folds:

- a fine grid: ``GridSearchCV`` over 16 learning rates log-spaced from 1e-3 to
  3, scored by the validation log-loss; its best rate and loss are the target;
- ``HypergradSearchCV`` tuning ``net__lr`` in ``loguniform(1e-3, 3)`` from the
  centre of the range (0.055), with ``unroll_steps`` K (1 = hypergradient
  descent); its tuned rate is then scored by the grid's protocol (the same
  folds and seed, a fresh training with that rate), so the two losses compare.

Reports tuned / best rate (target: within a factor of 2), the tuned rate's
validation loss relative to the grid's best (target: within 2%) and the wall
time relative to the grid.

(b) The cost of one hyper-step against K = 1, 2, 4, 8, 16: median wall time of
:func:`skhypergrad.bilevel.net_hypergradient` for a learning rate, and the
bytes the autograd graph saves (every tensor saved for backward, counted once
per storage), on the same data with a wider MLP (256 units), next to one
training epoch and the implicit hyper-step of a weight decay.

With ``--train-seeds R`` every loss of (a), the grid's and the tuned rate's,
is the mean over R trainings from different initialisations (the same R for
both): the grid's best is then not the luckiest of 16 single trainings.

Run: ``python benchmarks/bench_lr.py`` (seeds 0-2, K = 1, 4 and 16; about
5 minutes on one thread), ``--cost-only``, ``--seeds 1`` or ``--train-seeds 3``.
Saves ``benchmarks/results/lr.json`` (``lr_train3.json`` for ``--train-seeds 3``).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from _common import MLP, save, timed, warm_up
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV
from skhypergrad.bilevel import net_hypergradient, sample_batch
from skhypergrad.families.learning_rate import LearningRateBinding
from skhypergrad.families.weight_decay import DecayBinding

LRS = np.geomspace(1e-3, 3.0, 16).tolist()
EPOCHS = 20


def make_pipeline(hidden=64):
    net = NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        module__hidden=hidden,
        module__dropout=0.0,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.05,
        max_epochs=EPOCHS,
        batch_size=64,
        train_split=None,
        verbose=0,
    )
    return Pipeline([("scale", StandardScaler()), ("net", net)])


def load():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y.astype(np.int64)


def _init_seeds(seed, train_seeds):
    """Torch seeds of the R trainings per loss (the first is ``seed``)."""
    return [seed + 1000 * r for r in range(train_seeds)]


def cv_loss(pipe, X, y, folds, seed, train_seeds=1):
    """Mean validation log-loss over ``folds`` and ``train_seeds`` trainings
    (inf where training diverged)."""
    losses = []
    for init in _init_seeds(seed, train_seeds):
        torch.manual_seed(init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = cross_val_score(
                pipe, X, y, cv=folds, scoring="neg_log_loss", error_score=np.nan
            )
        if not np.all(np.isfinite(scores)):
            return float("inf")
        losses.append(-np.mean(scores))
    return float(np.mean(losses))


def grid(X, y, folds, seed, train_seeds=1):
    seconds, runs = 0.0, []
    for init in _init_seeds(seed, train_seeds):
        torch.manual_seed(init)
        search = GridSearchCV(
            make_pipeline(),
            {"net__lr": LRS},
            cv=folds,
            scoring="neg_log_loss",
            refit=False,
            error_score=np.nan,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, took = timed(search.fit, X, y)
        seconds += took
        runs.append(-np.nan_to_num(search.cv_results_["mean_test_score"], nan=-np.inf))
    # The grid's time is one grid's (the R trainings only sharpen the target).
    seconds /= train_seeds
    losses = np.mean(runs, axis=0)
    best = int(np.argmin(losses))
    return {
        "losses": losses.tolist(),
        "best_lr": LRS[best],
        "best_loss": float(losses[best]),
        "seconds": seconds,
    }


def hypergrad(X, y, folds, seed, steps, train_seeds=1):
    search = HypergradSearchCV(
        make_pipeline(),
        {"net__lr": loguniform(LRS[0], LRS[-1])},
        cv=folds,
        scoring="neg_log_loss",
        refit=False,
        random_state=seed,
        unroll_steps=steps,
    )
    _, seconds = timed(search.fit, X, y)
    lr = search.best_params_["net__lr"]
    pipe = make_pipeline().set_params(net__lr=lr)
    loss = cv_loss(pipe, X, y, folds, seed, train_seeds)
    return {
        "lr": lr,
        "loss": loss,
        "seconds": seconds,
        "path": [float(v) for v in search.path_["net__lr"]],
        "search_loss": float(search.cv_results_["mean_test_loss"][0]),
    }


def accuracy_study(seeds, steps, train_seeds=1):
    X, y = load()
    rows = []
    for seed in seeds:
        folds = list(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y))
        target = grid(X, y, folds, seed, train_seeds)
        print(
            f"seed {seed}: grid best lr {target['best_lr']:.4g}, loss "
            f"{target['best_loss']:.4f}, {target['seconds']:.0f} s",
            flush=True,
        )
        for k in steps:
            tuned = hypergrad(X, y, folds, seed, k, train_seeds)
            curve = np.interp(np.log(tuned["lr"]), np.log(LRS), target["losses"])
            row = {
                "seed": seed,
                "unroll_steps": k,
                "grid": target,
                **tuned,
                "lr_ratio": tuned["lr"] / target["best_lr"],
                "loss_excess": tuned["loss"] / target["best_loss"] - 1,
                # The grid's curve (interpolated in log lr) at the tuned rate:
                # the same comparison without the noise of one more training.
                "curve_excess": float(curve) / target["best_loss"] - 1,
                "time_ratio": tuned["seconds"] / target["seconds"],
            }
            rows.append(row)
            print(
                f"  K={k}: lr {tuned['lr']:.4g} ({row['lr_ratio']:.2f}x best), "
                f"loss {tuned['loss']:.4f} ({100 * row['loss_excess']:+.1f}%), "
                f"{tuned['seconds']:.0f} s",
                flush=True,
            )
    return rows


def report_accuracy(rows, steps):
    print(
        "\n| K | tuned / best lr (per seed) | median | loss vs grid best (per seed) "
        "| median | grid curve at tuned lr vs best (median) | time / grid |"
    )
    print("|---|---|---|---|---|---|---|")
    for k in steps:
        mine = [r for r in rows if r["unroll_steps"] == k]
        ratios = [r["lr_ratio"] for r in mine]
        excess = [100 * r["loss_excess"] for r in mine]
        times = [r["time_ratio"] for r in mine]
        curve = [100 * r["curve_excess"] for r in mine]
        print(
            f"| {k} | {', '.join(f'{v:.2f}' for v in ratios)} | "
            f"{statistics.median(ratios):.2f} | "
            f"{', '.join(f'{v:+.1f}%' for v in excess)} | "
            f"{statistics.median(excess):+.1f}% | {statistics.median(curve):+.1f}% | "
            f"{statistics.median(times):.2f} |"
        )


# --------------------------------------------------------------- (b) cost
def _saved_bytes(fn):
    """Run ``fn``; return its result and the bytes of the tensors autograd
    saved for backward meanwhile (each storage once)."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return result, sum(storages.values())


def cost_study(steps, repeats=5):
    X, y = load()
    X = StandardScaler().fit_transform(X).astype(np.float32)
    torch.manual_seed(0)
    net = make_pipeline(hidden=256)[-1].set_params(max_epochs=2).fit(X, y)
    gen = torch.Generator().manual_seed(0)
    valid = sample_batch(X, y, 256, gen)
    rows = []
    _, epoch = timed(net.partial_fit, X, y, epochs=1)
    lr_binding = LearningRateBinding(net, "scalar")
    raw_lr = [torch.tensor([np.log(0.05)], dtype=torch.float64, requires_grad=True)]

    def to_values(raw):
        return [r.exp().float() for r in raw]

    for k in [0, *steps]:  # 0: the implicit hyper-step of a weight decay
        batches = [sample_batch(X, y, 64, gen, return_index=True) for _ in range(k)]
        if k == 0:
            bindings = [DecayBinding(net, "scalar")]
            raw = [
                torch.tensor([np.log(1e-4)], dtype=torch.float64, requires_grad=True)
            ]
        else:
            bindings, raw = [lr_binding], raw_lr
        train = sample_batch(X, y, 128, gen)

        def step(bindings=bindings, raw=raw, batches=batches, train=train):
            return net_hypergradient(
                net,
                bindings,
                raw,
                to_values,
                train,
                valid,
                "gauss-newton",
                unroll_batches=batches,
            )

        _, saved = _saved_bytes(step)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "unroll_steps": k,
                "seconds": statistics.median(times),
                "saved_bytes": saved,
            }
        )
    n_weights = sum(p.numel() for p in net.module_.parameters())
    return {"rows": rows, "epoch_seconds": epoch, "n_weights": n_weights}


def report_cost(cost):
    print(
        f"\nMLP with {cost['n_weights']} weights; one training epoch "
        f"{1000 * cost['epoch_seconds']:.0f} ms"
    )
    print("| hyper-step | time (ms) | autograd graph (MB) |")
    print("|---|---|---|")
    for row in cost["rows"]:
        what = (
            "weight decay, implicit (GN-CG 5)"
            if row["unroll_steps"] == 0
            else f"lr, K = {row['unroll_steps']}"
        )
        print(
            f"| {what} | {1000 * row['seconds']:.1f} | "
            f"{row['saved_bytes'] / 2**20:.1f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--cost-steps", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--train-seeds", type=int, default=1, help="trainings averaged per loss"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    payload = {"lrs": LRS, "epochs": EPOCHS, "train_seeds": args.train_seeds}
    if not args.cost_only:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        payload["rows"] = accuracy_study(seeds, args.steps, args.train_seeds)
        report_accuracy(payload["rows"], args.steps)
    payload["cost"] = cost_study(args.cost_steps)
    report_cost(payload["cost"])
    suffix = f"_train{args.train_seeds}" if args.train_seeds > 1 else ""
    path = save("lr" + ("_cost" if args.cost_only else suffix), payload)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
