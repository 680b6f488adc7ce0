"""One lock-step search run: every CV split trains its own network, and one
shared set of raw hyperparameters follows the mean hypergradient of the splits.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import FitFailedWarning
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ..exceptions import InvalidInputError, SkHypergradError
from ..hypergrad import adam_init, adam_step, hypergradient, sgd_step
from ..net import check_skorch_traps, relax_dropout
from ..penalties import (
    add_l2_gradient,
    expand_coefficients,
    l2_penalty,
    parameter_layout,
    trainable_parameters,
)

logger = logging.getLogger("skhypergrad")
_GLOBAL_RNG_LOCK = threading.Lock()
HOOKS_NAME = "skhypergrad_hooks"


@dataclass
class Settings:
    """Search knobs, resolved from the estimator's constructor arguments."""

    method: str
    solver_max_iter: int
    solver_damping: float
    solver_alpha: object
    hyper_optimizer: str
    hyper_betas: tuple
    hyper_lr: float
    hyper_lr_schedule: str
    hyper_interval: int
    warmup: int
    hyper_batch_size: int
    average_last: float
    error_score: object
    scorers: dict
    return_train_score: bool
    verbose: int
    cast_inputs: bool


class HparamState:
    """Raw hyperparameters shared by the folds, and their current values."""

    def __init__(self, specs, raw):
        self.specs = specs
        self.raw = raw  # list of 1-D float64 tensors
        self.version = 0  # bumped at every accepted hyper-step

    def update(self, raw):
        """Replace the raw values (an accepted hyper-step)."""
        self.raw = raw
        self.version += 1

    def values(self, raw=None, dtype=torch.float32):
        """Map raw tensors (differentiably) to values, keyed by spec name."""
        raw = self.raw if raw is None else raw
        return {s.name: s.real.from_raw(r).to(dtype) for s, r in zip(self.specs, raw)}

    def expand_decays(self, values, net, params):
        """One list of per-parameter coefficients per weight-decay spec."""
        return [
            expand_coefficients(
                values[s.name], s.granularity, net.skhypergrad_layout_, params
            )
            for s in self.specs
            if s.kind == "weight_decay"
        ]

    def decay_coefficients(self, net, params):
        """Per-parameter weight-decay tensors of ``net``, rebuilt once per step.

        Training calls this at every batch; the values only change at a
        hyper-step, so the tensors are cached on the net with the version.
        """
        cached = getattr(net, "skhypergrad_coefs_", None)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        coefs = self.expand_decays(self.values(dtype=params[0].dtype), net, params)
        net.skhypergrad_coefs_ = (self.version, coefs)
        return coefs


class _Hooks(Callback):
    """Applies the tuned weight decay during the fold's training steps."""

    def __init__(self, state=None):
        self.state = state

    def on_grad_computed(self, net, named_parameters, **kwargs):  # noqa: D102
        params = trainable_parameters(net.module_)
        for coefs in self.state.decay_coefficients(net, params):
            add_l2_gradient(params, coefs)


@dataclass
class Fold:
    """One CV split: its fitted preprocessing, its network and its data."""

    index: int
    estimator: object
    net: object
    data: dict
    relaxed: dict = field(default_factory=dict)
    fit_time: float = 0.0
    error: BaseException | None = None
    stopped: bool = False

    @property
    def active(self) -> bool:
        return self.error is None and not self.stopped


def build_fold(index, estimator, step, X, y, train, test, state, settings, fit_params):
    """Clone the estimator, fit its preprocessing and initialise its network."""
    start = time.perf_counter()
    est = clone(estimator)
    net = est.steps[-1][1] if step is not None else est
    X_tr, X_val = _take(X, train), _take(X, test)
    y_tr = None if y is None else y[train]
    y_val = None if y is None else y[test]
    Xt_tr, Xt_val = X_tr, X_val
    if step is not None:
        pre = est[:-1]
        Xt_tr = _net_input(pre.fit_transform(X_tr, y_tr), settings, pre)
        Xt_val = _net_input(pre.transform(X_val), settings, pre)
    hooks = _Hooks(state)
    user_callbacks = net.callbacks if isinstance(net.callbacks, list | tuple) else []
    overrides = {
        "train_split": predefined_split(Dataset(Xt_val, y_val)),
        "callbacks": [(HOOKS_NAME, hooks), *user_callbacks],
    }
    if settings.verbose < 2:
        overrides["verbose"] = 0
    if any(s.kind == "weight_decay" for s in state.specs):
        overrides["optimizer__weight_decay"] = 0.0
    net.set_params(**overrides)
    net.initialize()
    _materialize_lazy(net, Xt_tr)
    check_skorch_traps(net, Xt_tr, y_tr)
    net.skhypergrad_layout_ = parameter_layout(net.module_)
    relaxed = {}
    values = state.values()
    for spec in state.specs:
        if spec.kind == "dropout":
            relaxed[spec.name] = relax_dropout(
                net.module_, spec.dropout_paths, values[spec.name].detach()
            )
    net.notify("on_train_begin", X=Xt_tr, y=y_tr)
    data = {
        "X_val": X_val,
        "y_val": y_val,
        "X_tr": X_tr,
        "y_tr": y_tr,
        "Xt_tr": Xt_tr,
        "yt_tr": y_tr,
        "Xt_val": Xt_val,
        "fit_params": fit_params,
    }
    fold = Fold(index, est, net, data, relaxed)
    fold.fit_time = time.perf_counter() - start
    return fold


@torch.no_grad()
def _materialize_lazy(net, X):
    """Give lazy modules (``nn.LazyLinear``...) their shapes with a dry forward.

    Their parameters are materialised in place, so the optimizer that skorch
    already built keeps pointing at them.
    """
    lazy = torch.nn.parameter.UninitializedParameter
    if any(isinstance(p, lazy) for p in net.module_.parameters()):
        net.module_.eval()
        net.infer(torch.as_tensor(np.asarray(_take(X, np.arange(min(2, len(X)))))))
        net.module_.train()


def _net_input(Xt, settings, pre):
    # Casting here only would train on float32 but predict on float64 later:
    # the search casts X once, before the Pipeline, and asks the steps to keep it.
    if settings.cast_inputs and getattr(Xt, "dtype", None) == np.float64:
        raise InvalidInputError(
            f"The Pipeline steps before the network ({[n for n, _ in pre.steps]}) "
            "turn the float32 input into float64, but the network expects float32. "
            "End the preprocessing with FunctionTransformer(np.float32), or use "
            "steps that keep the dtype (StandardScaler, MinMaxScaler, PCA do)."
        )
    return Xt


def _take(X, indices):
    return X.iloc[indices] if hasattr(X, "iloc") else X[indices]


def run_epoch(fold: Fold, settings: Settings) -> None:
    """Train one epoch with skorch's own loop (callbacks and history included)."""
    start = time.perf_counter()
    data = fold.data
    try:
        fold.net.fit_loop(data["Xt_tr"], data["yt_tr"], epochs=1, **data["fit_params"])
        _check_train_loss(fold.net)
    except KeyboardInterrupt as exc:
        if not _raised_by_callback(exc):
            raise  # Ctrl-C: stop the whole search now
        # skorch's EarlyStopping ends training by raising KeyboardInterrupt,
        # which skorch's own fit swallows: this split stops, the others go on.
        fold.stopped = True
    except Exception as exc:
        if settings.error_score == "raise":
            raise
        fold.error = exc
    fold.fit_time += time.perf_counter() - start


def _check_train_loss(net) -> None:
    loss = net.history[-1].get("train_loss", 0.0)
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"The training loss became {loss} at epoch {len(net.history)}: the "
            "weights are no longer usable. Lower lr, or narrow the hyperparameter "
            "ranges (very large weight decay or dropout can make training diverge)."
        )


def _raised_by_callback(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt came from a user's skorch callback."""
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, Callback) and not isinstance(owner, _Hooks):
            return True
        tb = tb.tb_next
    return False


def fold_hypergradient(fold, state, settings, generator):
    """Hypergradient of this fold's validation loss with respect to the raw values."""
    net, data = fold.net, fold.data
    module = net.module_
    params = trainable_parameters(module)
    raw = [r.detach().clone().requires_grad_(True) for r in state.raw]
    X_in, y_in = _batch(
        data["Xt_tr"], data["yt_tr"], settings.hyper_batch_size, generator
    )
    X_out, y_out = _batch(
        data["Xt_val"], data["y_val"], 2 * settings.hyper_batch_size, generator
    )
    dtype = params[0].dtype
    buffers = {k: b.detach().clone() for k, b in module.named_buffers()}

    def inner_loss(params, hparams):
        values = state.values(hparams, dtype=dtype)
        _set_rates(fold, values)
        module.train()
        loss = net.get_loss(
            net.infer(X_in), _to_device(y_in, net), X=X_in, training=True
        )
        for coefs in state.expand_decays(values, net, params):
            loss = loss + l2_penalty(params, coefs)
        return loss

    def outer_loss(params, hparams):
        module.eval()
        return net.get_loss(
            net.infer(X_out), _to_device(y_out, net), X=X_out, training=False
        )

    try:
        return hypergradient(
            inner_loss,
            outer_loss,
            params,
            raw,
            method=settings.method,
            max_iter=settings.solver_max_iter,
            alpha=settings.solver_alpha,
            damping=settings.solver_damping,
            solver_options=_solver_options(settings.method),
            return_info=True,
        )
    finally:
        module.load_state_dict(buffers, strict=False)
        module.train()
        _set_rates(fold, {k: v.detach() for k, v in state.values(dtype=dtype).items()})
        net.optimizer_.zero_grad(set_to_none=True)


def _solver_options(method):
    # Network Hessians are indefinite: truncated CG keeps the curvature seen so
    # far instead of failing; the residual goes into the path, not a warning.
    return {"negative_curvature": "stop", "warn": False} if method == "cg" else {}


def _set_rates(fold, values):
    for name, layers in fold.relaxed.items():
        for layer in layers:
            layer.rate = values[name]


def _batch(X, y, size, generator):
    n = len(X)
    index = torch.randperm(n, generator=generator)[: min(size, n)].numpy()
    index.sort()
    Xb = torch.as_tensor(np.asarray(_take(X, index)))
    yb = None if y is None else torch.as_tensor(np.asarray(y[index]))
    return Xb, yb


def _to_device(y, net):
    return None if y is None else y.to(net.device)


def hyper_step(folds, state, optimizer_state, settings, generator, epoch, lr):
    """Average the folds' hypergradients and move the raw values one step of ``lr``.

    Returns the new optimiser state and a path record; a step whose
    hypergradient is not finite is skipped and recorded, never applied.
    """
    grads, losses, reasons, iterations = [], [], [], []
    for fold in folds:
        if not fold.active:
            continue
        try:
            grad, info = fold_hypergradient(fold, state, settings, generator)
        except (SkHypergradError, RuntimeError) as exc:
            reasons.append(f"split {fold.index}: {exc}")
            continue
        grads.append(grad)
        losses.append(info.outer_loss)
        iterations.append(info.solve.n_iter)
    record = {
        "epoch": epoch,
        "hyper_lr": lr,
        "val_loss": float(np.mean(losses)) if losses else math.nan,
        "solver_iter": float(np.mean(iterations)) if iterations else 0.0,
    }
    if reasons or not grads:
        record.update(
            hypergrad_norm=math.nan,
            skipped=True,
            at_bound=[],
            reason="; ".join(reasons) or "no split is still training",
        )
        return optimizer_state, record
    mean = [torch.stack([g[i] for g in grads]).mean(0) for i in range(len(state.raw))]
    norm = math.sqrt(sum(float((m**2).sum()) for m in mean))
    if settings.hyper_optimizer == "adam":
        new_raw, new_state = adam_step(
            state.raw, mean, optimizer_state, lr=lr, betas=settings.hyper_betas
        )
    else:
        new_raw, new_state = sgd_step(state.raw, mean, optimizer_state, lr=lr)
    at_bound = []
    for i, spec in enumerate(state.specs):
        low, high = spec.real.raw_bounds()
        clipped = new_raw[i].clamp(low, high)
        if bool((clipped != new_raw[i]).any()):
            at_bound.append(spec.name)
        new_raw[i] = clipped
    if not all(bool(torch.isfinite(r).all()) for r in new_raw):
        record.update(
            hypergrad_norm=norm, skipped=True, reason="non-finite update", at_bound=[]
        )
        return optimizer_state, record
    state.update(new_raw)
    record.update(hypergrad_norm=norm, skipped=False, reason=None, at_bound=at_bound)
    return new_state, record


def hyper_lr_at(settings, step, n_steps):
    """Hyper learning rate of hyper-step ``step`` (0-based) of ``n_steps``."""
    if settings.hyper_lr_schedule == "constant" or n_steps < 2:
        return settings.hyper_lr
    progress = step / (n_steps - 1)
    low = settings.hyper_lr / 10
    return low + (settings.hyper_lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


def init_optimizer(settings, raw):
    """Initial state of the hyper-optimiser."""
    return adam_init(raw) if settings.hyper_optimizer == "adam" else None


def warn_failures(folds, settings):
    """Emit one FitFailedWarning listing the splits whose training raised."""
    failed = [f for f in folds if f.error is not None]
    if failed:
        details = "; ".join(f"split {f.index}: {f.error!r}" for f in failed)
        warnings.warn(
            f"{len(failed)} of {len(folds)} splits failed to train and were scored "
            f"error_score={settings.error_score!r}. Details: {details}",
            FitFailedWarning,
            stacklevel=3,
        )


def run_start(estimator, step, specs, X, y, splits, settings, seed, start, fit_params):
    """Run the lock-step search from one starting point; return plain results.

    Parameters
    ----------
    estimator : skorch net or Pipeline
    step : str or None
    specs : list of HparamSpec
    X, y : data, already cast
    splits : list of (train, test) index arrays
    settings : Settings
    seed : int
        Seeds torch inside ``fork_rng``: the run is reproducible on CPU.
    start : dict
        Initial value of each hyperparameter, by name.
    fit_params : list of dict
        Extra ``fit_loop`` arguments, one dict per split.

    Returns
    -------
    result : dict
    """
    # torch's global generator (weight init, shuffling, dropout masks) is
    # process-wide: starts sharing a process under a thread backend take turns.
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        raw = [
            torch.as_tensor(s.real.to_raw(start[s.name]), dtype=torch.float64).reshape(
                1
            )
            for s in specs
        ]
        state = HparamState(specs, raw)
        folds = _build_folds(estimator, step, X, y, splits, state, settings, fit_params)
        _expand_vectors(state, folds)
        path, final_raw = _train(folds, state, settings, generator)
        for fold in folds:
            if fold.error is None:
                fold.net.notify(
                    "on_train_end", X=fold.data["Xt_tr"], y=fold.data["yt_tr"]
                )
        scores = [score_fold(fold, settings) for fold in folds]
    warn_failures(folds, settings)
    return {
        "raw": [r.numpy() for r in final_raw],
        "values": values_as_python(specs, final_raw),
        "scores": scores,
        "fit_time": [f.fit_time for f in folds],
        "path": path,
        "n_failed": sum(f.error is not None for f in folds),
    }


def _build_folds(estimator, step, X, y, splits, state, settings, fit_params):
    folds = []
    for index, (train, test) in enumerate(splits):
        try:
            folds.append(
                build_fold(
                    index,
                    estimator,
                    step,
                    X,
                    y,
                    train,
                    test,
                    state,
                    settings,
                    fit_params[index],
                )
            )
        except SkHypergradError:
            raise
        except Exception as exc:
            if settings.error_score == "raise":
                raise
            folds.append(Fold(index, None, None, {}, error=exc))
    if all(f.error is not None for f in folds):
        raise folds[0].error
    return folds


def _expand_vectors(state, folds):
    layout = next(f.net.skhypergrad_layout_ for f in folds if f.error is None)
    state.raw = [
        r.expand(layout.size_of(s.granularity)).clone()
        for s, r in zip(state.specs, state.raw)
    ]


def _train(folds, state, settings, generator):
    max_epochs = max(f.net.max_epochs for f in folds if f.error is None)
    optimizer_state = init_optimizer(settings, state.raw)
    due = [
        epoch
        for epoch in range(settings.warmup, max_epochs)
        if epoch >= 1 and (epoch - settings.warmup) % settings.hyper_interval == 0
    ]
    tail = _TailAverage(len(due), settings.average_last)
    path = []
    for epoch in range(1, max_epochs + 1):
        for fold in folds:
            if fold.active:
                run_epoch(fold, settings)
        if not any(f.active for f in folds):
            break
        if epoch not in due:
            continue
        start = time.perf_counter()
        # Every due epoch adds one record, so the path's length is the step index.
        lr = hyper_lr_at(settings, len(path), len(due))
        optimizer_state, record = hyper_step(
            folds, state, optimizer_state, settings, generator, epoch, lr
        )
        elapsed = time.perf_counter() - start
        for fold in folds:
            fold.fit_time += elapsed / len(folds)
        record["values"] = values_as_python(state.specs, state.raw, summary=True)
        path.append(record)
        tail.add(len(path) - 1, None if record["skipped"] else state.raw)
        _log_step(record, settings)
    return path, tail.result(state.raw)


class _TailAverage:
    """Running mean of the raw values over the last ``fraction`` of the planned
    hyper-steps, without keeping a copy per step (a million values each)."""

    def __init__(self, n_planned, fraction):
        self.start = n_planned - max(1, math.ceil(fraction * n_planned))
        self.total, self.count = None, 0

    def add(self, index, raw):
        if raw is None or index < self.start:
            return
        if self.total is None:
            self.total = [r.clone() for r in raw]
        else:
            for t, r in zip(self.total, raw):
                t.add_(r)
        self.count += 1

    def result(self, current):
        # Skipped steps leave the raw values as they were: with no accepted
        # step in the tail, the current values are the last accepted ones.
        if not self.count:
            return [r.clone() for r in current]
        return [t / self.count for t in self.total]


def _log_step(record, settings):
    level = logging.INFO if settings.verbose else logging.DEBUG
    status = "skipped: " + record["reason"] if record["skipped"] else "ok"
    logger.log(
        level,
        "epoch %d: val_loss=%.4f |g|=%.3g %s %s",
        record["epoch"],
        record["val_loss"],
        record["hypergrad_norm"],
        record["values"],
        status,
    )


def values_as_python(specs, raw, summary=False):
    """Values as floats (scalars) or numpy arrays (vectors), by name.

    With ``summary=True`` a vector is reduced to its geometric mean (log
    scale) or mean, so that a path of a million values per step stays small.
    """
    out = {}
    for spec, r in zip(specs, raw):
        value = spec.real.from_raw(r.detach().numpy())
        if spec.granularity == "scalar":
            out[spec.name] = float(value.reshape(-1)[0])
        elif summary:
            mean = np.exp(np.log(value).mean()) if spec.real.log else value.mean()
            out[spec.name] = float(mean)
        else:
            out[spec.name] = value.astype(np.float64)
    return out


def score_fold(fold, settings):
    """Scores of a trained split on its validation (and training) part."""
    names = list(settings.scorers)
    failed = {n: settings.error_score for n in names}
    result = {
        "test": dict(failed),
        "train": dict(failed),
        "loss": math.nan,
        "score_time": 0.0,
    }
    if fold.error is not None:
        return result
    start = time.perf_counter()
    data = fold.data
    try:
        result["test"] = _scores(fold.estimator, data["X_val"], data["y_val"], settings)
        if settings.return_train_score:
            result["train"] = _scores(
                fold.estimator, data["X_tr"], data["y_tr"], settings
            )
        result["loss"] = validation_loss(fold)
    except Exception:
        if settings.error_score == "raise":
            raise
    result["score_time"] = time.perf_counter() - start
    return result


def _scores(estimator, X, y, settings):
    return {
        name: float(scorer(estimator, X, y))
        for name, scorer in settings.scorers.items()
    }


@torch.no_grad()
def validation_loss(fold):
    """The net's criterion on the whole validation part, in eval mode."""
    net = fold.net
    net.module_.eval()
    y_val = fold.data["y_val"]
    Xt_val = fold.data["Xt_val"]
    y_pred = net.infer(torch.as_tensor(np.asarray(Xt_val)))
    y_true = None if y_val is None else torch.as_tensor(np.asarray(y_val))
    return float(net.get_loss(y_pred, y_true, X=Xt_val, training=False))
