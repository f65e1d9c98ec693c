"""Shared library of the dropout book: data, models, training, cross-validation, plots.

Import ``helpers`` before TensorFlow (or Keras).  Importing it first

* chooses TensorFlow's CPU kernels so that a seed gives the same numbers on
  every x86-64 machine (see ``_choose_tensorflow_kernels``), and
* keeps TensorFlow's C++ start-up log lines out of notebook outputs.
"""

import gc
import os
import sys
import warnings

# TensorFlow's CPU arithmetic is chosen at start-up in three places, and the
# defaults of all three depend on the CPU:
#
# 1. TF_ENABLE_ONEDNN_OPTS: whether whole operations run as oneDNN primitives
#    or as Eigen kernels.  TensorFlow's default is on for some CPUs and off for
#    others (off on the AMD EPYC machines this book was checked on, on for the
#    machine that produced the first stored outputs).
# 2. TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL: even with (1) off, the matrix
#    products inside Eigen's kernels (MatMul, BatchMatMul, convolutions) are
#    by default handed to oneDNN's sgemm, which picks its code at run time
#    from the CPU it finds (instruction set, and beyond that the vendor and
#    cache sizes).  TensorFlow's source says as much where it reads this
#    variable: with it "0", Eigen multiplies with its own kernel, compiled
#    into TensorFlow for every x86-64 CPU alike.
# 3. ONEDNN_MAX_CPU_ISA: caps the instruction set of whatever oneDNN code is
#    still run (the input gradient of a convolution, Conv2DBackpropInput, is
#    one: tests/test_environment.py shows it).
#
# Networks with dropout trained at learning rate 0.1 amplify last-bit
# differences into different fold outcomes.  On one AMD EPYC (AVX2) machine,
# with (3) alone, chapter 2's visible-dropout model scored 87.05% with (1)
# off, 84.21% with (1) on and 88.52% with sgemm held to SSE4.1 (the baseline:
# 83.71% every way).  (3) alone was not enough: an Intel Xeon with AVX-512,
# under the same AVX2 cap, trained chapter 1's network on raw inputs to
# another loss in the eighth digit (2026-11-29, session 10), where sgemm held
# to AVX reproduced the AMD number.  With (2) off, no cap from SSE4.1 to
# AVX-512 changes a matrix product or a training run by a bit (tested), and
# the products of the book's multi-layer perceptrons (at most 300 terms deep)
# are too small for Eigen's cache-size-dependent blocking to split.  So the
# book fixes all three before TensorFlow is imported, here, in every process
# that imports helpers: the notebook's kernel and every worker (loky and Dask
# workers import helpers when they unpickle a task, and inherit the variables
# besides).  What it costs in speed is measured by `make bench` (README,
# "Reproducibility"); for matrices this small Eigen's kernel costs about
# what sgemm does.  Tested in tests/test_environment.py.
#
# A fourth source of difference is in TensorFlow's kernels themselves, whatever
# these settings: a few estimate reciprocals with instructions whose last bits
# the CPU's maker chooses (an AMD EPYC Zen 4 trained chapter 1's network to
# another loss than the Intel Xeon, session 19).  helpers.compat replaces those
# estimates with divisions in every process that imports helpers
# (_divide_where_tensorflow_estimates_reciprocals).
BOOK_KERNEL_SETTINGS = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0",
}


class KernelChoiceWarning(UserWarning):
    """TensorFlow runs other CPU kernels than the book's, so numbers may differ from the book's."""


def _book_settings_text() -> str:
    return " and ".join(
        f"{name}={value}" for name, value in BOOK_KERNEL_SETTINGS.items()
    )


def _choose_tensorflow_kernels() -> None:
    """Fix TensorFlow's kernel choice before it is imported; warn once if that is too late.

    A reader's own setting of either variable is respected (they may want
    oneDNN's full speed on a large model) but warned about, and so is a
    TensorFlow imported before ``helpers`` without the book's settings.
    """
    if "tensorflow" in sys.modules:
        # Too late to choose: harmless only if the variables already held the
        # book's values when TensorFlow read them.
        if any(
            os.environ.get(k, "").strip().upper() != v
            for k, v in BOOK_KERNEL_SETTINGS.items()
        ):
            warnings.warn(
                "TensorFlow was imported before helpers, so it may run other CPU kernels "
                "than the book's and results may differ from the book's printed numbers. "
                "To reproduce the book, restart the kernel and import helpers first (or set "
                f"{_book_settings_text()} before importing TensorFlow).",
                KernelChoiceWarning,
                stacklevel=3,
            )
        return
    for name, value in BOOK_KERNEL_SETTINGS.items():
        current = os.environ.get(name)
        if current is None:
            os.environ[name] = value
        elif current.strip().upper() != value:
            warnings.warn(
                f"{name} is set to {current!r} in this environment; the book's numbers were "
                f"produced with {name}={value}, so results may differ from them. Unset it "
                "to reproduce the book.",
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
from helpers.cv import (  # noqa: E402
    CVResult,
    compute_on,
    cross_validate_many,
    cross_validate_model,
    default_n_jobs,
    fold_seeds,
    make_splits,
)
from helpers.data import SonarData, SonarDataError, load_sonar  # noqa: E402
from helpers.models import (  # noqa: E402
    build_baseline,
    build_hidden_dropout,
    build_mlp,
    build_visible_dropout,
)
from helpers.plotting import plot_fold_scores, use_book_style  # noqa: E402
from helpers.search import make_search, nested_cross_validate, run_search  # noqa: E402
from helpers.training import (  # noqa: E402
    FastKerasClassifier,
    fit_compiled,
    make_classifier,
)

# The imports above leave about half a million objects (TensorFlow's and
# Keras' modules, mostly) that live as long as the process.  Python's
# garbage collector traverses all of them in every full collection, which
# building and discarding networks fold after fold sets off every few dozen
# fits (0.3 s each here).  Freezing them moves them out of its reach:
# 7.5% off 320 Sonar fits in one process (34.1-34.4 against 36.7-37.0 s,
# session 17).  Objects made later are collected as usual; tested in
# tests/test_environment.py.
gc.freeze()

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
    "compute_on",
    "cross_validate_many",
    "cross_validate_model",
    "default_n_jobs",
    "fit_compiled",
    "fold_seeds",
    "load_sonar",
    "make_classifier",
    "make_search",
    "make_splits",
    "nested_cross_validate",
    "plot_fold_scores",
    "run_search",
    "use_book_style",
]
