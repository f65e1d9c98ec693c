"""Tests for helpers.cv: fold assignment, seeds and the cross-validation harness.

Most harness tests use cheap scikit-learn estimators with a ``random_state``
(a five-tree random forest, or a tiny recording estimator); one test runs the
real Keras pipeline for a few epochs.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import helpers
from helpers.cv import (
    N_JOBS_VARIABLE,
    CVResult,
    cross_validate_model,
    default_n_jobs,
    fold_seeds,
    make_splits,
)
from helpers.models import build_baseline
from helpers.training import make_classifier


@pytest.fixture(scope="module")
def sonar():
    return helpers.load_sonar()


def forest():
    return RandomForestClassifier(n_estimators=5, random_state=0)


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the training majority class and records the random_state of every fit.

    With n_jobs=1 the folds run in this process, so the record is visible here.
    """

    fits: list = []

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        RecordingClassifier.fits.append(self.random_state)
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.majority_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


@pytest.fixture
def recorder():
    RecordingClassifier.fits = []
    yield RecordingClassifier
    RecordingClassifier.fits = []


# --------------------------------------------------------------------------- make_splits


def test_make_splits_are_stratified_and_partition_each_repeat(sonar):
    y = sonar.y
    splits = make_splits(y, n_splits=10, n_repeats=2, seed=7)
    assert len(splits) == 20
    overall = np.bincount(y) / len(y)
    for train, test in splits:
        assert len(np.intersect1d(train, test)) == 0
        np.testing.assert_array_equal(
            np.sort(np.concatenate([train, test])), np.arange(len(y))
        )
        # Stratified: each class's count in the fold is within one sample of its share.
        counts = np.bincount(y[test], minlength=2)
        assert np.all(np.abs(counts - overall * len(test)) <= 1), (
            counts,
            overall * len(test),
        )
    for repeat in range(2):
        tests = [test for _, test in splits[repeat * 10 : (repeat + 1) * 10]]
        np.testing.assert_array_equal(
            np.sort(np.concatenate(tests)), np.arange(len(y))
        )
        assert {len(t) for t in tests} <= {20, 21}
    # The second repeat is a fresh assignment, not a copy of the first.
    assert not all(
        np.array_equal(a[1], b[1]) for a, b in zip(splits[:10], splits[10:])
    )


def test_make_splits_shuffle(sonar):
    # The Sonar file is sorted by class; an unshuffled split would put the first
    # rows together in fold 0.
    _, first_test = make_splits(sonar.y, seed=0)[0]
    assert not np.array_equal(first_test, np.arange(len(first_test)))
    assert first_test.max() - first_test.min() > 100


def test_make_splits_seed_determinism(sonar):
    a = make_splits(sonar.y, n_splits=5, n_repeats=2, seed=3)
    b = make_splits(sonar.y, n_splits=5, n_repeats=2, seed=3)
    c = make_splits(sonar.y, n_splits=5, n_repeats=2, seed=4)
    for (tr_a, te_a), (tr_b, te_b) in zip(a, b, strict=True):
        np.testing.assert_array_equal(tr_a, tr_b)
        np.testing.assert_array_equal(te_a, te_b)
    assert not all(np.array_equal(ta, tc) for (_, ta), (_, tc) in zip(a, c))


def test_make_splits_works_with_string_labels():
    y = np.array(["M", "R"] * 6)
    splits = make_splits(y, n_splits=3, seed=0)
    assert len(splits) == 3
    for _, test in splits:
        assert sorted(y[test]) == ["M", "M", "R", "R"]


@pytest.mark.parametrize("n_splits", [0, 1, 4, 100])
def test_make_splits_rejects_bad_n_splits(n_splits):
    y = np.array([0, 0, 0, 1, 1, 1, 1])  # smallest class: 3
    with pytest.raises(ValueError, match="n_splits") as excinfo:
        make_splits(y, n_splits=n_splits)
    assert str(n_splits) in str(excinfo.value)


def test_make_splits_smallest_class_count_is_allowed():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    assert len(make_splits(y, n_splits=3)) == 3


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"n_splits": 3.0}, TypeError, "n_splits"),
        ({"n_repeats": 0}, ValueError, "n_repeats"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.0}, TypeError, "seed"),
    ],
)
def test_make_splits_validation(sonar, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        make_splits(sonar.y, **kwargs)


# --------------------------------------------------------------------------- fold_seeds


def test_fold_seeds_deterministic_distinct_and_32_bit():
    seeds = fold_seeds(7, 50)
    assert seeds == fold_seeds(7, 50)
    assert len(set(seeds)) == 50
    assert all(type(s) is int and 0 <= s < 2**32 for s in seeds)
    assert fold_seeds(8, 50) != seeds


def test_fold_seeds_purposes_are_separate_streams():
    folds = fold_seeds(7, 10, purpose="folds")
    splits = fold_seeds(7, 10, purpose="splits")
    assert folds == fold_seeds(7, 10)  # "folds" is the default
    assert not set(folds) & set(splits)


@pytest.mark.parametrize(
    "args, error, argument",
    [
        ((-1, 3), ValueError, "seed"),
        ((0, 0), ValueError, "n"),
        ((0, 2.0), TypeError, "n"),
    ],
)
def test_fold_seeds_validation(args, error, argument):
    with pytest.raises(error, match=argument):
        fold_seeds(*args)


def test_fold_seeds_unknown_purpose_is_a_value_error():
    with pytest.raises(ValueError, match="purpose"):
        fold_seeds(0, 3, purpose="other")


# --------------------------------------------------------------------------- cross_validate_model


def test_cross_validate_model_returns_ten_fold_scores(sonar):
    result = cross_validate_model(
        forest(), sonar.X, sonar.y, seed=7, n_jobs=1
    )
    assert isinstance(result, CVResult)
    assert result.scores.shape == (1, 10)
    assert (result.n_repeats, result.n_splits) == (1, 10)
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    assert result.seed == 7
    assert result.name == "RandomForestClassifier"
    assert (
        cross_validate_model(
            forest(), sonar.X, sonar.y, n_splits=3, n_jobs=1, name="rf"
        ).name
        == "rf"
    )


def test_cross_validate_model_scores_are_the_documented_folds(sonar):
    """Rebuild every fold by hand from make_splits and fold_seeds: the harness must agree."""
    X, y = sonar.X, sonar.y
    result = cross_validate_model(forest(), X, y, seed=5, n_jobs=1)
    splits = make_splits(y, n_splits=10, seed=5)
    expected = []
    for (train, test), fold_seed in zip(splits, fold_seeds(5, 10)):
        model = (
            clone(forest())
            .set_params(random_state=fold_seed)
            .fit(X[train], y[train])
        )
        expected.append(accuracy_score(y[test], model.predict(X[test])))
    np.testing.assert_array_equal(result.scores[0], expected)


def test_cross_validate_model_same_seed_same_scores_and_other_seed_differs(
    sonar,
):
    a = cross_validate_model(forest(), sonar.X, sonar.y, seed=1, n_jobs=1)
    b = cross_validate_model(forest(), sonar.X, sonar.y, seed=1, n_jobs=1)
    c = cross_validate_model(forest(), sonar.X, sonar.y, seed=2, n_jobs=1)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)


def test_cross_validate_model_scores_do_not_depend_on_n_jobs(sonar):
    serial = cross_validate_model(
        forest(), sonar.X, sonar.y, seed=3, n_jobs=1
    )
    parallel = cross_validate_model(
        forest(), sonar.X, sonar.y, seed=3, n_jobs=2
    )
    np.testing.assert_array_equal(serial.scores, parallel.scores)


def test_cross_validate_model_seeds_each_fold_differently(sonar, recorder):
    cross_validate_model(recorder(), sonar.X, sonar.y, seed=11, n_jobs=1)
    assert recorder.fits == fold_seeds(11, 10)
    assert len(set(recorder.fits)) == 10


def test_cross_validate_model_seeds_nested_random_state_in_pipelines(
    sonar, recorder
):
    pipe = make_pipeline(StandardScaler(), recorder(random_state=123))
    cross_validate_model(
        pipe, sonar.X, sonar.y, n_splits=3, n_repeats=2, seed=4, n_jobs=1
    )
    assert recorder.fits == fold_seeds(4, 6)


def test_cross_validate_model_repeats(sonar, recorder):
    result = cross_validate_model(
        recorder(), sonar.X, sonar.y, n_splits=5, n_repeats=3, n_jobs=1
    )
    assert result.scores.shape == (3, 5)
    assert len(recorder.fits) == 15


def test_cross_validate_model_other_scoring(sonar):
    result = cross_validate_model(
        forest(), sonar.X, sonar.y, n_splits=3, n_jobs=1, scoring="roc_auc"
    )
    assert result.scores.shape == (1, 3)
    assert np.all((result.scores > 0.5) & (result.scores <= 1))


def test_cross_validate_model_needs_random_state(sonar):
    with pytest.raises(ValueError, match="random_state"):
        cross_validate_model(
            KNeighborsClassifier(), sonar.X, sonar.y, n_jobs=1
        )


def test_cross_validate_model_unknown_scoring_fails_before_fitting(
    sonar, recorder
):
    with pytest.raises(ValueError, match="no_such_score"):
        cross_validate_model(
            recorder(), sonar.X, sonar.y, scoring="no_such_score", n_jobs=1
        )
    assert recorder.fits == []


@pytest.mark.parametrize(
    "X_slice, y_slice, match",
    [
        (slice(None), slice(0, -1), "same number of rows"),
        (slice(0, -1), slice(None), "same number of rows"),
    ],
)
def test_cross_validate_model_rejects_mismatched_data(
    sonar, recorder, X_slice, y_slice, match
):
    with pytest.raises(ValueError, match=match):
        cross_validate_model(
            recorder(), sonar.X[X_slice], sonar.y[y_slice], n_jobs=1
        )
    assert recorder.fits == []


def test_cross_validate_model_rejects_1d_X_and_bad_n_jobs(sonar, recorder):
    with pytest.raises(ValueError, match="2-D"):
        cross_validate_model(recorder(), sonar.X[:, 0], sonar.y, n_jobs=1)
    with pytest.raises(ValueError, match="n_jobs"):
        cross_validate_model(recorder(), sonar.X, sonar.y, n_jobs=0)
    with pytest.raises(ValueError, match="n_splits"):
        cross_validate_model(
            recorder(), sonar.X, sonar.y, n_splits=1, n_jobs=1
        )
    assert recorder.fits == []


def test_cross_validate_model_with_the_keras_pipeline_is_reproducible(sonar):
    """The real pipeline (few epochs, three folds): same seed, same scores; new seed, new scores."""
    pipe = make_classifier(build_baseline, epochs=3)
    kwargs = {"n_splits": 3, "n_jobs": 1}
    a = cross_validate_model(pipe, sonar.X, sonar.y, seed=0, **kwargs)
    b = cross_validate_model(pipe, sonar.X, sonar.y, seed=0, **kwargs)
    c = cross_validate_model(pipe, sonar.X, sonar.y, seed=1, **kwargs)
    assert a.name == "Pipeline"
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)
    assert (
        pipe.get_params()["model__random_state"] is None
    )  # the caller's estimator is untouched


# --------------------------------------------------------------------------- CVResult


def test_cv_result_arithmetic_by_hand():
    # scores 0.8, 0.9, 1.0, 0.7: mean 0.85; deviations -.05, .05, .15, -.15;
    # population variance (.0025 + .0025 + .0225 + .0225) / 4 = .0125; std 0.1118034.
    result = CVResult("demo", np.array([[0.8, 0.9, 1.0, 0.7]]), seed=3)
    assert result.mean == pytest.approx(0.85)
    assert result.std == pytest.approx(0.1118034, abs=1e-7)
    assert result.summary() == "85.00% (11.18%)"
    assert str(result) == "demo: 85.00% (11.18%)"
    assert isinstance(result.mean, float) and isinstance(result.std, float)


def test_cv_result_reproduces_the_tutorial_format():
    # Two scores m +/- s have mean m and population std s (ddof=0, as NumPy and
    # the tutorial print it); the sample std (ddof=1) would be s * sqrt(2) = 6.48%.
    result = CVResult(
        "baseline", np.array([[0.8604 + 0.0458, 0.8604 - 0.0458]]), seed=0
    )
    assert result.summary() == "86.04% (4.58%)"


def test_cv_result_over_repeats_pools_all_folds():
    # 2 repeats x 2 folds: mean of 0.5, 0.7, 0.9, 0.9 is 0.75; deviations -.25, -.05,
    # .15, .15; variance (.0625 + .0025 + .0225 + .0225) / 4 = .0275; std 0.1658312.
    result = CVResult("r", np.array([[0.5, 0.7], [0.9, 0.9]]), seed=0)
    assert (result.n_repeats, result.n_splits) == (2, 2)
    assert result.mean == pytest.approx(0.75)
    assert result.std == pytest.approx(0.1658312, abs=1e-7)
    assert result.summary() == "75.00% (16.58%)"


def test_cv_result_is_immutable():
    result = CVResult("x", np.array([[1.0]]), seed=0)
    with pytest.raises(AttributeError):
        result.name = "y"


def test_single_process_run_leaves_the_callers_threads_alone(sonar):
    # n_jobs=1 runs the folds in this process; the one-thread setting is for
    # joblib's workers only.
    import tensorflow as tf

    before = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    data = sonar
    cross_validate_model(
        make_classifier(build_baseline, epochs=1),
        data.X,
        data.y,
        n_splits=3,
        seed=0,
        n_jobs=1,
    )
    after = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    assert after == before


def test_the_worker_setup_raises_lokys_memory_threshold(monkeypatch):
    # loky restarts a worker whose memory grew past _MAX_MEMORY_LEAK_SIZE;
    # TensorFlow's graphs grow it legitimately, so helpers.cv raises the
    # threshold in each worker it configures.  The function on its own here
    # (with the module's constant restored afterwards); that every local
    # worker runs it, and the caller keeps loky's own threshold, is
    # test_local_workers_are_configured_when_they_start (one pool of worker
    # processes for both: each worker imports TensorFlow, about 5 s).
    from joblib.externals.loky import process_executor

    from helpers import cv

    default = process_executor._MAX_MEMORY_LEAK_SIZE
    assert default < cv.WORKER_MEMORY_GROWTH_LIMIT
    monkeypatch.setattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", default)
    cv._tolerate_tensorflow_memory_in_worker()
    assert (
        process_executor._MAX_MEMORY_LEAK_SIZE
        == cv.WORKER_MEMORY_GROWTH_LIMIT
    )


# --------------------------------------------------------------------------- where the work runs


def test_local_workers_are_configured_when_they_start():
    # compute_on(None) gives loky an initializer: a task that does not call
    # _configure_worker itself still finds one TensorFlow thread and the raised
    # memory threshold in its worker.  And the worker processes, where
    # cross_validate_model trains, run the book's TensorFlow kernels
    # (helpers/__init__.py; tests/test_environment.py for this process).
    from joblib import Parallel, delayed

    from helpers import cv
    from helpers.environment import tensorflow_kernels

    def settings(_):
        import tensorflow as tf
        from joblib.externals.loky import process_executor

        from helpers.environment import tensorflow_kernels

        return (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
            process_executor._MAX_MEMORY_LEAK_SIZE,
            tensorflow_kernels(),
        )

    with cv.compute_on(None, n_jobs=2):
        found = Parallel()(delayed(settings)(i) for i in range(4))
    kernels = tensorflow_kernels()
    assert kernels.startswith(
        "onednn ops off (TF_ENABLE_ONEDNN_OPTS=0), eigen contraction"
    )
    assert set(found) == {(1, 1, cv.WORKER_MEMORY_GROWTH_LIMIT, kernels)}
    from joblib.externals.loky import process_executor

    assert (
        process_executor._MAX_MEMORY_LEAK_SIZE < cv.WORKER_MEMORY_GROWTH_LIMIT
    )  # the caller keeps loky's threshold


def test_compute_on_validates_n_jobs():
    from helpers.cv import compute_on

    with pytest.raises(ValueError, match="n_jobs"):
        with compute_on(None, n_jobs=0):
            pass


def test_seeded_sets_every_random_state_on_a_fresh_clone(recorder):
    from helpers.cv import seeded

    pipe = make_pipeline(StandardScaler(), recorder(random_state=1))
    copy = seeded(pipe, 42)
    assert copy.get_params()["recordingclassifier__random_state"] == 42
    assert pipe.get_params()["recordingclassifier__random_state"] == 1
    with pytest.raises(ValueError, match="random_state"):
        seeded(KNeighborsClassifier(), 1)
    with pytest.raises(ValueError, match="seed"):
        seeded(recorder(), -1)


def test_as_results_accepts_one_or_many_and_names_the_argument():
    from helpers.cv import as_results

    one = CVResult("a", np.array([[0.8, 0.9]]), seed=0)
    assert as_results(one) == [one]
    assert as_results((one, one)) == [one, one]
    for bad in ([], [one, "b"], [0.8]):
        with pytest.raises(TypeError, match="results must be a CVResult"):
            as_results(bad)


# ----------------------------------------------------------------- default_n_jobs


def test_default_n_jobs_is_one_per_core_unless_the_environment_says(
    monkeypatch,
):
    monkeypatch.delenv(N_JOBS_VARIABLE, raising=False)
    assert default_n_jobs() == (os.cpu_count() or 1)
    for setting, expected in (("1", 1), ("3", 3), (" 2 ", 2)):
        monkeypatch.setenv(N_JOBS_VARIABLE, setting)
        assert default_n_jobs() == expected


@pytest.mark.parametrize("setting", ["0", "-1", "two", "1.5", "2x", "+2"])
def test_default_n_jobs_names_the_variable_it_cannot_read(
    monkeypatch, setting
):
    monkeypatch.setenv(N_JOBS_VARIABLE, setting)
    with pytest.raises(
        ValueError,
        match=re.escape(f"{N_JOBS_VARIABLE} ")
        + ".*"
        + re.escape(repr(setting)),
    ):
        default_n_jobs()


def test_without_n_jobs_the_folds_follow_the_environment(
    monkeypatch, sonar, recorder
):
    """With the variable at 1 the folds run in this process, where the
    recording classifier's record is visible; at 2 they run in workers."""
    monkeypatch.setenv(N_JOBS_VARIABLE, "1")
    cross_validate_model(recorder(), sonar.X, sonar.y, n_splits=3, seed=1)
    assert len(recorder.fits) == 3
    recorder.fits.clear()
    monkeypatch.setenv(N_JOBS_VARIABLE, "2")
    cross_validate_model(recorder(), sonar.X, sonar.y, n_splits=3, seed=1)
    assert recorder.fits == []
