"""Pictures of a fitted search (matplotlib, imported only when a function runs).

Each function takes a fitted :class:`~skhypergrad.HypergradSearchCV` and an
optional matplotlib ``ax``, draws, and returns the axes.
"""

from __future__ import annotations

import numbers

import numpy as np

from .exceptions import InvalidInputError
from .model_selection._results import PATH_KEYS
from .penalties import parameter_layout

# Smallest ratio between the ends of a log axis of tuned values (one decade).
_MIN_SPAN = 10.0


def _axes(ax):
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skhypergrad.plotting needs matplotlib: pip install matplotlib "
            "(or pip install 'skhypergrad[plot]')."
        ) from exc
    if ax is None:
        # Constrained layout keeps the labels (and a twin axis') inside the figure.
        _, ax = plt.subplots(layout="constrained")
    return ax


def _fitted(search, attribute):
    if not hasattr(search, attribute):
        raise InvalidInputError(
            f"{type(search).__name__} has no {attribute}: fit the search first"
            + (" with refit=True." if attribute == "best_estimator_" else ".")
        )


def plot_path(search, *, ax=None, rows=None):
    """Tuned values per hyper-step, with the validation loss on a second axis.

    Parameters
    ----------
    search : HypergradSearchCV
        Fitted.
    ax : matplotlib Axes, optional
        Drawn on; a new figure's axes if None.
    rows : list of int, optional
        Rows of ``cv_results_`` whose paths are drawn; default the best row
        (or every row when there is no best one).

    Returns
    -------
    ax : matplotlib Axes
        The values' axes; the loss is on ``ax`` 's twin.
    """
    _fitted(search, "paths_")
    ax = _axes(ax)
    if rows is None:
        rows = [search.best_index_] if hasattr(search, "best_index_") else None
        rows = rows if rows is not None else range(len(search.paths_))
    loss_ax = ax.twinx()
    for row in rows:
        path = search.paths_[row]
        names = [k for k in path if k not in PATH_KEYS]
        for name in names:
            ax.plot(path["epoch"], path[name], marker="o", label=f"{name} (row {row})")
        loss_ax.plot(path["epoch"], path["val_loss"], linestyle="--", alpha=0.6)
    ax.set_yscale("log")
    lines = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    if lines:
        _show_spread(ax, np.concatenate(lines))
    ax.set_xlabel("epoch of the hyper-step")
    ax.set_ylabel("tuned value (geometric mean for vectors)")
    loss_ax.set_ylabel("validation loss (dashed)")
    ax.legend(fontsize="small")
    return ax


def plot_candidates(search, *, ax=None, metric="score"):
    """Mean cross-validated score per row of ``cv_results_``, ± its std.

    Parameters
    ----------
    search : HypergradSearchCV
        Fitted.
    ax : matplotlib Axes, optional
    metric : str, default="score"
        The metric's name in ``cv_results_`` (``mean_test_<metric>``).

    Returns
    -------
    ax : matplotlib Axes
    """
    _fitted(search, "cv_results_")
    results = search.cv_results_
    key = f"mean_test_{metric}"
    if key not in results:
        raise InvalidInputError(
            f"cv_results_ has no {key!r}; metrics: "
            f"{sorted(k[10:] for k in results if k.startswith('mean_test_'))}."
        )
    ax = _axes(ax)
    mean, std = results[key], results[f"std_test_{metric}"]
    positions = np.arange(len(mean))
    ax.errorbar(positions, mean, yerr=std, fmt="o", capsize=3)
    if hasattr(search, "best_index_"):
        ax.plot(search.best_index_, mean[search.best_index_], "r*", markersize=14)
    ax.set_xticks(positions)
    tuned = set(search.paths_[0]) - set(PATH_KEYS) if search.paths_ else set()
    ax.set_xticklabels([_outer_label(p, tuned) for p in results["params"]], rotation=45)
    ax.set_ylabel(f"mean CV {metric}")
    ax.set_xlabel("candidate (outer values; tuned values inside)")
    return ax


def plot_layer_decays(search, *, ax=None):
    """The tuned decay of every layer (a box per layer for per-weight decay).

    Parameters
    ----------
    search : HypergradSearchCV
        Fitted with ``refit=True``, tuning ``PerLayer`` or ``PerParameter``
        weight decay.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    _fitted(search, "best_estimator_")
    decays = _layer_decays(search)
    if not decays:
        raise InvalidInputError(
            "plot_layer_decays needs a search that tuned PerLayer or PerParameter "
            f"weight decay; best_params_ has {sorted(search.best_params_)}."
        )
    ax = _axes(ax)
    names = list(decays)
    ax.boxplot([decays[n] for n in names], whis=(0, 100))
    ax.set_xticks(np.arange(1, len(names) + 1))
    ax.set_xticklabels(names, rotation=45)
    ax.set_yscale("log")
    _show_spread(ax, np.concatenate([decays[n] for n in names]))
    ax.set_ylabel("weight decay")
    return ax


def _show_spread(ax, values, factor=_MIN_SPAN):
    """Give a log axis a range of at least ``factor`` around ``values``.

    Left to itself, matplotlib zooms into near-equal values (6.08e-3 to
    6.19e-3) until they look orders of magnitude apart; a span of at least a
    decade shows them as near-equal as they are.
    """
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return
    low, high = float(values.min()), float(values.max())
    if high / low >= factor:
        return
    middle, half = np.sqrt(low * high), np.sqrt(factor)
    ax.set_ylim(middle / half, middle * half)


def _layer_decays(search) -> dict:
    out = {}
    for key, value in search.best_params_.items():
        if key.endswith("optimizer__param_groups"):
            for name, options in value:
                out.setdefault(name.rpartition(".")[0] or name, []).append(
                    options["weight_decay"]
                )
        elif key.endswith("callbacks"):
            for _, callback in value:
                if type(callback).__name__ == "WeightDecayPenalty":
                    out.update(_per_weight(search, callback))
    return {k: np.ravel(v) for k, v in out.items()}


def _per_weight(search, penalty) -> dict:
    net = search.best_estimator_
    net = net.steps[-1][1] if hasattr(net, "steps") else net
    layout = parameter_layout(net.module_)
    values = np.split(np.asarray(penalty.values), np.cumsum(layout.sizes)[:-1])
    out = {}
    for name, chunk in zip(layout.names, values):
        out.setdefault(name.rpartition(".")[0] or name, []).extend(chunk.tolist())
    return out


def _outer_label(params, tuned) -> str:
    """The candidate's outer values: what the grid or the draws chose."""
    outer = {
        k.rsplit("__", 1)[-1]: v
        for k, v in params.items()
        if k not in tuned
        and not k.endswith(("param_groups", "callbacks"))
        and isinstance(v, numbers.Number | str)
    }
    return (
        ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in outer.items()
        )
        or "-"
    )


__all__ = ["plot_candidates", "plot_layer_decays", "plot_path"]
