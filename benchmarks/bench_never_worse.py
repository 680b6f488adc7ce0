"""Never worse than not searching: the two cases of the decision-rule work over seeds.

``collapse``: the 500-row, 5-class problem where the decay used to run to its bound
and the refit scored at chance (the setup of ``tests/model_selection/test_decisions.py``
and of the case script, with the data drawn by ``seed``): test accuracy of the search's
refit, of ``HypergradClassifier`` (decay only, defaults) and of the untuned net.
``ridge``: the linear problem whose CV MSE is known in closed form for every decay: the
search's decay's CV MSE over the exact optimum's, and the share of rejected steps.

Run: ``python benchmarks/bench_never_worse.py --first-seed 0 --seeds 3``
(saves ``results/never_worse_seeds<first>.json``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from _common import classifier_pipeline, run_over_seeds, timed
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from skorch import NeuralNetRegressor
from torch import nn

from skhypergrad import HypergradClassifier, HypergradSearchCV
from skhypergrad.datasets import ridge_cv_loss


def collapse(seed):
    X, y = make_classification(
        n_samples=5000,
        n_features=100,
        n_informative=20,
        n_classes=5,
        flip_y=0.05,
        random_state=seed,
    )
    X = X.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    Xtr, _, ytr, _ = train_test_split(
        Xtr, ytr, train_size=500, stratify=ytr, random_state=seed
    )
    # The case's Pipeline(StandardScaler, 2x128 MLP), no dropout, no decay.
    pipe = classifier_pipeline(100, 5).set_params(
        net__module__dropout=0.0, net__optimizer__weight_decay=0.0
    )
    torch.manual_seed(seed)
    untuned, t_untuned = timed(lambda: clone(pipe).fit(Xtr, ytr).score(Xte, yte))
    search = HypergradSearchCV(
        pipe,
        {
            "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
            "net__module__dropout": uniform(0.0, 0.5),
        },
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        random_state=seed,
    )
    _, t_search = timed(search.fit, Xtr, ytr)
    single = HypergradClassifier(
        pipe,
        {"net__optimizer__weight_decay": loguniform(1e-6, 1e-1)},
        random_state=seed,
    )
    _, t_single = timed(single.fit, Xtr, ytr)
    row = search.best_index_
    return [
        {"case": "collapse", "seed": seed, "what": "untuned", "test": untuned,
         "seconds": t_untuned},
        {"case": "collapse", "seed": seed, "what": "HypergradSearchCV",
         "test": search.score(Xte, yte), "seconds": t_search,
         "reported": str(search.cv_results_["reported_values"][row]),
         "decay": search.best_params_["net__optimizer__weight_decay"]},
        {"case": "collapse", "seed": seed, "what": "HypergradClassifier",
         "test": single.score(Xte, yte), "seconds": t_single,
         "reported": str(single.cv_results_["reported_values"][0]),
         "decay": single.best_params_["net__optimizer__weight_decay"]},
    ]  # fmt: skip


def ridge(seed):
    X, y = make_regression(
        n_samples=300, n_features=120, n_informative=15, noise=150.0, random_state=seed
    )
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32).reshape(-1, 1)
    folds = list(KFold(3, shuffle=True, random_state=0).split(X))
    best = min(
        ridge_cv_loss(X, y.ravel(), folds, lam) for lam in np.logspace(-5, 1, 121)
    )
    torch.manual_seed(0)
    net = NeuralNetRegressor(
        nn.Linear,
        module__in_features=X.shape[1],
        module__out_features=1,
        optimizer=torch.optim.Adam,
        lr=0.03,
        batch_size=256,
        max_epochs=300,
        train_split=None,
        verbose=0,
    )
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-5, 10)},
        cv=folds,
        scoring="neg_mean_squared_error",
        refit=False,
        random_state=0,
    )
    _, seconds = timed(search.fit, X, y)
    lam = search.best_params_["optimizer__weight_decay"]
    rejected = np.asarray(search.path_["rejected"])
    return [
        {"case": "ridge", "seed": seed, "what": "HypergradSearchCV",
         "ratio": ridge_cv_loss(X, y.ravel(), folds, lam) / best,
         "rejected": float(rejected.mean()), "seconds": seconds}
    ]  # fmt: skip


def run(case, seed):
    warnings.simplefilter("ignore")
    return collapse(seed) if case == "collapse" else ridge(seed)


def report(rows):
    print("| case | seed | what | figure | seconds | reported |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        figure = (
            f"test accuracy {r['test']:.3f}"
            if "test" in r
            else f"{r['ratio']:.4f}x the optimum's CV MSE, "
            f"{r['rejected']:.0%} of steps rejected"
        )
        print(
            f"| {r['case']} | {r['seed']} | {r['what']} | {figure} | "
            f"{r['seconds']:.1f} | {r.get('reported', '')} |"
        )


if __name__ == "__main__":
    run_over_seeds(__doc__, run, report, "never_worse", ["collapse", "ridge"])
