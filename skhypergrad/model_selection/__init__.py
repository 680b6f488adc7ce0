"""scikit-learn estimators that search hyperparameters with hypergradients."""

from ._search import HypergradSearchCV

__all__ = ["HypergradSearchCV"]
