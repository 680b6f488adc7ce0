"""Nine layer widths raced by successive halving against the nine trained in full.

The search space is nine hidden-layer widths (16 to 256, a list: what must
be sampled) with the weight decay tuned by hypergradients inside each:

- ``HypergradSearchCV``: every width trained to ``max_epochs`` on every split
  (and rescored: its tuned decay trained again as a constant);
- ``HalvingHypergradSearchCV``: the same trainings raced, ``factor=3``; after
  ``max_epochs // 9`` and ``max_epochs // 3`` epochs the best third goes on
  from where it stopped; only the last width is rescored.

On the datasets of ``bench_search.py`` (Pipeline(StandardScaler, MLP 2 x width),
Adam, ``cv=3``). Test score (accuracy, R² for diabetes), mean ± standard
error over seeds and the paired difference, time as the median ratio of the
two. Run alone (one benchmark at a time on a shared machine):

    python benchmarks/bench_halving.py --seeds 3 --first-seed 3
"""

from __future__ import annotations

import statistics
import warnings

import numpy as np
from _common import run_over_seeds, timed
from bench_search import DATASETS, evaluate, load, make_pipeline
from scipy.stats import loguniform

from skhypergrad import HalvingHypergradSearchCV, HypergradSearchCV

WIDTHS = [16, 24, 32, 48, 64, 96, 128, 192, 256]
SPACE = {
    "net__module__hidden": WIDTHS,
    "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
}
SEARCHES = {
    "nine in full (HypergradSearchCV)": HypergradSearchCV,
    "nine raced (HalvingHypergradSearchCV)": HalvingHypergradSearchCV,
}


def run(name, seed):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs)
    metric = "accuracy" if task == "classification" else "r2"
    rows = []
    for label, cls in SEARCHES.items():
        search = cls(pipe, SPACE, cv=3, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted, seconds = timed(search.fit, X_tr, y_tr)
        score = evaluate(fitted, task, X_te, y_te)[metric]
        width = fitted.best_params_["net__module__hidden"]
        decay = fitted.best_params_["net__optimizer__weight_decay"]
        epochs_trained = _epochs_trained(fitted, epochs)
        rows.append(
            {
                "dataset": name,
                "seed": seed,
                "search": label,
                "seconds": seconds,
                "score": score,
                "width": width,
                "decay": decay,
                "tuning_epochs": epochs_trained,
            }
        )
        print(
            f"  {name} seed {seed} {label}: {score:.4f} {seconds:.1f}s "
            f"width {width} decay {decay:.2g} ({epochs_trained} tuning epochs "
            "per split)",
            flush=True,
        )
    return rows


def _epochs_trained(search, max_epochs) -> int:
    """Epochs of tuning training per split (before the rescoring)."""
    if not hasattr(search, "n_resources_"):
        return len(search.cv_results_["params"]) * max_epochs
    total, done = 0, 0
    for n, until in zip(search.n_candidates_, search.n_resources_):
        total += n * (until - done)
        done = until
    return total


def report(rows):
    full, raced = SEARCHES
    print(
        "\n| dataset | seeds | in full: test score | raced: test score | "
        "raced − full (paired) | raced time / full time (median) | "
        "same width picked |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        pairs = {}
        for r in rows:
            if r["dataset"] == name:
                pairs.setdefault(r["seed"], {})[r["search"]] = r
        pairs = [p for p in pairs.values() if len(p) == 2]
        n = len(pairs)
        a = [p[full]["score"] for p in pairs]
        b = [p[raced]["score"] for p in pairs]
        diff = [y - x for x, y in zip(a, b)]
        ratio = statistics.median(
            p[raced]["seconds"] / p[full]["seconds"] for p in pairs
        )
        same = sum(p[raced]["width"] == p[full]["width"] for p in pairs)
        print(
            f"| {name} | {n} | {_mean_se(a)} | {_mean_se(b)} | {_mean_se(diff)} "
            f"| {ratio:.2f} | {same} of {n} |"
        )


def _mean_se(values):
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {se:.4f}"


def main():
    run_over_seeds(
        __doc__,
        run,
        report,
        "halving",
        ["digits_noise20", "digits300_noise20", "breast_cancer", "diabetes"],
    )


if __name__ == "__main__":
    main()
