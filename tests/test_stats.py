"""Tests for helpers.stats: the corrected resampled t-test, intervals, verdicts and tables.

The two worked examples below were computed by hand (the arithmetic is in the
comments) and are checked to 6 decimals; scipy is used as an independent check
of the parts it can compute (the ordinary paired t-test, t quantiles).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from helpers.cv import CVResult
from helpers.stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    VERDICTS,
    CorrectedTTest,
    MeanInterval,
    compare_results,
    comparison_table,
    corrected_mean_interval,
    corrected_resampled_ttest,
    kfold_test_train_ratio,
    paired_comparison,
    rounded_table,
    verdict,
    without_negative_zero,
)

# Worked example 1: 5-fold cross-validation, one repeat, so J = 5 and
# n_test/n_train = 1/4.
A1 = [0.90, 0.80, 0.85, 0.90, 0.95]
B1 = [0.80, 0.80, 0.65, 0.80, 0.85]
# d = a - b               = [0.10, 0.00, 0.20, 0.10, 0.10]
# mean d                  = 0.50 / 5 = 0.10
# d - mean                = [0, -0.10, 0.10, 0, 0]; squares sum to 0.02
# s^2 (ddof=1)            = 0.02 / 4 = 0.005
# corrected variance      = (1/5 + 1/4) * 0.005 = 0.45 * 0.005 = 0.00225
# corrected SE            = sqrt(0.00225) = 0.0474342
# t                       = 0.10 / 0.0474342 = 2.108185, df = 4
# t_{0.975, 4}            = 2.776445 (from a t table)
# half-width              = 2.776445 * 0.0474342 = 0.131698
# 95% CI                  = [0.10 - 0.131698, 0.10 + 0.131698] = [-0.031698, 0.231698]
# Uncorrected paired test: SE = sqrt(0.005 / 5) = 0.0316228, t = 3.162278.
HAND1 = {
    "mean_difference": 0.10,
    "std_error": 0.0474342,
    "t": 2.108185,
    "ci_low": -0.031698,
    "ci_high": 0.231698,
}

# Worked example 2: 3-fold cross-validation repeated twice, J = 6, n_test/n_train = 1/2.
A2 = np.array([[0.70, 0.80, 0.60], [0.90, 0.80, 0.70]])
B2 = np.array([[0.70, 0.70, 0.70], [0.70, 0.70, 0.70]])
# d                       = [0.0, 0.1, -0.1, 0.2, 0.1, 0.0], mean = 0.3 / 6 = 0.05
# d - mean                = [-0.05, 0.05, -0.15, 0.15, 0.05, -0.05]
# squares                 = [0.0025, 0.0025, 0.0225, 0.0225, 0.0025, 0.0025], sum 0.055
# s^2 (ddof=1)            = 0.055 / 5 = 0.011
# corrected variance      = (1/6 + 1/2) * 0.011 = (2/3) * 0.011 = 0.00733333
# corrected SE            = sqrt(0.00733333) = 0.0856349
# t                       = 0.05 / 0.0856349 = 0.583874, df = 5
HAND2 = {"mean_difference": 0.05, "std_error": 0.0856349, "t": 0.583874}


def make_result(low: float, high: float) -> CorrectedTTest:
    """A comparison with a given interval (the other fields do not affect verdicts)."""
    mid = (low + high) / 2
    return CorrectedTTest(
        mean_a=0.8 + mid,
        mean_b=0.8,
        mean_difference=mid,
        ci_low=low,
        ci_high=high,
        std_error=0.01,
        t=0.0,
        df=9,
        p_value=0.5,
        n_pairs=10,
        test_train_ratio=1 / 9,
        confidence=0.95,
    )


class TestWorkedExamples:
    def test_example_1_matches_the_hand_computation(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
        for field, expected in HAND1.items():
            assert getattr(r, field) == pytest.approx(expected, abs=1e-6), (
                field
            )
        assert r.df == 4
        assert r.n_pairs == 5
        assert r.mean_a == pytest.approx(0.88)
        assert r.mean_b == pytest.approx(0.78)
        assert r.confidence == 0.95
        assert r.test_train_ratio == 0.25

    def test_example_1_p_value_is_the_two_sided_t_tail(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
        # t = 2.108 lies just below t_{0.95, 4} = 2.132, so p is just above 0.10.
        assert 0.10 < r.p_value < 0.11
        assert r.p_value == pytest.approx(
            2 * scipy_stats.t.sf(HAND1["t"], 4), abs=1e-6
        )

    def test_example_1_quantile_matches_scipy(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
        low, high = scipy_stats.t.interval(
            0.95, 4, loc=0.10, scale=HAND1["std_error"]
        )
        assert (r.ci_low, r.ci_high) == pytest.approx((low, high), abs=1e-6)

    def test_example_2_repeated_folds(self):
        r = corrected_resampled_ttest(A2, B2, test_train_ratio=0.5)
        for field, expected in HAND2.items():
            assert getattr(r, field) == pytest.approx(expected, abs=1e-6), (
                field
            )
        assert r.df == 5
        assert r.n_pairs == 6

    def test_compare_results_uses_one_over_k_minus_one(self):
        a = CVResult("a", A2, seed=3)
        b = CVResult("b", B2, seed=3)
        r = compare_results(a, b)
        assert r.test_train_ratio == pytest.approx(0.5)
        assert r.t == pytest.approx(HAND2["t"], abs=1e-6)


class TestAgainstScipy:
    def test_zero_ratio_is_the_ordinary_paired_t_test(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.0)
        ref = scipy_stats.ttest_rel(A1, B1)
        assert r.t == pytest.approx(ref.statistic, rel=1e-9)
        assert r.t == pytest.approx(3.162278, abs=1e-6)  # hand value above
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)

    def test_correction_rescales_the_paired_statistic(self):
        rng = np.random.default_rng(0)
        a = rng.uniform(0.7, 0.9, size=(3, 10))
        b = rng.uniform(0.7, 0.9, size=(3, 10))
        ratio = 1 / 9
        r = corrected_resampled_ttest(a, b, test_train_ratio=ratio)
        ref = scipy_stats.ttest_rel(a.ravel(), b.ravel())
        # Same numerator; the variance grows from s^2/J to (1/J + ratio) s^2.
        factor = math.sqrt((1 / 30) / (1 / 30 + ratio))
        assert r.t == pytest.approx(ref.statistic * factor, rel=1e-9)
        assert r.p_value == pytest.approx(
            2 * scipy_stats.t.sf(abs(r.t), 29), rel=1e-9
        )
        assert r.p_value > ref.pvalue

    def test_mean_interval_matches_scipy_t_interval(self):
        scores = [0.80, 0.90, 0.85, 0.85]
        # s^2 = (0.0025 + 0.0025 + 0 + 0) / 3; corrected SE = sqrt((1/4 + 1/3) s^2)
        se = math.sqrt((1 / 4 + 1 / 3) * 0.005 / 3)
        low, high = scipy_stats.t.interval(0.90, 3, loc=0.85, scale=se)
        m = corrected_mean_interval(
            scores, test_train_ratio=1 / 3, confidence=0.90
        )
        assert isinstance(m, MeanInterval)
        assert (m.mean, m.low, m.high) == pytest.approx(
            (0.85, low, high), abs=1e-12
        )
        assert m.confidence == 0.90


class TestEdgeCases:
    def test_identical_scores_give_no_difference(self):
        r = corrected_resampled_ttest(A1, A1, test_train_ratio=0.25)
        assert (r.mean_difference, r.ci_low, r.ci_high, r.t, r.p_value) == (
            0,
            0,
            0,
            0,
            1,
        )
        assert verdict(r, margin=0.0) == NOT_SUPPORTED

    def test_constant_nonzero_difference_is_certain(self):
        # Quarters are exact in binary, so every difference is exactly 0.25.
        r = corrected_resampled_ttest(
            [0.75, 0.5, 0.25], [0.5, 0.25, 0.0], test_train_ratio=0.5
        )
        assert r.std_error == 0.0
        assert r.t == math.inf and r.p_value == 0.0
        assert r.ci_low == r.ci_high == 0.25
        assert verdict(r, margin=0.02) == SUPPORTED
        neg = corrected_resampled_ttest(
            [0.5, 0.5, 0.5], [0.75, 0.75, 0.75], test_train_ratio=0.5
        )
        assert neg.t == -math.inf and neg.p_value == 0.0
        assert neg.ci_low == neg.ci_high == -0.25

    def test_integer_scores_are_accepted(self):
        r = corrected_resampled_ttest(
            [1, 0, 1, 1], [0, 0, 1, 0], test_train_ratio=0.0
        )
        assert r.mean_difference == pytest.approx(0.5)

    def test_kfold_ratio(self):
        assert kfold_test_train_ratio(10) == pytest.approx(1 / 9)
        assert kfold_test_train_ratio(2) == 1.0

    def test_compare_results_uses_shared_first_repeats(self):
        rng = np.random.default_rng(1)
        long = CVResult("long", rng.uniform(0.7, 0.9, size=(3, 10)), seed=7)
        short = CVResult("short", rng.uniform(0.7, 0.9, size=(1, 10)), seed=7)
        r = compare_results(short, long)
        expected = corrected_resampled_ttest(
            short.scores, long.scores[:1], test_train_ratio=1 / 9
        )
        assert r == expected
        assert r.n_pairs == 10


def test_verdict_rule():
    margin = 0.02
    assert verdict(make_result(0.01, 0.05), margin=margin) == SUPPORTED
    # A small but certain gain is still "supported": the interval is reported beside it.
    assert verdict(make_result(0.001, 0.01), margin=margin) == SUPPORTED
    assert verdict(make_result(-0.05, -0.01), margin=margin) == NOT_SUPPORTED
    # Entirely inside +/- margin: equivalent in practice.
    assert verdict(make_result(-0.01, 0.015), margin=margin) == NOT_SUPPORTED
    assert (
        verdict(make_result(-0.02, 0.02), margin=margin) == NOT_SUPPORTED
    )  # inclusive
    assert verdict(make_result(-0.03, 0.05), margin=margin) == INCONCLUSIVE
    assert verdict(make_result(-0.01, 0.05), margin=margin) == INCONCLUSIVE
    assert (
        verdict(make_result(0.0, 0.05), margin=margin) == INCONCLUSIVE
    )  # 0 is not > 0
    assert verdict(make_result(-0.05, 0.01), margin=margin) == INCONCLUSIVE
    assert verdict(make_result(-0.01, 0.015), margin=0.0) == INCONCLUSIVE
    assert set(VERDICTS) == {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


def test_comparison_table():
    r1 = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
    r2 = corrected_resampled_ttest(B1, A1, test_train_ratio=0.25)
    table = comparison_table({"first": r1, "second": r2}, margin=0.02)
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["first", "second"]
    assert list(table.columns) == [
        "mean",
        "reference mean",
        "difference",
        "CI low",
        "CI high",
        "p",
        "verdict",
    ]
    assert table.loc["first", "difference"] == 10.0
    assert table.loc["first", "mean"] == 88.0
    assert (
        table.loc["first", "CI low"] == -3.2
    )  # -3.1698 rounded to one decimal
    assert table.loc["second", "CI high"] == 3.2
    assert table.loc["first", "verdict"] == INCONCLUSIVE
    assert table.loc["first", "p"] == round(r1.p_value, 3)
    raw = comparison_table({"first": r1}, margin=0.02, scale=1.0, digits=4)
    assert raw.loc["first", "CI high"] == 0.2317


def test_a_difference_that_rounds_to_zero_loses_its_sign():
    assert without_negative_zero(0.06) == 0.06
    for value in (-0.02, -0.0):
        assert math.copysign(1.0, without_negative_zero(value)) == 1.0
    assert without_negative_zero(-0.06) == -0.06  # prints -0.1: kept
    assert without_negative_zero(-0.02, digits=2) == -0.02
    with pytest.raises(TypeError, match="value"):
        without_negative_zero("-0.02")
    with pytest.raises(ValueError, match="digits"):
        without_negative_zero(0.1, digits=-1)
    # The table applies the same rule: a mean difference of -0.02 points.
    a = [0.8502, 0.85, 0.85, 0.85, 0.85]
    b = [0.8503, 0.85, 0.85, 0.85, 0.85]
    r = corrected_resampled_ttest(a, b, test_train_ratio=0.25)
    assert -0.0005 < r.mean_difference < 0
    cell = comparison_table({"x": r}, margin=0.02).loc["x", "difference"]
    assert f"{cell:+.1f}" == "+0.0"


def test_rounded_table_prints_no_negative_zero():
    table = pd.DataFrame(
        {"a": [-0.02, -0.06, 0.04], "b": [-0.004, 1.25, -1.26]}
    )
    out = rounded_table(table, 1)
    assert out["a"].tolist() == [0.0, -0.1, 0.0]
    assert out["b"].tolist() == [0.0, 1.2, -1.3]
    assert "-0.0" not in out.to_string()
    assert "-0.0" in table.round(1).to_string()  # what it fixes
    assert rounded_table(pd.Series([-0.004]), 2).tolist() == [0.0]
    with pytest.raises(TypeError, match="table"):
        rounded_table([-0.02])
    with pytest.raises(ValueError, match="digits"):
        rounded_table(table, -1)


class TestProperties:
    scores = st.lists(
        st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
        min_size=3,
        max_size=30,
    )

    @settings(max_examples=60, deadline=None)
    @given(data=st.data(), ratio=st.floats(min_value=0.0, max_value=1.0))
    def test_swapping_models_negates_the_difference(self, data, ratio):
        a = data.draw(self.scores)
        b = data.draw(
            st.lists(st.floats(0.0, 1.0), min_size=len(a), max_size=len(a))
        )
        ab = corrected_resampled_ttest(a, b, test_train_ratio=ratio)
        ba = corrected_resampled_ttest(b, a, test_train_ratio=ratio)
        assert ab.mean_difference == pytest.approx(
            -ba.mean_difference, abs=1e-12
        )
        assert ab.ci_low == pytest.approx(-ba.ci_high, abs=1e-9)
        assert ab.p_value == pytest.approx(ba.p_value, abs=1e-9)
        assert 0.0 <= ab.p_value <= 1.0
        assert ab.ci_low <= ab.mean_difference <= ab.ci_high
        assert verdict(ab, margin=0.02) in VERDICTS

    @settings(max_examples=40, deadline=None)
    @given(a=scores, shift=st.floats(min_value=-0.5, max_value=0.5))
    def test_correction_only_widens_the_interval(self, a, shift):
        b = [x + shift for x in a[::-1]]
        plain = corrected_resampled_ttest(a, b, test_train_ratio=0.0)
        corrected = corrected_resampled_ttest(a, b, test_train_ratio=1 / 9)
        assert (
            corrected.ci_high - corrected.ci_low
            >= plain.ci_high - plain.ci_low - 1e-12
        )
        assert abs(corrected.t) <= abs(plain.t) + 1e-9 or math.isinf(plain.t)


class TestErrors:
    def test_shapes_must_match(self):
        with pytest.raises(ValueError, match="same shape"):
            corrected_resampled_ttest(
                [0.8, 0.9, 0.7], [0.8, 0.9], test_train_ratio=0.1
            )
        with pytest.raises(ValueError, match="same shape"):
            corrected_resampled_ttest(
                np.ones((2, 3)), np.ones(6), test_train_ratio=0.1
            )

    def test_needs_two_scores(self):
        with pytest.raises(ValueError, match="at least 2"):
            corrected_resampled_ttest([0.8], [0.9], test_train_ratio=0.1)
        with pytest.raises(ValueError, match="at least 2"):
            corrected_mean_interval([], test_train_ratio=0.1)

    @pytest.mark.parametrize("bad", [[0.8, np.nan], [0.8, np.inf]])
    def test_scores_must_be_finite(self, bad):
        with pytest.raises(ValueError, match="finite"):
            corrected_resampled_ttest(bad, [0.8, 0.9], test_train_ratio=0.1)

    @pytest.mark.parametrize(
        "bad", ["0.8,0.9", ["a", "b"], [True, False], [[0.8], [0.9, 0.7]]]
    )
    def test_scores_must_be_numbers(self, bad):
        with pytest.raises(TypeError, match="scores_a"):
            corrected_resampled_ttest(bad, [0.8, 0.9], test_train_ratio=0.1)

    @pytest.mark.parametrize(
        "ratio, error",
        [
            (-0.1, ValueError),
            ("1/9", TypeError),
            (math.nan, ValueError),
            (True, TypeError),
        ],
    )
    def test_ratio_checked(self, ratio, error):
        with pytest.raises(error, match="test_train_ratio"):
            corrected_resampled_ttest(A1, B1, test_train_ratio=ratio)

    @pytest.mark.parametrize(
        "confidence, error",
        [
            (0.0, ValueError),
            (1.0, ValueError),
            (95, ValueError),
            ("0.95", TypeError),
        ],
    )
    def test_confidence_checked(self, confidence, error):
        with pytest.raises(error, match="confidence"):
            corrected_resampled_ttest(
                A1, B1, test_train_ratio=0.25, confidence=confidence
            )
        with pytest.raises(error, match="confidence"):
            corrected_mean_interval(
                A1, test_train_ratio=0.25, confidence=confidence
            )

    def test_ratio_is_keyword_only_and_required(self):
        with pytest.raises(TypeError):
            corrected_resampled_ttest(A1, B1)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            corrected_resampled_ttest(A1, B1, 0.25)  # type: ignore[misc]

    def test_verdict_arguments(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
        with pytest.raises(ValueError, match="margin"):
            verdict(r, margin=-0.01)
        with pytest.raises(TypeError, match="CorrectedTTest"):
            verdict((r.ci_low, r.ci_high), margin=0.02)
        with pytest.raises(TypeError):
            verdict(r)  # type: ignore[call-arg]

    def test_compare_results_needs_paired_results(self):
        a = CVResult("a", np.full((1, 10), 0.8), seed=1)
        with pytest.raises(ValueError, match="same seed"):
            compare_results(a, CVResult("b", np.full((1, 10), 0.8), seed=2))
        with pytest.raises(ValueError, match="number of folds"):
            compare_results(a, CVResult("b", np.full((1, 5), 0.8), seed=1))
        with pytest.raises(TypeError, match="reference must be a CVResult"):
            compare_results(a, np.full((1, 10), 0.8))

    def test_kfold_ratio_checked(self):
        with pytest.raises(ValueError, match="n_splits"):
            kfold_test_train_ratio(1)
        with pytest.raises(TypeError, match="n_splits"):
            kfold_test_train_ratio(10.0)

    def test_comparison_table_arguments(self):
        r = corrected_resampled_ttest(A1, B1, test_train_ratio=0.25)
        with pytest.raises(TypeError, match="non-empty mapping"):
            comparison_table({}, margin=0.02)
        with pytest.raises(TypeError, match="non-empty mapping"):
            comparison_table([r], margin=0.02)
        with pytest.raises(TypeError, match=r"comparisons\['x'\]"):
            comparison_table({"x": 0.1}, margin=0.02)
        with pytest.raises(ValueError, match="scale"):
            comparison_table({"x": r}, margin=0.02, scale=0)
        with pytest.raises(ValueError, match="digits"):
            comparison_table({"x": r}, margin=0.02, digits=-1)


class TestPairedComparison:
    A = CVResult(
        "dropout",
        np.array([[0.90, 0.80, 0.85, 0.90, 0.95], [0.7, 0.8, 0.9, 0.8, 0.9]]),
        seed=3,
    )
    B = CVResult(
        "baseline", np.array([[0.80, 0.80, 0.65, 0.85, 0.85]]), seed=3
    )

    def test_differences_are_the_shared_repeats_in_points(self):
        c = paired_comparison(self.A, self.B)
        assert c.differences == pytest.approx([10, 0, 20, 5, 10])
        assert (c.wins, c.ties, c.losses) == (4, 1, 0)
        assert c.mean_difference == pytest.approx(9.0)
        assert c.sd_difference == pytest.approx(
            np.std([10, 0, 20, 5, 10], ddof=1)
        )

    def test_test_is_compare_results_and_naive_p_is_scipys(self):
        c = paired_comparison(self.A, self.B, confidence=0.9)
        assert c.test == compare_results(self.A, self.B, confidence=0.9)
        expected = scipy_stats.ttest_rel(self.A.scores[0], self.B.scores[0])
        assert c.naive_p == pytest.approx(expected.pvalue)
        # Ignoring the overlap of training sets understates the uncertainty.
        assert c.naive_p < c.test.p_value

    def test_glue_values_in_percent_and_points(self):
        values = paired_comparison(self.B, self.A).glue_values()
        assert values["candidate_mean"] == pytest.approx(self.B.mean * 100)
        assert values["reference_mean"] == pytest.approx(self.A.mean * 100)
        assert values["mean_difference"] == pytest.approx(-9.0)
        assert values["abs_difference"] == pytest.approx(9.0)
        assert values["direction"] == "lower"
        assert (values["wins"], values["losses"]) == (0, 4)
        test = compare_results(self.B, self.A)
        assert values["ci_low"] == pytest.approx(test.ci_low * 100)
        assert values["ci_high"] == pytest.approx(test.ci_high * 100)

    def test_glue_hands_every_value_to_myst_nb(self, monkeypatch):
        import myst_nb

        glued = {}

        def fake_glue(name, value, display=True):
            assert display is False
            glued[name] = value

        monkeypatch.setattr(myst_nb, "glue", fake_glue)
        c = paired_comparison(self.A, self.B)
        c.glue()
        assert glued == c.glue_values()

    def test_report_names_both_models_and_states_the_numbers(self):
        text = paired_comparison(self.A, self.B).report()
        assert "dropout minus baseline" in text
        assert "+9.00 points" in text
        assert "4 / 1 / 0" in text
        assert "Corrected 95% interval" in text

    def test_different_folds_are_refused(self):
        other = CVResult("other", self.B.scores, seed=4)
        with pytest.raises(ValueError, match="different folds"):
            paired_comparison(self.A, other)
