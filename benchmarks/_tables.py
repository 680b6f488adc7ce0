"""The tables of benchmarks/report.py for sections 5 to 13, and the helpers
both share (reading a results file, mean ± standard error, a Markdown table).

Every figure is read from a file under ``benchmarks/results/``.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _load(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def _rows(*names):
    return [row for name in names for row in _load(name)["rows"]]


def _score(row):
    return row["accuracy"] if "accuracy" in row else row["r2"]


def _mean_se(values):
    values = list(values)
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0
    return mean, se


def _pm(values, digits=4):
    mean, se = _mean_se(values)
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def _signed(values):
    mean, se = _mean_se(values)
    return f"{mean:+.4f} ± {se:.4f}".replace("-", "−")


def _table(header, lines):
    head = "| " + " | ".join(header) + " |"
    rule = "|---" * len(header) + "|"
    body = ["| " + " | ".join(str(cell) for cell in line) + " |" for line in lines]
    return "\n".join([head, rule, *body])


def _seeds(rows):
    seeds = sorted({r["seed"] for r in rows})
    return f"{seeds[0]}–{seeds[-1]}"


# Dropout: bench_dropout.py ------------------------------------------------


def dropout_table(names=("dropout_variants_seeds0", "dropout_variants_seeds6")):
    """Dropout alone against a 7-rate grid, per 6-seed set and over all."""
    sets = [_load(n)["rows"] for n in names]
    everything = [r for rows in sets for r in rows]
    lines = []
    for dataset in ("digits300_noise20", "digits_noise20"):
        for search in dict.fromkeys(r["search"] for r in everything):
            cells = [dataset, search.replace("HypergradSearchCV, ", "")]
            for rows in [*sets, everything]:
                mine = [
                    r["test_accuracy"]
                    for r in rows
                    if r["dataset"] == dataset and r["search"] == search
                ]
                cells.append(_pm(mine) if len(mine) == len(_seed_set(rows)) else "")
            seconds = [
                r["seconds"]
                for r in everything
                if r["dataset"] == dataset and r["search"] == search
            ]
            lines.append([*cells, f"{statistics.median(seconds):.1f}"])
    labels = [f"seeds {_seeds(rows)}" for rows in sets]
    return _table(["dataset", "search", *labels, "all", "median s"], lines)


def dropout_solvers_table(name="dropout"):
    """Dropout alone: the rate each solver reaches (seeds 3-5, no rescoring)."""
    rows = _load(name)["rows"]
    lines = []
    for dataset in ("digits300_noise20", "digits_noise20"):
        for search in dict.fromkeys(r["search"] for r in rows):
            mine = [r for r in rows if (r["dataset"], r["search"]) == (dataset, search)]
            lines.append(
                [
                    dataset,
                    search.replace("HypergradSearchCV, ", ""),
                    _pm((r["value"] for r in mine), 2),
                    _pm(r["test_accuracy"] for r in mine),
                ]
            )
    return _table(["dataset", "search", "rate", "test accuracy"], lines)


def _seed_set(rows):
    return {r["seed"] for r in rows}


# Racing: bench_halving.py -------------------------------------------------


def halving_table(names=("halving_seeds3", "halving_seeds6")):
    """Nine widths raced against the nine trained in full, paired per seed."""
    full, raced = (
        "nine in full (HypergradSearchCV)",
        "nine raced (HalvingHypergradSearchCV)",
    )
    lines = []
    for name in names:
        rows = _load(name)["rows"]
        for dataset in dict.fromkeys(r["dataset"] for r in rows):
            by = {}
            for r in rows:
                if r["dataset"] == dataset:
                    by.setdefault(r["seed"], {})[r["search"]] = r
            seeds = sorted(by)
            a = [by[s][full]["score"] for s in seeds]
            b = [by[s][raced]["score"] for s in seeds]
            time = statistics.median(
                by[s][raced]["seconds"] / by[s][full]["seconds"] for s in seeds
            )
            same = sum(by[s][raced]["width"] == by[s][full]["width"] for s in seeds)
            lines.append(
                [
                    dataset,
                    _seeds(rows),
                    _pm(a),
                    _pm(b),
                    _signed([y - x for x, y in zip(a, b, strict=True)]),
                    f"{time:.2f}",
                    f"{same} of {len(seeds)}",
                ]
            )
    header = ["dataset", "seeds", "in full", "raced", "raced − in full"]
    return _table([*header, "time, raced / in full", "same width picked"], lines)


# Many hyperparameters: bench_overfit.py -----------------------------------


def overfit_table(name="overfit"):
    """CV score / test score per decay granularity and validation share."""
    data = _load(name)
    rows = data["rows"]
    lines = []
    for dataset in data["args"]["datasets"]:
        for space in data["args"]["spaces"]:
            cells = [dataset, space]
            for cv in data["args"]["cvs"]:
                mine = [
                    r
                    for r in rows
                    if (r["dataset"], r["space"], r["cv"]) == (dataset, space, cv)
                ]
                cv_score = statistics.fmean(r["cv_score"] for r in mine)
                cells.append(f"{cv_score:.4f} / {_pm(r['test_score'] for r in mine)}")
            lines.append(cells)
    shares = [f"cv={cv}: CV / test" for cv in data["args"]["cvs"]]
    return _table(["data", "decay", *shares], lines)


def overfit_remedies_table(name="overfit_remedies"):
    """Per-weight decay under settings that might reduce its overfitting."""
    rows = _load(name)["rows"]
    lines = []
    for remedy in dict.fromkeys(r["remedy"] for r in rows):
        mine = [r for r in rows if r["remedy"] == remedy]
        lines.append(
            [
                remedy,
                mine[0]["validation_rows"],
                _pm(r["cv_score"] for r in mine),
                _pm(r["test_score"] for r in mine),
            ]
        )
    return _table(["setting", "validation rows", "CV score", "test score"], lines)


# Distillation, learning rates, per-example weights, clusters --------------


def distill_table(name="distill"):
    """Fresh nets trained on k rows per class, two trainings."""
    data = _load(name)
    out = []
    for k, sets in data["results"].items():
        lines = []
        for label, result in sets.items():
            step = result["gd_lr"]
            step = (
                f"{statistics.median(step):.2f} (learned)"
                if isinstance(step, list)
                else f"{step:g}"
            )
            lines.append(
                [
                    label,
                    _pm(result["gd"]),
                    f"{statistics.median(result['gd']):.4f}",
                    step,
                    _pm(result["adam"]),
                    f"{statistics.median(result['adam']):.4f}",
                ]
            )
        header = ["set", "gd", "gd: median", "gd step", "adam", "adam: median"]
        out.append(f"k = {k}:\n\n" + _table(header, lines))
    everything = statistics.fmean(data["all_rows_accuracy"])
    return (
        "\n\n".join(out)
        + f"\n\nA net trained on all the training rows: {everything:.4f}."
    )


def lr_table(name="lr"):
    """Learning rates tuned by unrolling against a 16-rate grid."""
    rows = _load(name)["rows"]
    lines = []
    for k in sorted({r["unroll_steps"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["unroll_steps"] == k), key=lambda r: r["seed"]
        )
        lines.append(
            [
                k,
                ", ".join(f"{r['lr_ratio']:.2f}" for r in mine),
                ", ".join(f"{r['loss_excess']:+.1%}" for r in mine),
                f"{statistics.median(r['loss_excess'] for r in mine):+.1%}",
                f"{statistics.median(r['curve_excess'] for r in mine):+.1%}",
                f"{statistics.median(r['time_ratio'] for r in mine):.2f}",
            ]
        )
    header = [
        "K",
        "tuned / grid's best rate, per seed",
        "loss vs grid's best, per seed",
    ]
    return _table(
        [*header, "median", "on the grid's curve, median", "time / grid"], lines
    )


def lr_train3_table():
    """The same, every loss the mean of three trainings."""
    return lr_table("lr_train3")


def lr_cost_table(name="lr"):
    """One hyper-step's time and autograd graph against the unrolled steps."""
    cost = _load(name)["cost"]
    lines = [
        [
            "weight decay, implicit (default solver)"
            if r["unroll_steps"] == 0
            else f"learning rate, K = {r['unroll_steps']}",
            f"{r['seconds'] * 1000:.1f}",
            f"{r['saved_bytes'] / 2**20:.1f}",
        ]
        for r in cost["rows"]
    ]
    return _table(["hyper-step", "ms", "autograd graph MiB"], lines) + (
        f"\n\nOne training epoch on the same data: "
        f"{cost['epoch_seconds'] * 1000:.0f} ms."
    )


def noisy_labels_table(name="noisy_labels"):
    """Per-example weights against a decay grid, the untuned net and an oracle."""

    def cell(pair):
        return "" if pair is None else f"{pair[0]:.4f} ± {pair[1]:.4f}"

    lines = [
        [
            label,
            cell(s["test_accuracy"]),
            cell(s["auc"]),
            cell(s["cv_score"]),
            f"{s['median_time_s']:.1f}",
        ]
        for label, s in _load(name)["summary"].items()
    ]
    header = ["approach", "test accuracy", "ROC AUC of the weights", "CV score"]
    return _table([*header, "median s"], lines)


def cluster_table(name="cluster"):
    """A candidate's splits on two workers against ``n_jobs=1``."""
    lines = [
        [r["run"], f"{r['median_s']:.2f}", f"{r['ratio']:.2f}"]
        for r in _load(name)["rows"]
    ]
    return _table(["run", "median s", "× n_jobs=1"], lines)


# Defaults: bench_defaults.py ----------------------------------------------

_SWEEP = ("digits_noise20", "digits300_noise20", "synthetic5000", "diabetes")


def _sweep(configs, name="defaults"):
    rows = _load(name)["rows"]
    lines = []
    for config in configs:
        cells = [config]
        for dataset in _SWEEP:
            mine = [
                r["score"]
                for r in rows
                if (r["config"], r["dataset"]) == (config, dataset)
            ]
            cells.append(_pm(mine))
        lines.append(cells)
    return _table(["setting", *_SWEEP], lines)


def defaults_optimiser_table():
    """The outer optimiser's sweep on seeds 0-2."""
    return _sweep(
        (
            "lr0.2 (old default)",
            "lr0.5",
            "lr1.0",
            "lr0.5 cosine",
            "lr1.0 cosine",
            "lr0.5 cosine b(0,.9)",
            "lr1.0 cosine b(0,.9)",
            "lr0.5 cosine b(.5,.9)",
            "lr0.5 warmup1",
            "lr0.5 avg-last-step",
        )
    )


def defaults_solver_table():
    """The Gauss-Newton solver's size on seeds 0-2."""
    return _sweep(
        (
            "gn10 b256 (default)",
            "gn5 b256",
            "gn5 b128",
            "gn3 b128",
            "gn5 b128 warm",
            "gn5 b128 interval2 lr1.0",
            "gn10 b128 interval2 lr1.0",
        )
    )


# The hypergradient's accuracy: bench_accuracy.py --------------------------

# (the problem's name in the file starts with, shown as, method, terms, damping)
_ACCURACY = (
    ("ridge, per-feature", "ridge, 20 per-feature λ", "cg", "5", 0.0),
    ("ridge, per-feature", "ridge, 20 per-feature λ", "cg", "10", 0.0),
    ("ridge, per-feature", "ridge, 20 per-feature λ", "neumann", "20", 0.0),
    ("ridge, ill-conditioned", "ridge, ill-conditioned", "cg", "20", 0.0),
    ("ridge, ill-conditioned", "ridge, ill-conditioned", "cg", "50", 0.0),
    ("ridge, ill-conditioned", "ridge, ill-conditioned", "neumann", "50", 0.0),
    ("MLP", "MLP, per-layer λ", "identity", "0", 0.0),
    ("MLP", "MLP, per-layer λ", "neumann", "50", 0.0),
    ("MLP", "MLP, per-layer λ", "cg", "10", 0.0),
    ("MLP", "MLP, per-layer λ", "cg", "10", 0.001),
    ("MLP", "MLP, per-layer λ", "cg", "50", 0.0),
)


def accuracy_table(name="accuracy"):
    """Relative error and cosine to the exact hypergradient (median of seeds)."""
    problems = _load(name)["problems"]
    lines = []
    for prefix, shown, method, terms, damping in _ACCURACY:
        problem = next(p for p in problems if p.startswith(prefix))
        mine = [
            r
            for r in problems[problem]["rows"]
            if (r["method"], str(r["terms"]), r["damping"]) == (method, terms, damping)
        ]
        lines.append(
            [
                shown,
                method if method == "identity" else f"{method}, {terms}",
                f"{damping:g}",
                f"{statistics.median(r['rel_error'] for r in mine):.1e}",
                f"{statistics.median(r['cosine'] for r in mine):.5f}",
            ]
        )
    header = ["problem", "method, terms", "damping", "relative error", "cosine"]
    return _table(header, lines)


# Scale and convolutional nets: bench_scale.py, bench_cnn.py ------------------


def scale_table(names=("scale_mlp", "scale_cnn")):
    """Whole search against plain training and the grid, memory, hyper-step share."""
    found = [n for n in names if (RESULTS / f"{n}.json").exists()]
    rows = _rows(*found)
    lines = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        mine = [r for r in rows if r["problem"] == problem]

        def mean(kind, key, mine=mine):
            picked = [r[key] for r in mine if r["measurement"] == kind]
            return statistics.fmean(picked) if picked else math.nan

        plain, grid = mean("plain", "seconds"), mean("grid", "seconds")
        plain_mb = mean("plain", "peak_above_baseline_mb")
        for kind in dict.fromkeys(r["measurement"] for r in mine):
            first = next(r for r in mine if r["measurement"] == kind)
            seconds = mean(kind, "seconds")
            above = mean(kind, "peak_above_baseline_mb")
            share = (
                mean(kind, "hyper_step_share") if "hyper_step_share" in first else None
            )
            lines.append(
                [
                    problem,
                    kind + (" (estimate)" if "estimate" in first else ""),
                    f"{seconds:.0f}",
                    f"{seconds / plain:.2f}×",
                    f"{seconds / grid:.3f}×",
                    f"{mean(kind, 'test_accuracy'):.3f}",
                    f"{above:.0f}",
                    f"{above / plain_mb:.2f}×",
                    "" if share is None else f"{share:.0%}",
                ]
            )
    header = [
        "problem",
        "measurement",
        "seconds",
        "/ plain",
        "/ grid",
        "test accuracy",
        "peak MB above baseline",
        "memory / plain",
        "hyper-step share",
    ]
    return _table(header, lines)


def cnn_table(name="cnn"):
    """Test accuracy (mean ± SE over seeds) and the median time over the grid's."""
    rows = _load(name)["rows"]
    grid = {r["seed"]: r["seconds"] for r in rows if r["search"] == "GridSearchCV"}
    lines = []
    for search in dict.fromkeys(r["search"] for r in rows):
        mine = [r for r in rows if r["search"] == search]
        ratio = statistics.median(r["seconds"] / grid[r["seed"]] for r in mine)
        lines.append(
            [
                search,
                _pm((r["test_accuracy"] for r in mine), 3),
                f"{statistics.median(r['seconds'] for r in mine):.0f}",
                f"{ratio:.2f}×",
            ]
        )
    header = ["method", "test accuracy", "seconds (median)", "time / grid (median)"]
    return _table(header, lines)
