"""The cross-validation harness: the tutorial's protocol, reproducible and in parallel.

The tutorial scores a ``Pipeline(StandardScaler, KerasClassifier)`` with
``cross_val_score`` over ``StratifiedKFold(n_splits=10, shuffle=True)``.
:func:`cross_validate_model` does the same, with three additions:

* one ``seed`` fixes everything: the fold assignment, and for each fold a seed
  derived from it (``numpy.random.SeedSequence``) that the estimator receives
  as ``random_state`` and that fixes its weights, dropout masks and shuffles;
* folds run in parallel worker processes (``n_jobs``), and because each fold's
  seed depends only on ``seed`` and the fold's position, the scores do not
  depend on ``n_jobs``;
* ``n_repeats > 1`` repeats the whole k-fold with fresh fold assignments
  (repeated stratified cross-validation), the same ones for every model given
  the same seed, so that comparisons between models are paired.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold

from helpers.validation import check_int, check_seed

__all__ = ["CVResult", "cross_validate_model", "fold_seeds", "make_splits"]


@dataclass(frozen=True)
class CVResult:
    """Scores of one model under (repeated) k-fold cross-validation.

    Attributes
    ----------
    name
        A label for tables and plots.
    scores
        Array of shape ``(n_repeats, n_splits)``: the score of each fold.
    seed
        The seed the run used.
    """

    name: str
    scores: np.ndarray
    seed: int

    @property
    def n_repeats(self) -> int:
        return self.scores.shape[0]

    @property
    def n_splits(self) -> int:
        return self.scores.shape[1]

    @property
    def mean(self) -> float:
        """Mean over all folds (and repeats)."""
        return float(self.scores.mean())

    @property
    def std(self) -> float:
        """Standard deviation over all folds, as NumPy's default (ddof=0) and the tutorial print it."""
        return float(self.scores.std())

    def summary(self) -> str:
        """The tutorial's format: ``"mean% (std%)"``."""
        return f"{self.mean * 100:.2f}% ({self.std * 100:.2f}%)"

    def __str__(self) -> str:
        return f"{self.name}: {self.summary()}"


def make_splits(y, *, n_splits: int = 10, n_repeats: int = 1, seed: int = 0):
    """Stratified, shuffled fold assignments: a list of ``(train, test)`` index pairs.

    Repeat ``r`` is ``StratifiedKFold(n_splits, shuffle=True)`` with a seed
    derived from ``seed`` and ``r``; the first repeat is the tutorial's split.
    """
    y = np.asarray(y)
    n_splits = check_int("n_splits", n_splits, minimum=2)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    seed = check_seed("seed", seed)
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0
    if n_splits > smallest:
        raise ValueError(
            f"n_splits must be between 2 and the smallest class count ({smallest}); got {n_splits}"
        )
    repeat_seeds = fold_seeds(seed, n_repeats, purpose="splits")
    splits = []
    for repeat_seed in repeat_seeds:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=repeat_seed)
        splits.extend(splitter.split(np.zeros((len(y), 1)), y))
    return splits


def fold_seeds(seed: int, n: int, *, purpose: str = "folds") -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed``.

    ``purpose`` separates streams, so the seeds that split the data are not
    the seeds that train the models.
    """
    seed = check_seed("seed", seed)
    n = check_int("n", n, minimum=1)
    tags = {"splits": 1, "folds": 2}
    if purpose not in tags:
        raise ValueError(f"purpose must be one of {sorted(tags)}; got {purpose!r}")
    tag = tags[purpose]
    return [int(s) for s in np.random.SeedSequence([seed, tag]).generate_state(n)]


# loky (joblib's process pool) shuts a worker down once its memory has grown by
# 300 MB since its first task, taking that for a leak; the next fold then pays
# for a new worker (importing TensorFlow: seconds) and a UserWarning lands in
# the notebook.  TensorFlow never frees the graphs it traces, about 10-15 MB per
# network structure, so a chapter that compares twenty structures crosses that
# line without leaking anything it could free.  Workaround (joblib 1.6, loky
# 3.5): raise the threshold, a module global that each worker reads at every
# check, from inside the worker.  tests/test_cv.py checks it takes effect.
WORKER_MEMORY_GROWTH_LIMIT = 4 * 1024**3


def _tolerate_tensorflow_memory_in_worker() -> None:
    from joblib.externals.loky import process_executor

    if getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", None) is not None:
        process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_MEMORY_GROWTH_LIMIT


def _configure_worker() -> None:
    """One thread per worker process: with one process per core, more only contend.

    Only called in joblib's worker processes (n_jobs > 1), never in the
    caller's own process, whose TensorFlow settings are the caller's business.
    Scores do not depend on it (tests/test_cv.py compares n_jobs=1 and 2).
    """
    import tensorflow as tf

    _tolerate_tensorflow_memory_in_worker()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow is already running in this process; keep its setting.


def _seeded(estimator, seed: int):
    """A fresh clone of ``estimator`` with every ``random_state`` parameter set to ``seed``."""
    estimator = clone(estimator)
    keys = [k for k in estimator.get_params() if k == "random_state" or k.endswith("__random_state")]
    if not keys:
        raise ValueError(
            f"{type(estimator).__name__} has no random_state parameter to seed; "
            "cross_validate_model needs one so that each fold is reproducible"
        )
    return estimator.set_params(**{k: seed for k in keys})


def _score_fold(estimator, X, y, train, test, seed, scoring, in_worker):
    if in_worker:
        _configure_worker()
    model = _seeded(estimator, seed)
    model.fit(X[train], y[train])
    return get_scorer(scoring)(model, X[test], y[test])


def cross_validate_model(
    estimator,
    X,
    y,
    *,
    n_splits: int = 10,
    n_repeats: int = 1,
    seed: int = 0,
    n_jobs: int | None = None,
    scoring: str = "accuracy",
    name: str | None = None,
) -> CVResult:
    """Score ``estimator`` by stratified, shuffled k-fold cross-validation.

    Parameters
    ----------
    estimator
        A scikit-learn estimator or pipeline with a ``random_state`` parameter
        (for example ``Pipeline([StandardScaler, FastKerasClassifier])``).
        Each fold fits a fresh clone.
    X, y
        Features and integer labels.
    n_splits
        Number of folds, from 2 to the smallest class count.
    n_repeats
        Number of times the k-fold is repeated with a new fold assignment.
    seed
        Fixes the fold assignment and, through :func:`fold_seeds`, every
        fold's model.
    n_jobs
        Worker processes; ``None`` uses one per core.  Scores do not depend
        on it.
    scoring
        A scikit-learn scorer name.
    name
        Label for the result (defaults to the estimator's class name).

    Returns
    -------
    CVResult

    Examples
    --------
    >>> from helpers import load_sonar, make_classifier, build_baseline
    >>> data = load_sonar()
    >>> result = cross_validate_model(make_classifier(build_baseline), data.X, data.y,
    ...                               seed=7, name="baseline")
    >>> print(result)  # doctest: +SKIP
    baseline: 83.71% (6.74%)
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array; got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same number of rows; got {len(X)} and {len(y)}")
    if n_jobs is None:
        n_jobs = os.cpu_count() or 1
    n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    get_scorer(scoring)  # an unknown name fails here, before any training
    splits = make_splits(y, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    seeds = fold_seeds(seed, len(splits))
    jobs = (
        delayed(_score_fold)(estimator, X, y, train, test, fold_seed, scoring, n_jobs > 1)
        for (train, test), fold_seed in zip(splits, seeds)
    )
    scores = Parallel(n_jobs=n_jobs)(jobs)
    return CVResult(
        name=name or type(estimator).__name__,
        scores=np.asarray(scores, dtype=float).reshape(n_repeats, n_splits),
        seed=seed,
    )
