"""Tests for helpers.environment and for the TensorFlow start-up-noise workaround.

``helpers/__init__.py`` imports TensorFlow with file descriptor 2 muted
(``_import_tensorflow_quietly``).  The subprocess tests prove both halves:
``import helpers`` prints no TensorFlow start-up notices, while a plain
``import tensorflow`` still does -- so the workaround is still needed.  The
plain import runs with ``TF_CPP_MIN_LOG_LEVEL=3``, the setting ``helpers``
itself makes, so the only difference between the two runs is the muting of
file descriptor 2 (and the contrast also shows that the environment variable
alone cannot silence the notices).  Both interpreters start together to keep
the wall-clock cost to about one TensorFlow import.
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
SCRIPTS = {
    "helpers": "import helpers\n" + AFTER_IMPORT,
    "tensorflow": "import tensorflow\n",
}
TIMEOUT = 120


def clean_environment(**extra: str) -> dict[str, str]:
    """A copy of this process's environment without TensorFlow's logging settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "TF_CPP"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def import_runs():
    """stderr and exit code of each script, run concurrently in fresh interpreters."""
    processes = {}
    for name, script in SCRIPTS.items():
        extra = {"TF_CPP_MIN_LOG_LEVEL": "3"} if name == "tensorflow" else {}
        processes[name] = subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_environment(**extra),
            text=True,
        )
    runs = {}
    try:
        for name, process in processes.items():
            _, stderr = process.communicate(timeout=TIMEOUT)
            runs[name] = (process.returncode, stderr)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return runs


def noisy_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(word in line.lower() for word in NOISE)]


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

    monkeypatch.setattr(module, "_PACKAGES", ("numpy", "no-such-package-for-this-test"))
    record = module.environment_record(seed=1)
    assert f"numpy {version('numpy')}" in record
    assert "no-such-package-for-this-test (not installed)" in record


# --------------------------------------------------------------------------- stderr workaround


def test_import_helpers_prints_no_tensorflow_startup_notices(import_runs):
    returncode, stderr = import_runs["helpers"]
    assert returncode == 0, stderr
    assert noisy_lines(stderr) == [], stderr
    assert "absl::InitializeLog" not in stderr, stderr


def test_import_helpers_restores_stderr(import_runs):
    # The workaround mutes file descriptor 2 only while TensorFlow is imported.
    returncode, stderr = import_runs["helpers"]
    assert returncode == 0, stderr
    assert "python-stderr-still-works" in stderr
    assert "fd2-still-works" in stderr


def test_WORKAROUND_STILL_NEEDED_plain_tensorflow_import_is_noisy(import_runs):
    """The contrast that justifies helpers._import_tensorflow_quietly.

    IF THIS TEST FAILS, TensorFlow no longer writes its start-up notices to stderr on
    import when TF_CPP_MIN_LOG_LEVEL=3: the file-descriptor workaround in
    helpers/__init__.py may be removable (setting TF_CPP_MIN_LOG_LEVEL, or nothing at
    all, would then do).
    """
    returncode, stderr = import_runs["tensorflow"]
    assert returncode == 0, stderr
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
