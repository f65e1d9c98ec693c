"""Tuning by cross-validated search: reproducible, checked before it trains, local or on Dask.

scikit-learn's ``GridSearchCV`` and ``RandomizedSearchCV`` tune the book's
pipeline through SciKeras' routed ``model__`` parameters
(``model__model__hidden_dropout`` is the builder's ``hidden_dropout``).  This
module adds what the tuning chapter needs around them:

* :func:`make_search` builds either search from one seed: the inner folds are
  a shuffled ``StratifiedKFold`` with a seed derived from it, and every fit of
  every candidate gets the same derived ``random_state`` (the same initial
  weights, dropout masks and batch order for every candidate, so candidates
  differ only by their settings).  The results then do not depend on
  ``n_jobs`` or on where the fits run.
* :func:`check_search_space` refuses an empty grid, an unknown parameter name
  (with the closest valid names) and a dropout rate outside [0, 1) before any
  training; a fit that fails anyway stops the search (``error_score="raise"``)
  instead of filling the results with NaN.
* :func:`run_search` and :func:`nested_cross_validate` run on local processes
  or a Dask cluster (:func:`helpers.cv.compute_on`).
* :func:`search_table`, :func:`search_scores` and :func:`search_series` turn
  ``cv_results_`` into a table, an array and the input of
  :func:`helpers.plotting.plot_mean_intervals`.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
    StratifiedKFold,
)

from helpers.cv import (
    CVResult,
    _deal_out,
    _train_for_replay,
    compute_on,
    fold_seeds,
    make_splits,
    seeded,
    train_as_lanes,
)
from helpers.validation import check_int, check_rate, check_seed, check_xy

__all__ = [
    "NestedResult",
    "check_search_space",
    "make_search",
    "nested_cross_validate",
    "run_search",
    "search_scores",
    "search_series",
    "search_table",
]

KINDS = ("grid", "random")


# ----------------------------------------------------------------------------- checks


def _builder_of(estimator, params: dict, prefix: str):
    """The model-building function of a SciKeras wrapper at ``prefix`` (or None)."""
    from scikeras.wrappers import BaseWrapper

    wrapper = estimator if prefix == "" else params.get(prefix)
    if isinstance(wrapper, BaseWrapper) and callable(wrapper.model):
        return wrapper.model
    return None


def _check_name(estimator, params: dict, key, argument: str) -> None:
    if not isinstance(key, str):
        raise TypeError(
            f"{argument} keys must be parameter names (str); got {key!r}"
        )
    # A SciKeras routed parameter, "<path>model__<name>": set_params accepts any
    # name here, so a misspelt one would only fail inside the first fit.
    # Check it against the builder's signature instead.
    head, sep, name = key.rpartition("model__")
    if sep and (head == "" or head.endswith("__")):
        builder = _builder_of(estimator, params, head[:-2] if head else "")
        if builder is not None:
            parameters = inspect.signature(builder).parameters
            takes_any = any(
                p.kind is p.VAR_KEYWORD for p in parameters.values()
            )
            if name in parameters or takes_any:
                return
            close = difflib.get_close_matches(name, list(parameters), n=3)
            hint = (
                f"; did you mean {', '.join(head + 'model__' + c for c in close)}?"
                if close
                else ""
            )
            raise ValueError(
                f"{argument} names {key!r}, but {getattr(builder, '__name__', builder)} takes no "
                f"parameter {name!r} (it takes {', '.join(parameters) or 'none'}){hint}"
            )
    if key not in params:
        close = difflib.get_close_matches(key, list(params), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"{argument} names {key!r}, which is not a parameter of "
            f"{type(estimator).__name__}{hint}"
        )


def _is_rate_name(key: str) -> bool:
    return "dropout" in key.rpartition("__")[2]


def _check_rate_value(key: str, value) -> None:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for rate in value:  # one rate per hidden layer
            check_rate(key, rate)
    elif isinstance(value, np.ndarray):
        for rate in value.ravel().tolist():
            check_rate(key, rate)
    else:
        check_rate(key, value)


def _check_values(key: str, values, *, random: bool, argument: str) -> None:
    if random and hasattr(values, "rvs"):
        if _is_rate_name(key) and hasattr(values, "support"):
            low, high = (float(v) for v in values.support())
            if not (0.0 <= low and high < 1.0):
                raise ValueError(
                    f"{argument}[{key!r}] draws rates from [{low}, {high}]; a dropout rate "
                    "must be in [0, 1)"
                )
        return
    if isinstance(values, (str, bytes)) or not isinstance(
        values, (Sequence, np.ndarray)
    ):
        kind = (
            "a list of values or a scipy.stats distribution"
            if random
            else "a list of values"
        )
        raise TypeError(f"{argument}[{key!r}] must be {kind}; got {values!r}")
    if len(values) == 0:
        raise ValueError(
            f"{argument}[{key!r}] is empty: give it at least one value"
        )
    if _is_rate_name(key):
        for value in values:
            _check_rate_value(key, value)


def check_search_space(
    estimator, space, *, random: bool = False, argument: str = "param_grid"
):
    """Check a grid (or distributions) against ``estimator``; return it as a list of dicts.

    Parameters
    ----------
    estimator
        The estimator the search will tune, for example ``make_classifier(...)``.
    space
        A dict ``{parameter name: values}`` or a non-empty list of such dicts,
        as ``GridSearchCV`` takes them; with ``random=True`` a value may also
        be a ``scipy.stats`` distribution, as ``RandomizedSearchCV`` takes.
    random
        Whether distributions are allowed.
    argument
        The argument's name in error messages.

    Raises
    ------
    ValueError
        An empty grid or list of values; a parameter the estimator (or, for a
        SciKeras ``model__`` parameter, its model builder) does not have, with
        the closest valid names; a dropout rate (a parameter whose name
        contains ``dropout``) outside [0, 1), including a distribution that
        can draw one.
    TypeError
        Values that are not a list (or a distribution).

    Examples
    --------
    >>> from helpers import build_hidden_dropout, make_classifier
    >>> check_search_space(make_classifier(build_hidden_dropout),
    ...                    {"model__model__hidden_droput": [0.0, 0.2]})
    Traceback (most recent call last):
      ...
    ValueError: param_grid names 'model__model__hidden_droput', but build_hidden_dropout takes no parameter 'hidden_droput' (it takes hidden_dropout, max_norm, hidden_units, optimizer, learning_rate, momentum); did you mean model__model__hidden_dropout?
    """  # noqa: E501 (a doctest's expected output is one line)
    if isinstance(space, Mapping):
        grids = [space]
    elif isinstance(space, Sequence) and not isinstance(space, (str, bytes)):
        grids = list(space)
    else:
        raise TypeError(
            f"{argument} must be a dict of parameter -> values or a list of them; got {space!r}"
        )
    if not grids or any(isinstance(g, Mapping) and not g for g in grids):
        raise ValueError(
            f"{argument} is empty: name at least one parameter and its values"
        )
    params = estimator.get_params(deep=True)
    for grid in grids:
        if not isinstance(grid, Mapping):
            raise TypeError(
                f"each entry of {argument} must be a dict; got {grid!r}"
            )
        for key, values in grid.items():
            _check_name(estimator, params, key, argument)
            _check_values(key, values, random=random, argument=argument)
    return [dict(grid) for grid in grids]


# ----------------------------------------------------------------------------- building and running


def make_search(
    estimator,
    space,
    *,
    kind: str = "grid",
    n_iter: int | None = None,
    n_splits: int = 5,
    seed: int = 0,
    n_jobs: int | None = None,
    scoring: str = "accuracy",
):
    """A ``GridSearchCV`` or ``RandomizedSearchCV`` whose results one seed fixes.

    Parameters
    ----------
    estimator
        The estimator to tune; it needs a ``random_state`` parameter (the
        book's pipeline has ``model__random_state``).
    space
        The grid (``kind="grid"``) or the lists and ``scipy.stats``
        distributions to draw from (``kind="random"``), checked by
        :func:`check_search_space` before anything is built.
    kind
        ``"grid"`` or ``"random"``.
    n_iter
        Candidates drawn by a random search (required for it, refused for a
        grid, whose size is fixed by ``space``).
    n_splits
        Inner folds: a shuffled ``StratifiedKFold``.
    seed
        Fixes the inner folds, the random search's draws and the
        ``random_state`` of every fit (see :func:`helpers.cv.fold_seeds`,
        purpose ``"search"``).
    n_jobs
        Local worker processes (``None``: :func:`helpers.cv.default_n_jobs`,
        one per core unless ``DROPOUT_BOOK_N_JOBS`` says otherwise); results
        do not depend on it.
    scoring
        A scikit-learn scorer name.

    Returns
    -------
    GridSearchCV or RandomizedSearchCV
        Unfitted, with ``refit=True`` and ``error_score="raise"``.  Fit it
        with :func:`run_search` (or its own ``fit``, on local processes).

    Examples
    --------
    >>> from helpers import build_hidden_dropout, make_classifier
    >>> search = make_search(make_classifier(build_hidden_dropout),
    ...                      {"model__model__hidden_dropout": [0.0, 0.2, 0.4]}, seed=7)
    >>> search.cv.n_splits, search.estimator.get_params()["model__random_state"] > 0
    (5, True)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    seed = check_seed("seed", seed)
    n_splits = check_int("n_splits", n_splits, minimum=2)
    if n_jobs is not None:
        n_jobs = check_int("n_jobs", n_jobs, minimum=1)
    get_scorer(scoring)  # an unknown name fails here
    argument = "param_grid" if kind == "grid" else "param_distributions"
    grids = check_search_space(
        estimator, space, random=kind == "random", argument=argument
    )
    split_seed, model_seed = fold_seeds(seed, 2, purpose="search")
    model = seeded(estimator, model_seed)
    inner = StratifiedKFold(
        n_splits=n_splits, shuffle=True, random_state=split_seed
    )
    common = {
        "scoring": scoring,
        "cv": inner,
        "n_jobs": n_jobs,
        "refit": True,
        "error_score": "raise",
        "return_train_score": False,
    }
    if kind == "grid":
        if n_iter is not None:
            raise ValueError(
                "n_iter is for kind='random'; a grid search tries every combination"
            )
        return GridSearchCV(model, grids, **common)
    if n_iter is None:
        raise ValueError(
            "n_iter is required for kind='random': how many candidates to draw"
        )
    n_iter = check_int("n_iter", n_iter, minimum=1)
    return RandomizedSearchCV(
        model, grids, n_iter=n_iter, random_state=model_seed, **common
    )


def _check_search(search):
    if not isinstance(search, (GridSearchCV, RandomizedSearchCV)):
        raise TypeError(
            f"search must be a GridSearchCV or RandomizedSearchCV; got {type(search).__name__}"
        )


def run_search(search, X, y, *, scheduler=None):
    """Fit ``search`` on local processes (``scheduler=None``) or on a Dask cluster.

    Parameters
    ----------
    search
        A search from :func:`make_search` (any ``GridSearchCV`` or
        ``RandomizedSearchCV`` works).
    X, y
        Features and labels.
    scheduler
        ``None``, a ``distributed.Client`` or a scheduler address; see
        :func:`helpers.cv.compute_on`.  On Dask the search uses every worker
        thread whatever its ``n_jobs``.

    Returns
    -------
    The fitted search (the same object).

    Examples
    --------
    >>> search = run_search(search, data.X, data.y)  # doctest: +SKIP
    >>> search.best_params_  # doctest: +SKIP
    """
    _check_search(search)
    X, y = check_xy(X, y)
    splits = list(search.cv.split(X, y))
    if _trains_as_lanes(search, X, y, splits[0][0]):
        fits = [
            (c, train)
            for c in range(len(_candidates(search)))
            for train, _ in splits
        ]
        results = train_as_lanes(
            _candidate_estimators(search),
            X,
            y,
            fits,
            n_jobs=search.n_jobs,
            scheduler=scheduler,
        )
        return _replay(search, X, y, results)
    with compute_on(scheduler, n_jobs=search.n_jobs, scatter=[X, y]):
        search.fit(X, y)
    return search


# A search's networks train as lanes (helpers/lanes.py) when they can: every
# fit of every candidate on every fold is trained first, spread over the
# workers with the fits of one structure together, and then scikit-learn's
# own search runs in this process with those results replayed (a fit takes
# its stored result instead of training; tests/test_search.py checks that
# cv_results_ is exactly what the search alone computes).  Only the refit of
# the winner trains here.


def _candidates(search) -> list[dict]:
    """The candidates ``search.fit`` evaluates, in its order."""
    if isinstance(search, GridSearchCV):
        return list(ParameterGrid(search.param_grid))
    return list(
        ParameterSampler(
            search.param_distributions,
            search.n_iter,
            random_state=search.random_state,
        )
    )


def _candidate_estimators(search) -> list:
    # As scikit-learn's _fit_and_score sets them up.
    return [
        clone(search.estimator).set_params(**clone(params, safe=False))
        for params in _candidates(search)
    ]


def _trains_as_lanes(search, X, y, train) -> bool:
    """Whether the search's first fit would train as a lane (nothing is trained
    if it would; an estimator that is not a lane trains once, here)."""
    if isinstance(search, RandomizedSearchCV) and not isinstance(
        search.random_state, numbers.Integral
    ):
        return (
            False  # candidates drawn afresh at every fit: nothing to replay
        )
    from helpers.lanes import deferred_fits

    with deferred_fits() as pending:
        _candidate_estimators(search)[0].fit(X[train], y[train])
        lanes = bool(pending)
        pending.clear()
    return lanes


def _replay(search, X, y, results: dict):
    from helpers.lanes import replaying

    n_jobs = search.n_jobs
    search.set_params(n_jobs=1)
    try:
        with replaying(results):
            search.fit(X, y)
    finally:
        search.set_params(n_jobs=n_jobs)
    return search


def _choose_in_folds(searches, X, y, trains, caller_pid):
    """For each outer training set, the winner of ``searches[0]`` run on it:
    ``(best_index_, best_params_, best_score_)``.

    All the searches' fits train as lanes together, then each search replays
    its own (see :func:`_replay`), so the choice is scikit-learn's.
    """
    (search,) = searches
    candidates = _candidate_estimators(search)
    fits = [
        (c, train[inner_train])
        for train in trains
        for inner_train, _ in search.cv.split(X[train], y[train])
        for c in range(len(candidates))
    ]
    results = _train_for_replay(candidates, X, y, fits, caller_pid)
    chosen = []
    for train in trains:
        fold_search = clone(search).set_params(refit=False)
        _replay(fold_search, X[train], y[train], results)
        chosen.append(
            (
                int(fold_search.best_index_),
                fold_search.best_params_,
                float(fold_search.best_score_),
            )
        )
    return chosen


@dataclass(frozen=True)
class NestedResult:
    """What nested cross-validation of a search found.

    Attributes
    ----------
    result
        The outer folds' scores, as a :class:`~helpers.cv.CVResult` (its seed
        is the outer seed, so it pairs with ``cross_validate_model`` results
        of the same seed in :func:`helpers.stats.compare_results`).
    best_params
        The parameters the inner search chose in each outer fold.
    inner_best_scores
        Each outer fold's ``best_score_``: the inner estimate of the chosen
        candidate, the number that is biased upwards.
    """

    result: CVResult
    best_params: tuple
    inner_best_scores: np.ndarray

    def choices(self, parameter: str) -> dict:
        """How often each value of ``parameter`` was chosen, in order of first appearance.

        Examples
        --------
        >>> r = NestedResult(CVResult("x", np.zeros((1, 2)), 0), ({"a": 1}, {"a": 1}), np.zeros(2))
        >>> r.choices("a")
        {1: 2}
        """
        if not any(parameter in p for p in self.best_params):
            names = sorted({k for p in self.best_params for k in p})
            raise ValueError(
                f"parameter {parameter!r} was not tuned; tuned: {', '.join(names)}"
            )
        counts: dict = {}
        for params in self.best_params:
            value = params.get(parameter)
            counts[value] = counts.get(value, 0) + 1
        return counts


def nested_cross_validate(
    search,
    X,
    y,
    *,
    n_splits: int = 10,
    seed: int = 0,
    scheduler=None,
    name: str | None = None,
) -> NestedResult:
    """Estimate the accuracy of "tune with ``search``, then train on everything".

    The outer loop is the book's stratified k-fold (:func:`helpers.cv.make_splits`
    with ``seed``): for each outer fold a fresh clone of ``search`` runs on the
    training rows only (its own inner folds, its own candidates), refits the
    winner on them, and the winner is scored on the held-out rows, which the
    search never saw.  The mean of those scores estimates the whole procedure;
    the inner ``best_score_`` does not (it is the best of many noisy scores).

    Parameters
    ----------
    search
        An unfitted search from :func:`make_search`.
    X, y
        Features and labels.
    n_splits
        Outer folds.
    seed
        Fixes the outer folds (the inner ones are fixed by the search's).
    scheduler
        Where the inner searches run (:func:`helpers.cv.compute_on`).  When
        the network trains as lanes, every inner fit and then every outer
        fold's refit of its winner train there, and the searches replay
        them in this process; otherwise the outer loop and the refits run
        here.
    name
        Label of the result.

    Returns
    -------
    NestedResult

    Examples
    --------
    >>> nested = nested_cross_validate(search, data.X, data.y, seed=7)  # doctest: +SKIP
    >>> nested.result.mean, nested.choices("model__model__hidden_dropout")  # doctest: +SKIP
    """
    _check_search(search)
    X, y = check_xy(X, y)
    splits = make_splits(y, n_splits=n_splits, seed=seed)
    scorer = get_scorer(search.scoring)
    scores, chosen, inner = [], [], []
    first_train = splits[0][0]
    first_inner = next(iter(search.cv.split(X[first_train], y[first_train])))
    lanes = _trains_as_lanes(
        search, X[first_train], y[first_train], first_inner[0]
    )
    if lanes:
        from helpers.lanes import replaying

        # Each worker takes its share of the outer folds, trains all their
        # inner fits as lanes at once and replays each fold's search on them
        # (scikit-learn's own, without the refit) to learn its winner; then
        # the winners' refits on the outer training rows train as lanes
        # together, and are replayed and scored here.
        candidates = _candidate_estimators(search)
        best = [None] * n_splits
        for share, part in _deal_out(
            _choose_in_folds,
            [search],
            X,
            y,
            [train for train, _ in splits],
            n_jobs=search.n_jobs,
            scheduler=scheduler,
        ):
            for i, chosen_here in zip(share, part):
                best[i] = chosen_here
        refits = train_as_lanes(
            candidates,
            X,
            y,
            [(b[0], t) for b, (t, _) in zip(best, splits)],
            n_jobs=search.n_jobs,
            scheduler=scheduler,
        )
        with replaying(refits):
            for (index, params, best_score), (train, test) in zip(
                best, splits
            ):
                # What the search's own refit does: a fresh clone of the
                # winning candidate, fitted on all the rows it searched.
                winner = clone(candidates[index]).fit(X[train], y[train])
                scores.append(scorer(winner, X[test], y[test]))
                chosen.append(dict(params))
                inner.append(best_score)
    else:
        with compute_on(scheduler, n_jobs=search.n_jobs) as client:
            for train, test in splits:
                X_train, y_train = X[train], y[train]
                # Each outer fold's training rows go to every worker once
                # (see compute_on).
                with compute_on(
                    client, n_jobs=search.n_jobs, scatter=[X_train, y_train]
                ):
                    fold_search = clone(search).fit(X_train, y_train)
                scores.append(
                    scorer(fold_search.best_estimator_, X[test], y[test])
                )
                chosen.append(dict(fold_search.best_params_))
                inner.append(fold_search.best_score_)
    return NestedResult(
        result=CVResult(
            name=name or f"nested {type(search).__name__}",
            scores=np.asarray(scores, dtype=float).reshape(1, n_splits),
            seed=seed,
        ),
        best_params=tuple(chosen),
        inner_best_scores=np.asarray(inner, dtype=float),
    )


# ----------------------------------------------------------------------------- reading the results


def _fitted(search):
    _check_search(search)
    if not hasattr(search, "cv_results_"):
        raise ValueError("search is not fitted: run it first (run_search)")
    return search.cv_results_


def search_scores(search) -> np.ndarray:
    """Every candidate's inner-fold scores, shape ``(n_candidates, n_splits)``.

    Two runs of the same search agree exactly when these arrays are equal
    (the timings in ``cv_results_`` never do).
    """
    results = _fitted(search)
    n_splits = sum(
        1
        for key in results
        if key.startswith("split") and key.endswith("_test_score")
    )
    return np.column_stack(
        [results[f"split{i}_test_score"] for i in range(n_splits)]
    )


def _short(name: str) -> str:
    return name.rpartition("__")[2]


def _plain(value):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def search_table(search, *, scale: float = 100.0, digits: int = 1):
    """``cv_results_`` as a table: one row per candidate, best first.

    Columns: each tuned parameter (by its short name, ``hidden_dropout`` for
    ``model__model__hidden_dropout``; ``None`` where a candidate leaves it
    unset), the mean and standard deviation of the inner-fold scores (times
    ``scale``), and the rank.  Timings are left out: they differ from run to
    run.

    Examples
    --------
    >>> search_table(search)  # doctest: +SKIP
    """
    import pandas as pd

    results = _fitted(search)
    names = list(dict.fromkeys(k for p in results["params"] for k in p))
    # object columns keep None as None (pandas would turn it into NaN in a float column)
    table = pd.DataFrame(
        {
            _short(k): pd.Series(
                [_plain(p.get(k)) for p in results["params"]], dtype=object
            )
            for k in names
        }
    )
    table["mean"] = np.round(
        np.asarray(results["mean_test_score"]) * scale, digits
    )
    table["std"] = np.round(
        np.asarray(results["std_test_score"]) * scale, digits
    )
    table["rank"] = np.asarray(results["rank_test_score"])
    table.index.name = "candidate"
    return table.sort_values(["rank"], kind="stable")


def search_series(
    search, *, x: str, series: str | None = None, label=None
) -> dict:
    """Candidates as ``{series label: {x value: CVResult}}`` for ``plot_mean_intervals``.

    Each candidate's inner-fold scores become a :class:`~helpers.cv.CVResult`
    of one repeat, so the figure shows each mean with its corrected interval
    (:func:`helpers.stats.corrected_mean_interval`).

    Parameters
    ----------
    search
        A fitted search.
    x
        The parameter on the horizontal axis (full name).
    series
        The parameter that separates the lines (full name), or ``None`` for
        one line.
    label
        A function from the ``series`` value to the line's label (default
        ``str``).

    Examples
    --------
    >>> plot_mean_intervals(search_series(search, x="model__model__hidden_dropout",
    ...                                   series="model__model__max_norm"))  # doctest: +SKIP
    """
    results = _fitted(search)
    scores = search_scores(search)
    seed = getattr(search.cv, "random_state", 0) or 0
    label = label or str
    out: dict = {}
    for params, row in zip(results["params"], scores):
        if x not in params:
            raise ValueError(
                f"x={x!r} is not a tuned parameter of every candidate"
            )
        key = (
            label(params.get(series))
            if series is not None
            else "all candidates"
        )
        value = _plain(params[x])
        name = f"{_short(x)}={value}" + (
            f", {_short(series)}={params.get(series)}" if series else ""
        )
        out.setdefault(key, {})[value] = CVResult(
            name, row.reshape(1, -1), seed=seed
        )
    return out
