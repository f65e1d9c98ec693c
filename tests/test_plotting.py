"""Tests for helpers.plotting: fold scores, mean intervals and paired differences."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from helpers.cv import CVResult  # noqa: E402
from helpers.plotting import (  # noqa: E402
    BOOK_STYLE,
    VERDICT_COLOURS,
    plot_differences,
    plot_fold_scores,
    plot_mean_intervals,
    use_book_style,
)
from helpers.stats import (  # noqa: E402
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    corrected_mean_interval,
    corrected_resampled_ttest,
)

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


# The two figures that compare many configurations.


def result(name: str, centre: float, seed: int = 0) -> CVResult:
    rng = np.random.default_rng(seed)
    return CVResult(
        name, np.clip(rng.normal(centre, 0.05, size=(2, 10)), 0, 1), seed=0
    )


def errorbar_lines(ax):
    """The data line of each errorbar container, in drawing order."""
    return [container.lines[0] for container in ax.containers]


class TestPlotMeanIntervals:
    def test_numeric_x_one_line_per_series_with_corrected_intervals(self):
        runs = {
            rate: result(f"r{rate}", 0.8 + rate / 10, seed=i)
            for i, rate in enumerate((0.0, 0.2, 0.4))
        }
        other = {
            rate: result(f"o{rate}", 0.75, seed=10 + i)
            for i, rate in enumerate((0.0, 0.2, 0.4))
        }
        ax = plot_mean_intervals(
            {"a": runs, "b": other}, xlabel="Dropout rate"
        )
        lines = errorbar_lines(ax)
        assert len(lines) == 2
        x_a, y_a = lines[0].get_data()
        x_b, _ = lines[1].get_data()
        expected = [
            corrected_mean_interval(r.scores, test_train_ratio=1 / 9).mean
            * 100
            for r in runs.values()
        ]
        assert np.allclose(y_a, expected)
        # Series are dodged symmetrically around the true x values.
        assert np.allclose(
            (np.asarray(x_a) + np.asarray(x_b)) / 2, [0.0, 0.2, 0.4]
        )
        assert np.all(np.asarray(x_a) < np.asarray(x_b))
        assert ax.get_xlabel() == "Dropout rate"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "a",
            "b",
        ]

    def test_interval_ends_are_the_corrected_interval(self):
        r = result("x", 0.85)
        ax = plot_mean_intervals({"only": {1.0: r}}, confidence=0.9)
        interval = corrected_mean_interval(
            r.scores, test_train_ratio=1 / 9, confidence=0.9
        )
        segments = ax.containers[0].lines[2][0].get_segments()
        (_, low), (_, high) = segments[0]
        assert (low, high) == pytest.approx(
            (interval.low * 100, interval.high * 100)
        )

    def test_categorical_x_keeps_first_appearance_order(self):
        ax = plot_mean_intervals(
            {
                "s": {
                    "60-30": result("a", 0.8),
                    "240-120": result("b", 0.8),
                    "120-60": result("c", 0.8),
                }
            }
        )
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "60-30",
            "240-120",
            "120-60",
        ]
        x, _ = errorbar_lines(ax)[0].get_data()
        assert np.allclose(sorted(x), [0, 1, 2])

    def test_fold_points_can_be_hidden(self):
        series = {"s": {0.0: result("a", 0.8), 0.5: result("b", 0.8)}}
        with_points = plot_mean_intervals(series)
        assert (
            sum(
                len(c.get_offsets())
                for c in with_points.collections
                if c.get_offsets().shape[0] > 1
            )
            == 40
        )
        _, ax = plt.subplots()
        without = plot_mean_intervals(series, ax=ax, show_folds=False)
        assert without is ax
        assert not [
            c for c in without.collections if c.get_offsets().shape[0] == 20
        ]

    @pytest.mark.parametrize(
        "series, match",
        [
            ({}, "non-empty mapping"),
            ([1, 2], "non-empty mapping"),
            ({"s": {}}, r"series\['s'\]"),
            (
                {"s": {0.1: np.ones((1, 10))}},
                r"series\['s'\]\[0.1\] must be a CVResult",
            ),
        ],
    )
    def test_bad_series(self, series, match):
        with pytest.raises(TypeError, match=match):
            plot_mean_intervals(series)

    def test_bad_confidence(self):
        with pytest.raises(ValueError, match="confidence"):
            plot_mean_intervals(
                {"s": {0.0: result("a", 0.8)}}, confidence=0.0
            )


class TestPlotDifferences:
    def comparisons(self):
        better = corrected_resampled_ttest(
            [0.9, 0.95, 0.9, 0.92],
            [0.8, 0.82, 0.81, 0.8],
            test_train_ratio=0.0,
        )
        worse = corrected_resampled_ttest(
            [0.5, 0.52, 0.5, 0.51],
            [0.8, 0.82, 0.81, 0.8],
            test_train_ratio=0.0,
        )
        unsure = corrected_resampled_ttest(
            [0.9, 0.7, 0.85, 0.75],
            [0.8, 0.8, 0.8, 0.8],
            test_train_ratio=1 / 3,
        )
        return {"better": better, "worse": worse, "unsure": unsure}

    def test_rows_top_to_bottom_coloured_by_verdict(self):
        comparisons = self.comparisons()
        ax = plot_differences(comparisons, margin=0.02)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        ys = list(ax.get_yticks())
        assert [labels[ys.index(y)] for y in sorted(ys, reverse=True)] == [
            "better",
            "worse",
            "unsure",
        ]
        colours = [line.get_color() for line in errorbar_lines(ax)]
        expected = [
            VERDICT_COLOURS[v]
            for v in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
        ]
        assert [to_rgba(c) for c in colours] == [to_rgba(c) for c in expected]
        x, _ = errorbar_lines(ax)[0].get_data()
        assert x[0] == pytest.approx(
            comparisons["better"].mean_difference * 100
        )

    def test_margin_band_only_when_positive(self):
        ax = plot_differences(self.comparisons(), margin=0.02)
        assert len(ax.patches) == 1
        _, ax2 = plt.subplots()
        plot_differences(self.comparisons(), margin=0.0, ax=ax2)
        assert len(ax2.patches) == 0

    def test_legend_lists_each_verdict_once(self):
        comparisons = {
            **self.comparisons(),
            "better again": self.comparisons()["better"],
        }
        ax = plot_differences(comparisons, margin=0.02)
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert texts.count(SUPPORTED) == 1

    @pytest.mark.parametrize("bad", [{}, [1], {"x": 0.1}])
    def test_bad_comparisons(self, bad):
        with pytest.raises(TypeError, match="comparisons"):
            plot_differences(bad, margin=0.02)

    def test_bad_margin_and_scale(self):
        with pytest.raises(ValueError, match="margin"):
            plot_differences(self.comparisons(), margin=-0.1)
        with pytest.raises(TypeError, match="margin"):
            plot_differences(self.comparisons(), margin="0.02")
        with pytest.raises(ValueError, match="scale"):
            plot_differences(self.comparisons(), margin=0.02, scale=0.0)
