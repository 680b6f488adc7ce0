"""skhypergrad: tune the continuous hyperparameters of skorch networks by
implicit differentiation, behind the scikit-learn search API.

Public names are loaded lazily, so ``import skhypergrad.hypergrad`` (the
torch-only engine) does not import scikit-learn or skorch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

_LAZY = {
    "HypergradSearchCV": "skhypergrad.model_selection",
    "HalvingHypergradSearchCV": "skhypergrad.model_selection",
    "DatasetDistiller": "skhypergrad.distillation",
    "DecisionRule": "skhypergrad.model_selection",
    "ScoreConstants": "skhypergrad.model_selection",
    "HypergradClassifier": "skhypergrad.model_selection",
    "HypergradRegressor": "skhypergrad.model_selection",
    "Real": "skhypergrad.hyperparams",
    "PerLayer": "skhypergrad.hyperparams",
    "PerParameter": "skhypergrad.hyperparams",
    "PerClass": "skhypergrad.hyperparams",
    "PerFeature": "skhypergrad.hyperparams",
    "PerSample": "skhypergrad.hyperparams",
    "Sampled": "skhypergrad.hyperparams",
    "Tuned": "skhypergrad.hyperparams",
    "Hyperparameter": "skhypergrad.families",
    "register_family": "skhypergrad.families",
    "SkHypergradError": "skhypergrad.exceptions",
    "AllFitsFailedError": "skhypergrad.exceptions",
    "InvalidHyperparameterError": "skhypergrad.exceptions",
    "InvalidInputError": "skhypergrad.exceptions",
    "InvalidInputTypeError": "skhypergrad.exceptions",
    "InvalidOptionError": "skhypergrad.exceptions",
    "InvalidSolverError": "skhypergrad.exceptions",
    "UnsupportedEstimatorError": "skhypergrad.exceptions",
    "ParallelWorkerError": "skhypergrad.exceptions",
    "SolverDivergedError": "skhypergrad.exceptions",
    "SolverConvergenceWarning": "skhypergrad.exceptions",
    "HyperstepSkippedWarning": "skhypergrad.exceptions",
    "BoundaryValueWarning": "skhypergrad.exceptions",
    "WeightDecayPenalty": "skhypergrad.callbacks",
    "InputNoise": "skhypergrad.callbacks",
    "SampleWeight": "skhypergrad.callbacks",
    "hypergradient": "skhypergrad.hypergrad",
    # What users configure a search with, importable from the top.
    "OuterOptimizer": "skhypergrad.hypergrad",
    "CosineSchedule": "skhypergrad.hypergrad",
    "CG": "skhypergrad.hypergrad",
    "Neumann": "skhypergrad.hypergrad",
    "Exact": "skhypergrad.hypergrad",
    "Identity": "skhypergrad.hypergrad",
    "InvalidParameterError": "skhypergrad.utils._validation",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skhypergrad' has no attribute {name!r}")


def __dir__():
    return __all__
