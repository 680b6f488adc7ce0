"""Problems with known answers, for testing hypergradients against an oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._typing import TensorList


class RidgeProblem:
    """Ridge regression as a bilevel problem with a closed-form hypergradient.

    The inner loss is ``mean((X_train w - y_train)^2) / 2 + sum(lam * w^2) / 2``
    with ``lam = exp(theta)``; the outer loss is
    ``mean((X_val w - y_val)^2) / 2``. ``params`` hold the exact inner optimum.

    Parameters
    ----------
    X_train, y_train : torch.Tensor of shape (n_train, n_features), (n_train,)
        Training data, which define the inner loss.
    X_val, y_val : torch.Tensor of shape (n_val, n_features), (n_val,)
        Validation data, which define the outer loss.
    alpha : float, default=0.3
        Initial regularisation strength ``lam``; ``theta = log(alpha)``.
    per_feature : bool, default=False
        One ``theta`` per feature (shape ``(n_features,)``) instead of a
        0-d tensor.

    Attributes
    ----------
    params : list of torch.Tensor
        ``[w]``, the closed-form inner optimum, shape ``(n_features,)``.
    hparams : list of torch.Tensor
        ``[theta]``, shape ``()`` or ``(n_features,)``.
    inputs : tuple
        ``(inner_loss, outer_loss, params, hparams)``, the arguments of
        :func:`skhypergrad.hypergrad.hypergradient`.

    See Also
    --------
    make_ridge_problem : Build one from seeded Gaussian data.
    """

    def __init__(
        self,
        X_train: torch.Tensor,
        y_train: torch.Tensor,
        X_val: torch.Tensor,
        y_val: torch.Tensor,
        *,
        alpha: float = 0.3,
        per_feature: bool = False,
    ) -> None:
        self.X_train, self.y_train = X_train, y_train
        self.X_val, self.y_val = X_val, y_val
        shape = (X_train.shape[1],) if per_feature else ()
        theta = torch.full(shape, float(np.log(alpha)), dtype=X_train.dtype)
        w = self._optimum(theta.double()).to(X_train.dtype)
        self.params = [w.requires_grad_(True)]
        self.hparams = [theta.requires_grad_(True)]
        self.inputs = (self.inner_loss, self.outer_loss, self.params, self.hparams)

    def inner_loss(self, params: TensorList, hparams: TensorList) -> torch.Tensor:
        """Return the training loss plus the ridge penalty ``sum(lam w^2) / 2``."""
        (w,), (theta,) = params, hparams
        fit = 0.5 * ((self.X_train @ w - self.y_train) ** 2).mean()
        return fit + 0.5 * (torch.exp(theta) * w**2).sum()

    def outer_loss(self, params: TensorList, hparams: TensorList) -> torch.Tensor:
        """Return the validation loss; it does not depend on ``hparams``."""
        return 0.5 * ((self.X_val @ params[0] - self.y_val) ** 2).mean()

    def validation_loss_at(self, theta: torch.Tensor) -> torch.Tensor:
        """Return the outer loss at the exact inner optimum ``w*(exp(theta))``.

        Computed in float64, for finite differences.
        """
        w = self._optimum(torch.as_tensor(theta, dtype=torch.float64))
        return 0.5 * ((self.X_val.double() @ w - self.y_val.double()) ** 2).mean()

    def exact_hypergradient(self) -> list[torch.Tensor]:
        """Return ``d outer_loss(w*(lam)) / d theta`` from the closed form.

        Returns
        -------
        hypergrad : list of torch.Tensor
            Shaped like ``hparams``, in their dtype; computed in float64.

        Notes
        -----
        With ``A = X^T X / n + diag(lam)``, ``dw*/dlam_j = -A^{-1} e_j w*_j``, so
        ``dL_V/dlam_j = -(A^{-1} g)_j w*_j`` with ``g = dL_V/dw`` (``A`` is
        symmetric), and ``dlam/dtheta = lam``.
        """
        theta = self.hparams[0].detach().double()
        lam = torch.exp(theta)
        w = self._optimum(theta)
        X_val, y_val = self.X_val.double(), self.y_val.double()
        g = X_val.T @ (X_val @ w - y_val) / len(y_val)
        per_coordinate = -torch.linalg.solve(self._hessian(lam), g) * w
        grad = lam * (per_coordinate if theta.dim() else per_coordinate.sum())
        return [grad.to(self.hparams[0].dtype)]

    def _hessian(self, lam: torch.Tensor) -> torch.Tensor:
        X = self.X_train.double()
        return X.T @ X / len(X) + torch.diag(lam.expand(X.shape[1]))

    def _optimum(self, theta: torch.Tensor) -> torch.Tensor:
        X, y = self.X_train.double(), self.y_train.double()
        return torch.linalg.solve(self._hessian(torch.exp(theta)), X.T @ y / len(y))


def make_ridge_problem(
    n_train: int = 40,
    n_val: int = 30,
    n_features: int = 5,
    alpha: float = 0.3,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    *,
    per_feature: bool = False,
) -> RidgeProblem:
    """Build a :class:`RidgeProblem` on seeded Gaussian data.

    Parameters
    ----------
    n_train, n_val : int, default=40, 30
        Number of training and validation samples.
    n_features : int, default=5
        Dimension of ``w``.
    alpha : float, default=0.3
        Initial regularisation strength ``lam = exp(theta)``.
    dtype : torch.dtype, default=torch.float64
        Dtype of the data, ``params`` and ``hparams``.
    seed : int, default=0
        Seed of the data; the same seed gives the same problem.
    per_feature : bool, default=False
        One hyperparameter per feature instead of a scalar.

    Returns
    -------
    problem : RidgeProblem
        With ``params`` at the exact inner optimum.

    Examples
    --------
    >>> from skhypergrad.datasets import make_ridge_problem
    >>> problem = make_ridge_problem(n_features=3, per_feature=True)
    >>> problem.hparams[0].shape
    torch.Size([3])
    """
    rng = np.random.default_rng(seed)
    coef = rng.normal(size=n_features)
    X = rng.normal(size=(n_train + n_val, n_features))
    y = X @ coef + rng.normal(size=n_train + n_val)
    X, y = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    train, val = (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:])
    return RidgeProblem(*train, *val, alpha=alpha, per_feature=per_feature)


def ridge_cv_loss(X, y, splits, weight_decay):
    """Mean validation MSE, over CV splits, of a linear model trained to optimum.

    The model is what ``torch.nn.Linear`` with a bias converges to under an
    optimiser's ``weight_decay`` on the mean squared error: the minimiser of
    ``mean((X w + b - y)^2) + weight_decay / 2 * ||(w, b)||^2`` (the bias is
    penalised too, as torch does). An oracle for searches over weight decay.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    splits : iterable of (train, test) index arrays
    weight_decay : float

    Returns
    -------
    loss : float
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    losses = []
    for train, test in splits:
        A = np.hstack([X[train], np.ones((len(train), 1))])
        n = len(train)
        # Gradient (2/n) A^T (A t - y) + weight_decay t = 0.
        theta = np.linalg.solve(
            2.0 / n * A.T @ A + weight_decay * np.eye(A.shape[1]),
            2.0 / n * A.T @ y[train],
        )
        B = np.hstack([X[test], np.ones((len(test), 1))])
        losses.append(np.mean((B @ theta - y[test]) ** 2))
    return float(np.mean(losses))


@dataclass(frozen=True)
class LinearOracle:
    """A weight-decay search problem whose answer is known in closed form.

    Attributes
    ----------
    X : ndarray of shape (90, 60)
        Standardised features (10 informative).
    y : ndarray of shape (90,)
        Standardised noisy targets.
    splits : list of (train, test) index arrays
        ``KFold(3)`` splits.
    grid : ndarray of shape (200,)
        Log-spaced weight decays in [1e-4, 10].
    grid_losses : ndarray of shape (200,)
        :func:`ridge_cv_loss` at each grid point.
    """

    X: np.ndarray
    y: np.ndarray
    splits: list
    grid: np.ndarray
    grid_losses: np.ndarray

    @property
    def best_loss(self) -> float:
        """Lowest mean validation MSE on the grid."""
        return float(self.grid_losses.min())

    @property
    def best_weight_decay(self) -> float:
        """The grid's weight decay with the lowest mean validation MSE."""
        return float(self.grid[np.argmin(self.grid_losses)])

    def loss_ratio(self, weight_decay: float) -> float:
        """:func:`ridge_cv_loss` at ``weight_decay`` over :attr:`best_loss`."""
        return ridge_cv_loss(self.X, self.y, self.splits, weight_decay) / self.best_loss


def make_linear_oracle(random_state=0) -> LinearOracle:
    """Regression data on which the best weight decay of ``nn.Linear`` is known.

    With 60 features, 90 samples and noise, the cross-validated optimum of the
    weight decay is interior to [1e-4, 10] (about 0.03 for ``random_state=0``).

    Parameters
    ----------
    random_state : int, default=0
        Seed of ``sklearn.datasets.make_regression``.

    Returns
    -------
    oracle : LinearOracle
    """
    from sklearn.datasets import make_regression
    from sklearn.model_selection import KFold

    X, y = make_regression(
        n_samples=90,
        n_features=60,
        n_informative=10,
        noise=30.0,
        random_state=random_state,
    )
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    splits = list(KFold(3).split(X))
    grid = np.logspace(-4, 1, 200)
    losses = np.array([ridge_cv_loss(X, y, splits, wd) for wd in grid])
    return LinearOracle(X, y, splits, grid, losses)
