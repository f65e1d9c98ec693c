"""SciKeras with a current scikit-learn: the one compatibility layer of the book.

SciKeras 0.13.0 (its last release; the project is no longer maintained) predates
scikit-learn 1.6's estimator-tags API.  Its ``KerasClassifier`` inherits from
``BaseWrapper(BaseEstimator)`` *before* ``ClassifierMixin``, so
``BaseEstimator.__sklearn_tags__`` wins the method resolution and reports no
estimator type; the class attribute ``_estimator_type = "classifier"`` that
older scikit-learn read is ignored since 1.6.  With the scikit-learn this book
pins, the visible symptoms are:

* ``sklearn.base.is_classifier(pipeline)`` is ``False``;
* ``cross_val_score(pipeline, X, y, cv=10)`` silently uses unstratified
  ``KFold`` instead of ``StratifiedKFold``;
* classifier-only scorers such as ``"roc_auc"`` refuse the estimator.

The fix is to report the tags a classifier reports.  We subclass rather than
patch SciKeras in place so the change is visible, local and tested
(``tests/test_compat.py``); pinning scikit-learn below 1.6 instead would have
tied the whole book to a two-year-old scikit-learn.

A second SciKeras bug leaves TensorFlow's op determinism switched on for the
rest of the process; see :func:`_pin_op_determinism_state` below.  One
TensorFlow performance bug makes every new variable cost half a millisecond;
see :func:`_share_variable_handle_kernels`.  And a few TensorFlow kernels
estimate reciprocals with instructions whose last bits differ between CPU
makers; see :func:`_divide_where_tensorflow_estimates_reciprocals`.
"""

from __future__ import annotations

import functools

from scikeras.wrappers import KerasClassifier as _SciKerasClassifier
from sklearn.utils import ClassifierTags

__all__ = ["KerasClassifier"]


def _pin_op_determinism_state() -> bool:
    """Have TensorFlow settle whether op determinism is on; return the answer.

    SciKeras 0.13.0 seeds every fit and build with an integer
    ``random_state`` inside ``scikeras.utils.random_state.
    tensorflow_random_state``, which sets ``TF_DETERMINISTIC_OPS=1``, *then*
    asks whether op determinism was on, switches it on, and on leaving
    switches it off only if the answer was "off".  TensorFlow reads that
    environment variable once, at the first question.  So in a process that
    has not asked before, the answer is "on" and determinism stays on for
    good (tests/test_compat.py shows it in a fresh process).  That changes
    which kernels graphs traced later use: with it on, softmax cross-entropy
    is computed as ``log_softmax`` plus a gather instead of TensorFlow's
    fused kernel, so a network's last bits depended on whether a SciKeras
    fit had run in the process before (until session 9 they did, in every
    worker).  Asking once, here, before any SciKeras fit and while the
    variable is unset, settles the state as "off" (unless the reader set
    ``TF_DETERMINISTIC_OPS`` themselves), and SciKeras then restores it.
    """
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


_pin_op_determinism_state()


def _share_variable_handle_kernels() -> bool:
    """Let eagerly created variables share one ``VarHandleOp`` kernel; return
    whether this call installed the workaround.

    Workaround for TensorFlow 2.21: ``tf.Variable`` passes the variable's
    scoped name (``"sequential_7/dense_21/kernel/"``) to the ``VarHandleOp``
    that creates its handle as the op's ``debug_name`` attribute.  Eager
    execution caches one kernel per op and set of attributes, and Keras
    makes every name unique (a counter per layer, model and optimizer), so
    every variable instantiates a kernel of its own and adds it to a cache
    that is never emptied: 0.55 ms a variable against 0.02 ms with a name
    seen before (measured in session 15), for 16 of the 20 variables of
    each network the book fits, thousands of times per chapter.  The
    attribute only labels the handle in TensorFlow's own debugging output;
    the variable's name and Keras' path are set in Python and do not change.
    So eagerly (not while tracing a graph) the handle is created with an
    empty ``debug_name``.  tests/test_compat.py checks the names, the
    weights and that the op sees an empty label.
    """
    from tensorflow.python.eager import context
    from tensorflow.python.ops import gen_resource_variable_ops

    original = gen_resource_variable_ops.var_handle_op
    if getattr(original, "_shares_kernels", False):
        return False

    @functools.wraps(original)
    def var_handle_op(*args, **kwargs):
        if context.executing_eagerly():
            kwargs["debug_name"] = ""
        return original(*args, **kwargs)

    var_handle_op._shares_kernels = True
    gen_resource_variable_ops.var_handle_op = var_handle_op
    return True


_share_variable_handle_kernels()


def _divide_where_tensorflow_estimates_reciprocals() -> bool:
    """Make the book's TensorFlow training use only correctly rounded arithmetic;
    return whether this call installed the workaround.

    Workaround for TensorFlow 2.21 (and the Eigen it is built with): a few
    CPU kernels compute ``1 / x`` and ``1 / sqrt(x)`` from the x86
    instructions ``rcpps`` and ``rsqrtps`` plus one Newton step instead of a
    division (Eigen's ``preciprocal`` and ``prsqrt`` under
    ``EIGEN_FAST_MATH``).  Those instructions are estimates whose last bits
    the CPU's maker chooses, so the results differ between CPUs: on 200,000
    random inputs ``tf.math.reciprocal`` disagreed with ``1 / x`` on about
    a third, and the hashes of its output, ``tf.nn.softmax``'s and a
    sigmoid cross-entropy gradient's differed between this AMD EPYC (Zen 4)
    and the same binary under QEMU (session 19).  Training amplifies such a
    last bit: chapter 1's network ended another loss in the eighth digit
    than on the Intel Xeon that had stored it, and chapter 4's dropout
    networks other predictions.  The ops the book's networks meet:

    * the gradients of ``Log1p`` (every sigmoid output's cross-entropy,
      which Keras computes from the logits) and ``Log``: TensorFlow
      multiplies by ``reciprocal(x)``; here they divide;
    * ``softmax`` (multi-class outputs): TensorFlow's kernel multiplies by
      an estimated reciprocal of the sum; here it divides;
    * batch normalization: ``tf.nn.batch_normalization`` scales by
      ``rsqrt(variance + epsilon)``; here by ``1 / sqrt(...)``.

    Division and square root are correctly rounded by IEEE 754 on every
    CPU, so these give the same bits everywhere.  The gradients are swapped
    in TensorFlow's gradient registry (a private table: TensorFlow offers
    no public way to replace a registered gradient), the other two in
    Keras' TensorFlow backend, where Keras' ``softmax`` and
    ``BatchNormalization`` look them up when called.
    tests/test_compat.py checks each against correctly rounded arithmetic
    (TensorFlow's own kernels fail those checks).
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import nn as keras_tf_nn
    from tensorflow.python.framework import ops

    if getattr(keras_tf_nn.softmax, "_divides", False):
        return False
    registry = ops._gradient_registry._registry  # {op type: {"type": fn}}

    def quotient(a, b):
        # a / b, written (-a) / (-b), the same number in IEEE arithmetic:
        # in a graph, Grappler (TensorFlow's graph optimizer) turns a division
        # of a constant of ones into Reciprocal and x / sqrt(y) into
        # x * rsqrt(y), the very estimates avoided here; it leaves this alone
        # (tests/test_compat.py checks in graphs too).
        return tf.math.negative(a) / tf.math.negative(b)

    def log_gradient(op, grad):
        return quotient(grad, op.inputs[0])

    def log1p_gradient(op, grad):
        return quotient(grad, 1 + op.inputs[0])

    registry["Log"]["type"] = log_gradient
    registry["Log1p"]["type"] = log1p_gradient

    def softmax(x, axis=-1):
        logits = x
        x = tf.convert_to_tensor(x)
        flat = axis is None
        if flat:
            x, axis = tf.reshape(x, [-1]), -1
        exps = tf.exp(x - tf.reduce_max(x, axis=axis, keepdims=True))
        output = quotient(exps, tf.reduce_sum(exps, axis=axis, keepdims=True))
        if flat:
            output = tf.reshape(output, tf.shape(logits))
        # (what Keras' cross-entropy looks for to work from the logits)
        output._keras_logits = logits
        return output

    def batch_normalization(
        x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3
    ):
        if axis != -1:
            shape = [1] * len(x.shape)
            shape[axis] = mean.shape[0]
            mean, variance = (
                tf.reshape(mean, shape),
                tf.reshape(variance, shape),
            )
            offset = None if offset is None else tf.reshape(offset, shape)
            scale = None if scale is None else tf.reshape(scale, shape)
        # tf.nn.batch_normalization's formula, with a division for its rsqrt
        inv = quotient(tf.ones_like(variance), tf.sqrt(variance + epsilon))
        if scale is not None:
            inv = inv * scale
        shift = -mean * inv if offset is None else offset - mean * inv
        return x * tf.cast(inv, x.dtype) + tf.cast(shift, x.dtype)

    softmax._divides = True
    keras_tf_nn.softmax = softmax
    keras_tf_nn.batch_normalization = batch_normalization
    return True


_divide_where_tensorflow_estimates_reciprocals()


class KerasClassifier(_SciKerasClassifier):
    """SciKeras' ``KerasClassifier`` that scikit-learn >= 1.6 recognises as a classifier.

    Use it exactly like ``scikeras.wrappers.KerasClassifier``.

    Examples
    --------
    >>> from sklearn.base import is_classifier
    >>> from helpers.models import build_baseline
    >>> is_classifier(KerasClassifier(model=build_baseline))
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags
