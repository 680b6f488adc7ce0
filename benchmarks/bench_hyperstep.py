"""Cost of a hyper-step as the work grows.

One hyper-step is what the search computes for one CV split (the search's
``skhypergrad.bilevel.module_hypergradient``): the hypergradient of the
cross-entropy on a 512-sample validation batch with respect to raw (log) weight-decay
values, through an inner loss of cross-entropy on a 256-sample training batch
plus ``0.5 * sum(lambda * w**2)``. It is timed for 1 (global), per-layer and
per-weight hyperparameters, on ``_common.MLP`` nets of about 10k, 100k, 1M and
3M weights (64 features, 10 classes, synthetic data), with ``identity``,
``neumann`` (1/5/20 terms), ``cg`` (5/10/20 iterations, truncated at negative
curvature) and ``gn`` (CG on the Gauss-Newton curvature, the search's default
``solver="gauss-newton"``: 5/10/20 iterations on 128 or 256 training samples;
the others use 256). Next to it: one plain training epoch of the
same net (Adam, batch 128, 2000 samples; a hand-written loop and skorch's
``fit_loop``), and the peak RSS of both. Every configuration runs in its own
subprocess, so its timings and its peak memory are its own.

Run: ``python benchmarks/bench_hyperstep.py`` (full: all nets and methods, 5
repeats after a warm-up; roughly 20-30 minutes on two idle cores, most of it
on the 3M net: ``--nets 10k 100k 1M`` leaves it out) or
``python benchmarks/bench_hyperstep.py --quick`` (10k and 100k nets, 2 methods,
3 repeats; one to three minutes, mostly the subprocesses' imports).
``--threads`` (default 2) fixes ``torch.set_num_threads`` in every process.
Prints markdown tables and saves ``benchmarks/results/hyperstep[_quick].json``.
Run one benchmark at a time on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import time

import torch
from _common import MLP, save
from skorch import NeuralNetClassifier
from torch.nn import functional as F

from skhypergrad.bilevel import module_hypergradient
from skhypergrad.exceptions import SolverDivergedError
from skhypergrad.families import Binding
from skhypergrad.hypergrad import CG, Identity, Neumann
from skhypergrad.penalties import (
    expand_coefficients,
    l2_penalty,
    parameter_layout,
    trainable_parameters,
)

N_FEATURES = 64
N_CLASSES = 10
# hyper_optimizer__batch_size of the methods that name none
HYPER_BATCH = 256
VAL_BATCH = 2 * HYPER_BATCH  # the largest validation batch (2 x the train batch)
TRAIN_BATCH = 128
WEIGHT_DECAY = 1e-3  # value every hyperparameter starts from
POWER_ITER = 10  # Hessian-vector products alpha="auto" spends (engine default)

# name: MLP(hidden=..., n_hidden=...); weights with 64 features and 10 classes.
NETS = {
    "10k": {"hidden": 72, "n_hidden": 2},  # 10,666 weights, 3 layers
    "100k": {"hidden": 280, "n_hidden": 2},  # 99,690 weights, 3 layers
    "1M": {"hidden": 576, "n_hidden": 4},  # 1,040,266 weights, 5 layers
    "3M": {"hidden": 992, "n_hidden": 4},  # 3,029,578 weights, 5 layers
}
GRANULARITIES = ("scalar", "layer", "parameter")
# label: (method, max_iter[, hyper-batch size]); "gn": CG on the Gauss-Newton
# curvature, the search's solver="gauss-newton".
METHODS = {
    "identity": ("identity", 0),
    "neumann-1": ("neumann", 1),
    "neumann-5": ("neumann", 5),
    "neumann-20": ("neumann", 20),
    "cg-5": ("cg", 5),
    "cg-10": ("cg", 10),
    "cg-20": ("cg", 20),
    "gn-5 b128": ("gn", 5, 128),  # the search's default
    "gn-10 b128": ("gn", 10, 128),
    "gn-10 b256": ("gn", 10, 256),  # the default before the sweep of Section 4
    "gn-20 b128": ("gn", 20, 128),
}
QUICK_NETS = ("10k", "100k")
QUICK_METHODS = ("neumann-5", "cg-5")
TARGETS = {"time_vs_global": 1.5, "step_vs_epoch": 0.30, "rss_vs_plain": 3.0}
MARK = "@@RESULT@@ "
WORKER_ARGS = ("worker", "net", "granularity", "method", "repeats_given")


# ----------------------------------------------------------------- workers
def peak_rss_mb():
    """Peak resident set size of this process so far (Linux: KiB -> MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(n_train, n_val, seed):
    """Gaussian inputs labelled by a random linear teacher plus noise."""
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_val
    X = torch.randn(n, N_FEATURES, generator=gen)
    teacher = torch.randn(N_FEATURES, N_CLASSES, generator=gen)
    logits = X @ teacher + 2.0 * torch.randn(n, N_CLASSES, generator=gen)
    y = logits.argmax(1)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def build_net(name, seed):
    torch.manual_seed(seed)
    module = MLP(N_FEATURES, N_CLASSES, **NETS[name])
    return module, torch.optim.Adam(module.parameters(), lr=1e-3)


def train_epoch(module, optimizer, X, y, generator):
    """One epoch of plain minibatch training, the batches skorch would make."""
    module.train()
    order = torch.randperm(len(X), generator=generator)
    for start in range(0, len(X), TRAIN_BATCH):
        index = order[start : start + TRAIN_BATCH]
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(module(X[index]), y[index]).backward()
        optimizer.step()


def make_solver(method, max_iter, damping):
    """The solver object of a ``METHODS`` entry (``alpha="auto"`` for Neumann)."""
    if method == "cg":
        return CG(max_iter=max_iter, damping=damping)  # stops at negative curvature
    if method == "gn":
        return CG(max_iter=max_iter, damping=damping, curvature="gauss-newton")
    if method == "neumann":
        return Neumann(max_iter=max_iter, damping=damping)
    return Identity(damping=damping)


class _Penalty(Binding):
    """Weight decay entered as an L2 term (the search's DecayBinding, minus
    the optimizer groups a plain module does not have)."""

    def __init__(self, granularity, layout):
        self.granularity, self.layout = granularity, layout

    def inner_term(self, value, params):
        coefs = expand_coefficients(value, self.granularity, self.layout, params)
        return l2_penalty(params, coefs)


def one_hyperstep(
    module, layout, granularity, raw, data, method, max_iter, damping, gen, batch
):
    """The search's hyper-step on a plain module: ``module_hypergradient``."""
    X_tr, y_tr, X_val, y_val = data
    index_in = torch.randperm(len(X_tr), generator=gen)[:batch].sort().values
    index_out = torch.randperm(len(X_val), generator=gen)[: 2 * batch].sort().values
    dtype = trainable_parameters(module)[0].dtype
    return module_hypergradient(
        module,
        module,
        lambda output, y, X, training: F.cross_entropy(output, y),
        [_Penalty(granularity, layout)],
        [raw.detach().clone().requires_grad_(True)],
        lambda hparams: [torch.exp(hparams[0]).to(dtype)],  # Real(log=True)
        (X_tr[index_in], y_tr[index_in]),
        (X_val[index_out], y_val[index_out]),
        make_solver(method, max_iter, damping),
    )


def hyper_worker(args):
    data = make_data(args.n_train, VAL_BATCH, args.seed)
    rss_base = peak_rss_mb()
    module, optimizer = build_net(args.net, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    # The search's split holds a trained net and its optimizer's state too.
    train_epoch(module, optimizer, data[0], data[1], gen)
    layout = parameter_layout(module)
    n_hparams = layout.size_of(args.granularity)
    raw = torch.full((n_hparams,), math.log(WEIGHT_DECAY), dtype=torch.float64)
    method, max_iter, *batch = METHODS[args.method]
    batch = batch[0] if batch else HYPER_BATCH
    times, iters, errors = [], [], []
    for rep in range(1 + args.repeats):  # the first one is a warm-up
        start = time.perf_counter()
        try:
            _, info = one_hyperstep(
                module,
                layout,
                args.granularity,
                raw,
                data,
                method,
                max_iter,
                args.damping,
                gen,
                batch,
            )
            n_iter = info.solve.n_iter
        except SolverDivergedError as exc:  # timed anyway: the work was done
            errors.append(str(exc).split(".")[0])
            n_iter = math.nan
        elapsed = time.perf_counter() - start
        if rep:
            times.append(elapsed)
            iters.append(n_iter)
    return {
        "kind": "hyper",
        "net": args.net,
        "n_weights": layout.n_weights,
        "n_layers": len(layout.layers),
        "granularity": args.granularity,
        "n_hparams": n_hparams,
        "method": args.method,
        "seconds": statistics.median(times),
        "times": times,
        "solver_iters": statistics.median(iters),
        "hvps": statistics.median(iters)
        + (POWER_ITER if method in ("neumann", "identity") else 0),
        "errors": errors,
        "rss_base_mb": rss_base,
        "rss_mb": peak_rss_mb(),
    }


def plain_worker(args):
    data = make_data(args.n_train, VAL_BATCH, args.seed)
    X, y = data[0], data[1]
    rss_base = peak_rss_mb()
    module, optimizer = build_net(args.net, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    times = []
    for rep in range(1 + args.repeats):
        start = time.perf_counter()
        train_epoch(module, optimizer, X, y, gen)
        if rep:
            times.append(time.perf_counter() - start)
    rss = peak_rss_mb()  # before skorch builds a second net
    net = NeuralNetClassifier(
        MLP,
        module__n_features=N_FEATURES,
        module__n_classes=N_CLASSES,
        **{f"module__{k}": v for k, v in NETS[args.net].items()},
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=TRAIN_BATCH,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    ).initialize()
    X_np, y_np = X.numpy(), y.numpy()
    skorch_times = []
    for rep in range(1 + args.repeats):
        start = time.perf_counter()
        net.fit_loop(X_np, y_np, epochs=1)  # what the search's run_epoch calls
        if rep:
            skorch_times.append(time.perf_counter() - start)
    return {
        "kind": "plain",
        "net": args.net,
        "n_weights": sum(p.numel() for p in module.parameters()),
        "epoch_seconds": statistics.median(times),
        "times": times,
        "skorch_epoch_seconds": statistics.median(skorch_times),
        "skorch_times": skorch_times,
        "rss_base_mb": rss_base,
        "rss_mb": rss,
    }


# ------------------------------------------------------------------ parent
def spawn(args, kind, net, granularity="scalar", method="identity"):
    """Run one configuration in a fresh interpreter; its result as a dict."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--net",
        net,
        "--granularity",
        granularity,
        "--method",
        method,
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats),
        "--n-train",
        str(args.n_train),
        "--damping",
        str(args.damping),
        "--seed",
        str(args.seed),
    ]
    label = (
        f"{kind} {net} {granularity} {method}" if kind == "hyper" else f"{kind} {net}"
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        print(f"  {label}: timed out after {args.timeout} s", flush=True)
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode or not lines:
        print(f"  {label}: failed\n{proc.stderr[-2000:]}", flush=True)
        return None
    result = json.loads(lines[-1][len(MARK) :])
    wall = time.perf_counter() - start
    shown = result.get("seconds", result.get("epoch_seconds"))
    print(
        f"  {label}: {shown:.4f} s, peak {result['rss_mb']:.0f} MiB "
        f"(process {wall:.1f} s)",
        flush=True,
    )
    return result


def ratio(a, b):
    return a / b if a is not None and b else math.nan


def annotate(hyper, plain):
    """Add the per-parameter/global, step/epoch and memory ratios to each row."""
    by_key = {(r["net"], r["granularity"], r["method"]): r for r in hyper}
    for row in hyper:
        base = plain.get(row["net"])
        scalar = by_key.get((row["net"], "scalar", row["method"]))
        row["vs_global"] = ratio(row["seconds"], scalar and scalar["seconds"])
        row["vs_epoch"] = ratio(row["seconds"], base and base["epoch_seconds"])
        row["vs_skorch_epoch"] = ratio(
            row["seconds"], base and base["skorch_epoch_seconds"]
        )
        row["rss_vs_plain"] = ratio(row["rss_mb"], base and base["rss_mb"])
        row["rss_growth_vs_plain"] = ratio(
            row["rss_mb"] - row["rss_base_mb"],
            base and base["rss_mb"] - base["rss_base_mb"],
        )


def plain_table(plain):
    lines = [
        "| net | weights | epoch s (loop) | epoch s (skorch) | peak RSS MiB "
        "| RSS above start MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in plain.values():
        lines.append(
            f"| {r['net']} | {r['n_weights']:,} | {r['epoch_seconds']:.4f} "
            f"| {r['skorch_epoch_seconds']:.4f} | {r['rss_mb']:.0f} "
            f"| {r['rss_mb'] - r['rss_base_mb']:.0f} |"
        )
    return "\n".join(lines)


def hyper_table(hyper):
    lines = [
        "| net | granularity | hparams | method | HVPs | step s | vs global "
        "| vs epoch | vs skorch epoch | peak RSS MiB | RSS vs plain "
        "| RSS growth vs plain |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in hyper:
        flag = " (diverged)" if r["errors"] else ""
        lines.append(
            f"| {r['net']} | {r['granularity']} | {r['n_hparams']:,} "
            f"| {r['method']}{flag} | {r['hvps']:g} | {r['seconds']:.4f} "
            f"| {r['vs_global']:.2f}x | {r['vs_epoch']:.0%} "
            f"| {r['vs_skorch_epoch']:.0%} | {r['rss_mb']:.0f} "
            f"| {r['rss_vs_plain']:.2f}x | {r['rss_growth_vs_plain']:.2f}x |"
        )
    return "\n".join(lines)


def target_lines(hyper):
    """Per-weight rows on >= 1M weights against the issue's targets."""
    rows = [r for r in hyper if r["granularity"] == "parameter"]
    big = [r for r in rows if r["n_weights"] >= 1_000_000]
    scope = ">= 1M weights"
    if not big and rows:
        largest = max(r["n_weights"] for r in rows)
        big = [r for r in rows if r["n_weights"] == largest]
        scope = f"{largest:,} weights (no net of >= 1M weights was run)"
    out = [f"Targets, per-weight decay on {scope}:"]
    checks = [
        ("time vs global", "vs_global", TARGETS["time_vs_global"], "{:.2f}x"),
        ("hyper-step vs loop epoch", "vs_epoch", TARGETS["step_vs_epoch"], "{:.0%}"),
        ("peak RSS vs plain", "rss_vs_plain", TARGETS["rss_vs_plain"], "{:.2f}x"),
    ]
    for name, key, limit, fmt in checks:
        values = [r[key] for r in big if not math.isnan(r[key])]
        if not values:
            continue
        worst = max(values)
        met = sum(v <= limit for v in values)
        out.append(
            f"- {name} <= {fmt.format(limit)}: met by {met}/{len(values)} "
            f"(worst {fmt.format(worst)})"
        )
    return "\n".join(out)


def main_parent(args):
    nets = args.nets or (QUICK_NETS if args.quick else tuple(NETS))
    methods = args.methods or (QUICK_METHODS if args.quick else tuple(METHODS))
    if args.quick and args.repeats_given is None:
        args.repeats = 3
    torch.set_num_threads(args.threads)
    print(
        f"nets {', '.join(nets)}; methods {', '.join(methods)}; "
        f"{args.repeats} repeats after a warm-up; {args.threads} threads",
        flush=True,
    )
    start = time.perf_counter()
    plain, hyper = {}, []
    for net in nets:
        result = spawn(args, "plain", net)
        if result:
            plain[net] = result
        for granularity in GRANULARITIES:
            for method in methods:
                result = spawn(args, "hyper", net, granularity, method)
                if result:
                    hyper.append(result)
    annotate(hyper, plain)
    total = time.perf_counter() - start
    print(f"\nPlain training, one epoch of {args.n_train} samples (batch 128, Adam)\n")
    print(plain_table(plain))
    print(
        f"\nOne hyper-step (train batch {HYPER_BATCH} and val batch {VAL_BATCH} "
        "unless the method names its batch 'bN': N and 2N; "
        f"damping {args.damping:g}; median of {args.repeats}; HVPs = solver "
        f"iterations run + {POWER_ITER} for alpha='auto'; "
        "cg stops at the first non-positive curvature, as in the search)\n"
    )
    print(hyper_table(hyper))
    print()
    print(target_lines(hyper))
    print(f"\ntotal {total:.0f} s")
    payload = {
        "args": {k: v for k, v in vars(args).items() if k not in WORKER_ARGS},
        "nets": {n: NETS[n] for n in nets},
        "methods": {m: METHODS[m] for m in methods},
        "targets": TARGETS,
        "plain": plain,
        "hyper": hyper,
        "total_seconds": total,
    }
    path = save("hyperstep_quick" if args.quick else "hyperstep", payload)
    print(f"saved {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small nets, 2 methods")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nets", nargs="+", choices=tuple(NETS))
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS))
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repeats (5; 3 with --quick)"
    )
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--damping", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800, help="per subprocess")
    parser.add_argument("--worker", choices=("hyper", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--net", default="10k", help=argparse.SUPPRESS)
    parser.add_argument("--granularity", default="scalar", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="identity", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.repeats_given = args.repeats
    if args.repeats is None:
        args.repeats = 5
    if args.worker:
        torch.set_num_threads(args.threads)
        worker = hyper_worker if args.worker == "hyper" else plain_worker
        print(MARK + json.dumps(worker(args)), flush=True)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
