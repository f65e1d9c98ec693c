"""Tests for helpers.models: the tutorial's three networks and build_mlp.

The expected architectures are written out here independently of the code,
from the tutorial (see /work/shared/reference/seed-facts.md):

* baseline: Dense 60 relu, Dense 30 relu, Dense 1 sigmoid; SGD(0.01, momentum 0.8);
* visible:  Dropout 0.2, Dense 60 relu maxnorm 3, Dense 30 relu maxnorm 3, Dense 1
  sigmoid; SGD(0.1, momentum 0.9);
* hidden:   Dense 60 relu maxnorm 3, Dropout 0.2, Dense 30 relu maxnorm 3, Dropout 0.2,
  Dense 1 sigmoid; SGD(0.1, momentum 0.9);

all with binary cross-entropy, accuracy, 60 inputs and Keras' default initialisers.
"""

from __future__ import annotations

import helpers  # noqa: F401  (first: it fixes TensorFlow's kernels before keras imports it)

# isort: split
import keras
import numpy as np
import pytest

from helpers.models import (
    N_FEATURES,
    build_baseline,
    build_convnet,
    build_hidden_dropout,
    build_mlp,
    build_visible_dropout,
    describe_model,
)


def describe(model: keras.Model) -> list[tuple]:
    """Each layer as a comparable tuple.

    Dense -> ("Dense", units, activation, max-norm limit or None);
    Dropout -> ("Dropout", rate).
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            rows.append(("Dropout", pytest.approx(layer.rate)))
        elif isinstance(layer, keras.layers.Dense):
            constraint = layer.kernel_constraint
            if constraint is None:
                limit = None
            else:
                assert isinstance(constraint, keras.constraints.MaxNorm), (
                    constraint
                )
                assert (
                    constraint.axis == 0
                )  # per unit: each unit's incoming weights
                limit = pytest.approx(constraint.max_value)
            rows.append(
                (
                    "Dense",
                    layer.units,
                    layer.get_config()["activation"],
                    limit,
                )
            )
        else:
            rows.append((type(layer).__name__,))
    return rows


BASELINE = [
    ("Dense", 60, "relu", None),
    ("Dense", 30, "relu", None),
    ("Dense", 1, "sigmoid", None),
]
VISIBLE = [
    ("Dropout", 0.2),
    ("Dense", 60, "relu", 3.0),
    ("Dense", 30, "relu", 3.0),
    ("Dense", 1, "sigmoid", None),
]
HIDDEN = [
    ("Dense", 60, "relu", 3.0),
    ("Dropout", 0.2),
    ("Dense", 30, "relu", 3.0),
    ("Dropout", 0.2),
    ("Dense", 1, "sigmoid", None),
]


def optimizer_settings(model):
    opt = model.optimizer
    return (
        type(opt),
        float(opt.learning_rate.numpy()),
        getattr(opt, "momentum", None),
    )


@pytest.mark.parametrize(
    "builder, layers, learning_rate, momentum",
    [
        (build_baseline, BASELINE, 0.01, 0.8),
        (build_visible_dropout, VISIBLE, 0.1, 0.9),
        (build_hidden_dropout, HIDDEN, 0.1, 0.9),
    ],
    ids=["baseline", "visible", "hidden"],
)
def test_named_builders_match_the_tutorial(
    builder, layers, learning_rate, momentum
):
    model = builder()
    assert describe(model) == layers
    opt_class, lr, mom = optimizer_settings(model)
    assert opt_class is keras.optimizers.SGD
    assert lr == pytest.approx(learning_rate, rel=1e-6)
    assert mom == pytest.approx(momentum)
    assert model.optimizer.nesterov is False
    config = model.get_compile_config()
    assert config["loss"] == "binary_crossentropy"
    assert config["metrics"] == ["accuracy"]
    assert model.input_shape == (None, 60)
    assert model.output_shape == (None, 1)
    # Keras' default initialisers, as in the 2022 tutorial (no kernel_initializer="normal").
    dense = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    for layer in dense:
        assert isinstance(
            layer.kernel_initializer, keras.initializers.GlorotUniform
        )
        assert isinstance(layer.bias_initializer, keras.initializers.Zeros)
        assert layer.use_bias
    # Each Dense layer is fed by the previous one: 60 -> 60 -> 30 -> 1.
    assert [tuple(layer.kernel.shape) for layer in dense] == [
        (60, 60),
        (60, 30),
        (30, 1),
    ]


def test_max_norm_is_only_on_hidden_dense_layers():
    for builder in (build_visible_dropout, build_hidden_dropout):
        dense = [
            layer
            for layer in builder().layers
            if isinstance(layer, keras.layers.Dense)
        ]
        assert all(
            isinstance(d.kernel_constraint, keras.constraints.MaxNorm)
            for d in dense[:-1]
        )
        assert all(d.kernel_constraint.max_value == 3.0 for d in dense[:-1])
        assert dense[-1].kernel_constraint is None, (
            "the output layer must not be constrained"
        )
        assert all(d.bias_constraint is None for d in dense)
    assert all(
        layer.kernel_constraint is None for layer in build_baseline().layers
    )


def test_n_features_constant_is_sonar_width():
    assert N_FEATURES == 60


def test_named_builders_pass_their_arguments_through():
    visible = build_visible_dropout(
        input_dropout=0.35, max_norm=None, hidden_units=(20,)
    )
    assert describe(visible) == [
        ("Dropout", 0.35),
        ("Dense", 20, "relu", None),
        ("Dense", 1, "sigmoid", None),
    ]
    hidden = build_hidden_dropout(hidden_dropout=(0.5, 0.1), max_norm=4.0)
    assert describe(hidden) == [
        ("Dense", 60, "relu", 4.0),
        ("Dropout", 0.5),
        ("Dense", 30, "relu", 4.0),
        ("Dropout", 0.1),
        ("Dense", 1, "sigmoid", None),
    ]
    baseline = build_baseline(learning_rate=0.05, momentum=0.0)
    assert optimizer_settings(baseline)[1:] == (pytest.approx(0.05), 0.0)
    adam = build_hidden_dropout(optimizer="adam", learning_rate=0.002)
    assert isinstance(adam.optimizer, keras.optimizers.Adam)


def test_build_mlp_defaults_are_the_baseline():
    model = build_mlp()
    assert describe(model) == BASELINE
    assert optimizer_settings(model) == (
        keras.optimizers.SGD,
        pytest.approx(0.01),
        0.8,
    )


def test_build_mlp_widths_and_per_layer_rates():
    model = build_mlp(
        hidden_units=(120, 60, 30),
        input_dropout=0.1,
        hidden_dropout=(
            0.5,
            0.0,
            0.25,
        ),  # a rate of 0 omits that layer's Dropout
        max_norm=4.5,
    )
    assert describe(model) == [
        ("Dropout", 0.1),
        ("Dense", 120, "relu", 4.5),
        ("Dropout", 0.5),
        ("Dense", 60, "relu", 4.5),
        ("Dense", 30, "relu", 4.5),
        ("Dropout", 0.25),
        ("Dense", 1, "sigmoid", None),
    ]


def test_build_mlp_single_rate_applies_to_every_hidden_layer():
    model = build_mlp(hidden_units=(8, 8, 8), hidden_dropout=0.3)
    assert [row[0] for row in describe(model)] == ["Dense", "Dropout"] * 3 + [
        "Dense"
    ]
    assert [row[1] for row in describe(model) if row[0] == "Dropout"] == [
        pytest.approx(0.3)
    ] * 3


def test_build_mlp_zero_rates_add_no_dropout_layers():
    model = build_mlp(input_dropout=0.0, hidden_dropout=0.0)
    assert not any(
        isinstance(layer, keras.layers.Dropout) for layer in model.layers
    )
    model = build_mlp(input_dropout=0, hidden_dropout=(0, 0))
    assert not any(
        isinstance(layer, keras.layers.Dropout) for layer in model.layers
    )


def test_build_mlp_without_max_norm_has_no_constraints():
    model = build_mlp(hidden_dropout=0.2, max_norm=None)
    assert all(
        getattr(layer, "kernel_constraint", None) is None
        for layer in model.layers
    )


def test_build_mlp_adam():
    model = build_mlp(optimizer="adam", learning_rate=0.003, momentum=0.5)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(
        0.003
    )


def test_build_mlp_accepts_a_learning_rate_schedule():
    schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=100, decay_rate=0.5
    )
    model = build_mlp(learning_rate=schedule, momentum=0.9)
    config = model.optimizer.get_config()["learning_rate"]
    assert config["class_name"] == "ExponentialDecay"
    assert config["config"]["initial_learning_rate"] == 0.1
    assert config["config"]["decay_rate"] == 0.5
    # The schedule is also accepted through the named builders.
    build_baseline(learning_rate=schedule)
    build_hidden_dropout(learning_rate=schedule, optimizer="adam")


def test_build_mlp_n_features_sets_the_input_width():
    model = build_mlp(n_features=7, hidden_units=(5,))
    assert model.input_shape == (None, 7)
    assert tuple(model.layers[0].kernel.shape) == (7, 5)


def test_build_mlp_accepts_numpy_numbers():
    model = build_mlp(
        hidden_units=(np.int64(12),),
        hidden_dropout=np.float64(0.2),
        max_norm=np.float32(2),
    )
    assert describe(model) == [
        ("Dense", 12, "relu", 2.0),
        ("Dropout", 0.2),
        ("Dense", 1, "sigmoid", None),
    ]


def test_built_model_outputs_probabilities():
    model = build_hidden_dropout()
    out = keras.ops.convert_to_numpy(
        model(np.random.default_rng(0).normal(size=(5, 60)), training=False)
    )
    assert out.shape == (5, 1)
    assert np.all((out > 0) & (out < 1))


def test_each_build_is_a_fresh_model():
    a, b = build_baseline(), build_baseline()
    assert a is not b
    assert a.optimizer is not b.optimizer


# --------------------------------------------------------------------------- invalid arguments


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"input_dropout": 1.0}, ValueError, "input_dropout"),
        ({"input_dropout": -0.1}, ValueError, "input_dropout"),
        ({"input_dropout": True}, TypeError, "input_dropout"),
        ({"input_dropout": float("nan")}, ValueError, "input_dropout"),
        ({"hidden_dropout": 1.0}, ValueError, "hidden_dropout"),
        ({"hidden_dropout": -0.2}, ValueError, "hidden_dropout"),
        ({"hidden_dropout": (0.2, 1.0)}, ValueError, "hidden_dropout"),
        (
            {"hidden_dropout": (0.2,)},
            ValueError,
            "hidden_dropout",
        ),  # 1 rate, 2 layers
        ({"hidden_dropout": (0.2, 0.2, 0.2)}, ValueError, "hidden_dropout"),
        ({"hidden_dropout": "0.2"}, TypeError, "hidden_dropout"),
        ({"hidden_dropout": None}, TypeError, "hidden_dropout"),
        ({"max_norm": 0}, ValueError, "max_norm"),
        ({"max_norm": 0.0}, ValueError, "max_norm"),
        ({"max_norm": -3.0}, ValueError, "max_norm"),
        ({"max_norm": float("inf")}, ValueError, "max_norm"),
        ({"max_norm": "3"}, TypeError, "max_norm"),
        ({"momentum": 1}, ValueError, "momentum"),
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"momentum": -0.1}, ValueError, "momentum"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": -0.01}, ValueError, "learning_rate"),
        ({"learning_rate": "0.01"}, TypeError, "learning_rate"),
        ({"hidden_units": ()}, ValueError, "hidden_units"),
        ({"hidden_units": []}, ValueError, "hidden_units"),
        ({"hidden_units": (60, 0)}, ValueError, "hidden_units"),
        ({"hidden_units": (60, -30)}, ValueError, "hidden_units"),
        ({"hidden_units": (60, 30.0)}, TypeError, "hidden_units"),
        ({"hidden_units": (60, True)}, TypeError, "hidden_units"),
        ({"hidden_units": 60}, TypeError, "hidden_units"),
        ({"hidden_units": "60"}, TypeError, "hidden_units"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"optimizer": "SGD"}, ValueError, "optimizer"),
        ({"n_features": 0}, ValueError, "n_features"),
        ({"n_features": 60.0}, TypeError, "n_features"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_build_mlp_rejects_invalid_arguments(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        build_mlp(**kwargs)


def test_invalid_optimizer_message_lists_the_choices():
    with pytest.raises(ValueError, match="sgd.*adam.*'nadam'"):
        build_mlp(optimizer="nadam")


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (build_visible_dropout, {"input_dropout": 1.0}),
        (build_visible_dropout, {"max_norm": 0}),
        (build_hidden_dropout, {"hidden_dropout": -0.5}),
        (build_hidden_dropout, {"momentum": 1}),
        (build_baseline, {"hidden_units": ()}),
    ],
)
def test_named_builders_validate_too(builder, kwargs):
    (argument,) = kwargs
    with pytest.raises(ValueError, match=argument):
        builder(**kwargs)


@pytest.mark.parametrize(
    "builder, keyword",
    [
        (build_mlp, "dropout"),
        (build_mlp, "loss"),
        (
            build_baseline,
            "hidden_dropout",
        ),  # the baseline has no dropout at all
        (build_baseline, "max_norm"),
        (build_visible_dropout, "hidden_dropout"),
        (build_hidden_dropout, "input_dropout"),
        (
            build_hidden_dropout,
            "meta",
        ),  # what SciKeras would pass to a **kwargs builder
    ],
)
def test_unknown_keyword_is_a_type_error(builder, keyword):
    with pytest.raises(TypeError, match=keyword):
        builder(**{keyword: 0.2})


def test_builders_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        build_mlp((60, 30))
    with pytest.raises(TypeError):
        build_baseline((60, 30))


def test_build_mlp_accepts_one_dimensional_numpy_arrays():
    model = build_mlp(
        hidden_units=np.array([8, 4]), hidden_dropout=np.linspace(0.1, 0.2, 2)
    )
    described = describe_model(model)["layers"]
    assert [layer[1] for layer in described if layer[0] == "Dense"] == [
        8,
        4,
        1,
    ]
    assert [
        layer[1] for layer in described if layer[0] == "Dropout"
    ] == pytest.approx([0.1, 0.2])
    with pytest.raises(TypeError, match="hidden_units"):
        build_mlp(hidden_units=np.array([[8, 4]]))


# --------------------------------------------------------------------------- more than two classes


def test_build_mlp_multiclass_has_softmax_and_sparse_loss():
    model = build_mlp(n_features=64, n_classes=10, hidden_units=(16,))
    assert describe(model)[-1] == ("Dense", 10, "softmax", None)
    assert describe_model(model)["loss"] == "sparse_categorical_crossentropy"
    out = keras.ops.convert_to_numpy(
        model(np.random.default_rng(0).normal(size=(4, 64)), training=False)
    )
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_build_mlp_two_classes_is_the_binary_network():
    assert describe_model(build_mlp(n_classes=2)) == describe_model(
        build_mlp()
    )


@pytest.mark.parametrize(
    "value, error", [(1, ValueError), (0, ValueError), (3.0, TypeError)]
)
def test_build_mlp_rejects_bad_n_classes(value, error):
    with pytest.raises(error, match="n_classes"):
        build_mlp(n_classes=value)


# --------------------------------------------------------------------------- build_convnet


def test_build_convnet_without_dropout():
    model = build_convnet()
    assert describe_model(model)["layers"] == [
        ("Reshape", (8, 8, 1)),
        ("Conv2D", 16, (3, 3), "same", "relu", None),
        ("MaxPooling2D", (2, 2)),
        ("Conv2D", 32, (3, 3), "same", "relu", None),
        ("Flatten",),
        ("Dense", 64, "relu", None),
        ("Dense", 10, "softmax", None),
    ]
    assert model.input_shape == (None, 64)
    assert isinstance(model.optimizer, keras.optimizers.Adam)


def test_build_convnet_places_each_kind_of_dropout():
    model = build_convnet(
        input_dropout=0.2,
        spatial_dropout=0.1,
        dense_dropout=0.5,
        max_norm=3.0,
        filters=(4, 6),
        dense_units=12,
        n_classes=3,
    )
    assert describe_model(model)["layers"] == [
        ("Reshape", (8, 8, 1)),
        ("Dropout", 0.2),
        ("Conv2D", 4, (3, 3), "same", "relu", 3.0),
        ("SpatialDropout2D", 0.1),
        ("MaxPooling2D", (2, 2)),
        ("Conv2D", 6, (3, 3), "same", "relu", 3.0),
        ("SpatialDropout2D", 0.1),
        ("Flatten",),
        ("Dense", 12, "relu", 3.0),
        ("Dropout", 0.5),
        ("Dense", 3, "softmax", None),
    ]


def test_build_convnet_max_norm_limits_each_filter():
    # A filter is a kernel[:, :, :, k] slice: after the constraint is applied to a
    # kernel with large weights, every filter's norm is at most the limit.
    model = build_convnet(max_norm=0.5, filters=(3, 5))
    conv = model.layers[1]
    big = (
        np.random.default_rng(0)
        .normal(size=conv.kernel.shape)
        .astype("float32")
        * 10
    )
    limited = keras.ops.convert_to_numpy(conv.kernel_constraint(big))
    norms = np.sqrt((limited**2).sum(axis=(0, 1, 2)))
    assert norms.shape == (3,)
    np.testing.assert_allclose(norms, 0.5, rtol=1e-4)


def test_spatial_dropout_drops_whole_feature_maps():
    model = build_convnet(spatial_dropout=0.5, filters=(8, 8))
    layer = next(
        candidate
        for candidate in model.layers
        if isinstance(candidate, keras.layers.SpatialDropout2D)
    )
    x = np.ones((2, 8, 8, 8), dtype="float32")
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_map = out.reshape(2, 64, 8)
    # Within one image and map, all 64 positions are kept (x2) or all dropped.
    assert np.all(per_map.min(axis=1) == per_map.max(axis=1))
    assert set(np.unique(per_map)) <= {0.0, 2.0}
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(x, training=False)), x
    )


def test_build_convnet_other_image_shape():
    model = build_convnet(image_shape=(6, 10), n_classes=2)
    assert model.input_shape == (None, 60)
    assert describe(model)[-1] == ("Dense", 1, "sigmoid", None)


@pytest.mark.parametrize(
    "kwargs, error, argument",
    [
        ({"image_shape": (8,)}, ValueError, "image_shape"),
        ({"image_shape": (8, 3)}, ValueError, "image_shape"),
        ({"image_shape": "8x8"}, TypeError, "image_shape"),
        ({"filters": (16,)}, TypeError, "filters"),
        ({"filters": (16, 0)}, ValueError, "filters"),
        ({"dense_units": 0}, ValueError, "dense_units"),
        ({"input_dropout": 1.0}, ValueError, "input_dropout"),
        ({"spatial_dropout": -0.1}, ValueError, "spatial_dropout"),
        ({"dense_dropout": True}, TypeError, "dense_dropout"),
        ({"max_norm": 0.0}, ValueError, "max_norm"),
        ({"n_classes": 1}, ValueError, "n_classes"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_build_convnet_rejects_invalid_arguments(kwargs, error, argument):
    with pytest.raises(error, match=argument):
        build_convnet(**kwargs)
