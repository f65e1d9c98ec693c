"""Every figure of the book, in one shared style.

* :func:`use_book_style`: the book's matplotlib settings;
* :func:`plot_fold_scores`: one or a few models' fold scores as points, the
  mean as a bar (a reader sees the spread a single mean hides), optionally
  with figures reported elsewhere, such as the tutorial's;
* :func:`plot_mean_intervals`: many configurations' mean scores with their
  corrected confidence intervals (:func:`helpers.stats.corrected_mean_interval`)
  against a setting such as the dropout rate, one line per series;
* :func:`plot_differences`: paired differences with their confidence
  intervals (:class:`helpers.stats.CorrectedTTest`), one row per comparison,
  coloured by :func:`helpers.stats.verdict`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from helpers.cv import CVResult, as_results
from helpers.stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    CorrectedTTest,
    check_comparisons,
    corrected_mean_interval,
    kfold_test_train_ratio,
    verdict,
)
from helpers.validation import check_real

__all__ = [
    "BOOK_STYLE",
    "VERDICT_COLOURS",
    "plot_differences",
    "plot_fold_scores",
    "plot_mean_intervals",
    "use_book_style",
]

BOOK_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.alpha": 0.3,
    "axes.titlesize": "medium",
    "axes.labelsize": "medium",
    "legend.frameon": False,
    "font.size": 10,
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (call once, at the top of a chapter)."""
    mpl.rcParams.update(BOOK_STYLE)


def plot_fold_scores(
    results: CVResult | Sequence[CVResult],
    *,
    reference: dict[str, float] | None = None,
    ax: plt.Axes | None = None,
    ylabel: str = "Accuracy on the held-out fold (%)",
) -> plt.Axes:
    """Plot each configuration's fold scores as points, with their mean.

    Parameters
    ----------
    results
        One :class:`~helpers.cv.CVResult` or several, drawn left to right.
    reference
        Optional ``{result name: value}`` of figures reported elsewhere (for
        example the tutorial's mean accuracy, as a fraction), drawn as hollow
        diamonds beside the points.
    ax
        Axes to draw on; a new figure is made if omitted.
    ylabel
        Label of the vertical axis.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.cv import CVResult
    >>> r = CVResult("baseline", np.array([[0.8, 0.9, 0.85]]), seed=0)
    >>> ax = plot_fold_scores(r, reference={"baseline": 0.8604})
    """
    results = as_results(results)
    reference = dict(reference or {})
    unknown = set(reference) - {r.name for r in results}
    if unknown:
        raise ValueError(f"reference names {sorted(unknown)} match no result")
    if ax is None:
        _, ax = plt.subplots()
    # A fixed-seed jitter spreads tied fold scores sideways, and keeps the
    # figure identical from run to run.
    jitter = np.random.default_rng(0)
    reference_labelled = False
    for i, result in enumerate(results):
        scores = result.scores.ravel() * 100
        x = i + jitter.uniform(-0.12, 0.12, size=scores.size)
        ax.scatter(
            x,
            scores,
            s=18,
            alpha=0.7,
            color="C0",
            zorder=3,
            label="fold score" if i == 0 else None,
        )
        ax.hlines(
            result.mean * 100,
            i - 0.25,
            i + 0.25,
            color="C1",
            linewidth=2,
            zorder=4,
            label="mean" if i == 0 else None,
        )
        if result.name in reference:
            ax.scatter(
                i + 0.33,
                reference[result.name] * 100,
                marker="D",
                s=36,
                facecolors="none",
                edgecolors="C3",
                zorder=4,
                label=None
                if reference_labelled
                else "reported in the tutorial",
            )
            reference_labelled = True
    ax.set_xticks(range(len(results)), [r.name for r in results])
    ax.set_xlim(-0.6, len(results) - 0.4)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize="small")
    return ax


VERDICT_COLOURS = {SUPPORTED: "C2", NOT_SUPPORTED: "C3", INCONCLUSIVE: "0.45"}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def plot_mean_intervals(
    series: Mapping[str, Mapping[object, CVResult]],
    *,
    confidence: float = 0.95,
    ax: plt.Axes | None = None,
    xlabel: str = "",
    ylabel: str = "Mean accuracy over the folds (%)",
    show_folds: bool = True,
) -> plt.Axes:
    """Mean score and corrected confidence interval of each configuration.

    Parameters
    ----------
    series
        ``{series label: {x value: CVResult}}``.  If every x value is a
        number, x is a numeric axis; otherwise the x values are categories,
        placed in the order they first appear.  Series are shifted slightly
        sideways so their error bars do not hide each other.
    confidence
        Level of the intervals (see :func:`helpers.stats.corrected_mean_interval`).
    ax
        Axes to draw on; a new figure is made if omitted.
    xlabel, ylabel
        Axis labels.
    show_folds
        Also draw every fold's score as a faint point.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from helpers.cv import CVResult
    >>> rng = np.random.default_rng(0)
    >>> runs = {rate: CVResult(f"rate {rate}", rng.uniform(0.7, 0.9, (2, 10)), seed=0)
    ...         for rate in (0.0, 0.2, 0.4)}
    >>> ax = plot_mean_intervals({"hidden dropout": runs}, xlabel="Dropout rate")
    """
    if not isinstance(series, Mapping) or not series:
        raise TypeError(
            "series must be a non-empty mapping of label -> {x: CVResult}"
        )
    for label, points in series.items():
        if not isinstance(points, Mapping) or not points:
            raise TypeError(
                f"series[{label!r}] must be a non-empty mapping of x -> CVResult"
            )
        for x, result in points.items():
            if not isinstance(result, CVResult):
                raise TypeError(
                    f"series[{label!r}][{x!r}] must be a CVResult; got {type(result).__name__}"
                )
    confidence = check_real(
        "confidence", confidence, minimum=0.0, inclusive=False
    )

    all_x = list(
        dict.fromkeys(x for points in series.values() for x in points)
    )
    numeric = all(_is_number(x) for x in all_x)
    if numeric:
        values = sorted(float(x) for x in all_x)
        gaps = np.diff(values)
        spacing = float(gaps[gaps > 0].min()) if np.any(gaps > 0) else 1.0
        position = {x: float(x) for x in all_x}
    else:
        spacing = 1.0
        position = {x: float(i) for i, x in enumerate(all_x)}
    dodge = 0.08 * spacing
    if ax is None:
        _, ax = plt.subplots()
    jitter = np.random.default_rng(
        0
    )  # fixed, so the figure is the same every run

    n = len(series)
    for i, (label, points) in enumerate(series.items()):
        colour = f"C{i}"
        shift = (i - (n - 1) / 2) * dodge
        xs, means, lows, highs = [], [], [], []
        for x, result in points.items():
            interval = corrected_mean_interval(
                result.scores,
                test_train_ratio=kfold_test_train_ratio(result.n_splits),
                confidence=confidence,
            )
            xs.append(position[x] + shift)
            means.append(interval.mean * 100)
            lows.append(interval.low * 100)
            highs.append(interval.high * 100)
            if show_folds:
                folds = result.scores.ravel() * 100
                ax.scatter(
                    position[x]
                    + shift
                    + jitter.uniform(-0.3, 0.3, folds.size) * dodge,
                    folds,
                    s=6,
                    alpha=0.25,
                    color=colour,
                    linewidths=0,
                    zorder=2,
                )
        order = np.argsort(xs)
        xs, means = np.asarray(xs)[order], np.asarray(means)[order]
        lows, highs = np.asarray(lows)[order], np.asarray(highs)[order]
        ax.errorbar(
            xs,
            means,
            yerr=[means - lows, highs - means],
            marker="o",
            capsize=3,
            color=colour,
            label=label,
            zorder=3,
        )
    if not numeric:
        ax.set_xticks(range(len(all_x)), [str(x) for x in all_x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return ax


def plot_differences(
    comparisons: Mapping[str, CorrectedTTest],
    *,
    margin: float,
    ax: plt.Axes | None = None,
    scale: float = 100.0,
    xlabel: str = "Difference in mean accuracy (percentage points)",
) -> plt.Axes:
    """Paired differences with their confidence intervals, one row per comparison.

    Parameters
    ----------
    comparisons
        ``{row label: CorrectedTTest}``, drawn top to bottom in this order.
    margin
        Practical-equivalence margin (in score units), drawn as a shaded band
        around 0 and used to colour each row by its verdict.
    ax
        Axes to draw on; a new figure is made if omitted.
    scale
        Multiplies differences (100: accuracy fractions to percentage points).
    xlabel
        Label of the horizontal axis.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from helpers.stats import corrected_resampled_ttest
    >>> r = corrected_resampled_ttest([0.9, 0.8, 0.85], [0.8, 0.8, 0.8], test_train_ratio=0.5)
    >>> ax = plot_differences({"a - b": r}, margin=0.02)
    """
    check_comparisons(comparisons)
    margin = check_real("margin", margin, minimum=0.0)
    scale = check_real("scale", scale, minimum=0.0, inclusive=False)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 0.45 * len(comparisons) + 1.2))

    labels = list(comparisons)
    ys = np.arange(len(labels))[::-1]
    if margin > 0:
        ax.axvspan(
            -margin * scale,
            margin * scale,
            color="0.9",
            zorder=0,
            label=f"within ±{margin * scale:g} (practically equal)",
        )
    ax.axvline(0.0, color="0.3", linewidth=0.8, zorder=1)
    drawn = set()
    for y, label in zip(ys, labels):
        r = comparisons[label]
        word = verdict(r, margin=margin)
        colour = VERDICT_COLOURS[word]
        ax.errorbar(
            r.mean_difference * scale,
            y,
            xerr=[
                [(r.mean_difference - r.ci_low) * scale],
                [(r.ci_high - r.mean_difference) * scale],
            ],
            fmt="o",
            capsize=3,
            color=colour,
            zorder=3,
            label=None if word in drawn else word,
        )
        drawn.add(word)
    ax.set_yticks(ys, labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax
