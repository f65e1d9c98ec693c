"""Argument checks shared by the public functions of ``helpers``.

Each check returns the value as a plain Python number or raises ``TypeError``
(wrong kind of value) or ``ValueError`` (right kind, outside what is allowed)
with a message naming the argument, the value and what is allowed.  Nothing is
coerced: ``epochs=300.0`` is an error, not 300.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_int", "check_real", "check_rate", "check_seed"]


def check_int(
    name: str,
    value,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Return ``value`` as an ``int`` if it is an integer within the bounds (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer; got {value!r} ({type(value).__name__})"
        )
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite ``float`` within the bounds.

    ``inclusive`` applies to ``minimum`` only; ``maximum`` is always inclusive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number; got {value!r} ({type(value).__name__})"
        )
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be finite; got {value!r}, too large for a float"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if minimum is not None:
        if inclusive and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}; got {value}")
        if not inclusive and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {value}")
    return value


def check_rate(name: str, value) -> float:
    """A dropout rate: a real number in [0, 1).

    A rate of 1 would drop every unit, and inverted dropout would then divide
    by zero.  (Keras 3.15's ``Dropout`` accepts 1.0 and outputs zeros in
    training; the book's builders refuse it, since such a layer trains nothing.)
    """
    value = check_real(name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value}")
    return value


def check_seed(name: str, value) -> int:
    """A seed: a non-negative integer below 2**32 (what NumPy and Keras accept)."""
    return check_int(name, value, minimum=0, maximum=2**32 - 1)


def check_xy(X, y):
    """``X`` as a 2-D array and ``y`` as an array with as many rows, or a ValueError naming them."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array; got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same number of rows; got {len(X)} and {len(y)}"
        )
    return X, y
