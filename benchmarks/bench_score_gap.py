"""Does ``best_score_`` estimate what the refit trains?

For each dataset of ``bench_search.py`` (plus the 500-row synthetic problem on
which a search once collapsed), HypergradSearchCV tunes weight decay in
[1e-6, 1e-1] (log) and a dropout rate in [0, 0.5] (``Tuned``) with ``cv=3``;
then ``clone(estimator).set_params(**best_params_)`` is cross-validated on the
same folds (``cross_val_score``, R networks of other seeds), and the gap
``best_score_ - mean(cross_val_score)`` is reported, with the test score of
``best_estimator_`` on a held-out quarter. The seed-to-seed spread of the
constant configuration's own CV score (std over the R repeats) says how much
of a gap is only the networks' seeds.

    python benchmarks/bench_score_gap.py                 # rescore=True (default)
    python benchmarks/bench_score_gap.py --path-scores   # rescore=False
    python benchmarks/bench_score_gap.py --seeds 0 1 --repeats 3

Prints a markdown table and saves ``benchmarks/results/score_gap[_path].json``.
The code before ``rescore`` existed can be measured with the same command from
an older checkout on ``PYTHONPATH`` (``--path-scores`` is then ignored).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

sys.path.insert(0, str(Path(__file__).parent))
from _common import save  # noqa: E402
from bench_search import DATASETS, load, make_pipeline  # noqa: E402

from skhypergrad import HypergradSearchCV, Tuned  # noqa: E402


def _synthetic500(seed):
    return make_classification(
        5000, 100, n_informative=20, n_classes=5, random_state=0
    ), 500


CASES = {name: spec for name, spec in DATASETS.items()}
CASES["synthetic500_30ep"] = (_synthetic500, "classification", 30, 0.0)


def run_case(name, seed, repeats, path_scores):
    DATASETS.setdefault(name, CASES[name])
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = CASES[name][1], CASES[name][2]
    n_out = int(y_tr.max()) + 1 if task == "classification" else 1
    pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs, hidden=128)
    splitter = StratifiedKFold if task == "classification" else KFold
    folds = list(splitter(3, shuffle=True, random_state=seed).split(X_tr, y_tr))
    space = {
        "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
        "net__module__dropout": Tuned(uniform(0.0, 0.5)),
    }
    kwargs = {"cv": folds, "random_state": seed}
    if "rescore" in inspect.signature(HypergradSearchCV).parameters:
        kwargs["rescore"] = not path_scores
    search = HypergradSearchCV(pipe, space, **kwargs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X_tr, y_tr)
    seconds = time.perf_counter() - start
    constants = clone(pipe).set_params(**search.best_params_)
    cv_means = []
    for r in range(repeats):
        torch.manual_seed(100 + r)
        cv_means.append(float(cross_val_score(constants, X_tr, y_tr, cv=folds).mean()))
    kept = search.cv_results_.get("tuned_values_kept", [True])[search.best_index_]
    return {
        "dataset": name,
        "seed": seed,
        "best_score": float(search.best_score_),
        "constants_cv": statistics.mean(cv_means),
        "constants_cv_std": statistics.stdev(cv_means) if repeats > 1 else 0.0,
        "gap": float(search.best_score_) - statistics.mean(cv_means),
        "test_score": float(search.score(X_te, y_te)),
        "weight_decay": float(search.best_params_["net__optimizer__weight_decay"]),
        "dropout": float(search.best_params_["net__module__dropout"]),
        "tuned_values_kept": bool(kept),
        "seconds": seconds,
    }


def table(rows):
    lines = [
        "| dataset | seed | best_score_ | cross_val_score of best_params_ (± seed std) "
        "| gap | test score | weight decay | dropout | tuned kept | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['seed']} | {r['best_score']:.3f} | "
            f"{r['constants_cv']:.3f} ± {r['constants_cv_std']:.3f} | "
            f"{r['gap']:+.3f} | {r['test_score']:.3f} | {r['weight_decay']:.2g} | "
            f"{r['dropout']:.2f} | {r['tuned_values_kept']} | {r['seconds']:.1f} |"
        )
    gaps = [abs(r["gap"]) for r in rows]
    lines.append(
        f"\nmax |gap| {max(gaps):.3f}, median |gap| {statistics.median(gaps):.3f} "
        f"over {len(rows)} runs"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=list(CASES))
    parser.add_argument("--path-scores", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        for name in args.datasets:
            rows.append(run_case(name, seed, args.repeats, args.path_scores))
            print(table(rows[-1:]).splitlines()[-3], flush=True)
    print(table(rows))
    suffix = ("_path" if args.path_scores else "") + args.tag
    save(f"score_gap{suffix}", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
