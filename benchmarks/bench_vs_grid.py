"""HypergradSearchCV next to GridSearchCV (6 x 3 grid) on digits, over seeds.

Run: ``python benchmarks/bench_vs_grid.py [--seeds 3] [--epochs 30]``.
Prints a markdown table (mean ± std over seeds, and the median wall-time ratio)
and saves ``benchmarks/results/vs_grid.json``. One benchmark at a time: a
parallel job distorts every timing.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from _common import (
    classifier_pipeline,
    markdown_table,
    numeric_params,
    save,
    summarise,
    timed,
    warm_up,
)
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV, train_test_split

from skhypergrad import HypergradSearchCV, Tuned

SPACE = {
    "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
    "net__module__dropout": Tuned(uniform(0.0, 0.6)),
}
GRID = {
    "net__optimizer__weight_decay": list(np.logspace(-6, -1, 6)),
    "net__module__dropout": [0.0, 0.3, 0.6],
}


def run_seed(seed, epochs, cv):
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    y = y.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    pipe = classifier_pipeline(64, 10, max_epochs=epochs)
    searches = {
        "HypergradSearchCV": (
            HypergradSearchCV(pipe, SPACE, cv=cv, random_state=seed),
            cv + 1,
        ),
        "GridSearchCV 6x3": (GridSearchCV(pipe, GRID, cv=cv), 18 * cv + 1),
    }
    rows = []
    for name, (search, trainings) in searches.items():
        torch.manual_seed(seed)
        _, seconds = timed(search.fit, X_tr, y_tr)
        proba = search.predict_proba(X_te)
        rows.append(
            {
                "search": name,
                "seed": seed,
                "seconds": seconds,
                "trainings": trainings,
                "test_accuracy": accuracy_score(y_te, proba.argmax(1)),
                "test_log_loss": log_loss(y_te, proba, labels=np.arange(10)),
                "best_params": {
                    k: v for k, v in numeric_params(search.best_params_).items()
                },
            }
        )
    rows[0]["time_ratio_vs_grid"] = rows[0]["seconds"] / rows[1]["seconds"]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    rows = []
    for seed in range(args.seeds):
        rows += run_seed(seed, args.epochs, args.cv)
        print(
            f"seed {seed}: "
            + "; ".join(
                f"{r['search']} acc={r['test_accuracy']:.4f} t={r['seconds']:.1f}s"
                for r in rows[-2:]
            )
        )
    keys = ["test_accuracy", "test_log_loss", "seconds"]
    summary = summarise(rows, keys)
    ratios = [r["time_ratio_vs_grid"] for r in rows if "time_ratio_vs_grid" in r]
    print()
    print(markdown_table(summary, keys))
    print(
        f"\nmedian wall-time ratio HypergradSearchCV / GridSearchCV: "
        f"{statistics.median(ratios):.3f} over {len(ratios)} seeds"
    )
    path = save("vs_grid", {"args": vars(args), "rows": rows, "summary": summary})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
