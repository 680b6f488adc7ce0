"""The search under Ray's joblib backend on a real local Ray instance
(loopback, 2 CPUs), ``pytest -m slow``.

A mixed search gives under Ray what it gives locally with the same
``random_state``: the same rows, scores, best values and predictions.
"""

import os
from pathlib import Path

import joblib
import numpy as np
import pytest

pytest.importorskip("ray")

from skorch.callbacks import Callback  # noqa: E402

from .conftest import assert_same_search  # noqa: E402


class WritePid(Callback):
    """Leaves the id of the process that trains the net in ``folder``."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_begin(self, net, **kwargs):
        Path(self.folder, f"{os.getpid()}.pid").write_text(str(os.getpid()))


@pytest.fixture(scope="module")
def ray_instance():
    import ray
    from ray.util.joblib import register_ray

    # The test nets' modules live in the tests' conftest: Ray's workers start
    # fresh, so they are told where to import them from.
    tests = str(Path(__file__).resolve().parents[1])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": tests}},
    )
    register_ray()
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_mixed_search_under_ray_matches_local_run(
    ray_instance, classification_data, make_classifier, tmp_path
):
    from scipy.stats import loguniform

    from skhypergrad import HypergradSearchCV

    X, y = classification_data
    space = {
        "lr": [0.01, 0.03],
        "module__hidden": [8, 16],
        "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    }
    net = make_classifier(max_epochs=8, callbacks=[WritePid(str(tmp_path))])
    search = HypergradSearchCV(net, space, cv=2, n_jobs=2, random_state=0)
    local = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)
    for pid in tmp_path.glob("*.pid"):
        pid.unlink()

    with joblib.parallel_config(backend="ray"):
        remote = HypergradSearchCV(**{**search.get_params(deep=False), "verbose": 1})
        remote.fit(X, y)
    # The candidates trained in Ray's worker processes (only the refit in
    # this one), the tuning and the constant trainings in one pool of two:
    # Ray starts new workers for every Parallel call, and the fit makes one.
    pids = {int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert len(pids - {os.getpid()}) == 2

    assert_same_search(remote, local, X)


@pytest.mark.slow
def test_one_candidate_spreads_its_splits_over_ray_workers(
    ray_instance, classification_data, make_classifier, tmp_path
):
    from scipy.stats import loguniform

    from skhypergrad import HypergradSearchCV

    X, y = classification_data
    net = make_classifier(max_epochs=8, callbacks=[WritePid(str(tmp_path))])
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-5, 1e-1)},
        cv=2,
        n_jobs=2,
        random_state=0,
        refit=False,
        rescore=False,  # only the tuning trainings: one process per split
    )
    local = HypergradSearchCV(**{**search.get_params(deep=False), "n_jobs": 1})
    local.fit(X, y)
    for pid in tmp_path.glob("*.pid"):
        pid.unlink()

    with joblib.parallel_config(backend="ray"):
        remote = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)

    # The two splits trained in two of Ray's worker processes, in lock-step.
    pids = {int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert len(pids) == 2
    assert os.getpid() not in pids
    assert remote.paths_ == local.paths_
    np.testing.assert_array_equal(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )


@pytest.mark.slow
def test_halving_search_under_ray_matches_local_run(
    ray_instance, classification_data, make_classifier, tmp_path
):
    """The racers' paused trainings travel to Ray's workers and back; every
    iteration runs in the same pool."""
    from scipy.stats import loguniform

    from skhypergrad import HalvingHypergradSearchCV

    X, y = classification_data
    space = {
        "module__hidden": [4, 8, 16],
        "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    }
    net = make_classifier(max_epochs=9, callbacks=[WritePid(str(tmp_path))])
    search = HalvingHypergradSearchCV(net, space, cv=2, n_jobs=2, random_state=0)
    local = HalvingHypergradSearchCV(**search.get_params(deep=False)).fit(X, y)
    for pid in tmp_path.glob("*.pid"):
        pid.unlink()

    with joblib.parallel_config(backend="ray"):
        remote = HalvingHypergradSearchCV(**search.get_params(deep=False)).fit(X, y)

    pids = {int(p.read_text()) for p in tmp_path.glob("*.pid")}
    assert len(pids - {os.getpid()}) == 2
    assert_same_search(remote, local, X)
    assert list(remote.cv_results_["iter"]) == list(local.cv_results_["iter"])
