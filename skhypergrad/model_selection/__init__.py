"""scikit-learn estimators that search hyperparameters with hypergradients."""

from ._decision import DecisionRule, ScoreConstants
from ._halving import HalvingHypergradSearchCV
from ._search import HypergradSearchCV
from ._single_fit import HypergradClassifier, HypergradRegressor
from ._training._paused import Resume

__all__ = [
    "DecisionRule",
    "HalvingHypergradSearchCV",
    "HypergradClassifier",
    "HypergradRegressor",
    "HypergradSearchCV",
    "Resume",
    "ScoreConstants",
]
