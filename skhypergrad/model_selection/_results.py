"""``cv_results_`` with GridSearchCV's keys, and the choice of the best row."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def _rank(values, ascending=False):
    values = np.asarray(values, dtype=float)
    key = np.where(np.isnan(values), np.inf, values if ascending else -values)
    return rankdata(key, method="min").astype(np.int32)


def build_cv_results(specs, results, metrics, n_splits, return_train_score):
    """Assemble the ``cv_results_`` dict: one row per starting point.

    Parameters
    ----------
    specs : list of HparamSpec
    results : list of dict
        Outputs of ``run_start``.
    metrics : list of str
        Scorer names (``["score"]`` for a single metric).
    n_splits : int
    return_train_score : bool

    Returns
    -------
    cv_results : dict of numpy arrays
    """
    n = len(results)
    out = {}
    fit = np.array([r["fit_time"] for r in results], dtype=float)
    score_t = np.array([[s["score_time"] for s in r["scores"]] for r in results])
    out["mean_fit_time"], out["std_fit_time"] = fit.mean(1), fit.std(1)
    out["mean_score_time"], out["std_score_time"] = score_t.mean(1), score_t.std(1)
    for spec in specs:
        column = np.ma.MaskedArray(np.empty(n, dtype=object), mask=False)
        for i, r in enumerate(results):
            column[i] = r["values"][spec.name]
        out[f"param_{spec.name}"] = column
    out["params"] = [dict(r["values"]) for r in results]
    suffix = (lambda m: "score") if metrics == ["score"] else (lambda m: m)
    sets = ["test", "train"] if return_train_score else ["test"]
    for metric in metrics:
        for part in sets:
            table = np.array(
                [[s[part][metric] for s in r["scores"]] for r in results], dtype=float
            )
            for k in range(n_splits):
                out[f"split{k}_{part}_{suffix(metric)}"] = table[:, k]
            out[f"mean_{part}_{suffix(metric)}"] = table.mean(1)
            out[f"std_{part}_{suffix(metric)}"] = table.std(1)
            if part == "test":
                out[f"rank_test_{suffix(metric)}"] = _rank(table.mean(1))
    losses = np.array([[s["loss"] for s in r["scores"]] for r in results], dtype=float)
    for k in range(n_splits):
        out[f"split{k}_test_loss"] = losses[:, k]
    out["mean_test_loss"] = losses.mean(1)
    out["std_test_loss"] = losses.std(1)
    out["rank_test_loss"] = _rank(out["mean_test_loss"], ascending=True)
    out["n_hypersteps"] = np.array([len(r["path"]) for r in results])
    out["n_skipped_hypersteps"] = np.array(
        [sum(rec["skipped"] for rec in r["path"]) for r in results]
    )
    return out


def select_best(cv_results, refit, multimetric):
    """Index of the best row, as GridSearchCV chooses it (None if undefined).

    ``refit=True`` with one metric picks the lowest mean validation loss, the
    quantity the hypergradients minimise.
    """
    if callable(refit):
        index = refit(cv_results)
        if not isinstance(index, int | np.integer) or not 0 <= index < len(
            cv_results["params"]
        ):
            raise ValueError(
                f"refit callable must return a row index in [0, "
                f"{len(cv_results['params'])}), got {index!r}."
            )
        return int(index)
    if multimetric:
        if isinstance(refit, str):
            return int(np.argmin(cv_results[f"rank_test_{refit}"]))
        return None
    return int(np.argmin(cv_results["rank_test_loss"]))
