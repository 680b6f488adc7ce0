"""skorch side: find the network, relax its dropout, cast data the way it needs.

Nothing here knows about the search; :mod:`skhypergrad.model_selection`
drives these pieces.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from torch import nn
from torch.distributions import RelaxedBernoulli

from .bilevel import kept_modes
from .exceptions import (
    InvalidHyperparameterError,
    InvalidInputError,
    UnsupportedEstimatorError,
)

# Temperature of the concrete relaxation: small enough that masks are nearly
# binary, large enough that the rate keeps a usable gradient (Gal et al., 2017).
RELAXATION_TEMPERATURE = 0.1
_EPS = 1e-6
# Dropout layers that drop whole channels, and those that are not inverted
# dropout at all (SELU networks' alpha dropout).
_CHANNELWISE = (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_ALPHA = (nn.AlphaDropout, nn.FeatureAlphaDropout)


class RelaxedDropout(nn.Module):
    """Dropout with a continuous (concrete) mask, so its rate has a gradient.

    Parameters
    ----------
    rate : float or torch.Tensor
        Drop probability; may be a tensor that requires grad.
    temperature : float, default=0.1
        Temperature of the relaxation; masks approach Bernoulli as it shrinks.
    channelwise : bool, default=False
        Drop whole channels, as :class:`torch.nn.Dropout1d`, ``Dropout2d`` and
        ``Dropout3d`` do: one mask value per sample and channel (the first two
        dimensions of a batched input), shared over the remaining ones.

    Notes
    -----
    The drop mask is ``z = sigmoid((logit(p) + logit(u)) / t)`` with
    ``u ~ U(0, 1)``, and the output ``x * (1 - z) / (1 - p)`` keeps the
    expectation of ``x`` as inverted dropout does. In eval mode it is the
    identity, like :class:`torch.nn.Dropout`.
    """

    def __init__(self, rate=0.5, temperature=RELAXATION_TEMPERATURE, channelwise=False):
        super().__init__()
        self.rate = rate
        self.temperature = temperature
        self.channelwise = channelwise

    def forward(self, x):  # noqa: D102
        if not self.training:
            return x
        p = torch.as_tensor(self.rate, dtype=x.dtype, device=x.device)
        p = p.clamp(_EPS, 1 - _EPS)
        temperature = torch.as_tensor(self.temperature, dtype=x.dtype, device=x.device)
        # rsample: sigmoid((logit(p) + logit(u)) / t), differentiable in p.
        drop = RelaxedBernoulli(temperature, probs=p).rsample(self._mask_shape(x))
        return x * (1 - drop) / (1 - p)

    def _mask_shape(self, x) -> torch.Size:
        # Channel dropout: (N, C, 1, ...) for a batched input, (C, 1, ...) for
        # torch's unbatched (C, L) form of Dropout1d.
        if not self.channelwise or x.ndim < 2:
            return x.shape
        kept = 2 if x.ndim >= 3 else 1
        return x.shape[:kept] + (1,) * (x.ndim - kept)

    def extra_repr(self) -> str:  # noqa: D102
        extra = ", channelwise=True" if self.channelwise else ""
        return f"temperature={self.temperature}{extra}"


def split_estimator(estimator):
    """Return ``(net, step_name)`` for a skorch net or a Pipeline ending in one.

    Parameters
    ----------
    estimator : skorch.NeuralNet or sklearn.pipeline.Pipeline

    Returns
    -------
    net : skorch.NeuralNet
    step_name : str or None
        Name of the net's step, or None for a bare net.

    Raises
    ------
    UnsupportedEstimatorError
        If no skorch network can be found.
    """
    if isinstance(estimator, NeuralNet):
        return estimator, None
    if isinstance(estimator, Pipeline) and estimator.steps:
        name, last = estimator.steps[-1]
        if isinstance(last, NeuralNet):
            return last, name
    raise UnsupportedEstimatorError(
        "HypergradSearchCV tunes skorch networks: estimator must be a skorch "
        "NeuralNet / NeuralNetClassifier / NeuralNetRegressor, or a Pipeline whose "
        f"last step is one. Got {_describe(estimator)}. Wrap your torch module in "
        "skorch.NeuralNetClassifier(module, ...), or use GridSearchCV for other "
        "estimators."
    )


def _describe(obj) -> str:
    if isinstance(obj, Pipeline):
        return (
            f"a Pipeline ending in {type(obj.steps[-1][1]).__name__}"
            if obj.steps
            else "an empty Pipeline"
        )
    return f"{type(obj).__name__} ({obj!r:.80})"


def is_classifier_net(net) -> bool:
    """Whether the net predicts classes (skorch's NeuralNetClassifier family)."""
    return (
        isinstance(net, NeuralNetClassifier)
        or getattr(net, "_estimator_type", None) == "classifier"
    )


def is_regressor_net(net) -> bool:
    """Whether the net is a skorch NeuralNetRegressor."""
    return isinstance(net, NeuralNetRegressor)


def find_dropout_layers(net, local_name: str, full_name: str) -> list[str]:
    """Find the ``nn.Dropout`` layers whose rate the module argument sets.

    The module is built twice with two different probe values; the dropout
    layers whose ``p`` follows the probe are the controlled ones.

    Parameters
    ----------
    net : skorch.NeuralNet
        Unfitted; it is cloned, never changed.
    local_name : str
        Name on the net, e.g. ``"module__dropout"``.
    full_name : str
        Name as given in the search space, for messages.

    Returns
    -------
    paths : list of str
        Dotted module paths of the controlled layers.

    Raises
    ------
    InvalidHyperparameterError
        If the argument controls no dropout layer.
    """
    probes = (0.137, 0.291)
    found, layers = [], []
    for probe in probes:
        try:
            module = _build_module(net, local_name, probe)
        except Exception as exc:  # the module rejected the argument
            raise _no_dropout_error(
                full_name, f"building the module failed: {exc!r}"
            ) from exc
        layers = [
            (name, layer)
            for name, layer in module.named_modules()
            if isinstance(layer, nn.modules.dropout._DropoutNd | nn.Dropout)
        ]
        found.append({n for n, layer in layers if abs(float(layer.p) - probe) < 1e-12})
    paths = sorted(found[0] & found[1])
    alpha = [n for n, layer in layers if n in paths and isinstance(layer, _ALPHA)]
    if alpha:
        raise InvalidHyperparameterError(
            f"Cannot tune {full_name!r} as a dropout rate: it sets the alpha dropout "
            f"layers {alpha} (torch.nn.AlphaDropout / FeatureAlphaDropout), whose "
            "dropped units take SELU's negative saturation value and whose output is "
            "rescaled affinely; the relaxation tuned here is inverted dropout and "
            "would train another network. Search the rate as a list (GridSearchCV's "
            "way) or wrap the range in skhypergrad.Sampled(...)."
        )
    if not paths:
        seen = (
            f"its torch.nn.Dropout layers {[n for n, _ in layers]} keep their rate "
            f"when {local_name} changes"
            if layers
            else "the module has no torch.nn.Dropout layer"
        )
        raise _no_dropout_error(full_name, seen)
    return paths


def _build_module(net, local_name, value) -> nn.Module:
    probe = clone(net).set_params(**{local_name: value})
    module = probe.module
    kwargs = probe.get_params_for("module")
    if isinstance(module, nn.Module):
        module = type(module)
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG untouched
        return module(**kwargs)


def _no_dropout_error(name, reason):
    return InvalidHyperparameterError(
        f"Cannot tune {name!r} as a dropout rate: {reason}. Only torch.nn.Dropout "
        "layers whose p is set by the argument are found and tuned (the module is "
        "built with two probe values of it); a rate applied in forward, as in "
        "F.dropout(x, self.dropout), cannot be. Build the layer in __init__ "
        "instead (self.drop = nn.Dropout(dropout), then self.drop(x) in forward), "
        "or wrap the range in skhypergrad.Sampled(...) rather than Tuned(...) to "
        "have the outer search draw the rate."
    )


def relax_dropout(module: nn.Module, paths, rate) -> list[RelaxedDropout]:
    """Replace the dropout layers at ``paths`` by :class:`RelaxedDropout`, in place.

    A channel dropout layer (``nn.Dropout1d``, ``Dropout2d``, ``Dropout3d``)
    becomes a ``channelwise`` relaxed one, so that tuning trains the network
    that the refit's layer trains.

    Parameters
    ----------
    module : torch.nn.Module
    paths : list of str
        From :func:`find_dropout_layers`.
    rate : float or torch.Tensor
        Initial rate of the relaxed layers.

    Returns
    -------
    layers : list of RelaxedDropout
        The new layers, whose ``rate`` the caller sets.
    """
    layers = []
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = module.get_submodule(parent_path) if parent_path else module
        channelwise = isinstance(module.get_submodule(path), _CHANNELWISE)
        layer = RelaxedDropout(rate, channelwise=channelwise)
        setattr(parent, child, layer)
        layers.append(layer)
    return layers


def module_dtype(net) -> torch.dtype:
    """Floating dtype of an initialized net's first parameter (float32 if none)."""
    for param in net.module_.parameters():
        if param.is_floating_point():
            return param.dtype
    return torch.float32


@torch.no_grad()
def check_skorch_traps(net, X, y) -> None:
    """Refuse, with a fix, the skorch set-ups that train silently wrong.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialized.
    X, y : arrays
        A split's training data as the network will see it.

    Raises
    ------
    InvalidInputError
        For a classifier whose module returns raw scores under ``NLLLoss``, a
        regression target of the wrong shape, or data of the wrong dtype.
    """
    dtype = module_dtype(net)
    x_dtype = getattr(X, "dtype", None)
    if (
        isinstance(X, np.ndarray)
        and x_dtype.kind == "f"
        and x_dtype != torch.empty(0, dtype=dtype).numpy().dtype
    ):
        raise InvalidInputError(
            f"X has dtype {x_dtype} but the network's weights are {dtype}; skorch "
            "would fail with a dtype error. Cast X (X.astype(np.float32)) or keep "
            "cast_inputs=True."
        )
    y_arr = None if y is None else np.asarray(y)
    if is_classifier_net(net) and y_arr is not None and y_arr.dtype != np.int64:
        if y_arr.dtype.kind in "iub":
            raise InvalidInputError(
                f"y has dtype {y_arr.dtype}, but torch's classification losses need "
                "int64 class indices. Cast y (y.astype(np.int64)) or keep "
                "cast_inputs=True."
            )
    if is_regressor_net(net) and y_arr is not None and y_arr.ndim == 1:
        raise InvalidInputError(
            f"NeuralNetRegressor got a 1-D y of shape {y_arr.shape}: against a (n, 1) "
            "output, torch broadcasts the loss to (n, n) and trains silently wrong. "
            "Pass y.reshape(-1, 1) or keep cast_inputs=True."
        )
    if is_classifier_net(net) and isinstance(net.criterion_, nn.NLLLoss):
        _check_probabilities(net, X)
    if y_arr is not None and (is_regressor_net(net) or is_classifier_net(net)):
        _check_output_width(net, X, y_arr)


def _check_output_width(net, X, y) -> None:
    """Refuse a target that does not fit the module's output (silently wrong)."""
    with kept_modes(net.module_, train=False):
        out = net.infer(torch.as_tensor(np.asarray(X[: min(len(X), 2)])))
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        return
    width = out.shape[1]
    if is_regressor_net(net) and y.ndim == 2 and y.shape[1] != width:
        raise InvalidInputError(
            f"y has {y.shape[1]} output column(s) but the module returns {width} per "
            f"sample (output shape {tuple(out.shape)}): torch would broadcast the "
            "loss and train silently wrong. Give the module one output per target "
            f"column (e.g. module__n_out={y.shape[1]}) or pass the matching y."
        )
    if is_classifier_net(net) and y.size and y.dtype.kind in "iu":
        high = int(y.max())
        if width > 1 and (high >= width or int(y.min()) < 0):
            raise InvalidInputError(
                f"y holds class indices up to {high} (min {int(y.min())}), but the "
                f"module returns {width} scores per sample, so classes 0..{width - 1} "
                f"only. Give the module {high + 1} outputs, or encode y as "
                "0..n_classes-1 (sklearn.preprocessing.LabelEncoder)."
            )


def _check_probabilities(net, X) -> None:
    sample = X[: min(len(X), 64)]
    with kept_modes(net.module_, train=False):
        out = net.infer(torch.as_tensor(np.asarray(sample)))
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        return
    sums = out.sum(1)
    if bool((out < 0).any()) or not torch.allclose(
        sums, torch.ones_like(sums), atol=1e-3
    ):
        raise InvalidInputError(
            "The classifier's criterion is NLLLoss (skorch's default), which expects "
            "the module to output probabilities, but it outputs raw scores (min "
            f"{float(out.min()):.3g}, row sums from {float(sums.min()):.3g} to "
            f"{float(sums.max()):.3g}); it would train silently to chance. Pass "
            "criterion=torch.nn.CrossEntropyLoss, or end forward() with softmax."
        )


def cast_X(X, dtype=np.float32):
    """Cast float64 arrays / DataFrames to ``dtype``; leave anything else as is."""
    if isinstance(X, np.ndarray) and X.dtype == np.float64:
        return X.astype(dtype)
    if hasattr(X, "dtypes") and hasattr(X, "astype"):
        kinds = {getattr(t, "kind", "O") for t in np.atleast_1d(X.dtypes)}
        if kinds <= {"f", "i", "u"}:
            return X.astype(dtype)
    return X


def cast_y(y, net):
    """Give ``y`` the dtype and shape skorch's losses expect for this net.

    Classifier targets become int64; regression targets become float32 and a
    1-D target becomes a column, matching a module with one output.
    """
    if y is None:
        return None
    y = np.asarray(y)
    if is_classifier_net(net):
        return y.astype(np.int64) if y.dtype.kind in "iub" else y
    if is_regressor_net(net):
        try:
            y = y.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"Unknown label type for regression: y has dtype {y.dtype} and its "
                f"values (e.g. {y.reshape(-1)[:3]!r}) are not numbers. Pass numeric "
                "targets to a NeuralNetRegressor."
            ) from exc
        return y.reshape(-1, 1) if y.ndim == 1 else y
    return y


__all__ = [
    "RelaxedDropout",
    "cast_X",
    "cast_y",
    "find_dropout_layers",
    "is_classifier_net",
    "module_dtype",
    "relax_dropout",
    "split_estimator",
]
