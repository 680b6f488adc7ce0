"""One hyper-step of a candidate: the tuned values of its splits
(:class:`HyperState`), their mean hypergradient, and the outer optimiser's
judgement and step (:func:`hyper_step`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...bilevel import net_hypergradient, sample_batch
from ._exchange import gather_values
from ._fold import validation_loss


@dataclass(frozen=True)
class SplitReport:
    """What a split sends at a hyper-step (one producer: :func:`hyper_step`'s
    loop over the local splits; one reader: the same function, after the
    exchange).

    Attributes
    ----------
    status : float
        1 when its hypergradient was computed, -1 when it diverged, 0 when
        the split no longer trains.
    loss : float
        Its whole validation part's loss, measured before the step.
    solver_iter : float
        Iterations of the linear solve.
    own_square : float
        Squared norm of its hypergradient of the per-split entries.
    shared_grads : tuple of torch.Tensor
        Its hypergradient of each shared entry (zeros when not computed).
    """

    status: float
    loss: float
    solver_iter: float
    own_square: float
    shared_grads: tuple


@dataclass(frozen=True)
class StepCheck:
    """What a split sends after an accepted step: whether its new values are
    finite, and which entries hit a bound (1.0 per entry, in entry order)."""

    not_finite: float
    hits: tuple


class HyperState:
    """Raw (unconstrained) values of the tuned entries.

    A shared entry has one raw tensor, moved by the splits' mean
    hypergradient; a ``per_fold`` entry has one per split (only the splits
    that live in this process).
    """

    def __init__(self, entries, starts, folds, shared_sizes):
        self.entries = entries
        self.outer = None  # the outer optimiser's state, once training starts
        self.raw = []
        for entry, size in zip(entries, shared_sizes):
            start = starts[entry.name]
            if entry.per_fold:
                self.raw.append(
                    {
                        f.index: self._tensor(
                            entry, start, entry.size(f.net, len(f.train))
                        )
                        for f in folds
                        if f.error is None
                    }
                )
            else:
                self.raw.append(self._tensor(entry, start, int(size)))

    @staticmethod
    def _tensor(entry, value, size):
        raw = torch.as_tensor(entry.real.to_raw(value), dtype=torch.float64)
        return raw.reshape(1).expand(size).clone().requires_grad_(True)

    def tensors(self) -> list:
        """Every distinct raw tensor (what the optimiser updates)."""
        out = []
        for entry, raw in zip(self.entries, self.raw):
            out.extend(raw.values() if entry.per_fold else [raw])
        return out

    def bounds(self) -> list:
        """Raw bounds of every distinct raw tensor, in :meth:`tensors` order."""
        return [e.real.raw_bounds() for e in self.owners(entries=True)]

    def owners(self, entries=False) -> list:
        """The entry (or its name) of every distinct raw tensor."""
        out = []
        for entry, raw in zip(self.entries, self.raw):
            out.extend([entry] * (len(raw) if entry.per_fold else 1))
        return out if entries else [e.name for e in out]

    def for_fold(self, index) -> list:
        """The raw tensor each entry uses on split ``index``."""
        return [
            raw[index] if entry.per_fold else raw
            for entry, raw in zip(self.entries, self.raw)
        ]

    def shared(self) -> list:
        """The raw tensors of the shared entries."""
        return [r for e, r in zip(self.entries, self.raw) if not e.per_fold]

    def to_values(self, like):
        """A function mapping a split's raw tensors to values with ``like``'s
        dtype and device (the raw values stay float64 on the CPU)."""

        def values(raw):
            return [
                e.real.from_raw(r).to(device=like.device, dtype=like.dtype)
                for e, r in zip(self.entries, raw)
            ]

        return values

    def apply(self, fold) -> None:
        """Give a split's bindings the current values for training."""
        like = next(fold.net.module_.parameters())
        with torch.no_grad():
            values = self.to_values(like)(self.for_fold(fold.index))
            for binding, value in zip(fold.bindings, values):
                binding.apply(value.detach())


def hyper_step(folds, exchange, state, outer, settings, epoch) -> dict:
    """Measure the validation loss, set the splits' mean hypergradient as
    ``.grad`` and let the outer optimiser judge the values and step.

    Every split sends its status, its whole validation part's loss and its
    hypergradient through ``exchange``; every process then takes the same
    decision. Returns the path record: a step whose hypergradient or update
    is not finite is skipped, one that follows a rise of the measured loss is
    rejected (the values go back to the best ones), and both are recorded,
    never applied.
    """
    sizes = [r.numel() for r in state.shared()]
    reports, grads, reasons = {}, {}, {}
    for fold in folds:
        reports[fold.index] = _report(fold, state, settings, sizes, grads, reasons)
    gathered = gather_values(exchange, reports)
    stats, skip = _mean_hypergradient(gathered, state, grads, reasons, sizes)
    record = {"epoch": epoch, **stats}
    result = outer.update(state.outer, record["val_loss"], skip=skip)
    at_bound = []
    if result["status"] == "accepted":
        bad, at_bound = _after_step(state, result, folds, exchange)
        if bad:
            outer.undo(state.outer)
            result.update(status="skipped", reason="non-finite update")
    record.update(
        hyper_lr=result["hyper_lr"],
        skipped=result["status"] == "skipped",
        rejected=result["status"] == "rejected",
        reason=result["reason"],
        at_bound=at_bound,
    )
    return record


def _report(fold, state, settings, sizes, grads, reasons) -> SplitReport:
    """A local split's report: its validation loss and hypergradient (its
    per-split gradients kept in ``grads``, a divergence's reason in
    ``reasons``)."""
    status, loss, n_iter, own_square, shared = 0.0, math.nan, 0.0, 0.0, []
    if fold.active:
        # Measured before the hypergradient, which may change the module.
        loss = validation_loss(fold)
        try:
            # The hypergradient's forward passes draw dropout masks from the
            # split's stream; forgetting those draws leaves the training as
            # plain training at the same values would run it.
            with fold.rng(keep=False):
                grad, info = _fold_hypergradient(fold, state, settings)
        except FloatingPointError as exc:
            # SolverDivergedError included: a diverged step is skipped. Any
            # other error (a misconfigured solver, out of memory) propagates.
            status, reasons[fold.index] = -1.0, str(exc)
        else:
            status, n_iter = 1.0, info.solve.n_iter
            grads[fold.index] = grad
            pairs = list(zip(state.entries, grad))
            own_square = sum(float((g**2).sum()) for e, g in pairs if e.per_fold)
            shared = [g for e, g in pairs if not e.per_fold]
    if not shared:
        shared = [torch.zeros(n, dtype=torch.float64) for n in sizes]
    return SplitReport(status, loss, float(n_iter), own_square, tuple(shared))


def _mean_hypergradient(gathered, state, grads, reasons, sizes):
    """The splits' mean loss and solver iterations, their mean hypergradient
    set as ``.grad`` (with its norm), and the reason to skip the step (None
    when every split that trains gave a finite hypergradient)."""
    ok = [i for i, v in gathered.items() if v.status > 0]
    failed = [i for i, v in gathered.items() if v.status < 0]
    losses = [v.loss for v in gathered.values() if v.status != 0]
    record = {
        "val_loss": float(np.mean(losses)) if losses else math.nan,
        "solver_iter": (
            float(np.mean([gathered[i].solver_iter for i in ok])) if ok else 0.0
        ),
        "hypergrad_norm": math.nan,
    }
    if failed or not ok:
        skip = "; ".join(
            f"split {i}: {reasons.get(i, 'its hypergradient was not finite')}"
            for i in failed
        )
        return record, skip or "no split is still training"
    means = _mean_shared(gathered, ok, sizes)
    square = sum(gathered[i].own_square for i in ok)
    square += sum(float((mean**2).sum()) for mean in means)
    _set_grads(state, grads, means)
    record["hypergrad_norm"] = norm = math.sqrt(square)
    return record, None if math.isfinite(norm) else "non-finite hypergradient"


def _fold_hypergradient(fold, state, settings):
    data = fold.data
    size = settings.outer.batch_size
    generator = fold.generator
    *train_batch, rows = sample_batch(
        data["Xt_tr"], data["y_tr"], size, generator, return_index=True
    )
    for binding in fold.bindings:
        binding.batch_rows(rows)
    valid_batch = sample_batch(data["Xt_val"], data["y_val"], 2 * size, generator)
    raw = [r.detach().clone().requires_grad_(True) for r in state.for_fold(fold.index)]
    warm = getattr(settings.solver, "warm_start", False)
    grad, info = net_hypergradient(
        fold.net,
        fold.bindings,
        raw,
        state.to_values(next(fold.net.module_.parameters())),
        tuple(train_batch),
        valid_batch,
        settings.solver,
        x0=fold.ihvp if warm else None,
        unroll_batches=_unroll_batches(fold, settings),
    )
    if warm:
        fold.ihvp = [t.detach() for t in info.ihvp]
    return [b.observed(g, rows) for b, g in zip(fold.bindings, grad)], info


def _unroll_batches(fold, settings) -> list:
    """Training minibatches of the net's batch size for the unrolled steps of
    learning-rate entries (none when no entry is unrolled)."""
    if not any(getattr(b, "unrolled", False) for b in fold.bindings):
        return []
    data, net = fold.data, fold.net
    size = net.get_params().get("iterator_train__batch_size", net.batch_size)
    size = len(data["Xt_tr"]) if size in (None, -1) else size
    batches = []
    for _ in range(settings.unroll_steps):
        X, y, rows = sample_batch(
            data["Xt_tr"], data["y_tr"], size, fold.generator, return_index=True
        )
        batches.append((X, y, rows))
    return batches


def _mean_shared(gathered, ok, sizes) -> list:
    """The splits' mean hypergradient of each shared entry."""
    if not sizes:
        return []
    stacked = torch.stack([torch.cat(gathered[i].shared_grads) for i in ok])
    return list(stacked.mean(0).split(sizes))


def _set_grads(state, grads, means) -> None:
    means = iter(means)
    for j, (entry, raw) in enumerate(zip(state.entries, state.raw)):
        if entry.per_fold:
            for index, tensor in raw.items():
                tensor.grad = grads[index][j] if index in grads else None
        else:
            raw.grad = next(means).reshape(raw.shape).clone()


def _after_step(state, result, folds, exchange):
    """Whether any split's new values are not finite; the entries at a bound.

    The shared entries are the same in every process (each applied the same
    mean hypergradient), so the answer is local where every entry is shared;
    the per-split entries live in their splits' processes, and then both
    answers are gathered, so that every process keeps or undoes the step
    alike.
    """
    owners = state.owners()
    hit = {e.name: False for e in state.entries}
    for name, at_bound in zip(owners, result["at_bound"]):
        hit[name] = hit[name] or at_bound
    if not any(e.per_fold for e in state.entries):
        at_bound = sorted(name for name, h in hit.items() if h)
        return not result["finite"], at_bound
    check = StepCheck(
        float(not result["finite"]),
        (
            torch.tensor(
                [float(hit[e.name]) for e in state.entries], dtype=torch.float64
            ),
        ),
    )
    gathered = gather_values(exchange, {f.index: check for f in folds}).values()
    hits = torch.stack([c.hits[0] for c in gathered]).amax(0)
    at_bound = sorted({e.name for e, h in zip(state.entries, hits) if h > 0})
    return any(c.not_finite > 0 for c in gathered), at_bound


__all__ = ["HyperState", "SplitReport", "StepCheck", "hyper_step"]
