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

Where the parallel work runs is chosen by :func:`compute_on`: local worker
processes (joblib's loky backend) by default, or the workers of a Dask cluster
(joblib's Dask backend) given a ``distributed.Client`` or a scheduler address.
Both kinds of worker get the same per-process settings
(:func:`_configure_worker`), and since every fit is seeded, the scores are the
same on either (tests/test_dask.py).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold

from helpers.validation import check_int, check_seed, check_xy

__all__ = [
    "CVResult",
    "WorkerLostError",
    "as_results",
    "compute_on",
    "cross_validate_model",
    "default_n_jobs",
    "fold_seeds",
    "make_splits",
    "seeded",
]


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
        """Standard deviation over all folds, as NumPy's default (ddof=0) and
        the tutorial print it."""
        return float(self.scores.std())

    def summary(self) -> str:
        """The tutorial's format: ``"mean% (std%)"``."""
        return f"{self.mean * 100:.2f}% ({self.std * 100:.2f}%)"

    def __str__(self) -> str:
        return f"{self.name}: {self.summary()}"


def as_results(results) -> list[CVResult]:
    """One :class:`CVResult` or a non-empty sequence of them, as a list.

    Raises ``TypeError`` for anything else, naming the argument.
    """
    if isinstance(results, CVResult):
        return [results]
    results = list(results)
    if not results or not all(isinstance(r, CVResult) for r in results):
        raise TypeError(
            "results must be a CVResult or a non-empty sequence of CVResult"
        )
    return results


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
        splitter = StratifiedKFold(
            n_splits=n_splits, shuffle=True, random_state=repeat_seed
        )
        splits.extend(splitter.split(np.zeros((len(y), 1)), y))
    return splits


def fold_seeds(seed: int, n: int, *, purpose: str = "folds") -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed``.

    ``purpose`` separates streams, so the seeds that split the data are not
    the seeds that train the models: ``"splits"`` (:func:`make_splits`),
    ``"folds"`` (:func:`cross_validate_model`) or ``"search"``
    (:mod:`helpers.search`).
    """
    seed = check_seed("seed", seed)
    n = check_int("n", n, minimum=1)
    tags = {"splits": 1, "folds": 2, "search": 3}
    if purpose not in tags:
        raise ValueError(
            f"purpose must be one of {sorted(tags)}; got {purpose!r}"
        )
    tag = tags[purpose]
    return [
        int(s) for s in np.random.SeedSequence([seed, tag]).generate_state(n)
    ]


# loky (joblib's process pool) shuts a worker down once its memory has grown by
# 300 MB since its first task, taking that for a leak; the next fold then pays
# for a new worker (importing TensorFlow: seconds) and a UserWarning lands in
# the notebook.  TensorFlow never frees the graphs it traces, about 10-15 MB per
# network structure, so a chapter that compares twenty structures crosses that
# line without leaking anything it could free.  Workaround (joblib 1.6, loky
# 3.5): raise the threshold, a module global that each worker reads at every
# check, from inside the worker.  tests/test_cv.py checks it takes effect.
WORKER_MEMORY_GROWTH_LIMIT = 4 * 1024**3


# Set by chapters/conftest.py when pytest-xdist runs several notebooks at once,
# so that they share the cores instead of each starting one worker per core.
N_JOBS_VARIABLE = "DROPOUT_BOOK_N_JOBS"


def default_n_jobs() -> int:
    """How many worker processes the book trains on when ``n_jobs`` is not given.

    One per core, unless the environment variable ``DROPOUT_BOOK_N_JOBS``
    says otherwise (a positive integer; anything else is an error naming
    it).  ``pytest --nbval`` sets it when it runs several notebooks side by
    side (chapters/conftest.py): each notebook then gets its share of the
    cores rather than one worker per core, which would only queue for them.
    Scores do not depend on it.

    Examples
    --------
    >>> default_n_jobs() >= 1
    True
    """
    setting = os.environ.get(N_JOBS_VARIABLE, "")
    if not setting.strip():
        return os.cpu_count() or 1
    if not re.fullmatch(r"[1-9][0-9]*", setting.strip()):
        raise ValueError(
            f"the environment variable {N_JOBS_VARIABLE} must be a positive "
            f"integer (worker processes); got {setting!r}"
        )
    return int(setting)


def _tolerate_tensorflow_memory_in_worker() -> None:
    from joblib.externals.loky import process_executor

    if getattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", None) is not None:
        process_executor._MAX_MEMORY_LEAK_SIZE = WORKER_MEMORY_GROWTH_LIMIT


def _configure_worker() -> None:
    """One thread per worker process: with one process per core, more only contend.

    Only called in worker processes, local (loky runs it when a worker
    starts) or Dask's (a worker plugin runs it, see :func:`compute_on`), never
    in the caller's own process, whose TensorFlow settings are the caller's
    business.  Scores do not depend on it (tests/test_cv.py compares n_jobs=1
    and 2, tests/test_dask.py local processes and a Dask cluster).
    """
    import tensorflow as tf

    _tolerate_tensorflow_memory_in_worker()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow is already running in this process; keep its setting.


def seeded(estimator, seed: int):
    """A fresh clone of ``estimator`` with every ``random_state`` parameter set to ``seed``.

    Works on pipelines and nested estimators (``model__random_state``).  Raises
    ``ValueError`` if there is nothing to seed.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> seeded(RandomForestClassifier(), 7).random_state
    7
    """
    seed = check_seed("seed", seed)
    estimator = clone(estimator)
    keys = [
        k
        for k in estimator.get_params()
        if k == "random_state" or k.endswith("__random_state")
    ]
    if not keys:
        raise ValueError(
            f"{type(estimator).__name__} has no random_state parameter to seed; "
            "a reproducible fit needs one"
        )
    return estimator.set_params(**{k: seed for k in keys})


# ----------------------------------------------------------------------------- where work runs


class WorkerLostError(RuntimeError):
    """A Dask worker died (out of memory, killed) while running the book's work."""


# How long to wait for a scheduler given by address, and for its first worker.
CONNECT_TIMEOUT_SECONDS = 10
WORKER_SETUP_NAME = "dropout-book-worker-setup"


# Keras draws the default seed of every initializer and Dropout layer from
# Python's process-wide `random` generator, which FastKerasClassifier seeds
# (keras.utils.set_random_seed) just before it builds the model.  A Dask
# worker's event-loop thread draws from the same generator while the task
# thread fits: dask.sizeof samples the items of every list and dict it sizes
# (random.sample), and distributed and Tornado jitter their retries and
# periodic callbacks.  A draw that lands between the seeding and the build
# gives the fit other initial weights: measured here (dask 2026.8.0), one to
# four of twelve folds of a small search differed from the local run, a
# different few each time.  Workaround, in every process that runs Dask
# threads next to fits (the workers, and the caller, which hosts a
# LocalCluster's scheduler): give those modules a private generator of their
# own.  tests/test_dask.py checks that it is installed and that the cluster's
# results equal the local ones.
def _isolate_python_random(
    prefixes=("dask", "distributed", "tornado"),
) -> list[str]:
    """Point the ``random`` of Dask's and Tornado's modules at a private generator.

    Returns the names of the modules changed (empty when already done).
    """
    import random
    import sys

    private = random.Random()
    changed = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(prefixes):
            continue
        if getattr(module, "random", None) is random:
            module.random = private
            changed.append(name)
    return changed


def _dask_worker_setup():
    """A Dask worker plugin that gives each worker the local workers' settings.

    Built on first use, so that importing helpers does not import distributed.
    Registered with the client, the plugin runs :func:`_configure_worker` in
    every worker that is running or joins later (or is restarted after a
    crash).  Unpickling it on a worker imports ``helpers`` first, so
    TensorFlow starts there quietly and with the book's kernels.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class BookWorkerSetup(WorkerPlugin):
        name = WORKER_SETUP_NAME

        def setup(self, worker):
            _isolate_python_random()
            _configure_worker()

    return BookWorkerSetup()


# Workaround for joblib 1.6.0's Dask backend (joblib/_dask.py), which hangs for
# ever when a worker dies.  joblib learns a batch's outcome only through the
# callback it passes to `submit`: its status stays "pending" until the
# callback is called with the result (or with an exception, which marks the
# batch failed).  The backend calls it for finished and cancelled Dask
# futures, but not for erred ones: a task whose worker died (KilledWorker)
# leaves joblib waiting.  Also, joblib scatters each argument over 1 kB (the
# fold indices) to one worker without lineage; if that worker dies while
# `submit` is still awaiting the data, `submit` fails on the event loop and
# nothing is ever delivered.  Seen here in about three runs in four of
# tests/test_dask.py::test_a_worker_that_dies_mid_search_is_a_clear_error, and
# in CI, which hung until its time limit.  The subclass below calls the
# callback with the exception in every case; compute_on turns it into
# WorkerLostError.  It uses joblib's private `_to_func_args`,
# `waiting_futures`, `_results` and `_callbacks` (joblib pinned in
# requirements.txt; the test above fails if they change).
#
# Second workaround, for a Dask race (dask/distributed#3703): joblib scatters
# the data (`scatter=`) under keys derived from its contents, so two
# computations in a row on the same X and y (the inner searches, then the
# refits, of nested_cross_validate) scatter the same keys.  The first one's
# release of a key can reach the scheduler after the second one has
# scattered it again, and the scheduler then drops data that the second
# one's tasks need: "cancelled for reason: lost dependencies" (seen once in
# session 15, in tests/test_dask.py's nested cross-validation, in a fresh
# clone's make test).  The subclass scatters under fresh keys (hash=False)
# instead; tests/test_dask.py checks that two computations on the same data
# get different keys.
def _dask_backend(client, scatter):
    """joblib's Dask backend with errors on its event loop delivered to the caller."""
    import asyncio
    import concurrent.futures
    import uuid

    from joblib._dask import DaskDistributedBackend
    from joblib._utils import _TracebackCapturingWrapper

    class DeliveringDaskBackend(DaskDistributedBackend):
        def __init__(self, *, client, scatter):
            super().__init__(client=client)  # nothing scattered yet
            self._scatter = list(scatter)
            scattered = (
                self.client.scatter(self._scatter, broadcast=True, hash=False)
                if self._scatter
                else []
            )
            self.data_futures = {
                id(x): f for x, f in zip(self._scatter, scattered)
            }

        def submit(self, func, callback=None):
            result = concurrent.futures.Future()
            result.get = result.result  # the AsyncResult API joblib expects

            async def send():
                try:
                    batch, tasks = await self._to_func_args(func)
                    future = self.client.submit(
                        _TracebackCapturingWrapper(batch),
                        tasks=tasks,
                        key=f"{batch!r}-{uuid.uuid4().hex}",
                        **self.submit_kwargs,
                    )
                except BaseException as exc:  # noqa: BLE001 - delivered to joblib below
                    _deliver(result, callback, exc)
                    return
                self._results[future] = result
                self._callbacks[future] = callback
                self.waiting_futures.add(future)

            self.client.loop.add_callback(send)
            return result

        async def _collect(self):
            while self._continue:
                async for future, outcome in self.waiting_futures:
                    result = self._results.pop(future, None)
                    callback = self._callbacks.pop(future, None)
                    if result is None:
                        continue
                    if future.status == "error":
                        outcome = outcome[1]  # (type, exception, traceback)
                    _deliver(
                        result,
                        callback,
                        outcome,
                        failed=future.status != "finished",
                    )
                await asyncio.sleep(0.01)

    def _deliver(result, callback, outcome, failed=True):
        """Resolve joblib's future and tell joblib.

        (A callback given an exception fails the batch.)
        """
        if failed:
            result.set_exception(outcome)
        else:
            result.set_result(outcome)
        if callback is not None:
            callback(outcome)

    return DeliveringDaskBackend(client=client, scatter=list(scatter or []))


def _dask_client(scheduler):
    """``(client, owned)`` for a ``distributed.Client`` or a scheduler address."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is pinned
        raise ImportError(
            "scheduler= needs the 'distributed' package (see requirements.txt)"
        ) from exc
    if isinstance(scheduler, Client):
        if scheduler.status not in ("running", "connecting", "newly-created"):
            raise ValueError(
                f"scheduler is a Client that is {scheduler.status}, not running"
            )
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise TypeError(
            "scheduler must be None (local processes), a distributed.Client or a scheduler "
            f"address such as 'tcp://10.0.0.5:8786'; got {scheduler!r}"
        )
    try:
        client = Client(
            scheduler, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False
        )
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"scheduler={scheduler!r} does not answer (no Dask scheduler reached within "
            f"{CONNECT_TIMEOUT_SECONDS} s); start one with `dask scheduler` and check the address"
        ) from exc
    return client, True


def _prepare_dask_workers(client, scheduler) -> None:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"scheduler={scheduler!r} has no workers after {CONNECT_TIMEOUT_SECONDS} s; start "
            "some with `dask worker ADDRESS`"
        ) from exc
    client.register_plugin(_dask_worker_setup(), name=WORKER_SETUP_NAME)


@contextlib.contextmanager
def compute_on(scheduler=None, *, n_jobs: int | None = None, scatter=None):
    """Run the joblib work inside the block on local processes or on a Dask cluster.

    Everything in ``helpers`` that runs in parallel (:func:`cross_validate_model`
    and the searches of :mod:`helpers.search`) runs inside this context, and
    scikit-learn code written by the reader can too.

    Parameters
    ----------
    scheduler
        ``None``: local worker processes (joblib's loky backend), each set up
        by :func:`_configure_worker` when it starts.  A ``distributed.Client``
        (left open) or a scheduler address such as ``"tcp://10.0.0.5:8786"``
        (connected to, and closed at the end): joblib's Dask backend, with the
        same setup registered as a worker plugin.
    n_jobs
        Local processes when nothing else says (``None``: one per core).
        Ignored on Dask, which uses every worker thread.
    scatter
        On Dask, arrays every task reads (the data), sent to every worker
        once at the start instead of on demand.

    Raises
    ------
    ConnectionError
        An address where no scheduler answers, or a scheduler without workers.
    WorkerLostError
        A Dask worker died while running a task and the scheduler could not
        finish the task elsewhere: it retries a task whose worker died
        (``distributed.scheduler.allowed-failures`` times), but not one whose
        inputs joblib had placed on that worker only.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> with compute_on(None, n_jobs=2):  # doctest: +SKIP
    ...     cross_val_score(model, X, y, n_jobs=2)
    """
    if n_jobs is not None:
        n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    if scheduler is None:
        with parallel_config(
            backend="loky", n_jobs=n_jobs, initializer=_configure_worker
        ):
            yield None
        return
    from asyncio import CancelledError as LoopCancelled
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    client, owned = _dask_client(scheduler)
    _isolate_python_random()
    try:
        _prepare_dask_workers(client, scheduler)
        with parallel_config(backend=_dask_backend(client, scatter)):
            yield client
    except (KilledWorker, CancelledError, LoopCancelled) as exc:
        raise WorkerLostError(
            "a Dask worker died while running a task, and the scheduler could not finish "
            f"it elsewhere ({type(exc).__name__}: {exc}); the computation was stopped. Common "
            "causes: the worker ran out of memory, or was stopped. See the workers' logs."
        ) from exc
    finally:
        if owned:
            client.close()


def _score_folds(estimators, X, y, fits, scoring, caller_pid):
    """Fit one seeded clone per ``(estimator index, train, test, seed)``; score each.

    Networks that ``helpers.lanes`` can train run as lanes of one
    computation (:func:`helpers.lanes.deferred_fits`); any other estimator
    fits one fold after another.  Each score is the same as when its fold
    is fitted alone.
    """
    from helpers.lanes import deferred_fits

    if os.getpid() != caller_pid:
        _configure_worker()  # already done when the worker started; cheap to repeat
    with deferred_fits():
        models = [
            seeded(estimators[e], seed).fit(X[train], y[train])
            for e, train, _, seed in fits
        ]
    scorer = get_scorer(scoring)
    return [
        scorer(model, X[test], y[test])
        for model, (_, _, test, _) in zip(models, fits)
    ]


# Folds per task when the work goes to a Dask cluster, whose size the caller
# need not know: enough tasks to spread a repeated cross-validation over a
# few machines, enough folds per task for lanes to pay off.
FOLDS_PER_DASK_TASK = 5


def _deal_out(task, estimators, X, y, fits, *args, n_jobs, scheduler):
    """Run ``task(estimators, X, y, share_of_fits, *args, caller_pid)`` on the workers.

    One task per worker process, each training its share of the fits
    together (as lanes, when the estimator allows); on a cluster, a few fits
    per task.  Fits are dealt out in turn, so that every task gets its share
    of each estimator (and of the slow ones).  Returns ``(share, result)``
    pairs, ``share`` being the indices into ``fits``.
    """
    if scheduler is None:
        n_tasks = min(n_jobs, len(fits))
    else:
        n_tasks = -(-len(fits) // FOLDS_PER_DASK_TASK)
    shares = [list(range(t, len(fits), n_tasks)) for t in range(n_tasks)]
    tasks = [
        delayed(task)(
            estimators, X, y, [fits[i] for i in share], *args, os.getpid()
        )
        for share in shares
    ]
    with compute_on(scheduler, n_jobs=n_jobs, scatter=[X, y]):
        results = Parallel(n_jobs=None if scheduler is not None else n_jobs)(
            tasks
        )
    return list(zip(shares, results))


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
    scheduler=None,
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
        Worker processes; ``None`` uses :func:`default_n_jobs` (one per
        core unless ``DROPOUT_BOOK_N_JOBS`` says otherwise).  Scores do not
        depend on it.  Ignored when ``scheduler`` is given.
    scoring
        A scikit-learn scorer name.
    name
        Label for the result (defaults to the estimator's class name).
    scheduler
        ``None`` to run on local processes, or a ``distributed.Client`` or a
        scheduler address to run the folds on a Dask cluster (see
        :func:`compute_on`).  Scores do not depend on it.

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
    name = name or type(estimator).__name__
    return cross_validate_many(
        {name: estimator},
        X,
        y,
        n_splits=n_splits,
        n_repeats=n_repeats,
        seed=seed,
        n_jobs=n_jobs,
        scoring=scoring,
        scheduler=scheduler,
    )[name]


def cross_validate_many(
    estimators,
    X,
    y,
    *,
    n_splits: int = 10,
    n_repeats: int = 1,
    seed: int = 0,
    n_jobs: int | None = None,
    scoring: str = "accuracy",
    scheduler=None,
) -> dict[str, CVResult]:
    """Cross-validate several estimators on the same folds, in one go.

    ``estimators`` maps a name to an estimator; the other arguments are
    :func:`cross_validate_model`'s.  Each result equals
    ``cross_validate_model(estimator, X, y, seed=seed, ...)`` for that
    estimator alone: the same folds, the same fold seeds, the same scores.
    What changes is the speed: the fits of all estimators are shared out
    between the workers together, and networks of one structure (a grid of
    dropout rates, say) train as lanes of one computation
    (``helpers/lanes.py``).

    Examples
    --------
    >>> from helpers import load_sonar, make_classifier, build_hidden_dropout
    >>> data = load_sonar()
    >>> grid = {f"dropout {r}": make_classifier(build_hidden_dropout,
    ...                                         hidden_dropout=r)
    ...         for r in (0.1, 0.2, 0.3)}
    >>> results = cross_validate_many(grid, data.X, data.y, seed=7)
    >>> sorted(results)  # doctest: +SKIP
    ['dropout 0.1', 'dropout 0.2', 'dropout 0.3']
    """
    if not isinstance(estimators, Mapping) or not estimators:
        raise ValueError(
            "estimators must be a non-empty mapping of names to estimators; "
            f"got {estimators!r}"
        )
    X, y = check_xy(X, y)
    if n_jobs is None:
        n_jobs = default_n_jobs()
    n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    get_scorer(scoring)  # an unknown name fails here, before any training
    names = list(estimators)
    for estimator in estimators.values():
        seeded(
            estimator, 0
        )  # nothing to seed: fail here, before any training
    splits = make_splits(y, n_splits=n_splits, n_repeats=n_repeats, seed=seed)
    seeds = fold_seeds(seed, len(splits))
    fits = [
        (e, train, test, s)
        for e in range(len(names))
        for (train, test), s in zip(splits, seeds)
    ]
    scores = np.empty(len(fits))
    for share, result in _deal_out(
        _score_folds,
        [estimators[n] for n in names],
        X,
        y,
        fits,
        scoring,
        n_jobs=n_jobs,
        scheduler=scheduler,
    ):
        scores[share] = result
    scores = scores.reshape(len(names), n_repeats, n_splits)
    return {
        name: CVResult(name=name, scores=scores[e], seed=seed)
        for e, name in enumerate(names)
    }


# ----------------------------------------------------------------------------- lanes for searches


def _train_for_replay(estimators, X, y, fits, caller_pid):
    from helpers.lanes import deferred_fits, results_of

    if os.getpid() != caller_pid:
        _configure_worker()
    with deferred_fits() as pending:
        for e, train in fits:
            clone(estimators[e]).fit(X[train], y[train])
    return results_of(pending)


def train_as_lanes(
    estimators, X, y, fits, *, n_jobs: int | None = None, scheduler=None
) -> dict:
    """Train fits as lanes on the workers; return their results for replay.

    ``fits`` lists ``(estimator index, training rows)``; each estimator is
    cloned and fitted as it is (not reseeded).  The fits are dealt out to one
    task per worker process (on a Dask cluster, a few fits per task), whose
    lane-trainable networks train together.  Returns
    ``{key: (weights, history)}`` for :func:`helpers.lanes.replaying`, under
    which fitting the same estimator on the same rows takes the stored
    result instead of training: ``helpers.search`` trains a search's fits
    this way, then lets scikit-learn's search score them.
    """
    if n_jobs is None:
        n_jobs = default_n_jobs()
    n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    if not fits:
        return {}
    results: dict = {}
    for _, part in _deal_out(
        _train_for_replay,
        estimators,
        X,
        y,
        fits,
        n_jobs=n_jobs,
        scheduler=scheduler,
    ):
        results.update(part)
    return results
