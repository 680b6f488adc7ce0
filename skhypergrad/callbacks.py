"""skorch callbacks that apply tuned penalties while a network trains."""

from __future__ import annotations

import numpy as np
import torch

from ._callback_base import SearchCallback
from .penalties import (
    GRANULARITIES,
    add_l2_gradient,
    expand_coefficients,
    parameter_layout,
    trainable_parameters,
)


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


# The per-sample weights callback lives in its own module (its row tracking
# is most of it); it is one of the callbacks, so it is importable from here.
from .sample_weights import SampleWeight  # noqa: E402

__all__ = ["InputNoise", "SampleWeight", "SearchCallback", "WeightDecayPenalty"]
