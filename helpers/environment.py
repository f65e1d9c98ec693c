"""A record of what ran a notebook, for readers comparing their numbers with the book's."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

__all__ = ["environment_record"]

_PACKAGES = ("tensorflow", "keras", "scikit-learn", "scikeras", "numpy")


def environment_record(seed: int | None = None) -> str:
    """One line per item: Python, the numerical packages, the Keras backend and the seed.

    Examples
    --------
    >>> print(environment_record(seed=7))  # doctest: +SKIP
    python 3.11.7 | tensorflow 2.21.0 | keras 3.15.1 (tensorflow backend) | ...
    """
    import keras

    parts = [f"python {platform.python_version()}"]
    for name in _PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    parts.append(f"keras backend {keras.backend.backend()}")
    parts.append(f"seed {seed}")
    return " | ".join(parts)
