"""Compile the lanes' kernel once, so that later processes load it from Numba's cache.

Usage: python tools/warm_kernel.py   (``make install`` runs it)

``helpers/lane_kernel.py`` is compiled to machine code the first time a
process trains or predicts with it, and Numba keeps the result in
``helpers/__pycache__`` for the next process.  Compiling takes about 25 s
(session 14, Intel Xeon); loading the cached code about 1.5 s.  On a fresh
clone nothing is cached yet, and ``make test`` starts many processes at
once (the unit tests' workers and the interpreters they start, two
notebooks' kernels), each of which would compile the same code.  This script does
it once, through the book's own calls (one lane fit of a perceptron, one
prediction of a convolutional network), so that the compiled signatures are
exactly the ones training and prediction use; ``tests/test_lanes.py``
checks that a fresh process then compiles nothing.
"""

from __future__ import annotations

import time

import numpy as np

import helpers  # noqa: F401  (first: fixes TensorFlow's kernels)

# isort: split

from helpers.lanes import fit_lanes, predict_lanes
from helpers.models import build_convnet, build_mlp


def warm_up() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    network = build_mlp(n_features=64, hidden_units=(8,))
    fit_lanes([network], [X], [y], epochs=1, batch_size=4, seeds=[0])
    predict_lanes(build_convnet(filters=(2, 2), dense_units=2), X)


if __name__ == "__main__":
    start = time.perf_counter()
    warm_up()
    print(
        "lanes' kernel compiled and cached "
        f"({time.perf_counter() - start:.0f} s)"
    )
