"""Tests for helpers.training: the fast training path and its SciKeras wrapper.

The central claim of the module is that ``fit_compiled`` trains a compiled
model exactly as Keras would over the same batches.  The equivalence tests
check that claim against Keras itself: two models with identical initial
weights, one trained by ``fit_compiled(seed=s)``, the other by Keras'
``train_on_batch`` (and ``fit`` with ``shuffle=False``) over the batches that
``epoch_orders(n, epochs, s)`` implies, must end with the same weights and
report the same per-epoch loss and accuracy.
"""

from __future__ import annotations

import logging
import random
import re

import helpers  # noqa: F401  (first: it fixes TensorFlow's kernels before keras imports it)

# isort: split
import keras
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from helpers.cv import cross_validate_model
from helpers.data import load_digits_data
from helpers.models import (
    build_baseline,
    build_convnet,
    build_hidden_dropout,
    build_mlp,
)
from helpers.training import (
    FastKerasClassifier,
    TrainOnFraction,
    epoch_orders,
    fit_compiled,
    learning_curves,
    make_classifier,
    seed_keras,
)

N, EPOCHS, BATCH = (
    50,
    3,
    16,
)  # 3 full batches of 16 and a partial batch of 2 per epoch


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 60)).astype("float32")
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype("float32")
    return X, y


@pytest.fixture(scope="module")
def sonar_scaled():
    data = helpers.load_sonar()
    X = StandardScaler().fit_transform(data.X).astype("float32")
    return X, data.y.astype("float32")


def twin_models(builder, keras_seed=5, **kwargs):
    """Two models built from the same Keras seed: identical weights and dropout seed state."""
    keras.utils.set_random_seed(keras_seed)
    a = builder(**kwargs)
    keras.utils.set_random_seed(keras_seed)
    b = builder(**kwargs)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    return a, b


def batches(order, batch_size):
    """Full batches of ``batch_size`` then the partial last batch, as fit() makes them."""
    return [
        order[start : start + batch_size]
        for start in range(0, len(order), batch_size)
    ]


def train_with_train_on_batch(model, X, y, orders, batch_size):
    """Keras' own step-by-step training over the given epoch orders.

    Returns the per-epoch means Keras' fit() would report: the loss tracker and
    the accuracy metric are means over samples, so each batch counts with its
    size.  (In Keras 3, train_on_batch resets the metrics before every call and
    returns that batch's values alone; the reset at each epoch start is kept
    so the reference does not depend on that detail.)
    """
    history = {"loss": [], "accuracy": []}
    for order in orders:
        model.reset_metrics()
        sums = {"loss": 0.0, "accuracy": 0.0}
        for index in batches(order, batch_size):
            logs = model.train_on_batch(X[index], y[index], return_dict=True)
            for key in sums:
                sums[key] += float(logs[key]) * len(index)
        for key in sums:
            history[key].append(sums[key] / len(order))
    return history


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def max_weight_difference(a, b):
    return max(
        float(np.max(np.abs(wa - wb)))
        for wa, wb in zip(a.get_weights(), b.get_weights())
    )


# --------------------------------------------------------------------------- epoch_orders


def test_epoch_orders_shape_and_permutations():
    orders = epoch_orders(50, 7, seed=3)
    assert orders.shape == (7, 50)
    assert orders.dtype == np.int32
    for row in orders:
        np.testing.assert_array_equal(np.sort(row), np.arange(50))
    # Every epoch reshuffles: no two rows alike, and none left in the original order.
    assert len({tuple(row) for row in orders}) == 7
    assert not any(np.array_equal(row, np.arange(50)) for row in orders)


def test_epoch_orders_seed_determinism():
    np.testing.assert_array_equal(
        epoch_orders(30, 4, 11), epoch_orders(30, 4, 11)
    )
    assert not np.array_equal(
        epoch_orders(30, 4, 11), epoch_orders(30, 4, 12)
    )
    # Documented source: NumPy's default generator, one permutation per epoch.
    rng = np.random.default_rng(11)
    expected = np.stack([rng.permutation(30) for _ in range(4)])
    np.testing.assert_array_equal(epoch_orders(30, 4, 11), expected)


def test_epoch_orders_without_seed_still_permutes_and_varies():
    a, b = epoch_orders(40, 2, None), epoch_orders(40, 2, None)
    for row in np.concatenate([a, b]):
        np.testing.assert_array_equal(np.sort(row), np.arange(40))
    assert not np.array_equal(a, b)


def test_epoch_orders_single_sample():
    np.testing.assert_array_equal(epoch_orders(1, 3, 0), np.zeros((3, 1)))


@pytest.mark.parametrize(
    "args, error, argument",
    [
        ((0, 3, 0), ValueError, "n_samples"),
        ((10, 0, 0), ValueError, "epochs"),
        ((10, 3, -1), ValueError, "seed"),
        ((10, 3, 2**32), ValueError, "seed"),
        ((10.0, 3, 0), TypeError, "n_samples"),
        ((10, 3.0, 0), TypeError, "epochs"),
        ((10, 3, 1.5), TypeError, "seed"),
        ((10, 3, True), TypeError, "seed"),
    ],
)
def test_epoch_orders_validation(args, error, argument):
    with pytest.raises(error, match=argument):
        epoch_orders(*args)


# --------------------------------------------------------------------------- fit_compiled


def test_fit_compiled_history_has_one_value_per_epoch(toy):
    X, y = toy
    keras.utils.set_random_seed(0)
    history = fit_compiled(
        build_baseline(), X, y, epochs=4, batch_size=BATCH, seed=0
    )
    assert set(history) == {"loss", "accuracy"}
    for values in history.values():
        assert len(values) == 4
        assert all(isinstance(v, float) and np.isfinite(v) for v in values)
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"])


def test_fit_compiled_changes_the_weights(toy):
    X, y = toy
    keras.utils.set_random_seed(0)
    model = build_baseline()
    before = [w.copy() for w in model.get_weights()]
    fit_compiled(model, X, y, epochs=1, batch_size=BATCH, seed=0)
    assert all(
        not np.array_equal(b, a) for b, a in zip(before, model.get_weights())
    )


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (build_baseline, {}),
        # lr 0.1 and a limit of 0.5, below the ~1.0 norm of Glorot columns, so the
        # constraint binds from the first step (checked below).
        (build_mlp, {"max_norm": 0.5, "learning_rate": 0.1, "momentum": 0.9}),
    ],
    ids=["baseline", "max-norm"],
)
def test_fit_compiled_equals_keras_train_on_batch(toy, builder, kwargs):
    X, y = toy
    seed = 11
    fast, reference = twin_models(builder, **kwargs)
    initial = [w.copy() for w in fast.get_weights()]
    history = fit_compiled(
        fast, X, y, epochs=EPOCHS, batch_size=BATCH, seed=seed
    )
    orders = epoch_orders(N, EPOCHS, seed)
    assert [len(b) for b in batches(orders[0], BATCH)] == [16, 16, 16, 2]
    expected = train_with_train_on_batch(reference, X, y, orders, BATCH)

    assert_same_weights(fast, reference)
    # Training did something (so agreeing is not trivial).
    assert (
        max(
            float(np.max(np.abs(w - w0)))
            for w, w0 in zip(fast.get_weights(), initial)
        )
        > 1e-3
    )
    np.testing.assert_allclose(
        history["loss"], expected["loss"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        history["accuracy"], expected["accuracy"], rtol=1e-5, atol=1e-6
    )
    # The optimizer took every step, partial batches included.
    assert int(fast.optimizer.iterations.numpy()) == EPOCHS * 4
    if "max_norm" in kwargs:
        for layer in fast.layers[:-1]:
            norms = np.linalg.norm(layer.kernel.numpy(), axis=0)
            assert norms.max() <= 0.5 + 1e-5
            assert norms.max() >= 0.5 - 1e-3, (
                "the constraint should bind in this test"
            )


def test_fit_compiled_history_equals_keras_fit_epoch_logs(toy):
    """Keras' own epoch figures: fit() one epoch at a time, on the rows in epoch_orders' order."""
    X, y = toy
    seed = 4
    fast, reference = twin_models(build_mlp, max_norm=3.0, learning_rate=0.05)
    history = fit_compiled(
        fast, X, y, epochs=EPOCHS, batch_size=BATCH, seed=seed
    )
    expected = {"loss": [], "accuracy": []}
    for order in epoch_orders(N, EPOCHS, seed):
        logs = reference.fit(
            X[order],
            y[order],
            epochs=1,
            batch_size=BATCH,
            shuffle=False,
            verbose=0,
        )
        for key in expected:
            expected[key].extend(logs.history[key])
    assert_same_weights(fast, reference)
    np.testing.assert_allclose(
        history["loss"], expected["loss"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        history["accuracy"], expected["accuracy"], rtol=1e-5, atol=1e-6
    )


def test_fit_compiled_with_dropout_equals_train_on_batch_with_same_keras_seed(
    toy,
):
    # Keras 3 draws dropout masks from a seeded, stateful generator per layer, so
    # two models built after the same set_random_seed draw the same masks step
    # by step.  That makes even the dropout path exactly comparable: it shows
    # fit_compiled runs the layers in training mode with Keras' own masks.
    X, y = toy
    fast, reference = twin_models(
        build_mlp, input_dropout=0.2, hidden_dropout=0.3, max_norm=3.0
    )
    fit_compiled(fast, X, y, epochs=EPOCHS, batch_size=BATCH, seed=2)
    train_with_train_on_batch(
        reference, X, y, epoch_orders(N, EPOCHS, 2), BATCH
    )
    assert_same_weights(fast, reference)


def test_fit_compiled_with_dropout_is_deterministic_and_seed_dependent(toy):
    X, y = toy
    kwargs = {
        "input_dropout": 0.2,
        "hidden_dropout": 0.3,
        "max_norm": 3.0,
        "learning_rate": 0.1,
    }
    a, b = twin_models(build_mlp, **kwargs)
    c, _ = twin_models(build_mlp, **kwargs)
    fit_compiled(a, X, y, epochs=EPOCHS, batch_size=BATCH, seed=1)
    fit_compiled(b, X, y, epochs=EPOCHS, batch_size=BATCH, seed=1)
    fit_compiled(c, X, y, epochs=EPOCHS, batch_size=BATCH, seed=2)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert max_weight_difference(a, c) > 1e-4


def test_fit_compiled_interleaved_models_keep_their_own_state(toy):
    """Models of one structure may share a traced driver; none may see another's state.

    A and B (same structure, different initial weights and dropout seeds) are fitted
    A, B, A: A's second fit must continue from A's weights, momentum slots, step
    count and dropout-generator state, exactly as Keras continuing A would.
    """
    X, y = toy
    kwargs = {
        "hidden_dropout": 0.25,
        "max_norm": 2.0,
        "learning_rate": 0.05,
        "momentum": 0.9,
    }
    a, a_ref = twin_models(build_mlp, keras_seed=21, **kwargs)
    b, b_ref = twin_models(build_mlp, keras_seed=22, **kwargs)
    fit_compiled(a, X, y, epochs=1, batch_size=BATCH, seed=1)
    fit_compiled(b, X, y, epochs=2, batch_size=BATCH, seed=2)
    fit_compiled(a, X, y, epochs=1, batch_size=BATCH, seed=3)
    train_with_train_on_batch(a_ref, X, y, epoch_orders(N, 1, 1), BATCH)
    train_with_train_on_batch(a_ref, X, y, epoch_orders(N, 1, 3), BATCH)
    train_with_train_on_batch(b_ref, X, y, epoch_orders(N, 2, 2), BATCH)
    assert_same_weights(a, a_ref)
    assert_same_weights(b, b_ref)
    assert int(a.optimizer.iterations.numpy()) == 8
    assert int(b.optimizer.iterations.numpy()) == 8
    for va, vr in zip(
        a.optimizer.variables, a_ref.optimizer.variables, strict=True
    ):
        np.testing.assert_allclose(
            va.numpy(), vr.numpy(), rtol=1e-5, atol=1e-6
        )


def test_fit_compiled_batch_larger_than_data(toy):
    X, y = toy
    fast, reference = twin_models(build_baseline)
    fit_compiled(fast, X[:10], y[:10], epochs=2, batch_size=BATCH, seed=0)
    train_with_train_on_batch(
        reference, X[:10], y[:10], epoch_orders(10, 2, 0), BATCH
    )
    assert_same_weights(fast, reference)


def test_fit_compiled_dropout_model_learns_like_keras_fit(sonar_scaled):
    """Statistical agreement with model.fit (its own shuffling): a short run on Sonar."""
    X, y = sonar_scaled
    ours, theirs, first_losses = [], [], []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        model = build_hidden_dropout()
        history = fit_compiled(
            model, X, y, epochs=6, batch_size=16, seed=seed
        )
        ours.append(model.evaluate(X, y, verbose=0)[1])
        first_losses.append(history["loss"][0])
        keras.utils.set_random_seed(seed)
        model = build_hidden_dropout()
        logs = model.fit(X, y, epochs=6, batch_size=16, verbose=0)
        theirs.append(model.evaluate(X, y, verbose=0)[1])
        first_losses.append(logs.history["loss"][0])
    assert 0.85 <= np.mean(ours) <= 1.0, ours
    assert 0.85 <= np.mean(theirs) <= 1.0, theirs
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.08, (ours, theirs)
    assert max(first_losses) < 1.5 * min(first_losses), first_losses


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 3.0}, TypeError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_fit_compiled_validates_arguments(toy, kwargs, error, argument):
    X, y = toy
    arguments = {"epochs": 2, "batch_size": 16, "seed": 0} | kwargs
    with pytest.raises(error, match=argument):
        fit_compiled(build_baseline(), X, y, **arguments)


def test_fit_compiled_rejects_bad_data_and_uncompiled_models(toy):
    X, y = toy
    with pytest.raises(ValueError, match="same number of rows"):
        fit_compiled(build_baseline(), X, y[:-1], epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="2-D"):
        fit_compiled(build_baseline(), X[:, 0], y, epochs=1, batch_size=16)
    with pytest.raises(ValueError, match="2-D"):
        fit_compiled(build_baseline(), X[:0], y[:0], epochs=1, batch_size=16)
    uncompiled = keras.Sequential(
        [keras.Input((60,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    with pytest.raises(ValueError, match="compile"):
        fit_compiled(uncompiled, X, y, epochs=1, batch_size=16)


# --------------------------------------------------------------------------- FastKerasClassifier


def fast_classifier(random_state, epochs=3, **kwargs):
    return FastKerasClassifier(
        model=build_hidden_dropout,
        epochs=epochs,
        batch_size=16,
        verbose=0,
        random_state=random_state,
        **kwargs,
    )


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (
            build_mlp,
            dict(input_dropout=0.2, hidden_dropout=0.5, max_norm=3.0),
        ),
        (build_convnet, dict(spatial_dropout=0.1, dense_dropout=0.5)),
    ],
)
def test_seed_keras_seeds_what_keras_set_random_seed_seeds(builder, kwargs):
    """Same initial weights and dropout seed states, same Python, NumPy and
    keras.random draws afterwards: TensorFlow's global seed plays no part."""

    def draws(seed_with):
        seed_with(11)
        model = builder(**kwargs)
        return (
            [np.asarray(v) for v in model.variables],
            random.random(),
            np.random.random(),
            np.asarray(keras.random.uniform((3,))),
        )

    theirs = draws(keras.utils.set_random_seed)
    ours = draws(seed_keras)
    assert len(theirs[0]) == len(ours[0]) > 4
    for a, b in zip(theirs[0], ours[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert theirs[1:3] == ours[1:3]
    np.testing.assert_array_equal(theirs[3], ours[3])
    # and another seed gives other weights
    seed_keras(12)
    other = builder(**kwargs).get_weights()[0]
    assert not np.array_equal(other, theirs[0][0])


def test_seed_keras_leaves_tensorflows_global_seed_alone():
    """tf.random.set_seed clears TensorFlow's eager kernel cache (the reason
    for seed_keras): the seeding a fit does must not call it."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    tf.random.set_seed(1234)
    seed_keras(5)
    assert context.global_seed() == 1234
    X = np.random.default_rng(0).random((20, 60), dtype=np.float32)
    y = (X[:, 0] > 0.5).astype("float32")
    fast_classifier(5, epochs=1).fit(X, y)
    assert context.global_seed() == 1234


def test_fast_classifier_builds_as_set_random_seed_then_the_builder(
    sonar_scaled,
):
    """The network a seeded wrapper builds, and the generators it leaves
    behind, are those of keras.utils.set_random_seed and the builder inside
    SciKeras' own seeding, which the wrapper skips."""
    X, y = sonar_scaled
    clf = fast_classifier(9, epochs=1).initialize(X, y)
    after = random.random(), np.random.random()
    keras.utils.set_random_seed(9)
    model = build_hidden_dropout()
    for a, b in zip(clf.model_.variables, model.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    random.seed(9)
    np.random.seed(9)
    assert after == (random.random(), np.random.random())
    assert clf._random_state == 9  # SciKeras' own attribute, put back


def test_fast_classifier_same_random_state_same_predictions(sonar_scaled):
    X, y = sonar_scaled
    p1 = fast_classifier(3).fit(X, y).predict_proba(X)
    p2 = fast_classifier(3).fit(X, y).predict_proba(X)
    p3 = fast_classifier(4).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)
    assert np.max(np.abs(p1 - p3)) > 1e-4
    assert p1.shape == (len(X), 2)
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, rtol=1e-6)


def test_fast_classifier_history_and_classes(sonar_scaled):
    X, y = sonar_scaled
    clf = fast_classifier(0, epochs=4).fit(X, y)
    assert len(clf.history_["loss"]) == 4
    assert len(clf.history_["accuracy"]) == 4
    assert list(clf.classes_) == [0.0, 1.0]
    assert set(np.unique(clf.predict(X))) <= {0.0, 1.0}


def test_fast_classifier_matches_fit_compiled_on_the_same_seed(sonar_scaled):
    """With lanes=False the wrapper is fit_compiled with random_state as both
    Keras seed and shuffle seed."""
    X, y = sonar_scaled
    clf = fast_classifier(9, epochs=2).set_params(lanes=False).fit(X, y)
    keras.utils.set_random_seed(9)
    model = build_hidden_dropout()
    fit_compiled(model, X, y.reshape(-1, 1), epochs=2, batch_size=16, seed=9)
    assert_same_weights(clf.model_, model)


def test_fast_classifier_trains_a_perceptron_as_a_lane(sonar_scaled):
    """By default the wrapper is fit_lanes with random_state as the seed."""
    from helpers.lanes import fit_lanes

    X, y = sonar_scaled
    clf = fast_classifier(9, epochs=2).fit(X, y)
    keras.utils.set_random_seed(9)
    model = build_hidden_dropout()
    fit_lanes([model], [X], [y], epochs=2, batch_size=16, seeds=[9])
    for a, b in zip(
        clf.model_.get_weights(), model.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_fast_classifier_rejects_sample_weight(sonar_scaled):
    X, y = sonar_scaled
    with pytest.raises(ValueError, match="sample_weight"):
        fast_classifier(0).fit(X, y, sample_weight=np.ones(len(y)))


def test_fast_classifier_rejects_partial_fit(sonar_scaled):
    X, y = sonar_scaled
    clf = fast_classifier(0, epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="warm start"):
        clf.partial_fit(X, y)


def test_fast_classifier_predict_before_fit_raises(sonar_scaled):
    X, _ = sonar_scaled
    with pytest.raises(NotFittedError):
        fast_classifier(0).predict(X)
    with pytest.raises(NotFittedError):
        fast_classifier(0).predict_proba(X)


def test_fast_classifier_predict_raw_equals_keras_predict(sonar_scaled):
    X, y = sonar_scaled
    clf = fast_classifier(1).fit(X, y)
    raw = clf._predict_raw(X)
    keras_out = clf.model_.predict(X, verbose=0)
    assert raw.shape == keras_out.shape == (len(X), 1)
    np.testing.assert_allclose(raw, keras_out, rtol=1e-5, atol=1e-6)
    # ... and predict_proba is built on it: column 1 is P(class 1).
    np.testing.assert_allclose(
        clf.predict_proba(X)[:, 1], keras_out[:, 0], rtol=1e-5, atol=1e-6
    )
    # Inference mode: dropout off, so repeated predictions are identical.
    np.testing.assert_array_equal(clf._predict_raw(X), raw)


def test_fast_classifier_predict_rejects_unsupported_arguments(sonar_scaled):
    X, y = sonar_scaled
    clf = fast_classifier(1, epochs=1).fit(X, y)
    with pytest.raises(TypeError, match="batch_size"):
        clf._predict_raw(X, batch_size=4)


@pytest.mark.parametrize(
    "extra",
    [
        {"validation_split": 0.2},
        {"callbacks": [keras.callbacks.EarlyStopping()]},
        {"shuffle": False},
        {"class_weight": {0: 1.0, 1: 2.0}},
        {"fit__validation_freq": 2},
    ],
    ids=[
        "validation_split",
        "callbacks",
        "shuffle",
        "class_weight",
        "fit__validation_freq",
    ],
)
def test_fast_classifier_rejects_unsupported_fit_settings(
    sonar_scaled, extra
):
    X, y = sonar_scaled
    name = next(iter(extra))
    with pytest.raises(ValueError, match=f"does not support {name}="):
        fast_classifier(0, epochs=1, **extra).fit(X, y)


def test_fast_classifier_reports_last_epoch_metrics_like_fit(sonar_scaled):
    X, y = sonar_scaled
    clf = fast_classifier(0, epochs=2).fit(X, y)
    metrics = {
        k: float(v) for k, v in clf.model_.get_metrics_result().items()
    }
    assert metrics["loss"] == pytest.approx(
        clf.history_["loss"][-1], rel=1e-6
    )
    assert metrics["accuracy"] == pytest.approx(
        clf.history_["accuracy"][-1], rel=1e-6
    )


# --------------------------------------------------------------------------- make_classifier


def test_make_classifier_configuration():
    pipe = make_classifier(build_hidden_dropout, hidden_dropout=0.3)
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["scale", "model"]
    params = pipe.get_params()
    assert params["model__epochs"] == 300
    assert params["model__batch_size"] == 16
    assert params["model__verbose"] == 0
    assert params["model__model"] is build_hidden_dropout
    assert params["model__model__hidden_dropout"] == 0.3
    assert params["model__random_state"] is None


def test_make_classifier_routes_model_params_to_the_builder(sonar_scaled):
    X, y = sonar_scaled
    pipe = make_classifier(
        build_hidden_dropout, epochs=1, hidden_dropout=(0.4, 0.1)
    )
    pipe.set_params(model__random_state=0).fit(X, y)
    rates = [
        layer.rate
        for layer in pipe[-1].model_.layers
        if isinstance(layer, keras.layers.Dropout)
    ]
    assert rates == pytest.approx([0.4, 0.1])


@pytest.mark.parametrize(
    "args, kwargs, error, argument",
    [
        (("not callable",), {}, TypeError, "build_fn"),
        ((build_baseline,), {"epochs": 0}, ValueError, "epochs"),
        ((build_baseline,), {"epochs": 300.0}, TypeError, "epochs"),
        ((build_baseline,), {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_make_classifier_validation(args, kwargs, error, argument):
    with pytest.raises(error, match=argument):
        make_classifier(*args, **kwargs)


def test_tutorial_baseline_300_epochs_on_one_fold():
    """The one full-length run: the tutorial's settings on a 90/10 split learn Sonar."""
    data = helpers.load_sonar()
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.1, stratify=data.y, random_state=0
    )
    pipe = make_classifier(build_baseline).set_params(model__random_state=0)
    pipe.fit(X_train, y_train)
    history = pipe[-1].history_
    assert len(history["loss"]) == 300
    assert (
        history["loss"][-1] < 0.1 < history["loss"][0]
    )  # fits the training rows
    assert pipe.score(X_train, y_train) > 0.97
    assert (
        pipe.score(X_test, y_test) > 0.6
    )  # far above the 53% of always guessing "R"


def test_make_classifier_refuses_a_misspelt_model_parameter_at_once():
    with pytest.raises(TypeError, match="hiden_dropout"):
        make_classifier(build_hidden_dropout, hiden_dropout=0.3)
    with pytest.raises(TypeError, match="input_dropout"):
        make_classifier(
            build_hidden_dropout, input_dropout=0.3
        )  # not a parameter of this builder
    make_classifier(build_mlp, input_dropout=0.3)  # but of the general one


# ------------------------------------------------------------ ten classes, convolutions


@pytest.fixture(scope="module")
def images():
    """50 random 8x8 "images" in 4 classes, each class a brighter quarter of the image."""
    rng = np.random.default_rng(1)
    y = np.arange(N) % 4
    X = rng.normal(size=(N, 8, 8)).astype("float32")
    for k in range(4):
        rows, cols = divmod(k, 2)
        X[y == k, rows * 4 : rows * 4 + 4, cols * 4 : cols * 4 + 4] += 1.5
    return X.reshape(N, 64), y.astype("float32")


MULTICLASS = {
    "mlp": (
        build_mlp,
        {
            "n_features": 64,
            "n_classes": 4,
            "hidden_units": (12, 8),
            "optimizer": "adam",
            "learning_rate": 0.01,
        },
    ),
    "mlp-dropout": (
        build_mlp,
        {
            "n_features": 64,
            "n_classes": 4,
            "hidden_units": (12, 8),
            "input_dropout": 0.2,
            "hidden_dropout": 0.5,
            "max_norm": 1.0,
            "optimizer": "adam",
            "learning_rate": 0.01,
        },
    ),
    "cnn": (
        build_convnet,
        {
            "filters": (3, 4),
            "dense_units": 8,
            "n_classes": 4,
            "learning_rate": 0.01,
        },
    ),
    "cnn-dropout": (
        build_convnet,
        {
            "filters": (3, 4),
            "dense_units": 8,
            "n_classes": 4,
            "input_dropout": 0.1,
            "spatial_dropout": 0.25,
            "dense_dropout": 0.5,
            "max_norm": 0.5,
            "learning_rate": 0.01,
        },
    ),
}


@pytest.mark.parametrize("name", sorted(MULTICLASS))
def test_fit_compiled_equals_train_on_batch_for_multiclass_and_convolutions(
    images, name
):
    X, y = images
    builder, kwargs = MULTICLASS[name]
    fast, reference = twin_models(builder, **kwargs)
    initial = [w.copy() for w in fast.get_weights()]
    history = fit_compiled(
        fast, X, y, epochs=EPOCHS, batch_size=BATCH, seed=3
    )
    expected = train_with_train_on_batch(
        reference, X, y, epoch_orders(N, EPOCHS, 3), BATCH
    )
    assert_same_weights(fast, reference)
    assert (
        max(
            float(np.max(np.abs(w - w0)))
            for w, w0 in zip(fast.get_weights(), initial)
        )
        > 1e-3
    )
    np.testing.assert_allclose(
        history["loss"], expected["loss"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        history["accuracy"], expected["accuracy"], rtol=1e-5, atol=1e-6
    )
    assert int(fast.optimizer.iterations.numpy()) == EPOCHS * 4


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_fit_compiled_history_equals_keras_fit_for_multiclass(images, name):
    X, y = images
    builder, kwargs = MULTICLASS[name]
    fast, reference = twin_models(builder, **kwargs)
    history = fit_compiled(
        fast, X, y, epochs=EPOCHS, batch_size=BATCH, seed=6
    )
    expected = {"loss": [], "accuracy": []}
    for order in epoch_orders(N, EPOCHS, 6):
        logs = reference.fit(
            X[order],
            y[order],
            epochs=1,
            batch_size=BATCH,
            shuffle=False,
            verbose=0,
        )
        for key in expected:
            expected[key].extend(logs.history[key])
    assert_same_weights(fast, reference)
    np.testing.assert_allclose(
        history["loss"], expected["loss"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        history["accuracy"], expected["accuracy"], rtol=1e-5, atol=1e-6
    )


def test_fit_compiled_keeps_max_norm_on_convolution_filters(images):
    X, y = images
    builder, kwargs = MULTICLASS["cnn-dropout"]
    model, _ = twin_models(builder, **kwargs)
    fit_compiled(model, X, y, epochs=2, batch_size=BATCH, seed=0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            norms = np.sqrt((layer.kernel.numpy() ** 2).sum(axis=(0, 1, 2)))
            assert norms.max() <= 0.5 + 1e-5


def test_fast_classifier_with_ten_classes_and_string_labels():
    data = load_digits_data()
    X = StandardScaler().fit_transform(data.X[:300]).astype("float32")
    names = np.array(list("abcdefghij"))
    y = names[data.y[:300]]
    clf = FastKerasClassifier(
        model=build_convnet,
        epochs=10,
        batch_size=32,
        verbose=0,
        random_state=0,
        model__filters=(4, 8),
        model__dense_units=16,
        model__learning_rate=0.01,
    ).fit(X, y)
    assert list(clf.classes_) == list(names)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    predicted = clf.predict(X)
    np.testing.assert_array_equal(predicted, names[proba.argmax(axis=1)])
    assert (
        np.mean(predicted == y) > 0.5
    )  # learnt something in ten epochs (chance: 0.1)
    np.testing.assert_allclose(
        proba, clf.model_.predict(X, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_multiclass_pipeline_in_cross_validation_is_reproducible():
    data = load_digits_data()
    X, y = data.X[:200], data.y[:200]
    pipe = make_classifier(
        build_mlp,
        epochs=3,
        batch_size=32,
        n_features=64,
        n_classes=10,
        hidden_units=(16,),
        optimizer="adam",
        learning_rate=0.01,
    )
    a = cross_validate_model(pipe, X, y, n_splits=3, seed=1, n_jobs=1)
    b = cross_validate_model(pipe, X, y, n_splits=3, seed=1, n_jobs=1)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert 0.3 < a.mean <= 1.0


# --------------------------------------------------------------------------- TrainOnFraction


def test_train_on_fraction_keeps_a_stratified_seeded_share(images):
    X, y = images
    X, y = np.tile(X, (4, 1)), np.tile(y, 4)  # 200 rows, 50 per class
    inner = make_classifier(
        build_mlp,
        epochs=1,
        batch_size=16,
        n_features=64,
        n_classes=4,
        hidden_units=(4,),
    )
    model = TrainOnFraction(inner, fraction=0.2, random_state=3).fit(X, y)
    assert model.n_train_ == 40
    assert list(model.classes_) == [0.0, 1.0, 2.0, 3.0]
    assert model.predict(X).shape == (200,)
    assert model.predict_proba(X).shape == (200, 4)

    seen = []
    for seed in (3, 3, 4):
        wrapper = TrainOnFraction(inner, fraction=0.2, random_state=seed)
        wrapper.estimator = _Recorder()
        seen.append(wrapper.fit(X, y).estimator_.y)
    np.testing.assert_array_equal(seen[0], seen[1])
    assert np.bincount(seen[0].astype(int)).tolist() == [10, 10, 10, 10]


def test_train_on_fraction_one_keeps_every_row(images):
    X, y = images
    wrapper = TrainOnFraction(_Recorder(), fraction=1.0, random_state=0).fit(
        X, y
    )
    np.testing.assert_array_equal(wrapper.estimator_.y, y)


def test_train_on_fraction_draws_differ_between_seeds(images):
    X, y = images
    a = (
        TrainOnFraction(_Recorder(), fraction=0.5, random_state=0)
        .fit(X, y)
        .estimator_.X
    )
    b = (
        TrainOnFraction(_Recorder(), fraction=0.5, random_state=1)
        .fit(X, y)
        .estimator_.X
    )
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "fraction, error, match",
    [
        (0.0, ValueError, "fraction"),
        (1.5, ValueError, "fraction"),
        ("0.5", TypeError, "fraction"),
        (0.02, ValueError, "fewer than the 4 classes"),
    ],
)
def test_train_on_fraction_validates(images, fraction, error, match):
    X, y = images
    with pytest.raises(error, match=match):
        TrainOnFraction(_Recorder(), fraction=fraction, random_state=0).fit(
            X, y
        )


class _Recorder(ClassifierMixin, BaseEstimator):
    """Remembers the rows it was fitted on."""

    def fit(self, X, y):
        self.X, self.y = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


@pytest.mark.parametrize(
    "builder, n_features, labels",
    [
        (build_baseline, 60, "binary"),
        (
            lambda: build_mlp(max_norm=3.0, optimizer="adam"),
            60,
            "binary",
        ),
        (lambda: build_mlp(n_features=64, n_classes=10), 64, "classes"),
        (build_convnet, 64, "classes"),
    ],
    ids=["baseline", "adam-maxnorm", "softmax", "convnet"],
)
def test_build_training_state_creates_what_keras_symbolic_build_creates(
    builder, n_features, labels
):
    from helpers.training import build_training_state

    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, n_features)).astype("float32")
    y = (
        (X[:, 0] > 0).astype("float32")
        if labels == "binary"
        else rng.integers(0, 10, size=16)
    )
    ours, theirs = builder(), builder()
    assert not ours.optimizer.built
    build_training_state(ours, X, y)
    theirs._symbolic_build(data_batch=(X, y))

    def described(variables):
        # Layer and optimizer names carry a per-instance number (sgd, sgd_1),
        # so compare what each variable is: its own name, shape and type.
        return [
            (re.sub(r"_\d+", "", v.name), tuple(v.shape), v.dtype)
            for v in variables
        ]

    assert ours.optimizer.built
    assert described(ours.optimizer.variables) == described(
        theirs.optimizer.variables
    )
    assert described(ours.metrics_variables) == described(
        theirs.metrics_variables
    )
    assert list(ours.get_metrics_result()) == list(
        theirs.get_metrics_result()
    )
    # and a model built this way trains exactly as one built Keras' way
    theirs.set_weights(ours.get_weights())
    a = fit_compiled(ours, X, y, epochs=2, batch_size=8, seed=1)
    b = fit_compiled(theirs, X, y, epochs=2, batch_size=8, seed=1)
    assert a == b
    assert_same_weights(ours, theirs)


def test_build_training_state_falls_back_for_a_model_without_declared_output():
    from helpers.training import build_training_state

    model = keras.Sequential([keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    X = np.zeros((4, 3), "float32")
    build_training_state(model, X, np.zeros(4, "float32"))
    assert model.built and model.optimizer.built


@pytest.mark.parametrize(
    "function, kept",
    [
        ("<function _make_driver.<locals>.run at 0x7f>", False),
        ("<function my_loop.<locals>.step at 0x7f>", True),
    ],
)
def test_retracing_warnings_are_dropped_only_for_the_books_training_functions(
    function, kept
):
    from helpers.training import _DropDriverRetracingWarning

    record = logging.LogRecord(
        "tensorflow",
        logging.WARNING,
        __file__,
        1,
        f"5 out of the last 6 calls to {function} triggered tf.function "
        "retracing. Tracing is expensive ...",
        None,
        None,
    )
    assert _DropDriverRetracingWarning().filter(record) is kept


# --------------------------------------------------------------------------- learning_curves


def inference_scores(model, X, y):
    """Loss and accuracy of the model's inference-mode predictions, computed here."""
    p = keras.ops.convert_to_numpy(model(X, training=False))
    if p.shape[-1] == 1:
        loss = keras.losses.binary_crossentropy(y[:, None], p)
        guess = p[:, 0] > 0.5
    else:
        loss = keras.losses.sparse_categorical_crossentropy(y, p)
        guess = p.argmax(axis=1)
    return float(np.mean(keras.ops.convert_to_numpy(loss))), float(
        np.mean(guess == y)
    )


def test_learning_curves_train_exactly_as_fit_compiled(toy):
    X, y = toy
    curved, plain = twin_models(build_hidden_dropout)
    curves = learning_curves(
        curved,
        X[:40],
        y[:40],
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=4,
        held_out={"val": (X[40:], y[40:])},
    )
    history = fit_compiled(
        plain, X[:40], y[:40], epochs=EPOCHS, batch_size=BATCH, seed=4
    )
    for a, b in zip(curved.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert curves["loss"] == history["loss"]
    assert curves["accuracy"] == history["accuracy"]
    assert sorted(curves) == ["accuracy", "loss", "val_accuracy", "val_loss"]


def test_learning_curves_score_every_epoch_with_dropout_off(toy):
    # Epoch e's scores are those of the model trained for e epochs (the
    # first e shuffles of a seed do not depend on how many follow), predicted
    # in inference mode.  Dropout 0.5 on the inputs makes training-mode
    # predictions differ, so scoring with dropout on would fail this.
    X, y = toy
    held = {"train": (X[:40], y[:40]), "val": (X[40:], y[40:])}
    build = dict(input_dropout=0.5, hidden_dropout=0.5)
    keras.utils.set_random_seed(5)
    curves = learning_curves(
        build_mlp(**build),
        X[:40],
        y[:40],
        epochs=EPOCHS,
        batch_size=BATCH,
        seed=4,
        held_out=held,
    )
    for epochs in range(1, EPOCHS + 1):
        keras.utils.set_random_seed(5)
        model = build_mlp(**build)
        fit_compiled(
            model, X[:40], y[:40], epochs=epochs, batch_size=BATCH, seed=4
        )
        for name, (X_set, y_set) in held.items():
            loss, accuracy = inference_scores(model, X_set, y_set)
            assert curves[f"{name}_loss"][epochs - 1] == pytest.approx(
                loss, rel=1e-5
            )
            assert curves[f"{name}_accuracy"][epochs - 1] == accuracy
    assert len(set(curves["val_loss"])) == EPOCHS  # it moved every epoch


@pytest.mark.parametrize("name", ["mlp-dropout", "cnn"])
def test_learning_curves_score_many_classes(images, name):
    X, y = images
    builder, kwargs = MULTICLASS[name]
    keras.utils.set_random_seed(2)
    model = builder(**kwargs)
    curves = learning_curves(
        model,
        X[:40],
        y[:40],
        epochs=2,
        batch_size=BATCH,
        seed=1,
        held_out={"val": (X[40:], y[40:])},
    )
    loss, accuracy = inference_scores(model, X[40:], y[40:])
    assert curves["val_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert curves["val_accuracy"][-1] == accuracy


@pytest.mark.parametrize(
    "held_out, error, match",
    [
        ([("val", None)], TypeError, "held_out must be a dict"),
        ({"": "pair"}, ValueError, "non-empty strings"),
        ({"val": [1, 2]}, ValueError, r"held_out\['val'\] must be a pair"),
        ({"val": ("X", "y", "z")}, ValueError, "must be a pair"),
        (
            "shapes",
            ValueError,
            r"held_out\['val'\].*shapes \(10, 60\) and \(9,\)",
        ),
        ("1-D", ValueError, r"non-empty 2-D X.*shapes \(10,\)"),
    ],
)
def test_learning_curves_name_what_is_wrong_with_held_out(
    toy, held_out, error, match
):
    X, y = toy
    if held_out == "shapes":
        held_out = {"val": (X[:10], y[:9])}
    elif held_out == "1-D":
        held_out = {"val": (X[:10, 0], y[:10])}
    with pytest.raises(error, match=match):
        learning_curves(
            build_baseline(),
            X,
            y,
            epochs=1,
            batch_size=BATCH,
            held_out=held_out,
        )


def test_learning_curves_name_themselves_in_fit_compileds_checks(toy):
    X, y = toy
    uncompiled = keras.Sequential(
        [keras.Input((60,)), keras.layers.Dense(1, activation="sigmoid")]
    )
    with pytest.raises(ValueError, match="learning_curves needs a compiled"):
        learning_curves(uncompiled, X, y, epochs=1, batch_size=BATCH)
    with pytest.raises(ValueError, match="epochs"):
        learning_curves(build_baseline(), X, y, epochs=0, batch_size=BATCH)
    per_output = keras.Sequential(
        [keras.Input((60,)), keras.layers.Dense(1, name="out")]
    )
    per_output.compile(optimizer="sgd", loss={"out": "binary_crossentropy"})
    with pytest.raises(ValueError, match="a loss Keras can look up"):
        learning_curves(per_output, X, y, epochs=1, batch_size=BATCH)
