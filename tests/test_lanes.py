"""Lane training (helpers/lanes.py): many networks of one structure at once.

What must hold: with dropout off a lane trains as the single-network path
does (to float32 rounding); a lane's result does not depend on the lanes
beside it (bit for bit), on how its epochs are split over graph calls, or on
its position; its dropout masks are its own, reproducible from its seed, and
keep units at the rate's probability.
"""

from __future__ import annotations

import helpers  # noqa: F401  (first: fixes TensorFlow's kernels)

# isort: split

import os

import keras
import numpy as np
import pytest

from helpers import lanes
from helpers.lanes import deferred_fits, fit_lanes, lane_plan
from helpers.models import build_convnet, build_mlp
from helpers.training import FastKerasClassifier, fit_compiled


def data(n, n_features=12, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    if n_classes > 2:
        y = (np.abs(X[:, 0] * 2).astype(int) % n_classes).astype(np.float32)
    return X, y


def network(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    kw.setdefault("n_features", 12)
    kw.setdefault("hidden_units", (10, 6))
    return build_mlp(**kw)


def weights(model):
    return [w.copy() for w in model.get_weights()]


def assert_same_bits(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------ lane_plan


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"hidden_dropout": 0.2, "input_dropout": 0.1, "max_norm": 3.0},
        {"optimizer": "adam", "learning_rate": 0.001},
        {"momentum": 0.0},
        {"n_classes": 4},
    ],
)
def test_the_books_networks_have_a_plan(kw):
    assert lane_plan(network(**kw)) is not None


def test_networks_differing_only_in_lane_values_share_a_key():
    a = lane_plan(
        network(hidden_dropout=0.2, max_norm=3.0, learning_rate=0.1)
    )
    b = lane_plan(
        network(hidden_dropout=0.5, max_norm=2.0, learning_rate=0.01)
    )
    c = lane_plan(network(hidden_dropout=0.2, hidden_units=(11, 6)))
    d = lane_plan(network(hidden_dropout=0.2, max_norm=None))
    assert a.key == b.key
    assert a.values["rates"] == [0.2, 0.2] and b.values["rates"] == [0.5, 0.5]
    assert a.values["limits"] == [3.0, 3.0] and b.values["limits"] == [
        2.0,
        2.0,
    ]
    assert c.key != a.key and d.key != a.key


def decaying(lr0, rate=0.01, **kw):
    return keras.optimizers.schedules.InverseTimeDecay(lr0, 1, rate, **kw)


def test_an_inverse_time_decay_is_a_lane_value():
    a = lane_plan(network(learning_rate=decaying(0.1)))
    b = lane_plan(network(learning_rate=decaying(1.0, rate=0.5)))
    constant = lane_plan(network(learning_rate=0.1))
    assert a.key == b.key != constant.key
    assert (a.values["learning_rate"], a.values["decay_rate"]) == (
        pytest.approx(0.1),
        pytest.approx(0.01),
    )
    assert b.values["decay_steps"] == 1.0
    assert "decay_rate" not in constant.values


def convnet(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    return build_convnet(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"dense_dropout": 0.5, "max_norm": 3.0},
        {"spatial_dropout": 0.2, "input_dropout": 0.2, "dense_dropout": 0.5},
        {"image_shape": (5, 7), "filters": (3, 5), "dense_units": 6},
    ],
)
def test_the_books_convnets_have_a_plan(kw):
    plan = lane_plan(convnet(**kw))
    assert plan is not None
    # both convolutions' filters and the hidden Dense layer's units
    n_limits = 3 if "max_norm" in kw else 0
    assert plan.values["limits"] == [kw.get("max_norm")] * n_limits


def convnet_with(*middle, n_classes=3):
    """A network of 16-pixel rows as 4x4 images: ``middle`` then a softmax."""
    model = keras.Sequential(
        [keras.Input(shape=(16,)), keras.layers.Reshape((4, 4, 1))]
        + list(middle)
        + [keras.layers.Flatten(), keras.layers.Dense(n_classes, "softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_what_lanes_do_not_implement_has_no_plan():
    stairs = decaying(0.1, staircase=True)
    assert lane_plan(network(learning_rate=stairs)) is None
    exponential = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    assert lane_plan(network(learning_rate=exponential)) is None
    layers = keras.layers
    assert lane_plan(convnet_with(layers.Conv2D(4, 3, padding="same")))
    for unsupported in (
        layers.Conv2D(4, 3, padding="valid"),
        layers.Conv2D(4, 3, padding="same", strides=2),
        layers.Conv2D(4, 2, padding="same"),  # even: padded unevenly
        layers.Conv2D(4, 3, padding="same", dilation_rate=2),
        layers.Conv2D(4, 3, padding="same", kernel_regularizer="l2"),
        layers.Conv2D(
            4,
            3,
            padding="same",
            kernel_constraint=keras.constraints.MaxNorm(2),
        ),  # the norm of each kernel row, not of each filter
        layers.AveragePooling2D(2),
        layers.MaxPooling2D(2, strides=1),
        layers.MaxPooling2D(3, padding="same"),
        layers.BatchNormalization(),
    ):
        assert lane_plan(convnet_with(unsupported)) is None, unsupported
    clipped = network()
    clipped.compile(
        optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0),
        loss="binary_crossentropy",
    )
    assert lane_plan(clipped) is None
    nesterov = network()
    nesterov.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        loss="binary_crossentropy",
    )
    assert lane_plan(nesterov) is None


# ----------------------------------------------- the single-network path's training


@pytest.mark.parametrize(
    "kw",
    [
        {"momentum": 0.9, "learning_rate": 0.1},
        {"momentum": 0.0},
        {"optimizer": "adam", "learning_rate": 0.01, "max_norm": 1.0},
        {"n_classes": 3, "max_norm": 2.0},
        {"momentum": 0.9, "learning_rate": decaying(0.5, rate=0.1)},
        {"momentum": 0.0, "learning_rate": decaying(1.0, rate=0.3)},
        {"optimizer": "adam", "learning_rate": decaying(0.01, rate=0.1)},
    ],
    ids=[
        "sgd-momentum",
        "sgd",
        "adam-maxnorm",
        "softmax",
        "sgd-momentum-decaying",
        "sgd-decaying",
        "adam-decaying",
    ],
)
def test_without_dropout_a_lane_trains_as_fit_compiled(kw):
    n_classes = kw.get("n_classes", 2)
    X, y = data(45, n_classes=n_classes)  # 45 rows: a partial batch
    single, lane = network(3, **kw), network(3, **kw)
    expected = fit_compiled(single, X, y, epochs=3, batch_size=16, seed=5)
    (history,) = fit_lanes(
        [lane], [X], [y], epochs=3, batch_size=16, seeds=[5]
    )
    for a, b in zip(single.get_weights(), lane.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-5)
    assert int(lane.optimizer.iterations.numpy()) == 3 * 3


def images(n, shape=(8, 8), seed=0, n_classes=10):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, shape[0] * shape[1])).astype(np.float32)
    # the label depends on where the image is bright, so there is a pattern
    # for the convolutions to find
    y = (np.argmax(X, axis=1) % n_classes).astype(np.float32)
    return X, y


@pytest.mark.parametrize(
    "kw",
    [
        {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        {"optimizer": "sgd", "learning_rate": 0.1, "max_norm": 0.5},
        {"learning_rate": 0.01},
        {
            "image_shape": (5, 7),
            "filters": (3, 5),
            "dense_units": 6,
            "n_classes": 3,
            "optimizer": "sgd",
            "learning_rate": 0.1,
            "momentum": 0.0,
        },
    ],
    ids=["sgd-momentum", "sgd-maxnorm", "adam", "odd-sizes"],
)
def test_without_dropout_a_convnet_lane_trains_as_fit_compiled(kw):
    """Convolutions ("same" padding, padded sizes), max pooling, flattening
    and the filters' max-norm, against TensorFlow's kernels.

    Adam moves a weight by about its learning rate whatever the size of its
    gradient, so where a gradient is near zero, float32 rounding in the sums
    (added in another order by TensorFlow) can move a weight by a good share
    of the rate: with Adam, all but one weight in a hundred must agree to
    float32 rounding, and the rest within a tenth of the rate.
    """
    shape = kw.get("image_shape", (8, 8))
    X, y = images(45, shape, n_classes=kw.get("n_classes", 10))
    single, lane = convnet(3, **kw), convnet(3, **kw)
    expected = fit_compiled(single, X, y, epochs=2, batch_size=16, seed=5)
    (history,) = fit_lanes(
        [lane], [X], [y], epochs=2, batch_size=16, seeds=[5]
    )
    for a, b in zip(single.get_weights(), lane.get_weights()):
        if kw.get("optimizer") == "sgd":
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
        else:
            close = np.isclose(b, a, rtol=1e-5, atol=1e-6)
            assert close.mean() > 0.99, close.mean()
            np.testing.assert_allclose(b, a, atol=kw["learning_rate"] / 10)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-5)
    p_single = single(X, training=False).numpy()
    p_lane = lane(X, training=False).numpy()
    np.testing.assert_allclose(p_lane, p_single, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kw",
    [
        {"momentum": 0.9, "learning_rate": 0.1},
        {"optimizer": "adam", "learning_rate": decaying(0.01, rate=0.1)},
    ],
    ids=["sgd-momentum", "adam-decaying"],
)
def test_a_trained_network_goes_on_from_its_optimizers_state(kw):
    """Training in two calls, as a learning curve does between its
    checkpoints: the second call starts from the first one's weights, moment
    estimates and step count (the decay goes on), as fit_compiled's does."""
    X, y = data(45)
    single, lane = network(3, **kw), network(3, **kw)
    for seed in (5, 6):
        fit_compiled(single, X, y, epochs=2, batch_size=16, seed=seed)
        fit_lanes([lane], [X], [y], epochs=2, batch_size=16, seeds=[seed])
    assert int(lane.optimizer.iterations.numpy()) == 2 * 2 * 3
    for a, b in zip(single.get_weights(), lane.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # and a restart from a fresh optimizer would differ
    fresh = network(3, **kw)
    fit_lanes([fresh], [X], [y], epochs=2, batch_size=16, seeds=[5])
    fresh.optimizer = network(3, **kw).optimizer
    fresh.optimizer.build(fresh.trainable_variables)
    fit_lanes([fresh], [X], [y], epochs=2, batch_size=16, seeds=[6])
    assert not np.allclose(fresh.get_weights()[0], lane.get_weights()[0])


def test_the_model_is_left_as_training_leaves_it():
    X, y = data(40)
    single = network(1, momentum=0.9)
    lane = network(1, momentum=0.9)
    fit_compiled(single, X, y, epochs=2, batch_size=16, seed=2)
    fit_lanes([lane], [X], [y], epochs=2, batch_size=16, seeds=[2])
    for a, b in zip(single.optimizer.momentums, lane.optimizer.momentums):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-7)
    p_single = single(X, training=False).numpy()
    p_lane = lane(X, training=False).numpy()
    np.testing.assert_allclose(p_lane, p_single, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------ lanes are independent

DROPOUT = {"hidden_dropout": 0.3, "input_dropout": 0.2, "max_norm": 3.0}


def alone_and_together(kw, sizes, rates=None):
    """Train lane 0 alone, then beside others (other data, seeds, sizes)."""
    Xs, ys = zip(*(data(n, seed=i) for i, n in enumerate(sizes)))
    rates = rates or [kw.get("hidden_dropout", 0.0)] * len(sizes)
    alone = network(0, **kw)
    fit_lanes([alone], [Xs[0]], [ys[0]], epochs=4, batch_size=16, seeds=[11])
    group = [
        network(i, **{**kw, "hidden_dropout": r}) for i, r in enumerate(rates)
    ]
    seeds = [11] + [20 + i for i in range(1, len(sizes))]
    fit_lanes(group, Xs, ys, epochs=4, batch_size=16, seeds=seeds)
    return weights(alone), [weights(m) for m in group]


@pytest.mark.parametrize("kw", [{}, DROPOUT], ids=["no-dropout", "dropout"])
def test_a_lanes_result_does_not_depend_on_the_lanes_beside_it(kw):
    # 50 and 51 rows: training sets one row apart, as a k-fold split makes
    # them; 70 rows: more batches per epoch (the lanes are "ragged"), and 20
    # fewer.
    alone, together = alone_and_together(kw, [50, 51, 70, 50])
    assert_same_bits(alone, together[0])
    alone, together = alone_and_together(kw, [50, 20])
    assert_same_bits(alone, together[0])


def test_a_convnet_lanes_result_does_not_depend_on_the_lanes_beside_it():
    kw = {"spatial_dropout": 0.3, "input_dropout": 0.2, "dense_dropout": 0.5}
    Xs, ys = zip(*(images(n, seed=i) for i, n in enumerate((40, 41, 23))))
    alone = convnet(0, **kw)
    fit_lanes([alone], Xs[:1], ys[:1], epochs=2, batch_size=16, seeds=[4])
    group = [convnet(i, **kw) for i in range(3)]
    fit_lanes(group, Xs, ys, epochs=2, batch_size=16, seeds=[4, 5, 6])
    assert_same_bits(weights(alone), weights(group[0]))
    assert not np.array_equal(weights(group[0])[0], weights(group[1])[0])


def test_lanes_with_other_rates_and_learning_rates_leave_a_lane_alone():
    alone, together = alone_and_together(
        DROPOUT, [50, 50, 50], [0.3, 0.0, 0.6]
    )
    assert_same_bits(alone, together[0])
    X, y = data(50)
    a = network(0, learning_rate=0.05)
    fit_lanes([a], [X], [y], epochs=3, batch_size=16, seeds=[1])
    b = [network(0, learning_rate=0.05), network(0, learning_rate=0.2)]
    fit_lanes(b, [X, X], [y, y], epochs=3, batch_size=16, seeds=[1, 1])
    assert_same_bits(weights(a), weights(b[0]))
    assert not np.array_equal(weights(b[0])[0], weights(b[1])[0])


def test_splitting_the_epochs_over_graph_calls_changes_nothing(monkeypatch):
    X, y = data(50)
    whole = network(0, **DROPOUT)
    fit_lanes([whole], [X], [y], epochs=5, batch_size=16, seeds=[3])
    monkeypatch.setattr(lanes, "MASK_BYTES_PER_CALL", 1)  # one epoch a call
    split = network(0, **DROPOUT)
    fit_lanes([split], [X], [y], epochs=5, batch_size=16, seeds=[3])
    assert_same_bits(weights(whole), weights(split))


# ------------------------------------------------ one step, against autodiff


def _one_step_by_autodiff(model, x, y, masks, learning_rate):
    """The weights after one plain-SGD step on the rows ``x``, with the
    dropout layers' keep-masks ``masks`` (rows in ``x``'s order), computed
    by TensorFlow's autodiff from the Keras layers' own weights."""
    import tensorflow as tf

    variables = [tf.Variable(w) for w in model.get_weights()]
    layers = keras.layers
    with tf.GradientTape() as tape:
        h, d, j = tf.constant(x), 0, 0
        for layer in model.layers:
            if isinstance(layer, (layers.Dropout, layers.SpatialDropout2D)):
                keep = tf.constant(masks[j], tf.float32)
                if isinstance(layer, layers.SpatialDropout2D):
                    keep = keep[:, None, None, :]  # one number per map
                else:
                    keep = tf.reshape(keep, h.shape)
                h = h * keep / (1.0 - layer.rate)
                j += 1
            elif isinstance(layer, layers.Reshape):
                h = tf.reshape(h, (-1, *layer.target_shape))
            elif isinstance(layer, layers.Flatten):
                h = tf.reshape(h, (h.shape[0], -1))
            elif isinstance(layer, layers.MaxPooling2D):
                h = tf.nn.max_pool2d(
                    h, layer.pool_size, layer.strides, "VALID"
                )
            else:
                if isinstance(layer, layers.Conv2D):
                    h = tf.nn.conv2d(h, variables[2 * d], 1, "SAME")
                else:
                    h = h @ variables[2 * d]
                h = h + variables[2 * d + 1]
                if layer.get_config()["activation"] == "relu":
                    h = tf.nn.relu(h)
                d += 1
        if h.shape[-1] == 1:
            per_row = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.constant(y)[:, None], logits=h
            )
        else:
            per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.constant(y.astype(np.int32)), logits=h
            )
        loss = tf.reduce_mean(per_row)
    grads = tape.gradient(loss, variables)
    return [(v - learning_rate * g).numpy() for v, g in zip(variables, grads)]


@pytest.mark.parametrize(
    "kw",
    [
        {"input_dropout": 0.2, "hidden_dropout": 0.5},
        {"hidden_units": (9, 7, 5), "hidden_dropout": (0.3, 0.0, 0.1)},
        {"n_classes": 4, "hidden_dropout": 0.4},
        {"n_classes": 3, "hidden_units": (8,), "input_dropout": 0.3},
    ],
)
@pytest.mark.parametrize("n_rows", [13, 12])
def test_a_step_with_dropout_is_autodiffs_step_with_the_same_masks(
    kw, n_rows
):
    """One step of a lane, dropout on, equals TensorFlow autodiff's step with
    the masks the lane drew for its rows, to float32 rounding: the masks sit
    on the right rows and units, are scaled by 1 / (1 - rate) and stop the
    gradient where they drop.  A batch of 13 rows is padded to whole row
    blocks (its masks are moved into place); one of 12 is not (its masks are
    drawn straight into place)."""
    n_classes = kw.get("n_classes", 2)
    X, y = data(n_rows, n_classes=n_classes)  # one batch
    kw = {**kw, "momentum": 0.0, "learning_rate": 0.5}
    _check_a_step_with_dropout(network(2, **kw), network(2, **kw), X, y)


@pytest.mark.parametrize(
    "kw",
    [
        {"input_dropout": 0.3, "spatial_dropout": 0.4, "dense_dropout": 0.5},
        {
            "image_shape": (5, 7),
            "filters": (3, 5),
            "dense_units": 6,
            "spatial_dropout": 0.5,
        },
    ],
)
def test_a_convnet_step_with_dropout_is_autodiffs_step_with_the_same_masks(
    kw,
):
    """As above for the convolutional network: a pixel's mask, and one mask
    number per feature map for SpatialDropout2D."""
    kw = {**kw, "optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.5}
    X, y = images(13, kw.get("image_shape", (8, 8)))
    _check_a_step_with_dropout(convnet(2, **kw), convnet(2, **kw), X, y)


def _check_a_step_with_dropout(model, lane, X, y):
    from helpers.lanes import _MASK_STREAM, _kernel_layout, _lane_masks
    from helpers.training import epoch_orders

    plan = lane_plan(model)
    order = epoch_orders(len(X), 1, 8)[0]
    masks = _lane_masks(
        np.random.default_rng([_MASK_STREAM, 8]),
        len(X),
        1,
        _kernel_layout(plan)[5],  # each dropout layer's mask width
        plan.values["rates"],
    )
    expected = _one_step_by_autodiff(
        model, X[order], y[order], [m[0] for m in masks], 0.5
    )
    fit_lanes([lane], [X], [y], epochs=1, batch_size=16, seeds=[8])
    got = lane.get_weights()
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if not masks:
        return
    # and the comparison can fail: the same step with the masks of other
    # rows is caught
    shuffled = _one_step_by_autodiff(
        model, X[order], y[order], [m[0][::-1] for m in masks], 0.5
    )
    assert any(
        not np.allclose(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(got, shuffled)
    )


def test_the_kernels_exp_and_log_are_accurate():
    """helpers.lane_kernel computes exp and log itself (the same bits on
    every CPU); they must agree with NumPy's to a few units in the last place
    of a float64 (far finer than the float32 the kernel rounds them to)."""
    from helpers import lane_kernel

    x = np.concatenate(
        [np.linspace(-100, 80, 20001), np.linspace(-1e-3, 1e-3, 1001)]
    )
    got = np.array([lane_kernel._exp(v) for v in x])
    np.testing.assert_allclose(got, np.exp(x), rtol=1e-15, atol=0)
    assert (
        lane_kernel._exp(-800.0) == 0.0 and lane_kernel._exp(800.0) == np.inf
    )
    positive = np.concatenate(
        [np.geomspace(1e-30, 1e30, 20001), np.linspace(0.5, 2.0, 1001)]
    )
    got = np.array([lane_kernel._log(v) for v in positive])
    np.testing.assert_allclose(got, np.log(positive), rtol=1e-15, atol=0)
    small = np.concatenate([np.geomspace(1e-40, 1e3, 5001), [0.0]])
    got = np.array([lane_kernel._log1p(v) for v in small])
    np.testing.assert_allclose(got, np.log1p(small), rtol=1e-15, atol=0)


@pytest.mark.parametrize("n_units", [16, 48])
@pytest.mark.parametrize("transposed", [False, True])
def test_the_kernels_products_add_each_sum_in_order(n_units, transposed):
    """_matmul computes blocks of 4 rows by 16 units, each number the
    float32 sum over q = 0, 1, ... of rounded products, bit for bit: what
    NumPy gives adding one float32 term at a time.  The backward pass hands
    it a transposed view, compiled apart."""
    from helpers import lane_kernel

    rng = np.random.default_rng(n_units)
    M, K = 12, 37
    A = rng.normal(size=(K, M) if transposed else (M, K)).astype(np.float32)
    A = A.T if transposed else A
    B = rng.normal(size=(K, n_units)).astype(np.float32)
    C = np.full((M, n_units), np.nan, dtype=np.float32)
    lane_kernel._matmul(A, B, C, M, n_units, K)
    expected = np.zeros((M, n_units), dtype=np.float32)
    for q in range(K):
        expected = expected + A[:, q : q + 1] * B[q : q + 1, :]
    np.testing.assert_array_equal(C, expected)


def _conv_row(height, width, channels, kh, kw):
    """A convolution's row of the kernel's op table (see train_lanes)."""
    from helpers.lane_kernel import UNIT_BLOCK

    columns = -(-kh * kw * channels // UNIT_BLOCK) * UNIT_BLOCK
    maps = UNIT_BLOCK  # (neither function reads the maps)
    return np.array(
        [3, 0, height, width, 1, -1, channels, maps, kh, kw, columns, maps],
        dtype=np.int64,
    )


def _windows(height, width, kh, kw):
    """(pixel, window position, source pixel) of every window number inside
    the image, pixels and window positions in row-major order."""
    top, left = (kh - 1) // 2, (kw - 1) // 2
    for i in range(height):
        for j in range(width):
            for di in range(kh):
                for dj in range(kw):
                    ii, jj = i + di - top, j + dj - left
                    if 0 <= ii < height and 0 <= jj < width:
                        yield i * width + j, di * kw + dj, ii * width + jj


@pytest.mark.parametrize(
    "shape", [(8, 8, 1, 3, 3), (4, 4, 16, 3, 3), (5, 3, 2, 3, 1)]
)
def test_patches_are_the_windows_and_their_gradient_adds_back_in_order(shape):
    """_patches writes only the numbers copied from the image (the zeros
    outside it are the buffer's own), so a second batch must leave nothing
    of the first.  _add_back_patches gathers each pixel's gradient in one
    pass; it must add the copies' gradients in the order that sending each
    patch row back, pixel by pixel, would: bit for bit."""
    from helpers import lane_kernel

    height, width, channels, kh, kw = shape
    conv = _conv_row(*shape)
    n_pixels = -(-height * width // 4) * 4
    n_columns = conv[10]
    block = lane_kernel.UNIT_BLOCK
    n_in = -(-height * width * channels // block) * block
    rng = np.random.default_rng(height * width * channels)
    bs = 3
    buffer = np.zeros(bs * n_pixels * n_columns, dtype=np.float32)
    for _ in range(2):  # the second batch overwrites the first
        h = rng.normal(size=(bs, n_in + 16)).astype(np.float32)
        P = lane_kernel._patches(h, buffer, bs, conv)
    expected = np.zeros((bs * n_pixels, n_columns), dtype=np.float32)
    for r in range(bs):
        image = h[r, : height * width * channels].reshape(-1, channels)
        for pixel, position, source in _windows(height, width, kh, kw):
            at = position * channels
            expected[r * n_pixels + pixel, at : at + channels] = image[source]
    np.testing.assert_array_equal(P, expected)

    dP = rng.normal(size=P.shape).astype(np.float32)
    g = np.full((bs, n_in + 16), np.nan, dtype=np.float32)
    lane_kernel._add_back_patches(dP, g, bs, conv)
    expected = np.zeros((bs, n_in), dtype=np.float32)
    for r in range(bs):
        image = expected[r, : height * width * channels].reshape(-1, channels)
        for pixel, position, source in _windows(height, width, kh, kw):
            at = position * channels
            image[source] = (
                image[source] + dP[r * n_pixels + pixel, at : at + channels]
            )
    np.testing.assert_array_equal(g[:, :n_in], expected)


class _Features:
    def __init__(self, flat):
        self.flat = flat

    def flatten(self):
        return self.flat


@pytest.mark.parametrize(
    ("host", "readers", "expected"),
    [
        ("+avx2,+avx512f,+fma", None, "+avx2,+avx512f,+fma,-prefer-256-bit"),
        ("+avx2,-avx512f,+fma", None, None),
        ("+avx2,+avx512f", "+avx2", "+avx2"),
    ],
)
def test_wide_vectors_are_allowed_only_on_avx512_and_not_over_a_readers_choice(
    monkeypatch, host, readers, expected
):
    """lane_kernel lets LLVM use 512-bit vectors where the CPU has AVX-512
    (through NUMBA_CPU_FEATURES, before Numba is imported); elsewhere, or
    when the reader set that variable, it changes nothing."""
    import llvmlite.binding as llvm

    from helpers import lane_kernel

    monkeypatch.setattr(
        llvm, "get_host_cpu_features", lambda: _Features(host)
    )
    # The function writes os.environ itself, which monkeypatch does not
    # undo: give it a copy for this test.  (Until session 19 the first case
    # left "+avx512f" in this pytest process's environment, and every Numba
    # process it started afterwards compiled AVX-512 code: on a CPU without
    # it, an AMD EPYC, they died of SIGILL.)
    monkeypatch.setattr(os, "environ", dict(os.environ))
    if readers is None:
        monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    else:
        monkeypatch.setenv("NUMBA_CPU_FEATURES", readers)
    lane_kernel._allow_512_bit_vectors()
    assert os.environ.get("NUMBA_CPU_FEATURES") == expected


def test_the_kernel_leaves_the_floating_point_mode_as_it_found_it():
    """train_lanes flushes denormal numbers to zero while it runs (as
    TensorFlow's kernels do) and must switch that off again."""
    tiny = np.float32(1e-39)  # a denormal float32
    assert tiny * np.float32(1.0) != 0
    X, y = data(20)
    fit_lanes([network(0)], [X], [y], epochs=1, batch_size=16, seeds=[0])
    assert tiny * np.float32(1.0) != 0
    assert np.float32(1e-30) * np.float32(1e-10) != 0


@pytest.mark.parametrize("batch_size", [1, 5, 7, 16])
def test_any_batch_size_trains_as_fit_compiled(batch_size):
    """Batches are padded to whole blocks of rows inside the kernel (with
    rows of weight 0); that must not change what a step computes."""
    X, y = data(23)
    single, lane = network(4), network(4)
    fit_compiled(single, X, y, epochs=2, batch_size=batch_size, seed=1)
    fit_lanes([lane], [X], [y], epochs=2, batch_size=batch_size, seeds=[1])
    for a, b in zip(single.get_weights(), lane.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------ dropout masks


def test_masks_keep_units_at_the_rates_probability():
    rng = np.random.default_rng(0)
    (mask,) = lanes._lane_masks(rng, 1000, 20, [50], [0.3])
    kept = mask.mean()
    # a million Bernoulli(0.7) draws: standard error 0.00046
    assert abs(kept - 0.7) < 0.003, kept
    # no unit and no row is favoured: 20,000 draws per unit (standard
    # error 0.0032) and 1,000 per row (0.0145), bands of five errors
    assert np.abs(mask.mean(axis=(0, 1)) - 0.7).max() < 0.016
    assert np.abs(mask.mean(axis=(0, 2)) - 0.7).max() < 0.073


def test_masks_drawn_at_once_are_the_stream_of_one_draw_per_epoch_and_layer(
    monkeypatch,
):
    """A lane's masks are one generator's numbers taken epoch by epoch and,
    within an epoch, layer by layer; drawing them in one call keeps that."""
    rates, widths, n_rows, epochs = [0.2, 0.5, 0.1], [7, 3, 5], 11, 4
    expected = [np.empty((epochs, n_rows, n), bool) for n in widths]
    rng = np.random.default_rng([7, 1])
    for e in range(epochs):
        for j, (n, rate) in enumerate(zip(widths, rates)):
            draws = rng.random((n_rows, n), dtype=np.float32)
            expected[j][e] = draws >= np.float32(rate)
    got = lanes._lane_masks(
        np.random.default_rng([7, 1]), n_rows, epochs, widths, rates
    )
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    # drawn into given arrays (views of a wider block), the same masks
    block = np.zeros((epochs, n_rows + 2, sum(widths) + 1), bool)
    columns = np.cumsum([0, *widths])
    out = [block[:, :n_rows, a:b] for a, b in zip(columns, columns[1:])]
    lanes._lane_masks(
        np.random.default_rng([7, 1]), n_rows, epochs, widths, rates, out=out
    )
    for a, b in zip(out, expected):
        np.testing.assert_array_equal(a, b)
    assert not block[:, n_rows:].any() and not block[..., -1].any()
    # and drawn one epoch per call (random numbers' block of 4 bytes)
    monkeypatch.setattr(lanes, "_DRAW_BYTES", 4)
    got = lanes._lane_masks(
        np.random.default_rng([7, 1]), n_rows, epochs, widths, rates
    )
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_scratch_memory_is_kept_grown_and_per_thread():
    import threading

    first = lanes._scratch_array("test", (4, 5), np.float32)
    again = lanes._scratch_array("test", (2, 3), np.bool_)
    assert again.shape == (2, 3) and again.dtype == np.bool_
    assert np.shares_memory(first, again)  # kept from the call before
    bigger = lanes._scratch_array("test", (30, 40), np.float32)
    assert bigger.shape == (30, 40) and not np.shares_memory(first, bigger)
    assert np.shares_memory(
        bigger, lanes._scratch_array("test", (4, 5), np.float32)
    )
    elsewhere = {}

    def other_thread():
        elsewhere["array"] = lanes._scratch_array("test", (4, 5), np.float32)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert not np.shares_memory(elsewhere["array"], bigger)


def test_each_lane_has_its_own_masks_and_reproduces_from_its_seed():
    X, y = data(50)
    runs = []
    for seeds in ([1, 2], [1, 2]):
        models = [network(0, **DROPOUT), network(0, **DROPOUT)]
        fit_lanes(
            models, [X, X], [y, y], epochs=3, batch_size=16, seeds=seeds
        )
        runs.append([weights(m) for m in models])
    assert_same_bits(runs[0][0], runs[1][0])
    assert_same_bits(runs[0][1], runs[1][1])
    # same initial weights and rows, other seed: other shuffles and masks
    assert not np.array_equal(runs[0][0][0], runs[0][1][0])


def test_dropout_changes_training():
    X, y = data(50)
    plain, dropped = network(0), network(0, hidden_dropout=0.5)
    fit_lanes([plain], [X], [y], epochs=2, batch_size=16, seeds=[0])
    fit_lanes([dropped], [X], [y], epochs=2, batch_size=16, seeds=[0])
    assert not np.array_equal(weights(plain)[0], weights(dropped)[0])


# ------------------------------------------------------------------ bad input


def test_bad_input_is_a_clear_error():
    X, y = data(30)
    with pytest.raises(ValueError, match="one entry per network"):
        fit_lanes([network()], [X, X], [y], epochs=1, batch_size=8, seeds=[0])
    with pytest.raises(
        ValueError, match=r"models\[0\] cannot be trained as a lane"
    ):
        fit_lanes(
            [convnet_with(keras.layers.AveragePooling2D(2))],
            [X[:, :16]],
            [y],
            epochs=1,
            batch_size=8,
            seeds=[0],
        )
    with pytest.raises(ValueError, match="takes 12 features; X has 5"):
        fit_lanes(
            [network()], [X[:, :5]], [y], epochs=1, batch_size=8, seeds=[0]
        )
    with pytest.raises(ValueError, match="epochs"):
        fit_lanes([network()], [X], [y], epochs=0, batch_size=8, seeds=[0])
    with pytest.raises(ValueError, match="one label per row"):
        fit_lanes(
            [network()], [X], [y[:-1]], epochs=1, batch_size=8, seeds=[0]
        )


# ------------------------------------------------------ deferred fits (CV)


def classifier(seed):
    return FastKerasClassifier(
        model=build_mlp,
        model__n_features=12,
        model__hidden_units=(8,),
        model__hidden_dropout=0.25,
        epochs=3,
        batch_size=16,
        verbose=0,
        random_state=seed,
    )


def test_fits_deferred_together_equal_fits_made_one_at_a_time():
    X, y = data(60)
    alone = [classifier(s).fit(X[: 40 + s], y[: 40 + s]) for s in range(3)]
    with deferred_fits() as pending:
        together = [
            classifier(s).fit(X[: 40 + s], y[: 40 + s]) for s in range(3)
        ]
        assert len(pending) == 3
    for a, b in zip(alone, together):
        assert_same_bits(a.model_.get_weights(), b.model_.get_weights())
        assert a.history_["loss"] == b.history_["loss"]
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_deferred_blocks_do_not_nest():
    with deferred_fits():
        with pytest.raises(RuntimeError, match="cannot be nested"):
            with deferred_fits():
                pass


# ------------------------------------------- cross-validation through lanes


def pipeline(rate):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    network_ = classifier(0).set_params(model__hidden_dropout=rate)
    return Pipeline([("scale", StandardScaler()), ("model", network_)])


def test_a_folds_score_does_not_depend_on_n_jobs_or_on_its_company():
    from helpers.cv import cross_validate_many, cross_validate_model

    X, y = data(90)
    one = cross_validate_model(
        pipeline(0.25), X, y, n_splits=3, seed=4, n_jobs=1
    )
    two = cross_validate_model(
        pipeline(0.25), X, y, n_splits=3, seed=4, n_jobs=2
    )
    np.testing.assert_array_equal(one.scores, two.scores)
    grid = {f"rate {r}": pipeline(r) for r in (0.0, 0.25, 0.5)}
    many = cross_validate_many(grid, X, y, n_splits=3, seed=4, n_jobs=2)
    assert list(many) == list(grid)
    np.testing.assert_array_equal(many["rate 0.25"].scores, one.scores)
    # ... and each fold scores as its pipeline fitted alone, outside any lanes
    from helpers.cv import fold_seeds, make_splits, seeded

    splits = make_splits(y, n_splits=3, seed=4)
    for (train, test), s, score in zip(
        splits, fold_seeds(4, 3), one.scores.ravel()
    ):
        model = seeded(pipeline(0.25), s).fit(X[train], y[train])
        assert model.score(X[test], y[test]) == score


def test_cross_validate_many_rejects_an_empty_grid():
    from helpers.cv import cross_validate_many

    X, y = data(30)
    with pytest.raises(ValueError, match="non-empty mapping"):
        cross_validate_many({}, X, y)
    with pytest.raises(ValueError, match="non-empty mapping"):
        cross_validate_many([pipeline(0.1)], X, y)


def test_lanes_false_trains_with_fit_compiled():
    X, y = data(40)
    off = classifier(3).set_params(lanes=False).fit(X, y)
    on = classifier(3).fit(X, y)
    keras.utils.set_random_seed(3)  # as FastKerasClassifier does to build
    network_ = build_mlp(
        n_features=12, hidden_units=(8,), hidden_dropout=0.25
    )
    fit_compiled(network_, X, y, epochs=3, batch_size=16, seed=3)
    assert_same_bits(off.model_.get_weights(), network_.get_weights())
    assert not np.array_equal(
        off.model_.get_weights()[0], on.model_.get_weights()[0]
    )


# ------------------------------------------------ searches trained as lanes


def small_search(kind="grid"):
    from helpers.search import make_search

    space = {
        "model__model__hidden_dropout": [0.0, 0.25, 0.5],
        "model__model__learning_rate": [0.01, 0.1],
    }
    if kind == "random":
        import scipy.stats

        space = {
            "model__model__hidden_dropout": scipy.stats.uniform(0.0, 0.5),
            "model__model__learning_rate": [0.01, 0.1],
        }
        return make_search(
            pipeline(0.25),
            space,
            kind="random",
            n_iter=4,
            n_splits=3,
            seed=5,
            n_jobs=2,
        )
    return make_search(pipeline(0.25), space, n_splits=3, seed=5, n_jobs=2)


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_a_search_trained_as_lanes_equals_the_search_alone(kind):
    from helpers.search import run_search, search_scores

    X, y = data(90)
    through_lanes = run_search(small_search(kind), X, y)
    alone = small_search(kind).set_params(n_jobs=1).fit(X, y)  # sklearn's own
    np.testing.assert_array_equal(
        search_scores(through_lanes), search_scores(alone)
    )
    assert through_lanes.best_params_ == alone.best_params_
    assert_same_bits(
        through_lanes.best_estimator_[-1].model_.get_weights(),
        alone.best_estimator_[-1].model_.get_weights(),
    )


def test_nested_search_trained_as_lanes_equals_the_loop_it_replaces():
    from sklearn.base import clone

    from helpers.cv import make_splits
    from helpers.search import nested_cross_validate

    X, y = data(90)
    nested = nested_cross_validate(small_search(), X, y, n_splits=3, seed=2)
    for k, (train, test) in enumerate(make_splits(y, n_splits=3, seed=2)):
        fold = (
            clone(small_search()).set_params(n_jobs=1).fit(X[train], y[train])
        )
        assert fold.best_params_ == nested.best_params[k]
        assert fold.best_score_ == nested.inner_best_scores[k]
        assert fold.score(X[test], y[test]) == nested.result.scores[0, k]


def test_replaying_needs_the_very_same_fit():
    from helpers.lanes import replaying

    X, y = data(60)
    trained = classifier(1).fit(X, y)
    with deferred_fits() as pending:
        classifier(1).fit(X, y)
        (job,) = pending
    # stored under the key of (initial weights, rows, labels, settings)
    from helpers.lanes import results_of

    results = results_of(pending)
    assert len(results) == 1
    with replaying(results):
        replayed = classifier(1).fit(X, y)
        other_rows = classifier(1).fit(X[:-1], y[:-1])
    assert_same_bits(
        replayed.model_.get_weights(), trained.model_.get_weights()
    )
    assert replayed.history_["loss"] == trained.history_["loss"]
    fresh = classifier(1).fit(X[:-1], y[:-1])
    assert_same_bits(
        other_rows.model_.get_weights(), fresh.model_.get_weights()
    )


def test_a_lanes_result_does_not_depend_on_what_ran_before():
    # Whatever the process trained before (other shapes, other numbers of
    # lanes), a lane's result is the same: chapter 6's grid search must score
    # the same in one process as on two workers (`make bench-search` checks
    # that full-size case).
    X, y = data(60, n_features=60)
    kw = {"n_features": 60, "hidden_units": (60, 30), **DROPOUT}
    kw["learning_rate"], kw["momentum"] = 0.1, 0.9
    results = []
    for company in (0, 6):
        if company:
            others = [network(k, **kw) for k in range(company)]
            fit_lanes(
                others,
                [X[:45]] * company,
                [y[:45]] * company,
                epochs=1,
                batch_size=16,
                seeds=range(company),
            )
        model = network(9, **kw)
        fit_lanes([model], [X], [y], epochs=3, batch_size=16, seeds=[9])
        results.append(weights(model))
    assert_same_bits(*results)


# ------------------------------------------------------------------ prediction


@pytest.mark.parametrize(
    "build",
    [
        lambda: convnet(1),
        lambda: convnet(
            1, input_dropout=0.2, spatial_dropout=0.3, dense_dropout=0.5
        ),
        lambda: convnet(
            1, image_shape=(5, 7), filters=(3, 5), dense_units=6, n_classes=3
        ),
        lambda: network(1, n_features=64),
        lambda: network(1, n_features=64, n_classes=4, hidden_dropout=0.4),
    ],
    ids=["convnet", "convnet-dropout", "odd-sizes", "sigmoid", "softmax"],
)
def test_lane_prediction_is_the_models_own_in_inference_mode(build):
    from helpers.lanes import predict_lanes

    model = build()
    n_features = model.inputs[0].shape[-1]
    # 77 rows: two whole blocks of 32 and a partial one
    X = np.random.default_rng(4).normal(size=(77, n_features))
    X = X.astype(np.float32)
    expected = model(X, training=False).numpy()
    got = predict_lanes(model, X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # each row's own: the rows in another order give the same rows
    np.testing.assert_array_equal(predict_lanes(model, X[::-1]), got[::-1])


def test_a_fitted_convnet_predicts_through_the_lanes_unless_told_not_to():
    from helpers.lanes import predict_lanes

    X, y = images(40, n_classes=3)
    for use_lanes in (True, False):
        keras.utils.set_random_seed(0)
        classifier = FastKerasClassifier(
            model=build_convnet,
            model__n_classes=3,
            model__filters=(4, 8),
            epochs=2,
            batch_size=16,
            random_state=0,
            lanes=use_lanes,
            verbose=0,
        ).fit(X, y)
        expected = (
            predict_lanes(classifier.model_, X)
            if use_lanes
            else classifier.model_(X, training=False).numpy()
        )
        np.testing.assert_array_equal(classifier.predict_proba(X), expected)


def test_lane_prediction_rejects_what_it_cannot_compute():
    from helpers.lanes import predict_lanes

    with pytest.raises(ValueError, match="has no lane plan"):
        predict_lanes(
            convnet_with(keras.layers.AveragePooling2D(2)),
            np.zeros((3, 16), np.float32),
        )
    with pytest.raises(ValueError, match="64 features per row; got shape"):
        predict_lanes(convnet(0), np.zeros((3, 16), np.float32))


# ------------------------------------------------------ the compiled code's cache


def test_the_install_steps_warm_up_compiles_what_training_uses():
    """tools/warm_kernel.py (run by make install) compiles the kernel through
    the book's own calls; a fresh process that then trains and predicts
    other networks, perceptrons and convolutional ones, finds every
    signature in Numba's cache and compiles nothing."""
    import runpy
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    # The warm-up runs here (saving whatever this process has not loaded
    # from the cache yet), not in an interpreter of its own: that would
    # cost another TensorFlow import for the same calls.
    runpy.run_path(str(root / "tools" / "warm_kernel.py"))["warm_up"]()
    check = (
        "import numpy as np\n"
        "import helpers\n"
        "from helpers import lane_kernel\n"
        "from helpers.lanes import fit_lanes, predict_lanes\n"
        "from helpers.models import build_convnet, build_mlp\n"
        "rng = np.random.default_rng(1)\n"
        "X = rng.normal(size=(50, 64)).astype(np.float32)\n"
        "y = (X[:, 1] > 0).astype(np.float32)\n"
        "nets = [build_mlp(n_features=64, hidden_dropout=0.3, max_norm=2.0,\n"
        "                  optimizer='adam'), build_convnet(n_classes=2)]\n"
        "for net in nets:\n"
        "    fit_lanes([net], [X], [y], epochs=1, batch_size=16, seeds=[0])\n"
        "    predict_lanes(net, X)\n"
        "for f in (lane_kernel.train_lanes, lane_kernel.predict_rows):\n"
        "    print(f.__name__, sum(f.stats.cache_hits.values()),\n"
        "          sum(f.stats.cache_misses.values()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert "train_lanes 1 0" in lines and "predict_rows 1 0" in lines, (
        result.stdout
    )
