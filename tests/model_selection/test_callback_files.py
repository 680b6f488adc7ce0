"""File-writing skorch callbacks (Checkpoint) in the split nets: each split
writes to a directory of its own, removed with it; the refit writes where the
user said."""

import glob
import os
import tempfile

import pytest
from scipy.stats import loguniform
from sklearn.model_selection import KFold
from skorch.callbacks import Callback, Checkpoint

from skhypergrad import HypergradSearchCV


class RowsSeen(Callback):
    """Records, at the end of training, the rows its history says it trained
    on and the rows it was given: equal unless another net's history was
    loaded."""

    seen = []

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.rows_ = len(X)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        batches = net.history[0, "batches"]
        rows = sum(b.get("train_batch_size", 0) for b in batches)
        type(self).seen.append((self.rows_, rows))


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_each_split_checkpoints_to_its_own_directory(
    classification_data, make_classifier, tmp_path, monkeypatch, n_jobs
):
    monkeypatch.chdir(tmp_path)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "skhypergrad-split*")))
    RowsSeen.seen = []
    X, y = classification_data
    X, y = X[:119], y[:119]  # KFold(2): splits of 59 and 60 training rows
    net = make_classifier(
        max_epochs=4,
        train_split=None,
        callbacks=[
            ("checkpoint", Checkpoint(monitor="train_loss_best", load_best=True)),
            ("rows", RowsSeen()),
        ],
    )
    search = HypergradSearchCV(
        net,
        {"optimizer__weight_decay": loguniform(1e-5, 1e-1)},
        cv=KFold(2),
        n_jobs=n_jobs,
        random_state=0,
        refit=False,
    )

    search.fit(X, y)

    assert os.listdir(tmp_path) == []  # nothing written where the user looks
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "skhypergrad-split*")))
    assert after == before  # the split directories are gone
    if n_jobs == 1:  # the workers' records stay in the workers
        # Each split's tuning and constant trainings (the tuned and the
        # starting values) see its own rows only.
        assert sorted(RowsSeen.seen) == [(59, 59)] * 3 + [(60, 60)] * 3

    search.set_params(refit=True).fit(X, y)
    assert "params.pt" in os.listdir(tmp_path)  # the refit writes for the user
