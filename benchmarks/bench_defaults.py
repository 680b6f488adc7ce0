"""Choosing the defaults: HypergradSearchCV under several settings, side by side.

Runs only HypergradSearchCV (weight decay + dropout, the space and estimator of
``bench_search.py``) on the datasets of ``bench_search.py`` with each setting
below, over several seeds, and prints mean test score, its spread and wall time
per setting. The other searches' scores for the same datasets and seeds are in
``bench_search.py``'s output; this script is what the defaults in
``docs/benchmarks.md`` were chosen from.

Run: ``python benchmarks/bench_defaults.py`` (3 seeds, 4 datasets, every
setting; about 40 minutes on two cores) or pick with ``--configs`` /
``--datasets`` / ``--seeds``; rows are added to
``benchmarks/results/defaults.json`` (a setting run again replaces its rows)
and ``--report`` prints the table of everything saved. Run one benchmark at a
time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings

import numpy as np
import torch
from _common import RESULTS, gauss_newton, numeric_params, save, timed, warm_up
from bench_search import (
    DATASETS,
    DROPOUT_RANGE,
    WD_RANGE,
    evaluate,
    load,
    make_pipeline,
)
from scipy.stats import loguniform, uniform

from skhypergrad import HypergradSearchCV, Tuned
from skhypergrad.hypergrad import CG, CosineSchedule

# label: keyword arguments of HypergradSearchCV (everything else default).
# Every setting names the learning rate, its schedule and Adam's betas, so that
# a rerun means the same thing after the defaults change. "b(x,y)": betas;
# without one, Adam's usual (0.9, 0.999), the defaults before this sweep.
_B = "hyper_optimizer__betas"
_OLD = {"hyper_optimizer__schedule": None, _B: (0.9, 0.999)}
_COS = {"hyper_optimizer__schedule": CosineSchedule(0.1)}
CONFIGS = {
    "lr0.2 (old default)": {**_OLD, "hyper_optimizer__lr": 0.2},
    "lr0.5": {**_OLD, "hyper_optimizer__lr": 0.5},
    "lr1.0": {**_OLD, "hyper_optimizer__lr": 1.0},
    "lr0.3": {**_OLD, "hyper_optimizer__lr": 0.3},
    "lr0.5 cosine": {**_OLD, **_COS, "hyper_optimizer__lr": 0.5},
    "lr1.0 cosine": {**_OLD, **_COS, "hyper_optimizer__lr": 1.0},
    "lr0.5 cosine b(0,.9)": {
        **_COS,
        "hyper_optimizer__lr": 0.5,
        "hyper_optimizer__betas": (0.0, 0.9),
    },
    "lr1.0 cosine b(0,.9)": {
        **_COS,
        "hyper_optimizer__lr": 1.0,
        "hyper_optimizer__betas": (0.0, 0.9),
    },
    "lr0.5 cosine b(.5,.9)": {
        **_COS,
        "hyper_optimizer__lr": 0.5,
        "hyper_optimizer__betas": (0.5, 0.9),
    },
    "lr1.0 cosine b(.5,.9)": {
        **_COS,
        "hyper_optimizer__lr": 1.0,
        "hyper_optimizer__betas": (0.5, 0.9),
    },
    "defaults, cg-3, batch 128": {
        "solver": CG(max_iter=3),
        "hyper_optimizer__batch_size": 128,
    },
    "defaults, cg-3, batch 64": {
        "solver": CG(max_iter=3),
        "hyper_optimizer__batch_size": 64,
    },
    "lr0.5 warmup1": {**_OLD, "hyper_optimizer__lr": 0.5, "hyper_optimizer__warmup": 1},
    # The Gauss-Newton solver (the default since the dropout study): how much
    # of its cost (CG iterations x hyper-step batch) the tuning needs, and
    # whether starting each solve from the split's previous solution helps.
    "gn10 b256 (default)": {
        "solver": gauss_newton(10),
        "hyper_optimizer__batch_size": 256,
    },
    "gn5 b256": {"solver": gauss_newton(5), "hyper_optimizer__batch_size": 256},
    "gn5 b128": {"solver": gauss_newton(5), "hyper_optimizer__batch_size": 128},
    "gn3 b128": {"solver": gauss_newton(3), "hyper_optimizer__batch_size": 128},
    "gn5 b128 warm": {
        "solver": gauss_newton(5, warm_start=True),
        "hyper_optimizer__batch_size": 128,
    },
    "gn3 b128 warm": {
        "solver": gauss_newton(3, warm_start=True),
        "hyper_optimizer__batch_size": 128,
    },
    # Half the hyper-steps (the overhead target of Section 2c), larger steps.
    "gn5 b128 interval2 lr1.0": {
        "solver": gauss_newton(5),
        "hyper_optimizer__batch_size": 128,
        "hyper_optimizer__interval": 2,
        "hyper_optimizer__lr": 1.0,
    },
    "gn5 b128 interval2 lr0.5": {
        "solver": gauss_newton(5),
        "hyper_optimizer__batch_size": 128,
        "hyper_optimizer__interval": 2,
        "hyper_optimizer__lr": 0.5,
    },
    "gn10 b128 interval2 lr1.0": {
        "solver": gauss_newton(10),
        "hyper_optimizer__batch_size": 128,
        "hyper_optimizer__interval": 2,
        "hyper_optimizer__lr": 1.0,
    },
    "gn10 b256 interval2 lr1.0": {
        "solver": gauss_newton(10),
        "hyper_optimizer__batch_size": 256,
        "hyper_optimizer__interval": 2,
        "hyper_optimizer__lr": 1.0,
    },
    "lr0.5 avg-last-step": {
        **_OLD,
        "hyper_optimizer__lr": 0.5,
        "hyper_optimizer__average_last": 0.01,
    },
}
DEFAULT_DATASETS = ("digits_noise20", "digits300_noise20", "synthetic5000", "diabetes")


def run(name, seed, configs):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs)
    space = {
        "net__optimizer__weight_decay": loguniform(*WD_RANGE),
        "net__module__dropout": Tuned(uniform(DROPOUT_RANGE[0], DROPOUT_RANGE[1])),
    }
    rows = []
    for label in configs:
        search = HypergradSearchCV(
            pipe, space, cv=3, random_state=seed, **CONFIGS[label]
        )
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, seconds = timed(search.fit, X_tr, y_tr)
        row = {"dataset": name, "config": label, "seed": seed, "seconds": seconds}
        row.update(evaluate(search, task, X_te, y_te))
        row["score"] = row.get("accuracy", row.get("r2"))
        row["best_params"] = numeric_params(search.best_params_)
        rows.append(row)
        print(
            f"  {name} seed={seed} {label:<22} {seconds:6.1f}s "
            f"score={row['score']:.4f} "
            + " ".join(
                f"{k.split('__')[-1]}={v:.3g}" for k, v in row["best_params"].items()
            ),
            flush=True,
        )
    return rows


def table(rows, datasets, configs):
    lines = [
        "| setting | " + " | ".join(datasets) + " | median seconds |",
        "|---" * (len(datasets) + 2) + "|",
    ]
    for label in configs:
        cells = []
        for name in datasets:
            scores = [
                r["score"]
                for r in rows
                if r["config"] == label and r["dataset"] == name
            ]
            sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
            cells.append(f"{statistics.fmean(scores):.4f} ± {sd:.4f}")
        seconds = [r["seconds"] for r in rows if r["config"] == label]
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {statistics.median(seconds):.1f} |"
        )
    return "\n".join(lines)


def oracle(configs):
    """Each setting on a problem with a known optimum: the linear regressor of
    tests/model_selection/test_linear_oracle.py (60 features, 90 samples, SGD
    to convergence), whose mean validation MSE has a closed form. Reports the
    found weight decay's loss over the best of a 200-point grid and the range
    the path swept (wide = the hyper-optimiser oscillates)."""
    from skorch import NeuralNetRegressor
    from torch import nn

    from skhypergrad import Real
    from skhypergrad.datasets import make_linear_oracle

    oracle = make_linear_oracle()
    print(
        f"best grid point: weight decay {oracle.best_weight_decay:.4f}, "
        f"loss {oracle.best_loss:.4f}"
    )
    lines = [
        "| setting | found weight decay | loss / best grid loss "
        "| path range, last half |",
        "|---|---|---|---|",
    ]
    rows = []
    for label in configs:
        net = NeuralNetRegressor(
            nn.Linear,
            module__in_features=60,
            module__out_features=1,
            optimizer=torch.optim.SGD,
            lr=0.2,
            max_epochs=200,
            batch_size=-1,
            train_split=None,
            verbose=0,
        )
        search = HypergradSearchCV(
            net,
            {"optimizer__weight_decay": Real(1e-4, 10.0, log=True)},
            cv=oracle.splits,
            random_state=0,
            refit=False,
            **CONFIGS[label],
        ).fit(oracle.X, oracle.y)
        found = search.best_params_["optimizer__weight_decay"]
        path = search.path_["optimizer__weight_decay"]
        tail = path[len(path) // 2 :]
        ratio = oracle.loss_ratio(found)
        rows.append({"config": label, "found": found, "ratio": ratio, "path": path})
        lines.append(
            f"| {label} | {found:.4f} | {ratio:.4f} | {min(tail):.4f}–{max(tail):.4f} |"
        )
        print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return rows


def _key(row):
    return row["config"], row["dataset"], row["seed"]


def _merge(old_rows, new_rows):
    """Earlier rows, with those of a (config, dataset, seed) run again replaced."""
    fresh = {_key(r) for r in new_rows}
    return [r for r in old_rows if _key(r) not in fresh] + new_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS)
    )
    parser.add_argument(
        "--datasets", nargs="+", choices=tuple(DATASETS), default=list(DEFAULT_DATASETS)
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the table of every setting saved so far; run nothing",
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="run the settings on the linear problem with a closed-form optimum",
    )
    args = parser.parse_args()
    if args.oracle:
        torch.set_num_threads(args.threads)
        save("defaults_oracle", {"rows": oracle(args.configs)})
        return
    path = RESULTS / "defaults.json"
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    if args.report:
        configs = [c for c in CONFIGS if any(r["config"] == c for r in old)]
        datasets = [d for d in DATASETS if any(r["dataset"] == d for r in old)]
        print(table(old, datasets, configs))
        return
    torch.set_num_threads(args.threads)
    warm_up()
    rows = []
    for name in args.datasets:
        for seed in range(args.seeds):
            rows += run(name, seed, args.configs)
    print("\nmean test score (accuracy; R² for diabetes) ± std over seeds\n")
    print(table(rows, args.datasets, args.configs))
    # Each invocation adds to the saved sweep instead of overwriting it.
    saved = save("defaults", {"rows": _merge(old, rows)})
    print(f"saved {saved}")


if __name__ == "__main__":
    main()
