"""Dataset distillation: a few synthetic examples per class that train a net well.

:class:`DatasetDistiller` is a resampler in imbalanced-learn's sense: its
``fit_resample(X, y)`` returns a new, much smaller training set, so it sits in
an ``imblearn.pipeline.Pipeline`` ahead of any classifier. The synthetic rows
are learned by differentiating the real-data loss of freshly initialised
networks through their training on the synthetic rows (Wang et al., 2018).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from torch import nn
from torch.func import functional_call
from torch.nn.parameter import UninitializedParameter

from ..exceptions import (
    HyperstepSkippedWarning,
    InvalidInputError,
    SolverDivergedError,
    UnsupportedEstimatorError,
)
from ..hypergrad import unrolled_hypergradient
from ..net import is_classifier_net, module_dtype
from ..utils._validation import (
    Interval,
    as_array,
    check_features,
    check_finite,
    check_n_samples,
    validate_params,
)


class DatasetDistiller(BaseEstimator):
    """Learn ``n_per_class`` synthetic examples per class that train a net well.

    A resampler (imbalanced-learn's convention): ``fit_resample(X, y)`` returns
    ``n_per_class * n_classes`` synthetic rows and their labels, learned so
    that a freshly initialised network of the given architecture, trained on
    them for ``inner_steps`` full-batch gradient steps, does well on the real
    ``(X, y)``. Put it in an ``imblearn.pipeline.Pipeline`` ahead of a
    classifier to train that classifier on the distilled set; imbalanced-learn
    is not needed otherwise.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier
        The network specification (not fitted). Its ``module`` (with its
        ``module__`` arguments), ``criterion`` and ``device`` are reused; its
        optimizer, ``lr`` and ``max_epochs`` are not: the networks trained
        during distillation take ``inner_steps`` plain gradient steps.
    n_per_class : int, default=1
        Synthetic examples per class (``k``).
    max_iter : int, default=500
        Outer steps: each trains one fresh network on the synthetic rows and
        updates them with the gradient of its real-data loss.
    lr : float, default=0.01
        Adam step size of the outer updates (cosine-annealed to 0 over
        ``max_iter``). The synthetic rows live on the scale of ``X``: with
        standardised or [0, 1] features, 0.01 works.
    inner_steps : int, default=20
        Full-batch gradient steps of each inner training (unrolled and
        differentiated through).
    inner_lr : float, default=0.1
        Step size of the inner gradient steps at the start.
    learn_inner_lr : bool, default=True
        Learn the inner step size jointly (in log space), as Wang et al. do;
        the learned value is ``inner_lr_``.
    batch_size : int, default=256
        Real rows per outer step on which the trained network's loss is taken
        (all rows if there are fewer).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial rows, the fresh networks and the real batches; the
        same value gives the same result on a CPU.
    verbose : int, default=0
        ``>= 1`` shows a progress bar with the outer loss.

    Attributes
    ----------
    X_distilled_ : ndarray of shape (n_classes * n_per_class, n_features)
        The synthetic rows, grouped by class in the order of ``classes_``.
        Same dtype as ``X`` when ``X`` is float32 or float64, float64 otherwise.
    y_distilled_ : ndarray of shape (n_classes * n_per_class,)
        Their labels, as given to ``fit`` (strings stay strings).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    inner_lr_ : float
        The inner step size the rows were distilled for (``inner_lr`` if not
        learned). Training with it for ``inner_steps`` full-batch steps
        reproduces the distillation's own training.
    loss_path_ : ndarray of shape (n_iter,)
        Real-data loss of each outer step's trained network (NaN where a step
        was skipped because it was not finite).
    n_iter_ : int
        Outer steps run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features, when ``X`` has string column names.

    See Also
    --------
    HypergradClassifier : Tunes a net's continuous hyperparameters in one fit.

    Notes
    -----
    Each outer step draws a fresh initialisation of the network, trains it on
    the synthetic rows for ``inner_steps`` gradient steps (modules in training
    mode) keeping the graph, takes the loss of the trained network on a batch
    of real rows (eval mode) and moves the synthetic rows (and the log inner
    step size) by Adam along its gradient, clipped to norm 1. This is
    unrolled differentiation (Wang et al., 2018, with initialisations
    resampled at every step so that the rows train *any* fresh network), not
    the implicit hypergradient of :func:`skhypergrad.hypergrad.hypergradient`
    (Lorraine et al., 2020): with one or ten rows per class the inner problem
    has no unique minimiser (the Hessian is singular once the rows are fitted)
    and the implicit function theorem assumes training to convergence from
    each fresh initialisation, while a short unrolled training is cheap, exact
    and also yields the gradient of the inner step size, which the implicit
    one cannot (it is zero at a minimum).

    The rows start from ``n_per_class`` random real examples of each class.
    They are computed in the module's dtype (float32 usually) and returned in
    the dtype of ``X``. A network trained on them another way (Adam, more
    epochs) usually does well too, but the set is made for plain full-batch
    gradient descent at ``inner_lr_`` for ``inner_steps`` steps.

    References
    ----------
    T. Wang, J.-Y. Zhu, A. Torralba and A. A. Efros, "Dataset Distillation",
    arXiv:1811.10959, 2018.

    J. Lorraine, P. Vicol and D. Duvenaud, "Optimizing Millions of
    Hyperparameters by Implicit Differentiation", AISTATS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import load_digits
    >>> from skorch import NeuralNetClassifier
    >>> from skhypergrad import DatasetDistiller
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16.0
    >>> module = torch.nn.Sequential(
    ...     torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    >>> net = NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss)
    >>> distiller = DatasetDistiller(net, n_per_class=1, max_iter=60,
    ...     inner_steps=10, random_state=0)
    >>> X_small, y_small = distiller.fit_resample(X, y)
    >>> X_small.shape, X_small.dtype, y_small.tolist()
    ((10, 64), dtype('float64'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> bool(distiller.loss_path_[-10:].mean() < distiller.loss_path_[:10].mean())
    True
    """

    _parameter_constraints = {
        "net": [object],
        "n_per_class": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "inner_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "inner_lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "learn_inner_lr": ["boolean"],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        net,
        *,
        n_per_class=1,
        max_iter=500,
        lr=0.01,
        inner_steps=20,
        inner_lr=0.1,
        learn_inner_lr=True,
        batch_size=256,
        random_state=None,
        verbose=0,
    ):
        self.net = net
        self.n_per_class = n_per_class
        self.max_iter = max_iter
        self.lr = lr
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.learn_inner_lr = learn_inner_lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y) -> DatasetDistiller:
        """Learn the synthetic rows from ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Real training rows (numeric).
        y : array-like of shape (n_samples,)
            Their class labels (integers or strings).

        Returns
        -------
        self : DatasetDistiller
            Fitted.
        """
        validate_params(
            self._parameter_constraints, self.get_params(deep=False), "DatasetDistiller"
        )
        net = self._check_net()
        X, codes, out_dtype = self._check_data(X, y)
        rng = check_random_state(self.random_state)
        X_syn = self._initial_rows(X, codes, rng)
        torch_seed = int(rng.randint(0, 2**31 - 1))
        X_syn, inner_lr, path = self._distil(net, X, codes, X_syn, torch_seed)
        self.X_distilled_ = X_syn.astype(out_dtype)
        self.y_distilled_ = np.repeat(self.classes_, self.n_per_class)
        self.inner_lr_ = inner_lr
        self.loss_path_ = np.asarray(path, dtype=float)
        self.n_iter_ = len(path)
        return self

    def fit_resample(self, X, y):
        """Learn the synthetic rows and return them with their labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Real training rows (numeric).
        y : array-like of shape (n_samples,)
            Their class labels (integers or strings).

        Returns
        -------
        X_distilled : ndarray of shape (n_classes * n_per_class, n_features)
            Copy of ``X_distilled_``.
        y_distilled : ndarray of shape (n_classes * n_per_class,)
            Copy of ``y_distilled_``.
        """
        self.fit(X, y)
        return self.X_distilled_.copy(), self.y_distilled_.copy()

    def _check_net(self):
        if not is_classifier_net(self.net) or not hasattr(self.net, "initialize"):
            raise UnsupportedEstimatorError(
                "DatasetDistiller needs a skorch classifier specification, e.g. "
                "NeuralNetClassifier(MyModule, criterion=torch.nn.CrossEntropyLoss); "
                f"got {type(self.net).__name__} ({self.net!r:.80}). Wrap your torch "
                "module in skorch.NeuralNetClassifier."
            )
        net = clone(self.net).set_params(verbose=0, train_split=None)
        return net.initialize()

    def _check_data(self, X, y):
        if y is None:
            raise InvalidInputError(
                "DatasetDistiller needs class labels: got y=None. Call "
                "fit_resample(X, y) with the label of every row of X."
            )
        check_features(self, X, reset=True)
        X = as_array(X, dtype="numeric", ensure_min_samples=2, ensure_all_finite=False)
        check_finite(X, "X")
        check_n_samples(X, y)
        y = np.asarray(y)
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise InvalidInputError(
                f"DatasetDistiller learns rows per class, so y must hold class "
                f"labels, but it looks {kind!r} (e.g. {y.reshape(-1)[:3]!r}). Pass "
                "one integer or string label per row; it cannot distil regression "
                "targets."
            )
        self.classes_, codes = np.unique(y, return_inverse=True)
        self._check_class_sizes(codes)
        out_dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        return X, codes, out_dtype

    def _check_class_sizes(self, codes):
        counts = np.bincount(codes, minlength=len(self.classes_))
        labels = self.classes_.tolist()
        if len(counts) < 2:
            raise InvalidInputError(
                f"y holds one class only ({labels[0]!r}); distillation needs "
                "at least two classes to train a classifier on."
            )
        small = np.flatnonzero(counts < self.n_per_class)
        if small.size:
            raise InvalidInputError(
                f"n_per_class={self.n_per_class} needs that many rows of every "
                f"class to start from, but class {labels[small[0]]!r} has "
                f"{counts[small[0]]}. Lower n_per_class or add rows of that class."
            )

    def _initial_rows(self, X, codes, rng):
        """``n_per_class`` random real rows of each class, grouped by class."""
        picks = [
            rng.choice(np.flatnonzero(codes == c), self.n_per_class, replace=False)
            for c in range(len(self.classes_))
        ]
        return X[np.concatenate(picks)].astype(np.float64)

    def _distil(self, net, X, codes, X_syn, torch_seed):
        """Run the outer loop; return the rows, the inner step size and the path."""
        device, dtype = torch.device(net.device), module_dtype(net)
        X_real = torch.tensor(X, dtype=dtype, device=device)
        y_real = torch.as_tensor(codes, dtype=torch.long, device=device)
        self._check_output_width(net, X_real[:2])
        rows = torch.tensor(X_syn, dtype=dtype, device=device, requires_grad=True)
        raw_lr = torch.tensor(math.log(self.inner_lr), dtype=dtype, device=device)
        raw_lr.requires_grad_(self.learn_inner_lr)
        tensors = [rows, raw_lr] if self.learn_inner_lr else [rows]
        optimizer = torch.optim.Adam(tensors, lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, max(self.max_iter, 1)
        )
        generator = torch.Generator().manual_seed(torch_seed)
        path, bar = [], _progress_bar(self.verbose, self.max_iter)
        for _ in range(self.max_iter):
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            index = torch.randperm(len(X_real), generator=generator)
            index = index[: self.batch_size].to(device)
            batch = (X_real[index], y_real[index])
            path.append(self._outer_step(net, seed, batch, raw_lr, tensors, optimizer))
            schedule.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{path[-1]:.4f}")
        if bar is not None:
            bar.close()
        self._warn_skipped(path)
        rows = rows.detach().cpu().to(torch.float64).numpy()
        return rows, float(raw_lr.detach().exp()), path

    def _outer_step(self, net, seed, batch, raw_lr, tensors, optimizer) -> float:
        """One Adam step on the rows (and log step size), along the gradient
        of the real batch's loss after a fresh net's unrolled training on the
        rows; skipped (NaN) if the loss or its gradient is not finite."""
        y_syn = torch.arange(len(self.classes_), device=tensors[0].device)
        y_syn = y_syn.repeat_interleave(self.n_per_class)
        params, buffers = _fresh_params(net, seed, batch[0][:2])
        inner_loss, outer_loss = _losses(
            net, list(params), buffers, tensors[0], y_syn, batch
        )
        # The unrolled training's random draws (dropout masks) come from the
        # step's own seed, so that random_state fixes the result.
        with torch.random.fork_rng(devices=_initialised_devices()):
            torch.manual_seed(seed)
            try:
                grads, info = unrolled_hypergradient(
                    inner_loss,
                    outer_loss,
                    list(params.values()),
                    tensors,
                    lambda _: {"lr": [raw_lr.exp()] * len(params)},
                    n_steps=self.inner_steps,
                    inner_depends=True,
                    return_info=True,
                )
            except SolverDivergedError:
                return float("nan")
        optimizer.zero_grad()
        for tensor, grad in zip(tensors, grads):
            tensor.grad = grad
        torch.nn.utils.clip_grad_norm_(tensors, 1.0)
        optimizer.step()
        return info.outer_loss

    def _check_output_width(self, net, X_probe):
        with torch.no_grad():
            width = net.module_(X_probe).shape[-1]
        labels = self.classes_.tolist()
        if width != len(labels):
            raise InvalidInputError(
                f"The net's module returns {width} outputs per row, but y has "
                f"{len(labels)} classes ({labels[:5]!r}...). Give the "
                "module one output per class (e.g. module__n_classes="
                f"{len(self.classes_)})."
            )

    def _warn_skipped(self, path):
        skipped = int(np.isnan(path).sum()) if path else 0
        if skipped:
            warnings.warn(
                f"{skipped} of {len(path)} outer steps were skipped because the "
                f"loss or its gradient was not finite (inner_lr={self.inner_lr}, "
                f"lr={self.lr}). Lower inner_lr or lr if this happens often.",
                HyperstepSkippedWarning,
                stacklevel=3,
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = False
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "X_distilled_")


def _initialised_devices() -> list:
    """The CUDA devices whose generators a seeded block must save and restore."""
    if torch.cuda.is_initialized():
        return list(range(torch.cuda.device_count()))
    return []


def _fresh_params(net, seed: int, probe: torch.Tensor):
    """A new random initialisation of ``net``'s module: its parameters as leaf
    tensors, and its own buffers (BatchNorm statistics start afresh too).

    A module given as a class is built again (its own initialisation runs,
    lazy layers are sized on ``probe``); one given as an instance is copied
    and each of its layers' ``reset_parameters`` is called (a parameter of a
    layer without one keeps the instance's value in every network).
    """
    template = net.module_
    with torch.random.fork_rng(devices=_initialised_devices()):
        torch.manual_seed(seed)
        if isinstance(net.module, nn.Module):
            fresh = copy.deepcopy(template).cpu()
            for layer in fresh.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        else:
            fresh = net.module(**net.get_params_for("module"))
            if any(isinstance(p, UninitializedParameter) for p in fresh.parameters()):
                with torch.no_grad():  # lazy layers take their shapes from a batch
                    fresh(probe.cpu().to(torch.get_default_dtype()))
    reference = dict(template.named_parameters())
    params = {
        name: param.detach().to(reference[name]).requires_grad_()
        for name, param in fresh.named_parameters()
    }
    like = dict(template.named_buffers())
    buffers = {
        name: b.detach().to(like[name].device) for name, b in fresh.named_buffers()
    }
    return params, buffers


def _losses(net, names, buffers, X_syn, y_syn, batch):
    """The inner (synthetic rows, train mode) and outer (real batch, eval mode)
    losses of weights given as a list in ``names``' order. ``buffers`` (the
    fresh network's, updated in place) stand in for the module's own."""
    module = net.module_

    def forward(weights, X):
        return functional_call(module, {**dict(zip(names, weights)), **buffers}, (X,))

    def inner_loss(weights, _step):
        module.train()
        return net.get_loss(forward(weights, X_syn), y_syn, training=True)

    def outer_loss(weights):
        module.eval()
        return net.get_loss(forward(weights, batch[0]), batch[1], training=False)

    return inner_loss, outer_loss


def _progress_bar(verbose, total):
    if verbose < 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="step", desc="DatasetDistiller")


__all__ = ["DatasetDistiller"]
