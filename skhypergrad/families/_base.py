"""The protocol every hyperparameter family follows.

A *family* is one kind of hyperparameter the search can tune by
hypergradients (weight decay, a dropout rate, ...). It is one class,
registered in :mod:`skhypergrad.families`, whose instances are the entries of
a search space it claimed. The runner only iterates over them: adding a family
is one new module and its tests.

An entry's life:

1. :meth:`Hyperparameter.claims` says whether the family owns a net
   parameter name; :meth:`Hyperparameter.from_entry` checks the range against
   the (unfitted) network and builds the entry.
2. For each CV split, :meth:`Hyperparameter.net_overrides` adjusts the net's
   parameters before it is initialised, and :meth:`Hyperparameter.bind`
   attaches the entry to the initialised net; :meth:`Hyperparameter.size` says
   how many raw values the split needs (``per_fold`` entries get one raw
   vector per split, e.g. one weight per training sample).
3. During training the binding receives the current (detached) value through
   :meth:`Binding.apply`; inside the training loss of a hypergradient
   evaluation it receives a differentiable value through
   :meth:`Binding.inner_term`, which may change the module and may return a
   term added to the loss. An optimiser setting (``Binding.unrolled``, a
   learning rate) instead gives its differentiable value to the unrolled
   training steps through :meth:`Binding.unrolled_settings`.
4. :meth:`Hyperparameter.best_params` turns a tuned value into the
   ``set_params`` arguments that the refit and ``best_params_`` receive.
"""

from __future__ import annotations

import numpy as np

from ..hyperparams import Real


def named_callback(callbacks, name, kind):
    """The callback named ``name`` in a skorch callbacks list if it is a
    ``kind``, else None.

    Parameters
    ----------
    callbacks : list
        A net's ``callbacks`` (instances, classes or ``(name, callback)``
        pairs) or ``callbacks_``.
    name : str
        skorch's name for it: the pair's name, or the class name of an
        unnamed callback.
    kind : type

    Returns
    -------
    callback : kind or None
    """
    if not isinstance(callbacks, list | tuple):
        return None
    for item in callbacks:
        if isinstance(item, tuple) and len(item) == 2:
            found, callback = item
        else:  # skorch names an unnamed callback after its class
            found, callback = getattr(item, "__name__", type(item).__name__), item
        if found == name:
            return callback if isinstance(callback, kind) else None
    return None


class SplitValues(dict):
    """A ``per_fold`` entry's values, ``{split index: value}``.

    Parameters
    ----------
    values : dict
        ``{split index: value}``.
    rows : dict
        ``{split index: positions in X of the split's training rows}``.
    n_samples : int
        Number of rows of the ``X`` the search was fit on (the refit's rows).
    """

    def __init__(self, values, rows, n_samples):
        super().__init__(values)
        self.rows = rows
        self.n_samples = n_samples


class Binding:
    """An entry attached to one split's initialised network.

    The default binding does nothing: a family overrides the methods it needs.

    Attributes
    ----------
    unrolled : bool
        Class attribute: False for a value that enters the training loss (its
        hypergradient comes from the implicit function theorem); True for an
        optimiser setting (a learning rate), whose hypergradient comes from
        differentiating through the last training steps
        (:meth:`unrolled_settings`).
    optimizer_setting : str or None
        Class attribute: the optimiser parameter-group key that :meth:`apply`
        writes (``"weight_decay"``, ``"lr"``), if any. Unrolled training
        steps take that setting from the optimiser's groups, as training
        does, instead of the binding's :meth:`inner_term`.
    hooks_gradients : bool
        Class attribute: True when :meth:`on_grad_computed` must run after
        every training batch's backward pass (per-weight decay).
    """

    unrolled = False
    optimizer_setting = None
    hooks_gradients = False

    def apply(self, value) -> None:
        """Use the current value (detached, the net's dtype) for training."""

    def on_grad_computed(self, params) -> None:
        """Act on the gradients of a training batch (if ``hooks_gradients``).

        Parameters
        ----------
        params : list of torch.Tensor
            The trainable parameters, their ``.grad`` set.
        """

    def batch_rows(self, rows) -> None:
        """The rows of the next training-loss minibatch (positions in the
        split's training part), for values that belong to training samples."""

    def observed(self, grad, rows):
        """The part of a hypergradient the hyper-step should follow.

        Parameters
        ----------
        grad : torch.Tensor
            The entry's hypergradient on this split.
        rows : ndarray of int
            The training minibatch's rows (positions in the split's training
            part) that the hypergradient was taken on.

        Returns
        -------
        grad : torch.Tensor
            All of it by default; values that belong to training samples
            keep only the minibatch's rows (see the per-example weights).
        """
        return grad

    def inner_term(self, value, params):
        """Enter a differentiable ``value`` into the training loss.

        Parameters
        ----------
        value : torch.Tensor
            Differentiable with respect to the raw hyperparameters.
        params : list of torch.Tensor
            The trainable parameters of the module, in ``named_parameters``
            order.

        Returns
        -------
        term : torch.Tensor or None
            Added to the training loss; None if the value enters through the
            module instead (after this call, the next forward pass uses it).
        """
        self.apply(value)
        return None

    def unrolled_settings(self, value, params) -> dict:
        """The optimiser settings of an ``unrolled`` binding, differentiable.

        Parameters
        ----------
        value : torch.Tensor
            Differentiable with respect to the raw hyperparameters.
        params : list of torch.Tensor
            The trainable parameters, in ``named_parameters`` order.

        Returns
        -------
        settings : dict
            ``{optimizer group key: one tensor per parameter}``, e.g.
            ``{"lr": [...]}``; they replace the optimiser's own values in the
            unrolled steps.
        """
        return {}


class Hyperparameter:
    """One search-space entry tuned by hypergradients (base of every family).

    Parameters
    ----------
    name : str
        Key in ``param_distributions``, with any Pipeline prefix.
    local : str
        The same name on the skorch net (prefix removed).
    real : Real
        Range, scale and raw parametrisation.
    granularity : {"scalar", "layer", "parameter"}, default="scalar"
        How many values the entry holds for a network.

    Attributes
    ----------
    per_fold : bool
        Class attribute: True when every split has its own values (their
        number depends on the split's data), False when one set of values is
        shared by the splits and follows their mean hypergradient.
    """

    per_fold = False

    def __init__(self, name: str, local: str, real: Real, granularity="scalar"):
        self.name = name
        self.local = local
        self.real = real
        self.granularity = granularity

    def __repr__(self):
        return (
            f"{type(self).__name__}({self.name!r}, {self.real!r}, "
            f"granularity={self.granularity!r})"
        )

    @classmethod
    def claims(cls, local: str, distribution, net) -> bool:
        """Whether this family owns the net parameter ``local``.

        Called for every entry, whatever its distribution: a family that
        claims a name given as a list has it searched as a grid, with a hint
        that a range would be tuned.
        """
        raise NotImplementedError

    @classmethod
    def explain_unclaimed(cls, name: str, local: str, distribution, net) -> None:
        """Raise why an entry like this family's, wrapped in ``Tuned``, is not one.

        Called when no family claims ``local``; the default says nothing.

        Raises
        ------
        InvalidHyperparameterError
            Where the family recognises the kind of entry, with what to
            write instead.
        """

    @classmethod
    def from_entry(cls, name: str, local: str, distribution, net) -> Hyperparameter:
        """Check a continuous range against the unfitted net; build the entry.

        Raises
        ------
        InvalidHyperparameterError
            With what is wrong, the value received and how to fix it.
        """
        raise NotImplementedError

    def net_overrides(self, net) -> dict:
        """``set_params`` arguments for a split's net before it is initialised."""
        return {}

    def size(self, net, n_train: int) -> int:
        """Number of raw values for an initialised net and ``n_train`` rows."""
        return 1

    def bind(self, net) -> Binding:
        """Attach the entry to a split's initialised net."""
        return Binding()

    def best_params(self, value, net, prefix: str, layout) -> dict:
        """What ``set_params`` receives for the tuned ``value``.

        Parameters
        ----------
        value : float, ndarray or SplitValues
            From :meth:`python_value`; for a ``per_fold`` entry a
            :class:`SplitValues`, ``{split: value}`` that also holds each
            split's training rows.
        net : skorch.NeuralNet
            The search's (unfitted) network.
        prefix : str
            ``"<step>__"`` in a Pipeline, else ``""``.
        layout : ParameterLayout
            Trainable parameters of a split's initialised module.

        Returns
        -------
        params : dict
            Keys with ``prefix``; ``clone(estimator).set_params(**params)``
            trains with the tuned value.
        """
        return {self.name: value}

    def python_value(self, raw):
        """A float for one value, else a float64 array (from raw numpy values)."""
        value = np.asarray(self.real.from_raw(np.asarray(raw, dtype=float)))
        if self.granularity == "scalar":
            return float(value.reshape(-1)[0])
        return value.astype(np.float64)

    def summary(self, raw) -> float:
        """One number for the path: the value, or a (geometric) mean of many."""
        value = np.asarray(self.real.from_raw(np.asarray(raw, dtype=float)))
        if value.size == 1:
            return float(value.reshape(-1)[0])
        if self.real.log:
            return float(np.exp(np.log(value).mean()))
        return float(value.mean())


def merge_best_params(params: dict, new: dict) -> None:
    """Add a family's ``best_params`` to ``params``, in place.

    Two families may both give ``optimizer__param_groups`` (a per-layer decay
    and per-layer learning rates): their groups, one per parameter and in the
    same order, are merged into one list.

    Parameters
    ----------
    params : dict
        ``set_params`` arguments gathered so far.
    new : dict
        One family's :meth:`Hyperparameter.best_params`.
    """
    for key, value in new.items():
        old = params.get(key)
        if key.endswith("optimizer__param_groups") and old is not None:
            merged = dict((name, dict(options)) for name, options in old)
            for name, options in value:
                merged.setdefault(name, {}).update(options)
            value = list(merged.items())
        params[key] = value


__all__ = ["Binding", "Hyperparameter", "SplitValues", "merge_best_params"]
