"""One test per private name of scikit-learn or torch that skhypergrad uses
(``skhypergrad._compat``, ``skhypergrad.hypergrad._compat``): a release that
moves or changes one fails here, with the name in the test's."""

import concurrent.futures
import inspect
import numbers
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer

from skhypergrad import _compat
from skhypergrad.hypergrad import _compat as torch_compat


def test_compat_lists_every_name_it_holds():
    for name in _compat.__all__:
        assert hasattr(_compat, name), name


@pytest.mark.parametrize("hook", sorted(_compat.BASE_SEARCH_HOOKS))
def test_base_search_cv_hook_takes_the_arguments_we_pass(hook):
    method = getattr(_compat.BaseSearchCV, hook)
    params = list(inspect.signature(method).parameters)
    expected = _compat.BASE_SEARCH_HOOKS[hook]
    if isinstance(method, staticmethod) or params[:1] != ["self"]:
        assert tuple(params[: len(expected)]) == expected
    else:
        assert tuple(params[1 : 1 + len(expected)]) == expected


def test_search_estimator_has_checks_the_estimator_for_a_method():
    class Search(BaseEstimator):
        def __init__(self, estimator, refit=True):
            self.estimator = estimator
            self.refit = refit

    check = _compat._search_estimator_has("predict_proba")
    assert check(Search(LogisticRegression()))
    # Before fit, with refit, the check asks the unfitted estimator.
    with pytest.raises(AttributeError):
        check(Search(torch.nn.Linear(1, 1)))


def test_score_scores_with_a_scorer_and_error_score():
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    model = LogisticRegression().fit(X, y)
    score = _compat._score(model, X, y, get_scorer("accuracy"), {}, np.nan)
    assert score == 1.0


def test_warn_or_raise_about_fit_failures_raises_when_all_failed():
    failed = [{"fit_error": "Traceback: boom"}] * 2
    with pytest.raises(ValueError, match="All the 2 fits failed"):
        _compat._warn_or_raise_about_fit_failures(failed, np.nan)
    with pytest.warns(FitFailedWarning, match="1 fits failed"):
        _compat._warn_or_raise_about_fit_failures(
            [failed[0], {"fit_error": None}], np.nan
        )


def test_safe_indexing_takes_rows():
    np.testing.assert_array_equal(
        _compat._safe_indexing(np.arange(6).reshape(3, 2), [2, 0]),
        [[4, 5], [0, 1]],
    )


def test_check_method_params_indexes_per_sample_params():
    X = np.zeros((4, 1))
    out = _compat._check_method_params(X, {"w": np.arange(4), "c": 3}, [1, 3])
    np.testing.assert_array_equal(out["w"], [1, 3])
    assert out["c"] == 3


def test_num_samples_counts_rows():
    assert _compat._num_samples(np.zeros((5, 2))) == 5


def test_param_validation_names_validate_constraints():
    constraints = {
        "a": [_compat.Interval(numbers.Integral, 1, None, closed="left")],
        "b": [_compat.StrOptions({"x"})],
        "c": [_compat.HasMethods(["fit"])],
    }
    _compat.validate_parameter_constraints(
        constraints, {"a": 1, "b": "x", "c": LogisticRegression()}, "caller"
    )
    with pytest.raises(_compat.SklearnInvalidParameterError, match="'a'"):
        _compat.validate_parameter_constraints(
            constraints, {"a": 0, "b": "x", "c": LogisticRegression()}, "caller"
        )


def test_torch_scheduler_marks_the_step_it_wraps_and_pickling_drops_it():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    assert hasattr(optimizer.step, torch_compat.SCHEDULER_WRAP_MARK)
    scheduler = pickle.loads(pickle.dumps(scheduler))
    assert not hasattr(scheduler.optimizer.step, torch_compat.SCHEDULER_WRAP_MARK)
    torch_compat.remark_scheduler_step(scheduler)
    assert hasattr(scheduler.optimizer.step, torch_compat.SCHEDULER_WRAP_MARK)
    scheduler.optimizer.step()
    assert getattr(scheduler.optimizer, torch_compat.OPTIMIZER_CALLED_MARK)
    with warnings.catch_warnings():
        # With the mark, scheduler.step() after optimizer.step() is quiet.
        warnings.simplefilter("error")
        scheduler.step()


def test_joblib_backend_kind_asks_the_backend_class():
    from joblib import parallel_config
    from joblib.parallel import get_active_backend

    for name, kind in [
        ("loky", "loky"),
        ("multiprocessing", "multiprocessing"),
        ("threading", "threads"),
    ]:
        with parallel_config(backend=name):
            backend, _ = get_active_backend()
            assert _compat.joblib_backend_kind(backend) == kind


def test_worker_failure_types_hold_loky_and_the_process_pool_errors():
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    types = _compat.worker_failure_types()
    assert TerminatedWorkerError in types
    assert isinstance(concurrent.futures.process.BrokenProcessPool("lost"), types)
