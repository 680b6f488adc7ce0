"""Input checks, on scikit-learn's parameter validation (through ``_compat``)."""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from .._compat import (  # noqa: F401  (re-exported)
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from .._compat import SklearnInvalidParameterError as _SklearnInvalidParameterError
from ..exceptions import InvalidInputError, InvalidInputTypeError, SkHypergradError


class InvalidParameterError(InvalidInputError, _SklearnInvalidParameterError):
    """A constructor argument of a search has an invalid type or value.

    Both skhypergrad's :class:`~skhypergrad.exceptions.InvalidInputError` and
    scikit-learn's ``InvalidParameterError``, so either ``except`` catches it.
    """


def validate_params(constraints: dict, params: dict, caller: str) -> None:
    """Check constructor arguments against ``constraints``.

    Parameters
    ----------
    constraints : dict
        scikit-learn style ``_parameter_constraints``.
    params : dict
        ``estimator.get_params(deep=False)``.
    caller : str
        Class name, for the message.

    Raises
    ------
    InvalidParameterError
    """
    try:
        validate_parameter_constraints(constraints, params, caller)
    except _SklearnInvalidParameterError as exc:
        raise InvalidParameterError(
            f"{exc} Fix the argument in {caller}(...) before calling fit."
        ) from None


def check_features(estimator, X, *, reset: bool) -> None:
    """Record (``reset=True``) or check the number and names of features of ``X``.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like
    reset : bool
    """
    try:
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


def check_class_labels(y, estimator_name: str) -> None:
    """Refuse a classifier's target that is not class labels, in scikit-learn's
    words (``type_of_target``: continuous values, for instance).

    Parameters
    ----------
    y : ndarray
    estimator_name : str
        The classifier's class name, for the message.

    Raises
    ------
    InvalidInputError
    """
    try:
        check_classification_targets(y)
    except ValueError as exc:
        try:
            values = np.unique(y).tolist()
        except TypeError:  # labels of mixed types cannot be sorted
            values = list(dict.fromkeys(np.ravel(y).tolist()))
        shown = ", ".join(
            f"{v:.4g}" if isinstance(v, float) else repr(v) for v in values[:3]
        )
        raise InvalidInputError(
            f"{exc} The classifier {estimator_name} was given a y of dtype "
            f"{y.dtype} with {len(values)} distinct values (e.g. {shown}). Pass "
            "class labels, or use a NeuralNetRegressor for a continuous target."
        ) from exc


def as_array(X, **kwargs):
    """``sklearn.utils.check_array`` with its errors raised as skhypergrad's.

    Parameters
    ----------
    X : array-like
    **kwargs : dict
        Passed to ``check_array``.

    Returns
    -------
    X : ndarray
    """
    try:
        return check_array(X, **kwargs)
    except TypeError as exc:
        raise InvalidInputTypeError(str(exc)) from exc
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


def check_finite(values, name: str) -> None:
    """Raise :class:`InvalidInputError` if a numeric array holds NaN or inf.

    Parameters
    ----------
    values : array-like
    name : str
        ``"X"`` or ``"y"``, for the message.
    """
    array = np.asarray(values) if not hasattr(values, "to_numpy") else values.to_numpy()
    if array.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInputError(
            f"Input {name} contains NaN or infinity: {int(bad.sum())} non-finite "
            f"value(s), the first {array[first]!r} at index {first}. A network cannot "
            f"train on them. Impute them first (e.g. sklearn.impute.SimpleImputer in "
            f"the Pipeline) or drop those rows."
        )


def check_n_samples(X, y) -> int:
    """Return the number of samples, or raise if ``X`` and ``y`` disagree.

    Parameters
    ----------
    X : array-like
    y : array-like or None

    Returns
    -------
    n_samples : int
    """
    if np.ndim(X) == 0 if not hasattr(X, "shape") else len(X.shape) == 0:
        raise InvalidInputError(
            f"Expected X to be an array of samples, got a scalar {X!r}. Pass a 2-D "
            "array of shape (n_samples, n_features)."
        )
    n_samples = len(X)
    if y is not None and len(y) != n_samples:
        raise InvalidInputError(
            f"X and y have different numbers of samples: X has {n_samples}, y has "
            f"{len(y)}. Pass one target per row of X."
        )
    return n_samples


@contextlib.contextmanager
def sklearn_errors(what: str):
    """Re-raise scikit-learn's ValueError / TypeError as skhypergrad's.

    scikit-learn's search machinery (scorers, routing, refit selection)
    raises builtin errors (``IndexError`` for a refit callable's bad index);
    inside the search they become
    :class:`~skhypergrad.exceptions.InvalidInputError` (a ``ValueError``) or
    :class:`~skhypergrad.exceptions.InvalidInputTypeError` (a ``TypeError``),
    with the original message and the original as ``__cause__``.

    Parameters
    ----------
    what : str
        What was being checked, for the message.
    """
    try:
        yield
    except SkHypergradError:
        raise
    except (ValueError, IndexError) as exc:
        raise InvalidInputError(f"Invalid {what}: {exc}") from exc
    except TypeError as exc:
        raise InvalidInputTypeError(f"Invalid {what}: {exc}") from exc
