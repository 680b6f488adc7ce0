"""Dropout (and weight decay) tuned by hypergradients against a grid of it.

Only the dropout rate is searched (weight decay fixed at 1e-4), on datasets
where dropout matters (digits with 20% of the training labels replaced, the
300-row version of it). Side by side in one run, per dataset and seed:

- GridSearchCV over ``module__dropout`` in {0, 0.1, ..., 0.6} (7 candidates);
  its per-rate test accuracy is the curve the others are read against;
- HypergradSearchCV with ``solver="cg"`` (truncated CG on the Hessian, the
  default before the Gauss-Newton curvature);
- HypergradSearchCV with its default ``solver="gauss-newton"`` (its label
  says the CG iterations and samples per hyper-step);
- HypergradSearchCV with 20 Gauss-Newton CG iterations.

The hypergradient searches get ``uniform(0.0, 0.8)`` and start at 0.4.
Reports the chosen rate, best CV accuracy, test accuracy (mean and standard
error over seeds) and wall time.

With ``--decay`` the same comparison is made for weight decay alone (dropout
0) on synthetic5000: GridSearchCV over 6 decays ``1e-6 ... 1e-1`` against
HypergradSearchCV over ``loguniform(1e-6, 1e-1)`` with ``"cg"`` and with its
default solver.

Run: ``python benchmarks/bench_dropout.py`` (seeds 3-5, about 2 minutes on two
cores), ``--decay`` (1 minute), or ``--seeds 1 --first-seed 0``. With
``--variants gn5 b128 ...`` the grid is compared with those settings of the
Gauss-Newton solver instead (how the default was sized, on seeds 0-2). Saves
``benchmarks/results/dropout.json`` (``decay.json``).
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from _common import classifier_pipeline, gauss_newton, save, timed, warm_up
from bench_search import DATASETS, load
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skhypergrad import HypergradSearchCV, Tuned
from skhypergrad.hypergrad import CG, OuterOptimizer, get_solver

RATES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
DECAYS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
# param: (net parameter, grid values, range for the hypergradient searches,
#         fixed settings, datasets)
STUDIES = {
    "dropout": (
        "net__module__dropout",
        RATES,
        uniform(0.0, 0.8),
        {"net__optimizer__weight_decay": 1e-4},
        ["digits300_noise20", "digits_noise20"],
    ),
    "decay": (
        "net__optimizer__weight_decay",
        DECAYS,
        loguniform(1e-6, 1e-1),
        {"net__module__dropout": 0.0},
        ["synthetic5000"],
    ),
}
GGN20 = CG(max_iter=20, damping=1e-3, curvature="gauss-newton")


# Settings of the Gauss-Newton solver compared with --variants (label:
# HypergradSearchCV arguments): how many CG iterations and samples per
# hyper-step dropout needs.
VARIANTS = {
    "gn5 b128": {"solver": gauss_newton(5), "hyper_optimizer__batch_size": 128},
    "gn10 b128": {"solver": gauss_newton(10), "hyper_optimizer__batch_size": 128},
    "gn10 b256": {"solver": gauss_newton(10), "hyper_optimizer__batch_size": 256},
    "gn20 b128": {"solver": gauss_newton(20), "hyper_optimizer__batch_size": 128},
    "gn20 b64": {"solver": gauss_newton(20), "hyper_optimizer__batch_size": 64},
    "gn5 b512": {"solver": gauss_newton(5), "hyper_optimizer__batch_size": 512},
    "gn5 b128 warm": {
        "solver": gauss_newton(5, warm_start=True),
        "hyper_optimizer__batch_size": 128,
    },
    "gn10 b128 warm": {
        "solver": gauss_newton(10, warm_start=True),
        "hyper_optimizer__batch_size": 128,
    },
    # with --interval 2: half the hyper-steps, twice the step
    "gn5 b128 lr1.0": {
        "solver": gauss_newton(5),
        "hyper_optimizer__batch_size": 128,
        "hyper_optimizer__lr": 1.0,
    },
    "gn10 b128 lr1.0": {
        "solver": gauss_newton(10),
        "hyper_optimizer__batch_size": 128,
        "hyper_optimizer__lr": 1.0,
    },
}


def searches(pipe, seed, study, interval=1, variants=None):
    name, values, distribution, _, _ = STUDIES[study]
    # A dropout range is drawn by the outer search unless wrapped in Tuned.
    space = {name: Tuned(distribution) if study == "dropout" else distribution}
    common = {"cv": 3, "random_state": seed, "hyper_optimizer__interval": interval}
    grid = {
        f"GridSearchCV, {len(values)} values": GridSearchCV(pipe, {name: values}, cv=3)
    }
    if variants:
        return grid | {
            f"HypergradSearchCV, {v}": HypergradSearchCV(
                pipe, space, **common, **VARIANTS[v]
            )
            for v in variants
        }
    default = HypergradSearchCV(pipe, space, **common)
    solver = get_solver(default.solver)
    return grid | {
        "HypergradSearchCV, cg (Hessian)": HypergradSearchCV(
            pipe, space, solver="cg", **common
        ),
        f"HypergradSearchCV, default (Gauss-Newton cg-{solver.max_iter}, "
        f"batch {OuterOptimizer().batch_size})": default,
        "HypergradSearchCV, Gauss-Newton cg-20": HypergradSearchCV(
            pipe, space, solver=GGN20, **common
        ),
    }


def run(name, seed, study, interval=1, variants=None):
    param, values, _, fixed, _ = STUDIES[study]
    X_tr, X_te, y_tr, y_te = load(name, seed)
    n_classes = len(np.unique(y_tr))
    pipe = classifier_pipeline(
        X_tr.shape[1], n_classes, hidden=256, max_epochs=DATASETS[name][2]
    )
    pipe.set_params(**fixed)
    rows = []
    for label, search in searches(pipe, seed, study, interval, variants).items():
        grid = isinstance(search, GridSearchCV)
        Xs, ys = (
            (X_tr.astype(np.float32), y_tr.astype(np.int64)) if grid else (X_tr, y_tr)
        )
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, seconds = timed(search.fit, Xs, ys)
        test = float(np.mean(search.predict(X_te.astype(np.float32)) == y_te))
        row = {
            "dataset": name,
            "seed": seed,
            "search": label,
            "seconds": seconds,
            "value": float(search.best_params_[param]),
            "cv_accuracy": float(search.best_score_),
            "test_accuracy": test,
        }
        if grid:
            row["cv_curve"] = [float(v) for v in search.cv_results_["mean_test_score"]]
            row["test_curve"] = _test_curve(
                pipe, param, values, (X_tr, y_tr, X_te, y_te), seed
            )
        rows.append(row)
        print(
            f"  {name} seed {seed} {label}: value={row['value']:.3g} "
            f"cv={row['cv_accuracy']:.4f} test={test:.4f} {seconds:.1f}s",
            flush=True,
        )
    return rows


def _test_curve(pipe, param, values, data, seed):
    """Test accuracy of the net trained on all the training rows at each value."""
    X_tr, y_tr, X_te, y_te = data
    out = []
    for value in values:
        torch.manual_seed(seed)
        # A fresh clone: a fitted skorch net keeps its old optimizer settings
        # through set_params(optimizer__...) and a second fit.
        net = clone(pipe).set_params(**{param: value})
        net.fit(X_tr.astype(np.float32), y_tr.astype(np.int64))
        out.append(float(np.mean(net.predict(X_te.astype(np.float32)) == y_te)))
    return out


def report(rows, values):
    for name in dict.fromkeys(r["dataset"] for r in rows):
        print(f"\n### {name}\n")
        print("| search | value | CV accuracy | test accuracy | seconds |")
        print("|---|---|---|---|---|")
        for label in dict.fromkeys(r["search"] for r in rows):
            group = [r for r in rows if r["dataset"] == name and r["search"] == label]
            cells = [
                _mean_se([r[k] for r in group])
                for k in ("value", "cv_accuracy", "test_accuracy")
            ]
            seconds = statistics.median(r["seconds"] for r in group)
            print(f"| {label} | " + " | ".join(cells) + f" | {seconds:.1f} |")
        grid = [r for r in rows if r["dataset"] == name and "test_curve" in r]
        cv = np.mean([r["cv_curve"] for r in grid], axis=0)
        test = np.mean([r["test_curve"] for r in grid], axis=0)
        print("\nGrid curve (mean over seeds): value | CV accuracy | test accuracy")
        for value, c, t in zip(values, cv, test):
            print(f"  {value:g} | {c:.4f} | {t:.4f}")


def _mean_se(values):
    if len(values) < 2:
        return f"{values[0]:.4g}"
    se = statistics.stdev(values) / np.sqrt(len(values))
    return f"{statistics.fmean(values):.4g} ± {se:.2g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=3)
    parser.add_argument("--decay", action="store_true", help="the weight-decay study")
    parser.add_argument(
        "--interval",
        type=int,
        default=1,
        help="every search's hyper_optimizer__interval",
    )
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=tuple(VARIANTS),
        help="compare these Gauss-Newton settings with the grid instead",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    study = "decay" if args.decay else "dropout"
    values = STUDIES[study][1]
    rows = []
    for name in args.datasets or STUDIES[study][4]:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.extend(run(name, seed, study, args.interval, args.variants))
    report(rows, values)
    tag = "" if args.interval == 1 else f"_interval{args.interval}"
    seeds = "" if args.first_seed == 3 else f"_seeds{args.first_seed}"
    tag += "_variants" if args.variants else ""
    path = save(study + tag + seeds, {"rows": rows, "values": values})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
