"""The book's fast training path.

``model.fit(X, y, epochs=300, batch_size=16)`` spends almost all of its time on
the machinery around the arithmetic: for each of the 300 epochs Keras sets up
a data iterator, runs callbacks and dispatches every one of the ~3,500 steps
from Python.  The networks here are tiny, so that overhead is ~95% of the time.

:func:`fit_compiled` trains the *same* compiled Keras model with the *same*
``train_step`` (forward pass with dropout active, loss, gradients, optimizer
update, max-norm constraints, metric updates), over the same schedule of
batches: a fresh shuffle of the training rows every epoch, batches of
``batch_size`` with the last, partial batch of each epoch kept.  What changes
is the driver: the whole run, all epochs and steps, is one TensorFlow graph
(a ``tf.function`` holding two nested ``while`` loops), so Python is entered
once per fit instead of once per step.  The appendix "Why the book's code is
fast" measures the difference.

The graph is deliberately not XLA-compiled (``jit_compile=False``): XLA makes
the no-dropout baseline's training loop faster but takes about a second to
compile per fit, and runs models with Dropout layers several times slower
than the plain graph (its CPU random-number kernels are slow), so it loses
overall.  Measured for 300-epoch fits on 187 rows, one thread: session 1
found dropout models about five times slower; session 12 (Intel Xeon) found
the baseline 0.12 s against 0.5-0.8 s warm after 0.8 s of compiling, and the
visible- and hidden-dropout models 2.3-2.7 and 2.6-4 times slower
(``DRIVER_JIT`` switch patched into ``_make_driver``, not kept).  For the
convolutional networks of chapter 7 it was 1.4-2.3 times slower warm.

:class:`FastKerasClassifier` puts that driver behind SciKeras'
``KerasClassifier`` interface, so chapters keep the tutorial's scikit-learn
workflow (a ``Pipeline`` with a ``StandardScaler`` and the classifier).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import random
from collections import OrderedDict, defaultdict

import keras
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from helpers import lanes
from helpers.compat import KerasClassifier
from helpers.validation import check_int, check_seed

__all__ = [
    "fit_compiled",
    "learning_curves",
    "epoch_orders",
    "FastKerasClassifier",
    "make_classifier",
    "TrainOnFraction",
]


def seed_keras(seed: int) -> None:
    """Seed what a Keras 3 model draws from, as ``keras.utils.set_random_seed`` does,
    but leave TensorFlow's global seed alone.

    Keras 3 draws every initializer's and ``Dropout`` layer's default seed
    from Python's ``random`` and, on TensorFlow, runs only stateless random
    ops, so TensorFlow's global seed has no effect on the book's networks
    (tests/test_training.py builds them both ways and compares the weights).
    Setting it is not free, though: ``tf.random.set_seed`` clears TensorFlow's
    cache of eager kernels, so every eager op that follows (each variable
    Keras creates, each prediction) instantiates its kernel again.  Done
    before every fit, that was about half the time of building a network and
    a large part of a lane fit's fixed cost (measured in session 9: 49 ms to
    build the tutorial's network after ``set_random_seed``, 26 ms after this).
    Uses Keras' private global-state names (keras 3.x, pinned); the test above
    fails if they change meaning.
    """
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED

    seed = check_seed("seed", seed)
    global_state.set_global_attribute(GLOBAL_RANDOM_SEED, seed)
    # The global SeedGenerator (keras.random calls without a seed) is made
    # anew from that seed when next used.
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def epoch_orders(n_samples: int, epochs: int, seed: int | None) -> np.ndarray:
    """The order in which each epoch visits the training rows.

    Returns an ``(epochs, n_samples)`` array whose row ``e`` is a fresh random
    permutation of ``range(n_samples)``, drawn from NumPy's generator seeded
    with ``seed`` (fresh entropy when ``seed`` is None).
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    epochs = check_int("epochs", epochs, minimum=1)
    if seed is not None:
        seed = check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    return np.stack(
        [rng.permutation(n_samples) for _ in range(epochs)]
    ).astype(np.int32)


class _DropDriverRetracingWarning(logging.Filter):
    """Keep TensorFlow's "triggered tf.function retracing" warning about our
    training functions quiet.

    Every new network structure (and every model that cannot be cached, see
    ``_driver_for``) traces a new driver, by design; a chapter comparing many
    configurations, such as chapter 7, would otherwise show the warning
    (meant for functions retraced by accident in a loop) from the sixth
    structure on.  Warnings about any other function still get through.
    """

    OURS = ("_make_driver",)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "triggered tf.function retracing" in message
            and any(name in message for name in self.OURS)
        )


logging.getLogger("tensorflow").addFilter(_DropDriverRetracingWarning())


def _make_driver(
    model: keras.Model, n_samples: int, batch_size: int, names: list[str]
):
    import tensorflow as tf

    n_full, remainder = divmod(n_samples, batch_size)

    def step(x, y, index):
        model.train_step((tf.gather(x, index), tf.gather(y, index)))

    # One graph runs every epoch: full batches of `batch_size` in a while loop,
    # then the epoch's last, partial batch of `remainder` rows.
    @tf.function(jit_compile=False)
    def run(x, y, orders):
        epochs = tf.shape(orders)[0]
        history = tuple(
            tf.TensorArray(tf.float32, size=epochs) for _ in names
        )

        def one_epoch(e, history):
            # fit() reports each epoch's running means from zero, as here.
            for metric in model.metrics:
                metric.reset_state()
            order = orders[e]

            def one_batch(b):
                step(x, y, tf.slice(order, [b * batch_size], [batch_size]))
                return (b + 1,)

            tf.while_loop(lambda b: b < n_full, one_batch, (tf.constant(0),))
            if remainder:
                step(x, y, order[n_full * batch_size :])
            logs = model.get_metrics_result()
            history = tuple(
                h.write(e, tf.cast(logs[name], tf.float32))
                for h, name in zip(history, names)
            )
            return e + 1, history

        _, history = tf.while_loop(
            lambda e, _: e < epochs, one_epoch, (tf.constant(0), history)
        )
        return tuple(h.stack() for h in history)

    return run


# Tracing a driver costs more than a 300-epoch run of it, and TensorFlow never
# frees a traced while-loop graph (about 9 MB per fit, enough to make joblib's
# workers restart themselves every few dozen folds).  So each process keeps one
# driver per network *structure* (layers, optimizer, loss, metrics, data
# size), traced once on a private template model.  Fitting another model of
# the same structure copies its state (weights, optimizer slots, dropout seed
# states) into the template, runs the driver, and copies the trained state
# back: the same computation, as tests/test_training.py checks bit for bit.
_DRIVERS: OrderedDict = OrderedDict()
_MAX_DRIVERS = 16


def _without_names(config):
    if isinstance(config, dict):
        return {
            k: _without_names(v) for k, v in config.items() if k != "name"
        }
    if isinstance(config, list):
        return [_without_names(v) for v in config]
    return config


def _structure_key(
    model: keras.Model, n_samples: int, batch_size: int, names: list[str]
):
    try:
        structure = [
            type(model).__name__,
            _without_names(model.get_config()),
            _without_names(model.get_compile_config()),
            n_samples,
            batch_size,
            names,
        ]
        return json.dumps(structure, sort_keys=True)
    except (NotImplementedError, TypeError, ValueError):
        return None  # not serialisable: trace a driver for this model alone


def _state(model: keras.Model) -> list:
    # Metric variables travel too, so that the caller's model reports the last
    # epoch's metrics after training, as it would after fit().
    return [
        *model.trainable_variables,
        *model.non_trainable_variables,
        *model.optimizer.variables,
        *model.metrics_variables,
    ]


def build_training_state(model: keras.Model, X_batch, y_batch) -> None:
    """Create what ``fit`` creates before its first step: the optimizer's
    slots and the loss and metric trackers.

    Keras does it with ``model._symbolic_build``, which traces the model, its
    loss and its metrics to learn the shapes of the predictions, about 50 ms
    per network here and a third of a lane fit's fixed cost.  A built model
    with one declared output already knows that shape, so the trackers are
    built from it directly; the variables are the same
    (tests/test_training.py checks names, shapes and the trained result).
    Any other model takes Keras' way.
    """
    outputs = getattr(model, "outputs", None)
    if not (model.built and outputs and len(outputs) == 1):
        model._symbolic_build(data_batch=(X_batch, y_batch))
        return
    y_pred = keras.KerasTensor(
        (len(X_batch), *outputs[0].shape[1:]), dtype=outputs[0].dtype
    )
    y_true = keras.KerasTensor(
        np.shape(y_batch),
        dtype=keras.backend.standardize_dtype(y_batch.dtype),
    )
    if (
        model._compile_metrics is not None
        and not model._compile_metrics.built
    ):
        model._compile_metrics.build(y_true, y_pred)
    if model._compile_loss is not None and not model._compile_loss.built:
        model._compile_loss.build(y_true, y_pred)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model._post_build()


def _copy_state(source: keras.Model, target: keras.Model) -> None:
    source_state, target_state = _state(source), _state(target)
    if [tuple(v.shape) for v in source_state] != [
        tuple(v.shape) for v in target_state
    ]:
        raise RuntimeError(
            "cached training driver does not match the model's variables"
        )
    for src, dst in zip(source_state, target_state):
        dst.assign(src)


def _driver_for(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    names: list[str],
):
    """Return ``(template, driver)``: a cached driver and the model it trains."""
    n_samples = len(X)
    key = _structure_key(model, n_samples, batch_size, names)
    if key is None:
        return model, _make_driver(model, n_samples, batch_size, names)
    if key in _DRIVERS:
        _DRIVERS.move_to_end(key)
        return _DRIVERS[key]
    template = keras.models.clone_model(model)
    template.compile_from_config(model.get_compile_config())
    template._symbolic_build(data_batch=(X[:batch_size], y[:batch_size]))
    _DRIVERS[key] = (
        template,
        _make_driver(template, n_samples, batch_size, names),
    )
    while len(_DRIVERS) > _MAX_DRIVERS:
        _DRIVERS.popitem(last=False)
    return _DRIVERS[key]


@contextlib.contextmanager
def _graph_optimizer_off():
    """Run without TensorFlow's graph optimizer (Grappler), restoring its settings after.

    Grappler rewrites every new graph before its first run.  For a driver
    that is traced once per fit and runs once, that costs more than it saves:
    measured here, a 300-epoch fit of the baseline took 0.56 s instead of
    0.81 s, and of the hidden-dropout model 0.79 s instead of 1.26 s.
    """
    import tensorflow as tf

    saved = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": True}
    )
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options(
            {
                "disable_meta_optimizer": saved.get(
                    "disable_meta_optimizer", False
                )
            }
        )


def fit_compiled(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int | None = None,
) -> dict[str, list[float]]:
    """Train a compiled Keras model as ``model.fit(X, y, epochs, batch_size)`` does, fast.

    Parameters
    ----------
    model
        A compiled ``keras.Model``.
    X, y
        Training data; ``y`` as ``fit`` would take it.
    epochs, batch_size
        As in ``fit``: each epoch reshuffles the rows and the last, partial
        batch is kept.
    seed
        Seeds the epoch shuffles (:func:`epoch_orders`).  Weight initialisation
        and dropout masks follow Keras' own seeding
        (``keras.utils.set_random_seed``).

    Returns
    -------
    dict
        One list per metric (``"loss"``, and ``"accuracy"`` for the book's
        models) with one value per epoch, as in ``fit``'s ``History.history``.

    Examples
    --------
    >>> from helpers.models import build_baseline
    >>> model = build_baseline()
    >>> X = np.random.default_rng(0).random((40, 60), dtype=np.float32)
    >>> y = (X[:, 0] > 0.5).astype("float32")
    >>> history = fit_compiled(model, X, y, epochs=3, batch_size=16, seed=0)
    >>> len(history["loss"])
    3
    """
    return _train(
        model, X, y, epochs=epochs, batch_size=batch_size, seed=seed
    )


def learning_curves(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int | None = None,
    held_out: dict | None = None,
) -> dict[str, list[float]]:
    """Train as :func:`fit_compiled` does, scoring the model with dropout off after every epoch.

    The training is :func:`fit_compiled`'s, step for step: the same
    shuffles, batches and dropout masks, so the trained weights are the same
    bits (tests/test_training.py).  After each epoch the model as it stands
    predicts each set of ``held_out`` in inference mode (dropout off), as
    ``fit(validation_data=...)`` does for its one validation set.  That
    costs two compiled calls per epoch (training, then scoring every set)
    instead of one call per fit: 300 epochs of the hidden-dropout network on
    156 Sonar rows, scored on the training and validation rows, took 1.3 s
    here, against 25 s for ``fit`` with a scoring callback (session 18,
    Intel Xeon).

    Parameters
    ----------
    model, X, y, epochs, batch_size, seed
        As in :func:`fit_compiled`.
    held_out
        ``{name: (X_set, y_set)}``: sets to score after each epoch (the
        training rows themselves may be one of them).  The model must have
        been compiled with a loss Keras can look up by name or function, and
        have one output: one sigmoid unit (labels 0/1) or one unit per class
        (integer labels).

    Returns
    -------
    dict
        ``fit_compiled``'s history (``"loss"`` and ``"accuracy"``, averaged
        over each epoch's batches with dropout on), plus ``"{name}_loss"``
        and ``"{name}_accuracy"`` for each held-out set, one value per epoch.

    Examples
    --------
    >>> from helpers.models import build_baseline
    >>> X = np.random.default_rng(0).random((40, 60), dtype=np.float32)
    >>> y = (X[:, 0] > 0.5).astype("float32")
    >>> curves = learning_curves(
    ...     build_baseline(), X[:30], y[:30], epochs=3, batch_size=16,
    ...     seed=0, held_out={"val": (X[30:], y[30:])},
    ... )
    >>> sorted(curves), len(curves["val_loss"])
    (['accuracy', 'loss', 'val_accuracy', 'val_loss'], 3)
    """
    held_out = {} if held_out is None else held_out
    if not isinstance(held_out, dict):
        raise TypeError(
            "held_out must be a dict {name: (X, y)}; got "
            f"{type(held_out).__name__}"
        )
    sets = {}
    for name, pair in held_out.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"held_out's names must be non-empty strings; got {name!r}"
            )
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(
                f"held_out[{name!r}] must be a pair (X, y); got "
                f"{type(pair).__name__}"
            )
        X_set = np.asarray(pair[0], dtype=np.float32)
        y_set = np.asarray(pair[1])
        if X_set.ndim != 2 or len(X_set) == 0 or len(y_set) != len(X_set):
            raise ValueError(
                f"held_out[{name!r}] must be a non-empty 2-D X and a y with "
                f"one label per row; got shapes {X_set.shape} and "
                f"{y_set.shape}"
            )
        sets[name] = (X_set, y_set)
    try:
        loss = keras.losses.get(getattr(model, "loss", None))
    except (ValueError, TypeError):
        loss = None
    if loss is None and getattr(model, "compiled", False):
        raise ValueError(
            "learning_curves needs a model compiled with a loss Keras can "
            f"look up by name or function; got {model.loss!r}"
        )
    curves = defaultdict(list)
    inputs = tuple(X_set for X_set, _ in sets.values())
    labels = tuple(
        y_set.astype(np.float32).reshape(len(y_set), -1)
        for _, y_set in sets.values()
    )
    scorer = []

    def score(trained):
        # One compiled call per epoch for every set: called eagerly, the
        # model and its loss cost about 10 ms per set and epoch, four
        # times the epoch's training.
        if not scorer:
            import tensorflow as tf

            @tf.function(jit_compile=False)
            def predict_and_score(inputs, labels):
                outputs = []
                for X_set, y_set in zip(inputs, labels):
                    p = trained(X_set, training=False)
                    if p.shape[-1] != 1:
                        y_set = y_set[:, 0]
                    outputs.append((keras.ops.mean(loss(y_set, p)), p))
                return outputs

            scorer.append(predict_and_score)
        outputs = scorer[0](inputs, labels)
        for name, (_, y_set), (value, p) in zip(sets, sets.values(), outputs):
            p = p.numpy()
            guess = p[:, 0] > 0.5 if p.shape[-1] == 1 else p.argmax(axis=1)
            curves[f"{name}_loss"].append(float(value))
            curves[f"{name}_accuracy"].append(
                float(np.mean(guess == y_set.reshape(-1)))
            )

    history = _train(
        model,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        after_epoch=score,
        caller="learning_curves",
    )
    return {**history, **curves}


def _train(
    model,
    X,
    y,
    *,
    epochs,
    batch_size,
    seed,
    after_epoch=None,
    caller="fit_compiled",
):
    """fit_compiled's work; ``after_epoch(trained)`` is called after every epoch."""
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"{caller} drives a TensorFlow graph; the Keras backend is "
            f"{keras.backend.backend()!r}. Use model.fit on other backends."
        )
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(
            f"X must be a non-empty 2-D array; got shape {X.shape}"
        )
    if len(y) != len(X):
        raise ValueError(
            f"X and y must have the same number of rows; got {len(X)} and {len(y)}"
        )
    if not getattr(model, "compiled", False):
        raise ValueError(
            f"{caller} needs a compiled model (call model.compile first)"
        )

    # Create the optimizer's and metrics' variables outside the compiled
    # function, as fit() does before its first step.
    batch_size = min(batch_size, len(X))
    build_training_state(model, X[:batch_size], y[:batch_size])
    names = list(model.get_metrics_result())
    orders = epoch_orders(len(X), epochs, seed)
    template, run = _driver_for(model, X, y, batch_size, names)
    if template is not model:
        _copy_state(model, template)
    with _graph_optimizer_off():
        if after_epoch is None:
            history = [values.numpy() for values in run(X, y, orders)]
        else:
            # One epoch per call of the same graph: the same steps, shuffles
            # and dropout masks as one call over every epoch.
            per_epoch = []
            for e in range(epochs):
                per_epoch.append(
                    [v.numpy() for v in run(X, y, orders[e : e + 1])]
                )
                after_epoch(template)
            history = [np.concatenate(v) for v in zip(*per_epoch)]
    if template is not model:
        _copy_state(template, model)
    return {name: values.tolist() for name, values in zip(names, history)}


class FastKerasClassifier(KerasClassifier):
    """SciKeras ``KerasClassifier`` trained by the book's fast paths.

    Takes the same arguments as ``scikeras.wrappers.KerasClassifier``.  With
    an integer ``random_state`` one seed fixes the weight initialisation, the
    dropout masks and the epoch shuffles, so a fit is reproducible.  It does
    so through :func:`seed_keras`, which reseeds Python's ``random``,
    NumPy's global generator and Keras' global seed at every fit.

    A multi-layer perceptron (``Dense`` and ``Dropout`` layers) or a small
    convolutional network (see :func:`helpers.lanes.lane_plan`) is trained
    as a *lane* (``helpers/lanes.py``): inside ``cross_validate_model`` the
    folds' networks train together, and a fit on its own gives the same
    numbers.  A convolutional lane network also predicts through the lanes'
    forward pass (:func:`helpers.lanes.predict_lanes`), which gives the same
    numbers on every CPU, as TensorFlow's convolution kernels do not.  Any
    other network is trained by :func:`fit_compiled`.  ``lanes=False`` sends
    every network to :func:`fit_compiled` (whose dropout masks are Keras'
    own, so the numbers differ from a lane's by the luck of the masks) and to
    Keras' own prediction.

    On a Keras backend other than TensorFlow it trains with Keras' own
    ``fit`` instead (same schedule, slower).

    Only what the book uses is supported: ``fit`` without sample weights or
    warm starts, ``batch_size`` and ``epochs``; anything else routed to
    ``fit`` raises rather than being ignored.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from helpers.models import build_baseline
    >>> clf = make_pipeline(StandardScaler(), FastKerasClassifier(
    ...     model=build_baseline, epochs=300, batch_size=16, verbose=0, random_state=7))
    """

    def __init__(self, model=None, *, lanes: bool = True, **kwargs):
        super().__init__(model=model, **kwargs)
        self.lanes = lanes

    def _build_keras_model(self):
        if self.random_state is None:
            return super()._build_keras_model()
        seed_keras(check_seed("random_state", self.random_state))
        seeded_state = random.getstate(), np.random.get_state()
        # SciKeras seeds once more around the build (its
        # tensorflow_random_state, when _random_state is set), which calls
        # tf.random.set_seed (see seed_keras for why not) and switches op
        # determinism on and, if helpers/compat.py has done its part, off.
        # Its net effect on Python's and NumPy's generators, to leave them
        # as seeded, is kept.
        scikeras_seed, self._random_state = self._random_state, None
        try:
            return super()._build_keras_model()
        finally:
            self._random_state = scikeras_seed
            random.setstate(seeded_state[0])
            np.random.set_state(seeded_state[1])

    # fit() settings SciKeras accepts that the compiled driver does not
    # implement, with the values that mean "not used".
    _UNSUPPORTED_FIT_SETTINGS = {
        "validation_split": lambda v: v in (None, 0, 0.0),
        "validation_batch_size": lambda v: v is None,
        "validation_steps": lambda v: v is None,
        "validation_freq": lambda v: v in (None, 1),
        "shuffle": lambda v: v is True,
        "class_weight": lambda v: v is None,
        "sample_weight": lambda v: v is None,
        "initial_epoch": lambda v: v in (None, 0),
        "callbacks": lambda v: (
            v is None or (isinstance(v, (list, tuple, dict)) and not v)
        ),
    }

    def _check_fit_settings(self) -> None:
        for key, value in self.get_params(deep=False).items():
            name = key.removeprefix("fit__")
            if key.startswith(("callbacks__", "fit__callbacks__")):
                name, value = "callbacks", [value]
            unused = self._UNSUPPORTED_FIT_SETTINGS.get(name)
            if unused is not None and not unused(value):
                raise ValueError(
                    f"FastKerasClassifier does not support {key}={value!r}: it trains "
                    "with helpers.fit_compiled, which implements only epochs, batch_size "
                    "and shuffling. Use scikeras.wrappers.KerasClassifier (or "
                    "helpers.KerasClassifier) for this setting."
                )

    def _fit_keras_model(
        self, X, y, sample_weight, warm_start, epochs, initial_epoch, **kwargs
    ):
        self._check_fit_settings()
        if sample_weight is not None:
            raise ValueError(
                "FastKerasClassifier does not support sample_weight"
            )
        if warm_start or initial_epoch:
            raise ValueError(
                "FastKerasClassifier does not support warm starts or partial_fit"
            )
        if kwargs:
            raise TypeError(
                f"FastKerasClassifier.fit got unsupported arguments {sorted(kwargs)}"
            )
        if keras.backend.backend() != "tensorflow":
            # The compiled driver is a TensorFlow graph.  On other backends
            # (the appendix times JAX) Keras' own fit runs the same schedule.
            return super()._fit_keras_model(
                X,
                y,
                sample_weight=None,
                warm_start=False,
                epochs=epochs,
                initial_epoch=0,
            )
        batch_size = self.batch_size if self.batch_size is not None else 32
        seed = (
            None
            if self.random_state is None
            else check_seed("random_state", self.random_state)
        )
        if self.lanes and lanes.lane_plan(self.model_) is not None:
            return self._fit_as_lane(X, y, epochs, batch_size, seed)
        history = fit_compiled(
            self.model_, X, y, epochs=epochs, batch_size=batch_size, seed=seed
        )
        self.history_ = defaultdict(list, history)
        return self

    def _fit_as_lane(self, X, y, epochs, batch_size, seed):
        """Train a multi-layer perceptron as a lane (helpers/lanes.py).

        Inside :func:`helpers.lanes.deferred_fits` (as ``cross_validate_model``
        runs its folds) the network is only registered, and trained with the
        others when the block ends; otherwise it is trained now.  Either way
        the result is the same.
        """
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31 - 1))

        def done(history):
            self.history_ = defaultdict(list, history)

        job = lanes.make_job(
            self.model_,
            X,
            y,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            on_done=done,
        )
        self.history_ = defaultdict(list)
        pending = lanes.pending_fits()
        if lanes.replay(job):
            pass  # trained before, as a lane among others (helpers.search)
        elif pending is not None:
            pending.append(job)
        else:
            lanes.train_jobs([job])
        return self

    def _predict_raw(self, X, **kwargs):
        # model.predict() traces a new predict function for every fitted model
        # (so once per fold, with a retracing warning from the sixth) and
        # splits X into batches; for a few hundred rows one direct call in
        # inference mode computes the same probabilities, faster and quietly.
        if kwargs:
            raise TypeError(
                f"FastKerasClassifier.predict got unsupported arguments {sorted(kwargs)}"
            )
        if not self.initialized_:
            raise NotFittedError(
                "FastKerasClassifier must be fitted before predicting"
            )
        X, _ = self._validate_data(X=X, y=None)
        X = self.feature_encoder_.transform(X)
        if self.lanes and lanes.has_convolutions(
            lanes.lane_plan(self.model_)
        ):
            # TensorFlow's convolution kernels round differently on different
            # CPUs; the lanes' forward pass does not (lanes.predict_lanes).
            return lanes.predict_lanes(self.model_, X)
        return keras.ops.convert_to_numpy(self.model_(X, training=False))


def make_classifier(
    build_fn, *, epochs: int = 300, batch_size: int = 16, **model_params
):
    """The tutorial's pipeline: ``StandardScaler``, then the Keras model, trained fast.

    Parameters
    ----------
    build_fn
        A model builder such as :func:`helpers.models.build_baseline`.
    epochs, batch_size
        Training length and batch size (the tutorial's 300 and 16 by default).
    **model_params
        Passed to ``build_fn`` (through SciKeras' ``model__`` routing), for
        example ``input_dropout=0.3``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"scale"`` and ``"model"``.  The scaler is fitted on the
        training rows of each fold only, because it sits inside the pipeline.

    Examples
    --------
    >>> from helpers.models import build_hidden_dropout
    >>> pipeline = make_classifier(build_hidden_dropout, hidden_dropout=0.3)
    >>> pipeline.get_params()["model__model__hidden_dropout"]
    0.3
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if not callable(build_fn):
        raise TypeError(
            f"build_fn must be a model-building function; got {build_fn!r}"
        )
    # Catch a misspelt model parameter here rather than at the first fit,
    # inside a worker process, ten times over.
    parameters = inspect.signature(build_fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(model_params) - set(parameters))
        if unknown:
            raise TypeError(
                f"{getattr(build_fn, '__name__', build_fn)!s} takes no parameter(s) "
                f"{', '.join(unknown)}; it takes {', '.join(parameters) or 'none'}"
            )
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    classifier = FastKerasClassifier(
        model=build_fn,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        **{f"model__{key}": value for key, value in model_params.items()},
    )
    return Pipeline([("scale", StandardScaler()), ("model", classifier)])


class TrainOnFraction(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on a stratified fraction of the rows it is given.

    Inside cross-validation this shrinks every training fold to ``fraction``
    of its rows while the held-out fold keeps all of its own, so smaller
    training sets are scored on as many test rows as the full one.  Which
    rows are kept is fixed by ``random_state``; ``cross_validate_model`` seeds
    it per fold like every other ``random_state``.

    Parameters
    ----------
    estimator
        A scikit-learn classifier or pipeline (cloned at each fit).
    fraction
        Share of the training rows kept, in (0, 1]; 1 keeps them all.
    random_state
        Seed of the stratified draw.

    Examples
    --------
    >>> from helpers.models import build_baseline
    >>> small = TrainOnFraction(make_classifier(build_baseline), fraction=0.25)
    >>> small.get_params()["fraction"]
    0.25
    """

    def __init__(
        self,
        estimator,
        fraction: float = 1.0,
        random_state: int | None = None,
    ):
        self.estimator = estimator
        self.fraction = fraction
        self.random_state = random_state

    def fit(self, X, y):
        from sklearn.base import clone
        from sklearn.model_selection import train_test_split

        from helpers.validation import check_real

        fraction = check_real(
            "fraction",
            self.fraction,
            minimum=0.0,
            inclusive=False,
            maximum=1.0,
        )
        seed = (
            None
            if self.random_state is None
            else check_seed("random_state", self.random_state)
        )
        X, y = np.asarray(X), np.asarray(y)
        if len(X) != len(y):
            raise ValueError(
                f"X and y must have the same number of rows; got {len(X)} and {len(y)}"
            )
        if fraction < 1.0:
            n_classes = len(np.unique(y))
            if round(fraction * len(y)) < n_classes:
                raise ValueError(
                    f"fraction={fraction} keeps {round(fraction * len(y))} of {len(y)} rows, "
                    f"fewer than the {n_classes} classes"
                )
            X, _, y, _ = train_test_split(
                X, y, train_size=fraction, stratify=y, random_state=seed
            )
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        self.n_train_ = len(y)
        return self

    def predict(self, X):
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)
