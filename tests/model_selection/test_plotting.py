"""skhypergrad.plotting draws from a fitted search and returns the axes."""

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
    all_rows = plotting.plot_path(search, rows=[0, 1])
    assert len(all_rows.get_lines()) == 2


def test_plot_candidates_marks_the_best_row(classification_data, make_classifier):
    space = {"optimizer__weight_decay": DECAY, "module__hidden": [4, 8]}
    search = _fit(make_classifier, classification_data, space)

    ax = plotting.plot_candidates(search)

    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["hidden=4", "hidden=8"]
    star = ax.get_lines()[-1]
    assert list(star.get_xdata()) == [search.best_index_]
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
