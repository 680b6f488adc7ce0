"""Validation overfitting: many tuned hyperparameters against little validation data.

Hypergradients tune one weight decay as cheaply as one per weight, but a
million hyperparameters fitted on a few hundred validation rows can overfit
them: the cross-validated score (measured on the very rows the values were
tuned on) rises while the score on held-out test data does not. This script
measures by how much, and whether a larger validation share cures it.

For each dataset and seed of ``bench_search.py`` (the same split, pipeline and
label noise; the test quarter is never seen), it runs HypergradSearchCV over
weight decay as one value, one per layer (``PerLayer``) and one per weight
(``PerParameter``), with ``cv`` = 5, 3 and 2 (a validation share of 20%, 33%
and 50% of the training rows: each split's held-out part is where its
hypergradients are measured), and reports the best CV score, the test score
and their gap (CV - test: how optimistic the CV score is), mean and standard
error over seeds.

Run: ``python benchmarks/bench_overfit.py`` (digits300_noise20 and
synthetic5000, seeds 3-5, about 20 minutes on two cores) or pick with
``--datasets`` / ``--seeds`` / ``--first-seed``. Saves
``benchmarks/results/overfit.json``. Run one benchmark at a time.

``--remedies`` runs, instead of that grid, what might reduce the effect
(``REMEDIES``: a 70% validation share through ``ShuffleSplit``, a tenth of the
hyper-step size, a hyper-step every 4 epochs, a larger
``hyper_optimizer__batch_size``, a narrow range, a smaller net, and the net tuned
by ``HypergradClassifier`` itself, scored without a refit) next to one decay at
the same settings, e.g.
``python benchmarks/bench_overfit.py --remedies --datasets digits300_noise20
--seeds 5`` (saves ``benchmarks/results/overfit_remedies.json``).
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from _common import save, timed, warm_up
from bench_search import DATASETS, WD_RANGE, evaluate, load, make_pipeline
from scipy.stats import loguniform
from sklearn.model_selection import ShuffleSplit

from skhypergrad import HypergradClassifier, HypergradSearchCV, PerLayer, PerParameter

WD = "net__optimizer__weight_decay"
SPACES = {
    "scalar": lambda: loguniform(*WD_RANGE),
    "per layer": lambda: PerLayer(loguniform(*WD_RANGE)),
    "per weight": lambda: PerParameter(loguniform(*WD_RANGE)),
}
CVS = (5, 3, 2)
NARROW = (1e-2, 1e-1)  # around the one decay the scalar search picks on digits300

# name: (space, search options, module hidden width, range); "cv" may be an int
# or a validation share (ShuffleSplit with 2 splits); "single" is
# HypergradClassifier's validation_fraction (one training, no refit).
REMEDIES = {
    "scalar, cv=5": ("scalar", {"cv": 5}, 256, WD_RANGE),
    "per weight, cv=5": ("per weight", {"cv": 5}, 256, WD_RANGE),
    "scalar, 70% validation": ("scalar", {"cv": 0.7}, 256, WD_RANGE),
    "per weight, 70% validation": ("per weight", {"cv": 0.7}, 256, WD_RANGE),
    "per weight, hyper_optimizer__lr=0.05": (
        "per weight",
        {"cv": 5, "hyper_optimizer__lr": 0.05},
        256,
        WD_RANGE,
    ),
    "per weight, hyper_optimizer__interval=4": (
        "per weight",
        {"cv": 5, "hyper_optimizer__interval": 4},
        256,
        WD_RANGE,
    ),
    "per weight, hyper_optimizer__batch_size=1024": (
        "per weight",
        {"cv": 5, "hyper_optimizer__batch_size": 1024},
        256,
        WD_RANGE,
    ),
    "per weight, range 1e-2..1e-1": ("per weight", {"cv": 5}, 256, NARROW),
    "scalar, hidden=32": ("scalar", {"cv": 5}, 32, WD_RANGE),
    "per weight, hidden=32": ("per weight", {"cv": 5}, 32, WD_RANGE),
    "per weight, HypergradClassifier 20%": (
        "per weight",
        {"single": 0.2},
        256,
        WD_RANGE,
    ),
}


def run(name, seed, spaces, cvs):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    rows = []
    for label in spaces:
        for cv in cvs:
            pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs)
            search = HypergradSearchCV(
                pipe, {WD: SPACES[label]()}, cv=cv, random_state=seed
            )
            torch.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, seconds = timed(search.fit, X_tr, y_tr)
            test = evaluate(search, task, X_te, y_te)
            score = test.get("accuracy", test.get("r2"))
            row = {
                "dataset": name,
                "seed": seed,
                "space": label,
                "cv": cv,
                "validation_rows": len(X_tr) // cv,
                "cv_score": float(search.best_score_),
                "test_score": float(score),
                "gap": float(search.best_score_ - score),
                "seconds": seconds,
            }
            rows.append(row)
            print(
                f"  {name} seed={seed} {label:<10} cv={cv} "
                f"cv_score={row['cv_score']:.4f} test={row['test_score']:.4f} "
                f"gap={row['gap']:+.4f} {seconds:.1f}s",
                flush=True,
            )
    return rows


def run_remedies(name, seed, remedies):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    rows = []
    for label in remedies:
        space, options, hidden, bounds = REMEDIES[label]
        options = dict(options)
        pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs, hidden=hidden)
        if space == "scalar":
            dist = loguniform(*bounds)
        elif space == "per layer":
            dist = PerLayer(loguniform(*bounds))
        else:
            dist = PerParameter(loguniform(*bounds))
        if "single" in options:
            share = options.pop("single")
            search = HypergradClassifier(
                pipe,
                {WD: dist},
                validation_fraction=share,
                random_state=seed,
                **options,
            )
        else:
            cv = options.pop("cv")
            share = 1 / cv
            if isinstance(cv, float):
                share, cv = cv, ShuffleSplit(2, test_size=cv, random_state=seed)
            search = HypergradSearchCV(
                pipe, {WD: dist}, cv=cv, random_state=seed, **options
            )
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, seconds = timed(search.fit, X_tr, y_tr)
        test = evaluate(search, task, X_te, y_te)
        score = test.get("accuracy", test.get("r2"))
        row = {
            "dataset": name,
            "seed": seed,
            "remedy": label,
            "validation_rows": round(len(X_tr) * share),
            "cv_score": float(search.best_score_),
            "test_score": float(score),
            "gap": float(search.best_score_ - score),
            "seconds": seconds,
        }
        rows.append(row)
        print(
            f"  {name} seed={seed} {label:<36} cv_score={row['cv_score']:.4f} "
            f"test={row['test_score']:.4f} gap={row['gap']:+.4f} {seconds:.1f}s",
            flush=True,
        )
    return rows


def remedies_table(rows, dataset):
    sub = [r for r in rows if r["dataset"] == dataset]
    lines = [
        f"**{dataset}**",
        "",
        "| setting | validation rows | CV score | test score | gap CV - test |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in REMEDIES:
        group = [r for r in sub if r["remedy"] == label]
        if not group:
            continue
        lines.append(
            f"| {label} | {group[0]['validation_rows']} | "
            f"{_mean_se([r['cv_score'] for r in group])} | "
            f"{_mean_se([r['test_score'] for r in group])} | "
            f"{_mean_se([r['gap'] for r in group])} |"
        )
    return "\n".join(lines)


def _mean_se(values):
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {se:.4f}"


def table(rows, dataset):
    sub = [r for r in rows if r["dataset"] == dataset]
    lines = [
        f"**{dataset}** ({sub[0]['validation_rows'] * sub[0]['cv']} training rows)",
        "",
        "| decay | cv (validation share) | validation rows | CV score | test score "
        "| gap CV - test |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label in SPACES:
        for cv in CVS:
            group = [r for r in sub if r["space"] == label and r["cv"] == cv]
            if not group:
                continue
            lines.append(
                f"| {label} | {cv} ({100 // cv}%) | {group[0]['validation_rows']} | "
                f"{_mean_se([r['cv_score'] for r in group])} | "
                f"{_mean_se([r['test_score'] for r in group])} | "
                f"{_mean_se([r['gap'] for r in group])} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=tuple(DATASETS),
        default=["digits300_noise20", "synthetic5000"],
    )
    parser.add_argument(
        "--spaces", nargs="+", choices=tuple(SPACES), default=list(SPACES)
    )
    parser.add_argument("--cvs", nargs="+", type=int, default=list(CVS))
    parser.add_argument(
        "--remedies",
        nargs="*",
        choices=tuple(REMEDIES),
        default=None,
        help="run these settings (all when none is named) instead of the grid",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    rows = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.remedies is not None:
        remedies = args.remedies or list(REMEDIES)
        for name in args.datasets:
            for seed in seeds:
                rows += run_remedies(name, seed, remedies)
        print()
        for name in args.datasets:
            print(remedies_table(rows, name), "\n")
        payload = {"args": vars(args), "rows": rows}
        print(f"saved {save('overfit_remedies', payload)}")
        return
    for name in args.datasets:
        for seed in seeds:
            rows += run(name, seed, args.spaces, args.cvs)
    print()
    for name in args.datasets:
        print(table(rows, name), "\n")
    print(f"saved {save('overfit', {'args': vars(args), 'rows': rows})}")


if __name__ == "__main__":
    main()
