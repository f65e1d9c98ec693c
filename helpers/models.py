"""Model builders for the book's experiments.

Every chapter builds its networks through :func:`build_mlp`, whose keyword
arguments cover what the book varies: where the Dropout layers sit and their
rates, the max-norm limit, the layer widths, the optimizer and (for data with
more than two classes) the number of classes.  The three named builders are
the tutorial's configurations, with defaults that match it exactly (see
``chapters/`` for the same models written out in full, and
``tests/test_models.py`` for the test that keeps the two in step).
:func:`build_convnet` is the small convolutional network of the chapter on
when dropout helps, for 8x8 images given as rows of 64 pixels.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras
import numpy as np

from helpers.validation import check_int, check_rate, check_real

__all__ = [
    "N_FEATURES",
    "build_mlp",
    "build_baseline",
    "build_visible_dropout",
    "build_hidden_dropout",
    "build_convnet",
    "describe_model",
]

N_FEATURES = 60
OPTIMIZERS = ("sgd", "adam")


def _check_hidden_dropout(hidden_dropout, n_hidden: int) -> tuple[float, ...]:
    if isinstance(hidden_dropout, numbers.Real) and not isinstance(
        hidden_dropout, bool
    ):
        return (check_rate("hidden_dropout", hidden_dropout),) * n_hidden
    if isinstance(hidden_dropout, Sequence) and not isinstance(
        hidden_dropout, str
    ):
        if len(hidden_dropout) != n_hidden:
            raise ValueError(
                f"hidden_dropout={tuple(hidden_dropout)!r} has {len(hidden_dropout)} "
                f"rates but the network has {n_hidden} hidden layers"
            )
        return tuple(check_rate("hidden_dropout", r) for r in hidden_dropout)
    raise TypeError(
        f"hidden_dropout must be a rate or a sequence of rates, one per hidden "
        f"layer; got {hidden_dropout!r}"
    )


def _make_optimizer(optimizer: str, learning_rate, momentum: float):
    if optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=momentum
        )
    # Adam has no momentum argument: beta_1 plays that role, and the book uses
    # Adam's defaults for it.
    return keras.optimizers.Adam(learning_rate=learning_rate)


def build_mlp(
    *,
    hidden_units: Sequence[int] = (60, 30),
    input_dropout: float = 0.0,
    hidden_dropout: float | Sequence[float] = 0.0,
    max_norm: float | None = None,
    optimizer: str = "sgd",
    learning_rate: float
    | keras.optimizers.schedules.LearningRateSchedule = 0.01,
    momentum: float = 0.8,
    n_features: int = N_FEATURES,
    n_classes: int = 2,
) -> keras.Sequential:
    """Build and compile a classifier: binary for the Sonar data by default.

    Parameters
    ----------
    hidden_units
        Width of each hidden ``Dense`` layer (ReLU), in order.
    input_dropout
        Rate of a ``Dropout`` layer on the inputs ("visible" layer); 0 omits it.
    hidden_dropout
        Rate of the ``Dropout`` layer after each hidden layer: one rate for all,
        or one per hidden layer; a rate of 0 omits that layer.  The output layer
        never gets dropout.
    max_norm
        Limit of a ``MaxNorm`` kernel constraint on every hidden layer, or
        ``None`` for no constraint.
    optimizer
        ``"sgd"`` (with ``momentum``) or ``"adam"`` (``momentum`` unused).
    learning_rate
        A positive float or a Keras learning-rate schedule.
    momentum
        SGD momentum, in [0, 1).
    n_features
        Number of inputs.
    n_classes
        Number of classes.  2 (the default) gives one sigmoid output unit and
        binary cross-entropy; 3 or more give a softmax layer of ``n_classes``
        units and sparse categorical cross-entropy (integer labels
        ``0 .. n_classes - 1``).

    Returns
    -------
    keras.Sequential
        Compiled with the loss above and accuracy.

    Examples
    --------
    >>> model = build_mlp(hidden_units=(120, 60), hidden_dropout=0.2, max_norm=3.0)
    >>> [layer.__class__.__name__ for layer in model.layers]
    ['Dense', 'Dropout', 'Dense', 'Dropout', 'Dense']
    """
    # A 1-D NumPy array (say, widths or rates from np.linspace) is a sequence
    # in all but name.
    if isinstance(hidden_units, np.ndarray) and hidden_units.ndim == 1:
        hidden_units = hidden_units.tolist()
    if isinstance(hidden_dropout, np.ndarray) and hidden_dropout.ndim == 1:
        hidden_dropout = hidden_dropout.tolist()
    if isinstance(hidden_units, (str, bytes)) or not isinstance(
        hidden_units, Sequence
    ):
        raise TypeError(
            f"hidden_units must be a sequence of layer widths; got {hidden_units!r}"
        )
    if len(hidden_units) == 0:
        raise ValueError(
            "hidden_units must name at least one hidden layer; got ()"
        )
    widths = [
        check_int(f"hidden_units[{i}]", w, minimum=1)
        for i, w in enumerate(hidden_units)
    ]
    input_dropout = check_rate("input_dropout", input_dropout)
    rates = _check_hidden_dropout(hidden_dropout, len(widths))
    if max_norm is not None:
        max_norm = check_real(
            "max_norm", max_norm, minimum=0.0, inclusive=False
        )
    learning_rate, momentum = _check_common(
        optimizer, learning_rate, momentum
    )
    n_features = check_int("n_features", n_features, minimum=1)
    n_classes = check_int("n_classes", n_classes, minimum=2)

    layers: list[keras.layers.Layer] = [keras.Input(shape=(n_features,))]
    if input_dropout > 0:
        layers.append(keras.layers.Dropout(input_dropout))
    for width, rate in zip(widths, rates):
        constraint = (
            keras.constraints.MaxNorm(max_norm)
            if max_norm is not None
            else None
        )
        layers.append(
            keras.layers.Dense(
                width, activation="relu", kernel_constraint=constraint
            )
        )
        if rate > 0:
            layers.append(keras.layers.Dropout(rate))
    return _finish(
        layers, n_classes, _make_optimizer(optimizer, learning_rate, momentum)
    )


def _finish(layers: list, n_classes: int, optimizer) -> keras.Sequential:
    """Append the output layer for ``n_classes`` and compile with the matching loss."""
    if n_classes == 2:
        layers.append(keras.layers.Dense(1, activation="sigmoid"))
        loss = "binary_crossentropy"
    else:
        layers.append(keras.layers.Dense(n_classes, activation="softmax"))
        loss = "sparse_categorical_crossentropy"
    model = keras.Sequential(layers)
    model.compile(loss=loss, optimizer=optimizer, metrics=["accuracy"])
    return model


def _check_common(optimizer, learning_rate, momentum):
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}"
        )
    if not isinstance(
        learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ):
        learning_rate = check_real(
            "learning_rate", learning_rate, minimum=0.0, inclusive=False
        )
    momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0)
    if momentum == 1.0:
        raise ValueError("momentum must be in [0, 1); got 1.0")
    return learning_rate, momentum


def build_convnet(
    *,
    image_shape: Sequence[int] = (8, 8),
    filters: Sequence[int] = (16, 32),
    dense_units: int = 64,
    input_dropout: float = 0.0,
    spatial_dropout: float = 0.0,
    dense_dropout: float = 0.0,
    max_norm: float | None = None,
    n_classes: int = 10,
    optimizer: str = "adam",
    learning_rate: float
    | keras.optimizers.schedules.LearningRateSchedule = 0.001,
    momentum: float = 0.9,
) -> keras.Sequential:
    """Build and compile a small convolutional classifier for one-channel images.

    The network takes each image as a flat row of ``height * width`` pixels
    (so it fits the book's scikit-learn pipeline, scaler included) and
    reshapes it.  Then: an optional ``Dropout`` on the pixels; a 3x3
    convolution with ``filters[0]`` ReLU maps and 2x2 max pooling; a 3x3
    convolution with ``filters[1]`` maps; each convolution optionally
    followed by ``SpatialDropout2D`` (which drops whole feature maps, not
    single pixels); a ``Dense`` layer of ``dense_units`` ReLU units, optionally
    followed by ``Dropout``; the output layer (see :func:`build_mlp`'s
    ``n_classes``).

    Parameters
    ----------
    image_shape
        ``(height, width)`` of the images, each at least 4.
    filters
        Number of feature maps of the two convolutions.
    dense_units
        Width of the hidden ``Dense`` layer.
    input_dropout, spatial_dropout, dense_dropout
        Rates of the three kinds of dropout layer; 0 omits the layer.
    max_norm
        Limit of a ``MaxNorm`` constraint on the kernel of every convolution
        (the norm of each filter's weights) and of the hidden ``Dense`` layer,
        or ``None``.
    n_classes
        Number of classes, at least 2.
    optimizer, learning_rate, momentum
        As in :func:`build_mlp`; the default is Adam at its default rate.

    Returns
    -------
    keras.Sequential

    Examples
    --------
    >>> model = build_convnet(spatial_dropout=0.1, dense_dropout=0.5)
    >>> [layer.__class__.__name__ for layer in model.layers][:4]
    ['Reshape', 'Conv2D', 'SpatialDropout2D', 'MaxPooling2D']
    """
    if isinstance(image_shape, (str, bytes)) or not isinstance(
        image_shape, Sequence
    ):
        raise TypeError(
            f"image_shape must be a (height, width) pair; got {image_shape!r}"
        )
    if len(image_shape) != 2:
        raise ValueError(
            f"image_shape must be a (height, width) pair; got {tuple(image_shape)!r}"
        )
    height, width = (
        check_int(f"image_shape[{i}]", v, minimum=4)
        for i, v in enumerate(image_shape)
    )
    if (
        isinstance(filters, (str, bytes))
        or not isinstance(filters, Sequence)
        or len(filters) != 2
    ):
        raise TypeError(
            f"filters must be a pair of feature-map counts; got {filters!r}"
        )
    filters = [
        check_int(f"filters[{i}]", f, minimum=1)
        for i, f in enumerate(filters)
    ]
    dense_units = check_int("dense_units", dense_units, minimum=1)
    input_dropout = check_rate("input_dropout", input_dropout)
    spatial_dropout = check_rate("spatial_dropout", spatial_dropout)
    dense_dropout = check_rate("dense_dropout", dense_dropout)
    if max_norm is not None:
        max_norm = check_real(
            "max_norm", max_norm, minimum=0.0, inclusive=False
        )
    learning_rate, momentum = _check_common(
        optimizer, learning_rate, momentum
    )
    n_classes = check_int("n_classes", n_classes, minimum=2)

    def limit(axis):
        return (
            keras.constraints.MaxNorm(max_norm, axis=axis)
            if max_norm is not None
            else None
        )

    def convolution(n_maps):
        # A filter's weights span the kernel's first three axes (rows, columns,
        # input maps), so that is the vector max-norm limits.
        return keras.layers.Conv2D(
            n_maps,
            3,
            padding="same",
            activation="relu",
            kernel_constraint=limit([0, 1, 2]),
        )

    layers: list[keras.layers.Layer] = [
        keras.Input(shape=(height * width,)),
        keras.layers.Reshape((height, width, 1)),
    ]
    if input_dropout > 0:
        layers.append(keras.layers.Dropout(input_dropout))
    layers.append(convolution(filters[0]))
    if spatial_dropout > 0:
        layers.append(keras.layers.SpatialDropout2D(spatial_dropout))
    layers.append(keras.layers.MaxPooling2D(2))
    layers.append(convolution(filters[1]))
    if spatial_dropout > 0:
        layers.append(keras.layers.SpatialDropout2D(spatial_dropout))
    layers.append(keras.layers.Flatten())
    layers.append(
        keras.layers.Dense(
            dense_units, activation="relu", kernel_constraint=limit(0)
        )
    )
    if dense_dropout > 0:
        layers.append(keras.layers.Dropout(dense_dropout))
    return _finish(
        layers, n_classes, _make_optimizer(optimizer, learning_rate, momentum)
    )


# The named builders spell out their parameters (no **kwargs) because SciKeras
# passes extra arguments (meta, compile_kwargs, params) to any builder that
# accepts **kwargs, and because a reader should see each configuration's
# defaults at a glance.


def build_baseline(
    *,
    hidden_units: Sequence[int] = (60, 30),
    optimizer: str = "sgd",
    learning_rate=0.01,
    momentum: float = 0.8,
) -> keras.Sequential:
    """The tutorial's baseline: Dense 60 and 30 (ReLU), no dropout, SGD(0.01, momentum 0.8)."""
    return build_mlp(
        hidden_units=hidden_units,
        optimizer=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
    )


def build_visible_dropout(
    *,
    input_dropout: float = 0.2,
    max_norm: float | None = 3.0,
    hidden_units: Sequence[int] = (60, 30),
    optimizer: str = "sgd",
    learning_rate=0.1,
    momentum: float = 0.9,
) -> keras.Sequential:
    """The tutorial's visible-layer model: Dropout(0.2) on the inputs, max-norm 3 on
    the hidden layers, SGD(0.1, momentum 0.9)."""
    return build_mlp(
        hidden_units=hidden_units,
        input_dropout=input_dropout,
        max_norm=max_norm,
        optimizer=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
    )


def build_hidden_dropout(
    *,
    hidden_dropout: float | Sequence[float] = 0.2,
    max_norm: float | None = 3.0,
    hidden_units: Sequence[int] = (60, 30),
    optimizer: str = "sgd",
    learning_rate=0.1,
    momentum: float = 0.9,
) -> keras.Sequential:
    """The tutorial's hidden-layer model: Dropout(0.2) after each hidden layer,
    max-norm 3 on the hidden layers, SGD(0.1, momentum 0.9)."""
    return build_mlp(
        hidden_units=hidden_units,
        hidden_dropout=hidden_dropout,
        max_norm=max_norm,
        optimizer=optimizer,
        learning_rate=learning_rate,
        momentum=momentum,
    )


def _limit(constraint):
    if constraint is None:
        return None
    if isinstance(constraint, keras.constraints.MaxNorm):
        return float(constraint.max_value)
    return repr(constraint)


def describe_model(model: keras.Model) -> dict:
    """What defines one of the book's networks, as plain Python values.

    Two models with equal descriptions have the same layers in the same order
    (type, width, activation, dropout rate, max-norm limit), the same loss and
    metrics, and the same optimizer settings.  The tests use it to hold each
    chapter's written-out model and its builder in :mod:`helpers.models`
    together.

    Examples
    --------
    >>> describe_model(build_baseline())["layers"][0]
    ('Dense', 60, 'relu', None)
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model; got {type(model).__name__}"
        )
    layers = []
    for layer in model.layers:
        if isinstance(
            layer, (keras.layers.Dropout, keras.layers.SpatialDropout2D)
        ):
            layers.append((type(layer).__name__, float(layer.rate)))
        elif isinstance(layer, keras.layers.Dense):
            limit = _limit(layer.kernel_constraint)
            layers.append(
                ("Dense", int(layer.units), layer.activation.__name__, limit)
            )
        elif isinstance(layer, keras.layers.Conv2D):
            layers.append(
                (
                    "Conv2D",
                    int(layer.filters),
                    tuple(layer.kernel_size),
                    layer.padding,
                    layer.activation.__name__,
                    _limit(layer.kernel_constraint),
                )
            )
        elif isinstance(layer, keras.layers.MaxPooling2D):
            layers.append(("MaxPooling2D", tuple(layer.pool_size)))
        elif isinstance(layer, keras.layers.Reshape):
            layers.append(("Reshape", tuple(layer.target_shape)))
        else:
            layers.append((type(layer).__name__,))
    optimizer = model.optimizer
    optimizer_config = None
    if optimizer is not None:
        config = optimizer.get_config()
        keep = (
            "learning_rate",
            "momentum",
            "nesterov",
            "beta_1",
            "beta_2",
            "epsilon",
        )
        optimizer_config = {"class": type(optimizer).__name__}
        optimizer_config.update({k: config[k] for k in keep if k in config})
    return {
        "input_shape": tuple(model.inputs[0].shape[1:])
        if model.inputs
        else None,
        "layers": layers,
        "loss": getattr(model, "loss", None),
        "optimizer": optimizer_config,
    }
