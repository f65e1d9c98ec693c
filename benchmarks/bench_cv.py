"""Time one 10-fold cross-validation of the baseline three ways, side by side.

    make bench            # or: .venv/bin/python benchmarks/bench_cv.py

1. The tutorial's way, as a reader would type it: SciKeras' ``KerasClassifier``
   in a ``Pipeline``, ``cross_val_score`` over ``StratifiedKFold(10, shuffle=True)``,
   ``fit`` fed NumPy arrays for 300 epochs in batches of 16, one fold after another.
2. The book's way: ``cross_validate_model(make_classifier(build_baseline))``, the
   same model, optimizer, batches, epochs and folds, with the compiled training
   driver and two worker processes.  Timed twice: "cold" includes starting the
   workers (the first call in a fresh notebook), "warm" reuses them.
3. A floor: the same training written directly in NumPy (forward pass,
   back-propagation, SGD with momentum), one process, so the distance left to
   the arithmetic itself is visible.

4. What the book's fixed CPU kernels cost (``helpers/__init__.py`` sets
   ``TF_ENABLE_ONEDNN_OPTS=0`` and ``ONEDNN_MAX_CPU_ISA=AVX2`` so that a seed
   gives the same numbers on every x86-64 CPU): the baseline and the
   visible-dropout model of chapter 2, cross-validated in one process under
   each kernel setting (each in a fresh interpreter, since TensorFlow reads
   the settings once), with their times, ratios and mean accuracies.

It prints the times, the ratios and each way's mean accuracy, and writes them
to ``benchmarks/results.json``, which the appendix "Why the book's code is fast"
displays.  With ``--jax`` (and the optional ``jax`` extra installed) it also
times the book's way under Keras' JAX backend, in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import helpers  # noqa: F401  (first: keeps TensorFlow's start-up log quiet)
import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helpers import (
    build_baseline,
    build_visible_dropout,
    cross_validate_model,
    load_sonar,
    make_classifier,
)

# The tutorial's way makes SciKeras trace a new predict function per fold, and
# TensorFlow warns about the retracing from the sixth; the warning is noise here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

RESULTS = Path(__file__).with_name("results.json")
SEED = 7
EPOCHS = 300
BATCH_SIZE = 16


def tutorial_way(X, y, seed: int = SEED) -> tuple[float, float]:
    """The tutorial's workflow, typed as a reader would (our own code, same calls)."""
    from scikeras.wrappers import KerasClassifier

    def make_network():
        network = keras.Sequential(
            [
                keras.Input(shape=(60,)),
                keras.layers.Dense(60, activation="relu"),
                keras.layers.Dense(30, activation="relu"),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        network.compile(
            loss="binary_crossentropy",
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.8),
            metrics=["accuracy"],
        )
        return network

    steps = [
        ("standardize", StandardScaler()),
        ("mlp", KerasClassifier(model=make_network, epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=0)),
    ]
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=seed)
    start = time.perf_counter()
    scores = cross_val_score(Pipeline(steps), X, y, cv=folds)
    return time.perf_counter() - start, float(scores.mean())


def book_way(X, y, n_jobs: int, seed: int = SEED) -> tuple[float, float]:
    start = time.perf_counter()
    result = cross_validate_model(make_classifier(build_baseline), X, y, seed=seed, n_jobs=n_jobs)
    return time.perf_counter() - start, result.mean


def numpy_floor(X, y) -> tuple[float, float]:
    """The baseline's training in plain NumPy: Glorot-uniform weights, ReLU, sigmoid,
    binary cross-entropy, SGD with momentum 0.8 in Keras' form (v = m v - lr g; w += v),
    a fresh shuffle each epoch, batches of 16 with the last partial batch kept."""
    rng = np.random.default_rng(SEED)
    sizes = [60, 60, 30, 1]
    lr, momentum = 0.01, 0.8
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=SEED)
    start = time.perf_counter()
    accuracies = []
    for train, test in folds.split(X, y):
        scaler = StandardScaler().fit(X[train])
        Xtr, Xte = scaler.transform(X[train]).astype(np.float32), scaler.transform(X[test]).astype(np.float32)
        ytr = y[train].astype(np.float32)[:, None]
        weights, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
            biases.append(np.zeros(fan_out, np.float32))
        velocities = [np.zeros_like(p) for p in weights + biases]
        n = len(Xtr)
        for _ in range(EPOCHS):
            order = rng.permutation(n)
            for begin in range(0, n, BATCH_SIZE):
                idx = order[begin : begin + BATCH_SIZE]
                activations = [Xtr[idx]]
                for i, (w, b) in enumerate(zip(weights, biases)):
                    z = activations[-1] @ w + b
                    activations.append(np.maximum(z, 0) if i < 2 else 1 / (1 + np.exp(-z)))
                delta = (activations[-1] - ytr[idx]) / len(idx)
                grads_w, grads_b = [None] * 3, [None] * 3
                for i in (2, 1, 0):
                    grads_w[i] = activations[i].T @ delta
                    grads_b[i] = delta.sum(axis=0)
                    if i:
                        delta = (delta @ weights[i].T) * (activations[i] > 0)
                for j, (param, grad) in enumerate(zip(weights + biases, grads_w + grads_b)):
                    velocities[j] = momentum * velocities[j] - lr * grad
                    param += velocities[j]
        h = Xte
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w + b
            h = np.maximum(h, 0) if i < 2 else h
        accuracies.append(float(((h[:, 0] > 0) == (y[test] == 1)).mean()))
    return time.perf_counter() - start, float(np.mean(accuracies))


def agreement(X, y, repeats: int) -> dict:
    """Mean accuracy of both ways over `repeats` seeds (each a full 10-fold run)."""
    from scipy import stats

    tutorial = [tutorial_way(X, y, seed=100 + r)[1] for r in range(repeats)]
    book = [book_way(X, y, n_jobs=2, seed=100 + r)[1] for r in range(repeats)]
    test = stats.ttest_ind(tutorial, book, equal_var=False)
    low, high = test.confidence_interval(0.95)
    return {"repeats": repeats, "tutorial_means": tutorial, "book_means": book,
            "difference": float(np.mean(tutorial) - np.mean(book)),
            "ci95": [float(low), float(high)], "p_value": float(test.pvalue)}


def jax_book_way() -> dict | None:
    """Run the book's way in a subprocess with KERAS_BACKEND=jax."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    code = (
        "import json, sys; sys.argv = ['bench', '--book-only'];"
        "import runpy; runpy.run_path(%r, run_name='__main__')" % str(Path(__file__))
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# Kernel settings compared by kernel_costs(): the environment each probe starts with,
# and whether it also turns on TensorFlow's op determinism.
KERNEL_SETTINGS = {
    "book (onednn ops off, sgemm held to AVX2)": ({}, False),
    "book + tf op determinism": ({}, True),
    "onednn ops on, sgemm uncapped": ({"TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "ALL"}, False),
    "onednn ops off, sgemm uncapped": ({"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "ALL"}, False),
    "onednn ops off, sgemm held to AVX": ({"ONEDNN_MAX_CPU_ISA": "AVX"}, False),
}


def kernel_probe(determinism: bool) -> dict:
    """In this process: warm 10-fold runs of the baseline and the visible-dropout model."""
    import tensorflow as tf

    from helpers.environment import tensorflow_kernels

    if determinism:
        tf.config.experimental.enable_op_determinism()
    data = load_sonar()
    report = {"kernels": tensorflow_kernels()}
    for name, build in (("baseline", build_baseline), ("visible_dropout", build_visible_dropout)):
        estimator = make_classifier(build)
        cross_validate_model(estimator, data.X, data.y, seed=SEED, n_jobs=1, n_splits=2)  # warm-up
        start = time.perf_counter()
        result = cross_validate_model(estimator, data.X, data.y, seed=SEED, n_jobs=1)
        report[name] = {"seconds": time.perf_counter() - start, "mean": result.mean,
                        "summary": result.summary()}
    return report


def kernel_costs() -> dict:
    """Run kernel_probe under each of KERNEL_SETTINGS, each in a fresh interpreter."""
    reports = {}
    for label, (variables, determinism) in KERNEL_SETTINGS.items():
        print(f"  {label} ...", flush=True)
        env = {k: v for k, v in os.environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")}
        env.update(variables)
        flag = "--kernel-probe-determinism" if determinism else "--kernel-probe"
        out = subprocess.run([sys.executable, __file__, flag], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        reports[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return reports


def print_kernel_costs(reports: dict) -> None:
    book = reports.get(next(iter(KERNEL_SETTINGS)))
    print(f"{'kernel setting (10 folds, 1 process)':<44} {'baseline':>30} {'visible dropout':>30}")
    for label, report in reports.items():
        cells = []
        for name in ("baseline", "visible_dropout"):
            seconds = report[name]["seconds"]
            ratio = seconds / book[name]["seconds"] if book else float("nan")
            cells.append(f"{seconds:5.1f} s {ratio:4.2f}x {report[name]['summary']:>15}")
        print(f"{label:<44} {cells[0]:>30} {cells[1]:>30}")
    print("(times are ratios to the book's setting; the scores show which settings change the numbers)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax", action="store_true", help="also time the book's way on Keras' JAX backend")
    parser.add_argument("--agreement", type=int, default=0, metavar="N",
                        help="also compare both ways' mean accuracy over N seeds (N x 130 s)")
    parser.add_argument("--book-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kernels-only", action="store_true",
                        help="only measure what the book's fixed CPU kernels cost (about 3 min)")
    parser.add_argument("--kernel-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kernel-probe-determinism", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.kernel_probe or args.kernel_probe_determinism:
        print(json.dumps(kernel_probe(determinism=args.kernel_probe_determinism)))
        return 0
    if args.kernels_only:
        print("kernel settings: each in a fresh interpreter ...", flush=True)
        reports = kernel_costs()
        print_kernel_costs(reports)
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["kernels"] = reports
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        return 0

    data = load_sonar()
    X, y = data.X, data.y

    if args.book_only:
        cold, mean = book_way(X, y, n_jobs=2)
        warm, _ = book_way(X, y, n_jobs=2)
        print(json.dumps({"backend": keras.backend.backend(), "cold_s": cold, "warm_s": warm, "mean": mean}))
        return 0

    print(f"Keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("1/4 tutorial's way (one fold after another, fit on NumPy arrays) ...", flush=True)
    t_tutorial, acc_tutorial = tutorial_way(X, y)
    print(f"    {t_tutorial:.1f} s", flush=True)
    print("2/4 book's way (compiled driver, 2 workers) ...", flush=True)
    t_cold, acc_book = book_way(X, y, n_jobs=2)
    t_warm, acc_book_warm = book_way(X, y, n_jobs=2)
    assert acc_book == acc_book_warm, "the book's way must be reproducible"
    print(f"    {t_cold:.1f} s cold, {t_warm:.1f} s warm", flush=True)
    print("3/4 NumPy floor (one process) ...", flush=True)
    t_numpy, acc_numpy = numpy_floor(X, y)
    print(f"    {t_numpy:.1f} s", flush=True)
    print("4/4 what the book's fixed CPU kernels cost (each setting in a fresh interpreter) ...",
          flush=True)
    started = time.perf_counter()
    kernels = kernel_costs()
    print(f"    {time.perf_counter() - started:.1f} s", flush=True)

    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "keras": keras.__version__, "backend": keras.backend.backend()},
        "tutorial_s": t_tutorial, "tutorial_mean": acc_tutorial,
        "book_cold_s": t_cold, "book_warm_s": t_warm, "book_mean": acc_book,
        "numpy_s": t_numpy, "numpy_mean": acc_numpy,
        "kernels": kernels,
    }
    if args.jax:
        results["jax"] = jax_book_way()
    if args.agreement:
        print(f"agreement: {args.agreement} seeds of each way ...", flush=True)
        results["agreement"] = agreement(X, y, args.agreement)

    rows = [
        ("tutorial's way", t_tutorial, acc_tutorial),
        ("book's way, cold workers", t_cold, acc_book),
        ("book's way, warm workers", t_warm, acc_book),
        ("NumPy floor, 1 process", t_numpy, acc_numpy),
    ]
    if results.get("jax"):
        rows.append(("book's way on JAX, cold", results["jax"]["cold_s"], results["jax"]["mean"]))
        rows.append(("book's way on JAX, warm", results["jax"]["warm_s"], results["jax"]["mean"]))
    print()
    print(f"{'10-fold baseline, 300 epochs':<30} {'time (s)':>9} {'mean acc.':>10} {'vs tutorial':>12}")
    for label, seconds, accuracy in rows:
        print(f"{label:<30} {seconds:9.1f} {accuracy:10.2%} {t_tutorial / seconds:11.1f}x")
    print()
    print(f"speed-up, warm: {t_tutorial / t_warm:.1f}x; cold: {t_tutorial / t_cold:.1f}x")
    print(f"book's way (warm) vs NumPy floor: {t_warm / t_numpy:.2f}x the floor's time")
    print()
    print_kernel_costs(kernels)
    if results.get("agreement"):
        a = results["agreement"]
        print(f"agreement over {a['repeats']} seeds: tutorial {np.mean(a['tutorial_means']):.2%}, "
              f"book {np.mean(a['book_means']):.2%}, difference {a['difference'] * 100:+.2f} points "
              f"(95% CI {a['ci95'][0] * 100:+.2f} to {a['ci95'][1] * 100:+.2f}), p = {a['p_value']:.2f}")
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
