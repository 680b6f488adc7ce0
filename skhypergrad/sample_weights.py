"""The ``SampleWeight`` callback: per-example training weights for skorch.

skorch has no ``sample_weight``; :class:`SampleWeight` brings one. It finds
the rows of ``X`` behind every training batch (through a per-instance
``get_iterator`` wrapper), and weights the criterion's per-sample losses by
forward hooks. Importable as ``skhypergrad.callbacks.SampleWeight`` or
``skhypergrad.SampleWeight``.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.dataset import get_len

from ._callback_base import SearchCallback


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


__all__ = ["SampleWeight"]
