"""Split ``param_distributions`` into what hypergradients tune and what an
outer grid or random search explores, and draw the outer candidates.

Every entry a registered family claims and gives a continuous range is tuned
inside each candidate; every other entry (lists, discrete distributions,
``Sampled`` ranges, parameters of other Pipeline steps) is searched as
``GridSearchCV`` (all lists) or ``RandomizedSearchCV`` (any distribution)
would. A list of epoch counts for ``max_epochs`` is chosen from the
validation curves of the same trainings.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import ParameterGrid, ParameterSampler

from ..exceptions import InvalidHyperparameterError
from ..families import claiming_family
from ..hyperparams import Real, Sampled, Tuned

_SUBSPACE = "__skhypergrad_subspace__"


class SubSpace(NamedTuple):
    """One dict of ``param_distributions``, resolved.

    Attributes
    ----------
    tuned : list of Hyperparameter
        Entries tuned by hypergradients inside every candidate.
    outer : dict
        Entries searched by the outer grid / random search.
    epochs : tuple of int
        ``max_epochs`` values read off the same trainings (empty if none).
    epochs_name : str or None
        The ``max_epochs`` key, with any Pipeline prefix.
    """

    tuned: list
    outer: dict
    epochs: tuple = ()
    epochs_name: str | None = None


class Candidate(NamedTuple):
    """One outer candidate: a sub-space and a draw of its outer entries."""

    subspace: int
    params: dict


def resolve_space(param_distributions, net, step) -> list[SubSpace]:
    """Check every entry against the skorch net and sort it.

    Parameters
    ----------
    param_distributions : dict or list of dict
    net : skorch.NeuralNet
        The (unfitted) network; never changed.
    step : str or None
        Name of the net's Pipeline step.

    Returns
    -------
    subspaces : list of SubSpace
    """
    spaces = param_distributions
    if isinstance(spaces, Mapping):
        spaces = [spaces]
    if not isinstance(spaces, Sequence) or isinstance(spaces, str) or not spaces:
        raise InvalidHyperparameterError(
            "param_distributions must be a dict (or a non-empty list of dicts) "
            f"mapping parameter names to ranges or lists, got {param_distributions!r}. "
            "Example: {'optimizer__weight_decay': scipy.stats.loguniform(1e-6, 1e-1), "
            "'module__num_units': [32, 64]}."
        )
    return [_resolve_dict(space, net, step) for space in spaces]


def _resolve_dict(space, net, step) -> SubSpace:
    if not isinstance(space, Mapping):
        raise InvalidHyperparameterError(
            f"Each entry of a list of param_distributions must be a dict, got "
            f"{space!r} ({type(space).__name__})."
        )
    tuned, outer, epochs, epochs_name = [], {}, (), None
    for name, distribution in space.items():
        local = _net_name(name, step)
        if local == "max_epochs" and _is_list(distribution):
            epochs, epochs_name = _check_epochs(name, distribution), name
            continue
        entry = _tuned_entry(name, local, distribution, net)
        if entry is None:
            outer[name] = _check_outer(name, distribution)
        else:
            tuned.append(entry)
    return SubSpace(tuned, outer, epochs, epochs_name)


def _net_name(name, step) -> str | None:
    if not isinstance(name, str):
        raise InvalidHyperparameterError(
            f"Parameter names must be strings, got {name!r} ({type(name).__name__})."
        )
    if step is None:
        return name
    prefix = f"{step}__"
    return name[len(prefix) :] if name.startswith(prefix) else None


def _tuned_entry(name, local, distribution, net):
    """The family entry tuning ``name``, or None when the outer search takes it."""
    if isinstance(distribution, Tuned):
        return _forced_entry(name, local, distribution.distribution, net)
    if local is None or isinstance(distribution, Sampled):
        return None
    family = claiming_family(local, distribution, net)
    if family is None:
        return None
    if not family.tuned_by_default:
        if not _is_list(distribution) and not _is_discrete(distribution):
            family.from_entry(name, local, distribution, net)  # the same checks
            warnings.warn(
                f"{name!r} is drawn by the outer search (n_iter draws, one training "
                f"each), not tuned by hypergradients: {family.sampled_because}. "
                f"Wrap the range in skhypergrad.Tuned(...) to tune it by "
                "hypergradients within each candidate anyway, or in "
                "skhypergrad.Sampled(...) to draw it without this warning.",
                UserWarning,
                stacklevel=5,
            )
        return None
    if _is_list(distribution):
        warnings.warn(
            f"{name!r} is given as a list, {_short(distribution)}, so it is searched "
            "as a grid (one training per value and split). A continuous range, e.g. "
            "scipy.stats.loguniform(low, high), would be tuned by hypergradients "
            "within each candidate instead, at no extra training.",
            UserWarning,
            stacklevel=5,
        )
        return None
    if _is_discrete(distribution):
        return None  # randint & co.: drawn by the outer search
    # The family decides what else it can tune, and says why it cannot.
    return family.from_entry(name, local, distribution, net)


def _forced_entry(name, local, distribution, net):
    """The entry of a range wrapped in ``Tuned``: a family must take it."""
    family = None if local is None else claiming_family(local, distribution, net)
    if family is None or _is_list(distribution) or _is_discrete(distribution):
        what = (
            "a continuous range"
            if family is not None
            else "an entry that a hyperparameter family can tune (weight decay, "
            "dropout rates, label smoothing, class weights, input noise, learning "
            "rates)"
        )
        raise InvalidHyperparameterError(
            f"{name!r} is wrapped in Tuned({distribution!r}), which needs {what}. "
            "Give Tuned a range such as scipy.stats.uniform(0.0, 0.6), or search "
            "the entry without Tuned."
        )
    return family.from_entry(name, local, distribution, net)


def _is_list(value) -> bool:
    return isinstance(value, list | tuple | np.ndarray | range)


def _is_discrete(distribution) -> bool:
    from scipy import stats

    return isinstance(getattr(distribution, "dist", None), stats.rv_discrete)


def _check_outer(name, distribution):
    if isinstance(distribution, Real):
        return distribution.check(name)
    if hasattr(distribution, "rvs"):
        return distribution
    if _is_list(distribution) and len(distribution) > 0:
        return distribution
    raise InvalidHyperparameterError(
        f"Cannot search {name!r}: got {distribution!r} "
        f"({type(distribution).__name__}), but each entry must be a non-empty list "
        "of values, a distribution with an rvs method (scipy.stats), or a continuous "
        "range to tune. Wrap a single value in a list, or set it on the estimator."
    )


def _check_epochs(name, values) -> tuple:
    values = list(values)
    ok = values and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1
        for v in values
    )
    if not ok:
        raise InvalidHyperparameterError(
            f"{name!r} must be a non-empty list of positive integers (epoch counts), "
            f"got {values!r}."
        )
    return tuple(sorted({int(v) for v in values}))


def _short(values) -> str:
    values = list(values)
    text = repr(values[:5])
    return text[:-1] + ", ...]" if len(values) > 5 else text


def make_candidates(subspaces, n_iter, random_state) -> list[Candidate]:
    """Outer candidates, as GridSearchCV or RandomizedSearchCV would draw them.

    All outer entries lists: every combination (``ParameterGrid``). Any
    distribution: ``n_iter`` draws (``ParameterSampler``), a sub-space drawn
    uniformly for each, as ``RandomizedSearchCV`` does with a list of dicts.

    Parameters
    ----------
    subspaces : list of SubSpace
    n_iter : int
    random_state : int, RandomState instance or None

    Returns
    -------
    candidates : list of Candidate
    """
    spaces = [{**s.outer, _SUBSPACE: [i]} for i, s in enumerate(subspaces)]
    sampled = any(hasattr(v, "rvs") for s in subspaces for v in s.outer.values())
    try:
        draws = (
            list(ParameterSampler(spaces, n_iter, random_state=random_state))
            if sampled
            else list(ParameterGrid(spaces))
        )
    except (TypeError, ValueError) as exc:
        raise InvalidHyperparameterError(
            f"The outer search space is not usable: {exc}"
        ) from exc
    return [Candidate(d.pop(_SUBSPACE), d) for d in draws]


def as_candidates(candidates, subspaces) -> list[Candidate]:
    """Candidates given as scikit-learn gives them to ``evaluate_candidates``.

    Parameters
    ----------
    candidates : iterable of dict or Candidate
        Outer values per candidate (as ``ParameterGrid`` yields them). A dict
        belongs to the sub-space whose outer entries it names (the first, if
        several name the same).
    subspaces : list of SubSpace

    Returns
    -------
    candidates : list of Candidate
    """
    out = []
    for candidate in candidates:
        if isinstance(candidate, Candidate):
            out.append(candidate)
            continue
        values = dict(candidate)
        index = values.pop(_SUBSPACE, None)
        if index is None:
            index = next(
                (i for i, s in enumerate(subspaces) if set(s.outer) == set(values)),
                None,
            )
        if index is None:
            raise InvalidHyperparameterError(
                f"The candidate {values!r} names the outer entries "
                f"{sorted(values)}, but no dict of param_distributions searches "
                f"exactly those (they search {[sorted(s.outer) for s in subspaces]})."
                " Give evaluate_candidates dicts of the outer (not tuned) entries "
                "of one of them."
            )
        out.append(Candidate(index, values))
    return out


__all__ = [
    "Candidate",
    "SubSpace",
    "as_candidates",
    "make_candidates",
    "resolve_space",
]
