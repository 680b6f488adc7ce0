"""One CV split's life in the search: build, train an epoch, score."""

from __future__ import annotations

import contextlib
import functools
import math
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, PrintLog
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ..._compat import _check_method_params, _num_samples, _safe_indexing, _score
from ...bilevel import kept_modes
from ...callbacks import SearchCallback
from ...exceptions import InvalidInputError
from ...net import check_skorch_traps
from ...penalties import trainable_parameters
from .._progress import print_labelled

HOOKS_NAME = "skhypergrad_hooks"
STREAM_NAME = "skhypergrad_stream"


class _Hooks(Callback):
    """Calls the bindings that act on every training batch (per-weight decay);
    first of the net's callbacks, so that they run before gradient clipping."""

    def __init__(self, bindings=()):
        self.bindings = bindings

    def on_grad_computed(self, net, named_parameters, **kwargs):  # noqa: D102
        if self.bindings:
            params = trainable_parameters(net.module_)
            for binding in self.bindings:
                binding.on_grad_computed(params)


class _KeepStream(Callback):
    """Keeps what runs after the training batches of an epoch from moving
    torch's generator; last of the net's callbacks.

    Since the last training batch only skorch's validation pass and the
    callbacks' ``on_epoch_end`` ran (scoring callbacks of the user's, for
    which the split validates each epoch); their DataLoaders drew seeds from
    torch's generator, which also drives the shuffling and dropout masks of
    the next epoch. Forgetting those draws keeps a callback that only reads
    from changing the training.
    """

    def on_batch_end(self, net, batch=None, training=None, **kwargs):  # noqa: D102
        if training:
            self.rng_state_ = torch.get_rng_state()

    def on_epoch_end(self, net, **kwargs):  # noqa: D102
        state = getattr(self, "rng_state_", None)
        if state is not None:
            torch.set_rng_state(state)
            self.rng_state_ = None


@dataclass
class Fold:
    """One CV split: its fitted preprocessing, its network, data and bindings."""

    index: int
    train: np.ndarray
    test: np.ndarray
    estimator: object = None
    net: object = None
    data: dict = field(default_factory=dict)
    bindings: list = field(default_factory=list)
    fit_time: float = 0.0
    error: BaseException | None = None
    stopped: bool = False
    seed: int = 0
    rng_state: torch.Tensor | None = None
    generator: torch.Generator | None = None
    ihvp: list | None = None  # the last solve's solution (a warm start)
    files: str | None = None  # private directory of file-writing callbacks

    def __post_init__(self):
        # Every split draws from its own streams (weight init, shuffling,
        # dropout masks; the hyper-steps' minibatches), so that a split gives
        # the same numbers whether it trains next to the others in one
        # process or alone in a worker.
        self.generator = torch.Generator().manual_seed(self.seed)
        self.rng_state = torch.Generator().manual_seed(self.seed + 1).get_state()

    @property
    def active(self) -> bool:
        """Whether the split is still training."""
        return self.error is None and not self.stopped

    @contextlib.contextmanager
    def rng(self, keep: bool = True):
        """Run with torch's global generator set to this split's stream.

        With ``keep=False`` the draws made inside are forgotten (scoring a
        split mid-training leaves its training as it would be without it).
        """
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            yield
            if keep:
                self.rng_state = torch.get_rng_state()


def build_fold(fold, estimator, step, X, y, entries, settings, fit_params):
    """Clone the estimator, fit its preprocessing, initialise and bind its net."""
    start = time.perf_counter()
    est = clone(estimator)
    net = est.steps[-1][1] if step is not None else est
    X_tr, X_val = _safe_indexing(X, fold.train), _safe_indexing(X, fold.test)
    y_tr = None if y is None else y[fold.train]
    y_val = None if y is None else y[fold.test]
    Xt_tr, Xt_val = X_tr, X_val
    if step is not None:
        pre = est[:-1]
        Xt_tr = _net_input(pre.fit_transform(X_tr, y_tr), settings, pre)
        Xt_val = _net_input(pre.transform(X_val), settings, pre)
    hooks = _Hooks()
    user_callbacks = net.callbacks if isinstance(net.callbacks, list | tuple) else []
    # The split's validation part is the net's validation set, so that
    # callbacks reading valid_loss work. With no callbacks of the user's but
    # skhypergrad's own, nothing reads it: skip skorch's validation pass each
    # epoch (the hyper-steps and the scoring evaluate the validation part
    # themselves), and nothing after the training batches can draw from
    # torch's generator, so there is no stream to keep.
    validates = any(_may_read_validation(c) for c in user_callbacks)
    callbacks = [(HOOKS_NAME, hooks), *user_callbacks]
    if validates:
        callbacks.append((STREAM_NAME, _KeepStream()))
    overrides = {
        "train_split": predefined_split(Dataset(Xt_val, y_val)) if validates else None,
        "callbacks": callbacks,
    }
    if settings.verbose < 3:
        overrides["verbose"] = 0
    for entry in entries:
        overrides.update(entry.net_overrides(net))
    net.set_params(**overrides)
    net.initialize()
    _select_rows(fold, net, X)
    _private_files(fold, net)
    if settings.verbose >= 3:
        _label_epoch_tables(net, f"split {fold.index}")
    _materialize_lazy(net, Xt_tr)
    check_skorch_traps(net, Xt_tr, y_tr)
    fold.bindings = [entry.bind(net) for entry in entries]
    hooks.bindings = [b for b in fold.bindings if b.hooks_gradients]
    fold.estimator, fold.net = est, net
    fold.data = {
        "X_all": X,
        "X_val": X_val,
        "y_val": y_val,
        "X_tr": X_tr,
        "y_tr": y_tr,
        "Xt_tr": Xt_tr,
        "Xt_val": Xt_val,
        "fit_params": _check_method_params(X, fit_params, indices=fold.train),
    }
    fold.fit_time = time.perf_counter() - start


def _select_rows(fold, net, X) -> None:
    """Give skhypergrad's callbacks the split's training rows (one holding a
    value per row of ``X`` keeps the split's own, as scikit-learn routes
    ``sample_weight``); tuned values replace them when the split binds."""
    n_samples = _num_samples(X)
    for _, callback in net.callbacks_:
        if isinstance(callback, SearchCallback):
            callback.select_rows(fold.train, n_samples)


def _may_read_validation(item) -> bool:
    """Whether an entry of a net's ``callbacks`` may read skorch's validation
    scores (any callback but skhypergrad's own training callbacks)."""
    callback = item[1] if isinstance(item, tuple) and len(item) == 2 else item
    own = isinstance(callback, SearchCallback) or (
        isinstance(callback, type) and issubclass(callback, SearchCallback)
    )
    return not own


def _private_files(fold, net) -> None:
    """Give the split's file-writing callbacks (skorch's ``Checkpoint``,
    ``TrainEndCheckpoint``, ``LoadInitState``...) a directory of its own.

    Every split and candidate trains a copy of the same net: with the user's
    ``dirname`` they would all write the same files, at the same time under
    ``n_jobs``, and ``Checkpoint(load_best=True)`` would load another split's
    weights. The directory goes with the split (:func:`release`); the
    refit writes where the user said.
    """
    names = [
        name
        for name, callback in net.callbacks_
        if "dirname" in getattr(callback, "get_params", dict)()
    ]
    if names:
        fold.files = tempfile.mkdtemp(prefix=f"skhypergrad-split{fold.index}-")
        net.set_params(**{f"callbacks__{name}__dirname": fold.files for name in names})


def _label_epoch_tables(net, label) -> None:
    """Prefix the lines of the net's epoch table with its split."""
    for _, callback in net.callbacks_:
        if isinstance(callback, PrintLog) and callback.sink is print:
            callback.sink = functools.partial(print_labelled, label=label)


@torch.no_grad()
def _materialize_lazy(net, X):
    """Give lazy modules (``nn.LazyLinear``...) their shapes with a dry forward.

    Their parameters are materialised in place, so the optimizer that skorch
    already built keeps pointing at them.
    """
    lazy = torch.nn.parameter.UninitializedParameter
    if any(isinstance(p, lazy) for p in net.module_.parameters()):
        with kept_modes(net.module_, train=False):
            rows = _safe_indexing(X, np.arange(min(2, len(X))))
            net.infer(torch.as_tensor(np.asarray(rows)))


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


def start_training(fold) -> None:
    """Tell the net's callbacks that training starts (after the values are set)."""
    fold.net.notify("on_train_begin", X=fold.data["Xt_tr"], y=fold.data["y_tr"])


def end_training(fold) -> None:
    """Tell the net's callbacks that training ended."""
    if fold.error is None:
        fold.net.notify("on_train_end", X=fold.data["Xt_tr"], y=fold.data["y_tr"])


def release(fold) -> None:
    """Remove the split's private files (after its training ended or failed)."""
    if fold.files is not None:
        shutil.rmtree(fold.files, ignore_errors=True)
        fold.files = None


def run_epoch(fold, settings) -> None:
    """Train one epoch with skorch's own loop (callbacks and history included)."""
    start = time.perf_counter()
    data = fold.data
    try:
        with _callback_interrupts_marked(fold.net):
            fold.net.fit_loop(
                data["Xt_tr"], data["y_tr"], epochs=1, **data["fit_params"]
            )
        _check_train_loss(fold.net)
    except KeyboardInterrupt as exc:
        if not getattr(exc, _FROM_CALLBACK, False):
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


# The mark a KeyboardInterrupt raised by one of the net's callbacks carries.
_FROM_CALLBACK = "skhypergrad_from_callback"


@contextlib.contextmanager
def _callback_interrupts_marked(net):
    """Mark a KeyboardInterrupt that the net's callbacks raise (skorch's
    EarlyStopping ends a training so) while skorch notifies them, so that it
    stops this split only; one raised elsewhere (Ctrl-C) is left unmarked."""
    own = vars(net).get("notify")
    notify = net.notify

    def marked(method_name, **kwargs):
        try:
            return notify(method_name, **kwargs)
        except KeyboardInterrupt as exc:
            setattr(exc, _FROM_CALLBACK, True)
            raise

    net.notify = marked
    try:
        yield
    finally:
        if own is None:
            del net.notify
        else:
            net.notify = own


def score_fold(fold, settings) -> dict:
    """Score a split as ``_fit_and_score`` reports it, plus its validation loss."""
    n_test = len(fold.test)
    if fold.error is not None:
        failed = _error_scores(settings)
        out = {
            "fit_error": error_text(fold.error),
            "test_scores": failed,
            "n_test_samples": n_test,
            "fit_time": fold.fit_time,
            "score_time": 0.0,
            "loss": math.nan,
        }
        if settings.return_train_score:  # the keys of a split that trained
            out["train_scores"] = failed
        return out
    start = time.perf_counter()
    data = fold.data
    test = _score(
        fold.estimator,
        data["X_val"],
        data["y_val"],
        settings.scorer,
        _check_method_params(data["X_all"], settings.score_params, fold.test),
        settings.error_score,
    )
    out = {
        "fit_error": None,
        "test_scores": test,
        "n_test_samples": n_test,
        "fit_time": fold.fit_time,
        "loss": validation_loss(fold),
    }
    if settings.return_train_score:
        out["train_scores"] = _score(
            fold.estimator,
            data["X_tr"],
            data["y_tr"],
            settings.scorer,
            _check_method_params(data["X_all"], settings.score_params, fold.train),
            settings.error_score,
        )
    out["score_time"] = time.perf_counter() - start
    return out


class SplitFailure(Exception):
    """A split's error, as text: what a paused training carries to another
    process in place of the exception (which may not unpickle there)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


def error_text(error) -> str:
    """The traceback of a split's error, as ``_fit_and_score`` reports it."""
    if isinstance(error, SplitFailure):
        return error.text
    return "".join(traceback.format_exception(error))


def portable(fold) -> None:
    """Make a split ready to travel to another process: its error as text,
    and its data without what :func:`restore` rebuilds from ``X`` and ``y``
    (the network's input stays when a Pipeline's steps made it)."""
    if fold.error is not None and not isinstance(fold.error, SplitFailure):
        fold.error = SplitFailure(error_text(fold.error))
    data = fold.data
    if not data or "restore" in data:
        return
    kept = {"fit_params": data["fit_params"], "restore": True}
    if data["Xt_tr"] is not data["X_tr"]:
        kept.update(Xt_tr=data["Xt_tr"], Xt_val=data["Xt_val"])
    fold.data = kept


def restore(fold, X, y) -> None:
    """Give a split that travelled (:func:`portable`) its data back."""
    data = fold.data
    if not data.pop("restore", False):
        return
    data.update(
        X_all=X,
        X_tr=_safe_indexing(X, fold.train),
        X_val=_safe_indexing(X, fold.test),
        y_tr=None if y is None else y[fold.train],
        y_val=None if y is None else y[fold.test],
    )
    data.setdefault("Xt_tr", data["X_tr"])
    data.setdefault("Xt_val", data["X_val"])


def _error_scores(settings):
    if settings.metric_names is None:
        return settings.error_score
    return dict.fromkeys(settings.metric_names, settings.error_score)


@torch.no_grad()
def validation_loss(fold) -> float:
    """The net's criterion on the whole validation part, in eval mode (every
    layer's mode is given back after: skorch's, or the user's frozen ones)."""
    net = fold.net
    y_val = fold.data["y_val"]
    Xt_val = fold.data["Xt_val"]
    y_true = None if y_val is None else torch.as_tensor(np.asarray(y_val))
    # The loss too in eval mode: callbacks that weigh training losses (the
    # per-sample weights) read the module's mode.
    with kept_modes(net.module_, train=False):
        y_pred = net.infer(torch.as_tensor(np.asarray(Xt_val)))
        return float(net.get_loss(y_pred, y_true, X=Xt_val, training=False))


__all__ = [
    "Fold",
    "SplitFailure",
    "portable",
    "restore",
    "build_fold",
    "end_training",
    "release",
    "run_epoch",
    "score_fold",
    "start_training",
    "validation_loss",
]
