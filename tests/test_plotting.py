"""Tests for helpers.plotting: fold scores as points, the mean as a bar, reference markers."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402

from helpers.cv import CVResult  # noqa: E402
from helpers.plotting import BOOK_STYLE, plot_fold_scores, use_book_style  # noqa: E402

A = CVResult(
    "baseline",
    np.array([[0.80, 0.85, 0.90, 0.95, 0.75, 0.85, 0.80, 0.90, 0.70, 1.00]]),
    seed=0,
)
B = CVResult(
    "hidden", np.array([[0.60, 0.65, 0.70], [0.75, 0.80, 0.90]]), seed=0
)  # 2 repeats


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def points_by_position(ax):
    """Scatter points grouped by what they are, from their x position.

    Fold points of result i lie within i +/- 0.12 (jitter); the reference
    marker of result i sits at i + 0.33.
    """
    folds, references = {}, {}
    for collection in ax.collections:
        if not isinstance(collection, PathCollection):
            continue
        for x, y in collection.get_offsets():
            i = round(x)
            if abs(x - i) <= 0.12 + 1e-9:
                folds.setdefault(i, []).append(y)
            else:
                assert x - round(x - 0.33) == pytest.approx(0.33)
                references.setdefault(round(x - 0.33), []).append(y)
    return folds, references


def mean_bars(ax):
    bars = {}
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            for segment in collection.get_segments():
                (x0, y0), (x1, y1) = segment
                assert y0 == pytest.approx(y1), "mean bars are horizontal"
                bars[round((x0 + x1) / 2)] = (y0, x1 - x0)
    return bars


def test_one_point_per_fold_at_the_fold_score():
    ax = plot_fold_scores([A, B])
    folds, _ = points_by_position(ax)
    assert sorted(folds) == [0, 1]
    assert len(folds[0]) == 10
    assert len(folds[1]) == 6  # every fold of every repeat
    np.testing.assert_allclose(
        sorted(folds[0]), sorted(A.scores.ravel() * 100)
    )
    np.testing.assert_allclose(
        sorted(folds[1]), sorted(B.scores.ravel() * 100)
    )


def test_mean_bars_at_the_means():
    ax = plot_fold_scores([A, B])
    bars = mean_bars(ax)
    # By hand: A's ten scores sum to 8.5, so 85%; B's six sum to 4.4, so 73.33%.
    assert bars[0][0] == pytest.approx(85.0)
    assert bars[1][0] == pytest.approx(73.3333333)
    assert bars[0][1] == pytest.approx(0.5)


def test_reference_marker_at_the_reported_value():
    ax = plot_fold_scores([A, B], reference={"baseline": 0.8604})
    _, references = points_by_position(ax)
    assert references == {
        0: [pytest.approx(86.04)]
    }  # only for the named result
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count("reported in the tutorial") == 1


def test_reference_legend_entry_appears_once_for_several_references():
    ax = plot_fold_scores(
        [A, B], reference={"baseline": 0.8604, "hidden": 0.8359}
    )
    _, references = points_by_position(ax)
    assert references == {
        0: [pytest.approx(86.04)],
        1: [pytest.approx(83.59)],
    }
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count("reported in the tutorial") == 1
    assert labels.count("fold score") == 1
    assert labels.count("mean") == 1


def test_no_reference_no_marker():
    ax = plot_fold_scores(A)
    _, references = points_by_position(ax)
    assert references == {}
    assert "reported in the tutorial" not in ax.get_legend_handles_labels()[1]


def test_single_result_axis_labels_and_given_axes():
    fig, ax = plt.subplots()
    returned = plot_fold_scores(A, ax=ax, ylabel="ROC AUC (%)")
    assert returned is ax
    assert len(fig.axes) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline"]
    assert ax.get_ylabel() == "ROC AUC (%)"


def test_default_labels_and_tick_order():
    ax = plot_fold_scores([B, A])
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "hidden",
        "baseline",
    ]
    assert ax.get_ylabel() == "Accuracy on the held-out fold (%)"


def test_jitter_is_reproducible():
    first = [
        c.get_offsets().copy()
        for c in plot_fold_scores([A, B]).collections
        if isinstance(c, PathCollection)
    ]
    second = [
        c.get_offsets().copy()
        for c in plot_fold_scores([A, B]).collections
        if isinstance(c, PathCollection)
    ]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "results",
    [
        [],
        (),
        [0.8, 0.9],
        [A, "hidden"],
        "baseline",
        A.scores,
        {"baseline": A},
        None,
    ],
    ids=[
        "empty list",
        "empty tuple",
        "floats",
        "mixed",
        "string",
        "array",
        "dict",
        "None",
    ],
)
def test_bad_results_raise_type_error(results):
    with pytest.raises(TypeError):
        plot_fold_scores(results)


def test_unknown_reference_name_raises_and_names_it():
    with pytest.raises(ValueError, match="visible"):
        plot_fold_scores(
            [A, B], reference={"baseline": 0.86, "visible": 0.8352}
        )


def test_use_book_style_sets_rcparams():
    with matplotlib.rc_context():
        matplotlib.rcParams["axes.spines.top"] = True
        use_book_style()
        for key, value in BOOK_STYLE.items():
            expected = list(value) if isinstance(value, tuple) else value
            assert matplotlib.rcParams[key] == expected, key
        assert matplotlib.rcParams["axes.spines.top"] is False
