"""skhypergrad.plotting draws from a fitted search and returns the axes."""

import numpy as np
import pytest
from scipy.stats import loguniform

from skhypergrad import HypergradSearchCV, PerLayer, PerParameter
from skhypergrad.exceptions import InvalidInputError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plotting = pytest.importorskip("skhypergrad.plotting")
DECAY = loguniform(1e-5, 1e-1)


def _fit(make_classifier, data, space):
    search = HypergradSearchCV(make_classifier(), space, cv=2, random_state=0)
    return search.fit(*data)


def test_plot_path_draws_every_tuned_value_and_the_loss(
    classification_data, make_classifier
):
    space = {"optimizer__weight_decay": DECAY, "module__hidden": [4, 8]}
    search = _fit(make_classifier, classification_data, space)

    ax = plotting.plot_path(search)

    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == search.path_["epoch"]
    assert list(line.get_ydata()) == search.path_["optimizer__weight_decay"]
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert high / low >= 10  # near-equal values are not drawn far apart
    all_rows = plotting.plot_path(search, rows=[0, 1])
    assert len(all_rows.get_lines()) == 2
    _assert_constrained(ax)


def test_plot_candidates_marks_the_best_row(classification_data, make_classifier):
    space = {"optimizer__weight_decay": DECAY, "module__hidden": [4, 8]}
    search = _fit(make_classifier, classification_data, space)

    ax = plotting.plot_candidates(search)

    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["hidden=4", "hidden=8"]
    star = ax.get_lines()[-1]
    assert list(star.get_xdata()) == [search.best_index_]
    _assert_constrained(ax)
    with pytest.raises(InvalidInputError, match="accuracy"):
        plotting.plot_candidates(search, metric="accuracy")


@pytest.mark.parametrize("wrapper", [PerLayer, PerParameter])
def test_plot_layer_decays_gives_one_box_per_layer(
    classification_data, make_classifier, wrapper
):
    space = {"optimizer__weight_decay": wrapper(DECAY)}
    search = _fit(make_classifier, classification_data, space)

    ax = plotting.plot_layer_decays(search)

    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["hidden", "output"]
    low, high = ax.get_ylim()
    values = [v for _, options in _groups(search) for v in options]
    assert high / low >= 10
    assert low <= min(values)
    assert max(values) <= high
    _assert_constrained(ax)


def _groups(search):
    params = search.best_params_
    if "optimizer__param_groups" in params:
        return [(n, [o["weight_decay"]]) for n, o in params["optimizer__param_groups"]]
    (penalty,) = [c for name, c in params["callbacks"] if "decay" in name]
    return [("all", list(penalty.values))]


def _assert_constrained(ax):
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    assert isinstance(ax.figure.get_layout_engine(), ConstrainedLayoutEngine)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([7.97e-3, 8.01e-3], (7.99e-3 / 10**0.5, 7.99e-3 * 10**0.5)),
        ([1e-5, 1e-1], None),  # spread over more than a decade: matplotlib's own
    ],
)
def test_near_equal_values_get_a_log_axis_a_decade_wide(values, expected):
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    ax.boxplot([[v] for v in values])
    ax.set_yscale("log")
    before = ax.get_ylim()

    plotting._show_spread(ax, np.asarray(values))

    low, high = ax.get_ylim()
    if expected is None:
        assert (low, high) == before
    else:
        assert (low, high) == pytest.approx(expected, rel=1e-3)
    plt.close("all")


def test_plot_layer_decays_refuses_a_scalar_decay(classification_data, make_classifier):
    search = _fit(
        make_classifier, classification_data, {"optimizer__weight_decay": DECAY}
    )

    with pytest.raises(InvalidInputError, match="PerLayer or PerParameter"):
        plotting.plot_layer_decays(search)


def test_plotting_an_unfitted_search_says_to_fit(make_classifier):
    search = HypergradSearchCV(make_classifier(), {"optimizer__weight_decay": DECAY})

    with pytest.raises(InvalidInputError, match="fit the search first"):
        plotting.plot_path(search)
