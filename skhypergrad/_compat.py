"""Every private name of scikit-learn and joblib that skhypergrad uses, in one place.

scikit-learn does not promise to keep these: a release that moves or changes
one should fail one test of ``tests/test_compat.py`` (a test per name, checking
the behaviour skhypergrad relies on), not every search. Import them from here,
never from scikit-learn directly. torch's private names live in the engine's
own :mod:`skhypergrad.hypergrad._compat`, which must not load scikit-learn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys

# joblib's own backends (a private module): which kind of workers a fit has.
from joblib._parallel_backends import LokyBackend, MultiprocessingBackend
from joblib.externals.loky.process_executor import TerminatedWorkerError

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
    "_check_refit_for_multimetric": ("scores",),
    "_format_results": ("candidate_params", "n_splits", "out", "more_results"),
}


def _loaded(module: str, name: str):
    """A class of an optional package, if that package's module is loaded (a
    backend or an error of it cannot exist otherwise): never imports it."""
    return getattr(sys.modules.get(module), name, None)


def joblib_backend_kind(backend) -> str:
    """What the workers of a joblib backend are, asked of its class.

    Returns
    -------
    kind : {"ray", "dask", "loky", "multiprocessing", "threads", "other"}
        Ray's backend (an actor process per worker, a new pool per call),
        Dask's, joblib's process backends, or one whose workers are threads.
    """
    ray = _loaded("ray.util.joblib.ray_backend", "RayBackend")
    dask = _loaded("joblib._dask", "DaskDistributedBackend")
    if ray is not None and isinstance(backend, ray):  # a MultiprocessingBackend too
        return "ray"
    if dask is not None and isinstance(backend, dask):
        return "dask"
    if isinstance(backend, LokyBackend):
        return "loky"
    if isinstance(backend, MultiprocessingBackend):
        return "multiprocessing"
    return "threads" if getattr(backend, "uses_threads", False) else "other"


def worker_failure_types() -> tuple:
    """The errors by which joblib, Dask or Ray say that a worker was lost."""
    found = [
        TerminatedWorkerError,
        concurrent.futures.process.BrokenProcessPool,
        concurrent.futures.CancelledError,
        asyncio.CancelledError,
        _loaded("distributed.scheduler", "KilledWorker"),
        _loaded("distributed.client", "FutureCancelledError"),
        _loaded("distributed.comm.core", "CommClosedError"),
    ]
    return tuple(t for t in found if t is not None)


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
    "joblib_backend_kind",
    "validate_parameter_constraints",
    "worker_failure_types",
]
