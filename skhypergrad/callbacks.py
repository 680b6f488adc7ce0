"""skorch callbacks that apply tuned penalties while a network trains."""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import get_len
from torch import nn

from .penalties import (
    GRANULARITIES,
    add_l2_gradient,
    expand_coefficients,
    parameter_layout,
    trainable_parameters,
)


class WeightDecayPenalty(Callback):
    """Add per-layer or per-weight L2 decay to the gradients of a skorch net.

    ``HypergradSearchCV`` puts this callback on ``best_estimator_`` when it
    tunes vector weight decay (``PerLayer`` / ``PerParameter``); it can also be
    used by hand. The gradient of ``sum (c / 2) * w^2`` is added after each
    backward pass, which is what the optimizer's ``weight_decay`` does for a
    single ``c``.

    Parameters
    ----------
    values : array-like of shape (n_layers,) or (n_weights,)
        Decay coefficients, in ``module.named_parameters()`` order.
    granularity : {"layer", "parameter", "scalar"}, default="layer"
        Whether ``values`` holds one entry per layer (module owning
        parameters), per weight, or a single value.

    Examples
    --------
    >>> import numpy as np
    >>> from skhypergrad import WeightDecayPenalty
    >>> WeightDecayPenalty(np.array([1e-3, 1e-4]), granularity="layer").granularity
    'layer'
    """

    def __init__(self, values, granularity="layer"):
        self.values = values
        self.granularity = granularity

    def initialize(self):  # noqa: D102
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {GRANULARITIES}, got {self.granularity!r}."
            )
        self.coefficients_ = None
        return self

    def on_train_begin(self, net, **kwargs):  # noqa: D102
        # Built at the first backward pass, when lazy modules have their shapes.
        self.coefficients_ = None

    def _build(self, net):
        layout = parameter_layout(net.module_)
        values = np.asarray(self.values, dtype=float).reshape(-1)
        expected = layout.size_of(self.granularity)
        if values.size != expected:
            raise ValueError(
                f"WeightDecayPenalty got {values.size} values but the module has "
                f"{expected} {self.granularity} entries ({layout.n_weights} weights in "
                f"{len(layout.layers)} layers). Pass values tuned for this module."
            )
        params = trainable_parameters(net.module_)
        tensor = torch.as_tensor(values, dtype=params[0].dtype, device=params[0].device)
        return expand_coefficients(tensor, self.granularity, layout, params)

    def __getstate__(self):
        # The coefficients live on the net's device and are rebuilt at the next
        # backward pass: leaving them out lets a net fitted on a GPU unpickle on
        # a machine without CUDA (skorch maps the module, not its callbacks).
        state = self.__dict__.copy()
        state.pop("coefficients_", None)
        return state

    def on_grad_computed(self, net, named_parameters, **kwargs):  # noqa: D102
        if getattr(self, "coefficients_", None) is None:
            self.coefficients_ = self._build(net)
        add_l2_gradient(trainable_parameters(net.module_), self.coefficients_)


class InputNoise(Callback):
    """Add Gaussian noise to the network's input while it trains.

    Each training forward pass receives ``X + scale * eps`` with
    ``eps ~ N(0, 1)`` drawn afresh (torch's global generator); evaluation and
    prediction see ``X`` unchanged, as with dropout. Add it to the net's
    callbacks under a name, e.g. ``callbacks=[("noise", InputNoise())]``, and
    give ``HypergradSearchCV`` a range for ``callbacks__noise__scale`` to tune
    the scale (``PerFeature(range)`` for one scale per input feature).

    Parameters
    ----------
    scale : float, array-like of shape (n_features,) or torch.Tensor, default=0.0
        Standard deviation of the noise, one value or one per feature of the
        module's input (its last dimension).

    Notes
    -----
    The noise is added by a forward pre-hook on ``net.module_``, registered
    from the start to the end of training, so it applies to every training
    forward pass, including the training loss of a hypergradient evaluation.
    There the search sets ``scale`` to a tensor with a gradient: the noise
    enters reparametrised, ``X + scale * eps``, and the scale gets a
    hypergradient.
    The module's input must be one floating tensor.

    Examples
    --------
    >>> from skhypergrad import InputNoise
    >>> InputNoise(scale=0.1)
    <InputNoise scale=0.1>
    """

    def __init__(self, scale=0.0):
        self.scale = scale

    def __repr__(self):
        return f"<InputNoise scale={self.scale!r}>"

    def on_train_begin(self, net, **kwargs):  # noqa: D102
        self._check_scale()
        self.attach(net.module_)

    def on_train_end(self, net, **kwargs):  # noqa: D102
        # A fitted module carries no hook: it pickles, and predicts, as it is.
        self.detach()

    def attach(self, module) -> None:
        """Register the noise on ``module`` (once per module).

        Parameters
        ----------
        module : torch.nn.Module
            The net's module, whose first positional input receives noise.
        """
        if getattr(self, "hooked_", None) is module:
            return
        self.detach()
        self.handle_ = module.register_forward_pre_hook(self._add_noise)
        self.hooked_ = module

    def detach(self) -> None:
        """Remove the noise from the module it was attached to, if any."""
        handle = getattr(self, "handle_", None)
        if handle is not None:
            handle.remove()
        self.handle_ = self.hooked_ = None

    def _check_scale(self) -> None:
        scale = self.scale
        if isinstance(scale, torch.Tensor):
            scale = scale.detach().cpu().numpy()
        try:
            values = np.asarray(scale, dtype=float)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if values.ndim > 1 or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(
                f"InputNoise needs scale >= 0, one finite value or one per feature "
                f"(1-D), got scale={self.scale!r}. Use e.g. InputNoise(scale=0.1)."
            )

    def _add_noise(self, module, args):
        if not module.training or not args:
            return None
        X = args[0]
        if not isinstance(X, torch.Tensor) or not X.is_floating_point():
            raise TypeError(
                "InputNoise adds noise to the module's first input, which must be a "
                f"floating tensor; got {type(X).__name__} "
                f"{getattr(X, 'dtype', '')}. Remove the InputNoise callback for "
                "integer (embedding) or dict inputs."
            )
        scale = torch.as_tensor(self.scale, dtype=X.dtype, device=X.device)
        if scale.ndim == 1 and scale.shape[0] != X.shape[-1]:
            raise ValueError(
                f"InputNoise has {scale.shape[0]} scales but the module's input has "
                f"{X.shape[-1]} features (shape {tuple(X.shape)}). Give one scale or "
                f"one per feature; when tuning, PerFeature(range, n_features="
                f"{X.shape[-1]})."
            )
        if not scale.requires_grad and not bool((scale != 0).any()):
            return None
        return (X + scale * torch.randn_like(X), *args[1:])


class SampleWeight(Callback):
    """Weight each training sample's loss while a skorch net trains.

    skorch has no ``sample_weight``: this callback brings one. The loss of a
    training batch becomes ``mean_i(weight[row_i] * loss_i)``, where ``loss_i``
    is the net's criterion of sample ``i`` alone (its ``reduction="none"``)
    and ``row_i`` its row in the ``X`` given to ``fit``; evaluation and
    validation losses stay unweighted. Add it under a name, e.g.
    ``callbacks=[("weights", SampleWeight())]``, and give
    ``HypergradSearchCV`` the range ``PerSample(loguniform(0.01, 1.0))`` for
    ``callbacks__weights__weight`` to tune one weight per training sample.

    Parameters
    ----------
    weight : array-like of shape (n_samples,) or None, default=None
        One non-negative weight per row of the ``X`` given to ``fit``; None
        trains unweighted.

    Notes
    -----
    The callback finds the rows of each training batch by wrapping the net's
    ``iterator_train`` from the start to the end of training (the rows a
    skorch ``ValidSplit`` keeps for training are mapped back to rows of
    ``X``), and wraps ``criterion_`` to weight the per-sample losses; both are
    restored when training ends. It needs ``iterator_train__num_workers=0``
    (the default) and a criterion with a ``reduction`` argument, as every
    ``torch.nn`` loss has. During a hypergradient evaluation the search sets
    the batch's weights itself, as a tensor with a gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from skhypergrad import SampleWeight
    >>> SampleWeight(weight=np.ones(3))
    <SampleWeight weight=array of 3>
    """

    def __init__(self, weight=None):
        self.weight = weight

    def __repr__(self):
        weight = self.weight
        if weight is not None and np.ndim(weight) == 1:
            weight = f"array of {len(weight)}"
        return f"<SampleWeight weight={weight}>"

    def on_train_begin(self, net, X=None, y=None, **kwargs):  # noqa: D102
        self.uninstall()
        self.batch_weight_ = None
        if self.weight is None:
            return
        self.weight_ = self._checked_weight(None if X is None else get_len(X))
        self.saved_ = (net, net.iterator_train, net.criterion_)
        net.iterator_train = _TrackRows(net.iterator_train, self)
        net.criterion_ = _WeightedLoss(net.criterion_, net.module_, self)

    def on_train_end(self, net, **kwargs):  # noqa: D102
        # A fitted net carries no wrapper: it pickles, and predicts, as it is.
        self.uninstall()

    def uninstall(self) -> None:
        """Give the net back its own ``iterator_train`` and criterion."""
        saved = getattr(self, "saved_", None)
        if saved is not None:
            net, iterator, criterion = saved
            net.iterator_train, net.criterion_ = iterator, criterion
        self.saved_ = None
        self.batch_weight_ = None

    def use_rows(self, rows) -> None:
        """Weight the next training loss by the weights of ``rows`` of ``X``."""
        self.batch_weight_ = self.weight_[torch.as_tensor(rows)]

    def _checked_weight(self, n_samples):
        weight = self.weight
        if isinstance(weight, torch.Tensor):
            values = weight.detach().cpu().double().numpy()
        else:
            try:
                values = np.asarray(weight, dtype=float)
            except (TypeError, ValueError):
                self._refuse(weight)
        if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values < 0):
            self._refuse(weight)
        if n_samples is not None and len(values) != n_samples:
            raise ValueError(
                f"SampleWeight has {len(values)} weights but fit received "
                f"{n_samples} samples. Give one weight per row of X (the weights "
                "of the search's best_params_ are per row of the X it was fit on)."
            )
        if isinstance(weight, torch.Tensor):
            return weight.detach()
        return torch.as_tensor(values)

    def _refuse(self, weight):
        raise ValueError(
            "SampleWeight needs one finite weight >= 0 per sample (a 1-D array), "
            f"got weight={weight!r}. Use e.g. SampleWeight(weight=np.ones(len(X)))."
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("saved_", None)
        state.pop("batch_weight_", None)
        return state


def _dataset_rows(dataset):
    """Rows of the original data behind a dataset, or None if it is the data.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset

    Returns
    -------
    rows : ndarray of int or None
    """
    if isinstance(dataset, torch.utils.data.Subset):
        inner = _dataset_rows(dataset.dataset)
        rows = np.asarray(dataset.indices)
        return rows if inner is None else inner[rows]
    return None


class _RecordRows(torch.utils.data.Dataset):
    """A dataset that remembers which items were read."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.read = []

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.read.append(i)
        return self.dataset[i]


class _TrackRows:
    """``iterator_train`` that tells a :class:`SampleWeight` each batch's rows."""

    def __init__(self, iterator, callback):
        self.iterator = iterator
        self.callback = callback

    def __call__(self, dataset, **kwargs):
        return _Batches(self.iterator, dataset, kwargs, self.callback)


class _Batches:
    def __init__(self, iterator, dataset, kwargs, callback):
        self.recorder = _RecordRows(dataset)
        self.rows = _dataset_rows(dataset)
        self.loader = iterator(self.recorder, **kwargs)
        self.callback = callback

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            read, self.recorder.read = self.recorder.read, []
            if not read:
                raise RuntimeError(
                    "SampleWeight could not tell which rows the training batch "
                    "holds: the DataLoader read them in worker processes. Set "
                    "iterator_train__num_workers=0 on the net."
                )
            rows = np.asarray(read)
            self.callback.use_rows(rows if self.rows is None else self.rows[rows])
            yield batch


class _WeightedLoss(nn.Module):
    """The net's criterion, weighted per sample in training mode."""

    def __init__(self, criterion, network, callback):
        super().__init__()
        self.criterion = criterion
        if not hasattr(criterion, "reduction"):
            raise TypeError(
                f"SampleWeight needs the per-sample losses of the criterion, but "
                f"{type(criterion).__name__} has no 'reduction' argument. Use a "
                "torch.nn loss, or give the criterion a reduction='none' mode."
            )
        self.__dict__["_network"] = network  # not a submodule
        self.__dict__["_callback"] = callback

    def forward(self, y_pred, y_true):  # noqa: D102
        weight = self.__dict__["_callback"].batch_weight_
        if not self.__dict__["_network"].training or weight is None:
            return self.criterion(y_pred, y_true)
        reduction = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            losses = self.criterion(y_pred, y_true)
        finally:
            self.criterion.reduction = reduction
        n = len(weight)
        if losses.ndim == 0 or losses.shape[0] != n:
            raise ValueError(
                f"SampleWeight has {n} weights for a batch whose per-sample "
                f"losses have shape {tuple(losses.shape)}; the criterion must "
                "return one loss per sample with reduction='none'."
            )
        losses = losses.reshape(n, -1).mean(1)
        weighted = weight.to(dtype=losses.dtype, device=losses.device) * losses
        return weighted.sum() if reduction == "sum" else weighted.mean()


__all__ = ["InputNoise", "SampleWeight", "WeightDecayPenalty"]
