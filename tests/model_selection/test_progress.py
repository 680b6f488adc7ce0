"""What the search tells about its worker processes (``verbose >= 1``)."""

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
