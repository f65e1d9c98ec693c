"""What the source tutorial reports, written down once for every chapter.

The tutorial is "Dropout Regularization in Deep Learning Models with Keras"
(first published June 2016).  The figures here are those of its version of
July 2022, for TensorFlow 2.x and SciKeras (:data:`TUTORIAL_VERSION`): each is
the mean and the standard deviation of ten fold accuracies of one run of
stratified, shuffled 10-fold cross-validation, printed "mean% (std%)".  The
chapters set them beside their own executed results with
:func:`compare_with_tutorial` and draw them with :func:`reported_means`; a
correction is made here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from helpers.cv import CVResult, as_results

__all__ = [
    "REPORTED",
    "TUTORIAL_VERSION",
    "Reported",
    "compare_with_tutorial",
    "reported_means",
]

TUTORIAL_VERSION = "July 2022 (TensorFlow 2.x and SciKeras)"


@dataclass(frozen=True)
class Reported:
    """One experiment's result as the tutorial prints it (fractions, not percent)."""

    mean: float
    std: float

    def summary(self) -> str:
        """The tutorial's format, ``"mean% (std%)"``, as :meth:`CVResult.summary` prints ours."""
        return f"{self.mean * 100:.2f}% ({self.std * 100:.2f}%)"


# Keyed by the names the chapters give their results (``CVResult.name``).
REPORTED = MappingProxyType(
    {
        "baseline": Reported(mean=0.8604, std=0.0458),
        "visible dropout": Reported(mean=0.8352, std=0.0768),
        "hidden dropout": Reported(mean=0.8359, std=0.0731),
    }
)


def _reported(name: str) -> Reported:
    if name not in REPORTED:
        raise KeyError(
            f"the tutorial reports no experiment named {name!r}; it reports "
            f"{', '.join(repr(k) for k in REPORTED)}"
        )
    return REPORTED[name]


def reported_means(names: Iterable[str]) -> dict[str, float]:
    """``{name: reported mean}``, for ``plot_fold_scores(..., reference=...)``.

    Examples
    --------
    >>> reported_means(["baseline"])
    {'baseline': 0.8604}
    """
    if isinstance(names, str):
        raise TypeError(
            "names must be a collection of experiment names, not one string"
        )
    return {name: _reported(name).mean for name in names}


def compare_with_tutorial(results: Sequence[CVResult]):
    """The tutorial's reported figure beside each executed result, one row each.

    Parameters
    ----------
    results
        Results whose names are experiments the tutorial reports (keys of
        :data:`REPORTED`).

    Returns
    -------
    pandas.DataFrame
        Columns "tutorial (reported)" and "this book (executed above)", both
        in the tutorial's "mean% (std%)" format, indexed by experiment.
    """
    import pandas as pd

    results = as_results(results)
    return pd.DataFrame(
        {
            "tutorial (reported)": [
                _reported(r.name).summary() for r in results
            ],
            "this book (executed above)": [r.summary() for r in results],
        },
        index=[r.name for r in results],
    )
