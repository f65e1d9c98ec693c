"""Tests for helpers.dropout: the two NumPy schemes, the Keras layer and MC dropout.

Statistical checks draw enough units that a correct implementation lands
well inside the tolerance (at least five standard errors away from failing),
while a wrong scale, a wrong keep probability or a mask that ignores the
seed fails them.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import helpers  # noqa: F401  (quiet TensorFlow import)
from helpers.dropout import (
    InvertedDropout,
    inverted_dropout,
    mc_predict,
    paper_dropout,
)

N_UNITS = 200_000


def to_numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


pytestmark = pytest.mark.filterwarnings(
    # Keras 3.15 converts TensorFlow tensors with np.array(x), which NumPy 2
    # flags; it is Keras' own call, not something these tests exercise.
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def positive_inputs(n: int = N_UNITS, seed: int = 0) -> np.ndarray:
    """Inputs that are never zero, so a zero in the output can only be a dropped unit."""
    return (
        np.random.default_rng(seed)
        .uniform(0.5, 1.5, size=n)
        .astype("float32")
    )


# --- inverted_dropout -------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.5, 0.8])
def test_fraction_zeroed_is_the_rate(rate):
    out = inverted_dropout(positive_inputs(), rate, training=True, rng=1)
    zeroed = np.mean(out == 0)
    standard_error = math.sqrt(rate * (1 - rate) / N_UNITS)
    assert abs(zeroed - rate) < 5 * standard_error


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.9])
def test_kept_units_are_divided_by_the_keep_probability_exactly(rate):
    x = np.random.default_rng(2).normal(size=(300, 40))
    out, mask = inverted_dropout(
        x, rate, training=True, rng=3, return_mask=True
    )
    assert mask.dtype == bool and mask.shape == x.shape
    assert np.array_equal(out[mask], x[mask] / (1 - rate))
    assert np.all(out[~mask] == 0)
    assert 0 < mask.sum() < mask.size


def test_float32_input_stays_float32():
    out = inverted_dropout(positive_inputs(100), 0.3, training=True, rng=0)
    assert out.dtype == np.float32


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_mean_is_preserved_in_expectation(rate):
    x = np.array([-2.0, 0.5, 1.0, 3.0])
    n_draws = 50_000
    out = inverted_dropout(
        np.tile(x, (n_draws, 1)), rate, training=True, rng=4
    )
    # Var(out_i) = x_i^2 * rate / (1 - rate)
    standard_error = np.abs(x) * math.sqrt(rate / (1 - rate) / n_draws)
    assert np.all(np.abs(out.mean(axis=0) - x) < 5 * standard_error)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.7])
def test_inference_is_the_identity(rate):
    x = np.random.default_rng(5).normal(size=(10, 7)).astype("float32")
    before = x.copy()
    out = inverted_dropout(x, rate, training=False, rng=0)
    assert out is x
    assert np.array_equal(out, before)


def test_rate_zero_is_the_identity_when_training():
    x = np.random.default_rng(6).normal(size=(50, 3))
    out, mask = inverted_dropout(
        x, 0.0, training=True, rng=0, return_mask=True
    )
    assert np.array_equal(out, x)
    assert mask.all()


def test_integer_input_gives_a_floating_output_when_training():
    x = np.arange(1, 1001)
    out, mask = inverted_dropout(
        x, 0.5, training=True, rng=0, return_mask=True
    )
    assert np.issubdtype(out.dtype, np.floating)
    assert np.array_equal(out[mask], x[mask] * 2.0)


# --- argument checks --------------------------------------------------------------------

FUNCTIONS = [inverted_dropout, paper_dropout]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, float("nan"), float("inf")])
def test_rates_outside_zero_one_are_refused(function, rate):
    with pytest.raises(ValueError, match="rate"):
        function(np.ones(3), rate, training=True, rng=0)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("rate", ["0.5", None, True, [0.5]])
def test_rates_of_the_wrong_type_are_refused(function, rate):
    with pytest.raises(TypeError, match="rate"):
        function(np.ones(3), rate, training=True, rng=0)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "rng", ["7", 1.5, True, None, np.random.RandomState(0)]
)
def test_rng_of_the_wrong_type_is_refused(function, rng):
    with pytest.raises(TypeError, match="rng"):
        function(np.ones(3), 0.5, training=True, rng=rng)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_negative_seed_is_refused(function):
    with pytest.raises(ValueError, match="rng"):
        function(np.ones(3), 0.5, training=True, rng=-1)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("training", ["False", 0, 1, None])
def test_training_must_be_a_boolean(function, training):
    with pytest.raises(TypeError, match="training"):
        function(np.ones(3), 0.5, training=training, rng=0)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    "x", [np.array(["a", "b"]), np.array([True, False]), [1 + 2j]]
)
def test_non_numeric_input_is_refused(function, x):
    with pytest.raises(TypeError, match="^x must"):
        function(x, 0.5, training=True, rng=0)


def test_numpy_bool_is_a_valid_training_flag():
    x = np.ones(5)
    assert inverted_dropout(x, 0.5, training=np.bool_(False), rng=0) is x


# --- seeding ----------------------------------------------------------------------------


def test_same_seed_same_mask_different_seed_different_mask():
    x = positive_inputs(1000)
    _, a = inverted_dropout(x, 0.5, training=True, rng=11, return_mask=True)
    _, b = inverted_dropout(x, 0.5, training=True, rng=11, return_mask=True)
    _, c = inverted_dropout(x, 0.5, training=True, rng=12, return_mask=True)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_generator_gives_fresh_masks_on_each_call():
    rng = np.random.default_rng(0)
    x = positive_inputs(1000)
    _, a = inverted_dropout(x, 0.5, training=True, rng=rng, return_mask=True)
    _, b = inverted_dropout(x, 0.5, training=True, rng=rng, return_mask=True)
    assert not np.array_equal(a, b)


def test_integer_seed_and_generator_with_that_seed_agree():
    x = positive_inputs(1000)
    a = inverted_dropout(x, 0.3, training=True, rng=5)
    b = inverted_dropout(x, 0.3, training=True, rng=np.random.default_rng(5))
    assert np.array_equal(a, b)


# --- paper_dropout ----------------------------------------------------------------------


def test_paper_scheme_masks_without_scaling_in_training():
    x = np.random.default_rng(7).normal(size=2000)
    out, mask = paper_dropout(x, 0.4, training=True, rng=8, return_mask=True)
    assert np.array_equal(out, np.where(mask, x, 0.0))


def test_paper_scheme_scales_by_the_retention_probability_at_inference():
    x = np.random.default_rng(9).normal(size=50)
    assert np.allclose(
        paper_dropout(x, 0.25, training=False, rng=0),
        0.75 * x,
        rtol=0,
        atol=1e-15,
    )


def test_both_schemes_draw_the_same_mask_from_the_same_seed():
    x = positive_inputs(5000)
    _, inverted_mask = inverted_dropout(
        x, 0.3, training=True, rng=21, return_mask=True
    )
    _, paper_mask = paper_dropout(
        x, 0.3, training=True, rng=21, return_mask=True
    )
    assert np.array_equal(inverted_mask, paper_mask)


def test_paper_scheme_training_mean_matches_its_inference_output():
    x = np.array([0.5, 1.0, 4.0])
    rate, n_draws = 0.5, 50_000
    out = paper_dropout(np.tile(x, (n_draws, 1)), rate, training=True, rng=10)
    standard_error = x * math.sqrt(rate * (1 - rate) / n_draws)
    expected = paper_dropout(x, rate, training=False, rng=0)
    assert np.all(np.abs(out.mean(axis=0) - expected) < 5 * standard_error)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=3, max_side=6),
        elements=st.floats(-1e6, 1e6, allow_nan=False),
    ),
    rate=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_schemes_differ_exactly_by_the_keep_probability(x, rate, seed):
    inverted, mask = inverted_dropout(
        x, rate, training=True, rng=seed, return_mask=True
    )
    paper, paper_mask = paper_dropout(
        x, rate, training=True, rng=seed, return_mask=True
    )
    assert np.array_equal(mask, paper_mask)
    assert np.array_equal(inverted[mask], x[mask] / (1 - rate))
    assert np.array_equal(paper[mask], x[mask])
    assert np.all(inverted[~mask] == 0) and np.all(paper[~mask] == 0)


# --- InvertedDropout (Keras layer) ------------------------------------------------------


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_keras_layer_matches_keras_dropout_statistically(rate):
    x = positive_inputs().reshape(1000, 200)
    ours = to_numpy(InvertedDropout(rate, seed=1)(x, training=True))
    theirs = to_numpy(keras.layers.Dropout(rate, seed=1)(x, training=True))
    standard_error = math.sqrt(rate * (1 - rate) / x.size)
    for out in (ours, theirs):
        assert abs(np.mean(out == 0) - rate) < 5 * standard_error
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - rate), rtol=1e-6)
        # The mean over 200 000 units: relative standard error about 0.15% at rate 0.5.
        assert abs(out.mean() / x.mean() - 1) < 0.01
    assert abs(np.mean(ours == 0) - np.mean(theirs == 0)) < 7 * standard_error


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="TensorFlow's dropout kernel",
)
@pytest.mark.parametrize("rate", [0.2, 0.3, 0.5])
def test_keras_layer_reproduces_keras_dropout_exactly_on_tensorflow(rate):
    x = positive_inputs(20_000).reshape(100, 200)
    ours = InvertedDropout(rate, seed=7)
    theirs = keras.layers.Dropout(rate, seed=7)
    for _ in range(2):  # the first call and the next, as both streams move on
        assert np.array_equal(
            to_numpy(ours(x, training=True)),
            to_numpy(theirs(x, training=True)),
        )


def test_keras_dropout_with_rate_one_outputs_zeros_in_training_only():
    # What the chapter and the docstrings state about Keras 3.15; fails if Keras changes it.
    x = positive_inputs(100).reshape(10, 10)
    layer = keras.layers.Dropout(rate=1.0)
    assert np.array_equal(to_numpy(layer(x, training=True)), np.zeros_like(x))
    assert np.array_equal(to_numpy(layer(x, training=False)), x)


def test_keras_layer_is_the_identity_at_inference():
    x = np.random.default_rng(3).normal(size=(64, 30)).astype("float32")
    layer = InvertedDropout(0.5, seed=0)
    assert np.array_equal(to_numpy(layer(x)), x)
    assert np.array_equal(to_numpy(layer(x, training=False)), x)
    assert np.array_equal(to_numpy(InvertedDropout(0.0)(x, training=True)), x)


def test_keras_layer_seed_fixes_its_masks():
    x = positive_inputs(4000).reshape(40, 100)
    a, b, c = (
        InvertedDropout(0.5, seed=3),
        InvertedDropout(0.5, seed=3),
        InvertedDropout(0.5, seed=4),
    )
    first_a = to_numpy(a(x, training=True))
    assert np.array_equal(first_a, to_numpy(b(x, training=True)))
    assert not np.array_equal(first_a, to_numpy(c(x, training=True)))
    # The layer's stream moves on: the next call drops other units.
    assert not np.array_equal(first_a, to_numpy(a(x, training=True)))


@pytest.mark.parametrize(
    "rate, error", [(1.0, ValueError), (-0.5, ValueError), ("0.2", TypeError)]
)
def test_keras_layer_refuses_invalid_rates(rate, error):
    with pytest.raises(error, match="rate"):
        InvertedDropout(rate)


def test_keras_layer_config_round_trip():
    layer = InvertedDropout(0.3, seed=9, name="drop")
    clone = InvertedDropout.from_config(layer.get_config())
    assert (clone.rate, clone.seed, clone.name) == (0.3, 9, "drop")


def test_model_with_the_keras_layer_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(8, activation="relu"),
            InvertedDropout(0.4, seed=5),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    x = np.random.default_rng(0).normal(size=(20, 6)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    layer = restored.layers[1]
    assert type(layer) is InvertedDropout
    assert (layer.rate, layer.seed) == (0.4, 5)
    assert layer.weights == []
    assert np.array_equal(to_numpy(model(x)), to_numpy(restored(x)))
    # Still dropout after loading: in training mode it zeroes units.
    assert np.any(
        to_numpy(layer(np.ones((20, 8), "float32"), training=True)) == 0
    )


# --- mc_predict -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_dropout_model():
    """Dropout then a fixed linear unit: the MC mean must converge to X @ w + b."""
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dropout(0.5, seed=1),
            keras.layers.Dense(1),
        ]
    )
    model.layers[1].set_weights(
        [np.array([[1.0], [-2.0], [0.5], [3.0]]), np.array([0.25])]
    )
    return model


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).normal(size=(6, 4)).astype("float32")


def test_mc_predict_shape_and_spread(linear_dropout_model, rows):
    draws = mc_predict(linear_dropout_model, rows, n_samples=30, seed=0)
    assert draws.shape == (30, 6)
    assert np.all(draws.std(axis=0) > 0)


def test_mc_predict_mean_converges_to_the_inference_output(
    linear_dropout_model, rows
):
    n = 1000  # passes: the band below is five standard errors of their mean
    draws = mc_predict(linear_dropout_model, rows, n_samples=n, seed=1)
    weights = np.array([1.0, -2.0, 0.5, 3.0])
    expected = rows @ weights + 0.25
    # Var of one pass: sum_i (x_i w_i)^2 * rate / (1 - rate), rate 0.5.
    standard_error = np.sqrt(((rows * weights) ** 2).sum(axis=1) / n)
    assert np.all(np.abs(draws.mean(axis=0) - expected) < 5 * standard_error)
    assert np.allclose(
        to_numpy(linear_dropout_model(rows))[:, 0], expected, atol=1e-5
    )


def test_mc_predict_is_deterministic_and_leaves_no_trace(
    linear_dropout_model, rows
):
    a = mc_predict(linear_dropout_model, rows, n_samples=10, seed=3)
    linear_dropout_model(rows, training=True)  # moves the layer's stream on
    state_before = [
        to_numpy(v).copy() for v in linear_dropout_model.variables
    ]
    b = mc_predict(linear_dropout_model, rows, n_samples=10, seed=3)
    state_after = [to_numpy(v) for v in linear_dropout_model.variables]
    c = mc_predict(linear_dropout_model, rows, n_samples=10, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert all(
        np.array_equal(x, y) for x, y in zip(state_before, state_after)
    )
    # Each pass draws its own masks.
    assert not np.array_equal(a[0], a[1])


def test_mc_predict_keeps_an_output_axis_for_several_outputs(rows):
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            InvertedDropout(0.5, seed=0),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    draws = mc_predict(model, rows, n_samples=5, seed=0)
    assert draws.shape == (5, 6, 3)
    assert np.allclose(draws.sum(axis=-1), 1, atol=1e-5)


def test_mc_predict_refuses_a_model_without_randomness(rows):
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dropout(0.0),
            keras.layers.Dense(1),
        ]
    )
    with pytest.raises(ValueError, match="random"):
        mc_predict(model, rows, n_samples=5, seed=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"n_samples": 2.0}, TypeError, "n_samples"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**32}, ValueError, "seed"),
        ({"seed": None}, TypeError, "seed"),
    ],
)
def test_mc_predict_validates_its_arguments(
    linear_dropout_model, rows, kwargs, error, match
):
    arguments = {"n_samples": 3, "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        mc_predict(linear_dropout_model, rows, **arguments)


@pytest.mark.parametrize(
    "X", [np.ones(4), np.ones((0, 4)), np.ones((2, 2, 4))]
)
def test_mc_predict_needs_a_2d_input(linear_dropout_model, X):
    with pytest.raises(ValueError, match="X"):
        mc_predict(linear_dropout_model, X, n_samples=3, seed=0)


def test_mc_predict_needs_a_keras_model(rows):
    with pytest.raises(TypeError, match="model"):
        mc_predict(lambda x, training: x, rows, n_samples=3, seed=0)
