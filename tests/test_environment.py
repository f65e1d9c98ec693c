"""Tests for helpers.environment and for the TensorFlow start-up-noise workaround.

``helpers/__init__.py`` imports TensorFlow with file descriptor 2 muted
(``_import_tensorflow_quietly``).  The subprocess tests prove both halves:
``import helpers`` prints no TensorFlow start-up notices, while a plain
``import tensorflow`` still does -- so the workaround is still needed.  The
plain import runs with ``TF_CPP_MIN_LOG_LEVEL=3``, the setting ``helpers``
itself makes, so the only difference between the two runs is the muting of
file descriptor 2 (and the contrast also shows that the environment variable
alone cannot silence the notices).

Each fresh interpreter costs a TensorFlow import, about 5 s of CPU, so the
two runs are not interpreters of their own: they are two of the kernel-choice
probes below (``default`` and ``tensorflow_first``), whose standard error is
kept.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib.metadata import version

import pytest

from helpers.environment import environment_record

PACKAGES = ("tensorflow", "keras", "scikit-learn", "scikeras", "numpy")
NOISE = ("onednn", "cuda")  # matched case-insensitively
AFTER_IMPORT = (
    "import sys, os\n"
    "sys.stderr.write('python-stderr-still-works\\n'); sys.stderr.flush()\n"
    "os.write(2, b'fd2-still-works\\n')\n"
)
TIMEOUT = 120


def clean_environment(**extra: str) -> dict[str, str]:
    """A copy of this process's environment without TensorFlow's or oneDNN's settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TF_", "ONEDNN_"))
    }
    env.update(extra)
    return env


def noisy_lines(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if any(word in line.lower() for word in NOISE)
    ]


# --------------------------------------------------------------------------- environment_record


def test_environment_record_lists_installed_versions_and_seed():
    record = environment_record(seed=7)
    parts = record.split(" | ")
    assert parts[0] == f"python {platform.python_version()}"
    for package in PACKAGES:
        assert f"{package} {version(package)}" in parts, package
    assert "keras backend tensorflow" in parts
    assert parts[-1] == "seed 7"


def test_environment_record_without_seed():
    assert environment_record().endswith(" | seed None")
    assert environment_record(seed=0).endswith(" | seed 0")


def test_environment_record_marks_missing_packages(monkeypatch):
    import helpers.environment as module

    monkeypatch.setattr(
        module, "_PACKAGES", ("numpy", "no-such-package-for-this-test")
    )
    record = module.environment_record(seed=1)
    assert f"numpy {version('numpy')}" in record
    assert "no-such-package-for-this-test (not installed)" in record


# --------------------------------------------------------------------------- stderr workaround


def test_import_helpers_prints_no_tensorflow_startup_notices(kernel_probes):
    stderr = kernel_probes["default"]["stderr"]
    assert noisy_lines(stderr) == [], stderr
    assert "absl::InitializeLog" not in stderr, stderr


def test_import_helpers_restores_stderr(kernel_probes):
    # The workaround mutes file descriptor 2 only while TensorFlow is imported.
    stderr = kernel_probes["default"]["stderr"]
    assert "python-stderr-still-works" in stderr
    assert "fd2-still-works" in stderr


def test_WORKAROUND_STILL_NEEDED_plain_tensorflow_import_is_noisy(
    kernel_probes,
):
    """The contrast that justifies helpers._import_tensorflow_quietly.

    IF THIS TEST FAILS, TensorFlow no longer writes its start-up notices to stderr on
    import when TF_CPP_MIN_LOG_LEVEL=3: the file-descriptor workaround in
    helpers/__init__.py may be removable (setting TF_CPP_MIN_LOG_LEVEL, or nothing at
    all, would then do).
    """
    stderr = kernel_probes["tensorflow_first"]["stderr"]
    assert noisy_lines(stderr), (
        "plain `import tensorflow` (TF_CPP_MIN_LOG_LEVEL=3) printed no oneDNN/CUDA notice "
        "to stderr: the stderr workaround helpers._import_tensorflow_quietly may be "
        f"removable. stderr was: {stderr!r}"
    )


def test_quiet_import_is_a_no_op_once_tensorflow_is_loaded():
    import helpers

    assert "tensorflow" in sys.modules
    before = os.fstat(2)
    helpers._import_tensorflow_quietly()
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


# --------------------------------------------------------------------------- kernel choice
#
# helpers/__init__.py fixes TF_ENABLE_ONEDNN_OPTS=0, ONEDNN_MAX_CPU_ISA=AVX2 and
# TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0 before TensorFlow is imported, so that a
# seed gives the same numbers on every x86-64 CPU with AVX2 (README, "Reproducibility").

import json  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import tensorflow as tf  # noqa: E402

import helpers  # noqa: E402
from helpers.environment import (  # noqa: E402
    cpu_vector_extensions,
    onednn_enabled,
    tensorflow_kernels,
)

KERNEL_PROBE = (
    "import json, os, warnings\n"
    "{before}"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    warnings.simplefilter('always')\n"
    "    import helpers\n"
    + AFTER_IMPORT
    + "from helpers.environment import onednn_enabled, tensorflow_kernels\n"
    "import numpy as np, tensorflow as tf\n"
    "rng = np.random.default_rng(0)\n"
    "a, b = rng.normal(size=(16, 60)), rng.normal(size=(60, 60))\n"
    "product = tf.matmul(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()\n"
    "g, w = rng.normal(size=(8, 4, 4, 32)), rng.normal(size=(3, 3, 16, 32))\n"
    "conv_input_gradient = tf.raw_ops.Conv2DBackpropInput(\n"
    "    input_sizes=[8, 4, 4, 16], filter=tf.constant(w, tf.float32),\n"
    "    out_backprop=tf.constant(g, tf.float32), strides=[1, 1, 1, 1],\n"
    "    padding='SAME').numpy()\n"
    "print(json.dumps({{'onednn': onednn_enabled(),\n"
    "    'kernels': tensorflow_kernels(),\n"
    "    'variables': [os.environ.get(k) for k in\n"
    "                  ('TF_ENABLE_ONEDNN_OPTS', 'ONEDNN_MAX_CPU_ISA',\n"
    "                   'TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL')],\n"
    "    'product': product.tobytes().hex(),\n"
    "    'conv_input_gradient': conv_input_gradient.tobytes().hex(),\n"
    "    'warnings': [(type(w.message).__name__, str(w.message)) for w in caught]}}))\n"
)
BOOK = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0",
}
SGEMM = {"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "1"}
KERNEL_CASES = {
    "default": ("", {}),
    "reader_sets_onednn": ("", {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "reader_caps_sse41": ("", {"ONEDNN_MAX_CPU_ISA": "SSE41"}),
    "reader_lifts_the_cap": ("", {"ONEDNN_MAX_CPU_ISA": "ALL"}),
    # TensorFlow's own default: Eigen hands its matrix products to oneDNN.
    "sgemm": ("", SGEMM),
    "sgemm_sse41": ("", {**SGEMM, "ONEDNN_MAX_CPU_ISA": "SSE41"}),
    # With the log level helpers sets: the plain import's notices are the
    # contrast for helpers' muted one (the test at the top of this file).
    "tensorflow_first": (
        "import tensorflow\n",
        {"TF_CPP_MIN_LOG_LEVEL": "3"},
    ),
    "tensorflow_first_with_book_settings": ("import tensorflow\n", BOOK),
}


def run_kernel_probe(before: str = "", **extra: str) -> dict:
    process = subprocess.run(
        [sys.executable, "-c", KERNEL_PROBE.format(before=before)],
        capture_output=True,
        text=True,
        env=clean_environment(**extra),
        timeout=TIMEOUT,
    )
    assert process.returncode == 0, process.stderr
    probe = json.loads(process.stdout.strip().splitlines()[-1])
    return {**probe, "stderr": process.stderr}


@pytest.fixture(scope="module")
def kernel_probes():
    """Each way a reader can meet the kernel choice, each in a fresh interpreter."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_kernel_probe, before, **extra)
            for name, (before, extra) in KERNEL_CASES.items()
        }
        return {name: future.result() for name, future in futures.items()}


def warning_texts(probe: dict) -> list[str]:
    assert all(
        name == "KernelChoiceWarning" for name, _ in probe["warnings"]
    ), probe["warnings"]
    return [text for _, text in probe["warnings"]]


def test_the_book_settings_are_the_ones_documented():
    assert helpers.BOOK_KERNEL_SETTINGS == BOOK


def test_import_helpers_sets_the_book_kernels_without_a_warning(
    kernel_probes,
):
    probe = kernel_probes["default"]
    assert probe["variables"] == ["0", "AVX2", "0"]
    assert probe["onednn"] is False
    assert probe["warnings"] == []


def test_a_readers_own_onednn_setting_is_respected_and_warned_about(
    kernel_probes,
):
    probe = kernel_probes["reader_sets_onednn"]
    assert probe["variables"] == ["1", "AVX2", "0"]
    assert (
        probe["onednn"] is True
    )  # the variable alone decides: the setting was honoured
    [text] = warning_texts(probe)
    assert "TF_ENABLE_ONEDNN_OPTS is set to '1'" in text


def test_a_readers_own_isa_cap_is_respected_and_warned_about(kernel_probes):
    probe = kernel_probes["reader_caps_sse41"]
    assert probe["variables"] == ["0", "SSE41", "0"]
    [text] = warning_texts(probe)
    assert "ONEDNN_MAX_CPU_ISA is set to 'SSE41'" in text


def test_tensorflow_imported_first_is_warned_about_once(kernel_probes):
    [text] = warning_texts(kernel_probes["tensorflow_first"])
    assert "imported before helpers" in text
    assert (
        "TF_ENABLE_ONEDNN_OPTS=0 and ONEDNN_MAX_CPU_ISA=AVX2 and "
        "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0" in text
    )


def test_tensorflow_imported_first_with_the_books_settings_is_not_warned_about(
    kernel_probes,
):
    probe = kernel_probes["tensorflow_first_with_book_settings"]
    assert probe["warnings"] == []
    assert probe["product"] == kernel_probes["default"]["product"]


def test_the_book_settings_give_the_same_bits_in_every_process(
    kernel_probes, capsys
):
    # The probe's own code, run again in this interpreter (pytest imported
    # helpers first: tests/conftest.py), must reproduce the default probe's
    # bits: the same settings in another process.  (TensorFlow imported first
    # with the book's variables is compared in the test above.)
    exec(KERNEL_PROBE.format(before=""), {})
    here = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    default = kernel_probes["default"]
    if here["kernels"] != default["kernels"]:
        pytest.skip(f"this process runs other kernels: {here['kernels']}")
    assert here["product"] == default["product"]
    assert here["conv_input_gradient"] == default["conv_input_gradient"]


def test_with_the_books_kernels_no_isa_cap_changes_a_matrix_product(
    kernel_probes,
):
    """The book's settings make Eigen multiply with its own kernel, compiled into
    TensorFlow for every x86-64 CPU alike: holding oneDNN to SSE4.1 or lifting its
    cap (on this CPU, up to AVX-512 or AMX where it has them) leaves every bit of a
    product as it was.  The cap stands in for another CPU, which this test cannot
    borrow.
    """
    default = kernel_probes["default"]["product"]
    assert kernel_probes["reader_caps_sse41"]["product"] == default
    assert kernel_probes["reader_lifts_the_cap"]["product"] == default


AVX2_CPU = pytest.mark.skipif(
    "avx2" not in (cpu_vector_extensions() or []),
    reason="needs a CPU with AVX2 to compare with",
)


@AVX2_CPU
def test_WHY_EIGENS_CONTRACTION_onednn_sgemm_rounds_by_the_isa(
    kernel_probes,
):
    """The contrast that justifies TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=0: with
    TensorFlow's default, Eigen's matrix products run oneDNN's sgemm, which rounds
    differently when held to another instruction set, as it does on another CPU.

    IF THIS TEST FAILS, TensorFlow's default no longer depends on the instruction
    set: re-check what helpers fixes and why (helpers/__init__.py).
    """
    assert (
        kernel_probes["sgemm_sse41"]["product"]
        != kernel_probes["sgemm"]["product"]
    )


@AVX2_CPU
def test_KNOWN_LIMIT_a_convolutions_input_gradient_still_follows_the_isa(
    kernel_probes,
):
    """One thing the third setting does not reach: TensorFlow's Conv2DBackpropInput on
    the CPU still runs oneDNN code chosen by instruction set; the AVX2 cap makes every
    AVX2-or-better CPU run the same code (an emulated AMD EPYC matched this machine).
    TensorFlow's convolutions also vary by CPU for another reason this test cannot show
    on one machine (sums deeper than about 400, blocked by L1 cache size), which is why
    chapter 7's convolutional networks train and predict in the lanes' compiled loop
    (README, "Reproducibility").

    IF THIS TEST FAILS, convolutions no longer reach oneDNN: update the comment in
    helpers/__init__.py.
    """
    assert (
        kernel_probes["reader_caps_sse41"]["conv_input_gradient"]
        != kernel_probes["default"]["conv_input_gradient"]
    )


# That loky's worker processes run the book's kernels too is checked in the
# pool tests/test_cv.py starts anyway (test_local_workers_are_configured_when_
# they_start): each worker imports TensorFlow, about 5 s of processor time.


def test_environment_record_names_the_kernels_and_the_platform():
    record = environment_record(seed=7).split(" | ")
    assert onednn_enabled() is False
    assert tensorflow_kernels() in record
    assert record[-2].startswith(
        f"{platform.system().lower()} {platform.machine()} ("
    )


def test_cpu_vector_extensions_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma avx512f\n"
    )
    assert cpu_vector_extensions(cpuinfo) == ["avx2", "fma", "avx512f"]
    cpuinfo.write_text("flags\t\t: fpu sse4_1 avx\n")
    assert cpu_vector_extensions(cpuinfo) == []
    assert cpu_vector_extensions(tmp_path / "missing") is None


def test_importing_helpers_puts_the_imported_modules_out_of_the_collectors_reach():
    """helpers freezes what its imports made (helpers/__init__.py), so full
    collections skip TensorFlow's modules, while new garbage is still
    collected."""
    import gc
    import weakref

    assert gc.isenabled()
    assert gc.get_freeze_count() > 100_000
    frozen = {id(o) for o in gc.get_objects()}  # the collector's generations
    assert id(tf.matmul) not in frozen

    class Cycle:
        pass

    # (Watched through a weak reference, not by gc.collect's count: threads
    # an earlier test left, such as a closed Dask cluster's, make garbage of
    # their own meanwhile.)
    first = Cycle()
    first.other = Cycle()
    first.other.other = first
    alive = weakref.ref(first.other)
    del first
    assert alive() is not None  # a cycle: reference counts alone keep it
    gc.collect()
    assert alive() is None
