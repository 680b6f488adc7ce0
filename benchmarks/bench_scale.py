"""Scale: HypergradSearchCV on 50 000 rows, a 3x512 MLP and a CNN.

Two generated problems (nothing downloaded), ``--rows`` training rows each
plus a fifth as many held-out test rows:

- ``mlp``: ``make_classification`` with 200 features (40 informative, 20
  redundant), 10 classes, 5% flipped labels; an MLP of three hidden layers of
  512 units with dropout (``_common.MLP``), Adam lr 1e-3, batch 128;
- ``cnn``: 16x16 one-channel images of 10 classes (a smooth random template
  per class, shifted by up to 2 pixels, plus Gaussian noise); the CNN of
  ``bench_cnn.ImageCNN`` (two Conv2d + BatchNorm2d blocks, dropout), Adam
  lr 3e-3, batch 128.

Per problem and seed, each measurement runs in a subprocess of its own (its
wall time and peak memory are its own):

- ``plain``: ``GridSearchCV`` with one candidate, the search's starting
  point (decay 3.2e-4, rate 0.3), ``cv=3``: the same splits trained once
  each, and the refit;
- ``search``: ``HypergradSearchCV`` (defaults, ``cv=3``) tuning the weight
  decay (log range 1e-6..1e-1) and the dropout rate (0..0.6) in one
  candidate; ``--sampled N`` adds N sampled learning rates (N candidates);
- ``search, rescore=False``: the same without the constant trainings that
  give the reported score;
- ``grid``: a 6x3 ``GridSearchCV`` (6 decays x 3 rates 0, 0.25, 0.5).
  ``--grid-candidates k`` (k < 18) times k of its 18 candidates (spread over
  the grid) with the refit and reports an **estimate** of the whole grid:
  ``(time - refit_time_) / k * 18 + refit_time_``, labelled as such.

Peak memory is the fit's own: on Linux the subprocess' high-water mark
(``VmHWM``, CPU tensors live in resident memory) is reset when the fit starts
and read when it ends, minus the resident memory at the start (imports and
the data count for no one); the table gives both. Elsewhere ``ru_maxrss``
stands in (and includes any earlier peak). The hyper-steps' time is measured
inside the search by wrapping the search's hyper-step function (``n_jobs=1``),
and given as a share of the search's wall time. Targets (issue 28): search
<= 1.2x plain, <= 0.1x the grid, peak memory <= 1.5x plain's.

Run: ``python benchmarks/bench_scale.py`` (50 000 rows, 10 epochs, 1 seed,
the grid estimated from 3 candidates) or ``--quick`` (1000 rows, 2 epochs,
the grid from 2 candidates: a smoke run). ``--problems mlp`` runs one
problem, ``--grid-candidates 18`` the whole grid. Saves
``benchmarks/results/scale[_quick].json``. Run one benchmark at a time, alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
DECAY = (1e-6, 1e-1)
RATE = (0.0, 0.6)
START = {
    "optimizer__weight_decay": float(np.sqrt(DECAY[0] * DECAY[1])),
    "module__dropout": 0.3,
}
GRID = {
    "optimizer__weight_decay": np.geomspace(*DECAY, 6).tolist(),
    "module__dropout": [0.0, 0.25, 0.5],
}
MEASUREMENTS = ("plain", "search", "search, rescore=False", "grid")


def make_problem(name, rows, seed):
    """``(X_train, X_test, y_train, y_test)``, float32 / int64."""
    n = rows + rows // 5
    if name == "mlp":
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=n,
            n_features=200,
            n_informative=40,
            n_redundant=20,
            n_classes=10,
            flip_y=0.05,
            random_state=seed,
        )
    else:
        X, y = _images(n, seed)
    X, y = X.astype(np.float32), y.astype(np.int64)
    return X[:rows], X[rows:], y[:rows], y[rows:]


def _images(n, seed, size=16, n_classes=10):
    rng = np.random.default_rng(seed)
    # Smooth templates: coarse noise upsampled 4x, then a 3x3 box blur.
    coarse = rng.normal(size=(n_classes, size // 4 + 1, size // 4 + 1))
    templates = coarse.repeat(4, 1).repeat(4, 2)[:, : size + 4, : size + 4]
    kernel = np.ones(3) / 3
    for axis in (1, 2):
        templates = np.apply_along_axis(np.convolve, axis, templates, kernel, "same")
    y = rng.integers(n_classes, size=n)
    shifts = rng.integers(0, 5, size=(n, 2))
    X = np.empty((n, 1, size, size))
    for i, (label, (dx, dy)) in enumerate(zip(y, shifts)):
        X[i, 0] = templates[label, dx : dx + size, dy : dy + size]
    X += rng.normal(scale=1.0, size=X.shape)
    return X, y


def make_net(name, epochs):
    """The problem's skorch classifier."""
    from skorch import NeuralNetClassifier
    from torch import nn

    if name == "cnn":
        from bench_cnn import cnn_net

        return cnn_net(16, epochs, channels=8, batch_size=128)
    from _common import MLP

    return NeuralNetClassifier(
        MLP,
        module__n_features=200,
        module__n_classes=10,
        module__hidden=512,
        module__n_hidden=3,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=128,
        train_split=None,
        verbose=0,
    )


class HyperStepTimer:
    """Adds up the wall time of the search's hyper-steps (``n_jobs=1``)."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0
        from skhypergrad.model_selection._training import _outer_loop

        self.module = _outer_loop
        self.original = getattr(_outer_loop, "hyper_step", None)

    def __enter__(self):
        if self.original is None:  # the search's internals moved: say so
            self.seconds = float("nan")
            return self
        original = self.original

        def timed_step(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        self.module.hyper_step = timed_step
        return self

    def __exit__(self, *exc):
        if self.original is not None:
            self.module.hyper_step = self.original


class PeakMemory:
    """The process' resident memory when the fit starts and its peak during
    the fit (Linux: the high-water mark is reset at the start through
    ``/proc/self/clear_refs``, so building the data counts for no one;
    elsewhere ``ru_maxrss``, which also holds any earlier peak)."""

    def __enter__(self):
        import gc

        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM reset at the fit's start"
        except OSError:
            self.method = "ru_maxrss (includes earlier peaks)"
        self.start_mb = _status_mb("VmRSS")
        return self

    def __exit__(self, *exc):
        if self.method.startswith("VmHWM"):
            self.peak_mb = _status_mb("VmHWM")
        else:
            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field):
    """A ``/proc/self/status`` field in MB (``ru_maxrss`` where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def grid_subset(k):
    """``k`` of the grid's 18 candidates, spread over it (a list of grids)."""
    from sklearn.model_selection import ParameterGrid

    candidates = list(ParameterGrid(GRID))
    chosen = np.linspace(0, len(candidates) - 1, k).round().astype(int)
    return [{key: [value] for key, value in candidates[i].items()} for i in chosen]


def measure(spec):
    """One measurement, in this (sub)process: a dict of figures."""
    from _common import warm_up
    from scipy.stats import loguniform, uniform
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from skhypergrad import HypergradSearchCV, Sampled

    torch.set_num_threads(spec["threads"])
    warm_up()
    X, X_te, y, y_te = make_problem(spec["problem"], spec["rows"], spec["seed"])
    net = make_net(spec["problem"], spec["epochs"])
    cv = StratifiedKFold(3, shuffle=True, random_state=spec["seed"])
    kind = spec["measurement"]
    out = {}
    if kind == "plain":
        est = GridSearchCV(net, {k: [v] for k, v in START.items()}, cv=cv)
    elif kind == "grid":
        k = spec["grid_candidates"]
        grid = grid_subset(k) if k < 18 else GRID
        est = GridSearchCV(net, grid, cv=cv)
    else:
        space = {
            "optimizer__weight_decay": loguniform(*DECAY),
            "module__dropout": uniform(RATE[0], RATE[1] - RATE[0]),
        }
        extra = {}
        if spec["sampled"]:
            space["lr"] = Sampled(loguniform(net.lr / 3, net.lr * 3))
            extra["n_iter"] = spec["sampled"]
        rescore = kind == "search"
        est = HypergradSearchCV(
            net, space, cv=cv, rescore=rescore, random_state=spec["seed"], **extra
        )
    peak = PeakMemory()
    timer = HyperStepTimer() if kind.startswith("search") else None
    with warnings.catch_warnings(), peak:
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        if timer is None:
            est.fit(X, y)
        else:
            with timer:
                est.fit(X, y)
        seconds = time.perf_counter() - start
    out.update(
        seconds=seconds,
        test_accuracy=float(est.score(X_te, y_te)),
        baseline_mb=peak.start_mb,
        peak_mb=peak.peak_mb,
        peak_above_baseline_mb=peak.peak_mb - peak.start_mb,
        memory_method=peak.method,
        refit_seconds=float(getattr(est, "refit_time_", float("nan"))),
    )
    if kind == "grid" and spec["grid_candidates"] < 18:
        k = spec["grid_candidates"]
        out["measured_seconds"] = seconds
        out["seconds"] = (seconds - est.refit_time_) / k * 18 + est.refit_time_
        out["estimate"] = (
            f"estimated from {k} of the 18 candidates: "
            f"(time - refit_time_) / {k} * 18 + refit_time_"
        )
    if timer is not None:
        out.update(
            hyper_step_seconds=timer.seconds,
            hyper_steps=timer.calls,
            hyper_step_share=timer.seconds / seconds,
        )
    return out


def run_child(spec):
    """:func:`measure` in a fresh Python process; its dict."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        json.dumps(spec),
    ]
    done = subprocess.run(
        command, cwd=HERE, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows):
    """Markdown: seconds, ratios to plain and grid, memory, hyper-step share."""
    lines = [
        "| problem | measurement | seconds | / plain | / grid | test acc. "
        "| peak MB (above baseline) | memory / plain | hyper-step share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for problem in dict.fromkeys(r["problem"] for r in rows):
        sub = [r for r in rows if r["problem"] == problem]

        def mean(kind, key, sub=sub):
            return float(np.mean([r[key] for r in sub if r["measurement"] == kind]))

        plain, grid = mean("plain", "seconds"), mean("grid", "seconds")
        plain_mb = mean("plain", "peak_above_baseline_mb")
        for kind in MEASUREMENTS:
            group = [r for r in sub if r["measurement"] == kind]
            if not group:
                continue
            seconds = mean(kind, "seconds")
            above = mean(kind, "peak_above_baseline_mb")
            label = kind + (" (estimate)" if "estimate" in group[0] else "")
            share = (
                f"{mean(kind, 'hyper_step_share'):.0%}"
                if "hyper_step_share" in group[0]
                else ""
            )
            lines.append(
                f"| {problem} | {label} | {seconds:.1f} | {seconds / plain:.2f}x | "
                f"{seconds / grid:.3f}x | {mean(kind, 'test_accuracy'):.3f} | "
                f"{mean(kind, 'peak_mb'):.0f} ({above:.0f}) | "
                f"{above / plain_mb if plain_mb > 0 else float('nan'):.2f}x "
                f"| {share} |"
            )
    notes = {r["estimate"] for r in rows if "estimate" in r}
    return "\n".join(lines + [f"\ngrid: {n}" for n in sorted(notes)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--rows", type=int, default=None, help="default 50000")
    parser.add_argument("--epochs", type=int, default=None, help="default 10")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--problems", nargs="+", default=["mlp", "cnn"])
    parser.add_argument(
        "--grid-candidates", type=int, default=None, help="<18: estimate"
    )
    parser.add_argument("--sampled", type=int, default=0, help="sampled lr candidates")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--tag", default="", help="results/scale<tag>.json (e.g. _mlp per problem)"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(json.loads(args.child))))
        return
    quick = args.quick
    rows_n = args.rows or (1000 if quick else 50_000)
    epochs = args.epochs or (2 if quick else 10)
    k = args.grid_candidates or (2 if quick else 3)
    rows = []
    for problem in args.problems:
        for seed in range(args.seeds):
            for kind in MEASUREMENTS:
                spec = {
                    "problem": problem,
                    "seed": seed,
                    "measurement": kind,
                    "rows": rows_n,
                    "epochs": epochs,
                    "grid_candidates": min(k, 18),
                    "sampled": args.sampled,
                    "threads": args.threads,
                }
                row = {**spec, **run_child(spec)}
                rows.append(row)
                print(
                    f"  {problem} seed {seed} {kind:<22} {row['seconds']:8.1f}s "
                    f"acc {row['test_accuracy']:.3f} peak {row['peak_mb']:.0f} MB",
                    flush=True,
                )
    from _common import save

    settings = {"rows": rows_n, "epochs": epochs, "grid_candidates": k, **vars(args)}
    print(
        save(
            f"scale{args.tag}" + ("_quick" if quick else ""),
            {"settings": settings, "rows": rows},
        )
    )
    print(table(rows))


if __name__ == "__main__":
    main()
