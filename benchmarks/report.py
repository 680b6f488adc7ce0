"""Tables of docs/benchmarks.md, written from the saved results.

Run: ``python benchmarks/report.py [name ...]`` prints the tables of each
section named (all by default). On the page, a table written here sits between
``<!-- report: <name> -->`` and ``<!-- /report -->``;
``tests/test_benchmarks_report.py`` fails when the page and the results differ.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

_SEARCHES = (
    "untuned",
    "plain CV training",
    "GridSearchCV",
    "HypergradSearchCV",
    "Hypergrad one training",
)
_DATASETS = (
    "digits_noise20",
    "digits300_noise20",
    "breast_cancer",
    "synthetic5000",
    "diabetes",
)


def _load(name):
    return json.loads((RESULTS / f"{name}.json").read_text())["rows"]


def _score(row):
    return row["accuracy"] if "accuracy" in row else row["r2"]


def _mean_se(values):
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0
    return mean, se


def suite_table(name="search_decisions_seeds9"):
    """Test score (mean ± standard error over seeds) and median time ratios."""
    rows = _load(name)
    lines = [
        "| search | " + " | ".join(_DATASETS) + " |",
        "|---" * (len(_DATASETS) + 1) + "|",
    ]
    for search in _SEARCHES:
        cells = []
        for dataset in _DATASETS:
            mine = [
                r for r in rows if r["dataset"] == dataset and r["search"] == search
            ]
            mean, se = _mean_se([_score(r) for r in mine])
            grid = statistics.median(r["time_ratio_vs_grid"] for r in mine)
            plain = statistics.median(r["time_ratio_vs_plain"] for r in mine)
            cells.append(f"{mean:.4f} ± {se:.4f} ({grid:.2f}, {plain:.2f})")
        lines.append(f"| {search} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(name="search_decisions_seeds9"):
    """Per seed: the search's test score minus the untuned net's, and the
    values it reported."""
    rows = _load(name)
    lines = [
        "| dataset | seed | untuned | HypergradSearchCV | difference | "
        "reported decay | reported dropout | grid's decay |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset in _DATASETS:
        seeds = sorted({r["seed"] for r in rows if r["dataset"] == dataset})
        for seed in seeds:
            by = {
                r["search"]: r
                for r in rows
                if r["dataset"] == dataset and r["seed"] == seed
            }
            search, untuned = by["HypergradSearchCV"], by["untuned"]
            params = search["best_params"]
            decay = params.get("net__optimizer__weight_decay", math.nan)
            dropout = params.get("net__module__dropout", math.nan)
            grid = by["GridSearchCV"]["best_params"]
            lines.append(
                f"| {dataset} | {seed} | {_score(untuned):.4f} | "
                f"{_score(search):.4f} | {_score(search) - _score(untuned):+.4f} | "
                f"{decay:.2g} | {dropout:.2f} | "
                f"{grid.get('net__optimizer__weight_decay', math.nan):.2g} |"
            )
    return "\n".join(lines)


def never_worse_table(name="never_worse_seeds0"):
    """The two cases over seeds (benchmarks/bench_never_worse.py)."""
    rows = _load(name)
    lines = ["| case | seed | what | figure | seconds | reported |", "|---" * 6 + "|"]
    for r in rows:
        figure = (
            f"test accuracy {r['test']:.3f}"
            if "test" in r
            else f"{r['ratio']:.4f}× the optimum's CV MSE, "
            f"{r['rejected']:.0%} of steps rejected"
        )
        lines.append(
            f"| {r['case']} | {r['seed']} | {r['what']} | {figure} | "
            f"{r['seconds']:.1f} | {r.get('reported', '')} |"
        )
    return "\n".join(lines)


TABLES = {
    "decisions-suite": suite_table,
    "decisions-paired": paired_table,
    "never-worse": never_worse_table,
}


def main(names):
    for name in names or TABLES:
        print(f"<!-- report: {name} -->\n{TABLES[name]()}\n<!-- /report -->\n")


if __name__ == "__main__":
    main(sys.argv[1:])
