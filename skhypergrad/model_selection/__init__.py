"""scikit-learn estimators that search hyperparameters with hypergradients."""

from ._distill import DatasetDistiller
from ._search import HypergradSearchCV
from ._single_fit import HypergradClassifier, HypergradRegressor

__all__ = [
    "DatasetDistiller",
    "HypergradClassifier",
    "HypergradRegressor",
    "HypergradSearchCV",
]
