"""Tests for helpers.compat: SciKeras' KerasClassifier as a classifier for scikit-learn >= 1.6.

What matters to the book is the consequence for the tutorial's protocol:
``cross_val_score(pipeline, X, y, cv=10)`` must stratify its folds, and
classifier-only scorers such as ``"roc_auc"`` must work.  The contrast test
documents the upstream bug the layer works around, so that the day it is
fixed upstream the test suite says so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scikeras.wrappers
from sklearn.base import clone, is_classifier
from sklearn.model_selection import (
    KFold,
    StratifiedKFold,
    check_cv,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags

import helpers
from helpers.compat import KerasClassifier
from helpers.models import build_baseline
from helpers.training import FastKerasClassifier


@pytest.fixture(scope="module")
def sonar():
    return helpers.load_sonar()


def fast_pipeline(epochs=3):
    return helpers.make_classifier(build_baseline, epochs=epochs)


def compat_pipeline(epochs=3):
    return make_pipeline(
        StandardScaler(),
        KerasClassifier(
            model=build_baseline,
            epochs=epochs,
            batch_size=16,
            verbose=0,
            random_state=0,
        ),
    )


PIPELINES = {
    "make_classifier": fast_pipeline,
    "compat.KerasClassifier": compat_pipeline,
}


def test_make_classifier_is_the_tutorials_pipeline():
    pipe = fast_pipeline()
    assert isinstance(pipe, Pipeline)
    assert [name for name, _ in pipe.steps] == ["scale", "model"]
    assert isinstance(pipe[0], StandardScaler)
    assert isinstance(pipe[-1], FastKerasClassifier)
    assert isinstance(pipe[-1], KerasClassifier)


@pytest.mark.parametrize("make", PIPELINES.values(), ids=PIPELINES.keys())
def test_pipeline_is_a_classifier(make, sonar):
    pipe = make()
    assert is_classifier(pipe)
    assert is_classifier(pipe[-1])
    tags = get_tags(pipe[-1])
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags is not None
    assert tags.target_tags.required


@pytest.mark.parametrize("make", PIPELINES.values(), ids=PIPELINES.keys())
def test_cross_val_score_would_stratify(make, sonar):
    # cross_val_score(cv=10) resolves its splitter with exactly this call.
    pipe = make()
    cv = check_cv(10, sonar.y, classifier=is_classifier(pipe))
    assert type(cv) is StratifiedKFold
    assert cv.get_n_splits() == 10


@pytest.mark.parametrize("make", PIPELINES.values(), ids=PIPELINES.keys())
def test_cross_val_score_roc_auc(make, sonar):
    scores = cross_val_score(
        make(epochs=3),
        sonar.X,
        sonar.y,
        cv=3,
        scoring="roc_auc",
        error_score="raise",
    )
    assert scores.shape == (3,)
    assert np.all(np.isfinite(scores))
    assert np.all((scores >= 0) & (scores <= 1))


def test_UPSTREAM_BUG_plain_scikeras_is_not_a_classifier(sonar):
    """Documents the SciKeras 0.13 / scikit-learn >= 1.6 bug that helpers.compat works around.

    IF THIS TEST FAILS, the upstream bug is fixed (plain scikeras.wrappers.KerasClassifier is
    recognised as a classifier again): helpers/compat.py may be removable -- use SciKeras'
    class directly, then delete this test.
    """
    plain = make_pipeline(
        StandardScaler(),
        scikeras.wrappers.KerasClassifier(
            model=build_baseline, epochs=3, verbose=0
        ),
    )
    removable = (
        "plain scikeras KerasClassifier is now recognised as a classifier: the workaround in "
        "helpers/compat.py (and KerasClassifier's __sklearn_tags__ override) may be removable"
    )
    assert not is_classifier(plain), removable
    assert not is_classifier(plain[-1]), removable
    # The consequence the book warns about: cross_val_score(cv=10) would not stratify.
    assert (
        type(check_cv(10, sonar.y, classifier=is_classifier(plain))) is KFold
    ), removable


def test_compat_class_keeps_scikeras_interface():
    ours = KerasClassifier(model=build_baseline, epochs=5)
    theirs = scikeras.wrappers.KerasClassifier(model=build_baseline, epochs=5)
    assert isinstance(ours, scikeras.wrappers.KerasClassifier)
    assert ours.get_params().keys() == theirs.get_params().keys()
    cloned = clone(ours)
    assert type(cloned) is KerasClassifier
    assert cloned.get_params()["epochs"] == 5


def test_fitted_compat_classifier_predicts_both_classes_probabilities(sonar):
    pipe = compat_pipeline(epochs=2)
    pipe.fit(sonar.X, sonar.y)
    proba = pipe.predict_proba(sonar.X[:10])
    assert proba.shape == (10, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(pipe.classes_) == [0, 1]


# Op determinism and SciKeras' seeding, each in a fresh Python process: the bug
# needs a process in which nobody has asked TensorFlow about determinism yet.
_SCIKERAS_SEEDING = """
from tensorflow.python.framework import config
from scikeras.utils.random_state import tensorflow_random_state
with tensorflow_random_state(3):
    inside = config.is_op_determinism_enabled()
print(inside, config.is_op_determinism_enabled())
"""


def _fresh_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_DETERMINISTIC_OPS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


def test_UPSTREAM_BUG_scikeras_seeding_leaves_op_determinism_on():
    """SciKeras 0.13.0: in a fresh process its seeding switches op
    determinism on and never off (helpers/compat.py explains why)."""
    inside, after = _fresh_python(_SCIKERAS_SEEDING)
    assert inside == "True"
    assert after == "True", (
        "SciKeras' tensorflow_random_state now restores op determinism in a "
        "fresh process: helpers.compat._pin_op_determinism_state may be removable"
    )


def test_importing_helpers_lets_scikeras_restore_op_determinism():
    """With helpers imported first, SciKeras' seeding, and then a seeded fit
    of the plain wrapper, leave op determinism as they found it: off."""
    inside, after, after_fit = _fresh_python(
        "import helpers, numpy as np\n"
        + _SCIKERAS_SEEDING
        + "from helpers.compat import KerasClassifier\n"
        "from helpers.models import build_baseline\n"
        "X = np.random.default_rng(0).random((20, 60)).astype('float32')\n"
        "KerasClassifier(model=build_baseline, epochs=1, verbose=0,\n"
        "                random_state=3).fit(X, (X[:, 0] > 0.5).astype(int))\n"
        "print(config.is_op_determinism_enabled())\n"
    )
    assert (inside, after, after_fit) == ("True", "False", "False")


# TensorFlow's variable handles and the eager kernel cache
# (helpers.compat._share_variable_handle_kernels).

from tensorflow.python.ops import gen_resource_variable_ops  # noqa: E402

import helpers.compat  # noqa: E402
from helpers.training import build_training_state, seed_keras  # noqa: E402


def _seeded_network(seed: int):
    seed_keras(seed)
    model = build_baseline()
    X = np.zeros((4, 60), dtype=np.float32)
    build_training_state(model, X, np.zeros(4, dtype=np.float32))
    return model


def test_eager_variable_handles_get_an_empty_debug_name(monkeypatch):
    """Under the workaround every handle a network, its optimizer and its
    metrics create eagerly reaches the op with an empty label."""
    labels = []
    real = gen_resource_variable_ops.var_handle_op.__wrapped__

    def recording(*args, **kwargs):
        labels.append(kwargs.get("debug_name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_resource_variable_ops, "var_handle_op", recording)
    assert helpers.compat._share_variable_handle_kernels() is True
    assert helpers.compat._share_variable_handle_kernels() is False
    model = _seeded_network(3)
    assert len(labels) == len(model.variables) + len(
        model.optimizer.variables
    ) + len(model.metrics_variables)
    assert set(labels) == {""}


def test_the_workaround_changes_no_name_and_no_weight(monkeypatch):
    """The same seeded network with TensorFlow's own handle op: the same
    variable paths and names, the same initial weights."""
    shared = _seeded_network(11)
    monkeypatch.setattr(
        gen_resource_variable_ops,
        "var_handle_op",
        gen_resource_variable_ops.var_handle_op.__wrapped__,
    )
    labelled = _seeded_network(11)

    def names(model):
        # Keras numbers layers, models and optimizers per process
        # ("dense_3"), so the counters are left out.
        return [
            (re.sub(r"_\d+", "", v.path), re.sub(r"_\d+", "", v.name))
            + (tuple(v.shape),)
            for v in model.variables + model.optimizer.variables
        ]

    assert names(shared) == names(labelled)
    for a, b in zip(shared.get_weights(), labelled.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert shared.variables[0].path != labelled.variables[0].path


def test_a_graph_keeps_its_variable_labels():
    """While a graph is being built the op keeps TensorFlow's label."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph:
        tf.Variable(1.0, name="labelled")
    handles = [
        op for op in graph.get_operations() if op.type == "VarHandleOp"
    ]
    assert [op.get_attr("debug_name") for op in handles] == [b"labelled/"]


# helpers.compat._divide_where_tensorflow_estimates_reciprocals: the book's
# TensorFlow training uses correctly rounded division where TensorFlow's
# kernels estimate reciprocals (rcpps/rsqrtps), whose last bits differ
# between CPU makers.  Each check below compares with IEEE 754 arithmetic
# done by NumPy; TensorFlow's own kernels fail it.


def positive_floats(n=100_000, seed=0):
    return np.random.default_rng(seed).uniform(0.01, 10, n).astype("float32")


def test_UPSTREAM_BUG_tensorflow_estimates_reciprocals():
    import tensorflow as tf

    x = positive_floats()
    exact = np.float32(1) / x
    assert np.mean(tf.math.reciprocal(x).numpy() != exact) > 0.01
    logits = np.random.default_rng(1).normal(0, 4, (10_000, 10))
    logits = logits.astype("float32")
    exps = tf.exp(logits - logits.max(axis=1, keepdims=True)).numpy()
    divided = exps / exps.sum(axis=1, keepdims=True, dtype="float32")
    assert not np.array_equal(tf.nn.softmax(logits).numpy(), divided)


@pytest.mark.parametrize("graph", [False, True])
def test_log_and_log1p_gradients_divide(graph):
    import tensorflow as tf

    x = tf.constant(positive_floats())

    def gradients(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            log, log1p = tf.math.log(x), tf.math.log1p(x)
        return tape.gradient(log, x), tape.gradient(log1p, x)

    if graph:
        gradients = tf.function(gradients)
    of_log, of_log1p = gradients(x)
    x = x.numpy()
    np.testing.assert_array_equal(of_log.numpy(), np.float32(1) / x)
    np.testing.assert_array_equal(
        of_log1p.numpy(), np.float32(1) / (np.float32(1) + x)
    )


def in_graph_or_eagerly(function, graph):
    import tensorflow as tf

    return tf.function(function) if graph else function


@pytest.mark.parametrize("graph", [False, True])
def test_a_sigmoid_outputs_cross_entropy_gradient_divides(graph):
    """Keras computes it from the logits, log1p(exp(-|z|)) among its terms;
    in a graph as fit_compiled runs it, the mean over the batch included."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(2)
    z = tf.constant(rng.normal(0, 4, (16, 1)).astype("float32"))
    y = (rng.random((16, 1)) < 0.5).astype("float32")

    def gradient(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            p = keras.activations.sigmoid(z)
            loss = tf.reduce_mean(keras.losses.binary_crossentropy(y, p))
        return tape.gradient(loss, z)

    got = in_graph_or_eagerly(gradient, graph)(z).numpy()
    # TensorFlow's sigmoid_cross_entropy_with_logits, differentiated by hand
    # in its own order of operations, with log1p(u)' = 1 / (1 + u) divided.
    zn = z.numpy()
    e = tf.exp(-tf.abs(z)).numpy()
    n = np.float32(1 / 16)
    d_log1p = (-n) / (-(np.float32(1) + e))
    sign = np.sign(zn).astype("float32")
    expected = (n * (zn > 0) - n * y) + d_log1p * e * -sign
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    # The factor itself must be that division, bit for bit.
    x = tf.constant(e)

    def log1p_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = tf.math.log1p(x) * n
        return tape.gradient(out, x)

    np.testing.assert_array_equal(
        in_graph_or_eagerly(log1p_gradient, graph)(x).numpy(), d_log1p
    )


def softmax_by_division(logits, axis=1):
    """TensorFlow's exp and sum, then NumPy's correctly rounded division."""
    import tensorflow as tf

    exps = tf.exp(logits - logits.max(axis=axis, keepdims=True)).numpy()
    sums = tf.reduce_sum(exps, axis=axis, keepdims=True).numpy()
    return exps / sums


@pytest.mark.parametrize("graph", [False, True])
def test_softmax_divides_and_keeps_its_logits_for_the_loss(graph):
    import keras

    logits = np.random.default_rng(1).normal(0, 4, (10_000, 10))
    logits = logits.astype("float32")
    expected = softmax_by_division(logits)
    out = in_graph_or_eagerly(keras.ops.softmax, graph)(logits)
    np.testing.assert_array_equal(out.numpy(), expected)
    flat = keras.ops.softmax(logits[:3], axis=None).numpy()
    np.testing.assert_array_equal(
        flat, softmax_by_division(logits[:3], axis=None)
    )
    layer = keras.layers.Activation("softmax")
    np.testing.assert_array_equal(layer(logits).numpy(), expected)
    # Keras' cross-entropy still works from the logits.
    out = keras.ops.softmax(logits)
    assert out._keras_logits is logits
    labels = np.eye(10, dtype="float32")[np.arange(10_000) % 10]
    np.testing.assert_array_equal(
        keras.losses.categorical_crossentropy(labels, out).numpy(),
        keras.losses.categorical_crossentropy(
            labels, logits, from_logits=True
        ).numpy(),
    )


@pytest.mark.parametrize("graph", [False, True])
def test_batch_normalization_divides(graph):
    import keras

    rng = np.random.default_rng(4)
    x = rng.normal(2, 3, (64, 20)).astype("float32")
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)
    gamma, beta, mean, variance = (
        rng.uniform(0.5, 2, 20).astype("float32") for _ in range(4)
    )
    layer.set_weights([gamma, beta, mean, variance])
    infer = in_graph_or_eagerly(lambda x: layer(x, training=False), graph)
    inv = np.float32(1) / np.sqrt(variance + np.float32(layer.epsilon))
    inv = inv * gamma
    np.testing.assert_array_equal(
        infer(x).numpy(), x * inv + (beta - mean * inv)
    )
    # In training it normalises by the batch's own moments: mean 0, sd 1.
    trained = layer(x, training=True).numpy()
    np.testing.assert_allclose(
        (trained - beta) / gamma, (x - x.mean(0)) / x.std(0), atol=2e-3
    )
