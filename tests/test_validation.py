"""Tests for helpers.validation: the argument checks every public function uses.

The contract (module docstring): a check returns the value as a plain Python
number, or raises ``TypeError`` for the wrong kind of value and ``ValueError``
for the right kind outside what is allowed, with a message naming the
argument and the value.  Nothing is coerced.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.validation import check_int, check_rate, check_real, check_seed

# An argument name that cannot appear in a message by accident.
NAME = "my_argument"


def assert_names(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert NAME in message, f"message does not name the argument: {message!r}"
    for fragment in fragments:
        assert fragment in message, (
            f"{fragment!r} missing from message {message!r}"
        )


# --------------------------------------------------------------------------- check_int


@pytest.mark.parametrize(
    "value, kwargs",
    [
        (0, {}),
        (-5, {}),
        (300, {"minimum": 1}),
        (1, {"minimum": 1}),  # bounds are inclusive
        (10, {"minimum": 1, "maximum": 10}),
        (np.int64(7), {"minimum": 0}),
        (np.uint8(3), {"maximum": 3}),
        (2**40, {}),
    ],
)
def test_check_int_accepts_integers_within_bounds(value, kwargs):
    result = check_int(NAME, value, **kwargs)
    assert result == int(value)
    assert type(result) is int  # a plain Python int, also for NumPy integers


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        np.bool_(True),
        300.0,
        3.5,
        np.float64(3.0),
        "3",
        b"3",
        None,
        [3],
        float("nan"),
        float("inf"),
        Fraction(3, 1),
        Decimal(3),
        complex(3, 0),
    ],
    ids=repr,
)
def test_check_int_rejects_non_integers_with_type_error(value):
    with pytest.raises(TypeError) as excinfo:
        check_int(NAME, value, minimum=0)
    assert_names(excinfo, repr(value))


@pytest.mark.parametrize(
    "value, kwargs",
    [
        (0, {"minimum": 1}),
        (-1, {"minimum": 0}),
        (11, {"maximum": 10}),
        (np.int32(100), {"minimum": 0, "maximum": 99}),
    ],
)
def test_check_int_rejects_out_of_range_with_value_error(value, kwargs):
    with pytest.raises(ValueError) as excinfo:
        check_int(NAME, value, **kwargs)
    bound = (
        kwargs.get("minimum")
        if value < kwargs.get("minimum", -math.inf)
        else kwargs["maximum"]
    )
    assert_names(excinfo, str(int(value)), str(bound))


@settings(database=None)  # write no example database into the repository
@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(0, 1000))
def test_check_int_property_bounds(value, width):
    low, high = -width, width
    if low <= value <= high:
        assert check_int(NAME, value, minimum=low, maximum=high) == value
    else:
        with pytest.raises(ValueError, match=NAME):
            check_int(NAME, value, minimum=low, maximum=high)


# --------------------------------------------------------------------------- check_real


@pytest.mark.parametrize(
    "value, kwargs",
    [
        (0.5, {}),
        (1, {"minimum": 0.0}),  # integers are real numbers
        (np.float32(0.25), {"minimum": 0.0, "maximum": 1.0}),
        (np.int64(2), {}),
        (Fraction(1, 4), {}),
        (0.0, {"minimum": 0.0}),  # inclusive minimum by default
        (1.0, {"maximum": 1.0}),  # maximum always inclusive
        (1.0, {"maximum": 1.0, "inclusive": False}),
        (-1e300, {}),
    ],
)
def test_check_real_accepts_finite_reals_within_bounds(value, kwargs):
    result = check_real(NAME, value, **kwargs)
    assert type(result) is float
    assert result == float(value)


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        np.bool_(False),
        "0.5",
        b"0.5",
        None,
        [0.5],
        Decimal("0.5"),
        complex(0.5, 0),
    ],
    ids=repr,
)
def test_check_real_rejects_non_reals_with_type_error(value):
    with pytest.raises(TypeError) as excinfo:
        check_real(NAME, value)
    assert_names(excinfo, repr(value))


@pytest.mark.parametrize(
    "value, shown",
    [
        (float("nan"), "nan"),
        (np.nan, "nan"),
        (float("inf"), "inf"),
        (-np.inf, "-inf"),
        (np.float32("inf"), "inf"),
    ],
    ids=repr,
)
def test_check_real_rejects_non_finite_with_value_error(value, shown):
    with pytest.raises(ValueError) as excinfo:
        check_real(
            NAME, value
        )  # no bounds: non-finite values are refused regardless
    assert_names(excinfo, shown, "finite")


@pytest.mark.parametrize(
    "value, kwargs",
    [
        (-0.5, {"minimum": 0.0}),
        (0.0, {"minimum": 0.0, "inclusive": False}),  # exclusive minimum
        (-1, {"minimum": 0.0, "inclusive": False}),
        (1.5, {"maximum": 1.0}),
        (2, {"minimum": 0.0, "maximum": 1.0}),
    ],
)
def test_check_real_rejects_out_of_range_with_value_error(value, kwargs):
    with pytest.raises(ValueError) as excinfo:
        check_real(NAME, value, **kwargs)
    assert_names(excinfo, str(float(value)))


def test_check_real_exclusive_minimum_message_says_strictly_greater():
    with pytest.raises(ValueError, match=rf"{NAME} must be > 0"):
        check_real(NAME, 0.0, minimum=0.0, inclusive=False)
    with pytest.raises(ValueError, match=rf"{NAME} must be >= 0"):
        check_real(NAME, -0.1, minimum=0.0)


def test_check_real_rejects_huge_integer_with_value_error():
    with pytest.raises(ValueError) as excinfo:
        check_real(NAME, 10**400, maximum=1.0)
    assert_names(excinfo)


# --------------------------------------------------------------------------- check_rate


@pytest.mark.parametrize(
    "value", [0, 0.0, 0.2, 0.5, 0.999999, np.float32(0.3), Fraction(1, 5)]
)
def test_check_rate_accepts_rates_in_unit_interval(value):
    result = check_rate(NAME, value)
    assert type(result) is float
    assert result == float(value)


@pytest.mark.parametrize(
    "value",
    [1.0, 1, 1.5, -0.1, -1, float("nan"), float("inf"), -np.inf],
    ids=repr,
)
def test_check_rate_rejects_values_outside_zero_one_with_value_error(value):
    with pytest.raises(ValueError) as excinfo:
        check_rate(NAME, value)
    assert_names(excinfo, str(float(value)))


@pytest.mark.parametrize(
    "value", [True, False, "0.2", None, (0.2,)], ids=repr
)
def test_check_rate_rejects_non_numbers_with_type_error(value):
    with pytest.raises(TypeError) as excinfo:
        check_rate(NAME, value)
    assert_names(excinfo, repr(value))


def test_check_rate_of_one_message_states_half_open_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        check_rate(NAME, 1.0)


@settings(database=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_rate_property(value):
    if math.isfinite(value) and 0.0 <= value < 1.0:
        assert check_rate(NAME, value) == value
    else:
        with pytest.raises(ValueError, match=NAME):
            check_rate(NAME, value)


# --------------------------------------------------------------------------- check_seed


@pytest.mark.parametrize(
    "value", [0, 7, 2**32 - 1, np.uint32(2**32 - 1), np.int64(42)]
)
def test_check_seed_accepts_32_bit_unsigned_integers(value):
    result = check_seed(NAME, value)
    assert type(result) is int
    assert result == int(value)


@pytest.mark.parametrize("value", [-1, 2**32, 2**64, np.int64(-3)], ids=repr)
def test_check_seed_rejects_out_of_range_with_value_error(value):
    with pytest.raises(ValueError) as excinfo:
        check_seed(NAME, value)
    assert_names(excinfo, str(int(value)))


@pytest.mark.parametrize(
    "value", [7.0, True, "7", None, float("nan")], ids=repr
)
def test_check_seed_rejects_non_integers_with_type_error(value):
    with pytest.raises(TypeError) as excinfo:
        check_seed(NAME, value)
    assert_names(excinfo, repr(value))


def test_check_xy_names_the_shape_and_row_mismatch():
    from helpers.validation import check_xy

    X, y = check_xy([[1.0, 2.0]], [0])
    assert X.shape == (1, 2) and y.shape == (1,)
    with pytest.raises(
        ValueError, match="X must be a 2-D array; got shape \\(2,\\)"
    ):
        check_xy([1.0, 2.0], [0, 1])
    with pytest.raises(ValueError, match="same number of rows; got 1 and 2"):
        check_xy([[1.0]], [0, 1])
