"""Tests for helpers.experiments: the two comparison figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from helpers.cv import CVResult  # noqa: E402
from helpers.experiments import (
    VERDICT_COLOURS,
    plot_differences,
    plot_mean_intervals,
)  # noqa: E402
from helpers.stats import (  # noqa: E402
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    corrected_mean_interval,
    corrected_resampled_ttest,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


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
