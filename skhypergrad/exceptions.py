"""Exceptions and warnings raised by skhypergrad.

Every exception subclasses :class:`SkHypergradError` and the builtin a caller
would catch anyway, so ``except ValueError`` keeps working. This module
imports nothing but the standard library: the engine uses it too.
"""

from __future__ import annotations


class SkHypergradError(Exception):
    """Base class of every error raised by skhypergrad."""


class InvalidHyperparameterError(SkHypergradError, ValueError):
    """A search space entry cannot be tuned with hypergradients."""


class InvalidInputError(SkHypergradError, ValueError):
    """The data or an argument given to ``fit`` is not usable."""


class InvalidInputTypeError(SkHypergradError, TypeError):
    """The data given to ``fit`` or ``predict`` has a type that cannot be used."""


class UnsupportedEstimatorError(SkHypergradError, TypeError):
    """The estimator is not a skorch network (or a Pipeline ending in one)."""


class AllFitsFailedError(SkHypergradError, ValueError):
    """Every split of every candidate failed to train (as GridSearchCV raises)."""


class ParallelWorkerError(SkHypergradError, RuntimeError):
    """A joblib / Dask worker died while running part of the search."""


class InvalidOptionError(SkHypergradError, ValueError):
    """An option of an engine object (a solver, the outer optimiser) is invalid."""


class InvalidSolverError(InvalidOptionError):
    """A linear solver, or one of its options, is not one that can be used."""


class SolverDivergedError(SkHypergradError, FloatingPointError):
    """A linear solve for the inverse Hessian-vector product diverged."""


class SolverConvergenceWarning(RuntimeWarning):
    """A linear solver stopped at ``max_iter`` before reaching its tolerance.

    A ``RuntimeWarning`` rather than scikit-learn's ``ConvergenceWarning`` so
    that the torch-only engine never imports scikit-learn.
    """


class HyperstepSkippedWarning(UserWarning):
    """One or more hyper-steps were skipped because they were not finite."""


class BoundaryValueWarning(UserWarning):
    """A reported tuned value sits at a bound of its range."""


__all__ = [
    "AllFitsFailedError",
    "BoundaryValueWarning",
    "HyperstepSkippedWarning",
    "InvalidHyperparameterError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "InvalidOptionError",
    "InvalidSolverError",
    "ParallelWorkerError",
    "SkHypergradError",
    "SolverConvergenceWarning",
    "SolverDivergedError",
    "UnsupportedEstimatorError",
]
