"""Shared library of the dropout book: data, models, training, cross-validation, plots.

Importing ``helpers`` before TensorFlow keeps TensorFlow's C++ start-up log
lines (oneDNN and CUDA notices) out of notebook outputs.
"""

import os
import sys


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr (file descriptor 2) muted.

    Workaround for TensorFlow 2.21: at import it writes "oneDNN custom
    operations are on" and "Could not find cuda drivers" to file descriptor 2
    *before* it initialises its logging, so ``TF_CPP_MIN_LOG_LEVEL`` cannot
    silence them, and ipykernel copies descriptor 2 into notebook outputs
    (and loky workers inherit it).  Import errors still surface: they are
    Python exceptions, raised after stderr is restored.  Tested in
    tests/test_environment.py.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_import_tensorflow_quietly()

from helpers.compat import KerasClassifier  # noqa: E402
from helpers.cv import CVResult, cross_validate_model, fold_seeds, make_splits  # noqa: E402
from helpers.data import SonarData, SonarDataError, load_sonar  # noqa: E402
from helpers.models import (  # noqa: E402
    build_baseline,
    build_hidden_dropout,
    build_mlp,
    build_visible_dropout,
)
from helpers.plotting import plot_fold_scores, use_book_style  # noqa: E402
from helpers.training import FastKerasClassifier, fit_compiled, make_classifier  # noqa: E402

__all__ = [
    "CVResult",
    "FastKerasClassifier",
    "KerasClassifier",
    "SonarData",
    "SonarDataError",
    "build_baseline",
    "build_hidden_dropout",
    "build_mlp",
    "build_visible_dropout",
    "cross_validate_model",
    "fit_compiled",
    "fold_seeds",
    "load_sonar",
    "make_classifier",
    "make_splits",
    "plot_fold_scores",
    "use_book_style",
]
