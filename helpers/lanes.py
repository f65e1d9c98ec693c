"""Train many networks of one structure at once, each in its own "lane".

A 10-fold cross-validation trains ten copies of one small network on ten
training sets; a grid search trains the same copies again for every setting.
One step of one such network is a few microseconds of arithmetic and far more
of per-step cost (launching each operation of the graph), so training them one
after another pays that cost once per network.  Here the K networks' weights
are stacked along a leading *lane* axis and every step runs as batched matrix
products, so the per-step cost is paid once for all K.

Each lane keeps everything of its own: its training rows, its epoch shuffles
(:func:`helpers.training.epoch_orders` with the lane's seed, as the
single-network path draws them), its dropout masks, its learning rate,
momentum, dropout rates and max-norm limit, and its optimizer state.  Lanes
never mix: a lane's result does not depend on which or how many lanes ran
beside it (``tests/test_lanes.py`` checks this bit for bit).

What a lane computes is Keras' own training step written out: the forward pass
(``Dense`` layers, ReLU, inverted dropout), the loss Keras uses for a sigmoid or
softmax output (computed from the logits, as Keras does), the gradients
autodiff computes (written out op for op: the same numbers from fewer
operations, see :func:`_backward`), the SGD (with or without momentum) or
Adam update in Keras' formulas, then the ``MaxNorm`` constraint.  With
dropout off, a lane's weights equal ``fit_compiled``'s to float32 rounding
(tested).  The dropout masks are the one deliberate difference: Keras draws
them inside TensorFlow from its seed generator; a lane draws them from NumPy's
generator seeded by the lane's seed, so that they do not depend on the other
lanes.  Same rate, same statistics, other random numbers.

Only sequential networks of ``Dense`` and ``Dropout`` layers are supported,
which covers every multi-layer perceptron the book builds; :func:`lane_plan`
returns ``None`` for anything else (a convolutional network, a learning-rate
schedule other than ``InverseTimeDecay``, gradient clipping, ...) and callers
fall back to ``fit_compiled``.

Like ``fit_compiled``, the graph is plain TensorFlow, not XLA.  XLA's speed-up
depends on the CPU: about twice as fast on the AMD EPYC of session 6, but
1.24 times at 10 lanes and none at 120 lanes on session 12's Intel Xeon (one
thread, the hidden-dropout network).  And it generates code for the CPU it
runs on, so the results differ between instruction sets (measured: capping
it at AVX instead of AVX2 changed trained weights in the fifth digit), which
would break the book's promise of the same numbers on every x86-64 CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass, field

import keras
import numpy as np

from helpers.validation import check_int, check_seed

__all__ = [
    "LanePlan",
    "lane_plan",
    "fit_lanes",
    "make_job",
    "train_jobs",
    "deferred_fits",
]

# Above this many bytes of dropout masks per graph call, the epochs are split
# over several calls (the weights carry over), so memory stays bounded for big
# networks and many lanes.
MASK_BYTES_PER_CALL = 128 * 1024**2
# A lane's masks come from this stream of the lane's seed, apart from the
# stream epoch_orders draws the shuffles from (the seed itself).
_MASK_STREAM = 0xD0


@dataclass(frozen=True)
class LanePlan:
    """What lane training needs to know about one compiled network.

    ``key`` is the same for networks that can share lanes (same layers,
    widths, activations, loss, optimizer kind); ``values`` holds what may
    differ from lane to lane (dropout rates, max-norm limits, learning rate,
    momentum).
    """

    key: str
    ops: tuple
    loss: str
    optimizer: str
    metrics: tuple
    values: dict = field(compare=False)
    schedule: str | None = None


_ACTIVATIONS = ("relu", "linear", "sigmoid", "softmax")
_OPTIMIZER_OFF = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def lane_plan(model) -> LanePlan | None:
    """Describe ``model`` for lane training, or return ``None`` if it cannot be lane-trained.

    Supported: a compiled, not yet trained ``keras.Sequential`` of ``Dense``
    (ReLU or linear hidden activations, optional ``MaxNorm`` kernel
    constraint, no regularizers) and ``Dropout`` layers, ending in a sigmoid
    unit with binary cross-entropy or a softmax layer with sparse categorical
    cross-entropy; SGD (``nesterov=False``) or Adam (``amsgrad=False``) with a
    constant learning rate or an ``InverseTimeDecay`` schedule (without
    staircase); metrics none or ``["accuracy"]``.
    """
    if not isinstance(model, keras.Sequential) or not getattr(
        model, "compiled", False
    ):
        return None
    try:
        compile_config = model.get_compile_config()
    except (NotImplementedError, TypeError, ValueError):
        return None
    optimizer = model.optimizer
    config = optimizer.get_config()
    if any(config.get(k, v) != v for k, v in _OPTIMIZER_OFF.items()):
        return None
    if int(optimizer.iterations.numpy()) != 0:
        return None  # already trained: lanes start from a fresh optimizer
    values = _learning_rate_values(optimizer)
    if values is None:
        return None
    schedule = "inverse-time" if "decay_rate" in values else None
    if type(optimizer) is keras.optimizers.SGD and not config["nesterov"]:
        kind = "sgd-momentum" if config["momentum"] != 0 else "sgd"
        values["momentum"] = float(config["momentum"])
        adam = ()
    elif type(optimizer) is keras.optimizers.Adam and not config["amsgrad"]:
        kind = "adam"
        adam = (config["beta_1"], config["beta_2"], config["epsilon"])
    else:
        return None
    metrics = compile_config.get("metrics")
    if metrics not in (None, [], ["accuracy"]) or compile_config.get(
        "weighted_metrics"
    ):
        return None
    if compile_config.get("loss_weights") is not None:
        return None

    ops: list = []
    rates: list[float] = []
    limits: list[float] = []
    layers = model.layers
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1
        if type(layer) is keras.layers.Dropout:
            if layer.noise_shape is not None or last:
                return None
            ops.append(("dropout",))
            rates.append(float(layer.rate))
        elif type(layer) is keras.layers.Dense:
            c = layer.get_config()
            activation = c["activation"]
            if (
                not c["use_bias"]
                or c["kernel_regularizer"] is not None
                or c["bias_regularizer"] is not None
                or c.get("activity_regularizer") is not None
                or c["bias_constraint"] is not None
                or activation not in _ACTIVATIONS
                or (activation in ("sigmoid", "softmax")) != last
                or getattr(layer, "lora_enabled", False)
                or c.get("quantization_config") is not None
            ):
                return None
            constraint = layer.kernel_constraint
            if constraint is None:
                limited = False
            elif (
                type(constraint) is keras.constraints.MaxNorm
                and constraint.axis == 0
            ):
                limited = True
                limits.append(float(constraint.max_value))
            else:
                return None
            ops.append(("dense", int(c["units"]), activation, limited))
        else:
            return None
    if not ops or ops[-1][0] != "dense":
        return None
    units, activation = ops[-1][1], ops[-1][2]
    loss = compile_config.get("loss")
    if (
        activation == "sigmoid"
        and units == 1
        and loss == "binary_crossentropy"
    ):
        loss_kind = "binary"
    elif (
        activation == "softmax"
        and units >= 2
        and loss == "sparse_categorical_crossentropy"
    ):
        loss_kind = "sparse"
    else:
        return None
    n_features = model.inputs[0].shape[-1] if model.inputs else None
    if n_features is None:
        return None
    names = ("loss", "accuracy") if metrics else ("loss",)
    values["rates"] = rates
    values["limits"] = limits
    key = [int(n_features), ops, loss_kind, kind, adam, names]
    if schedule is not None:
        key.append(schedule)  # (constant rates keep their old keys)
    return LanePlan(
        key=json.dumps(key),
        ops=(int(n_features), tuple(ops), adam),
        loss=loss_kind,
        optimizer=kind,
        metrics=names,
        values=values,
        schedule=schedule,
    )


def _learning_rate_values(optimizer) -> dict | None:
    """The lane values of ``optimizer``'s learning rate, or ``None`` if lanes cannot follow it.

    A constant rate, or ``InverseTimeDecay`` without staircase (the tips
    chapter's Keras 2 ``decay``): its three numbers are lane values, and the
    step computes the rate from the lane's update count as Keras does.
    """
    rate = optimizer._learning_rate  # the float, variable or schedule given
    schedules = keras.optimizers.schedules
    if isinstance(rate, schedules.LearningRateSchedule):
        if type(rate) is not schedules.InverseTimeDecay or rate.staircase:
            return None
        return {
            "learning_rate": float(np.float32(rate.initial_learning_rate)),
            "decay_rate": float(np.float32(rate.decay_rate)),
            "decay_steps": float(np.float32(rate.decay_steps)),
        }
    value = optimizer.get_config().get("learning_rate")
    if not isinstance(value, float):
        return None
    return {"learning_rate": float(np.float32(value))}


# ----------------------------------------------------------------------------- the graph


# Sums over a middle axis of a (lanes, rows, units) tensor are computed
# in an order that depends on the number of lanes (measured: one bit in
# the last place), while batched matrix products treat every lane alike.
# So the two sums a step needs across rows (the bias gradient) and down a
# kernel's columns (max-norm) are written as products with a vector of
# ones: the same values, lane by lane, whatever the number of lanes.
def _forward(ops, params, x, rows, masks, scales):
    """The logits of the lanes' rows ``x``, and what :func:`_backward`
    needs of each op."""
    import tensorflow as tf

    h, d, j = x, 0, 0
    saved = []
    for op in ops:
        if op[0] == "dense":
            z = tf.matmul(h, params[2 * d]) + tf.matmul(
                rows, params[2 * d + 1]
            )
            saved.append(("dense", d, h))
            if op[2] == "relu":
                h = tf.nn.relu(z)
                saved.append(("relu", h))
            else:
                h = z
            d += 1
        else:
            factor = tf.cast(masks[j], tf.float32) * scales[j]
            h = h * factor
            saved.append(("dropout", factor))
            j += 1
    return h, saved  # h: the output layer's logits


# The backward pass is written out rather than left to GradientTape.
# With the sizes unknown when traced (below), autodiff surrounds every
# op's gradient with shape arithmetic (Shape, BroadcastGradientArgs, Sum
# over no axes, Reshape): 393 ops a step for the tutorial's network, of
# which fewer than half compute anything, and a step's cost here is
# mostly the executor's per-op cost, about a microsecond an op whatever
# its size.  The ops below are the ones autodiff computes values with, in
# its order and with its kernels (the ops that only reshape, or sum over
# no axis, are dropped), so the gradients are the same bit for bit:
# ``tests/test_lanes.py`` compares the two.  With the loop's invariants
# made once outside it, a step of that network is 172 ops.
def _backward(params, rows, saved, g):
    """The gradients of ``params`` given the logits' gradient ``g``."""
    import tensorflow as tf

    grads = [None] * len(params)
    for item in reversed(saved):
        if item[0] == "dense":
            _, d, h = item
            grads[2 * d] = tf.matmul(h, g, adjoint_a=True)
            grads[2 * d + 1] = tf.matmul(rows, g, adjoint_a=True)
            if d == 0:
                break  # (the inputs need no gradient)
            g = tf.matmul(g, params[2 * d], adjoint_b=True)
        elif item[0] == "relu":
            g = tf.raw_ops.ReluGrad(gradients=g, features=item[1])
        else:
            g = g * item[1]
    return grads


def _loss_and_gradient(binary: bool, logits, y, weight):
    """Each row's loss, and the logits' gradient of the sum of the
    lanes' mean losses (Keras' "sum over batch size" mean)."""
    import tensorflow as tf

    count = tf.maximum(tf.reduce_sum(weight, axis=1), 1.0)
    # d(sum of lanes' means)/d(a row's weighted loss) = 1 / count
    per_row_grad = (1.0 / count)[:, None] * weight
    if binary:
        # tf.nn.sigmoid_cross_entropy_with_logits, op for op, and then
        # its gradient as autodiff computes it.
        z = y[..., None]
        zeros = tf.zeros_like(logits)  # (autodiff's zeros, too)
        cond = logits >= zeros
        relu_logits = tf.where(cond, logits, zeros)
        neg_abs = tf.where(cond, -logits, logits)
        e = tf.exp(neg_abs)
        loss = relu_logits - logits * z + tf.math.log1p(e)
        per_row = loss[..., 0] * weight
        g = per_row_grad[..., None]
        g_log = g * tf.math.reciprocal(1.0 + e) * e
        g_logits = tf.math.add_n(
            [
                tf.where(cond, g, zeros),
                -g * z,
                tf.where(cond, zeros, g_log),
                -tf.where(cond, g_log, zeros),
            ]
        )
    else:
        # The fused kernel tf.nn.sparse_softmax_cross_entropy_with_logits
        # runs on rows flattened to 2-D; its second output is the gradient
        # autodiff scales.  Called directly, not through tf.nn: with
        # TensorFlow's op determinism on when the graph is traced (a reader
        # may switch it on; SciKeras' seeding left it on in every fresh
        # process, see helpers/compat.py), tf.nn computes a log-softmax
        # instead, with other last bits, so a lane's numbers depended on
        # what had run before its graph was traced (chapter 7's digits did,
        # before session 8; tests/test_lanes.py checks they do not).
        n_classes = tf.shape(logits)[-1]
        loss, backprop = tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(
            features=tf.reshape(logits, [-1, n_classes]),
            labels=tf.reshape(tf.cast(y, tf.int32), [-1]),
        )
        per_row = tf.reshape(loss, tf.shape(weight)) * weight
        g_logits = tf.reshape(
            tf.reshape(per_row_grad, [-1])[:, None] * backprop,
            tf.shape(logits),
        )
    return per_row, g_logits


_STEPPERS: dict = {}


def _stepper(plan: LanePlan, ragged: bool):
    """The compiled function that runs T steps of K lanes of ``plan``'s structure."""
    cache_key = (plan.key, ragged)
    if cache_key in _STEPPERS:
        return _STEPPERS[cache_key]
    import tensorflow as tf

    _, ops, adam = plan.ops
    dense_ops = [op for op in ops if op[0] == "dense"]
    binary = plan.loss == "binary"
    eps = float(keras.backend.epsilon())
    if adam:
        beta_1, beta_2, adam_eps = adam
        one_minus_b1, one_minus_b2 = 1 - beta_1, 1 - beta_2

    # One trace per structure, with every size that varies between calls
    # (lanes, steps, rows) left unknown.  Traced for the shapes of its first
    # call instead, a graph can be rewritten differently from one traced
    # later for other shapes, and the lanes' numbers would depend on what the
    # process trained before (measured: a grid search scored differently in
    # one process than on two workers).
    def spec(*shape, dtype=tf.float32):
        return tf.TensorSpec(shape, dtype)

    n_features = plan.ops[0]
    param_specs, fan_in = [], n_features
    for op in dense_ops:
        param_specs += [spec(None, fan_in, op[1]), spec(None, 1, op[1])]
        fan_in = op[1]
    n_slots = {"sgd-momentum": 1, "sgd": 0, "adam": 2}[plan.optimizer]
    widths = _dropout_widths(plan)
    hyper_names = _hyper_names(plan)
    signature = [
        (
            param_specs,
            [tuple(p for _ in range(n_slots)) for p in param_specs],
            spec(None, 1, 1),
        ),
        spec(None, None, n_features),
        spec(None, None),
        # orders, valid, active and masks: step-major, (steps, lanes, ...)
        spec(None, None, None, dtype=tf.int32),
        spec(None, None, None),
        spec(None, None, dtype=tf.bool),
        [spec(None, None, None, w, dtype=tf.bool) for w in widths],
        [spec(None, 1, 1) for _ in widths],
        {name: spec(None, 1, 1) for name in hyper_names},
        [spec(None, 1, 1) for op in dense_ops if op[3]],
    ]

    @tf.function(jit_compile=False, input_signature=signature)
    def run(state, X, Y, orders, valid, active, masks, scales, hyper, limits):
        params, slots, t = state
        n_steps = tf.shape(orders)[0]
        # Every op in the loop costs about a microsecond whatever its size,
        # so what does not change from step to step is made once here: the
        # columns of ones that sum over rows and down kernels' columns.
        rows = tf.ones(tf.stack([tf.shape(X)[0], tf.shape(orders)[2], 1]))
        columns = [
            tf.ones_like(params[2 * d][:, :, :1])
            for d, op in enumerate(dense_ops)
            if op[3]
        ]
        losses = tf.TensorArray(tf.float32, size=n_steps)
        hits = tf.TensorArray(tf.float32, size=n_steps)

        def one_step(i, params, slots, t, losses, hits):
            lr = hyper["learning_rate"]
            if plan.schedule == "inverse-time":
                # InverseTimeDecay of the update count before this update, in
                # Keras' order of operations.
                lr = lr / (
                    1.0 + hyper["decay_rate"] * (t / hyper["decay_steps"])
                )
            index = tf.gather(orders, i)
            weight = tf.gather(valid, i)
            x = tf.gather(X, index, batch_dims=1)
            y = tf.gather(Y, index, batch_dims=1)
            step_masks = [tf.gather(m, i) for m in masks]
            logits, saved = _forward(ops, params, x, rows, step_masks, scales)
            per_row, g_logits = _loss_and_gradient(binary, logits, y, weight)
            grads = _backward(params, rows, saved, g_logits)
            if binary:
                predicted = tf.cast(
                    tf.sigmoid(logits)[..., 0] > 0.5, tf.float32
                )
            else:
                predicted = tf.cast(tf.argmax(logits, axis=-1), tf.float32)
            correct = tf.cast(
                tf.equal(predicted, tf.cast(y, tf.float32)), tf.float32
            )
            losses = losses.write(i, tf.reduce_sum(per_row, axis=1))
            hits = hits.write(i, tf.reduce_sum(correct * weight, axis=1))

            new_params, new_slots = [], []
            t_next = t + 1.0
            for p, (param, grad) in enumerate(zip(params, grads)):
                if plan.optimizer == "sgd-momentum":
                    (m,) = slots[p]
                    m = m * hyper["momentum"] - grad * lr
                    param, slot = param + m, (m,)
                elif plan.optimizer == "sgd":
                    param, slot = param - grad * lr, ()
                else:
                    m, v = slots[p]
                    b1_power = tf.pow(tf.constant(beta_1, tf.float32), t_next)
                    b2_power = tf.pow(tf.constant(beta_2, tf.float32), t_next)
                    alpha = lr * tf.sqrt(1 - b2_power) / (1 - b1_power)
                    m = m + (grad - m) * one_minus_b1
                    v = v + (tf.square(grad) - v) * one_minus_b2
                    param, slot = (
                        param - (m * alpha) / (tf.sqrt(v) + adam_eps),
                        (m, v),
                    )
                new_params.append(param)
                new_slots.append(slot)
            # MaxNorm on the kernels that carry it, after the update as in Keras.
            c = 0
            for d, op in enumerate(dense_ops):
                if op[3]:
                    w = new_params[2 * d]
                    norms = tf.sqrt(
                        tf.matmul(columns[c], tf.square(w), transpose_a=True)
                    )
                    desired = tf.clip_by_value(norms, 0.0, limits[c])
                    new_params[2 * d] = w * (desired / (eps + norms))
                    c += 1
            if ragged:
                # A lane whose epoch has fewer batches sits this step out.
                on = tf.gather(active, i)
                keep = lambda new, old: tf.where(on[:, None, None], new, old)  # noqa: E731
                new_params = [keep(n, o) for n, o in zip(new_params, params)]
                new_slots = [
                    tuple(keep(n, o) for n, o in zip(ns, os_))
                    for ns, os_ in zip(new_slots, slots)
                ]
                t_next = tf.where(on[:, None, None], t_next, t)
            return i + 1, new_params, new_slots, t_next, losses, hits

        _, params, slots, t, losses, hits = tf.while_loop(
            lambda i, *_: i < n_steps,
            one_step,
            (tf.constant(0), params, slots, t, losses, hits),
        )
        return (params, slots, t), losses.stack(), hits.stack()

    _STEPPERS[cache_key] = run
    return run


# ----------------------------------------------------------------------------- driving it


def _lane_masks(
    rng, n_rows: int, epochs: int, widths: list[int], rates: list[float]
):
    """One epoch at a time, one dropout layer at a time, one row at a time: the same
    stream whatever the batching, the padding or the other lanes.

    Drawn in one call: an epoch's numbers are its first layer's rows, then
    its second layer's, and so on, exactly as one call per epoch and layer
    would draw them.
    """
    draws = rng.random((epochs, n_rows * sum(widths)), dtype=np.float32)
    out, start = [], 0
    for w, rate in zip(widths, rates):
        block = draws[:, start : start + n_rows * w]
        out.append(block.reshape(epochs, n_rows, w) >= np.float32(rate))
        start += n_rows * w
    return out


def _hyper_names(plan: LanePlan) -> list[str]:
    """The per-lane optimizer values the step reads, in the graph's order."""
    names = ["learning_rate"]
    if plan.optimizer == "sgd-momentum":
        names.append("momentum")
    if plan.schedule == "inverse-time":
        names += ["decay_rate", "decay_steps"]
    return names


def _dropout_widths(plan: LanePlan) -> list[int]:
    widths, width = [], plan.ops[0]
    for op in plan.ops[1]:
        if op[0] == "dense":
            width = op[1]
        else:
            widths.append(width)
    return widths


def _train_group(plan: LanePlan, jobs: list) -> list[dict]:
    """Train ``jobs`` (all of ``plan``'s structure, same epochs and batch size) as lanes."""
    import tensorflow as tf

    from helpers.training import epoch_orders

    # TensorFlow multiplies small matrices with one kernel when there is a
    # single matrix in the batch and with another when there are several
    # (BatchMatMul's CPU heuristic); the two round differently.  A lone
    # network therefore trains beside a copy of itself, whose result is
    # dropped, so that its numbers are the same as in company.
    n_real = len(jobs)
    if n_real == 1:
        jobs = jobs * 2
    K = len(jobs)
    epochs = jobs[0]["epochs"]
    sizes = [len(j["X"]) for j in jobs]
    bs = min(jobs[0]["batch_size"], min(sizes))
    steps = [-(-n // bs) for n in sizes]
    S = max(steps)
    ragged = len(set(steps)) != 1
    widths = _dropout_widths(plan)

    X = np.zeros((K, max(sizes), plan.ops[0]), dtype=np.float32)
    Y = np.zeros((K, max(sizes)), dtype=np.float32)
    orders = np.zeros((K, epochs, S * bs), dtype=np.int32)
    valid = np.zeros((K, epochs, S * bs), dtype=np.float32)
    active = np.zeros((K, epochs, S), dtype=bool)
    for k, job in enumerate(jobs):
        n = sizes[k]
        X[k, :n], Y[k, :n] = job["X"], job["y"]
        orders[k, :, :n] = epoch_orders(n, epochs, job["seed"])
        valid[k, :, :n] = 1.0
        active[k, :, : steps[k]] = True
    # Each lane's masks come from its own generator, drawn epoch by epoch
    # as the chunks of epochs below are trained.
    rngs = [
        np.random.default_rng([_MASK_STREAM, job["seed"]]) for job in jobs
    ]

    def lane_values(name):
        return np.array(
            [j["plan"].values[name] for j in jobs], dtype=np.float32
        )

    hyper = {
        name: lane_values(name)[:, None, None] for name in _hyper_names(plan)
    }
    rates = np.array(
        [j["plan"].values["rates"] for j in jobs], dtype=np.float64
    ).reshape(K, -1)
    scales = [
        tf.constant(
            (1.0 / (1.0 - rates[:, j])).astype(np.float32)[:, None, None]
        )
        for j in range(len(widths))
    ]
    limit_values = np.array(
        [j["plan"].values["limits"] for j in jobs], dtype=np.float32
    ).reshape(K, -1)
    limits = [
        tf.constant(limit_values[:, c][:, None, None])
        for c in range(limit_values.shape[1])
    ]

    initial = [j["model"].get_weights() for j in jobs]
    params = []
    for p in range(len(initial[0])):
        stacked = np.stack([w[p] for w in initial])
        if stacked.ndim == 2:  # a bias: (K, units) -> (K, 1, units)
            stacked = stacked[:, None, :]
        params.append(tf.constant(stacked))
    n_slots = {"sgd-momentum": 1, "sgd": 0, "adam": 2}[plan.optimizer]
    slots = [tuple(tf.zeros_like(p) for _ in range(n_slots)) for p in params]
    state = (params, slots, tf.zeros((K, 1, 1), tf.float32))

    mask_bytes_per_epoch = K * S * bs * sum(widths)
    chunk = max(
        1, min(epochs, MASK_BYTES_PER_CALL // max(mask_bytes_per_epoch, 1))
    )
    from helpers.training import _graph_optimizer_off

    run = _stepper(plan, ragged)
    X_t, Y_t = tf.constant(X), tf.constant(Y)
    loss_sums, hit_sums = [], []
    for start in range(0, epochs, chunk):
        stop = min(epochs, start + chunk)
        E, T = stop - start, (stop - start) * S
        masks = [np.ones((K, E, S * bs, w), dtype=bool) for w in widths]
        for k, rng in enumerate(rngs):
            drawn = _lane_masks(
                rng, sizes[k], E, widths, jobs[k]["plan"].values["rates"]
            )
            for j, m in enumerate(drawn):
                masks[j][k, :, : sizes[k]] = m

        def steps_first(a, *shape, T=T):
            return tf.constant(np.swapaxes(a.reshape(K, T, *shape), 0, 1))

        with _graph_optimizer_off():
            state, losses, hits = run(
                state,
                X_t,
                Y_t,
                steps_first(orders[:, start:stop], bs),
                steps_first(valid[:, start:stop], bs),
                steps_first(active[:, start:stop]),
                [steps_first(m, bs, m.shape[-1]) for m in masks],
                scales,
                hyper,
                limits,
            )
        loss_sums.append(losses.numpy().reshape(E, S, K).sum(axis=1))
        hit_sums.append(hits.numpy().reshape(E, S, K).sum(axis=1))
    params, slots, t = state
    loss_sums = np.concatenate(loss_sums)
    hit_sums = np.concatenate(hit_sums)

    histories = []
    for k, job in enumerate(jobs[:n_real]):
        model = job["model"]
        model.set_weights(
            [
                np.asarray(p[k]).reshape(w.shape)
                for p, w in zip(params, initial[k])
            ]
        )
        lane_slots = [tuple(s[k] for s in slot) for slot in slots]
        _store_optimizer_state(model, plan, lane_slots, t[k])
        history = {"loss": (loss_sums[:, k] / sizes[k]).tolist()}
        if "accuracy" in plan.metrics:
            history["accuracy"] = (hit_sums[:, k] / sizes[k]).tolist()
        _store_metrics(model, history, sizes[k])
        histories.append(history)
    return histories


def _store_metrics(model, history: dict, n_rows: int) -> None:
    """Leave the model's metrics reporting the last epoch, as after ``fit``."""
    model.reset_metrics()
    for metric in model.metrics:
        for inner in getattr(metric, "metrics", None) or [metric]:
            values = history.get(inner.name)
            if values and hasattr(inner, "total") and hasattr(inner, "count"):
                inner.total.assign(values[-1] * n_rows)
                inner.count.assign(n_rows)


def _store_optimizer_state(model, plan: LanePlan, slots, t) -> None:
    """Leave the model's optimizer as training would: step count and moment estimates."""
    optimizer = model.optimizer
    optimizer.iterations.assign(int(round(float(np.asarray(t).ravel()[0]))))
    if plan.optimizer == "sgd-momentum":
        lists = [optimizer.momentums]
    elif plan.optimizer == "adam":
        lists = [optimizer._momentums, optimizer._velocities]
    else:
        return
    for which, variables in enumerate(lists):
        for variable, slot in zip(variables, slots):
            variable.assign(np.asarray(slot[which]).reshape(variable.shape))


def make_job(
    model, X, y, *, epochs, batch_size, seed, plan=None, on_done=None
):
    """Check one network's training request and prepare it as a lane job.

    Raises ``ValueError`` naming what is wrong; ``on_done(history)`` is
    called once the job is trained.
    """
    plan = plan or lane_plan(model)
    if plan is None:
        raise ValueError(
            "this network cannot be trained as a lane (see "
            "helpers.lanes.lane_plan); train it with helpers.fit_compiled"
        )
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seed = check_seed("seed", seed)
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(
            f"X must be a non-empty 2-D array; got shape {X.shape}"
        )
    if X.shape[1] != plan.ops[0]:
        raise ValueError(
            f"the network takes {plan.ops[0]} features; X has {X.shape[1]}"
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            "y must be 1-D with one label per row of X; got shape "
            f"{y.shape} for {len(X)} rows"
        )
    y = y.astype(np.float32)
    first = min(batch_size, len(X))
    # Create the optimizer's and metrics' variables, as fit() does first.
    from helpers.training import build_training_state

    build_training_state(model, X[:first], y[:first])
    return dict(
        model=model,
        X=X,
        y=y,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        plan=plan,
        on_done=on_done,
        key=_job_key(model, X, y, epochs, batch_size, seed, plan),
    )


def _job_key(model, X, y, epochs, batch_size, seed, plan) -> str:
    """Everything a lane's result depends on, hashed: structure, lane values,
    initial weights, rows, labels, schedule and seed."""
    digest = hashlib.blake2b(digest_size=20)
    settings = [plan.key, plan.values, epochs, batch_size, seed]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for array in [*model.get_weights(), X, y]:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def fit_lanes(
    models, Xs, ys, *, epochs: int, batch_size: int, seeds
) -> list[dict]:
    """Train each ``models[k]`` on ``(Xs[k], ys[k])`` with seed ``seeds[k]``, as lanes.

    The schedule is ``fit_compiled``'s: every epoch a fresh shuffle of the
    lane's rows (:func:`helpers.training.epoch_orders` with the lane's seed),
    batches of ``batch_size`` with the last, partial batch kept.  Networks of
    the same structure (:func:`lane_plan`) train together; the result for
    each one is the same whatever else is in the call.

    Returns one history dict per model, as ``fit_compiled`` does.  Raises
    ``ValueError`` if a model cannot be lane-trained (see :func:`lane_plan`).

    Examples
    --------
    >>> from helpers.models import build_mlp
    >>> X = np.random.default_rng(0).random((40, 60), dtype=np.float32)
    >>> y = (X[:, 0] > 0.5).astype("float32")
    >>> nets = [build_mlp(hidden_dropout=rate) for rate in (0.2, 0.5)]
    >>> histories = fit_lanes(nets, [X, X], [y, y], epochs=3, batch_size=16,
    ...                       seeds=[1, 2])
    >>> [len(h["loss"]) for h in histories]
    [3, 3]
    """
    models, Xs, ys, seeds = list(models), list(Xs), list(ys), list(seeds)
    if not (len(models) == len(Xs) == len(ys) == len(seeds)):
        raise ValueError(
            "models, Xs, ys and seeds must have one entry per network; got "
            f"{len(models)}, {len(Xs)}, {len(ys)} and {len(seeds)}"
        )
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "fit_lanes needs the TensorFlow backend; it is "
            f"{keras.backend.backend()!r}"
        )
    jobs = []
    for k, (model, X, y, seed) in enumerate(zip(models, Xs, ys, seeds)):
        if lane_plan(model) is None:
            raise ValueError(
                f"models[{k}] cannot be trained as a lane (see "
                "helpers.lanes.lane_plan); train it with helpers.fit_compiled"
            )
        jobs.append(
            make_job(
                model, X, y, epochs=epochs, batch_size=batch_size, seed=seed
            )
        )
    return train_jobs(jobs)


def train_jobs(jobs: list) -> list[dict]:
    """Train jobs from :func:`make_job`, those of one structure together.

    Returns their histories in order (and passes each to its ``on_done``).
    """
    groups: dict = {}
    for index, job in enumerate(jobs):
        batch = min(job["batch_size"], len(job["X"]))
        key = (job["plan"].key, job["epochs"], batch)
        groups.setdefault(key, []).append(index)
    histories: list = [None] * len(jobs)
    for indices in groups.values():
        group = [jobs[i] for i in indices]
        for i, history in zip(indices, _train_group(group[0]["plan"], group)):
            histories[i] = history
    for job, history in zip(jobs, histories):
        job["history"] = history
        if job.get("on_done") is not None:
            job["on_done"](history)
    return histories


# ----------------------------------------------------------------------------- deferring fits

_PENDING = threading.local()


def pending_fits():
    """The list collecting deferred fits in this thread, or ``None`` when not deferring."""
    return getattr(_PENDING, "jobs", None)


@contextlib.contextmanager
def deferred_fits():
    """Collect the lane-trainable fits made inside the block; train them together at its end.

    ``FastKerasClassifier.fit`` inside the block builds its network and
    registers it here instead of training it; leaving the block trains all
    registered networks as lanes and fills in their weights and histories.
    Use the fitted estimators only after the block.  Fits of networks that
    cannot be lane-trained run at once, as usual.
    """
    if pending_fits() is not None:
        raise RuntimeError("deferred_fits blocks cannot be nested")
    _PENDING.jobs = []
    try:
        yield _PENDING.jobs
        jobs = _PENDING.jobs
    finally:
        _PENDING.jobs = None
    train_jobs(jobs)


# ----------------------------------------------------------------------------- replaying results

_REPLAY = threading.local()


def results_of(jobs: list) -> dict:
    """``{key: (weights, history)}`` of trained jobs, for :func:`replaying`."""
    return {
        job["key"]: (job["model"].get_weights(), job["history"])
        for job in jobs
        if "history" in job
    }


@contextlib.contextmanager
def replaying(results: dict):
    """Inside the block, a lane fit whose result is in ``results`` takes it
    instead of training.

    ``results`` maps a job's key (a hash of everything its training depends
    on: structure, lane values, initial weights, rows, labels, schedule and
    seed) to the trained weights and history, as :func:`results_of` returns
    them.  Since a lane's result does not depend on the lanes beside it, a
    result trained in a batch of lanes elsewhere is exactly what training
    this fit would give.  ``helpers.search`` uses it to train a search's
    fits as lanes and then let scikit-learn's own search machinery score
    them.
    """
    previous = getattr(_REPLAY, "results", None)
    _REPLAY.results = results
    try:
        yield
    finally:
        _REPLAY.results = previous


def replay(job: dict) -> bool:
    """Give ``job`` its stored result if :func:`replaying` has one; say whether it did."""
    results = getattr(_REPLAY, "results", None)
    if not results or job["key"] not in results:
        return False
    weights, history = results[job["key"]]
    model = job["model"]
    model.set_weights(weights)
    _store_metrics(model, history, len(job["X"]))
    job["history"] = history
    if job.get("on_done") is not None:
        job["on_done"](history)
    return True
