"""Tests for helpers.search: checking a search space, seeded searches, nested cross-validation.

Most tests tune a cheap scikit-learn estimator (a small random forest); the
tests marked "keras" run the book's pipeline for a few epochs.  Dask runs are
in tests/test_dask.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import uniform
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import helpers
from helpers.cv import CVResult, cross_validate_model, fold_seeds, make_splits
from helpers.models import build_hidden_dropout
from helpers.search import (
    NestedResult,
    check_search_space,
    make_search,
    nested_cross_validate,
    run_search,
    search_scores,
    search_series,
    search_table,
)
from helpers.stats import compare_results
from helpers.training import make_classifier

DROPOUT = "model__model__hidden_dropout"
MAX_NORM = "model__model__max_norm"


@pytest.fixture(scope="module")
def sonar():
    return helpers.load_sonar()


def forest():
    return make_pipeline(
        StandardScaler(),
        RandomForestClassifier(n_estimators=5, random_state=0),
    )


FOREST_GRID = {
    "randomforestclassifier__max_depth": [2, None],
    "randomforestclassifier__min_samples_leaf": [1, 4],
}


def keras_pipeline():
    return make_classifier(build_hidden_dropout, epochs=3)


# --------------------------------------------------------------------------- check_search_space


@pytest.mark.parametrize("space", [{}, [], [{}], [{DROPOUT: [0.1]}, {}]])
def test_an_empty_grid_is_refused(space):
    with pytest.raises(ValueError, match="param_grid is empty"):
        check_search_space(keras_pipeline(), space)


def test_an_empty_list_of_values_is_refused():
    with pytest.raises(
        ValueError, match=rf"param_grid\['{DROPOUT}'\] is empty"
    ):
        check_search_space(keras_pipeline(), {DROPOUT: []})


def test_a_misspelt_model_parameter_is_refused_with_the_right_name():
    with pytest.raises(ValueError, match="hidden_droput") as excinfo:
        check_search_space(
            keras_pipeline(), {"model__model__hidden_droput": [0.1]}
        )
    assert f"did you mean {DROPOUT}" in str(excinfo.value)


def test_a_misspelt_pipeline_parameter_is_refused_with_the_right_name():
    with pytest.raises(ValueError, match="scale__with_meen") as excinfo:
        check_search_space(keras_pipeline(), {"scale__with_meen": [True]})
    assert "scale__with_mean" in str(excinfo.value)


def test_a_misspelt_name_in_a_random_search_is_refused(sonar):
    with pytest.raises(
        ValueError, match="param_distributions names 'model__model__max_nrom'"
    ):
        make_search(
            keras_pipeline(),
            {"model__model__max_nrom": [3.0]},
            kind="random",
            n_iter=2,
        )


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_a_rate_outside_zero_one_is_refused(rate):
    with pytest.raises(ValueError, match=DROPOUT) as excinfo:
        check_search_space(keras_pipeline(), {DROPOUT: [0.2, rate]})
    assert "[0, 1)" in str(excinfo.value)


def test_per_layer_rates_are_checked_one_by_one():
    check_search_space(keras_pipeline(), {DROPOUT: [(0.1, 0.2)]})
    with pytest.raises(ValueError, match=DROPOUT):
        check_search_space(keras_pipeline(), {DROPOUT: [(0.1, 1.0)]})


def test_a_distribution_that_can_draw_a_bad_rate_is_refused():
    check_search_space(
        keras_pipeline(), {DROPOUT: uniform(0.0, 0.5)}, random=True
    )
    with pytest.raises(ValueError, match=r"draws rates from \[0.0, 1.0\]"):
        check_search_space(
            keras_pipeline(), {DROPOUT: uniform(0.0, 1.0)}, random=True
        )


def test_distributions_only_in_a_random_search():
    with pytest.raises(TypeError, match="a list of values"):
        check_search_space(keras_pipeline(), {DROPOUT: uniform(0.0, 0.5)})
    with pytest.raises(TypeError, match="a list of values"):
        check_search_space(keras_pipeline(), {DROPOUT: 0.2})


def test_a_valid_space_comes_back_as_a_list_of_dicts():
    grid = {DROPOUT: [0.0, 0.2], MAX_NORM: [None, 3.0]}
    assert check_search_space(keras_pipeline(), grid) == [grid]
    assert check_search_space(keras_pipeline(), [grid, grid]) == [grid, grid]


def test_the_space_must_be_a_dict_or_list_of_dicts():
    with pytest.raises(TypeError, match="param_grid"):
        check_search_space(keras_pipeline(), "hidden_dropout")
    with pytest.raises(TypeError, match="must be a dict"):
        check_search_space(keras_pipeline(), [[DROPOUT, [0.1]]])


# --------------------------------------------------------------------------- make_search


def test_make_search_seeds_folds_and_every_fit():
    split_seed, model_seed = fold_seeds(7, 2, purpose="search")
    search = make_search(
        keras_pipeline(), {DROPOUT: [0.0, 0.2]}, n_splits=4, seed=7
    )
    assert isinstance(search, GridSearchCV)
    assert isinstance(search.cv, StratifiedKFold)
    assert (
        search.cv.n_splits,
        search.cv.shuffle,
        search.cv.random_state,
    ) == (4, True, split_seed)
    assert search.estimator.get_params()["model__random_state"] == model_seed
    assert search.error_score == "raise" and search.refit is True
    other = make_search(
        keras_pipeline(), {DROPOUT: [0.0, 0.2]}, n_splits=4, seed=8
    )
    assert other.estimator.get_params()["model__random_state"] != model_seed


def test_make_search_random():
    search = make_search(
        keras_pipeline(),
        {DROPOUT: uniform(0, 0.5)},
        kind="random",
        n_iter=6,
        seed=3,
    )
    assert isinstance(search, RandomizedSearchCV)
    assert (
        search.n_iter == 6
        and search.random_state == fold_seeds(3, 2, purpose="search")[1]
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"kind": "bayes"}, ValueError, "kind"),
        ({"kind": "random"}, ValueError, "n_iter"),
        ({"n_iter": 3}, ValueError, "n_iter"),
        ({"kind": "random", "n_iter": 0}, ValueError, "n_iter"),
        ({"n_splits": 1}, ValueError, "n_splits"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
        ({"seed": -1}, ValueError, "seed"),
        ({"scoring": "no_such_score"}, ValueError, "no_such_score"),
    ],
)
def test_make_search_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_search(keras_pipeline(), {DROPOUT: [0.0, 0.2]}, **kwargs)


def test_make_search_needs_a_random_state():
    from sklearn.neighbors import KNeighborsClassifier

    with pytest.raises(ValueError, match="random_state"):
        make_search(KNeighborsClassifier(), {"n_neighbors": [1, 3]})


def test_a_failing_fit_stops_the_search_instead_of_scoring_nan(sonar):
    search = make_search(
        forest(),
        {"randomforestclassifier__max_depth": [2, -5]},
        n_splits=2,
        n_jobs=1,
    )
    with pytest.raises(ValueError, match="max_depth"):
        run_search(search, sonar.X, sonar.y)


def test_run_search_validation(sonar):
    with pytest.raises(TypeError, match="search"):
        run_search(forest(), sonar.X, sonar.y)
    search = make_search(forest(), FOREST_GRID, n_splits=2, n_jobs=1)
    with pytest.raises(ValueError, match="2-D"):
        run_search(search, sonar.X[:, 0], sonar.y)
    with pytest.raises(ValueError, match="same number of rows"):
        run_search(search, sonar.X, sonar.y[:-1])
    assert not hasattr(search, "cv_results_")


# --------------------------------------------------------------------------- reproducibility


def test_grid_search_same_seed_same_scores_whatever_n_jobs(sonar):
    a = run_search(
        make_search(forest(), FOREST_GRID, n_splits=3, seed=5, n_jobs=1),
        sonar.X,
        sonar.y,
    )
    b = run_search(
        make_search(forest(), FOREST_GRID, n_splits=3, seed=5, n_jobs=2),
        sonar.X,
        sonar.y,
    )
    c = run_search(
        make_search(forest(), FOREST_GRID, n_splits=3, seed=6, n_jobs=1),
        sonar.X,
        sonar.y,
    )
    assert search_scores(a).shape == (4, 3)
    np.testing.assert_array_equal(search_scores(a), search_scores(b))
    assert a.best_params_ == b.best_params_
    assert not np.array_equal(search_scores(a), search_scores(c))


def test_random_search_same_seed_same_candidates_and_scores(sonar):
    space = {"randomforestclassifier__max_features": uniform(0.1, 0.8)}

    def run(n_jobs):
        search = make_search(
            forest(),
            space,
            kind="random",
            n_iter=4,
            n_splits=3,
            seed=2,
            n_jobs=n_jobs,
        )
        return run_search(search, sonar.X, sonar.y)

    a, b = run(1), run(2)
    assert [p for p in a.cv_results_["params"]] == [
        p for p in b.cv_results_["params"]
    ]
    np.testing.assert_array_equal(search_scores(a), search_scores(b))


def test_keras_grid_search_does_not_depend_on_n_jobs(sonar):
    grid = {DROPOUT: [0.0, 0.3], MAX_NORM: [None, 3.0]}
    a = run_search(
        make_search(keras_pipeline(), grid, n_splits=2, seed=1, n_jobs=1),
        sonar.X,
        sonar.y,
    )
    b = run_search(
        make_search(keras_pipeline(), grid, n_splits=2, seed=1, n_jobs=2),
        sonar.X,
        sonar.y,
    )
    np.testing.assert_array_equal(search_scores(a), search_scores(b))
    assert a.best_estimator_.named_steps["model"].model_ is not None


# ------------------------------------------------------------ nested cross-validation


def test_nested_cross_validation_is_the_documented_procedure(sonar):
    """Rebuild every outer fold by hand: a clone of the search on the
    training rows, scored on the rest."""
    X, y = sonar.X, sonar.y
    search = make_search(forest(), FOREST_GRID, n_splits=3, seed=4, n_jobs=1)
    nested = nested_cross_validate(
        search, X, y, n_splits=4, seed=9, name="nested forest"
    )
    assert isinstance(nested, NestedResult)
    assert nested.result.scores.shape == (1, 4) and nested.result.seed == 9
    assert nested.result.name == "nested forest"
    for i, (train, test) in enumerate(make_splits(y, n_splits=4, seed=9)):
        by_hand = clone(search).fit(X[train], y[train])
        assert nested.best_params[i] == by_hand.best_params_
        assert nested.inner_best_scores[i] == by_hand.best_score_
        assert nested.result.scores[0, i] == accuracy_score(
            y[test], by_hand.predict(X[test])
        )
    assert not hasattr(
        search, "cv_results_"
    )  # the caller's search is not fitted


def test_nested_cross_validation_does_not_depend_on_n_jobs_and_pairs_with_cv(
    sonar,
):
    def nested(n_jobs):
        search = make_search(
            forest(), FOREST_GRID, n_splits=3, seed=4, n_jobs=n_jobs
        )
        return nested_cross_validate(
            search, sonar.X, sonar.y, n_splits=5, seed=3
        )

    a, b = nested(1), nested(2)
    np.testing.assert_array_equal(a.result.scores, b.result.scores)
    assert a.best_params == b.best_params
    untuned = cross_validate_model(
        forest(), sonar.X, sonar.y, n_splits=5, seed=3, n_jobs=1
    )
    assert compare_results(a.result, untuned).n_pairs == 5


def test_nested_choices_count_every_outer_fold():
    params = (
        {"a": 0.1, "b": None},
        {"a": 0.2, "b": 3.0},
        {"a": 0.1, "b": None},
    )
    nested = NestedResult(
        CVResult("x", np.zeros((1, 3)), 0), params, np.zeros(3)
    )
    assert nested.choices("a") == {0.1: 2, 0.2: 1}
    assert nested.choices("b") == {None: 2, 3.0: 1}
    with pytest.raises(ValueError, match="'c' was not tuned"):
        nested.choices("c")


def test_nested_validation(sonar):
    search = make_search(forest(), FOREST_GRID, n_splits=3, n_jobs=1)
    with pytest.raises(ValueError, match="n_splits"):
        nested_cross_validate(search, sonar.X, sonar.y, n_splits=1)
    with pytest.raises(TypeError, match="search"):
        nested_cross_validate(forest(), sonar.X, sonar.y)


# --------------------------------------------------------------------------- reading the results


@pytest.fixture(scope="module")
def fitted_forest_search(sonar):
    grid = [
        {
            "randomforestclassifier__max_depth": [2, 4],
            "randomforestclassifier__min_samples_leaf": [1],
        },
        {"randomforestclassifier__max_depth": [None]},
    ]
    return run_search(
        make_search(forest(), grid, n_splits=3, seed=0, n_jobs=1),
        sonar.X,
        sonar.y,
    )


def test_search_table(fitted_forest_search):
    table = search_table(fitted_forest_search)
    assert list(table.columns) == [
        "max_depth",
        "min_samples_leaf",
        "mean",
        "std",
        "rank",
    ]
    assert len(table) == 3
    assert list(table["rank"]) == sorted(table["rank"])
    results = fitted_forest_search.cv_results_
    best = int(np.argmin(results["rank_test_score"]))
    assert table.iloc[0]["mean"] == round(
        results["mean_test_score"][best] * 100, 1
    )
    # A parameter a candidate leaves unset, or sets to None, stays None (not NaN).
    assert table["max_depth"].map(lambda v: v is None).sum() == 1
    assert table["min_samples_leaf"].map(lambda v: v is None).sum() == 1


def test_search_scores_and_series(fitted_forest_search):
    scores = search_scores(fitted_forest_search)
    np.testing.assert_allclose(
        scores.mean(axis=1),
        fitted_forest_search.cv_results_["mean_test_score"],
    )
    series = search_series(
        fitted_forest_search, x="randomforestclassifier__max_depth"
    )
    assert list(series) == ["all candidates"]
    assert {r.n_splits for r in series["all candidates"].values()} == {3}
    with pytest.raises(ValueError, match="min_samples_leaf"):
        search_series(
            fitted_forest_search, x="randomforestclassifier__min_samples_leaf"
        )


def test_reading_an_unfitted_search_is_an_error():
    search = make_search(forest(), FOREST_GRID)
    for read in (search_scores, search_table):
        with pytest.raises(ValueError, match="not fitted"):
            read(search)
