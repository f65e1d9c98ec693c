"""Fingerprints of the book's TensorFlow training, to compare between CPUs.

Usage::

    .venv/bin/python tools/cpu_fingerprint.py
    qemu-x86_64 -cpu Icelake-Server .venv/bin/python tools/cpu_fingerprint.py

Each line is a network trained by ``fit_compiled`` (the path chapters 1, 4
and 5 use) and a hash of its weights or predictions: chapter 1's network on
raw inputs for 300 epochs, the hidden-dropout network, Adam, batch
normalization with dropout, and a softmax output on scikit-learn's digits.
On any two x86-64 CPUs the lines must be the same; the outputs stored in the
chapters are only reproducible where they are.  QEMU's user-mode emulator
(Debian's ``qemu-user``) stands in for a CPU of another maker: its
``rcpps`` gives other bits than real hardware, which is how session 19
found the estimated reciprocals that ``helpers/compat.py`` replaces
(before that change, chapter 1's losses differed between this script run
natively and under QEMU).  About 10 s natively, 2 min under QEMU.  Not part
of ``make test``: the tests cannot change the CPU they run on.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

import helpers  # noqa: F401  (first: fixes TensorFlow's kernels)

# isort: split

import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from helpers import fit_compiled, load_sonar
from helpers.models import build_baseline, build_hidden_dropout, build_mlp

SEED = 7


def fingerprint(arrays) -> str:
    digest = hashlib.sha1()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:12]


def fingerprints(model, X) -> str:
    predictions = keras.ops.convert_to_numpy(model(X, training=False))
    return (
        f"weights {fingerprint(model.get_weights())}, "
        f"predictions {fingerprint([predictions])}"
    )


def trained(build, X, y, epochs, batch_size=16):
    keras.utils.set_random_seed(SEED)
    model = build()
    fit_compiled(model, X, y, epochs=epochs, batch_size=batch_size, seed=SEED)
    return model


def compiled(stack, loss, learning_rate):
    model = keras.Sequential(stack)
    model.compile(
        loss=loss,
        optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
        metrics=["accuracy"],
    )
    return model


def batch_normalized():
    stack = [
        keras.Input(shape=(60,)),
        layers.Dense(60, activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.2),
        layers.Dense(1, activation="sigmoid"),
    ]
    return compiled(stack, "binary_crossentropy", 0.1)


def softmax_network():
    stack = [
        keras.Input(shape=(64,)),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ]
    return compiled(stack, "sparse_categorical_crossentropy", 0.05)


def main() -> None:
    sonar = load_sonar()
    X = StandardScaler().fit_transform(sonar.X).astype("float32")
    y = sonar.y
    digits = load_digits()
    X_digits = (digits.data[:600] / 16).astype("float32")
    y_digits = digits.target[:600]
    adam = functools.partial(
        build_mlp,
        hidden_dropout=0.2,
        max_norm=3.0,
        optimizer="adam",
        learning_rate=0.001,
    )
    runs = {
        "chapter 1, raw inputs, 300 epochs": (
            build_baseline,
            sonar.X,
            y,
            300,
        ),
        "hidden dropout, 100 epochs": (build_hidden_dropout, X, y, 100),
        "Adam, 50 epochs": (adam, X, y, 50),
        "batch normalization, 50 epochs": (batch_normalized, X, y, 50),
    }
    for name, (build, inputs, labels, epochs) in runs.items():
        model = trained(build, inputs, labels, epochs)
        print(f"{name}: {fingerprints(model, inputs)}")
    model = trained(softmax_network, X_digits, y_digits, 10, batch_size=32)
    print(f"softmax on digits, 10 epochs: {fingerprints(model, X_digits)}")


if __name__ == "__main__":
    main()
