"""The mixed-space search: a skorch README grid, n_jobs, and max_epochs.

Three measurements, each side by side in one run on this machine:

- ``readme``: the grid of skorch's README (``lr``, ``max_epochs``,
  ``module__num_units``) on its ``make_classification`` data, searched by
  GridSearchCV (8 candidates), by GridSearchCV with weight decay added as a
  3-value list (24 candidates), and by HypergradSearchCV with weight decay as
  a range (8 candidates, the decay tuned inside each). Wall time, best CV
  score and held-out test accuracy of the refit.
- ``njobs``: a 4-candidate mixed search on digits (30 epochs, cv=3) with
  ``n_jobs=1`` and ``n_jobs=2`` (loky processes, one torch thread each, the
  pool started before timing); the speed-up on two cores, and whether
  ``cv_results_`` is the same.
- ``splits``: a search over continuous ranges only (weight decay and dropout,
  one candidate) with ``cv=2`` on 5000 synthetic rows (2500 per split), with
  ``n_jobs=1`` (the splits in lock-step in one process) and ``n_jobs=2`` (each
  split in its own worker, exchanging hypergradients through gloo); the
  speed-up, and whether ``cv_results_`` and the paths are the same.
- ``epochs``: ``max_epochs: [10, 20, 40]`` read off one training per split,
  against three searches that each train to one value: the chosen value and
  the time.

Run: ``python benchmarks/bench_mixed.py`` (all parts, 3 repeats; about 15
minutes on 2 cores) or ``--quick`` (1 repeat, fewer epochs). Prints markdown
tables and saves ``benchmarks/results/mixed[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings

import numpy as np
import torch
from _common import RESULTS, classifier_pipeline, save, timed, warm_up
from joblib import parallel_config
from scipy.stats import loguniform, uniform
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import GridSearchCV, train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from skhypergrad import HypergradSearchCV, Tuned

DECAY = loguniform(1e-6, 1e-1)


class ReadmeModule(nn.Module):
    """The module of skorch's README (softmax output, skorch's NLLLoss)."""

    def __init__(self, num_units=10, nonlin=None):
        super().__init__()
        self.dense0 = nn.Linear(20, num_units)
        self.nonlin = nn.ReLU() if nonlin is None else nonlin
        self.dropout = nn.Dropout(0.5)
        self.dense1 = nn.Linear(num_units, num_units)
        self.output = nn.Linear(num_units, 2)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, X):
        X = self.nonlin(self.dense0(X))
        X = self.dropout(X)
        X = self.nonlin(self.dense1(X))
        return self.softmax(self.output(X))


def readme(repeats, quick):
    X, y = make_classification(1000, 20, n_informative=10, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    epochs = [5, 10] if quick else [10, 20]
    grid = {"lr": [0.01, 0.02], "max_epochs": epochs, "module__num_units": [10, 20]}
    rows = []
    for rep in range(repeats):
        net = NeuralNetClassifier(
            ReadmeModule, max_epochs=10, lr=0.1, train_split=None, verbose=0
        )
        searches = {
            "GridSearchCV, README grid (8)": GridSearchCV(net, grid, cv=3),
            "GridSearchCV, + decay list of 3 (24)": GridSearchCV(
                net, {**grid, "optimizer__weight_decay": [1e-5, 1e-3, 1e-1]}, cv=3
            ),
            "HypergradSearchCV, + decay range (8)": HypergradSearchCV(
                net,
                {**grid, "optimizer__weight_decay": DECAY},
                cv=3,
                random_state=rep,
            ),
        }
        for name, search in searches.items():
            torch.manual_seed(rep)
            cast = not isinstance(search, HypergradSearchCV)
            Xf, yf = (X_tr.astype(np.float32), y_tr) if cast else (X_tr, y_tr)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, seconds = timed(search.fit, Xf, yf)
            test = float(np.mean(search.predict(X_te.astype(np.float32)) == y_te))
            rows.append(
                {
                    "search": name,
                    "repeat": rep,
                    "seconds": seconds,
                    "candidates": len(search.cv_results_["params"]),
                    "best_cv_score": float(search.best_score_),
                    "test_accuracy": test,
                    "best_params": {
                        k: _plain(v) for k, v in search.best_params_.items()
                    },
                }
            )
            print(f"  {name} rep {rep}: {seconds:.1f} s, test {test:.3f}", flush=True)
    return rows


def _plain(value):
    return value if isinstance(value, int | str) else float(value)


def _digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0)


def _digits_net(max_epochs):
    pipe = classifier_pipeline(64, 10, max_epochs=max_epochs)
    return pipe.set_params(net__module__dropout=0.0)


def njobs(repeats, quick):
    X_tr, _, y_tr, _ = _digits()
    space = {
        "net__module__hidden": [128, 256],
        "net__lr": [1e-3, 3e-3],
        "net__optimizer__weight_decay": DECAY,
    }
    epochs = 10 if quick else 30
    rows = []
    # Start the worker processes (each imports torch) before timing: the
    # timings compare warm pools, as a session that searches more than once.
    with parallel_config(backend="loky", inner_max_num_threads=1):
        HypergradSearchCV(
            _digits_net(1),
            {"net__module__hidden": [8, 16]},
            cv=2,
            n_jobs=2,
            refit=False,
        ).fit(X_tr[:200], y_tr[:200])
    for rep in range(repeats):
        results = {}
        for n_jobs in (1, 2):
            search = HypergradSearchCV(
                _digits_net(epochs),
                space,
                cv=3,
                n_jobs=n_jobs,
                random_state=rep,
                refit=False,
            )
            with parallel_config(backend="loky", inner_max_num_threads=1):
                _, seconds = timed(search.fit, X_tr, y_tr)
            results[n_jobs] = search.cv_results_
            rows.append(
                {"search": f"n_jobs={n_jobs}", "repeat": rep, "seconds": seconds}
            )
            print(f"  n_jobs={n_jobs} rep {rep}: {seconds:.1f} s", flush=True)
        rows[-1]["same_results"] = bool(
            np.array_equal(results[1]["mean_test_score"], results[2]["mean_test_score"])
            and results[1]["params"] == results[2]["params"]
        )
    return rows


def splits(repeats, quick):
    X, y = make_classification(
        n_samples=5000,
        n_features=100,
        n_informative=20,
        n_classes=5,
        flip_y=0.05,
        random_state=0,
    )
    X = X.astype(np.float32)
    space = {
        "net__optimizer__weight_decay": DECAY,
        "net__module__dropout": Tuned(uniform(0.0, 0.6)),
    }
    epochs = 5 if quick else 15
    with parallel_config(backend="loky", inner_max_num_threads=1):
        HypergradSearchCV(
            _digits_net(1), {"net__module__hidden": [8, 16]}, cv=2, n_jobs=2
        ).fit(*_digits()[::2])  # start the workers before timing
    rows = []
    for rep in range(repeats):
        fitted = {}
        for n_jobs in (1, 2):
            pipe = classifier_pipeline(100, 5, hidden=256, max_epochs=epochs)
            search = HypergradSearchCV(
                pipe, space, cv=2, n_jobs=n_jobs, random_state=rep, refit=False
            )
            with parallel_config(backend="loky", inner_max_num_threads=1):
                _, seconds = timed(search.fit, X, y)
            fitted[n_jobs] = search
            rows.append(
                {"search": f"n_jobs={n_jobs}", "repeat": rep, "seconds": seconds}
            )
            print(f"  splits n_jobs={n_jobs} rep {rep}: {seconds:.1f} s", flush=True)
        rows[-1]["same_results"] = _same_search(fitted[1], fitted[2])
    return rows


def _same_search(a, b):
    """Every non-timing column of cv_results_ and every path value equal."""
    same = a.cv_results_["params"] == b.cv_results_["params"]
    for key, value in a.cv_results_.items():
        if key != "params" and not key.endswith("_time"):
            same = same and np.array_equal(np.asarray(value), b.cv_results_[key])
    for path_a, path_b in zip(a.paths_, b.paths_):
        for key in ("val_loss", "hypergrad_norm"):
            same = same and np.array_equal(path_a[key], path_b[key])
    return bool(same)


def epochs(repeats, quick):
    X_tr, X_te, y_tr, y_te = _digits()
    values = [5, 10, 20] if quick else [10, 20, 40]
    rows = []
    for rep in range(repeats):
        joint = HypergradSearchCV(
            _digits_net(max(values)),
            {"net__max_epochs": values, "net__optimizer__weight_decay": DECAY},
            cv=3,
            random_state=rep,
        )
        _, seconds = timed(joint.fit, X_tr, y_tr)
        rows.append(_epoch_row("one search, list of epochs", rep, seconds, joint))
        rows[-1]["test_accuracy"] = float(joint.score(X_te, y_te))
        total, scores = 0.0, {}
        for value in values:
            alone = HypergradSearchCV(
                _digits_net(value),
                {"net__optimizer__weight_decay": DECAY},
                cv=3,
                random_state=rep,
                refit=False,
            )
            _, seconds = timed(alone.fit, X_tr, y_tr)
            total += seconds
            scores[value] = float(alone.best_score_)
        chosen = max(values, key=lambda v: scores[v])
        rows.append(
            {
                "search": "one search per epoch value",
                "repeat": rep,
                "seconds": total,
                "chosen_epochs": chosen,
                "scores": scores,
            }
        )
        print(
            f"  epochs rep {rep}: joint {rows[-2]['seconds']:.1f} s chose "
            f"{rows[-2]['chosen_epochs']}; separate {total:.1f} s chose {chosen}",
            flush=True,
        )
    return rows


def _epoch_row(name, rep, seconds, search):
    params = search.cv_results_["params"]
    return {
        "search": name,
        "repeat": rep,
        "seconds": seconds,
        "chosen_epochs": search.best_params_["net__max_epochs"],
        "scores": {
            p["net__max_epochs"]: float(s)
            for p, s in zip(params, search.cv_results_["mean_test_score"])
        },
    }


def report(name, rows, keys):
    print(f"\n### {name}\n")
    print("| search | " + " | ".join(f"{k} (median)" for k in keys) + " | repeats |")
    print("|---" * (len(keys) + 2) + "|")
    for search in dict.fromkeys(r["search"] for r in rows):
        group = [r for r in rows if r["search"] == search]
        cells = []
        for key in keys:
            values = [r[key] for r in group if key in r]
            cells.append(f"{statistics.median(values):.4g}" if values else "")
        print(f"| {search} | " + " | ".join(cells) + f" | {len(group)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, fewer epochs")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("readme", "njobs", "splits", "epochs"),
        default=["readme", "njobs", "splits", "epochs"],
    )
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    torch.set_num_threads(1)
    warm_up()
    out = {"repeats": repeats, "quick": args.quick}
    if "readme" in args.parts:
        out["readme"] = readme(repeats, args.quick)
        report(
            "skorch README grid",
            out["readme"],
            ["seconds", "candidates", "best_cv_score", "test_accuracy"],
        )
    if "njobs" in args.parts:
        out["njobs"] = njobs(repeats, args.quick)
        report("n_jobs on 2 cores", out["njobs"], ["seconds"])
        t1 = statistics.median(
            r["seconds"] for r in out["njobs"] if r["search"] == "n_jobs=1"
        )
        t2 = statistics.median(
            r["seconds"] for r in out["njobs"] if r["search"] == "n_jobs=2"
        )
        same = all(r.get("same_results", True) for r in out["njobs"])
        print(f"\nspeed-up n_jobs=2 vs 1: {t1 / t2:.2f}x; same cv_results_: {same}")
    if "splits" in args.parts:
        out["splits"] = splits(repeats, args.quick)
        report(
            "the splits of one candidate in parallel (cv=2)", out["splits"], ["seconds"]
        )
        t1, t2 = (
            statistics.median(
                r["seconds"] for r in out["splits"] if r["search"] == f"n_jobs={n}"
            )
            for n in (1, 2)
        )
        same = all(r.get("same_results", True) for r in out["splits"])
        print(f"\nspeed-up n_jobs=2 vs 1: {t1 / t2:.2f}x; same results: {same}")
    if "epochs" in args.parts:
        out["epochs"] = epochs(repeats, args.quick)
        report(
            "max_epochs from one training", out["epochs"], ["seconds", "chosen_epochs"]
        )
    # Parts run on their own are merged into the saved results of the others.
    name = "mixed_quick" if args.quick else "mixed"
    if (RESULTS / f"{name}.json").exists():
        out = {**json.loads((RESULTS / f"{name}.json").read_text()), **out}
    path = save(name, out)
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
