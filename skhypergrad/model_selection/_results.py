"""Rows of the search, beyond what ``BaseSearchCV._format_results`` builds:
the validation-loss and hyper-step columns, the paths, the skipped-step warning."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

from ..exceptions import HyperstepSkippedWarning


def warn_skipped(rows) -> None:
    # Rows of one candidate share their path: count each step once.
    paths = {id(r["path"][-1]): r["path"] for r in rows if r["path"]}
    steps = [rec for path in paths.values() for rec in path]
    skipped = sum(rec["skipped"] for rec in steps)
    if skipped:
        warnings.warn(
            f"{skipped} of {len(steps)} hyper-steps were skipped (non-finite or "
            "diverging hypergradient) and left the hyperparameters unchanged; "
            "path_['reason'] says why. If many are skipped, lower hyper_lr, use a "
            "damped solver (e.g. solver=CG(damping=1e-2)) or train longer before "
            "the first hyper-step (warmup).",
            HyperstepSkippedWarning,
            stacklevel=4,
        )


def more_results(rows) -> dict:
    n_splits = len(rows[0]["out"])
    losses = np.array([[o["loss"] for o in r["out"]] for r in rows], dtype=float)
    more = {f"split{k}_test_loss": losses[:, k] for k in range(n_splits)}
    more["mean_test_loss"] = losses.mean(1)
    more["std_test_loss"] = losses.std(1)
    # Ties share the best rank and failed rows come last, as GridSearchCV ranks.
    key = np.where(np.isnan(more["mean_test_loss"]), np.inf, more["mean_test_loss"])
    more["rank_test_loss"] = rankdata(key, method="min").astype(np.int32)
    more["n_hypersteps"] = np.array([len(r["path"]) for r in rows])
    more["n_skipped_hypersteps"] = np.array(
        [sum(rec["skipped"] for rec in r["path"]) for r in rows]
    )
    return {k: list(v) for k, v in more.items()}


# The columns of path_ besides the tuned values.
PATH_KEYS = (
    "epoch",
    "hyper_lr",
    "val_loss",
    "hypergrad_norm",
    "solver_iter",
    "skipped",
    "reason",
    "at_bound",
)


def path_table(records, values):
    table = {k: [r.get(k) for r in records] for k in PATH_KEYS}
    for name in values:
        table[name] = [r["values"][name] for r in records]
    return table
