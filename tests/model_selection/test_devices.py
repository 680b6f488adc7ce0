"""Devices and notebooks: a search on CUDA, its pickle on a CPU-only machine, HTML.

The tests marked ``gpu`` need CUDA and skip without it. The CPU tests check
what can be checked without a GPU: nothing device-bound is pickled outside
skorch's device-aware state, and a net saved with ``device="cuda"`` loads on
a machine without CUDA.
"""

import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import loguniform, uniform
from skorch.exceptions import DeviceWarning

from skhypergrad import HypergradSearchCV, PerParameter, Tuned

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)
MIXED = {
    "lr": [0.01, 0.03],
    "optimizer__weight_decay": loguniform(1e-5, 1e-1),
    "module__dropout": Tuned(uniform(0.0, 0.5)),
}
PER_WEIGHT = {
    "optimizer__weight_decay": PerParameter(loguniform(1e-5, 1e-1)),
    "module__dropout": Tuned(uniform(0.0, 0.5)),
}


def _tensors_pickled_directly(obj):
    """Tensors that plain pickle would write with their device.

    skorch writes a net's module, optimizer and criterion through its own
    device-aware ``__getstate__``, which maps them to the CPU on a machine
    without CUDA; any other tensor would keep its CUDA device and fail to load.
    """
    found = []

    class Spy(pickle.Pickler):
        def reducer_override(self, value):
            if isinstance(value, torch.Tensor):
                found.append(tuple(value.shape))
            return NotImplemented

    Spy(io.BytesIO()).dump(obj)
    return found


def _load_in_cpu_only_process(tmp_path, search, X):
    """Unpickle ``search`` in a fresh Python that sees no CUDA device."""
    (tmp_path / "search.pkl").write_bytes(pickle.dumps(search))
    np.save(tmp_path / "X.npy", X)
    script = textwrap.dedent(f"""
        import pickle, sys, warnings, numpy as np, torch
        sys.path.insert(0, {os.path.dirname(os.path.dirname(__file__))!r})
        assert not torch.cuda.is_available()
        warnings.simplefilter("ignore")
        search = pickle.loads(open("search.pkl", "rb").read())
        assert torch.device(search.best_estimator_.device).type == "cpu"
        np.save("out.npy", search.predict_proba(np.load("X.npy")))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, env=env)
    return np.load(tmp_path / "out.npy")


@pytest.mark.parametrize("space", [MIXED, PER_WEIGHT], ids=["mixed", "per_weight"])
def test_fitted_search_pickles_no_tensor_outside_skorch_state(
    classification_data, make_classifier, space
):
    X, y = classification_data
    search = HypergradSearchCV(make_classifier(), space, cv=2, random_state=0)
    search.fit(X, y)
    assert _tensors_pickled_directly(search) == []


def test_search_saved_on_cuda_loads_and_predicts_on_cpu(
    tmp_path, classification_data, make_classifier, monkeypatch
):
    # Without a GPU, as far as it goes: a search fitted on the CPU whose net
    # says device="cuda", unpickled where CUDA is unavailable (a fresh process
    # that sees no device, then this one with CUDA hidden).
    X, y = classification_data
    search = HypergradSearchCV(make_classifier(), PER_WEIGHT, cv=2, random_state=0)
    search.fit(X, y)
    expected = search.predict_proba(X)
    search.best_estimator_.device = "cuda"
    np.testing.assert_array_equal(
        _load_in_cpu_only_process(tmp_path, search, X), expected
    )
    data = pickle.dumps(search)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with (
        pytest.warns(DeviceWarning, match="no CUDA devices"),
        pytest.warns(DeviceWarning, match="requested device .cuda. is not available"),
    ):
        loaded = pickle.loads(data)
    assert torch.device(loaded.best_estimator_.device).type == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_search_html_repr_for_notebooks(make_classifier):
    search = HypergradSearchCV(make_classifier(), MIXED, cv=2)
    html = search._repr_html_()
    assert html.lstrip().startswith("<")
    assert "HypergradSearchCV" in html
    assert "NeuralNetClassifier" in html
    assert "HypergradSearchCV" in search._repr_mimebundle_()["text/html"]


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("space", [MIXED, PER_WEIGHT], ids=["mixed", "per_weight"])
def test_search_on_cuda_keeps_every_hyperparameter_on_the_net_device(
    classification_data, make_classifier, space, monkeypatch
):
    import skhypergrad.bilevel

    seen = []
    hypergradient = skhypergrad.bilevel.hypergradient

    def spy(inner_loss, outer_loss, params, hparams, **kwargs):
        seen.append({t.device.type for t in (*params, *hparams)})
        grads = hypergradient(inner_loss, outer_loss, params, hparams, **kwargs)
        seen.append({t.device.type for t in grads[0]})
        return grads

    monkeypatch.setattr(skhypergrad.bilevel, "hypergradient", spy)
    X, y = classification_data
    search = HypergradSearchCV(
        make_classifier(device="cuda", max_epochs=8), space, cv=2, random_state=0
    )
    search.fit(X, y)
    assert seen, "no hypergradient was computed"
    assert all(devices == {"cuda"} for devices in seen), seen
    assert search.best_estimator_.device == "cuda"
    assert next(search.best_estimator_.module_.parameters()).is_cuda
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.predict(X).shape == y.shape


@pytest.mark.gpu
@needs_cuda
def test_search_fitted_on_cuda_loads_and_predicts_on_cpu_only_machine(
    tmp_path, classification_data, make_classifier
):
    X, y = classification_data
    search = HypergradSearchCV(
        make_classifier(device="cuda"), PER_WEIGHT, cv=2, random_state=0
    )
    search.fit(X, y)
    expected = search.predict_proba(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeviceWarning)
        proba = _load_in_cpu_only_process(tmp_path, search, X)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
