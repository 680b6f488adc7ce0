"""Engine objects configured by options, as scikit-learn estimators are.

Solvers and the outer optimiser keep their options exactly as given,
answer ``get_params`` / ``set_params`` (so a search can set
``hyper_optimizer__lr`` or ``solver__max_iter`` and ``clone`` copies them),
compare by value, show only the options that differ from their defaults, and
check them when used, raising the class's ``_error`` with the value received.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

from ..exceptions import InvalidOptionError


class Options:
    """Options kept exactly as given; repr, equality and get/set_params.

    Subclasses take their options in ``__init__``, store each under its own
    name, and implement ``_validate_options``. Like scikit-learn estimators
    they are mutable, so they compare by value but are not hashable.
    """

    _error: type[InvalidOptionError] = InvalidOptionError

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return {
            p.name: p.default
            for p in parameters
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the options, as scikit-learn estimators do.

        Parameters
        ----------
        deep : bool, default=True
            Ignored: options hold no nested objects. Accepted so that an
            object nested in an estimator answers ``get_params(deep=True)``.

        Returns
        -------
        params : dict
            Option names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._defaults()}

    def set_params(self, **params: Any) -> Options:
        """Set options, as scikit-learn estimators do (checked at the next use).

        Parameters
        ----------
        **params : dict
            Option names and their new values.

        Returns
        -------
        self : object
            This object, updated.
        """
        valid = list(self._defaults())
        for name, value in params.items():
            if name not in valid:
                raise self._error(
                    f"{type(self).__name__} has no option {name!r}; its options are "
                    f"{valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = self._defaults()
        changed = [
            f"{name}={_show(value)}"
            for name, value in self.get_params().items()
            if not _is_default(value, defaults[name])
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.get_params() == other.get_params()

    __hash__ = None  # mutable, like an estimator

    def _validate_options(self) -> None:
        raise NotImplementedError


def _show(value: Any) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _is_default(value: Any, default: Any) -> bool:
    return value is default or (type(value) is type(default) and value == default)


def invalid(obj: Options, name: str, expected: str) -> InvalidOptionError:
    """The error for option ``name`` of ``obj``, with the value it holds."""
    value = getattr(obj, name)
    return obj._error(
        f"Invalid option of {type(obj).__name__}: {name} must be {expected}, "
        f"got {value!r} ({type(value).__name__})."
    )


def is_real(value: Any) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_positive(value: Any) -> bool:
    """A finite real number above 0."""
    return is_real(value) and math.isfinite(value) and value > 0


def is_count(value: Any, low: int) -> bool:
    """An integer (numpy's too, not a bool) >= ``low``."""
    integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    return integral and value >= low


def check_int(obj: Options, name: str, low: int) -> None:
    """Option ``name`` is an integer >= ``low``."""
    if not is_count(getattr(obj, name), low):
        raise invalid(obj, name, f"an integer >= {low}")


def check_non_negative(obj: Options, name: str) -> None:
    """Option ``name`` is a finite number >= 0."""
    value = getattr(obj, name)
    if not (is_real(value) and math.isfinite(value) and value >= 0):
        raise invalid(obj, name, "a finite number >= 0")
