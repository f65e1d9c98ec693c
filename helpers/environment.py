"""A record of what ran a notebook, for readers comparing their numbers with the book's."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

__all__ = ["environment_record", "onednn_enabled", "tensorflow_kernels"]

_PACKAGES = ("tensorflow", "keras", "scikit-learn", "scikeras", "numpy")


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs its oneDNN CPU kernels.

    TensorFlow decides once, when it is imported (from ``TF_ENABLE_ONEDNN_OPTS``
    or, when that is unset, from the CPU); this asks the library what it
    decided rather than reading the variable.
    """
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def tensorflow_kernels() -> str:
    """The CPU kernels TensorFlow runs, and the setting that chose them, as one short phrase.

    Examples
    --------
    >>> tensorflow_kernels()  # doctest: +SKIP
    'eigen kernels, onednn off (TF_ENABLE_ONEDNN_OPTS=0)'
    """
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    chosen = "onednn on" if onednn_enabled() else "eigen kernels, onednn off"
    return f"{chosen} (TF_ENABLE_ONEDNN_OPTS={'unset' if setting is None else setting})"


def environment_record(seed: int | None = None) -> str:
    """One line: Python, the numerical packages, the Keras backend, the kernels, the CPU, the seed.

    Examples
    --------
    >>> print(environment_record(seed=7))  # doctest: +SKIP
    python 3.11.7 | tensorflow 2.21.0 | keras 3.15.1 | ... | x86_64 | seed 7
    """
    import keras

    parts = [f"python {platform.python_version()}"]
    for name in _PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    parts.append(f"keras backend {keras.backend.backend()}")
    if keras.backend.backend() == "tensorflow":
        parts.append(tensorflow_kernels())
    parts.append(f"{platform.system().lower()} {platform.machine()}")
    parts.append(f"seed {seed}")
    return " | ".join(parts)
