"""The GPU check: CUDA tests, search and grid on the GPU, its pickle on a CPU.

On a machine with CUDA, inside about eight minutes:

1. ``pytest -m gpu tests/model_selection/test_devices.py`` (the CUDA tests);
2. ``HypergradSearchCV`` (decay and dropout tuned, ``cv=3``) next to a 6x3
   ``GridSearchCV`` of the same (6 decays x 3 rates), both with
   ``device="cuda"``, on the CNN of ``bench_cnn`` and 16x16 digit images:
   wall time ratio and test accuracy;
3. the fitted search pickled on the GPU and unpickled in a fresh Python that
   sees no CUDA device (``CUDA_VISIBLE_DEVICES=""``; skorch maps the net to
   the CPU): its predictions against the GPU's;
4. one hyper-step (``skhypergrad.bilevel.module_hypergradient``, the
   search's default solver: 5 CG iterations on the Gauss-Newton curvature)
   against one training step (forward, backward, Adam step, batch 128) of the
   same net, timed with ``torch.cuda.synchronize``.

Writes ``$OUT/gpu.json`` when ``OUT`` is set, else
``benchmarks/results/gpu.json``, and prints a table. Without a CUDA device it
says so and exits 0. Run: ``python benchmarks/gpu_check.py`` (``--epochs``,
default 15).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEADLINE_S = 8 * 60


def run_cuda_tests(timeout):
    """The tests marked ``gpu``: return code, summary line, seconds."""
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/model_selection/test_devices.py",
    ]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        lines = (done.stdout or "").strip().splitlines()
        summary, code = (lines[-1] if lines else done.stderr[-500:]), done.returncode
    except subprocess.TimeoutExpired:
        summary, code = f"timed out after {timeout:.0f} s", -1
    return {
        "returncode": code,
        "summary": summary,
        "seconds": time.perf_counter() - start,
    }


def search_vs_grid(epochs, seed=0):
    """The search and the 6x3 grid on the GPU: figures and the fitted search."""
    from bench_cnn import DECAY, RATE, cnn_net, digit_images
    from scipy.stats import loguniform, uniform
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

    from skhypergrad import HypergradSearchCV

    X, y = digit_images(16)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    net = cnn_net(16, epochs, channels=16).set_params(device="cuda")
    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    space = {
        "optimizer__weight_decay": loguniform(*DECAY),
        "module__dropout": uniform(RATE[0], RATE[1] - RATE[0]),
    }
    grid = {
        "optimizer__weight_decay": np.geomspace(*DECAY, 6).tolist(),
        "module__dropout": [0.0, 0.25, 0.5],
    }
    out = {}
    fitted = {}
    for name, est in (
        ("HypergradSearchCV", HypergradSearchCV(net, space, cv=cv, random_state=seed)),
        ("GridSearchCV", GridSearchCV(net, grid, cv=cv)),
    ):
        torch.manual_seed(seed)
        torch.cuda.synchronize()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X_tr, y_tr)
        torch.cuda.synchronize()
        out[name] = {
            "seconds": time.perf_counter() - start,
            "test_accuracy": float(est.score(X_te, y_te)),
        }
        fitted[name] = est
    out["time_ratio"] = (
        out["HypergradSearchCV"]["seconds"] / out["GridSearchCV"]["seconds"]
    )
    return out, fitted["HypergradSearchCV"], X_te


def pickle_to_cpu(search, X):
    """Unpickle the GPU-fitted search where no CUDA device is visible."""
    gpu_proba = search.predict_proba(X)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "search.pkl").write_bytes(pickle.dumps(search))
        np.save(tmp / "X.npy", X)
        script = textwrap.dedent(f"""
            import pickle, sys, warnings, numpy as np, torch
            sys.path.insert(0, {str(ROOT)!r})
            sys.path.insert(0, {str(HERE)!r})
            assert not torch.cuda.is_available()
            warnings.simplefilter("ignore")
            search = pickle.loads(open("search.pkl", "rb").read())
            print(search.best_estimator_.device)
            np.save("out.npy", search.predict_proba(np.load("X.npy")))
        """)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            return {"loaded": False, "error": done.stderr[-2000:]}
        cpu_proba = np.load(tmp / "out.npy")
    return {
        "loaded": True,
        "device_after_load": done.stdout.strip().splitlines()[-1],
        "max_abs_diff_proba": float(np.abs(cpu_proba - gpu_proba).max()),
        "same_predictions": bool((cpu_proba.argmax(1) == gpu_proba.argmax(1)).all()),
    }


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_seconds(fn, repeats, device):
    times = []
    for _ in range(repeats + 1):  # the first one warms up
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def hyper_step_cost(repeats=10, device="cuda"):
    """Median seconds of one hyper-step and one training step, same net."""
    from _common import gauss_newton
    from bench_cnn import ImageCNN

    from skhypergrad.bilevel import module_hypergradient
    from skhypergrad.families import Binding

    class Decay(Binding):
        def inner_term(self, value, params):
            return 0.5 * value.reshape(()) * sum((p**2).sum() for p in params)

    device = torch.device(device)
    torch.manual_seed(0)
    module = ImageCNN(16, 16).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.randn(512, 1, 16, 16, device=device)
    y = torch.randint(10, (512,), device=device)

    def train_step():
        module.train()
        optimizer.zero_grad()
        loss_fn(module(X[:128]), y[:128]).backward()
        optimizer.step()

    raw = [torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)]

    def hyper_step():
        module_hypergradient(
            module,
            module,
            lambda out, yb, Xb, training: loss_fn(out, yb),
            [Decay()],
            raw,
            lambda r: [torch.exp(r[0]).float().to(device)],
            (X[:128], y[:128]),  # the search's default: 128 training samples
            (X[128:], y[128:]),
            gauss_newton(5),
        )

    train = _device_seconds(train_step, repeats, device)
    hyper = _device_seconds(hyper_step, repeats, device)
    return {"train_step_s": train, "hyper_step_s": hyper, "ratio": hyper / train}


def machine():
    """The card and the software."""
    return {
        "gpu": torch.cuda.get_device_name(0),
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(payload):
    """``$OUT/gpu.json`` or ``benchmarks/results/gpu.json``; the path."""
    folder = Path(os.environ["OUT"]) if os.environ.get("OUT") else HERE / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpu.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def table(payload):
    """The figures as a markdown table."""
    lines = ["| check | figure |", "|---|---|"]
    tests = payload.get("cuda_tests", {})
    lines.append(f"| CUDA tests | {tests.get('summary', 'not run')} |")
    sv = payload.get("search_vs_grid")
    if sv:
        for name in ("HypergradSearchCV", "GridSearchCV"):
            lines.append(
                f"| {name} on the GPU | {sv[name]['seconds']:.1f} s, test accuracy "
                f"{sv[name]['test_accuracy']:.3f} |"
            )
        lines.append(f"| time / grid | {sv['time_ratio']:.2f}x |")
    pk = payload.get("pickle_to_cpu")
    if pk:
        text = (
            f"loaded on {pk['device_after_load']}, max |proba diff| "
            f"{pk['max_abs_diff_proba']:.2e}, same predictions {pk['same_predictions']}"
            if pk["loaded"]
            else "FAILED to load: see the JSON"
        )
        lines.append(f"| GPU pickle on a CPU | {text} |")
    hs = payload.get("hyper_step_cost")
    if hs:
        lines.append(
            f"| hyper-step / training step | {hs['hyper_step_s'] * 1e3:.1f} ms / "
            f"{hs['train_step_s'] * 1e3:.2f} ms = {hs['ratio']:.1f}x |"
        )
    for name, error in payload.get("errors", {}).items():
        lines.append(f"| {name} | error: {error.splitlines()[-1][:100]} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(
            "No CUDA device is present (torch.cuda.is_available() is False, torch "
            f"{torch.__version__}): the GPU check needs one and did nothing. Run it "
            "on a machine with a GPU and a CUDA build of torch."
        )
        return 0
    sys.path.insert(0, str(HERE))
    start = time.perf_counter()
    payload = {"machine": machine(), "epochs": args.epochs, "errors": {}}
    payload["cuda_tests"] = run_cuda_tests(timeout=180)
    print(f"CUDA tests: {payload['cuda_tests']['summary']}", flush=True)
    steps = (
        ("search_vs_grid", lambda: search_vs_grid(args.epochs)),
        ("hyper_step_cost", hyper_step_cost),
    )
    for name, step in steps:
        if time.perf_counter() - start > DEADLINE_S - 60:
            payload["errors"][name] = "skipped: the eight minutes are nearly spent"
            continue
        try:
            result = step()
        except Exception as exc:  # record and go on: every figure counts
            payload["errors"][name] = f"{type(exc).__name__}: {exc}"
            continue
        if name == "search_vs_grid":
            result, search, X_te = result
            try:
                payload["pickle_to_cpu"] = pickle_to_cpu(search, X_te)
            except Exception as exc:
                payload["errors"]["pickle_to_cpu"] = f"{type(exc).__name__}: {exc}"
        payload[name] = result
        print(f"{name} done at {time.perf_counter() - start:.0f} s", flush=True)
    payload["seconds"] = time.perf_counter() - start
    print(table(payload))
    print(write(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
