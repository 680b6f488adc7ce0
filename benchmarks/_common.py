"""Shared pieces of the benchmark scripts: models, timing, table and JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

RESULTS = Path(__file__).parent / "results"


class MLP(nn.Module):
    """ReLU MLP with a dropout layer after each hidden layer."""

    def __init__(
        self, n_features=64, n_classes=10, hidden=128, n_hidden=2, dropout=0.5
    ):
        super().__init__()
        layers, width = [], n_features
        for _ in range(n_hidden):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)


def classifier_pipeline(n_features, n_classes, *, hidden=128, max_epochs=30, lr=1e-3):
    """``Pipeline(StandardScaler, NeuralNetClassifier(MLP))`` with Adam."""
    net = NeuralNetClassifier(
        MLP,
        module__n_features=n_features,
        module__n_classes=n_classes,
        module__hidden=hidden,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=128,
        train_split=None,
        verbose=0,
    )
    return Pipeline([("scale", StandardScaler()), ("net", net)])


def gauss_newton(max_iter, **options):
    """``CG`` on the Gauss-Newton curvature with the search's damping."""
    from skhypergrad.hypergrad import CG

    return CG(max_iter=max_iter, damping=1e-3, curvature="gauss-newton", **options)


def warm_up():
    """Fit a tiny skorch net once, so that no timed search pays torch's one-off
    imports and initialisation (about 3 s on the first optimizer otherwise)."""
    X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    NeuralNetClassifier(
        MLP,
        module__n_features=8,
        module__n_classes=2,
        module__hidden=8,
        criterion=nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    ).fit(X, y)


def timed(fn, *args, **kwargs):
    """Return ``(result, seconds)``."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def summarise(rows, keys, by="search"):
    """Mean and standard deviation of ``keys`` per value of ``by``."""
    groups = {}
    for row in rows:
        groups.setdefault(row[by], []).append(row)
    out = {}
    for name, group in groups.items():
        out[name] = {}
        for key in keys:
            values = [r[key] for r in group]
            out[name][key] = (
                statistics.fmean(values),
                statistics.stdev(values) if len(values) > 1 else 0.0,
                statistics.median(values),
            )
    return out


def markdown_table(summary, keys, fmt="{:.4f}"):
    """A markdown table of ``mean ± std`` per search."""
    lines = ["| search | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, stats in summary.items():
        cells = [f"{fmt.format(stats[k][0])} ± {fmt.format(stats[k][1])}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def numeric_params(best_params):
    """``best_params_`` as numbers for the tables: a vector decay (refit through
    ``optimizer__param_groups`` or a ``WeightDecayPenalty`` callback) becomes
    the geometric mean of its values under ``..optimizer__weight_decay``."""
    out = {}
    for key, value in best_params.items():
        prefix, _, name = key.rpartition("optimizer__")
        if name == "param_groups":
            decays = [options["weight_decay"] for _, options in value]
            out[prefix + "optimizer__weight_decay"] = _geometric_mean(decays)
        elif key.endswith("callbacks"):
            penalties = [cb.values for _, cb in value if hasattr(cb, "values")]
            if penalties:
                decay_key = key[: -len("callbacks")] + "optimizer__weight_decay"
                out[decay_key] = _geometric_mean(np.concatenate(penalties))
        elif isinstance(value, int | float | np.number) and key not in out:
            out[key] = float(value)
    return out


def _geometric_mean(values):
    return float(np.exp(np.mean(np.log(np.asarray(values, dtype=float)))))


def save(name, payload):
    """Write ``payload`` with the machine's description to ``results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    payload = dict(payload)
    payload["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    return path


def run_over_seeds(doc, run, report, name, datasets):
    """The command line of a benchmark run per dataset and seed.

    ``--datasets`` (default ``datasets``), ``--seeds``, ``--first-seed`` and
    ``--threads``; ``run(dataset, seed)`` returns rows, ``report(rows)``
    prints the table, and the rows are saved as
    ``results/<name>_seeds<first seed>.json``.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(datasets))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    rows = []
    for dataset in args.datasets:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            rows.extend(run(dataset, seed))
    report(rows)
    print(save(f"{name}_seeds{args.first_seed}", {"rows": rows}))
