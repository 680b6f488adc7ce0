"""A candidate's splits spread over a cluster, and the cost of starting workers.

One-candidate search (a weight-decay range, ``cv=2``) on 5000 synthetic rows,
``Pipeline(StandardScaler, MLP 2x128)``, 30 epochs, against the same search
with ``n_jobs=1``:

- ``dask, cold``: the first fit on a fresh ``LocalCluster`` of 2 worker
  processes (1 thread each): the workers import torch and skhypergrad;
- ``dask, warm``: later fits on the same cluster (median of ``--repeats``);
- ``loky n_jobs=2, cold / warm``: joblib's default backend, the first fit of
  the process (the workers start) and later ones (joblib reuses them).

Every run must give the same path and scores as ``n_jobs=1``. Run alone:

    python benchmarks/bench_cluster.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

import joblib
import numpy as np
import torch
from _common import classifier_pipeline, save, timed, warm_up
from scipy.stats import loguniform
from sklearn.datasets import make_classification

from skhypergrad import HypergradSearchCV


def search(n_jobs, seed=0):
    return HypergradSearchCV(
        classifier_pipeline(20, 2, max_epochs=30),
        {"net__optimizer__weight_decay": loguniform(1e-5, 1e-1)},
        cv=2,
        n_jobs=n_jobs,
        random_state=seed,
        refit=False,
    )


def fit(n_jobs, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return timed(search(n_jobs).fit, X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = make_classification(5000, 20, n_informative=10, random_state=0)
    warm_up()
    reference, _ = fit(1, X, y)
    times = {"n_jobs=1": [fit(1, X, y)[1] for _ in range(args.repeats)]}

    def check(result):
        assert result.paths_ == reference.paths_, "a run differs from n_jobs=1"
        np.testing.assert_array_equal(
            result.cv_results_["mean_test_score"],
            reference.cv_results_["mean_test_score"],
        )

    result, cold = fit(2, X, y)
    check(result)
    times["loky n_jobs=2, cold"] = [cold]
    times["loky n_jobs=2, warm"] = []
    for _ in range(args.repeats):
        result, seconds = fit(2, X, y)
        check(result)
        times["loky n_jobs=2, warm"].append(seconds)

    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            here = str(Path(__file__).parent)  # the workers import _common here
            client.run(lambda: __import__("sys").path.insert(0, here))
            client.run(lambda: __import__("torch").set_num_threads(1))
            with joblib.parallel_config(backend="dask"):
                result, cold = fit(-1, X, y)
                check(result)
                times["dask LocalCluster(2), cold"] = [cold]
                times["dask LocalCluster(2), warm"] = []
                for _ in range(args.repeats):
                    result, seconds = fit(-1, X, y)
                    check(result)
                    times["dask LocalCluster(2), warm"].append(seconds)

    base = statistics.median(times["n_jobs=1"])
    print("| run | median s | × n_jobs=1 | runs |")
    print("|---|---|---|---|")
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(
            {"run": name, "median_s": median, "ratio": median / base, "runs": values}
        )
        print(f"| {name} | {median:.2f} | {median / base:.2f} | {len(values)} |")
    print("every run gave the path and scores of n_jobs=1")
    print(save("cluster", {"rows": rows, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
