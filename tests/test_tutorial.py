"""helpers.tutorial: the tutorial's reported figures, written down once."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.cv import CVResult
from helpers.tutorial import (
    REPORTED,
    Reported,
    compare_with_tutorial,
    reported_means,
)


def test_the_three_experiments_and_their_printed_form():
    assert list(REPORTED) == ["baseline", "visible dropout", "hidden dropout"]
    assert REPORTED["baseline"].summary() == "86.04% (4.58%)"
    assert REPORTED["visible dropout"].summary() == "83.52% (7.68%)"
    assert REPORTED["hidden dropout"].summary() == "83.59% (7.31%)"


def test_reported_figures_cannot_be_changed_by_a_chapter():
    with pytest.raises(TypeError):
        REPORTED["baseline"] = Reported(0.9, 0.01)
    with pytest.raises(AttributeError):
        REPORTED["baseline"].mean = 0.9


def test_summary_uses_the_same_format_as_a_cv_result():
    ours = CVResult(
        "baseline", np.array([[0.8604 + 0.0458, 0.8604 - 0.0458]]), seed=0
    )
    assert ours.summary() == REPORTED["baseline"].summary()


def test_reported_means_for_plotting():
    assert reported_means(["hidden dropout", "baseline"]) == {
        "hidden dropout": 0.8359,
        "baseline": 0.8604,
    }


def test_unknown_experiment_names_what_exists():
    with pytest.raises(KeyError, match="'wide dropout'.*'baseline'"):
        reported_means(["wide dropout"])
    with pytest.raises(TypeError, match="not one string"):
        reported_means("baseline")


def test_table_sets_each_result_beside_its_reported_figure():
    base = CVResult("baseline", np.array([[0.8, 0.9]]), seed=0)
    drop = CVResult("visible dropout", np.array([[0.7, 0.9]]), seed=0)
    table = compare_with_tutorial([base, drop])
    assert list(table.index) == ["baseline", "visible dropout"]
    assert (
        table.loc["visible dropout", "tutorial (reported)"]
        == "83.52% (7.68%)"
    )
    assert (
        table.loc["visible dropout", "this book (executed above)"]
        == drop.summary()
    )
    assert compare_with_tutorial(base).shape == (1, 2)


def test_table_refuses_results_the_tutorial_does_not_report():
    stray = CVResult("seed 3", np.array([[0.8, 0.9]]), seed=3)
    with pytest.raises(KeyError, match="'seed 3'"):
        compare_with_tutorial([stray])
    with pytest.raises(TypeError, match="CVResult"):
        compare_with_tutorial([])
