"""The search on a real Dask cluster (processes on the loopback), ``pytest -m slow``.

A mixed search gives on the cluster what it gives locally. A killed worker:
joblib's Dask backend does not resubmit the lost batch (the future is
cancelled), so the documented behaviour is a clear ParallelWorkerError and an
unfitted search; a re-run gives the undisturbed result.
"""

import re
import threading
import time

import joblib
import pytest

pytest.importorskip("distributed")

from .conftest import assert_same_search  # noqa: E402


def _one_candidate(make_classifier, max_epochs, **kwargs):
    """A search over a decay range only (one candidate), on 2 splits."""
    from scipy.stats import loguniform

    from skhypergrad import HypergradSearchCV

    return HypergradSearchCV(
        make_classifier(max_epochs=max_epochs),
        {"optimizer__weight_decay": loguniform(1e-5, 1e-1)},
        cv=2,
        random_state=0,
        **kwargs,
    )


def _kill_a_busy_worker(client, killed):
    """Wait until a worker runs a task, then kill that worker process (the
    nanny restarts it); record which in ``killed``."""
    deadline = time.time() + 60
    while time.time() < deadline:
        busy = [w for w, tasks in client.processing().items() if tasks]
        if busy:
            time.sleep(1.0)
            killed.append(busy[0])
            try:
                client.run(lambda: __import__("os")._exit(1), workers=busy[:1])
            except Exception:  # noqa: S110  the worker died mid-call
                pass
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_mixed_search_on_dask_cluster_matches_local_run(
    classification_data, make_classifier
):
    from distributed import Client, LocalCluster, get_task_stream
    from scipy.stats import loguniform

    from skhypergrad import HypergradSearchCV

    X, y = classification_data
    space = {
        "lr": [0.01, 0.03],
        "module__hidden": [8, 16],
        "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    }
    search = HypergradSearchCV(
        make_classifier(max_epochs=8), space, cv=2, n_jobs=2, random_state=0
    )
    local = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            workers = client.run(lambda: __import__("torch").set_num_threads(1))
            with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
                remote = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)
    # The candidates ran as tasks on the worker processes.
    assert {task["worker"] for task in tasks.data} == set(workers)

    assert_same_search(remote, local, X)


@pytest.mark.slow
def test_killed_dask_worker_fails_clearly_and_rerun_matches(
    classification_data, make_classifier
):
    from distributed import Client, LocalCluster
    from scipy.stats import loguniform

    from skhypergrad import HypergradSearchCV
    from skhypergrad.exceptions import ParallelWorkerError

    X, y = classification_data
    space = {"optimizer__weight_decay": loguniform(1e-5, 1e-1)}
    search = HypergradSearchCV(
        make_classifier(max_epochs=40),
        space,
        cv=2,
        n_starts=2,
        n_jobs=2,
        random_state=0,
        refit=False,
    )
    reference = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            client.run(lambda: __import__("torch").set_num_threads(1))
            killed = []
            killer = threading.Thread(target=_kill_a_busy_worker, args=(client, killed))
            killer.start()
            disturbed = HypergradSearchCV(**search.get_params(deep=False))
            with joblib.parallel_config(backend="dask"):
                with pytest.raises(ParallelWorkerError, match="worker was lost"):
                    disturbed.fit(X, y)
            killer.join()
            assert killed, "no worker was killed: the test did not disturb the run"
            assert not hasattr(disturbed, "cv_results_")
            with joblib.parallel_config(backend="dask"):
                rerun = disturbed.fit(X, y)

    assert rerun.cv_results_["params"] == reference.cv_results_["params"]
    assert rerun.best_params_ == reference.best_params_


@pytest.mark.slow
def test_one_candidate_spreads_its_splits_over_dask_workers(
    classification_data, make_classifier
):
    from distributed import Client, LocalCluster, get_task_stream

    from skhypergrad import HypergradSearchCV

    X, y = classification_data
    search = _one_candidate(make_classifier, 8, n_jobs=-1)
    local = HypergradSearchCV(**{**search.get_params(deep=False), "n_jobs": 1})
    local.fit(X, y)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            workers = client.run(lambda: __import__("torch").set_num_threads(1))
            with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
                remote = HypergradSearchCV(**search.get_params(deep=False)).fit(X, y)
    # Each split of the one candidate was a task of its own (run_split), on
    # both workers; they met through gloo and took the same hyper-steps.
    split_tasks = [t for t in tasks.data if re.search(r"run_split\d", str(t["key"]))]
    assert len(split_tasks) == 2
    assert {t["worker"] for t in split_tasks} == set(workers)

    assert remote.paths_ == local.paths_
    assert_same_search(remote, local, X)


@pytest.mark.slow
def test_workers_with_several_threads_keep_a_candidates_splits_together(
    classification_data, make_classifier
):
    # Two splits in threads of one worker process would wait for each other
    # on torch's process-wide generator: they train together instead.
    from distributed import Client, LocalCluster, get_task_stream

    X, y = classification_data
    search = _one_candidate(make_classifier, 4, refit=False)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True) as cluster:
        with Client(cluster):
            with get_task_stream() as tasks, joblib.parallel_backend("dask"):
                search.fit(X, y)
    keys = [str(t["key"]) for t in tasks.data]
    assert not any(re.search(r"run_split\d", k) for k in keys)
    assert any("run_candidate" in k for k in keys)


@pytest.mark.slow
def test_killed_worker_of_a_spread_candidate_fails_clearly_and_leaves_nothing(
    classification_data, make_classifier
):
    # One candidate, its two splits on the two workers, exchanging through
    # gloo: a worker dies mid-training. The other split loses its peer and
    # says which split it was; nothing stays busy on the cluster.
    from distributed import Client, LocalCluster

    from skhypergrad.exceptions import ParallelWorkerError

    X, y = classification_data
    search = _one_candidate(make_classifier, 400, refit=False, rescore=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            client.run(lambda: __import__("torch").set_num_threads(1))
            killed = []
            killer = threading.Thread(target=_kill_a_busy_worker, args=(client, killed))
            killer.start()
            with joblib.parallel_config(backend="dask"):
                with pytest.raises(
                    ParallelWorkerError,
                    match=r"worker was lost.*(split \d of a candidate|Split \d of a)",
                ):
                    search.fit(X, y)
            killer.join()
            assert killed, "no worker was killed: the test did not disturb the run"
            assert not hasattr(search, "cv_results_")
            # Nothing left running: the surviving split failed with its peer
            # (and a retry of the killed one finds the store closed).
            deadline = time.time() + 30
            while any(client.processing().values()) and time.time() < deadline:
                time.sleep(0.2)
            assert not any(client.processing().values())


@pytest.mark.slow
def test_halving_search_on_dask_cluster_matches_local_run(
    classification_data, make_classifier
):
    """The racers' paused trainings travel to and from the cluster's workers."""
    from distributed import Client, LocalCluster, get_task_stream
    from scipy.stats import loguniform

    from skhypergrad import HalvingHypergradSearchCV

    X, y = classification_data
    space = {
        "module__hidden": [4, 8, 16],
        "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    }
    search = HalvingHypergradSearchCV(
        make_classifier(max_epochs=9), space, cv=2, n_jobs=2, random_state=0
    )
    local = HalvingHypergradSearchCV(**search.get_params(deep=False)).fit(X, y)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with Client(cluster) as client:
            workers = client.run(lambda: __import__("torch").set_num_threads(1))
            with get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
                remote = HalvingHypergradSearchCV(**search.get_params(deep=False))
                remote.fit(X, y)
    assert {task["worker"] for task in tasks.data} == set(workers)

    assert_same_search(remote, local, X)
    assert list(remote.cv_results_["iter"]) == list(local.cv_results_["iter"])
