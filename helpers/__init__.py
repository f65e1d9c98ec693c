"""Shared library of the dropout book: data, models, training, cross-validation, plots.

Import ``helpers`` before TensorFlow (or Keras).  Importing it first

* chooses TensorFlow's CPU kernels so that a seed gives the same numbers on
  every x86-64 machine (see ``_choose_tensorflow_kernels``), and
* keeps TensorFlow's C++ start-up log lines out of notebook outputs.
"""

import os
import sys
import warnings

# TensorFlow picks its CPU kernels for matrix products at start-up: oneDNN's
# (which choose their instruction set, and so their rounding, at run time from
# the CPU they find: AVX-512 on one machine, AVX2 on another) or Eigen's
# (compiled into the wheel for one instruction set, the same on every x86-64
# CPU).  Its default depends on the CPU: on the AMD EPYC machines this book was
# checked on it is off, on the machine that produced the first stored outputs
# it was on.  Networks with dropout trained at learning rate 0.1 amplify the
# last-bit differences between the two into different fold outcomes: with the
# same seed, the visible-dropout model of chapter 2 scored 87.05% with
# TF_ENABLE_ONEDNN_OPTS=0 and 84.21% with =1 on one machine.  The book fixes
# the variable to "0" before TensorFlow is imported, here, in every process
# that imports helpers: the notebook's kernel and every worker (loky and Dask
# workers import helpers when they unpickle a task, and also inherit the
# variable).  What it costs in speed is measured by `make bench` (README,
# "Reproducibility").
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
BOOK_ONEDNN_SETTING = "0"


class KernelChoiceWarning(UserWarning):
    """TensorFlow runs other CPU kernels than the book's, so numbers may differ from the book's."""


def _choose_tensorflow_kernels() -> None:
    """Fix TensorFlow's kernel choice before it is imported; warn once if that is too late.

    A reader's explicit ``TF_ENABLE_ONEDNN_OPTS`` is respected (they may want
    oneDNN's speed on a large model) but warned about; so is a TensorFlow that
    was imported before ``helpers`` with oneDNN on.  Tested in
    tests/test_environment.py.
    """
    if "tensorflow" in sys.modules:
        from helpers.environment import onednn_enabled

        if onednn_enabled():
            warnings.warn(
                "TensorFlow was imported before helpers, with its oneDNN kernels on, so "
                "results may differ from the book's printed numbers. To reproduce the book, "
                "restart the kernel and import helpers first (or set "
                f"{ONEDNN_VARIABLE}={BOOK_ONEDNN_SETTING} before importing TensorFlow).",
                KernelChoiceWarning,
                stacklevel=3,
            )
        return
    current = os.environ.get(ONEDNN_VARIABLE)
    if current is None:
        os.environ[ONEDNN_VARIABLE] = BOOK_ONEDNN_SETTING
    elif current.strip() != BOOK_ONEDNN_SETTING:
        warnings.warn(
            f"{ONEDNN_VARIABLE} is set to {current!r} in this environment; the book's numbers "
            f"were produced with {ONEDNN_VARIABLE}={BOOK_ONEDNN_SETTING}, so results may "
            "differ from them. Unset it to reproduce the book.",
            KernelChoiceWarning,
            stacklevel=3,
        )


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


_choose_tensorflow_kernels()
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
    "KernelChoiceWarning",
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
