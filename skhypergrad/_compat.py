"""Every private name of scikit-learn that skhypergrad uses, in one place.

scikit-learn does not promise to keep these: a release that moves or changes
one should fail one test of ``tests/test_compat.py`` (a test per name, checking
the behaviour skhypergrad relies on), not every search. Import them from here,
never from scikit-learn directly. torch's private names live in the engine's
own :mod:`skhypergrad.hypergrad._compat`, which must not load scikit-learn.
"""

from __future__ import annotations

# The search's base class and its private hooks: _run_search,
# _get_scorers, _get_routed_params_for_fit, _select_best_index and
# _format_results are called or overridden (BASE_SEARCH_HOOKS).
from sklearn.model_selection._search import BaseSearchCV, _search_estimator_has
from sklearn.model_selection._validation import (
    _score,
    _warn_or_raise_about_fit_failures,
)
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils._param_validation import (
    InvalidParameterError as SklearnInvalidParameterError,
)
from sklearn.utils.validation import _check_method_params, _num_samples

#: The private methods of ``BaseSearchCV`` that the searches call or
#: override, with the parameters they are called with.
BASE_SEARCH_HOOKS = {
    "_run_search": ("evaluate_candidates",),
    "_get_scorers": (),
    "_get_routed_params_for_fit": ("params",),
    "_select_best_index": ("refit", "refit_metric", "results"),
    "_format_results": ("candidate_params", "n_splits", "out", "more_results"),
}

__all__ = [
    "BASE_SEARCH_HOOKS",
    "BaseSearchCV",
    "HasMethods",
    "Interval",
    "SklearnInvalidParameterError",
    "StrOptions",
    "_check_method_params",
    "_num_samples",
    "_safe_indexing",
    "_score",
    "_search_estimator_has",
    "_warn_or_raise_about_fit_failures",
    "validate_parameter_constraints",
]
