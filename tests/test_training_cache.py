"""The per-process cache of training drivers changes nothing but speed."""

from __future__ import annotations

import numpy as np
import pytest

import helpers  # noqa: F401

# isort: split
import keras

from helpers import training
from helpers.models import build_hidden_dropout, build_mlp


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(45, 60)).astype("float32")
    y = (X[:, 0] + 0.5 * rng.normal(size=45) > 0).astype("float32")
    return X, y


def trained(build, seed, X, y, epochs=4):
    keras.utils.set_random_seed(seed)
    model = build()
    history = training.fit_compiled(
        model, X, y, epochs=epochs, batch_size=16, seed=seed
    )
    return model, history


def test_cached_driver_is_bit_identical_to_training_the_model_itself(
    data, monkeypatch
):
    X, y = data
    training._DRIVERS.clear()
    cached, cached_history = trained(build_hidden_dropout, 11, X, y)
    assert len(training._DRIVERS) == 1
    # Without a structure key, fit_compiled traces a driver on the model itself.
    monkeypatch.setattr(training, "_structure_key", lambda *args: None)
    direct, direct_history = trained(build_hidden_dropout, 11, X, y)
    assert cached_history == direct_history
    for a, b in zip(cached.get_weights(), direct.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(cached.optimizer.variables, direct.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_models_sharing_a_driver_do_not_interfere(data):
    X, y = data
    training._DRIVERS.clear()
    first, _ = trained(build_hidden_dropout, 1, X, y)
    snapshot = [w.copy() for w in first.get_weights()]
    second, _ = trained(build_hidden_dropout, 2, X, y)
    assert (
        len(training._DRIVERS) == 1
    )  # the second fit reused the first's driver
    for a, b in zip(first.get_weights(), snapshot):
        np.testing.assert_array_equal(
            a, b
        )  # training `second` left `first` alone
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(first.get_weights(), second.get_weights())
    )
    again, _ = trained(build_hidden_dropout, 1, X, y)
    for a, b in zip(again.get_weights(), snapshot):
        np.testing.assert_array_equal(a, b)


def test_different_structures_get_different_drivers(data):
    X, y = data
    training._DRIVERS.clear()
    trained(lambda: build_mlp(hidden_dropout=0.2), 0, X, y, epochs=1)
    trained(lambda: build_mlp(hidden_dropout=0.3), 0, X, y, epochs=1)
    trained(lambda: build_mlp(hidden_units=(8, 4)), 0, X, y, epochs=1)
    trained(lambda: build_mlp(learning_rate=0.05), 0, X, y, epochs=1)
    assert len(training._DRIVERS) == 4
    trained(lambda: build_mlp(hidden_dropout=0.2), 5, X, y, epochs=1)
    assert len(training._DRIVERS) == 4


def test_cache_is_bounded(data, monkeypatch):
    X, y = data
    training._DRIVERS.clear()
    monkeypatch.setattr(training, "_MAX_DRIVERS", 2)
    for width in (3, 4, 5):
        trained(
            lambda w=width: build_mlp(hidden_units=(w,)), 0, X, y, epochs=1
        )
    assert len(training._DRIVERS) == 2
