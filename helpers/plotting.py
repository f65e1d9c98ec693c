"""Figures in one shared style.

Fold scores are always drawn as points (one per fold), with the mean as a
horizontal bar, so a reader sees the spread a single mean hides.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from helpers.cv import CVResult

__all__ = ["BOOK_STYLE", "use_book_style", "plot_fold_scores"]

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
    if isinstance(results, CVResult):
        results = [results]
    results = list(results)
    if not results or not all(isinstance(r, CVResult) for r in results):
        raise TypeError(
            "results must be a CVResult or a non-empty sequence of CVResult"
        )
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
