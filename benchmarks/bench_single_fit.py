"""The single-fit estimators against the untuned net trained on all the rows.

``HypergradClassifier`` / ``HypergradRegressor`` (weight decay and dropout
tuned on a held-out ``validation_fraction``, predicting with the net trained
at the tuned values) against the same ``Pipeline(StandardScaler, MLP 2x256)``
untuned (no decay, no dropout) on all the training rows, on the datasets of
``bench_search.py``. Variants:

- ``single fit``: the estimator with its defaults (10% held out);
- ``single fit, finished on all rows``: the same, then the kept net trained
  ``ceil(0.1 * max_epochs)`` more epochs on all the training rows (the held-out
  ones included) at the tuned values, through skorch's ``partial_fit``;
- ``single fit, 5% held out``.

Test score (accuracy, or R² for diabetes), mean ± standard error over seeds,
and time as a ratio to the untuned net's (median). Run alone:

    python benchmarks/bench_single_fit.py --first-seed 3 --seeds 3
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from _common import run_over_seeds, summarise, timed
from bench_search import DATASETS, evaluate, load, make_pipeline
from scipy.stats import loguniform, uniform

from skhypergrad import HypergradClassifier, HypergradRegressor

SPACE = {
    "net__optimizer__weight_decay": loguniform(1e-6, 1e-1),
    "net__module__dropout": uniform(0.0, 0.6),
}


def _finish(model, X, y, epochs):
    """Train the kept net ``epochs`` more on all the rows (its scaler kept)."""
    pipe = model.best_estimator_
    Xt = pipe[:-1].transform(X).astype(np.float32)
    pipe[-1].partial_fit(Xt, y, epochs=epochs)
    return model


def run(name, seed):
    X_tr, X_te, y_tr, y_te = load(name, seed)
    task, epochs = DATASETS[name][1], DATASETS[name][2]
    n_out = len(np.unique(y_tr)) if task == "classification" else 1
    pipe = make_pipeline(task, X_tr.shape[1], n_out, epochs)
    single = HypergradClassifier if task == "classification" else HypergradRegressor
    extra = math.ceil(0.1 * epochs)

    def fit_single(**kwargs):
        return single(pipe, SPACE, random_state=seed, **kwargs).fit(X_tr, y_tr)

    def fit_finished():
        return _finish(fit_single(), X_tr, y_tr, extra)

    fits = {
        "untuned, all rows": lambda: pipe.fit(X_tr, y_tr),
        "single fit": fit_single,
        "single fit, finished on all rows": fit_finished,
        "single fit, 5% held out": lambda: fit_single(validation_fraction=0.05),
    }
    rows = []
    for label, fit in fits.items():
        torch.manual_seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, seconds = timed(fit)
        score = evaluate(model, task, X_te, y_te)
        metric = "accuracy" if task == "classification" else "r2"
        rows.append(
            {
                "dataset": name,
                "seed": seed,
                "fit": label,
                "seconds": seconds,
                "score": score[metric],
            }
        )
        print(
            f"  {name} seed {seed} {label}: {score[metric]:.4f} {seconds:.1f}s",
            flush=True,
        )
    return rows


def report(rows):
    print("\n| dataset | fit | test score | × untuned time |")
    print("|---|---|---|---|")
    for name in dict.fromkeys(r["dataset"] for r in rows):
        group = [r for r in rows if r["dataset"] == name]
        stats = summarise(group, ["score", "seconds"], by="fit")
        base = stats["untuned, all rows"]["seconds"][2]
        for label, fit in stats.items():
            mean, std, _ = fit["score"]
            n = sum(r["fit"] == label for r in group)
            print(
                f"| {name} | {label} | {mean:.4f} ± {std / n**0.5:.4f} "
                f"| {fit['seconds'][2] / base:.2f} |"
            )


def main():
    run_over_seeds(__doc__, run, report, "single_fit", DATASETS)


if __name__ == "__main__":
    main()
