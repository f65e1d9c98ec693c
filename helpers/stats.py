"""Comparing two models scored by (repeated) k-fold cross-validation.

The fold scores of one cross-validation are not independent: any two training
sets share most of their rows, so the scores move together.  The ordinary
paired t-test ignores that and finds "significant" differences far too often.
Nadeau and Bengio (2003, *Inference for the Generalization Error*) correct the
variance for the overlap.  With ``J`` paired fold scores (``r`` repeats of
``k`` folds, ``J = r * k``), differences ``d_j = a_j - b_j``, their mean
``d_bar`` and sample variance ``s**2`` (``ddof=1``)::

    corrected variance of d_bar = (1/J + n_test/n_train) * s**2
    t = d_bar / sqrt(corrected variance),   J - 1 degrees of freedom

For k-fold cross-validation ``n_test/n_train = 1/(k-1)`` (a ninth for ten
folds), so however many repeats are run, the variance never falls below
``s**2 / (k-1)``: repeats steady the estimate of ``s**2`` but cannot make the
interval arbitrarily narrow.

:func:`corrected_resampled_ttest` computes the test and a confidence interval
for the mean difference; :func:`compare_results` applies it to two
:class:`~helpers.cv.CVResult` objects; :func:`paired_comparison` adds what a
chapter prints beside it (the per-fold differences, wins and losses, and the
ordinary paired t-test for contrast); :func:`verdict` turns an interval into
one of three words by the rule stated in its docstring; and
:func:`comparison_table` collects several comparisons into a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from helpers.cv import CVResult
from helpers.validation import check_int, check_real

__all__ = [
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "VERDICTS",
    "CorrectedTTest",
    "MeanInterval",
    "kfold_test_train_ratio",
    "corrected_resampled_ttest",
    "corrected_mean_interval",
    "compare_results",
    "PairedComparison",
    "paired_comparison",
    "verdict",
    "comparison_table",
    "without_negative_zero",
    "rounded_table",
]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported on this data"
INCONCLUSIVE = "inconclusive"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)


@dataclass(frozen=True)
class CorrectedTTest:
    """The corrected resampled t-test of ``a - b`` over paired fold scores.

    Attributes
    ----------
    mean_a, mean_b
        Mean of each set of scores.
    mean_difference
        Mean of the paired differences ``a - b`` (equal to ``mean_a - mean_b``).
    ci_low, ci_high
        Confidence interval for the expected difference.
    std_error
        Corrected standard error of ``mean_difference``.
    t
        ``mean_difference / std_error``.
    df
        Degrees of freedom, the number of pairs minus one.
    p_value
        Two-sided p-value of the hypothesis "no difference".
    n_pairs
        Number of paired scores ``J``.
    test_train_ratio
        ``n_test / n_train`` used in the correction.
    confidence
        Confidence level of the interval.
    """

    mean_a: float
    mean_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    std_error: float
    t: float
    df: int
    p_value: float
    n_pairs: int
    test_train_ratio: float
    confidence: float


@dataclass(frozen=True)
class MeanInterval:
    """A mean score with its corrected confidence interval."""

    mean: float
    low: float
    high: float
    confidence: float


def kfold_test_train_ratio(n_splits: int) -> float:
    """``n_test / n_train`` of k-fold cross-validation: ``1 / (k - 1)``.

    Each fold holds one k-th of the rows out and trains on the rest.  (With
    208 rows and ten folds the folds hold 20 or 21 rows; the ratio of the
    average sizes is exactly 1/9.)

    Examples
    --------
    >>> kfold_test_train_ratio(10)
    0.1111111111111111
    """
    n_splits = check_int("n_splits", n_splits, minimum=2)
    return 1.0 / (n_splits - 1)


def _as_scores(name: str, scores) -> np.ndarray:
    if isinstance(scores, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers; got {scores!r}")
    try:
        array = np.asarray(scores)
    except (
        TypeError,
        ValueError,
    ) as exc:  # ragged nested lists, for instance
        raise TypeError(
            f"{name} must be an array of numbers; got {scores!r}"
        ) from exc
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name} must hold real numbers; got an array of dtype {array.dtype}"
        )
    array = array.astype(float).ravel()
    if array.size < 2:
        raise ValueError(
            f"{name} must hold at least 2 scores; got {array.size}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} must hold finite numbers only (no NaN or infinity)"
        )
    return array


def _check_confidence(confidence) -> float:
    confidence = check_real(
        "confidence", confidence, minimum=0.0, inclusive=False
    )
    if confidence >= 1.0:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    return confidence


def _corrected(values: np.ndarray, ratio: float, confidence: float):
    """Mean, corrected standard error, t quantile and df for one sample of values."""
    n = values.size
    mean = float(values.mean())
    variance = float(values.var(ddof=1))
    std_error = math.sqrt((1.0 / n + ratio) * variance)
    df = n - 1
    quantile = float(_scipy_stats.t.ppf(0.5 + confidence / 2.0, df))
    return mean, std_error, quantile, df


def corrected_resampled_ttest(
    scores_a,
    scores_b,
    *,
    test_train_ratio: float,
    confidence: float = 0.95,
) -> CorrectedTTest:
    """Nadeau and Bengio's corrected resampled t-test of ``a - b``.

    Parameters
    ----------
    scores_a, scores_b
        Scores of two models on the *same* folds, in the same order (any
        shape; they are flattened).  Pair ``j`` must come from the same
        training and test rows.
    test_train_ratio
        ``n_test / n_train`` of one fold, for example
        :func:`kfold_test_train_ratio` ``(10)``.  A ratio of 0 gives the
        ordinary paired t-test, which is too liberal for cross-validation.
    confidence
        Level of the confidence interval for the difference, in (0, 1).

    Returns
    -------
    CorrectedTTest
        Mean difference ``a - b``, its confidence interval, t, df and the
        two-sided p-value.  If all differences are equal (zero variance), the
        interval shrinks to that value and t is 0 (with p = 1) when it is 0,
        infinite (with p = 0) otherwise.

    Examples
    --------
    >>> r = corrected_resampled_ttest([0.9, 0.8, 0.85, 0.9, 0.95],
    ...                               [0.8, 0.8, 0.65, 0.8, 0.85], test_train_ratio=0.25)
    >>> round(r.mean_difference, 3), round(r.t, 3), r.df
    (0.1, 2.108, 4)
    """
    a = _as_scores("scores_a", scores_a)
    b = _as_scores("scores_b", scores_b)
    if np.shape(scores_a) != np.shape(scores_b):
        raise ValueError(
            "scores_a and scores_b must have the same shape (one score per fold, paired); "
            f"got {np.shape(scores_a)} and {np.shape(scores_b)}"
        )
    ratio = check_real("test_train_ratio", test_train_ratio, minimum=0.0)
    confidence = _check_confidence(confidence)

    differences = a - b
    mean, std_error, quantile, df = _corrected(differences, ratio, confidence)
    if std_error > 0.0:
        t = mean / std_error
        p_value = float(2.0 * _scipy_stats.t.sf(abs(t), df))
    elif mean == 0.0:
        t, p_value = 0.0, 1.0
    else:
        t, p_value = math.copysign(math.inf, mean), 0.0
    half_width = quantile * std_error
    return CorrectedTTest(
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_difference=mean,
        ci_low=mean - half_width,
        ci_high=mean + half_width,
        std_error=std_error,
        t=float(t),
        df=df,
        p_value=p_value,
        n_pairs=int(differences.size),
        test_train_ratio=ratio,
        confidence=confidence,
    )


def corrected_mean_interval(
    scores, *, test_train_ratio: float, confidence: float = 0.95
) -> MeanInterval:
    """Confidence interval for one model's expected score, with the same correction.

    The interval is ``mean +/- t_quantile * sqrt((1/J + n_test/n_train) * s**2)``
    over the ``J`` fold scores.

    Examples
    --------
    >>> m = corrected_mean_interval([0.8, 0.9, 0.85, 0.85], test_train_ratio=1 / 3)
    >>> round(m.mean, 3), round(m.high - m.mean, 3)
    (0.85, 0.099)
    """
    values = _as_scores("scores", scores)
    ratio = check_real("test_train_ratio", test_train_ratio, minimum=0.0)
    confidence = _check_confidence(confidence)
    mean, std_error, quantile, _ = _corrected(values, ratio, confidence)
    return MeanInterval(
        mean=mean,
        low=mean - quantile * std_error,
        high=mean + quantile * std_error,
        confidence=confidence,
    )


def _shared_scores(a: CVResult, b: CVResult) -> tuple[np.ndarray, np.ndarray]:
    for name, result in (("candidate", a), ("reference", b)):
        if not isinstance(result, CVResult):
            raise TypeError(
                f"{name} must be a CVResult; got {type(result).__name__}"
            )
    if a.seed != b.seed:
        raise ValueError(
            f"{a.name!r} (seed {a.seed}) and {b.name!r} (seed {b.seed}) were scored on "
            "different folds; paired comparisons need the same seed"
        )
    if a.n_splits != b.n_splits:
        raise ValueError(
            f"{a.name!r} has {a.n_splits} folds per repeat and {b.name!r} has {b.n_splits}; "
            "paired comparisons need the same number of folds"
        )
    n_repeats = min(a.n_repeats, b.n_repeats)
    return a.scores[:n_repeats], b.scores[:n_repeats]


def compare_results(
    candidate: CVResult, reference: CVResult, *, confidence: float = 0.95
) -> CorrectedTTest:
    """Corrected resampled t-test of ``candidate - reference`` on their shared folds.

    Both results must come from :func:`helpers.cv.cross_validate_model` with
    the same ``seed`` and ``n_splits``.  Repeat ``r`` of a given seed uses
    the same folds whatever ``n_repeats`` was, so when one result has fewer
    repeats the comparison uses the other's first repeats only.

    Examples
    --------
    >>> import numpy as np
    >>> a = CVResult("a", np.array([[0.9, 0.8, 0.85, 0.9, 0.95]]), seed=0)
    >>> b = CVResult("b", np.array([[0.8, 0.8, 0.65, 0.8, 0.85]]), seed=0)
    >>> round(compare_results(a, b).mean_difference, 3)
    0.1
    """
    a, b = _shared_scores(candidate, reference)
    return corrected_resampled_ttest(
        a,
        b,
        test_train_ratio=kfold_test_train_ratio(candidate.n_splits),
        confidence=confidence,
    )


@dataclass(frozen=True)
class PairedComparison:
    """Two models scored on the same folds, compared fold by fold.

    Built by :func:`paired_comparison`; differences are ``candidate -
    reference`` in percentage points.

    Attributes
    ----------
    candidate, reference
        The two results.
    differences
        The per-fold differences (points), repeats one after another.
    test
        The corrected resampled t-test of the differences.
    naive_p
        The p-value of an ordinary paired t-test, which treats the folds as
        independent samples and so understates the uncertainty: shown for
        contrast, never used for a decision.
    """

    candidate: CVResult
    reference: CVResult
    differences: np.ndarray
    test: CorrectedTTest
    naive_p: float

    @property
    def mean_difference(self) -> float:
        """Mean of the per-fold differences (points)."""
        return float(self.differences.mean())

    @property
    def sd_difference(self) -> float:
        """Sample standard deviation of the per-fold differences (points)."""
        return float(self.differences.std(ddof=1))

    @property
    def wins(self) -> int:
        return int((self.differences > 0).sum())

    @property
    def ties(self) -> int:
        return int((self.differences == 0).sum())

    @property
    def losses(self) -> int:
        return int((self.differences < 0).sum())

    def report(self) -> str:
        """The comparison as lines of text, for a chapter to print."""
        a, b = self.candidate.name, self.reference.name
        level = f"{self.test.confidence:.0%}"
        return "\n".join(
            [
                f"Per-fold difference, {a} minus {b} (points): "
                f"{np.round(self.differences, 1)}",
                f"Mean difference {self.mean_difference:+.2f} points, "
                f"standard deviation {self.sd_difference:.2f}",
                f"Folds where {a} wins / ties / loses: "
                f"{self.wins} / {self.ties} / {self.losses}",
                f"Corrected {level} interval for the difference: "
                f"[{self.test.ci_low * 100:+.1f}, {self.test.ci_high * 100:+.1f}] points",
                "Ordinary paired t-test, which treats the folds as independent: "
                f"p = {self.naive_p:.3f}",
            ]
        )

    def glue_values(self) -> dict[str, float | int | str]:
        """The numbers a chapter's prose quotes, by the names it glues them under.

        Accuracies are in percent and differences in points; ``direction`` is
        "higher" or "lower" (the candidate against the reference).
        """
        return {
            "candidate_mean": self.candidate.mean * 100,
            "candidate_std": self.candidate.std * 100,
            "reference_mean": self.reference.mean * 100,
            "mean_difference": self.mean_difference,
            "abs_difference": abs(self.mean_difference),
            "sd_difference": self.sd_difference,
            "direction": "higher" if self.mean_difference > 0 else "lower",
            "wins": self.wins,
            "losses": self.losses,
            "ci_low": self.test.ci_low * 100,
            "ci_high": self.test.ci_high * 100,
            "naive_p": self.naive_p,
        }

    def glue(self) -> None:
        """Glue :meth:`glue_values` into the running notebook (myst-nb), not displayed."""
        from myst_nb import glue

        for name, value in self.glue_values().items():
            glue(name, value, display=False)


def paired_comparison(
    candidate: CVResult, reference: CVResult, *, confidence: float = 0.95
) -> PairedComparison:
    """Compare two results fold by fold on the folds they share.

    The same requirements as :func:`compare_results` (same seed, same number
    of folds); the test is :func:`compare_results`' corrected t-test.

    Examples
    --------
    >>> a = CVResult("dropout", np.array([[0.9, 0.8, 0.85, 0.9, 0.95]]), seed=0)
    >>> b = CVResult("baseline", np.array([[0.8, 0.8, 0.65, 0.8, 0.85]]), seed=0)
    >>> c = paired_comparison(a, b)
    >>> (c.wins, c.ties, c.losses), round(c.mean_difference, 1)
    ((4, 1, 0), 10.0)
    """
    test = compare_results(candidate, reference, confidence=confidence)
    a, b = _shared_scores(candidate, reference)
    differences = ((a - b) * 100).ravel()
    naive_p = float(_scipy_stats.ttest_rel(a.ravel(), b.ravel()).pvalue)
    return PairedComparison(candidate, reference, differences, test, naive_p)


def verdict(result: CorrectedTTest, *, margin: float) -> str:
    """Turn a comparison into one of three words, by a rule fixed in advance.

    With ``[low, high]`` the confidence interval for the difference
    (candidate minus reference) and ``margin`` the largest difference that
    would not matter in practice, checked in this order:

    1. ``"supported"`` if ``low > 0``: the candidate is better, by an amount
       the interval bounds;
    2. ``"not supported on this data"`` if ``high < 0`` (the candidate is
       worse), or if ``-margin <= low`` and ``high <= margin`` (any
       difference is too small to matter);
    3. ``"inconclusive"`` otherwise: the interval holds 0 and also
       differences larger than the margin, so the data cannot decide.

    Parameters
    ----------
    result
        A :class:`CorrectedTTest`.
    margin
        Practical-equivalence margin, in the units of the scores (0.02 is
        two points of accuracy); must be >= 0.

    Examples
    --------
    >>> r = corrected_resampled_ttest([0.9, 0.8, 0.85, 0.9, 0.95],
    ...                               [0.8, 0.8, 0.65, 0.8, 0.85], test_train_ratio=0.25)
    >>> verdict(r, margin=0.02)
    'inconclusive'
    """
    if not isinstance(result, CorrectedTTest):
        raise TypeError(
            f"result must be a CorrectedTTest; got {type(result).__name__}"
        )
    margin = check_real("margin", margin, minimum=0.0)
    if result.ci_low > 0.0:
        return SUPPORTED
    if result.ci_high < 0.0 or (
        -margin <= result.ci_low and result.ci_high <= margin
    ):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def check_comparisons(comparisons) -> None:
    """Raise ``TypeError`` unless ``comparisons`` maps labels to :class:`CorrectedTTest` results."""
    if not isinstance(comparisons, Mapping) or not comparisons:
        raise TypeError(
            "comparisons must be a non-empty mapping of label -> CorrectedTTest"
        )
    for label, result in comparisons.items():
        if not isinstance(result, CorrectedTTest):
            raise TypeError(
                f"comparisons[{label!r}] must be a CorrectedTTest; got {type(result).__name__}"
            )


def without_negative_zero(value, digits: int = 1) -> float:
    """``value``, or ``0.0`` when it rounds to zero at ``digits`` decimals.

    A difference of -0.02 points printed with one decimal reads "-0.0", a
    sign the data do not show.  Glue such numbers through this; round a
    table with :func:`rounded_table` (:func:`comparison_table` does).

    >>> without_negative_zero(-0.02), without_negative_zero(-0.06)
    (0.0, -0.06)
    """
    value = check_real("value", value)
    digits = check_int("digits", digits, minimum=0)
    return 0.0 if round(value, digits) == 0 else value


def rounded_table(table, digits: int = 1):
    """``table`` (a pandas DataFrame or Series) rounded to ``digits`` decimals
    for printing, a value that rounds to zero shown as 0.0, not -0.0.

    The table counterpart of :func:`without_negative_zero`;
    :func:`comparison_table` rounds its tables with it.

    >>> import pandas as pd
    >>> rounded_table(pd.Series([-0.02, -0.06, 0.04])).tolist()
    [0.0, -0.1, 0.0]
    """
    import pandas as pd

    if not isinstance(table, (pd.DataFrame, pd.Series)):
        raise TypeError(
            "table must be a pandas DataFrame or Series; got "
            f"{type(table).__name__}"
        )
    digits = check_int("digits", digits, minimum=0)
    # (-0.0 + 0.0 is 0.0 in IEEE arithmetic; every other value is unchanged)
    return table.round(digits) + 0.0


def comparison_table(
    comparisons: Mapping[str, CorrectedTTest],
    *,
    margin: float,
    scale: float = 100.0,
    digits: int = 1,
):
    """One row per comparison: means, difference, interval, p-value and verdict.

    Parameters
    ----------
    comparisons
        ``{row label: CorrectedTTest}``, in the order the rows should appear.
    margin
        Passed to :func:`verdict`.
    scale
        Multiplies means, differences and interval ends (100 turns accuracies
        into percentages and differences into percentage points).
    digits
        Decimals kept for the scaled columns (p-values keep three).

    Returns
    -------
    pandas.DataFrame
        Columns ``mean``, ``reference mean``, ``difference``, ``CI low``,
        ``CI high``, ``p`` and ``verdict``, indexed by the row labels.

    Examples
    --------
    >>> r = corrected_resampled_ttest([0.9, 0.8, 0.85, 0.9, 0.95],
    ...                               [0.8, 0.8, 0.65, 0.8, 0.85], test_train_ratio=0.25)
    >>> comparison_table({"a vs b": r}, margin=0.02).loc["a vs b", "difference"]
    np.float64(10.0)
    """
    import pandas as pd

    check_comparisons(comparisons)
    margin = check_real("margin", margin, minimum=0.0)
    scale = check_real("scale", scale, minimum=0.0, inclusive=False)
    digits = check_int("digits", digits, minimum=0)
    rows = {
        label: {
            "mean": r.mean_a * scale,
            "reference mean": r.mean_b * scale,
            "difference": r.mean_difference * scale,
            "CI low": r.ci_low * scale,
            "CI high": r.ci_high * scale,
            "p": r.p_value,
            "verdict": verdict(r, margin=margin),
        }
        for label, r in comparisons.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    scaled = ["mean", "reference mean", "difference", "CI low", "CI high"]
    table[scaled] = rounded_table(table[scaled], digits)
    table["p"] = table["p"].round(3)
    return table
