"""Per-example weights on digits with 40% of the training labels replaced.

Runs the comparison of the gallery example ``examples/plot_noisy_labels.py``
(its ``compare`` function, the same data, nets and settings) for several
seeds: test accuracy of the untuned net, a ``GridSearchCV`` over weight decay,
per-example weights validated on 250 trusted rows, per-example weights with
3-fold CV on the noisy rows, and an oracle trained on the clean rows only;
the ROC AUC of the learned weights as a detector of the replaced labels; and
the time of each. Prints mean ± standard error over seeds (the median time).

Run: ``python benchmarks/bench_noisy_labels.py`` (seeds 0-2, about 6 minutes
on two cores; ``--seeds 0 1 2 3 4``). Saves
``benchmarks/results/noisy_labels.json``. Run one benchmark at a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from _common import save

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
from plot_noisy_labels import compare  # noqa: E402

KEYS = ("test_accuracy", "auc", "cv_score", "time_s")


def _mean_se(values):
    if not values:
        return None
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return statistics.fmean(values), se


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(2)
    runs = {}
    for seed in args.seeds:
        rows = compare(seed)[0]
        runs[seed] = rows
        print(
            f"seed {seed}: "
            + ", ".join(
                f"{name} {row['test_accuracy']:.3f}" for name, row in rows.items()
            ),
            flush=True,
        )
    summary = {}
    for name in runs[args.seeds[0]]:
        summary[name] = {
            key: _mean_se(
                [
                    v
                    for s in args.seeds
                    if (v := runs[s][name][key]) is not None and v == v  # not NaN
                ]
            )
            for key in KEYS
        }
        summary[name]["median_time_s"] = statistics.median(
            runs[s][name]["time_s"] for s in args.seeds
        )
    print(
        "\n| approach | test accuracy | ROC AUC (clean vs replaced) | CV score "
        "| time (s) |"
    )
    print("|---|---|---|---|---|")
    for name, stats in summary.items():
        cells = [
            "" if stats[k] is None else f"{stats[k][0]:.4f} ± {stats[k][1]:.4f}"
            for k in ("test_accuracy", "auc", "cv_score")
        ]
        print(f"| {name} | {' | '.join(cells)} | {stats['median_time_s']:.1f} |")
    path = save("noisy_labels", {"seeds": args.seeds, "runs": runs, "summary": summary})
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
