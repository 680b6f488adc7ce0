"""Accuracy of the hypergradient: truncated solvers against the exact value.

For each method and number of terms / iterations (``identity``; ``neumann``
with ``alpha="auto"``; ``cg``) the script measures the relative error
``||g - g_exact|| / ||g_exact||`` and the cosine similarity to the exact
hypergradient, the Hessian-vector products used and the wall time, on

* ridge regression (:func:`skhypergrad.datasets.make_ridge_problem`) with a
  scalar and with per-feature hyperparameters, and an ill-conditioned variant
  (strongly correlated features, small ``lambda``); there the exact value is
  the closed form, and ``solver=Exact()`` (the dense solve) is one more row;
* a small float64 tanh MLP (20 -> 48 -> 32 -> 10 classes, 2,906 weights)
  with per-layer weight decay ``0.5 * exp(theta_l) * ||w_l||^2`` (weights and
  biases of layer ``l``, ``exp(theta_l) = 3e-2``), trained near its optimum by
  full-batch L-BFGS (at most 3,000 iterations) on a fixed 10-class
  ``make_classification`` dataset (300 train / 200 validation samples); there
  the exact value is ``solver=Exact()`` (undamped dense solve) at the same
  point, so its row has error 0 and shows the cost. ``cg`` is
  ``CG(negative_curvature="stop", warn=False)``, run undamped and with
  ``damping=1e-3`` (the default of ``HypergradSearchCV``);
  ``Exact(damping=1e-3)`` is the value damped CG converges to.

The Hessian spectrum of each instance (dense, from Hessian-vector products) is
reported above each table.

Each figure is the median [min, max] over 3 seeds (data, initialisation and
power-iteration start: ``random_state=seed``). HVPs are counted by wrapping the
engine's Hessian-vector product; ``alpha="auto"`` spends 10 of them on power
iteration.

Run: ``python benchmarks/bench_accuracy.py`` (about two minutes on one core)
or ``python benchmarks/bench_accuracy.py --quick`` (2 seeds, 1/5/20 terms, a
20 -> 32 -> 10 MLP, a 50-feature ill-conditioned ridge; about 30 seconds).
Prints one markdown table per problem, writes them to
``benchmarks/results/accuracy[_quick].md`` and saves
``benchmarks/results/accuracy[_quick].json``. Uses one thread; timings are
indicative only (one call per seed).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import time

import numpy as np
import torch
from _common import RESULTS, save
from sklearn.datasets import make_classification
from torch.nn import functional as F

from skhypergrad.datasets import RidgeProblem, make_ridge_problem
from skhypergrad.exceptions import SolverDivergedError
from skhypergrad.hypergrad import CG, Exact, Identity, Neumann, hypergradient, make_hvp
from skhypergrad.hypergrad import _hypergradient as engine

CG_NETWORK = {"negative_curvature": "stop", "warn": False}
CG_RIDGE = {"negative_curvature": "raise", "warn": False}
SEARCH_DAMPING = 1e-3


# ------------------------------------------------------------------ problems
def ridge_problem(seed, per_feature):
    """Well-conditioned ridge: 200 train / 100 val samples, 20 features."""
    problem = make_ridge_problem(
        n_train=200, n_val=100, n_features=20, alpha=0.3, seed=seed,
        per_feature=per_feature,
    )  # fmt: skip
    return _ridge_inputs(problem)


def ill_ridge_problem(seed, n_features=100, rho=0.98, alpha=1e-3):
    """Ridge on AR(1)-correlated features (``corr = rho^|i-j|``), small lambda."""
    rng = np.random.default_rng(seed)
    n_train, n_val = 2 * n_features, n_features
    lags = np.abs(np.subtract.outer(np.arange(n_features), np.arange(n_features)))
    chol = np.linalg.cholesky(rho**lags)
    X = rng.normal(size=(n_train + n_val, n_features)) @ chol.T
    y = X @ rng.normal(size=n_features) + rng.normal(size=n_train + n_val)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    problem = RidgeProblem(
        X[:n_train], y[:n_train], X[n_train:], y[n_train:],
        alpha=alpha, per_feature=True,
    )  # fmt: skip
    return _ridge_inputs(problem)


def _ridge_inputs(problem):
    return {
        "inner": problem.inner_loss,
        "outer": problem.outer_loss,
        "params": problem.params,
        "hparams": problem.hparams,
        "exact": problem.exact_hypergradient(),
        "extra": {},
    }


def mlp_problem(seed, sizes, weight_decay=3e-2, n_train=300, n_val=200, max_rounds=12):
    """Float64 tanh MLP with per-layer log weight decay, trained by L-BFGS."""
    n_classes = sizes[-1]
    X, y = make_classification(
        n_samples=n_train + n_val, n_features=sizes[0], n_informative=10,
        n_redundant=4, n_classes=n_classes, n_clusters_per_class=1,
        class_sep=1.5, flip_y=0.05, random_state=seed,
    )  # fmt: skip
    X = (X - X[:n_train].mean(0)) / X[:n_train].std(0)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    X_tr, y_tr, X_val, y_val = X[:n_train], y[:n_train], X[n_train:], y[n_train:]

    torch.manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layer = torch.nn.Linear(fan_in, fan_out, dtype=torch.float64)
        params += [layer.weight.detach().clone(), layer.bias.detach().clone()]
    params = [p.requires_grad_(True) for p in params]
    n_layers = len(sizes) - 1
    theta = torch.full((n_layers,), math.log(weight_decay), dtype=torch.float64)
    hparams = [theta.requires_grad_(True)]

    def forward(params, X):
        out = X
        for i in range(n_layers):
            out = F.linear(out, params[2 * i], params[2 * i + 1])
            if i < n_layers - 1:
                out = torch.tanh(out)
        return out

    def inner(params, hparams):
        lam = torch.exp(hparams[0])
        penalty = sum(
            0.5 * lam[i] * (params[2 * i].pow(2).sum() + params[2 * i + 1].pow(2).sum())
            for i in range(n_layers)
        )
        return F.cross_entropy(forward(params, X_tr), y_tr) + penalty

    def outer(params, hparams):
        return F.cross_entropy(forward(params, X_val), y_val)

    start = time.perf_counter()
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=250, history_size=50, tolerance_grad=1e-11,
        tolerance_change=0.0, line_search_fn="strong_wolfe",
    )  # fmt: skip
    fixed = [h.detach() for h in hparams]

    def closure():
        optimizer.zero_grad()
        loss = inner(params, fixed)
        loss.backward()
        return loss

    grad_norm = math.inf
    for _ in range(max_rounds):  # Up to ``250 * max_rounds`` L-BFGS iterations.
        optimizer.step(closure)
        grads = torch.autograd.grad(inner(params, fixed), params)
        grad_norm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads))
        if grad_norm < 1e-9:
            break
    train_seconds = time.perf_counter() - start
    for p in params:
        p.grad = None
    with torch.no_grad():
        val_acc = float((forward(params, X_val).argmax(1) == y_val).double().mean())
    return {
        "inner": inner,
        "outer": outer,
        "params": params,
        "hparams": hparams,
        "exact": None,  # The undamped ``Exact()`` row, computed first.
        "extra": {
            "inner_grad_norm": grad_norm,
            "train_seconds": train_seconds,
            "val_accuracy": val_acc,
            "lbfgs_iterations": optimizer.state[params[0]]["n_iter"],
        },
    }


# ------------------------------------------------------------------ measuring
@contextlib.contextmanager
def count_hvps():
    """Count the Hessian-vector products of every ``hypergradient`` call."""
    counter = [0]
    original = engine.make_hvp

    def counting_make_hvp(*args, **kwargs):
        hvp = original(*args, **kwargs)

        def counted(vectors):
            counter[0] += 1
            return hvp(vectors)

        return counted

    engine.make_hvp = counting_make_hvp
    try:
        yield counter
    finally:
        engine.make_hvp = original


def spectrum(problem):
    """Smallest and largest eigenvalues of the training-loss Hessian (dense)."""
    params, hparams = problem["params"], problem["hparams"]
    grads = torch.autograd.grad(
        problem["inner"](params, hparams), params, create_graph=True
    )
    hvp = make_hvp(grads, params)
    sizes = [p.numel() for p in params]
    columns = []
    for i in range(sum(sizes)):
        unit = torch.zeros(sum(sizes), dtype=params[0].dtype)
        unit[i] = 1.0
        parts = [c.reshape(p.shape) for c, p in zip(unit.split(sizes), params)]
        columns.append(torch.cat([h.reshape(-1) for h in hvp(parts)]))
    hessian = torch.stack(columns, 1)
    eig = torch.linalg.eigvalsh(0.5 * (hessian + hessian.T))
    return float(eig[0]), float(eig[-1])


def flat(tensors):
    return torch.cat([t.detach().double().reshape(-1) for t in tensors])


def compare(g, g_exact):
    g, g_exact = flat(g), flat(g_exact)
    rel = float(torch.linalg.norm(g - g_exact) / torch.linalg.norm(g_exact))
    cos = float(g @ g_exact / (torch.linalg.norm(g) * torch.linalg.norm(g_exact)))
    return rel, cos


def configurations(terms, network, seed):
    """``(method, terms, damping, solver)`` for one problem and seed."""
    cg_options = CG_NETWORK if network else CG_RIDGE
    # On the MLP the undamped dense solve is the reference (error 0 by
    # construction); its row gives the cost.
    configs = [("exact", "-", 0.0, Exact())]
    configs.append(("identity", 0, 0.0, Identity(random_state=seed)))
    configs += [
        ("neumann", k, 0.0, Neumann(max_iter=k, random_state=seed)) for k in terms
    ]
    dampings = [0.0, SEARCH_DAMPING] if network else [0.0]
    for damping in dampings:
        configs += [
            ("cg", k, damping, CG(max_iter=k, damping=damping, **cg_options))
            for k in terms
        ]
    if network:
        configs.append(("exact", "-", SEARCH_DAMPING, Exact(damping=SEARCH_DAMPING)))
    return configs


def run_problem(build, seeds, terms, network):
    """All configurations of one problem, one row per (configuration, seed)."""
    rows, problems = [], []
    for seed in seeds:
        problem = build(seed)
        low, high = spectrum(problem)
        for method, k, damping, solver in configurations(terms, network, seed):
            with count_hvps() as counter:
                start = time.perf_counter()
                try:
                    g, info = hypergradient(
                        problem["inner"],
                        problem["outer"],
                        problem["params"],
                        problem["hparams"],
                        solver=solver,
                        return_info=True,
                    )
                    if problem["exact"] is None:  # This call is the reference.
                        problem["exact"] = g
                    rel, cos = compare(g, problem["exact"])
                    error = None
                except SolverDivergedError as err:
                    rel = cos = math.nan
                    error = str(err)
                seconds = time.perf_counter() - start
            rows.append(
                {
                    "method": method,
                    "terms": k,
                    "damping": damping,
                    "seed": seed,
                    "rel_error": rel,
                    "cosine": cos,
                    "hvps": counter[0],
                    "seconds": seconds,
                    "diverged": error,
                }
            )
        problems.append(
            {
                "seed": seed,
                "n_params": sum(p.numel() for p in problem["params"]),
                "n_hparams": sum(h.numel() for h in problem["hparams"]),
                "eig_min": low,
                "eig_max": high,
                "condition": high / low if low > 0 else math.inf,
                "exact_norm": float(torch.linalg.norm(flat(problem["exact"]))),
                **problem["extra"],
            }
        )
    return rows, problems


def summarise(rows):
    """Median, min and max of each figure per configuration, over seeds."""
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["terms"], row["damping"]), []).append(row)
    out = []
    for (method, k, damping), group in groups.items():
        ok = [r for r in group if r["diverged"] is None]
        entry = {
            "method": method,
            "terms": k,
            "damping": damping,
            "n_seeds": len(group),
            "n_diverged": len(group) - len(ok),
            "hvps_median": statistics.median(r["hvps"] for r in group),
            "seconds_median": statistics.median(r["seconds"] for r in group),
        }
        for key in ("rel_error", "cosine"):
            values = [r[key] for r in ok]
            entry[key] = (
                {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                }
                if values
                else None
            )
        out.append(entry)
    return out


def _fmt_stat(stat, fmt):
    return "diverged" if stat is None else fmt.format(**stat)


def markdown(title, summary, problems):
    def per_seed(key, fmt):
        return ", ".join(fmt.format(p[key]) for p in problems)

    conds = ", ".join(
        f"{p['condition']:.3g}" if p["eig_min"] > 0 else "not PD" for p in problems
    )
    lines = [
        f"### {title}",
        "",
        f"P = {problems[0]['n_params']} weights, {problems[0]['n_hparams']} "
        "hyperparameter(s). Per seed: Hessian eigenvalue min "
        f"{per_seed('eig_min', '{:.2e}')}; max {per_seed('eig_max', '{:.3g}')}; "
        f"condition number {conds}; ||g_exact|| {per_seed('exact_norm', '{:.3g}')}.",
    ]
    if "inner_grad_norm" in problems[0]:
        lines[-1] += (
            f" Final ||grad L_T|| {per_seed('inner_grad_norm', '{:.1e}')} after "
            f"{per_seed('lbfgs_iterations', '{}')} L-BFGS iterations; validation "
            f"accuracy {per_seed('val_accuracy', '{:.2f}')}."
        )
    lines += [
        "",
        "| method | terms | damping | rel. error median [min, max] "
        "| cosine median [min, max] | HVPs | seconds |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for s in summary:
        rel = _fmt_stat(s["rel_error"], "{median:.2e} [{min:.2e}, {max:.2e}]")
        cos = _fmt_stat(s["cosine"], "{median:.5f} [{min:.5f}, {max:.5f}]")
        if s["n_diverged"] and s["rel_error"] is not None:
            rel += f" ({s['n_diverged']} diverged)"
        damping = f"{s['damping']:g}" if s["damping"] else "0"
        lines.append(
            f"| {s['method']} | {s['terms']} | {damping} | {rel} | {cos} "
            f"| {s['hvps_median']:g} | {s['seconds_median']:.3f} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller version")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        seeds, terms, sizes, ill_features = [0, 1], [1, 5, 20], (20, 32, 10), 50
    else:
        seeds, terms, ill_features = [0, 1, 2], [1, 5, 10, 20, 50], 100
        sizes = (20, 48, 32, 10)
    problems = {
        "ridge, scalar lambda": (lambda s: ridge_problem(s, False), False),
        "ridge, per-feature lambda": (lambda s: ridge_problem(s, True), False),
        "ridge, ill-conditioned (AR(1) rho=0.98 features, lambda=1e-3), "
        "per-feature lambda": (
            lambda s: ill_ridge_problem(s, n_features=ill_features),
            False,
        ),
        f"MLP {'-'.join(map(str, sizes))} tanh, per-layer weight decay "
        "(lambda=3e-2), float64": (lambda s: mlp_problem(s, sizes), True),
    }
    start = time.perf_counter()
    tables, payload = [], {"args": vars(args), "seeds": seeds, "problems": {}}
    for title, (build, network) in problems.items():
        rows, described = run_problem(build, seeds, terms, network)
        summary = summarise(rows)
        table = markdown(title, summary, described)
        print(table + "\n", flush=True)
        tables.append(table)
        payload["problems"][title] = {
            "instances": described,
            "rows": rows,
            "summary": summary,
        }
    payload["total_seconds"] = time.perf_counter() - start
    name = "accuracy_quick" if args.quick else "accuracy"
    header = (
        f"## Accuracy of the hypergradient (`python benchmarks/bench_accuracy.py"
        f"{' --quick' if args.quick else ''}`)\n\nRelative error "
        "||g - g_exact|| / ||g_exact|| and cosine to the exact hypergradient, "
        f"median [min, max] over seeds {seeds}; HVPs and seconds are medians "
        "(one thread, one call per seed).\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(header + "\n" + "\n\n".join(tables) + "\n")
    path = save(name, payload)
    seconds = payload["total_seconds"]
    print(f"saved {path} and {RESULTS / f'{name}.md'} in {seconds:.0f}s")


if __name__ == "__main__":
    main()
