"""What the search tells of its worker processes and its progress (verbose >= 1)."""

import pytest


@pytest.mark.parametrize(
    ("verbose", "n_jobs", "waited", "work", "said"),
    [
        (1, 2, 3.0, 4.0, True),  # 3 s of start-up against 2 s saved
        (1, 2, 0.1, 4.0, False),  # workers already running
        (0, 2, 3.0, 4.0, False),  # silent
        (1, 1, 3.0, 4.0, False),  # no workers
    ],
)
def test_worker_start_up_that_did_not_pay_is_reported(
    capsys, verbose, n_jobs, waited, work, said
):
    from skhypergrad.model_selection._progress import SearchProgress

    SearchProgress(verbose, refit=False).workers(n_jobs, waited, work)

    out = capsys.readouterr()
    text = out.out + out.err
    assert ("did not pay" in text) is said
    if said:
        assert "waited 3.0 s" in text
        assert "jobs ran 4.0 s" in text


def test_within_one_pool_jobs_go_in_groups_of_one_per_worker():
    """Under a backend that hands back one list per call (Ray), the fit's
    pool gets the jobs a group at a time, so results (and the bar) come as
    each group finishes, in order."""
    from skhypergrad.model_selection._training import _dispatch

    calls = []

    def pool(group):
        calls.append(len(group))
        return [job() for job in group]

    jobs = [lambda i=i: i * i for i in range(5)]
    token = _dispatch._POOL.set(pool)
    try:
        results = _dispatch.run_jobs(jobs, n_jobs=2)
        assert next(results) == 0
        assert calls == [2]  # the first group only, so far
        assert list(results) == [1, 4, 9, 16]
    finally:
        _dispatch._POOL.reset(token)
    assert calls == [2, 2, 1]
