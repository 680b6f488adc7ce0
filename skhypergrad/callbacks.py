"""skorch callbacks that apply tuned penalties while a network trains."""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import get_len

from .penalties import (
    GRANULARITIES,
    add_l2_gradient,
    expand_coefficients,
    parameter_layout,
    trainable_parameters,
)


class SearchCallback(Callback):
    """Base of skhypergrad's training callbacks: what the search asks of them.

    The search (``HypergradSearchCV`` and the single-fit estimators) treats
    any callback of this kind, and no other, through these two points, so
    that it names no callback or family itself:

    - it reads no validation scores, so a split net whose only callbacks are
      of this kind skips skorch's validation pass;
    - :meth:`select_rows` gives it a CV split's training rows before the split
      trains (a callback holding one value per row of ``X`` keeps the split's
      own), and :meth:`restore_rows` undoes that on a net that is handed back.
    """

    def select_rows(self, rows, n_samples: int) -> None:
        """Keep what belongs to ``rows`` of an ``X`` of ``n_samples`` rows.

        Parameters
        ----------
        rows : ndarray of int
            The split's training rows, positions in ``X``.
        n_samples : int
            Rows of ``X``.
        """

    def restore_rows(self) -> None:
        """Undo :meth:`select_rows` (values for every row of ``X`` again)."""


class WeightDecayPenalty(SearchCallback):
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


class InputNoise(SearchCallback):
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


class SampleWeight(SearchCallback):
    """Weight each training sample's loss while a skorch net trains.

    skorch has no ``sample_weight``: this callback brings one. The loss of a
    training batch becomes ``sum_i(weight[row_i] * loss_i) / sum_i(c_i)``,
    where ``loss_i`` is the net's criterion of sample ``i`` alone (its
    ``reduction="none"``), ``row_i`` its row in the ``X`` given to ``fit``
    and ``c_i`` what the criterion's own mean divides by (1 per sample, or the
    class weight of its target for a class-weighted cross-entropy): with all
    weights 1 it is the net's own loss. Evaluation and validation losses stay
    unweighted. Add it under a name, e.g.
    ``callbacks=[("weights", SampleWeight())]``, and give
    ``HypergradSearchCV`` the range ``PerSample(loguniform(0.01, 1.0))`` for
    ``callbacks__weights__weight`` to tune one weight per training sample.

    Parameters
    ----------
    weight : array-like of shape (n_samples,) or None, default=None
        One non-negative weight per row of the ``X`` given to ``fit``; None
        trains unweighted. Inside ``HypergradSearchCV`` (and
        ``HypergradClassifier`` / ``HypergradRegressor``) weights for every
        row of the searched ``X`` are given to each split's training part.

    Notes
    -----
    While the net trains, the callback finds the rows of each training batch
    by reading them through the net's ``get_iterator`` (the rows a skorch
    ``ValidSplit`` keeps for training are mapped back to rows of ``X``), and
    weights the per-sample losses through forward hooks on ``criterion_``
    (skorch's handling of ``NLLLoss`` is unchanged); both are removed when
    training ends. It needs ``iterator_train__num_workers=0`` (the default)
    and a criterion with a ``reduction`` argument, as every ``torch.nn`` loss
    has. During a hypergradient evaluation the search sets the batch's
    weights itself, as a tensor with a gradient.

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

    def select_rows(self, rows, n_samples: int) -> None:
        """Keep the weights of ``rows`` when there is one per row of ``X``.

        Parameters
        ----------
        rows : ndarray of int
        n_samples : int
        """
        weight = self.weight
        if weight is not None and np.ndim(weight) == 1 and len(weight) == n_samples:
            if not isinstance(weight, np.ndarray | torch.Tensor):
                weight = np.asarray(weight)
            # A trailing "_": skorch counts the other attributes as parameters.
            self._all_rows_ = self.weight
            self.weight = weight[rows]

    def restore_rows(self) -> None:
        """Give back the weights of every row of ``X``."""
        if getattr(self, "_all_rows_", None) is not None:
            self.weight, self._all_rows_ = self._all_rows_, None

    def on_train_begin(self, net, X=None, y=None, **kwargs):  # noqa: D102
        self.uninstall(net)
        if self.weight is None:
            return
        self.weight_ = self._checked_weight(None if X is None else get_len(X))
        criterion = net.criterion_
        if not hasattr(criterion, "reduction"):
            raise TypeError(
                f"SampleWeight needs the per-sample losses of the criterion, but "
                f"{type(criterion).__name__} has no 'reduction' argument. Use a "
                "torch.nn loss, or give the criterion a reduction='none' mode."
            )
        self.net_ = net
        # An instance attribute: not a parameter of the net, not cloned.
        net.__dict__["get_iterator"] = _TrackRows(net, self)
        self.hooks_ = [
            criterion.register_forward_pre_hook(self._per_sample),
            criterion.register_forward_hook(self._weigh),
        ]

    def on_train_end(self, net, **kwargs):  # noqa: D102
        # A fitted net carries nothing of it: it pickles, and predicts, as it is.
        self.uninstall(net)

    def uninstall(self, net=None) -> None:
        """Give the net back its own ``get_iterator`` and an unhooked criterion.

        Parameters
        ----------
        net : skorch.NeuralNet, optional
            Also cleaned when a training that raised left it wrapped.
        """
        for handle in getattr(self, "hooks_", None) or []:
            handle.remove()
        for owner in {id(n): n for n in (net, getattr(self, "net_", None))}.values():
            if owner is not None and isinstance(
                owner.__dict__.get("get_iterator"), _TrackRows
            ):
                del owner.__dict__["get_iterator"]
        self.hooks_ = self.net_ = self.reduction_ = None
        self.batch_weight_ = None

    def use_rows(self, rows) -> None:
        """Weight the next training loss by the weights of ``rows`` of ``X``."""
        self.batch_weight_ = self.weight_[torch.as_tensor(rows)]

    def _active(self) -> bool:
        net = getattr(self, "net_", None)
        return (
            self.batch_weight_ is not None and net is not None and net.module_.training
        )

    def _per_sample(self, criterion, args):
        if self._active():
            self.reduction_ = criterion.reduction
            criterion.reduction = "none"

    def _weigh(self, criterion, args, losses):
        reduction = self.reduction_
        if reduction is None:
            return None
        self.reduction_ = None
        criterion.reduction = reduction
        weight = self.batch_weight_
        n = len(weight)
        if losses.ndim == 0 or losses.shape[0] != n:
            raise ValueError(
                f"SampleWeight has {n} weights for a batch whose per-sample "
                f"losses have shape {tuple(losses.shape)}; the criterion must "
                "return one loss per sample with reduction='none'."
            )
        weight = weight.to(dtype=losses.dtype, device=losses.device)
        per_row = losses.reshape(n, -1)
        total = (weight * per_row.sum(1)).sum()
        if reduction == "sum":
            return total
        return total / (_normaliser(criterion, args).sum() * per_row.shape[1])

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
                f"{n_samples} samples. Give one weight per row of the X given to "
                "fit. In a cross-validation of your own (GridSearchCV, "
                "cross_val_score), each training part needs its own weights; "
                "HypergradSearchCV hands each split its rows' weights."
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
        for name in ("hooks_", "net_", "reduction_", "batch_weight_"):
            state.pop(name, None)
        return state


def _normaliser(criterion, args):
    """What the criterion's mean divides the summed losses by, per sample.

    torch's (class-weighted) cross-entropy and NLL divide by the weights of
    the targets that are not ignored; every other loss by the number of
    samples.

    Parameters
    ----------
    criterion : torch.nn.Module
    args : tuple
        The criterion's inputs ``(y_pred, y_true)``.

    Returns
    -------
    normaliser : torch.Tensor of shape (n_samples,)
    """
    y_pred, target = args[0], args[1]
    n = len(target)
    ones = torch.ones(n, dtype=y_pred.dtype, device=y_pred.device)
    if target.is_floating_point() or target.ndim != 1:
        return ones
    keep = ones
    ignore = getattr(criterion, "ignore_index", None)
    if ignore is not None:
        keep = (target != ignore).to(y_pred.dtype)
    class_weight = None
    if getattr(criterion, "class_weight", None) is not None:  # tuned, training
        class_weight = criterion.class_weight
    elif getattr(criterion, "weight", None) is not None:
        class_weight = criterion.weight
    if class_weight is None:
        return keep
    safe = torch.where(keep > 0, target, torch.zeros_like(target))
    return keep * class_weight.to(y_pred.dtype).reshape(-1)[safe]


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
    """The net's ``get_iterator``, telling a :class:`SampleWeight` the rows of
    each training batch."""

    def __init__(self, net, callback):
        self.net = net
        self.callback = callback

    def __call__(self, dataset, training=False):
        get_iterator = type(self.net).get_iterator
        if not training:
            return get_iterator(self.net, dataset, training=False)
        recorder = _RecordRows(dataset)
        loader = get_iterator(self.net, recorder, training=True)
        return _Batches(loader, recorder, _dataset_rows(dataset), self.callback)


class _Batches:
    def __init__(self, loader, recorder, rows, callback):
        self.loader = loader
        self.recorder = recorder
        self.rows = rows
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


__all__ = ["InputNoise", "SampleWeight", "WeightDecayPenalty"]
