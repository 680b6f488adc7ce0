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

import difflib
import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, ParameterSampler

from .._format import plain
from ..exceptions import InvalidHyperparameterError
from ..families import claiming_family, explain_unclaimed
from ..hypergrad._options import is_count
from ..hyperparams import Real, Sampled, Tuned, format_distribution

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


def resolve_space(param_distributions, net, step, estimator=None) -> list[SubSpace]:
    """Check every entry against the skorch net and sort it.

    Parameters
    ----------
    param_distributions : dict or list of dict
    net : skorch.NeuralNet
        The (unfitted) network; never changed.
    step : str or None
        Name of the net's Pipeline step.
    estimator : skorch.NeuralNet or Pipeline, default=None
        The search's estimator: when given, every entry's name is first
        checked against what its ``set_params`` and the net's training accept
        (:func:`check_names`).

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
            "mapping parameter names to ranges or lists, got "
            f"{format_distribution(param_distributions)}. "
            "Example: {'optimizer__weight_decay': scipy.stats.loguniform(1e-6, 1e-1), "
            "'module__num_units': [32, 64]}."
        )
    if estimator is not None:
        check_names(spaces, estimator, net, step)
    return [_resolve_dict(space, net, step) for space in spaces]


def _resolve_dict(space, net, step) -> SubSpace:
    if not isinstance(space, Mapping):
        raise InvalidHyperparameterError(
            f"Each entry of a list of param_distributions must be a dict, got "
            f"{format_distribution(space)} ({type(space).__name__})."
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
        if _is_continuous(distribution):
            _explain_drawn(name, local, distribution, net)
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
    if family is None and local is not None:
        explain_unclaimed(name, local, distribution, net)  # a family's own reason
    if family is None or _is_list(distribution) or _is_discrete(distribution):
        what = (
            "a continuous range"
            if family is not None
            else "an entry that a hyperparameter family can tune (weight decay, "
            "dropout rates, label smoothing, class weights, input noise, learning "
            "rates)"
        )
        raise InvalidHyperparameterError(
            f"{name!r} is wrapped in Tuned({format_distribution(distribution)}), "
            f"which needs {what}. "
            "Give Tuned a range such as scipy.stats.uniform(0.0, 0.6), or search "
            "the entry without Tuned."
        )
    return family.from_entry(name, local, distribution, net)


def _is_continuous(distribution) -> bool:
    """A range (``Real`` or a continuous scipy distribution), not a list."""
    if isinstance(distribution, Real):
        return True
    return hasattr(distribution, "rvs") and not _is_discrete(distribution)


def _explain_drawn(name, local, distribution, net) -> None:
    """Say, before training, that a continuous range no family tunes is drawn
    (or refuse it where the drawn floats cannot be set: an integer argument)."""
    shown = format_distribution(distribution)
    current = _current_value(net, local)
    if isinstance(current, int | np.integer) and not isinstance(current, bool):
        low, high = _support(distribution)
        raise InvalidHyperparameterError(
            f"{name!r} is an integer ({current!r} now), but {shown} draws floats "
            f"in [{low:g}, {high:g}], which it cannot take (a layer size or a "
            f"count). Give a list of values, e.g. [{int(low)}, "
            f"{int((low + high) / 2)}, {int(high)}], or an integer distribution "
            f"such as scipy.stats.randint({int(low)}, {int(high) + 1})."
        )
    reason = ""
    try:
        explain_unclaimed(name, local, distribution, net)
    except InvalidHyperparameterError as exc:
        reason = f" ({exc})"
    warnings.warn(
        f"{name!r} is given as the continuous range {shown}, but no hyperparameter "
        f"family can tune it by hypergradients here{reason}. It is drawn instead, "
        "as RandomizedSearchCV would (n_iter draws, one training per draw and "
        f"split). Wrap it in skhypergrad.Sampled({shown}) to draw it without this "
        "warning.",
        UserWarning,
        stacklevel=5,
    )


def _support(distribution) -> tuple:
    if isinstance(distribution, Real):
        return float(distribution.low), float(distribution.high)
    return tuple(float(v) for v in distribution.support())


def _current_value(net, local):
    """The value a net parameter has now: set on the net, or the default of
    the module's (criterion's...) argument; None if unknown."""
    if net is None or local is None:
        return None
    params = net.get_params(deep=False)
    if local in params:
        return params[local]
    prefix, _, arg = local.partition("__")
    owner = params.get(prefix)
    parameter = (_parameters(owner) or {}).get(arg)
    if parameter is None:
        return None
    if isinstance(owner, type):
        return parameter.default
    return getattr(owner, arg, parameter.default)


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
        f"Cannot search {name!r}: got {format_distribution(distribution)} "
        f"({type(distribution).__name__}), but each entry must be a non-empty list "
        "of values, a distribution with an rvs method (scipy.stats), or a continuous "
        "range to tune. Wrap a single value in a list, or set it on the estimator."
    )


def _check_epochs(name, values) -> tuple:
    values = list(values)
    ok = values and all(is_count(v, low=1) for v in values)
    if not ok:
        raise InvalidHyperparameterError(
            f"{name!r} must be a non-empty list of positive integers (epoch counts), "
            f"got {values!r}."
        )
    return tuple(sorted({int(v) for v in values}))


def _short(values) -> str:
    values = list(values)
    text = format_distribution(values[:5])
    return text[:-1] + ", ...]" if len(values) > 5 else text


# skorch hands ``<prefix>__<arg>`` to the class held by the net's attribute
# ``<prefix>`` (``optimizer__weight_decay`` -> ``optimizer(weight_decay=...)``):
# such a name is accepted by ``set_params`` and fails only at training, so it is
# checked against that class's signature.
_COMPONENTS = (
    "module",
    "criterion",
    "optimizer",
    "iterator_train",
    "iterator_valid",
    "dataset",
)


def check_names(spaces, estimator, net, step) -> None:
    """Refuse entry names that ``set_params`` or the net's training would refuse.

    A name is accepted when it is in ``estimator.get_params()``, is a
    ``callbacks__<name>__<param>`` of one of the net's callbacks, or is
    ``<component>__<arg>`` with ``<arg>`` an argument of the module,
    criterion, optimizer, iterator or dataset class (any argument where the
    class takes ``**kwargs``). Names of other prefixes are accepted where
    the initialised net registers the prefix.

    Parameters
    ----------
    spaces : list of dict
        The dicts of ``param_distributions``.
    estimator : skorch.NeuralNet or Pipeline
    net : skorch.NeuralNet
        The estimator's network; never changed.
    step : str or None
        Name of the net's Pipeline step.

    Raises
    ------
    InvalidHyperparameterError
        Naming every unknown entry, each with the closest known name.
    """
    entries = [
        (name, distribution)
        for space in spaces
        if isinstance(space, Mapping)
        for name, distribution in space.items()
        if isinstance(name, str)
    ]
    known = _NetNames(estimator, net, step, {name for name, _ in entries})
    unknown = list(
        dict.fromkeys(
            name
            for name, distribution in entries
            if not known.accepts(name) and not _claimed(name, distribution, net, step)
        )
    )
    if unknown:
        raise InvalidHyperparameterError(_unknown_names_message(unknown, known))


class _NetNames:
    """The names a search's estimator can be given, computed as they are needed."""

    def __init__(self, estimator, net, step, given):
        self.net, self.step = net, step
        self.prefix = "" if step is None else f"{step}__"
        self.given = given
        self.listed = {
            k for k in estimator.get_params(deep=True) if not k.endswith("_validate")
        }
        self._callbacks = self._prefixes = None

    def accepts(self, name) -> bool:
        if name in self.listed:
            return True
        if not name.startswith(self.prefix):
            return False  # another Pipeline step: its set_params refuses it
        local = name[len(self.prefix) :]
        component, _, arg = local.partition("__")
        if not arg:
            return False  # BaseEstimator.set_params refuses it
        if component == "callbacks":
            callbacks = self.callback_names()
            # Callbacks searched themselves make their parameters unknowable.
            return callbacks is None or local in callbacks or self._replaced()
        if component in _COMPONENTS:
            args = _arguments(getattr(self.net, component, None))
            if component == "optimizer" and arg.split("__")[0] == "param_groups":
                return True  # skorch's own per-group settings
            return args is None or arg in args
        prefixes = self.prefixes()
        return prefixes is None or component in prefixes

    def candidates(self) -> list:
        """Every name to suggest from: listed, callbacks' and components' args."""
        callbacks = self.callback_names() or ()
        names = set(self.listed) | {f"{self.prefix}{c}" for c in callbacks}
        for component in _COMPONENTS:
            args = _arguments(getattr(self.net, component, None)) or ()
            names |= {f"{self.prefix}{component}__{a}" for a in args}
        return sorted(names)

    def callback_names(self) -> set | None:
        """``callbacks__<name>[__<param>]`` of the net's callbacks, or None when
        they cannot be built here."""
        if self._callbacks is None and self.net.callbacks != "disable":
            try:
                probe = clone(self.net).initialize_callbacks()
            except Exception:  # built at training, which will say what is wrong
                return None
            self._callbacks = {
                k for k in probe.get_params(deep=True) if k.startswith("callbacks__")
            }
        return self._callbacks if self.net.callbacks != "disable" else set()

    def prefixes(self) -> set | None:
        """The prefixes that the initialised net routes (a subclass may add its
        own modules), or None when it cannot be initialised here."""
        if self._prefixes is None:
            try:
                self._prefixes = set(clone(self.net).initialize().prefixes_)
            except Exception:  # initialised at training, which will say why
                return None
        return self._prefixes

    def _replaced(self) -> bool:
        return any(
            n == f"{self.prefix}callbacks"
            or (n.startswith(f"{self.prefix}callbacks__") and n.count("__") == 1)
            for n in self.given
        )


def _claimed(name, distribution, net, step) -> bool:
    """Whether a family claims the name: its own checks then say what is wrong
    (a criterion argument of the wrong criterion, say)."""
    local = _net_name(name, step)
    if isinstance(distribution, Tuned | Sampled):
        distribution = distribution.distribution
    return local is not None and claiming_family(local, distribution, net) is not None


def _parameters(component) -> dict | None:
    """The parameters of the class of a net's component, by name (None:
    no component, or a class whose signature cannot be read)."""
    if component is None:
        return None
    cls = component if isinstance(component, type) else type(component)
    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return None


def _arguments(component) -> set | None:
    """Keyword arguments the class of a net's component takes (None: any)."""
    parameters = _parameters(component)
    if parameters is None or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {p.name for p in parameters.values() if p.kind is not p.VAR_POSITIONAL}


def _unknown_names_message(unknown, known) -> str:
    candidates = known.candidates()
    parts = []
    for name in unknown:
        prefixed = f"{known.prefix}{name}"
        if known.prefix and known.accepts(prefixed):
            close = [prefixed]
        else:
            close = difflib.get_close_matches(name, candidates, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "no close match"
        parts.append(f"{name!r} ({hint})")
    where = "" if known.step is None else f", each prefixed '{known.step}__'"
    return (
        f"param_distributions names {len(unknown)} parameter(s) that the estimator "
        f"cannot be given: {', '.join(parts)}. Nothing was trained. Each name must "
        "be one that estimator.get_params() lists, a 'callbacks__<name>__<param>' "
        "of the net's callbacks, or a 'module__', 'criterion__' or 'optimizer__' "
        f"argument that the net's module, criterion or optimizer class accepts{where}. "
        "Fix the spelling, or see estimator.get_params().keys()."
    )


def make_candidates(subspaces, n_iter, random_state, draw=False) -> list[Candidate]:
    """Outer candidates, as GridSearchCV or RandomizedSearchCV would draw them.

    All outer entries lists: every combination (``ParameterGrid``). Any
    distribution: ``n_iter`` draws (``ParameterSampler``), a sub-space drawn
    uniformly for each, as ``RandomizedSearchCV`` does with a list of dicts.

    Parameters
    ----------
    subspaces : list of SubSpace
    n_iter : int
    random_state : int, RandomState instance or None
    draw : bool, default=False
        Draw ``n_iter`` candidates even where every outer entry is a list
        (``ParameterSampler`` draws them without replacement).

    Returns
    -------
    candidates : list of Candidate
    """
    spaces = [{**s.outer, _SUBSPACE: [i]} for i, s in enumerate(subspaces)]
    sampled = draw or any(
        hasattr(v, "rvs") for s in subspaces for v in s.outer.values()
    )
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
    # Draws and numpy grids hold numpy scalars: best_params_ holds Python ones.
    return [
        Candidate(d.pop(_SUBSPACE), {k: plain(v) for k, v in d.items()}) for d in draws
    ]


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
