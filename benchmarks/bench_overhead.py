"""Whole-search overhead of HypergradSearchCV over plain training of the same nets.

For MLPs of about 10k, 100k and 1M weights (``bench_hyperstep.NETS``) on
synthetic data (3000 samples, 64 features, 10 classes), it times

- "plain": ``GridSearchCV`` with one candidate, the search's starting point:
  one training per CV split plus the refit, the work HypergradSearchCV does
  without its hyper-steps;
- HypergradSearchCV (defaults, ``cv=3``) over weight decay as 1 global value,
  one per layer and one per weight, the global value with ``rescore=False``
  (the tuning trainings alone, without the constant training of the tuned
  values per split that the default adds) and with ``interval`` 2 and 4
  (fewer hyper-steps, less overhead);

all with the same epochs, and reports each search's median wall time over
repeats divided by plain's (``overhead = ratio - 1``), with the number of
hyper-steps and the CG iterations they ran.

Run: ``python benchmarks/bench_overhead.py`` (3 repeats, about 10 minutes on
two cores) or ``--quick`` (10k and 100k nets, 1 repeat). Saves
``benchmarks/results/overhead[_quick].json``. Run one benchmark at a time.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from _common import MLP, save, timed, warm_up
from bench_hyperstep import NETS
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, PerLayer, PerParameter, Real

EPOCHS = 12
WD = "optimizer__weight_decay"
RANGE = Real(1e-6, 1e-1, log=True)
START = float(np.sqrt(1e-6 * 1e-1))  # where HypergradSearchCV starts
SEARCHES = {
    # label: (space, extra arguments)
    "global": ({WD: RANGE}, {}),
    # The tuning alone: no constant training of the tuned values per split.
    "global, rescore=False": ({WD: RANGE}, {"rescore": False}),
    "per layer": ({WD: PerLayer(RANGE)}, {}),
    "per weight": ({WD: PerParameter(RANGE)}, {}),
    "global, hyper_optimizer__interval=2": (
        {WD: RANGE},
        {"hyper_optimizer__interval": 2},
    ),
    "global, hyper_optimizer__interval=4": (
        {WD: RANGE},
        {"hyper_optimizer__interval": 4},
    ),
}


def make_net(name):
    return NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_classes=10,
        module__dropout=0.0,
        **{f"module__{k}": v for k, v in NETS[name].items()},
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=EPOCHS,
        batch_size=128,
        train_split=None,
        verbose=0,
    )


def run(name, repeats, data):
    X, y = data
    rows = []
    for rep in range(repeats):
        candidates = {"plain": (GridSearchCV(make_net(name), {WD: [START]}, cv=3), {})}
        for label, (space, extra) in SEARCHES.items():
            search = HypergradSearchCV(
                make_net(name), space, cv=3, random_state=rep, **extra
            )
            candidates[label] = (search, extra)
        for label, (search, _) in candidates.items():
            torch.manual_seed(rep)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, seconds = timed(search.fit, X, y)
            row = {"net": name, "search": label, "repeat": rep, "seconds": seconds}
            if hasattr(search, "path_"):
                row["hypersteps"] = len(search.path_["epoch"])
                row["mean_solver_iter"] = float(np.mean(search.path_["solver_iter"]))
            rows.append(row)
            print(f"  {name} rep={rep} {label:<26} {seconds:7.2f}s", flush=True)
    return rows


def table(rows, nets):
    lines = [
        "| net | weights | search | median s | vs plain | overhead "
        "| hyper-steps | CG iterations |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name in nets:
        sub = [r for r in rows if r["net"] == name]
        plain = statistics.median(r["seconds"] for r in sub if r["search"] == "plain")
        weights = sum(p.numel() for p in MLP(64, 10, **NETS[name]).parameters())
        for label in ["plain", *SEARCHES]:
            group = [r for r in sub if r["search"] == label]
            median = statistics.median(r["seconds"] for r in group)
            steps = group[0].get("hypersteps", "")
            iters = (
                f"{statistics.fmean(r['mean_solver_iter'] for r in group):.1f}"
                if "mean_solver_iter" in group[0]
                else ""
            )
            lines.append(
                f"| {name} | {weights:,} | {label} | {median:.2f} | "
                f"{median / plain:.2f}x | {100 * (median / plain - 1):+.0f}% | "
                f"{steps} | {iters} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 small nets, 1 repeat")
    parser.add_argument("--nets", nargs="+", choices=("10k", "100k", "1M"))
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    nets = args.nets or (["10k", "100k"] if args.quick else ["10k", "100k", "1M"])
    repeats = args.repeats or (1 if args.quick else 3)
    X, y = make_classification(
        n_samples=3000,
        n_features=64,
        n_informative=30,
        n_classes=10,
        flip_y=0.1,
        random_state=0,
    )
    data = (X.astype(np.float32), y.astype(np.int64))
    rows = []
    for name in nets:
        rows += run(name, repeats, data)
    print(
        f"\n{EPOCHS} epochs, cv=3, 2000 training rows per split; median of "
        f"{repeats} repeat(s)\n"
    )
    print(table(rows, nets))
    suffix = "_quick" if args.quick else ""
    print(f"saved {save(f'overhead{suffix}', {'args': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
