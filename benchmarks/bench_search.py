"""Search quality and cost: HypergradSearchCV against the searches people use.

For each dataset and seed, every search tunes weight decay and dropout of
``Pipeline(StandardScaler, skorch MLP 2x256)`` with ``cv=3`` and a budget of 18
candidates; a stratified 25% test split is never seen by any search. The two
digits datasets replace 20% of their training labels by random classes (test
labels stay clean) so that tuning matters; breast cancer is the control.

Run: ``python benchmarks/bench_search.py --first-seed 3`` (full: 3 seeds, all
datasets, about 70 minutes on two cores; seeds 3-5 because the defaults were
chosen on seeds 0-2 by ``bench_defaults.py``) or
``python benchmarks/bench_search.py --quick`` (a few minutes). Prints markdown
tables, saves ``benchmarks/results/search[_quick].json`` and one plot per
dataset (``search_<dataset>.png``). Run one benchmark at a time.
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import numpy as np
import torch
from _common import MLP, RESULTS, numeric_params, save, timed, warm_up
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_classification,
)
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from skhypergrad import (
    HypergradClassifier,
    HypergradRegressor,
    HypergradSearchCV,
    PerLayer,
    Sampled,
    Tuned,
)

WD_RANGE = (1e-6, 1e-1)
DROPOUT_RANGE = (0.0, 0.6)
BUDGET = 18
CV = 3
# HypergradSearchCV starts each distribution at its middle: log-middle of the
# decay range, middle of the dropout range.
START_WD = float(np.sqrt(WD_RANGE[0] * WD_RANGE[1]))
START_DROPOUT = (DROPOUT_RANGE[0] + DROPOUT_RANGE[1]) / 2


# ---------------------------------------------------------------- datasets
def _digits(seed):
    return load_digits(return_X_y=True), None


def _digits300(seed):
    return load_digits(return_X_y=True), 300


def _breast_cancer(seed):
    return load_breast_cancer(return_X_y=True), None


def _synthetic(seed):
    return make_classification(
        n_samples=5000,
        n_features=100,
        n_informative=20,
        n_classes=5,
        flip_y=0.05,
        random_state=0,
    ), None


def _diabetes(seed):
    return load_diabetes(return_X_y=True), None


DATASETS = {
    # name: (loader, task, epochs, label noise); chosen so that the untuned net
    # overfits (see docs/benchmarks.md), except the breast-cancer control.
    # Label noise replaces that fraction of the *training* labels by a random
    # class (test labels stay clean): on clean digits an MLP trained with Adam
    # barely overfits and the untuned net is within 0.3 points of every search.
    "digits_noise20": (_digits, "classification", 20, 0.2),
    "digits300_noise20": (_digits300, "classification", 50, 0.2),
    "breast_cancer": (_breast_cancer, "classification", 20, 0.0),
    "synthetic5000": (_synthetic, "classification", 15, 0.0),
    "diabetes": (_diabetes, "regression", 60, 0.0),
}


def _add_label_noise(y, rate, seed):
    """Replace about ``rate`` of the labels by a class drawn uniformly."""
    rng = np.random.default_rng(1000 + seed)
    y = y.copy()
    flip = rng.random(len(y)) < rate
    y[flip] = rng.choice(np.unique(y), size=int(flip.sum()))
    return y


def load(name, seed):
    (X, y), n_train = DATASETS[name][0](seed)
    task = DATASETS[name][1]
    X = X.astype(np.float32)
    stratify = y if task == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=stratify, random_state=seed
    )
    if n_train is not None:
        X_tr, _, y_tr, _ = train_test_split(
            X_tr, y_tr, train_size=n_train, stratify=y_tr, random_state=seed
        )
    if task == "classification":
        y_tr = _add_label_noise(y_tr, DATASETS[name][3], seed)
        y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    else:
        scale = y_tr.std()
        y_tr = (y_tr / scale).astype(np.float32).reshape(-1, 1)
        y_te = (y_te / scale).astype(np.float32).reshape(-1, 1)
    return X_tr, X_te, y_tr, y_te


# ---------------------------------------------------------------- estimator
def make_pipeline(task, n_features, n_outputs, epochs, hidden=256):
    common = dict(
        module=MLP,
        module__n_features=n_features,
        module__n_classes=n_outputs,
        module__hidden=hidden,
        module__dropout=0.0,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=128,
        train_split=None,
        verbose=0,
    )
    if task == "classification":
        net = NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **common)
    else:
        net = NeuralNetRegressor(**common)
    return Pipeline([("scale", StandardScaler()), ("net", net)])


def searches(pipe, seed, task, quick):
    budget = 6 if quick else BUDGET
    wd, drop = "net__optimizer__weight_decay", "net__module__dropout"
    space = {
        wd: loguniform(*WD_RANGE),
        drop: uniform(DROPOUT_RANGE[0], DROPOUT_RANGE[1]),
    }
    tuned = {wd: space[wd], drop: Tuned(space[drop])}
    grid = (
        {wd: list(np.logspace(-6, -1, 6)), drop: [0.0, 0.3, 0.6]}
        if not quick
        else {wd: [1e-5, 1e-3, 1e-1], drop: [0.0, 0.5]}
    )
    out = {
        "untuned": (clone(pipe), 1),
        # The same work as HypergradSearchCV without hyper-steps: one training
        # per split at the search's starting point, plus the refit. Its time
        # measures the hyper-steps' overhead directly.
        "plain CV training": (
            GridSearchCV(pipe, {wd: [START_WD], drop: [START_DROPOUT]}, cv=CV),
            CV + 1,
        ),
        "GridSearchCV": (GridSearchCV(pipe, grid, cv=CV), budget * CV + 1),
        "RandomizedSearchCV": (
            RandomizedSearchCV(pipe, space, n_iter=budget, cv=CV, random_state=seed),
            budget * CV + 1,
        ),
        # scikit-learn's own fast peer: successive halving over the epochs (many
        # candidates for a few epochs, the survivors longer). "trainings" counts
        # full-length equivalents: the epochs it trains, over max_epochs.
        "HalvingRandomSearchCV (epochs)": (
            HalvingRandomSearchCV(
                pipe,
                space,
                resource="net__max_epochs",
                max_resources=pipe.get_params()["net__max_epochs"],
                min_resources=max(2, pipe.get_params()["net__max_epochs"] // 9),
                factor=3,
                cv=CV,
                random_state=seed,
            ),
            None,
        ),
        # The decay tuned, the dropout range drawn n_iter=10 times by the outer
        # search (the default before dropout was tuned by hypergradients).
        "HypergradSearchCV (dropout sampled)": (
            HypergradSearchCV(
                pipe,
                {wd: space[wd], drop: Sampled(space[drop])},
                cv=CV,
                random_state=seed,
            ),
            # tuning + the tuned values as constants per split (a third
            # training where the starting values are checked is not counted)
            10 * 2 * CV + 1,
        ),
        # The ranges as a user writes them, with the defaults: both tuned by
        # hypergradients, one tuning and one constant training per split
        # (rescore=True; the starting values' check is not counted).
        "HypergradSearchCV": (
            HypergradSearchCV(pipe, space, cv=CV, random_state=seed),
            2 * CV + 1,
        ),
        "HypergradSearchCV per-layer": (
            HypergradSearchCV(
                pipe,
                {wd: PerLayer(loguniform(*WD_RANGE)), drop: tuned[drop]},
                cv=CV,
                random_state=seed,
            ),
            2 * CV + 1,
        ),
        # One training in total, for data too large to train cv times: a third
        # of the rows held out (as each CV split holds out a third), no refit.
        "Hypergrad one training": (
            (HypergradClassifier if task == "classification" else HypergradRegressor)(
                pipe, tuned, validation_fraction=1 / CV, random_state=seed
            ),
            2,
        ),
    }
    optuna_search = _optuna(pipe, seed, budget, wd, drop)
    if optuna_search is not None:
        out["OptunaSearchCV (TPE)"] = (optuna_search, budget * CV + 1)
    bayes = _skopt(pipe, seed, budget, wd, drop)
    if bayes is not None:
        out["BayesSearchCV (skopt)"] = (bayes, budget * CV + 1)
    return out


def _optuna(pipe, seed, budget, wd, drop):
    try:
        import optuna
        from optuna.distributions import FloatDistribution
        from optuna_integration import OptunaSearchCV
    except ImportError as exc:
        SKIPPED["OptunaSearchCV"] = f"not installed: {exc}"
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {
        wd: FloatDistribution(*WD_RANGE, log=True),
        drop: FloatDistribution(*DROPOUT_RANGE),
    }
    return OptunaSearchCV(
        pipe,
        space,
        n_trials=budget,
        cv=CV,
        random_state=seed,
        verbose=0,
        study=optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        ),
    )


def _skopt(pipe, seed, budget, wd, drop):
    try:
        from skopt import BayesSearchCV
    except ImportError as exc:
        SKIPPED["BayesSearchCV"] = f"not installed: {exc}"
        return None
    space = {wd: (WD_RANGE[0], WD_RANGE[1], "log-uniform"), drop: DROPOUT_RANGE}
    return BayesSearchCV(pipe, space, n_iter=budget, cv=CV, random_state=seed)


SKIPPED: dict = {}


# ---------------------------------------------------------------- running
def evaluate(estimator, task, X_te, y_te):
    if task == "classification":
        proba = estimator.predict_proba(X_te)
        return {
            "accuracy": accuracy_score(y_te, proba.argmax(1)),
            "log_loss": log_loss(y_te, proba, labels=np.arange(proba.shape[1])),
        }
    pred = estimator.predict(X_te)
    return {"r2": r2_score(y_te, pred), "mse": mean_squared_error(y_te, pred)}


def run(name, seed, quick, only=None):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    if quick:
        epochs = max(10, epochs // 3)
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs)
    rows = []
    for search_name, (search, trainings) in searches(pipe, seed, task, quick).items():
        if only is not None and search_name not in only:
            continue
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning, etc.
            try:
                _, seconds = timed(search.fit, X_tr, y_tr)
            except Exception as exc:  # recorded, not hidden
                SKIPPED[search_name] = f"{type(exc).__name__}: {exc}"[:300]
                continue
        if trainings is None:  # successive halving: full-length equivalents
            epochs_trained = sum(
                c * r for c, r in zip(search.n_candidates_, search.n_resources_)
            )
            trainings = epochs_trained * CV / epochs + 1
        row = {
            "dataset": name,
            "search": search_name,
            "seed": seed,
            "seconds": seconds,
            "trainings": trainings,
        }
        row.update(evaluate(search, task, X_te, y_te))
        if hasattr(search, "best_params_"):
            row["best_params"] = numeric_params(search.best_params_)
        if hasattr(search, "path_"):
            row["hypersteps"] = len(search.path_["epoch"])
            row["skipped_hypersteps"] = int(sum(search.path_["skipped"]))
            row["mean_solver_iter"] = float(np.mean(search.path_["solver_iter"]))
        rows.append(row)
        print(
            f"  {name} seed={seed} {search_name:<28} {seconds:7.1f}s "
            + " ".join(f"{k}={row[k]:.4f}" for k in ("accuracy", "r2") if k in row),
            flush=True,
        )
    for key, reference in (
        ("time_ratio_vs_grid", "GridSearchCV"),
        ("time_ratio_vs_plain", "plain CV training"),
    ):
        ref = [r["seconds"] for r in rows if r["search"] == reference]
        for row in rows:
            row[key] = row["seconds"] / ref[0] if ref else float("nan")
    return rows


def table(rows, dataset):
    sub = [r for r in rows if r["dataset"] == dataset]
    metrics = ["accuracy", "log_loss"] if "accuracy" in sub[0] else ["r2", "mse"]
    cols = metrics + [
        "seconds",
        "time_ratio_vs_grid",
        "time_ratio_vs_plain",
        "trainings",
    ]
    lines = [
        f"### {dataset}",
        "",
        "| search | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for search in dict.fromkeys(r["search"] for r in sub):
        group = [r for r in sub if r["search"] == search]
        cells = []
        for col in cols:
            values = [r[col] for r in group]
            mean = statistics.fmean(values)
            if col == "trainings":
                cells.append(f"{mean:.0f}")
            elif col.startswith("time_ratio"):
                cells.append(f"{statistics.median(values):.3f}")
            else:
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{mean:.4f} ± {sd:.4f}")
        lines.append(f"| {search} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows, dataset, suffix):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sub = [r for r in rows if r["dataset"] == dataset]
    metric = "accuracy" if "accuracy" in sub[0] else "r2"
    fig, ax = plt.subplots(figsize=(6, 4))
    for search in dict.fromkeys(r["search"] for r in sub):
        group = [r for r in sub if r["search"] == search]
        ax.scatter(
            [r["seconds"] for r in group], [r[metric] for r in group], label=search
        )
    ax.set_xscale("log")
    ax.set_xlabel("wall time (s, log scale)")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(dataset)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / f"search_{dataset}{suffix}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small budget")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first_seed, first_seed + 1, ... (the defaults were chosen on 0-2)",
    )
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument(
        "--searches", nargs="*", default=None, help="run only these searches"
    )
    parser.add_argument(
        "--tag", default="", help="save results/search<tag>.json and plots with it"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    seeds = args.seeds or (1 if args.quick else 3)
    suffix = ("_quick" if args.quick else "") + args.tag
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name in args.datasets:
        for seed in range(args.first_seed, args.first_seed + seeds):
            rows += run(name, seed, args.quick, args.searches)
        print(table(rows, name), "\n", flush=True)
        plot(rows, name, suffix)
    for search, reason in SKIPPED.items():
        print(f"skipped {search}: {reason}")
    path = save(
        f"search{suffix}", {"args": vars(args), "rows": rows, "skipped": SKIPPED}
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
