"""The cross-entropy of the label-smoothing and class-weight families.

torch's ``CrossEntropyLoss`` takes its label smoothing as a float and its
class weights as a buffer, neither differentiable: during the search the
split nets use :class:`TunedCrossEntropyLoss`, the same formula with tensor
arguments, in training mode only.
"""

from __future__ import annotations

import torch
from torch import nn

from ..exceptions import InvalidHyperparameterError, InvalidInputError


def cross_entropy(
    input, target, weight=None, label_smoothing=0.0, ignore_index=-100, reduction="mean"
):
    """``torch.nn.functional.cross_entropy`` with tensor-valued smoothing and weights.

    The same formula as torch's (class indices as targets), written with
    differentiable operations so that ``weight`` and ``label_smoothing`` may
    require grad.

    Parameters
    ----------
    input : torch.Tensor of shape (n, n_classes, ...)
        Scores (logits).
    target : torch.Tensor of shape (n, ...)
        Class indices.
    weight : torch.Tensor of shape (n_classes,) or None, default=None
    label_smoothing : float or torch.Tensor, default=0.0
    ignore_index : int, default=-100
    reduction : {"mean", "sum", "none"}, default="mean"

    Returns
    -------
    loss : torch.Tensor

    Notes
    -----
    ``loss_i = (1 - e) w[y_i] (-log p_iy) + (e / K) sum_k w_k (-log p_ik)``;
    the mean divides the sum by ``sum_i w[y_i]``, as torch does.
    """
    if target.is_floating_point():
        raise InvalidInputError(
            "The tuned cross-entropy takes class indices as targets, got a floating "
            f"target of shape {tuple(target.shape)} (class probabilities). Pass "
            "integer class labels."
        )
    logp = torch.log_softmax(input, dim=1)
    n_classes = input.shape[1]
    keep = (target != ignore_index).to(logp.dtype)
    safe = torch.where(target != ignore_index, target, torch.zeros_like(target))
    nll = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)
    if weight is None:
        w_target = torch.ones_like(nll)
        smooth = -logp.sum(1)
    else:
        weight = weight.to(dtype=logp.dtype, device=logp.device).reshape(-1)
        if weight.numel() != n_classes:
            raise InvalidHyperparameterError(
                f"The tuned class weights have {weight.numel()} entries but the module "
                f"returns {n_classes} scores per sample. Pass the number of classes "
                f"explicitly: PerClass(range, n_classes={n_classes})."
            )
        w_target = weight[safe]
        shape = (1, n_classes) + (1,) * (input.dim() - 2)
        smooth = -(logp * weight.reshape(shape)).sum(1)
    eps = torch.as_tensor(label_smoothing, dtype=logp.dtype, device=logp.device)
    hard, soft = w_target * nll * keep, smooth * keep
    if reduction == "none":
        return (1 - eps) * hard + eps / n_classes * soft
    total = (1 - eps) * hard.sum() + eps / n_classes * soft.sum()
    return total / (w_target * keep).sum() if reduction == "mean" else total


class TunedCrossEntropyLoss(nn.CrossEntropyLoss):
    """Cross-entropy whose tuned label smoothing and class weights have gradients.

    The search puts it in place of a split net's ``torch.nn.CrossEntropyLoss``
    when it tunes ``criterion__label_smoothing`` or ``criterion__weight``.
    While the network it follows is in training mode, the loss uses the tuned
    tensors ``smoothing`` and ``class_weight`` (where set); in eval mode it is
    the plain cross-entropy of its fixed arguments, so that the validation
    (outer) loss does not depend on the tuned values.

    Parameters
    ----------
    weight, ignore_index, reduction, label_smoothing
        As in :class:`torch.nn.CrossEntropyLoss`: the fixed values, used in
        eval mode and where nothing is tuned.

    Attributes
    ----------
    smoothing : torch.Tensor or None
        Tuned label smoothing (training mode only).
    class_weight : torch.Tensor of shape (n_classes,) or None
        Tuned class weights (training mode only).

    Notes
    -----
    skorch switches the criterion's mode with the module's, but the search's
    own evaluations (hypergradients, validation loss) switch the module only:
    :meth:`follow` makes the loss read the module's mode.
    """

    def __init__(
        self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0
    ):
        super().__init__(
            weight=weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
        self.smoothing = None
        self.class_weight = None
        self.__dict__["_network"] = None  # not a submodule: its weights are not ours

    def follow(self, module: nn.Module) -> TunedCrossEntropyLoss:
        """Be a training loss exactly when ``module`` is in training mode."""
        self.__dict__["_network"] = module
        return self

    def forward(self, input, target):  # noqa: D102
        network = self.__dict__["_network"]
        training = self.training if network is None else network.training
        if not training or (self.smoothing is None and self.class_weight is None):
            return super().forward(input, target)
        return cross_entropy(
            input,
            target,
            weight=self.weight if self.class_weight is None else self.class_weight,
            label_smoothing=(
                self.label_smoothing if self.smoothing is None else self.smoothing
            ),
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )


def check_cross_entropy(net, name: str) -> None:
    """Refuse a net whose criterion is not torch's ``CrossEntropyLoss``.

    Parameters
    ----------
    net : skorch.NeuralNet
    name : str
        The tuned entry, for the message.

    Raises
    ------
    InvalidHyperparameterError
    """
    criterion = net.criterion
    criterion_class = criterion if isinstance(criterion, type) else type(criterion)
    ok = isinstance(criterion_class, type) and issubclass(
        criterion_class, nn.CrossEntropyLoss
    )
    if not ok or criterion_class.forward is not nn.CrossEntropyLoss.forward:
        given = getattr(criterion_class, "__name__", criterion)
        raise InvalidHyperparameterError(
            f"Cannot tune {name!r}: it is tuned as an argument of "
            "torch.nn.CrossEntropyLoss, whose formula the search differentiates, but "
            f"the net's criterion is {given!r}. "
            "Use criterion=torch.nn.CrossEntropyLoss (with a module returning "
            "scores, not probabilities), or search the entry with GridSearchCV."
        )


def tuned_criterion(net) -> TunedCrossEntropyLoss:
    """Give an initialised net a :class:`TunedCrossEntropyLoss` (once); return it.

    The new criterion keeps the fixed arguments of the net's cross-entropy and
    follows the mode of ``net.module_``.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialised, with a ``torch.nn.CrossEntropyLoss`` criterion.

    Returns
    -------
    criterion : TunedCrossEntropyLoss
    """
    criterion = net.criterion_
    if not isinstance(criterion, TunedCrossEntropyLoss):
        criterion = TunedCrossEntropyLoss(
            weight=criterion.weight,
            ignore_index=criterion.ignore_index,
            reduction=criterion.reduction,
            label_smoothing=criterion.label_smoothing,
        )
        net.criterion_ = criterion
    return criterion.follow(net.module_)


def last_layer_width(module: nn.Module) -> int:
    """Output width of the module's last parameter (its number of classes).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    width : int
    """
    params = [p for p in module.parameters() if p.ndim >= 1]
    if not params:
        raise InvalidHyperparameterError(
            f"Cannot tell the number of classes of {type(module).__name__}: it has "
            "no parameters. Pass it explicitly, e.g. PerClass(range, n_classes=10)."
        )
    return int(params[-1].shape[0])


__all__ = [
    "TunedCrossEntropyLoss",
    "check_cross_entropy",
    "cross_entropy",
    "last_layer_width",
    "tuned_criterion",
]
