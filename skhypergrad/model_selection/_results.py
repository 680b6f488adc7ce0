"""Rows of the search, beyond what ``BaseSearchCV._format_results`` builds:
the validation-loss and hyper-step columns, the paths, the skipped-step warning."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from ..exceptions import BoundaryValueWarning, HyperstepSkippedWarning


@dataclass
class CandidateRow:
    """One row of ``cv_results_``: a candidate from one starting point, read
    off at one ``max_epochs`` value.

    Produced by :func:`~skhypergrad.model_selection._training._outer_loop.assemble`;
    the decision rule (:func:`~skhypergrad.model_selection._decision.decide`)
    replaces ``params``, ``out`` and ``estimators`` with those of the values it
    reports.

    Attributes
    ----------
    params : dict
        Outer and tuned values, ready for ``set_params``.
    out : list of dict
        One ``_fit_and_score``-style result per split, plus ``loss``.
    path : list of dict
        The hyper-step records up to this row's epochs.
    values : dict
        The tuned values per entry (for the path tables and the warnings).
    entries : list
        The tuned entries (family objects).
    estimators : dict
        The split estimators, where the settings keep them.
    reported : str
        The decision rule's proposal that is reported ("tuned" without one).
    proposal_scores : dict
        Every proposal's mean score on the decision's metric.
    """

    params: dict
    out: list
    path: list
    values: dict
    entries: list
    estimators: dict = field(default_factory=dict)
    reported: str = "tuned"
    proposal_scores: dict = field(default_factory=dict)


def warn_skipped(rows) -> None:
    # Rows of one candidate share their path: count each step once.
    paths = {id(r.path[-1]): r.path for r in rows if r.path}
    steps = [rec for path in paths.values() for rec in path]
    skipped = sum(rec["skipped"] for rec in steps)
    if skipped:
        warnings.warn(
            f"{skipped} of {len(steps)} hyper-steps were skipped (non-finite or "
            "diverging hypergradient) and left the hyperparameters unchanged; "
            "path_['reason'] says why. If many are skipped, lower the outer rate "
            "(hyper_optimizer__lr), use a damped solver (e.g. "
            "solver=CG(damping=1e-2)) or train longer before the first hyper-step "
            "(hyper_optimizer__warmup).",
            HyperstepSkippedWarning,
            stacklevel=4,
        )


def at_bounds(row) -> list:
    """The tuned entries of a row at a bound of their range (a scalar at it,
    or most values of a vector): ``(entry, "lower" or "upper", bound, share)``."""
    found = []
    for entry in row.entries:
        value = row.values.get(entry.name)
        if isinstance(value, dict):
            continue  # per-split values (one weight per training row)
        raw = np.asarray(entry.real.to_raw(value), dtype=float).reshape(-1)
        low, high = entry.real.raw_bounds()
        near = 1e-3 * (high - low)
        for name, bound, hit in (
            ("lower", entry.real.low, raw <= low + near),
            ("upper", entry.real.high, raw >= high - near),
        ):
            if hit.mean() > 0.5:
                found.append((entry, name, bound, hit))
    return found


def path_bounds(row) -> dict:
    """The tuned entries that reached a bound anywhere along the row's path:
    ``{name: (entry, "lower" or "upper", bound, epochs)}``."""
    found = {}
    for entry in row.entries:
        hits = [r for r in row.path if entry.name in r["at_bound"]]
        if not hits:
            continue
        raw = float(np.mean(entry.real.to_raw(hits[-1]["values"][entry.name])))
        low, high = entry.real.raw_bounds()
        side = "lower" if raw - low < high - raw else "upper"
        bound = entry.real.low if side == "lower" else entry.real.high
        found[entry.name] = (entry, side, bound, [r["epoch"] for r in hits])
    return found


def _epochs_text(epochs) -> str:
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    return f"epochs {epochs[0]}-{epochs[-1]}"


def warn_at_bounds(row) -> None:
    """Warn for each tuned entry of the reported row that reached a bound of
    its range, at its tuned value or anywhere along the path, with advice
    that fits what the score said of the tuned values."""
    reported, scores = row.reported, row.proposal_scores
    at_value = {e.name: (e, side, bound) for e, side, bound, _ in at_bounds(row)}
    along = path_bounds(row)
    names = [e.name for e in row.entries]
    for name in [n for n in names if n in at_value or n in along]:
        entry, side, bound = at_value.get(name) or along[name][:3]
        where = (
            f"the tuned value {name} = {bound:g}"
            if name in at_value
            else f"along the path ({_epochs_text(along[name][3])}); the reported "
            "tuned value, averaged over the last hyper-steps, sits just inside"
        )
        if reported == "tuned":
            advice = (
                "Trained as constants, the tuned values scored best of the values "
                "compared, so the best value may lie outside the range: widen it "
                f"past {bound:g} and search again."
            )
        else:
            shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.items())
            advice = (
                f"But trained as constants the values compared scored {shown}, and "
                f"the {reported} values are reported: the score contradicts the "
                "run-up, so widening the range would not help. The hypergradient "
                "follows the validation loss, which can pull a regulariser to an "
                "extreme once the net overfits; a smaller hyper_optimizer__lr, a "
                "later hyper_optimizer__warmup or fewer epochs keep it nearer."
            )
        warnings.warn(
            f"The tuned value of {name!r} reached the {side} bound of its range "
            f"({entry.real!r}): {where}. {advice} path_ shows the values, val_loss "
            "and at_bound per hyper-step.",
            BoundaryValueWarning,
            stacklevel=5,
        )


def more_results(rows) -> dict:
    n_splits = len(rows[0].out)
    losses = np.array([[o["loss"] for o in r.out] for r in rows], dtype=float)
    more = {f"split{k}_test_loss": losses[:, k] for k in range(n_splits)}
    more["mean_test_loss"] = losses.mean(1)
    more["std_test_loss"] = losses.std(1)
    # Ties share the best rank and failed rows come last, as GridSearchCV ranks.
    key = np.where(np.isnan(more["mean_test_loss"]), np.inf, more["mean_test_loss"])
    more["rank_test_loss"] = rankdata(key, method="min").astype(np.int32)
    more["n_hypersteps"] = np.array([len(r.path) for r in rows])
    more["n_skipped_hypersteps"] = np.array(
        [sum(rec["skipped"] for rec in r.path) for r in rows]
    )
    reported = [r.reported for r in rows]
    more["reported_values"] = np.array(reported, dtype=object)
    more["tuned_values_kept"] = np.array([name == "tuned" for name in reported])
    more["n_rejected_hypersteps"] = np.array(
        [sum(rec["rejected"] for rec in r.path) for r in rows]
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
    "rejected",
    "reason",
    "at_bound",
)


def path_table(records, values):
    table = {k: [r.get(k) for r in records] for k in PATH_KEYS}
    for name in values:
        table[name] = [r["values"][name] for r in records]
    return table
