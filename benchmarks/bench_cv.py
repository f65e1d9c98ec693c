"""Time one 10-fold cross-validation of the baseline several ways, side by side.

    make bench            # or: .venv/bin/python benchmarks/bench_cv.py

1. The tutorial's way, as a reader would type it: SciKeras' ``KerasClassifier``
   in a ``Pipeline``, ``cross_val_score`` over ``StratifiedKFold(10, shuffle=True)``,
   ``fit`` fed NumPy arrays for 300 epochs in batches of 16, one fold after another.
2. The book's way: ``cross_validate_model(make_classifier(build_baseline))``, the
   same model, optimizer, batches, epochs and folds, on two worker processes:
   first with every fold trained on its own by the compiled driver
   (``fit_compiled``, the "single-network path", ``lanes=False``), then with
   each worker's folds trained together as lanes (``helpers/lanes.py``, the
   default).  Each timed twice: the single path's first call ("cold")
   includes starting the workers (the first call in a fresh notebook), the
   lanes' first call finds them running and loads the compiled loop; "warm"
   reuses everything.  Then a grid of 24
   configurations of the hidden-dropout network (6 dropout rates x 4 max-norm
   limits) x 10 folds with ``cross_validate_many``, by each path, with the mean
   accuracies of both (they differ only by the luck of the dropout masks).
3. A floor: the same training written directly in NumPy (forward pass,
   back-propagation, SGD with momentum), one process, so the distance left to
   the arithmetic itself is visible.

4. What the book's fixed CPU kernels cost (``helpers/__init__.py`` sets
   ``TF_ENABLE_ONEDNN_OPTS=0``, ``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0``
   and ``ONEDNN_MAX_CPU_ISA=AVX2`` so that a seed gives the same numbers on
   every x86-64 CPU): the baseline and the
   visible-dropout model of chapter 2, cross-validated in one process under
   each kernel setting (each in a fresh interpreter, since TensorFlow reads
   the settings once), with their times, ratios and mean accuracies.  The
   folds train on the single-network path (``lanes=False``): the lanes'
   compiled loop (``helpers/lane_kernel.py``) does not use TensorFlow's
   kernels at all.

It prints the times, the ratios and each way's mean accuracy, and writes them
to ``benchmarks/results.json``, which the appendix "Why the book's code is fast"
displays.  With ``--jax`` (and the optional ``jax`` extra installed) it also
times the book's way under Keras' JAX backend, in a subprocess; with
``--agreement N`` it compares mean accuracies over N seeds: the tutorial's way
against the book's, and the single-network path against the lanes.
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

import helpers  # first: keeps TensorFlow's start-up log quiet

# isort: split
import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helpers import (
    build_baseline,
    build_hidden_dropout,
    build_visible_dropout,
    cross_validate_model,
    load_sonar,
    make_classifier,
)
from helpers.cv import cross_validate_many

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
        (
            "mlp",
            KerasClassifier(
                model=make_network,
                epochs=EPOCHS,
                batch_size=BATCH_SIZE,
                verbose=0,
            ),
        ),
    ]
    folds = StratifiedKFold(n_splits=10, shuffle=True, random_state=seed)
    start = time.perf_counter()
    scores = cross_val_score(Pipeline(steps), X, y, cv=folds)
    return time.perf_counter() - start, float(scores.mean())


def book_way(
    X, y, n_jobs: int, seed: int = SEED, lanes: bool = True
) -> tuple[float, float]:
    """cross_validate_model: the folds as lanes (default) or one at a time."""
    classifier = make_classifier(build_baseline)
    classifier.set_params(model__lanes=lanes)
    start = time.perf_counter()
    result = cross_validate_model(classifier, X, y, seed=seed, n_jobs=n_jobs)
    return time.perf_counter() - start, result.mean


# The grid of the lane benchmark: 6 hidden dropout rates x 4 max-norm limits
# of the tutorial's hidden-dropout network, 24 configurations.
GRID_RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
GRID_LIMITS = (2.0, 3.0, 4.0, 5.0)


def grid_way(X, y, lanes: bool, seed: int = SEED) -> tuple[float, dict]:
    """The 24-configuration grid x 10 folds, with cross_validate_many on 2 workers."""
    grid = {}
    for rate in GRID_RATES:
        for limit in GRID_LIMITS:
            classifier = make_classifier(
                build_hidden_dropout, hidden_dropout=rate, max_norm=limit
            )
            classifier.set_params(model__lanes=lanes)
            grid[f"rate {rate}, max-norm {limit}"] = classifier
    start = time.perf_counter()
    results = cross_validate_many(grid, X, y, seed=seed, n_jobs=2)
    means = {name: result.mean for name, result in results.items()}
    return time.perf_counter() - start, means


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
        Xtr, Xte = (
            scaler.transform(X[train]).astype(np.float32),
            scaler.transform(X[test]).astype(np.float32),
        )
        ytr = y[train].astype(np.float32)[:, None]
        weights, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            weights.append(
                rng.uniform(-limit, limit, (fan_in, fan_out)).astype(
                    np.float32
                )
            )
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
                    activations.append(
                        np.maximum(z, 0) if i < 2 else 1 / (1 + np.exp(-z))
                    )
                delta = (activations[-1] - ytr[idx]) / len(idx)
                grads_w, grads_b = [None] * 3, [None] * 3
                for i in (2, 1, 0):
                    grads_w[i] = activations[i].T @ delta
                    grads_b[i] = delta.sum(axis=0)
                    if i:
                        delta = (delta @ weights[i].T) * (activations[i] > 0)
                for j, (param, grad) in enumerate(
                    zip(weights + biases, grads_w + grads_b)
                ):
                    velocities[j] = momentum * velocities[j] - lr * grad
                    param += velocities[j]
        h = Xte
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w + b
            h = np.maximum(h, 0) if i < 2 else h
        accuracies.append(float(((h[:, 0] > 0) == (y[test] == 1)).mean()))
    return time.perf_counter() - start, float(np.mean(accuracies))


def _commit() -> str:
    """The checked-out commit, with "+changes" if the working tree differs."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        return subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def agreement(X, y, repeats: int) -> dict:
    """Mean accuracy of the tutorial's way and of the book's single-network
    path over `repeats` seeds (each a full 10-fold run; about 4 min a seed)."""
    from scipy import stats

    tutorial = [tutorial_way(X, y, seed=100 + r)[1] for r in range(repeats)]
    book = [
        book_way(X, y, n_jobs=2, seed=100 + r, lanes=False)[1]
        for r in range(repeats)
    ]
    test = stats.ttest_ind(tutorial, book, equal_var=False)
    low, high = test.confidence_interval(0.95)
    return {
        "measured": time.strftime("%Y-%m-%d"),
        "book_path": "single-network (fit_compiled)",
        "repeats": repeats,
        "tutorial_means": tutorial,
        "book_means": book,
        "difference": float(np.mean(tutorial) - np.mean(book)),
        "ci95": [float(low), float(high)],
        "p_value": float(test.pvalue),
    }


def lane_agreement(X, y, repeats: int) -> dict:
    """Mean accuracy of the single-network path and of the lanes over
    `repeats` seeds, for the baseline (no dropout: the two paths differ only
    by float rounding) and the hidden-dropout network (their dropout masks
    come from different random streams).  A few seconds a seed."""
    from scipy import stats

    report = {"repeats": repeats}
    for name, builder in (
        ("baseline", build_baseline),
        ("hidden_dropout", build_hidden_dropout),
    ):
        means = {}
        for lanes in (False, True):
            classifier = make_classifier(builder)
            classifier.set_params(model__lanes=lanes)
            means[lanes] = [
                cross_validate_model(
                    classifier, X, y, seed=200 + r, n_jobs=2
                ).mean
                for r in range(repeats)
            ]
        test = stats.ttest_rel(means[False], means[True])
        low, high = test.confidence_interval(0.95)
        report[name] = {
            "single_means": means[False],
            "lanes_means": means[True],
            "difference": float(np.mean(means[False]) - np.mean(means[True])),
            "ci95": [float(low), float(high)],
            "p_value": float(test.pvalue),
        }
    return report


def jax_book_way() -> dict | None:
    """Run the book's way in a subprocess with KERAS_BACKEND=jax."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    code = (
        "import json, sys; sys.argv = ['bench', '--book-only'];"
        f"import runpy; runpy.run_path({str(Path(__file__))!r}, "
        "run_name='__main__')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# Kernel settings compared by kernel_costs(): the environment each probe starts with,
# and whether it also turns on TensorFlow's op determinism.
# "sgemm" rows hand Eigen's matrix products to oneDNN (TensorFlow's default).
SGEMM = {"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "1"}
KERNEL_SETTINGS = {
    "book (onednn ops off, eigen's own contraction)": ({}, False),
    "book + tf op determinism": ({}, True),
    "onednn ops off, sgemm held to AVX2 (the book before session 10)": (
        SGEMM,
        False,
    ),
    "onednn ops on, sgemm uncapped": (
        {**SGEMM, "TF_ENABLE_ONEDNN_OPTS": "1", "ONEDNN_MAX_CPU_ISA": "ALL"},
        False,
    ),
    "onednn ops off, sgemm uncapped": (
        {**SGEMM, "TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "ALL"},
        False,
    ),
    "onednn ops off, sgemm held to AVX": (
        {**SGEMM, "ONEDNN_MAX_CPU_ISA": "AVX"},
        False,
    ),
}


def kernel_probe(determinism: bool) -> dict:
    """In this process: warm 10-fold runs of the baseline and the visible-dropout model."""
    import tensorflow as tf

    from helpers.environment import tensorflow_kernels

    if determinism:
        tf.config.experimental.enable_op_determinism()
    data = load_sonar()
    report = {"kernels": tensorflow_kernels()}
    for name, build in (
        ("baseline", build_baseline),
        ("visible_dropout", build_visible_dropout),
    ):
        # TensorFlow's kernels train the single-network path only.
        estimator = make_classifier(build).set_params(model__lanes=False)
        cross_validate_model(
            estimator, data.X, data.y, seed=SEED, n_jobs=1, n_splits=2
        )  # warm-up
        start = time.perf_counter()
        result = cross_validate_model(
            estimator, data.X, data.y, seed=SEED, n_jobs=1
        )
        report[name] = {
            "seconds": time.perf_counter() - start,
            "mean": result.mean,
            "summary": result.summary(),
        }
    return report


def kernel_costs() -> dict:
    """Run kernel_probe under each of KERNEL_SETTINGS, each in a fresh interpreter."""
    reports = {}
    for label, (variables, determinism) in KERNEL_SETTINGS.items():
        print(f"  {label} ...", flush=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in helpers.BOOK_KERNEL_SETTINGS
        }
        env.update(variables)
        flag = (
            "--kernel-probe-determinism" if determinism else "--kernel-probe"
        )
        out = subprocess.run(
            [sys.executable, __file__, flag],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        reports[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return reports


def print_kernel_costs(reports: dict) -> None:
    book = reports.get(next(iter(KERNEL_SETTINGS)))
    print(
        f"{'kernel setting (10 folds, 1 process)':<44} {'baseline':>30} {'visible dropout':>30}"
    )
    for label, report in reports.items():
        cells = []
        for name in ("baseline", "visible_dropout"):
            seconds = report[name]["seconds"]
            ratio = seconds / book[name]["seconds"] if book else float("nan")
            cells.append(
                f"{seconds:5.1f} s {ratio:4.2f}x {report[name]['summary']:>15}"
            )
        print(f"{label:<44} {cells[0]:>30} {cells[1]:>30}")
    print(
        "(times are ratios to the book's setting; the scores show which "
        "settings change the numbers)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jax",
        action="store_true",
        help="also time the book's way on Keras' JAX backend",
    )
    parser.add_argument(
        "--agreement",
        type=int,
        default=0,
        metavar="N",
        help="also compare the tutorial's way and the book's single-network "
        "path over N seeds (N x 4 min)",
    )
    parser.add_argument(
        "--lane-agreement",
        type=int,
        default=20,
        metavar="N",
        help="compare the single-network path and the lanes over N seeds "
        "(default 20, about 4 min)",
    )
    parser.add_argument(
        "--book-only", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--kernels-only",
        action="store_true",
        help="only measure what the book's fixed CPU kernels cost (about 3 min)",
    )
    parser.add_argument(
        "--kernel-probe", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--kernel-probe-determinism",
        action="store_true",
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()

    if args.kernel_probe or args.kernel_probe_determinism:
        print(
            json.dumps(
                kernel_probe(determinism=args.kernel_probe_determinism)
            )
        )
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
        print(
            json.dumps(
                {
                    "backend": keras.backend.backend(),
                    "cold_s": cold,
                    "warm_s": warm,
                    "mean": mean,
                }
            )
        )
        return 0

    print(
        f"Keras {keras.__version__} ({keras.backend.backend()}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(
        "1/4 tutorial's way (one fold after another, fit on NumPy arrays) ...",
        flush=True,
    )
    t_tutorial, acc_tutorial = tutorial_way(X, y)
    print(f"    {t_tutorial:.1f} s", flush=True)
    print(
        "2/4 book's way: single-network path, then lanes (2 workers) ...",
        flush=True,
    )
    t_single_cold, acc_single = book_way(X, y, n_jobs=2, lanes=False)
    t_single, acc_single_warm = book_way(X, y, n_jobs=2, lanes=False)
    assert acc_single == acc_single_warm, (
        "the book's way must be reproducible"
    )
    t_cold, acc_book = book_way(X, y, n_jobs=2)
    t_warm, acc_book_warm = book_way(X, y, n_jobs=2)
    assert acc_book == acc_book_warm, "the book's way must be reproducible"
    print(
        f"    single: {t_single_cold:.1f} s cold, {t_single:.1f} s warm; "
        f"lanes: {t_cold:.1f} s cold, {t_warm:.1f} s warm",
        flush=True,
    )
    n_grid = len(GRID_RATES) * len(GRID_LIMITS)
    print(
        f"    grid of {n_grid} configurations x 10 folds, single path ...",
        flush=True,
    )
    t_grid_single, grid_single = grid_way(X, y, lanes=False)
    print(f"    {t_grid_single:.1f} s; as lanes ...", flush=True)
    t_grid_lanes, grid_lanes = grid_way(X, y, lanes=True)
    print(f"    {t_grid_lanes:.1f} s", flush=True)
    print("3/4 NumPy floor (one process) ...", flush=True)
    t_numpy, acc_numpy = numpy_floor(X, y)
    print(f"    {t_numpy:.1f} s", flush=True)
    print(
        "4/4 what the book's fixed CPU kernels cost (each setting in a fresh interpreter) ...",
        flush=True,
    )
    started = time.perf_counter()
    kernels = kernel_costs()
    print(f"    {time.perf_counter() - started:.1f} s", flush=True)

    results = {
        "commit": _commit(),
        "measured": time.strftime("%Y-%m-%d"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
        },
        "tutorial_s": t_tutorial,
        "tutorial_mean": acc_tutorial,
        "book_cold_s": t_cold,
        "book_warm_s": t_warm,
        "book_mean": acc_book,
        "single_cold_s": t_single_cold,
        "single_warm_s": t_single,
        "single_mean": acc_single,
        "grid": {
            "configurations": n_grid,
            "folds": 10,
            "single_s": t_grid_single,
            "lanes_s": t_grid_lanes,
            "single_means": grid_single,
            "lanes_means": grid_lanes,
        },
        "numpy_s": t_numpy,
        "numpy_mean": acc_numpy,
        "kernels": kernels,
    }
    if args.jax:
        results["jax"] = jax_book_way()
    if args.agreement:
        print(
            f"agreement: {args.agreement} seeds of each way ...", flush=True
        )
        results["agreement"] = agreement(X, y, args.agreement)
    elif RESULTS.exists():
        # The tutorial-vs-book agreement costs about 4 min a seed; unless it
        # is asked for again, keep the last measurement (it says when).
        previous = json.loads(RESULTS.read_text()).get("agreement")
        if previous:
            previous.setdefault("measured", "2026-11-27 or before")
            previous.setdefault("book_path", "single-network (fit_compiled)")
            results["agreement"] = previous
    if args.lane_agreement:
        print(
            f"lanes against the single-network path: {args.lane_agreement} "
            "seeds ...",
            flush=True,
        )
        results["lane_agreement"] = lane_agreement(X, y, args.lane_agreement)

    rows = [
        ("tutorial's way", t_tutorial, acc_tutorial),
        ("single-network path, cold", t_single_cold, acc_single),
        ("single-network path, warm", t_single, acc_single),
        ("book's way (lanes), first call", t_cold, acc_book),
        ("book's way (lanes), warm", t_warm, acc_book),
        ("NumPy floor, 1 process", t_numpy, acc_numpy),
    ]
    if results.get("jax"):
        rows.append(
            (
                "book's way on JAX, cold",
                results["jax"]["cold_s"],
                results["jax"]["mean"],
            )
        )
        rows.append(
            (
                "book's way on JAX, warm",
                results["jax"]["warm_s"],
                results["jax"]["mean"],
            )
        )
    print()
    print(
        f"{'10-fold baseline, 300 epochs':<30} {'time (s)':>9} "
        f"{'mean acc.':>10} {'vs tutorial':>12}"
    )
    for label, seconds, accuracy in rows:
        print(
            f"{label:<30} {seconds:9.1f} {accuracy:10.2%} {t_tutorial / seconds:11.1f}x"
        )
    print()
    print(
        f"speed-up, warm: {t_tutorial / t_warm:.1f}x; cold: {t_tutorial / t_cold:.1f}x"
    )
    print(
        f"book's way (warm) vs NumPy floor: {t_numpy / t_warm:.2f}x as fast; "
        f"vs the single-network path: {t_single / t_warm:.2f}x as fast"
    )
    single_means = np.array(list(grid_single.values()))
    lane_means = np.array([grid_lanes[k] for k in grid_single])
    print(
        f"grid of {n_grid} x 10 folds: single path {t_grid_single:.1f} s, "
        f"lanes {t_grid_lanes:.1f} s, {t_grid_single / t_grid_lanes:.2f}x as fast"
    )
    print(
        f"    mean accuracy over the grid: single {single_means.mean():.2%}, "
        f"lanes {lane_means.mean():.2%}; per configuration, lanes minus "
        f"single: mean {np.mean(lane_means - single_means) * 100:+.2f}, "
        f"sd {np.std(lane_means - single_means, ddof=1) * 100:.2f} points"
    )
    print()
    print_kernel_costs(kernels)
    if results.get("agreement"):
        a = results["agreement"]
        print(
            f"agreement over {a['repeats']} seeds: tutorial {np.mean(a['tutorial_means']):.2%}, "
            f"book {np.mean(a['book_means']):.2%}, difference {a['difference'] * 100:+.2f} points "
            f"(95% CI {a['ci95'][0] * 100:+.2f} to {a['ci95'][1] * 100:+.2f}), "
            f"p = {a['p_value']:.2f}"
        )
    for name, a in results.get("lane_agreement", {}).items():
        if name == "repeats":
            continue
        low, high = a["ci95"]
        print(
            f"{name}: single path minus lanes over "
            f"{results['lane_agreement']['repeats']} seeds: "
            f"{a['difference'] * 100:+.2f} points (95% CI "
            f"{low * 100:+.2f} to {high * 100:+.2f}), p = {a['p_value']:.2f}"
        )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    cwd = Path.cwd()
    shown = (
        RESULTS.relative_to(cwd)
        if RESULTS.is_relative_to(cwd)
        else RESULTS.name
    )
    print(f"written to {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
