"""scikit-learn estimators that search hyperparameters with hypergradients."""

from ._distill import DatasetDistiller
from ._halving import HalvingHypergradSearchCV
from ._search import HypergradSearchCV
from ._single_fit import HypergradClassifier, HypergradRegressor

__all__ = [
    "DatasetDistiller",
    "HalvingHypergradSearchCV",
    "HypergradClassifier",
    "HypergradRegressor",
    "HypergradSearchCV",
]
