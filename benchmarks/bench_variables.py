"""What does a new TensorFlow variable cost, with and without helpers.compat's workaround?

    .venv/bin/python benchmarks/bench_variables.py

``tf.Variable`` labels the ``VarHandleOp`` that creates its handle with the
variable's scoped name (``debug_name``), and eager execution keeps one kernel
per op and set of attributes.  Keras makes every name unique, so without
``helpers.compat._share_variable_handle_kernels`` every variable instantiates
a kernel of its own.  This prints, in one run:

1. one ``VarHandleOp`` with a label seen before, and with a new label each time;
2. building one of the book's networks with its optimizer and metric state
   (``build_mlp`` with hidden dropout, then ``build_training_state``: what each
   lane fit builds), with TensorFlow's own op and with the workaround;

and the ratios.  The timings are medians of ``--repeats`` rounds.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import helpers  # noqa: F401  (first: TensorFlow's kernels, and the workaround)

# isort: split
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.ops import gen_resource_variable_ops as handle_ops

from helpers.models import build_mlp
from helpers.training import build_training_state, seed_keras

WORKAROUND = handle_ops.var_handle_op
TENSORFLOWS_OWN = WORKAROUND.__wrapped__


def median_seconds(step, n: int, repeats: int) -> float:
    step()  # the first call pays for what every later one shares
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            step()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    counter = itertools.count()

    def handle(label):
        return lambda: TENSORFLOWS_OWN(
            shape=[60, 60],
            dtype=tf.float32,
            shared_name=context.anonymous_name(),
            container="",
            debug_name=label(),
        )

    same = median_seconds(handle(lambda: "dense/kernel/"), 200, args.repeats)
    new = median_seconds(
        handle(lambda: f"dense_{next(counter)}/kernel/"), 200, args.repeats
    )
    print(f"VarHandleOp, a label seen before : {same * 1e6:8.1f} us")
    print(f"VarHandleOp, a new label         : {new * 1e6:8.1f} us")
    print(f"ratio                            : {new / same:8.1f}x")

    X = np.zeros((16, 60), dtype=np.float32)
    y = np.zeros(16, dtype=np.float32)
    seeds = itertools.count()

    def network():
        seed_keras(next(seeds))
        model = build_mlp(hidden_dropout=0.2)
        build_training_state(model, X, y)
        return len(
            model.variables
            + model.optimizer.variables
            + model.metrics_variables
        )

    n_variables = network()
    times = {}
    for name, op in (
        ("TensorFlow's own op", TENSORFLOWS_OWN),
        ("workaround", WORKAROUND),
    ):
        handle_ops.var_handle_op = op
        try:
            times[name] = median_seconds(network, 20, args.repeats)
        finally:
            handle_ops.var_handle_op = WORKAROUND
    print(f"\none network and its training state ({n_variables} variables):")
    for name, seconds in times.items():
        print(f"  {name:20s}: {seconds * 1e3:6.1f} ms")
    ratio = times["TensorFlow's own op"] / times["workaround"]
    print(f"  ratio               : {ratio:6.2f}x")


if __name__ == "__main__":
    main()
