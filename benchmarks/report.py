"""Tables of docs/benchmarks.md and README.md, written from the saved results.

Run: ``python benchmarks/report.py [name ...]`` prints the tables named (all by
default); ``python benchmarks/report.py --write`` rewrites every table in place
on both pages. On a page, a table written here sits between
``<!-- report: <name> -->`` and ``<!-- /report -->``;
``tests/test_benchmarks_report.py`` fails when a page and the results differ.

Every figure is read from a file under ``benchmarks/results/``; nothing here is
typed in. Scores are mean ± standard error over seeds unless a table says
otherwise; time ratios are medians over seeds.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # _tables, beside this script

import _tables  # noqa: E402  (the tables of sections 5-13)
from _tables import (  # noqa: E402
    _load,
    _pm,
    _score,
    _table,
)

PAGES = (ROOT / "docs" / "benchmarks.md", ROOT / "README.md")


_DATASETS = (
    "digits_noise20",
    "digits300_noise20",
    "breast_cancer",
    "synthetic5000",
    "diabetes",
)
_NAMES = {
    "digits_noise20": "digits, 20% noisy labels",
    "digits300_noise20": "300 digits, 20% noisy",
    "breast_cancer": "breast cancer",
    "synthetic5000": "synthetic, 5000 rows",
    "diabetes": "diabetes (R²)",
}


# The suite: bench_search.py ------------------------------------------------


def _suite(name, searches):
    rows = _load(name)["rows"]
    lines = []
    for search in searches:
        cells = [search]
        for dataset in _DATASETS:
            mine = [
                r for r in rows if r["dataset"] == dataset and r["search"] == search
            ]
            grid = statistics.median(r["time_ratio_vs_grid"] for r in mine)
            plain = statistics.median(r["time_ratio_vs_plain"] for r in mine)
            cells.append(f"{_pm(map(_score, mine))} ({grid:.2f}, {plain:.2f})")
        lines.append(cells)
    return _table(["search", *_DATASETS], lines)


def suite_table(name="search_decisions_seeds9"):
    """Today's suite: test score and median time ratios (grid, plain)."""
    return _suite(
        name,
        (
            "untuned",
            "plain CV training",
            "GridSearchCV",
            "HypergradSearchCV",
            "Hypergrad one training",
        ),
    )


def peers_table(name="search_defaults_seeds6"):
    """The suite with every peer (seeds 6-8)."""
    return _suite(
        name,
        (
            "untuned",
            "plain CV training",
            "GridSearchCV",
            "RandomizedSearchCV",
            "HalvingRandomSearchCV (epochs)",
            "OptunaSearchCV (TPE)",
            "HypergradSearchCV",
            "Hypergrad one training",
        ),
    )


def readme_table(name="search_decisions_seeds9"):
    """README's figures: mean test score, median time over grid and plain."""
    rows = _load(name)["rows"]
    lines = []
    for dataset in _DATASETS:
        by = {}
        for r in rows:
            if r["dataset"] == dataset:
                by.setdefault(r["search"], []).append(r)
        mean = {k: statistics.fmean(map(_score, v)) for k, v in by.items()}
        mine = by["HypergradSearchCV"]
        grid = statistics.median(r["time_ratio_vs_grid"] for r in mine)
        plain = statistics.median(r["time_ratio_vs_plain"] for r in mine)
        lines.append(
            [
                _NAMES[dataset],
                f"{mean['untuned']:.3f}",
                f"{mean['GridSearchCV']:.3f}",
                f"{mean['HypergradSearchCV']:.3f}",
                f"{grid:.2f}×",
                f"{plain:.1f}×",
            ]
        )
    header = ["dataset", "untuned", "GridSearchCV", "HypergradSearchCV"]
    return _table([*header, "time / grid", "time / plain training"], lines)


def paired_table(name="search_decisions_seeds9"):
    """Per seed: the search's test score minus the untuned net's, and the
    values it reported."""
    rows = _load(name)["rows"]
    lines = []
    for dataset in _DATASETS:
        for seed in sorted({r["seed"] for r in rows if r["dataset"] == dataset}):
            by = {
                r["search"]: r
                for r in rows
                if r["dataset"] == dataset and r["seed"] == seed
            }
            search, untuned = by["HypergradSearchCV"], by["untuned"]
            params = search["best_params"]
            grid = by["GridSearchCV"]["best_params"]
            lines.append(
                [
                    dataset,
                    seed,
                    f"{_score(untuned):.4f}",
                    f"{_score(search):.4f}",
                    f"{_score(search) - _score(untuned):+.4f}",
                    f"{params.get('net__optimizer__weight_decay', math.nan):.2g}",
                    f"{params.get('net__module__dropout', math.nan):.2f}",
                    f"{grid.get('net__optimizer__weight_decay', math.nan):.2g}",
                ]
            )
    header = ["dataset", "seed", "untuned", "HypergradSearchCV", "difference"]
    return _table(
        [*header, "reported decay", "reported dropout", "grid's decay"], lines
    )


# Never worse: bench_never_worse.py, bench_single_fit.py --------------------


def never_worse_table(name="never_worse_seeds0"):
    """The two cases over seeds (benchmarks/bench_never_worse.py)."""
    lines = []
    for r in _load(name)["rows"]:
        figure = (
            f"test accuracy {r['test']:.3f}"
            if "test" in r
            else f"{r['ratio']:.4f}× the optimum's CV MSE, "
            f"{r['rejected']:.0%} of steps rejected"
        )
        lines.append(
            [
                r["case"],
                r["seed"],
                r["what"],
                figure,
                f"{r['seconds']:.1f}",
                r.get("reported", ""),
            ]
        )
    return _table(["case", "seed", "what", "figure", "seconds", "reported"], lines)


def single_fit_table(name="single_fit_seeds3"):
    """HypergradClassifier / Regressor against the untuned net on all rows."""
    rows = _load(name)["rows"]
    fits = (
        "untuned, all rows",
        "single fit",
        "single fit, finished on all rows",
        "single fit, 5% held out",
    )
    lines = []
    for dataset in _DATASETS:
        by = {
            f: [r for r in rows if r["dataset"] == dataset and r["fit"] == f]
            for f in fits
        }
        time = statistics.median(r["seconds"] for r in by["single fit"])
        time /= statistics.median(r["seconds"] for r in by["untuned, all rows"])
        scores = [_pm(r["score"] for r in by[f]) for f in fits]
        lines.append([dataset, *scores[:2], f"{time:.2f}", *scores[2:]])
    return _table(
        ["dataset", *fits[:2], "× untuned time", "finished on all rows", "5% held out"],
        lines,
    )


# What the score means: bench_score_gap.py ----------------------------------


def score_gap_table(name="score_gap"):
    """``best_score_`` against ``cross_val_score`` of ``best_params_``."""
    lines = [
        [
            r["dataset"],
            r["seed"],
            f"{r['best_score']:.3f}",
            f"{r['constants_cv']:.3f} ± {r['constants_cv_std']:.3f}",
            f"{r['gap']:+.3f}",
            f"{r['test_score']:.3f}",
            f"{r['weight_decay']:.2g}",
            f"{r['dropout']:.2f}",
            "tuned" if r["tuned_values_kept"] else "start",
        ]
        for r in sorted(_load(name)["rows"], key=lambda r: r["seed"])
    ]
    gaps = sorted(abs(r["gap"]) for r in _load(name)["rows"])
    header = ["dataset", "seed", "best_score_", "cross_val_score (± seed std)"]
    return (
        _table([*header, "gap", "test", "decay", "dropout", "reported"], lines)
        + f"\n\nLargest |gap| {gaps[-1]:.3f}, median {statistics.median(gaps):.3f}"
        f" over {len(gaps)} runs."
    )


# Overhead: bench_overhead.py, bench_hyperstep.py ---------------------------


def overhead_table(name="overhead"):
    """Median seconds per net and search, and the ratio to plain training."""
    rows = _load(name)["rows"]
    lines = []
    for net in ("10k", "100k", "1M"):
        mine = [r for r in rows if r["net"] == net]
        searches = list(dict.fromkeys(r["search"] for r in mine))
        median = {
            s: statistics.median(r["seconds"] for r in mine if r["search"] == s)
            for s in searches
        }
        for s in searches:
            steps = [
                r["hypersteps"] for r in mine if r["search"] == s and "hypersteps" in r
            ]
            lines.append(
                [
                    net,
                    s,
                    f"{median[s]:.2f}",
                    f"{median[s] / median['plain']:.2f}×",
                    steps[0] if steps else "",
                ]
            )
    return _table(["net", "search", "median s", "vs plain", "hyper-steps"], lines)


def hyperstep_table(name="hyperstep"):
    """One hyper-step of one split against one plain epoch, and per weight."""
    data = _load(name)
    hyper = {(r["net"], r["granularity"], r["method"]): r for r in data["hyper"]}
    lines = []
    for net in data["args"]["nets"]:
        for method in ("cg-10", "gn-5 b128", "gn-10 b256", "gn-20 b128"):
            scalar = hyper[net, "scalar", method]
            weight = hyper[net, "parameter", method]
            lines.append(
                [
                    net,
                    f"{data['plain'][net]['n_weights']:,}",
                    method,
                    f"{scalar['seconds']:.4f}",
                    f"{scalar['vs_epoch']:.0%}",
                    f"{weight['vs_global']:.2f}×",
                    f"{weight['rss_vs_plain']:.2f}×",
                ]
            )
    header = ["net", "weights", "method", "step s", "vs plain epoch"]
    return _table(
        [*header, "per weight vs scalar", "per weight peak RSS vs plain"], lines
    )


TABLES = {
    "readme-figures": readme_table,
    "decisions-suite": suite_table,
    "decisions-paired": paired_table,
    "peers": peers_table,
    "overhead": overhead_table,
    "hyperstep": hyperstep_table,
    "score-gap": score_gap_table,
    "never-worse": never_worse_table,
    "single-fit": single_fit_table,
    "dropout": _tables.dropout_table,
    "dropout-solvers": _tables.dropout_solvers_table,
    "halving": _tables.halving_table,
    "overfit": _tables.overfit_table,
    "overfit-remedies": _tables.overfit_remedies_table,
    "distill": _tables.distill_table,
    "lr": _tables.lr_table,
    "lr-train3": _tables.lr_train3_table,
    "lr-cost": _tables.lr_cost_table,
    "noisy-labels": _tables.noisy_labels_table,
    "cluster": _tables.cluster_table,
    "defaults-optimiser": _tables.defaults_optimiser_table,
    "defaults-solver": _tables.defaults_solver_table,
    "accuracy": _tables.accuracy_table,
    "scale": _tables.scale_table,
    "cnn": _tables.cnn_table,
}

MARKER = re.compile(r"(<!-- report: ([\w-]+) -->\n)(.*?)(<!-- /report -->)", re.S)


def markers(text):
    """``{name: table text}`` of every marker on a page."""
    return {m.group(2): m.group(3).strip() for m in MARKER.finditer(text)}


def rewrite(text):
    """The page with every table that has a function written afresh."""

    def fill(match):
        name = match.group(2)
        if name not in TABLES:
            return match.group(0)
        return f"{match.group(1)}{TABLES[name]().strip()}\n{match.group(4)}"

    return MARKER.sub(fill, text)


def main(argv):
    if argv == ["--write"]:
        for page in PAGES:
            text = page.read_text()
            new = rewrite(text)
            if new != text:
                page.write_text(new)
                print(f"rewrote {page.relative_to(ROOT)}")
        return
    for name in argv or TABLES:
        print(f"<!-- report: {name} -->\n{TABLES[name]()}\n<!-- /report -->\n")


if __name__ == "__main__":
    main(sys.argv[1:])
