"""Time the tuning chapter's grid search three ways, in one run: what does the Dask path cost?

    make bench-search     # or: .venv/bin/python benchmarks/bench_search.py

The search is chapter 6's: ``GridSearchCV`` over twelve candidates (six hidden
dropout rates, each with max-norm 3 at learning rate 0.1 and with no limit at
0.01) of the hidden-dropout pipeline, 3 inner folds, on all 208 rows: 36
fits of 300 epochs, plus the refit of the winner.  It runs

1. in this process (``n_jobs=1``);
2. on local worker processes (``n_jobs`` = the cores, started before timing);
3. on a ``distributed.LocalCluster`` with one single-threaded worker process
   per core (started before timing);

and checks that the three runs' scores are identical.  ``run_search`` trains
the search's fits as lanes (``helpers/lanes.py``) on the workers, one task per
worker process (on Dask, a few fits per task), then replays them in
scikit-learn's ``GridSearchCV``; with ``n_jobs=1`` all of them are lanes of one
computation in this process.  It prints the wall
times, the ratios to the first, the cost of one fit, and writes them to
``benchmarks/search_results.json``, which chapter 6 quotes.  Each search runs
twice on each backend and the second (warm: TensorFlow imported, training
drivers traced) is the one reported; the first is recorded as ``cold``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import helpers  # noqa: F401  (first: TensorFlow's kernels and quiet start-up)

# isort: split
import numpy as np

from helpers import build_hidden_dropout, load_sonar, make_classifier
from helpers.search import make_search, run_search, search_scores

RESULTS = Path(__file__).resolve().parent / "search_results.json"
SEED = 7
INNER_SPLITS = 3
RATES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
DROPOUT, MAX_NORM, LEARNING_RATE = (
    "model__model__hidden_dropout",
    "model__model__max_norm",
    "model__model__learning_rate",
)
PARAM_GRID = [
    {DROPOUT: RATES, MAX_NORM: [3.0], LEARNING_RATE: [0.1]},
    {DROPOUT: RATES, MAX_NORM: [None], LEARNING_RATE: [0.01]},
]


def timed_search(X, y, *, n_jobs, scheduler=None):
    search = make_search(
        make_classifier(build_hidden_dropout),
        PARAM_GRID,
        n_splits=INNER_SPLITS,
        seed=SEED,
        n_jobs=n_jobs,
    )
    start = time.perf_counter()
    run_search(search, X, y, scheduler=scheduler)
    return time.perf_counter() - start, search


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="local processes and LocalCluster workers (default: the cores)",
    )
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    data = load_sonar()
    X, y = data.X, data.y
    n_fits = 12 * INNER_SPLITS
    runs, scores = {}, {}

    print(
        f"grid: 12 candidates x {INNER_SPLITS} folds = {n_fits} fits of 300 epochs, + 1 refit",
        flush=True,
    )
    for label, kwargs in (
        ("n_jobs=1", {"n_jobs": 1}),
        (f"local processes ({args.workers})", {"n_jobs": args.workers}),
    ):
        cold, _ = timed_search(X, y, **kwargs)
        warm, search = timed_search(X, y, **kwargs)
        runs[label] = {"cold_s": cold, "warm_s": warm}
        scores[label] = search_scores(search)
        print(
            f"  {label:<28} {warm:7.1f} s  (first run {cold:.1f} s)",
            flush=True,
        )

    label = f"LocalCluster ({args.workers} x 1 thread)"
    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        startup = time.perf_counter() - start
        cold, _ = timed_search(X, y, n_jobs=args.workers, scheduler=client)
        warm, search = timed_search(
            X, y, n_jobs=args.workers, scheduler=client
        )
    runs[label] = {"cold_s": cold, "warm_s": warm, "cluster_start_s": startup}
    scores[label] = search_scores(search)
    print(
        f"  {label:<28} {warm:7.1f} s  (first run {cold:.1f} s; cluster start {startup:.1f} s)"
    )

    reference = scores["n_jobs=1"]
    identical = all(np.array_equal(reference, s) for s in scores.values())
    base = runs["n_jobs=1"]["warm_s"]
    for run in runs.values():
        run["ratio_to_n_jobs_1"] = run["warm_s"] / base
    per_fit = base / (n_fits + 1)
    print("\nspeed-up over n_jobs=1 (warm):")
    for name, run in runs.items():
        print(f"  {name:<28} {base / run['warm_s']:5.2f}x")
    print(
        f"one fit in this process: {per_fit:.2f} s; scores identical on all three: {identical}"
    )

    result = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "candidates": 12,
        "inner_splits": INNER_SPLITS,
        "fits": n_fits + 1,
        "workers": args.workers,
        "per_fit_s": per_fit,
        "runs": runs,
        "identical_scores": identical,
        "mean_best_score": float(search.best_score_),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(RESULTS.parent.parent)}")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
