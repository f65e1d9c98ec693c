"""Dropout written out: Keras' inverted scheme, the paper's scheme, a layer, MC dropout.

Two ways of making a network's expected activations the same in training and
at prediction time appear in the literature, and the book compares them:

* **inverted dropout** (:func:`inverted_dropout`, and what ``keras.layers.Dropout``
  does): while training, each unit is kept with probability ``1 - rate`` and a
  kept unit is multiplied by ``1 / (1 - rate)``; at inference the layer is the
  identity, so a trained model needs no change to serve predictions;
* **the paper's scheme** (:func:`paper_dropout`, Srivastava et al., 2014): while
  training, units are only masked; at inference every unit is multiplied by
  the retention probability ``p = 1 - rate`` (in the paper, the outgoing
  weights are).

:class:`InvertedDropout` is the first scheme as a Keras layer written from
scratch, and :func:`mc_predict` keeps dropout switched on at prediction time
(Monte Carlo dropout, Gal and Ghahramani, 2016).

The two NumPy functions draw their masks the same way (unit kept when a
uniform draw on [0, 1) is at least ``rate``), so the same ``rng`` seed gives
both the same mask; the chapter relies on that to compare the schemes unit
for unit.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from helpers.validation import check_int, check_rate, check_seed

__all__ = [
    "InvertedDropout",
    "inverted_dropout",
    "mc_predict",
    "paper_dropout",
]


def _check_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(check_seed("rng", rng))
    raise TypeError(
        f"rng must be a numpy.random.Generator or an integer seed; "
        f"got {rng!r} ({type(rng).__name__})"
    )


def _check_training(training) -> bool:
    # A strict check: training="False" or training=0.0 would otherwise be
    # read as truthy / falsy without complaint.
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(
            f"training must be True or False; got {training!r} ({type(training).__name__})"
        )
    return bool(training)


def _check_array(x) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"x must be an array of real numbers; got dtype {array.dtype}"
        )
    return array


def _masked(x, rate, training, rng, return_mask, *, inverted: bool):
    x = _check_array(x)
    rate = check_rate("rate", rate)
    training = _check_training(training)
    rng = _check_rng(rng)
    keep_prob = 1.0 - rate
    if not training:
        out = x if inverted else x * keep_prob
        mask = np.ones(x.shape, dtype=bool)
    elif rate == 0.0:
        out, mask = x, np.ones(x.shape, dtype=bool)
    else:
        mask = rng.random(x.shape) >= rate
        kept = x / keep_prob if inverted else x
        out = np.where(mask, kept, 0)
    return (out, mask) if return_mask else out


def inverted_dropout(x, rate, *, training, rng, return_mask=False):
    """Inverted dropout, as ``keras.layers.Dropout`` computes it.

    While training, each unit of ``x`` is kept with probability ``1 - rate``
    and a kept unit is divided by ``1 - rate``; dropped units become 0.  The
    expected output is therefore ``x`` itself.  At inference
    (``training=False``) the function is the identity: a NumPy array comes
    back as the very same object, unchanged (anything else as
    ``numpy.asarray(x)``), just as Keras' layer returns its input.

    Parameters
    ----------
    x : array_like of real numbers
        Activations, any shape.  Integer input gives a floating output when
        training.
    rate : float
        Probability of dropping each unit, in ``[0, 1)``.  A rate of 0 returns
        ``x`` unchanged.  A rate of 1 is refused (``ValueError``) because the
        kept units would be divided by ``1 - rate = 0``.  (Keras 3.15 accepts
        ``keras.layers.Dropout(rate=1.0)``: called with ``training=True`` it
        returns zeros, with ``training=False`` its input.)
    training : bool
        ``True`` applies the mask and the scaling; ``False`` is the identity.
        Must be a real boolean: a string such as ``"False"`` raises.
    rng : numpy.random.Generator or int
        Source of the mask, or a seed for a new ``numpy.random.default_rng``.
        Not drawn from when ``training`` is ``False`` or ``rate`` is 0.
    return_mask : bool, optional
        Also return the boolean mask (``True`` = unit kept).

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with ``return_mask``
        The output, same shape as ``x``, and optionally the mask.

    Raises
    ------
    TypeError
        ``x`` not numeric, ``rate`` not a real number, ``training`` not a
        boolean, ``rng`` neither a Generator nor an integer.
    ValueError
        ``rate`` outside ``[0, 1)``, or a negative seed.

    Examples
    --------
    >>> x = np.ones(8)
    >>> out, mask = inverted_dropout(x, 0.5, training=True, rng=0, return_mask=True)
    >>> sorted(set(out.tolist()))
    [0.0, 2.0]
    >>> bool(np.all(out[mask] == 2.0))
    True
    >>> inverted_dropout(x, 0.5, training=False, rng=0) is x
    True
    """
    return _masked(x, rate, training, rng, return_mask, inverted=True)


def paper_dropout(x, rate, *, training, rng, return_mask=False):
    """Dropout as the original paper describes it: mask in training, scale at inference.

    While training, each unit is kept with probability ``p = 1 - rate`` and
    left as it is; dropped units become 0, so the expected output is
    ``p * x``.  At inference every unit is multiplied by ``p``, matching that
    expectation.  (The paper multiplies the *outgoing weights* by ``p``; for a
    layer followed by a linear map the two are the same.)  This is the scheme
    the tutorial's remark "multiplies by (1 - rate) at inference" describes;
    Keras does not do it.

    Parameters
    ----------
    x : array_like of real numbers
        Activations, any shape.
    rate : float
        Probability of dropping each unit, in ``[0, 1)`` (checked as in
        :func:`inverted_dropout`, so the two functions accept the same rates).
    training : bool
        ``True`` applies the mask; ``False`` multiplies by ``1 - rate``.
    rng : numpy.random.Generator or int
        Source of the mask, or a seed.  The mask drawn from a given seed is the
        one :func:`inverted_dropout` draws from it.
    return_mask : bool, optional
        Also return the boolean mask (``True`` = unit kept).

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with ``return_mask``

    Raises
    ------
    TypeError, ValueError
        As :func:`inverted_dropout`.

    Examples
    --------
    >>> x = np.ones(4)
    >>> paper_dropout(x, 0.25, training=False, rng=0)
    array([0.75, 0.75, 0.75, 0.75])
    >>> a = paper_dropout(x, 0.25, training=True, rng=3)
    >>> b = inverted_dropout(x, 0.25, training=True, rng=3)
    >>> bool(np.array_equal(a * 4 / 3, b))  # same mask, different scale
    True
    """
    return _masked(x, rate, training, rng, return_mask, inverted=False)


@keras.saving.register_keras_serializable(package="dropout_book")
class InvertedDropout(keras.layers.Layer):
    """Inverted dropout as a Keras layer, written without ``keras.random.dropout``.

    Behaves like ``keras.layers.Dropout(rate)`` (no ``noise_shape``): in
    training, each unit is kept with probability ``1 - rate`` and multiplied
    by ``1 / (1 - rate)``; at inference the input is returned unchanged.  The
    masks come from ``keras.random.uniform`` driven by the layer's own
    ``keras.random.SeedGenerator``, so a seeded layer gives the same sequence
    of masks on every run.  On the TensorFlow backend, a layer and a
    ``keras.layers.Dropout`` given the same ``seed`` draw the same masks and
    return identical outputs (TensorFlow's dropout keeps a unit when the
    same uniform draw is at least ``rate``).  Registered for ``.keras`` saving as
    ``"dropout_book>InvertedDropout"``: a saved model that uses it loads as
    long as ``helpers.dropout`` has been imported.

    Parameters
    ----------
    rate : float
        Probability of dropping each unit, in ``[0, 1)``; 1 is refused
        (``keras.layers.Dropout`` accepts it and then outputs zeros in
        training).
    seed : int or None, optional
        Seed of the layer's random-number stream; ``None`` picks one at
        random when the layer is built.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Examples
    --------
    >>> layer = InvertedDropout(0.5, seed=1)
    >>> x = np.ones((2, 4), dtype="float32")
    >>> sorted(set(keras.ops.convert_to_numpy(layer(x, training=True)).ravel().tolist()))
    [0.0, 2.0]
    >>> bool(np.array_equal(keras.ops.convert_to_numpy(layer(x)), x))
    True
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.seed = None if seed is None else check_seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        # Multiplying by the reciprocal (rather than dividing by 1 - rate) is
        # how TensorFlow's dropout scales; with it, on the TensorFlow backend
        # and the same seed, this layer's output equals keras.layers.Dropout's
        # bit for bit, which the tests check.
        scale = 1.0 / (1.0 - self.rate)
        draws = keras.random.uniform(
            keras.ops.shape(inputs),
            dtype=self.compute_dtype,
            seed=self.seed_generator,
        )
        return keras.ops.where(
            draws >= self.rate, inputs * scale, keras.ops.zeros_like(inputs)
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def _random_state_variables(model: keras.Model) -> list:
    """The state variables of the model's seed generators (Dropout layers and the like).

    Keras documents ``Layer.variables`` as ``Layer.weights`` plus the state of
    every ``SeedGenerator``; the difference is exactly those states.
    """
    weight_ids = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


def mc_predict(model, X, *, n_samples, seed):
    """Monte Carlo dropout: ``n_samples`` predictions with dropout left on.

    Each pass is one call ``model(X, training=True)``, so every Dropout layer
    draws a fresh mask for every row and pass.  The model's random-number
    streams (the state of its layers' seed generators) are set from ``seed``
    before the first pass and restored afterwards, so the result depends only
    on the model's weights, ``X``, ``n_samples`` and ``seed``, not on what was
    drawn before, and the call leaves no trace on the model.

    ``training=True`` switches every layer to training behaviour, not only
    dropout: a ``BatchNormalization`` layer would use batch statistics (and
    update its moving averages).  The book's models have none.

    Parameters
    ----------
    model : keras.Model
        A built model with at least one layer that draws random numbers
        through a ``keras.random.SeedGenerator`` (``keras.layers.Dropout`` with
        a positive rate, :class:`InvertedDropout`, ...).
    X : array_like
        Inputs, shape ``(n_rows, n_features)`` with ``n_rows >= 1``.
    n_samples : int
        Number of stochastic passes, at least 1.
    seed : int
        Seed in ``[0, 2**32)`` for the passes' dropout masks.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_samples, n_rows)`` when the model has a single output unit
        (the book's sigmoid classifiers: each entry is the predicted
        probability of class 1), otherwise ``(n_samples, n_rows, n_outputs)``.
        Row ``t`` is pass ``t``; the mean over axis 0 is the MC-averaged
        prediction and the standard deviation over axis 0 its spread.

    Raises
    ------
    TypeError
        ``model`` is not a ``keras.Model``; ``n_samples`` or ``seed`` not an
        integer.
    ValueError
        ``X`` not 2-D or empty; ``n_samples < 1``; ``seed`` out of range; the
        model draws no random numbers (every pass would be the same).

    Examples
    --------
    >>> from helpers.models import build_hidden_dropout
    >>> model = build_hidden_dropout()
    >>> X = np.random.default_rng(0).normal(size=(5, 60)).astype("float32")
    >>> draws = mc_predict(model, X, n_samples=20, seed=0)
    >>> draws.shape
    (20, 5)
    >>> bool(np.array_equal(draws, mc_predict(model, X, n_samples=20, seed=0)))
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"model must be a keras.Model; got {type(model).__name__}"
        )
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_seed("seed", seed)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"X must be a non-empty 2-D array (rows, features); got shape {X.shape}"
        )
    X = X.astype("float32", copy=False)
    states = _random_state_variables(model)
    if not states:
        raise ValueError(
            "the model has no layer that draws random numbers (no Dropout with a positive "
            "rate), so every Monte Carlo pass would give the same prediction"
        )
    saved = [keras.ops.convert_to_numpy(v.value).copy() for v in states]
    stream_seeds = np.random.SeedSequence(seed).generate_state(len(states))
    try:
        for variable, value, stream_seed in zip(states, saved, stream_seeds):
            variable.assign(
                np.array([int(stream_seed), 0], dtype=value.dtype)
            )
        passes = [
            keras.ops.convert_to_numpy(model(X, training=True))
            for _ in range(n_samples)
        ]
    finally:
        for variable, value in zip(states, saved):
            variable.assign(value)
    draws = np.stack(passes)
    if draws.ndim == 3 and draws.shape[-1] == 1:
        draws = draws[..., 0]
    return draws
