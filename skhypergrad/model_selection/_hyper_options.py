"""What the search and the single-fit estimators add to scikit-learn's
parameters, written once: the solver, the outer optimisation (one
:class:`~skhypergrad.hypergrad.OuterOptimizer`, or a torch optimiser class
with ``hyper_optimizer__<name>`` arguments skorch-style), rescoring, the
unroll length and input casting."""

from __future__ import annotations

import numbers

from ..exceptions import InvalidOptionError
from ..hypergrad import SOLVERS, OuterOptimizer
from ..utils._validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
)
from ._decision import DecisionRule, ScoreConstants

OPTIMIZER_PREFIX = "hyper_optimizer__"
# OuterOptimizer's own options; other hyper_optimizer__<name> arguments belong
# to the torch optimiser class.
_OUTER_OPTIONS = set(OuterOptimizer._defaults()) - {"optimizer", "optimizer_kwargs"}

# Arguments of versions before the outer optimisation became one value.
_MOVED = {
    "hyper_lr": "hyper_optimizer__lr",
    "hyper_lr_schedule": (
        "hyper_optimizer__schedule (a torch.optim.lr_scheduler class, or None "
        "for a constant rate)"
    ),
    "hyper_interval": "hyper_optimizer__interval",
    "warmup": "hyper_optimizer__warmup",
    "hyper_batch_size": "hyper_optimizer__batch_size",
    "average_last": "hyper_optimizer__average_last",
}

HYPER_CONSTRAINTS = {
    "estimator": [HasMethods(["fit"])],
    "param_distributions": [dict, list],
    "random_state": ["random_state"],
    "solver": [StrOptions(set(SOLVERS)), callable],
    "hyper_optimizer": [type, OuterOptimizer],
    "rescore": ["boolean", DecisionRule],
    "unroll_steps": [Interval(numbers.Integral, 1, None, closed="left")],
    "cast_inputs": ["boolean"],
}


class HyperOptionsMixin:
    """Stores, reports and resolves the hypergradient options of an estimator."""

    def _store_hyper_options(
        self, random_state, solver, hyper_optimizer, rescore, unroll_steps,
        cast_inputs, kwargs,
    ) -> None:  # fmt: skip
        self.random_state = random_state
        self.solver = solver
        self.hyper_optimizer = hyper_optimizer
        self.rescore = rescore
        self.unroll_steps = unroll_steps
        self.cast_inputs = cast_inputs
        # Unknown keywords are reported by fit, as scikit-learn validates there.
        self._unknown_kwargs = sorted(k for k in kwargs if not _is_optimizer_key(k))
        for key in kwargs:
            if _is_optimizer_key(key):
                setattr(self, key, kwargs[key])

    def _decision_rule(self) -> DecisionRule | None:
        """The rule that chooses the reported values (None: the tuning
        trainings' own scores are reported, ``rescore=False``)."""
        if isinstance(self.rescore, DecisionRule):
            self.rescore._validate_options()
            return self.rescore
        return ScoreConstants() if self.rescore else None

    def get_params(self, deep=True):
        """Get parameters, ``hyper_optimizer__<name>`` arguments included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of nested objects (the estimator, an
            ``OuterOptimizer`` or solver object).

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._optimizer_kwargs())
        return params

    def set_params(self, **params):
        """Set parameters, ``hyper_optimizer__<name>`` arguments included.

        With a torch optimiser class as ``hyper_optimizer``, its
        ``hyper_optimizer__<name>`` arguments are stored as given; with an
        ``OuterOptimizer``, they set its options, as for any nested object.

        Parameters
        ----------
        **params : dict
            Parameter names and their new values.

        Returns
        -------
        self : estimator
            This estimator, updated.
        """
        moved = [f"{k} is now {_MOVED[k]}" for k in params if k in _MOVED]
        if moved:
            raise InvalidParameterError(
                f"Invalid parameters for {type(self).__name__}: {'; '.join(moved)}. "
                "The outer optimisation's settings are options of its OuterOptimizer."
            )
        outer = params.get("hyper_optimizer", getattr(self, "hyper_optimizer", None))
        if isinstance(outer, OuterOptimizer):
            if "hyper_optimizer" in params:
                # The arguments stored for a torch optimiser class belonged to
                # it; the OuterOptimizer now given holds its own.
                for key in self._optimizer_kwargs():
                    delattr(self, key)
            return super().set_params(**params)
        extra = {k: v for k, v in params.items() if _is_optimizer_key(k)}
        for key, value in extra.items():
            setattr(self, key, value)
        rest = {k: v for k, v in params.items() if k not in extra}
        return super().set_params(**rest) if rest else self

    def _optimizer_kwargs(self) -> dict:
        return {k: v for k, v in vars(self).items() if _is_optimizer_key(k)}

    def _check_kwargs(self) -> None:
        unknown = getattr(self, "_unknown_kwargs", None)
        if "param_grid" in (unknown or ()) or self.param_distributions is None:
            got = "param_grid=" if "param_grid" in (unknown or ()) else "no grid"
            raise InvalidParameterError(
                f"{type(self).__name__} got {got}: it takes its grid or "
                "distributions as param_distributions (GridSearchCV's param_grid, "
                "RandomizedSearchCV's param_distributions), in the same form. "
                f"Write {type(self).__name__}(net, {{...}}) or "
                "param_distributions={...}."
            )
        if unknown:
            moved = [
                f"{name} is now {_MOVED[name]}" for name in unknown if name in _MOVED
            ]
            raise InvalidParameterError(
                f"{type(self).__name__} got unexpected keyword arguments {unknown}. "
                + (f"{'; '.join(moved)}. " if moved else "")
                + "Besides its named parameters it accepts only "
                f"'{OPTIMIZER_PREFIX}<name>' arguments of the outer optimisation, "
                "e.g. hyper_optimizer__lr=0.1 or hyper_optimizer__betas=(0.5, 0.9)."
            )

    def _outer_optimizer(self) -> OuterOptimizer:
        """``hyper_optimizer`` as given, or an ``OuterOptimizer`` of that class
        with the ``hyper_optimizer__<name>`` arguments: its own options, and
        the optimiser's arguments."""
        kwargs = {
            k.removeprefix(OPTIMIZER_PREFIX): v
            for k, v in self._optimizer_kwargs().items()
        }
        if isinstance(self.hyper_optimizer, OuterOptimizer):
            if kwargs:
                raise InvalidParameterError(
                    f"hyper_optimizer is an OuterOptimizer ({self.hyper_optimizer!r}), "
                    f"which holds its own options, but got "
                    f"{sorted(self._optimizer_kwargs())} as well. Give them to the "
                    "OuterOptimizer instead (e.g. OuterOptimizer(lr=0.1, "
                    "optimizer_kwargs={'betas': (0.5, 0.9)}))."
                )
            outer = self.hyper_optimizer
        else:
            own = {k: v for k, v in kwargs.items() if k in _OUTER_OPTIONS}
            rest = {k: v for k, v in kwargs.items() if k not in _OUTER_OPTIONS}
            outer = OuterOptimizer(
                self.hyper_optimizer, optimizer_kwargs=rest or None, **own
            )
        try:
            outer._validate_options()
        except InvalidOptionError as exc:
            given = self._optimizer_kwargs() or "none"
            raise InvalidParameterError(
                f"{exc} {type(self).__name__} got hyper_optimizer="
                f"{self.hyper_optimizer!r} and the arguments {given}. Set the outer "
                f"optimisation's options as {OPTIMIZER_PREFIX}<option> (its options: "
                f"{sorted(_OUTER_OPTIONS)}; other names go to the torch optimiser), "
                "or pass hyper_optimizer=OuterOptimizer(...)."
            ) from exc
        return outer


def _is_optimizer_key(key: str) -> bool:
    return key.startswith(OPTIMIZER_PREFIX)
