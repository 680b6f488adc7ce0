"""The search's data boundary: what skorch needs in, what scikit-learn expects out.

skorch wants float32 ``X`` and int64 class indices; scikit-learn hands out
float64 and int32, and labels of any type. The mixin casts and encodes in
``fit`` and in every prediction method, and decodes predictions, around
``BaseSearchCV``'s own delegation to ``best_estimator_``; ``net_fit_params``
takes the fit parameters that reach the network.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._compat import _search_estimator_has
from ..exceptions import InvalidInputError
from ..net import cast_X, cast_y, is_classifier_net, split_estimator
from ..utils._validation import (
    as_array,
    check_class_labels,
    check_features,
    check_finite,
    check_n_samples,
    sklearn_errors,
)


class DataBoundaryMixin:
    """Casts, encodes and checks data at the search's boundary.

    Mixed in before ``BaseSearchCV``: each prediction method prepares ``X``
    and calls ``BaseSearchCV``'s own.
    """

    def _check_data(self, X, y, net):
        X = self._as_input(X)
        if y is not None:
            y = np.asarray(
                as_array(y, ensure_2d=False, dtype=None, ensure_all_finite=False)
            )
            check_finite(y, "y")
            if is_classifier_net(net):
                check_class_labels(y, type(net).__name__)
        check_n_samples(X, y)
        check_features(self, X, reset=True)
        self._target_was_1d = y is not None and y.ndim == 1
        if not self.cast_inputs:
            return X, y
        if y is not None and is_classifier_net(net) and _needs_encoding(y):
            # skorch's dataset cannot hold strings, and torch's losses want class
            # indices 0..K-1: train on codes, predict the labels as given.
            self._label_encoder = LabelEncoder().fit(y)
            y = self._label_encoder.transform(y)
        return _cast_features(X), cast_y(y, net)

    def _as_input(self, X):
        # A bare net needs a numeric array; a Pipeline may start with steps that
        # take anything (text, DataFrames), so only its length and values are
        # checked here.
        if not isinstance(self.estimator, Pipeline):
            X = as_array(
                X,
                accept_sparse=False,
                dtype="numeric",
                ensure_all_finite=False,
                allow_nd=True,
            )
        check_finite(X, "X")
        return X

    def _prepare(self, X):
        check_is_fitted(self, "best_estimator_")
        X = self._as_input(X)
        check_features(self, X, reset=False)
        return _cast_features(X) if self.cast_inputs else X

    def _encode(self, y):
        encoder = getattr(self, "_label_encoder", None)
        if y is None or not self.cast_inputs:
            return y
        if encoder is not None:
            with sklearn_errors("y"):
                y = encoder.transform(np.asarray(y))
        return cast_y(y, split_estimator(self.best_estimator_)[0])

    @available_if(_search_estimator_has("predict"))
    def predict(self, X):
        """Predict with ``best_estimator_`` (labels as given to ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray
        """
        y_pred = super().predict(self._prepare(X))
        encoder = getattr(self, "_label_encoder", None)
        if encoder is not None:
            return encoder.inverse_transform(np.asarray(y_pred).astype(np.int64))
        if self._target_was_1d and np.ndim(y_pred) == 2 and y_pred.shape[1] == 1:
            y_pred = y_pred.ravel()
        if self.cast_inputs and getattr(y_pred, "dtype", None) == np.float32:
            # Back to scikit-learn's default precision at the search's boundary.
            y_pred = y_pred.astype(np.float64)
        return y_pred

    @available_if(_search_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities from ``best_estimator_``, columns in ``classes_`` order.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return super().predict_proba(self._prepare(X))

    @available_if(_search_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities from ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return super().predict_log_proba(self._prepare(X))

    @available_if(_search_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray
        """
        return super().decision_function(self._prepare(X))

    @available_if(_search_estimator_has("transform"))
    def transform(self, X):
        """Transform with ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Xt : ndarray
        """
        return super().transform(self._prepare(X))

    @available_if(_search_estimator_has("score_samples"))
    def score_samples(self, X):
        """``score_samples`` of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return super().score_samples(self._prepare(X))

    def score(self, X, y=None, **params):
        """Score ``best_estimator_`` with ``scorer_`` (the refit metric if several).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
        **params : dict
            Passed to the scorer with metadata routing enabled.

        Returns
        -------
        score : float
        """
        with sklearn_errors("score"):
            return super().score(self._prepare(X), self._encode(y), **params)

    @property
    def classes_(self):
        """Class labels, as given to ``fit``."""
        encoder = getattr(self, "_label_encoder", None)
        if encoder is not None and hasattr(self, "best_estimator_"):
            return encoder.classes_
        return super().classes_

    @property
    def n_features_in_(self):
        """Number of features seen during ``fit``."""
        try:
            return self.__dict__["_n_features"]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no n_features_in_ before fit."
            ) from None

    @n_features_in_.setter
    def n_features_in_(self, value):
        self.__dict__["_n_features"] = value


def _needs_encoding(y) -> bool:
    if y.ndim != 1:
        return False
    if y.dtype.kind not in "iu":
        return True
    labels = np.unique(y)
    return not np.array_equal(labels, np.arange(len(labels)))


def _cast_features(X):
    X = cast_X(X)
    if isinstance(X, np.ndarray) and X.dtype.kind in "iub":
        return X.astype(np.float32)
    return X


def net_fit_params(params, step):
    """The network's own fit parameters; refuse what skorch cannot take."""
    prefix = "" if step is None else f"{step}__"
    wrong = [k for k in params if not k.startswith(prefix)]
    if wrong:
        raise InvalidInputError(
            f"fit parameters {wrong} do not belong to the network step {step!r}. "
            "HypergradSearchCV routes 'groups' to the splitter and "
            f"'{prefix}<name>' to the network; fit the preprocessing separately "
            "if it needs its own."
        )
    params = {k[len(prefix) :]: v for k, v in params.items()}
    if "sample_weight" in params:
        raise InvalidInputError(
            f"fit got {prefix}sample_weight, but a skorch network's module cannot "
            "take per-sample weights (skorch passes fit parameters to the module's "
            "forward). To weight classes, use criterion__weight; to weight the "
            "scores, enable metadata routing (sklearn.set_config("
            "enable_metadata_routing=True)) and request sample_weight on the scorer."
        )
    return params
