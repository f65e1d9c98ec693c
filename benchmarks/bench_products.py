"""How much do 512-bit vectors speed up the lanes' kernel?

    .venv/bin/python benchmarks/bench_products.py

``helpers/lane_kernel.py`` computes its matrix products in blocks of 4 rows
by 16 units, and on a CPU with AVX-512 lets LLVM put a row's 16 sums in one
512-bit register (``_allow_512_bit_vectors``), which LLVM's own tuning for
recent Intel CPUs avoids.  This trains the book's three kinds of network as
lanes in two fresh processes, one with LLVM's tuning (256-bit vectors) and
one as the book runs, each compiling the kernel into a cache of its own, and
prints the milliseconds per lane-step of each and the ratios.  Both give the
same numbers, bit for bit (``tests/test_lanes.py``); on a CPU without
AVX-512 both runs are the same code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in each child: the best of --repeats fits of 4 lanes, per lane-step.
CHILD = r"""
import json, sys, time
import helpers  # first: TensorFlow's kernels
import keras
from sklearn.preprocessing import StandardScaler
from helpers import load_sonar
from helpers.data import load_digits_data
from helpers.lanes import fit_lanes
from helpers.models import build_convnet, build_mlp

repeats = int(sys.argv[1])
digits, sonar = load_digits_data(), load_sonar()
digits_X = StandardScaler().fit_transform(digits.X).astype("float32")
digits_y = digits.y.astype("float32")
sonar_X = StandardScaler().fit_transform(sonar.X).astype("float32")
sonar_y = sonar.y.astype("float32")
cases = {
    "Sonar perceptron, hidden dropout (batch 16)": (
        lambda: build_mlp(
            n_features=60, hidden_dropout=0.2, max_norm=3.0,
            learning_rate=0.1, momentum=0.9,
        ),
        sonar_X[:187], sonar_y[:187], 16, 30,
    ),
    "digits perceptron 256-256, dropout (batch 32)": (
        lambda: build_mlp(
            n_features=64, n_classes=10, hidden_units=(256, 256),
            optimizer="adam", learning_rate=0.001, hidden_dropout=0.5,
            max_norm=3.0,
        ),
        digits_X[:1617], digits_y[:1617], 32, 2,
    ),
    "digits convolutional network, dropout (batch 32)": (
        lambda: build_convnet(dense_dropout=0.5, max_norm=3.0),
        digits_X[:1617], digits_y[:1617], 32, 2,
    ),
}
out = {}
for name, (build, X, y, batch_size, epochs) in cases.items():
    best = float("inf")
    for attempt in range(repeats + 1):  # the first compiles or loads
        networks = []
        for k in range(4):
            keras.utils.set_random_seed(k)
            networks.append(build())
        start = time.perf_counter()
        fit_lanes(
            networks, [X] * 4, [y] * 4, epochs=epochs,
            batch_size=batch_size, seeds=list(range(4)),
        )
        if attempt:
            best = min(best, time.perf_counter() - start)
    steps = 4 * epochs * -(-len(y) // batch_size)
    out[name] = best / steps * 1000
print(json.dumps(out))
"""


def host_features() -> str:
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_features().flatten()


def run(features: str | None, repeats: int) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("NUMBA_CPU_FEATURES", None)
    if features is not None:
        env["NUMBA_CPU_FEATURES"] = features
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(repeats)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    if result.returncode:
        sys.exit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    features = host_features()
    if "+avx512f" not in features.split(","):
        print("This CPU has no AVX-512: the book's kernel is LLVM's default.")
    print("compiling and timing with LLVM's tuning (256-bit vectors) ...")
    narrow = run(features, repeats)
    print("compiling and timing as the book runs ...")
    book = run(None, repeats)
    print(
        f"\n{'ms per lane-step':50} {'256-bit':>8} {'book':>8} {'ratio':>6}"
    )
    for name in narrow:
        print(
            f"{name:50} {narrow[name]:8.3f} {book[name]:8.3f} "
            f"{narrow[name] / book[name]:6.2f}"
        )


if __name__ == "__main__":
    main()
