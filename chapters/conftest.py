"""How nbval checks the chapters' stored outputs: exactly where the book's numbers reproduce.

The book fixes TensorFlow's CPU kernels (``helpers/__init__.py``) and replaces
the few estimated reciprocals in them with divisions (``helpers/compat.py``),
so with the pinned packages a seed prints the same numbers on every x86-64
Linux machine.
There, ``pytest --nbval chapters/`` compares *every* cell's stored text output
with a fresh execution, including the training-dependent cells marked
``# NBVAL_IGNORE_OUTPUT``, down to the last printed digit.  Only cells tagged
``output-varies`` (the hidden environment record, wall-clock timings) are left
out, and cells tagged ``varies-by-cpu`` keep nbval's usual rule (their
``# NBVAL_IGNORE_OUTPUT`` holds, and the hidden assertion cells' bands are
their check).  That tag is for results that TensorFlow computes differently
on different CPUs whatever the kernel settings: matrix products deeper than
about 400, where Eigen splits the sum into blocks sized by the CPU's L1
cache (measured: a 512-deep product and a convolution's weight gradient
differ between an Intel Xeon and an emulated AMD EPYC).  Until session 14
chapter 7's convolutional networks carried it; since then they are trained
and scored by the lanes' compiled loop (``helpers/lane_kernel.py``), which
gives the same bits on every x86-64 CPU, and no chapter needs the tag.

Anywhere else (another CPU architecture or operating system, a CPU without
AVX2, other package versions than ``requirements.txt`` pins, or the reader's
own ``TF_ENABLE_ONEDNN_OPTS``, ``ONEDNN_MAX_CPU_ISA`` or
``TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL``) floating-point results legitimately differ, so
``# NBVAL_IGNORE_OUTPUT`` keeps its usual meaning and the hidden assertion
cells' bands are the check.  The header of the pytest run says which mode was
chosen and why.  Images are never compared byte for byte (nbval's default);
the numbers they plot are.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

VARIES_TAG = "output-varies"
CPU_TAG = "varies-by-cpu"
# The values helpers/__init__.py gives these variables when they are unset.
BOOK_KERNEL_SETTINGS = {
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "0",
}
ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
OFFLINE_GUARD = ROOT / "tests" / "offline"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
# helpers.cv.N_JOBS_VARIABLE (not imported: importing helpers loads TensorFlow)
N_JOBS_VARIABLE = "DROPOUT_BOOK_N_JOBS"


def pinned_versions(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """``{package: version}`` for every ``name==version`` line of a requirements file."""
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, pinned = line.partition("==")
            pins[name.strip().split("[")[0]] = pinned.strip()
    return pins


def exact_mode_reason(
    *,
    system: str | None = None,
    machine: str | None = None,
    environ: dict[str, str] | None = None,
    installed=None,
    pins: dict[str, str] | None = None,
    cpu_flags: set[str] | None = None,
) -> str | None:
    """``None`` when outputs must match exactly here, else why they cannot be expected to.

    Every argument defaults to this machine's actual value; tests pass others.
    """
    system = sys.platform if system is None else system
    machine = platform.machine() if machine is None else machine
    environ = os.environ if environ is None else environ
    pins = pinned_versions() if pins is None else pins
    installed = installed or _installed_version
    if system != "linux" or machine not in ("x86_64", "AMD64"):
        return f"the book's outputs were produced on x86-64 Linux; this is {system} {machine}"
    cpu_flags = _cpu_flags() if cpu_flags is None else cpu_flags
    if not {"avx2", "fma"} <= cpu_flags:
        return "this CPU lacks AVX2 or FMA, so oneDNN's matrix products run other code"
    for name, value in BOOK_KERNEL_SETTINGS.items():
        setting = environ.get(name)
        if setting is not None and setting.strip().upper() != value:
            return f"{name}={setting} selects other kernels than the book's ({value})"
    for name, pinned in sorted(pins.items()):
        found = installed(name)
        if found != pinned:
            return f"{name} {found or '(not installed)'} is installed, the book pins {pinned}"
    return None


def _installed_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags = next(
        (line for line in text.splitlines() if line.startswith("flags")), ""
    )
    return set(flags.partition(":")[2].split())


def _cell_tags(item) -> list:
    return list(item.cell.get("metadata", {}).get("tags", []))


def pytest_configure(config):
    config._book_exact_reason = exact_mode_reason()
    # What the README's `pytest --nbval chapters/` needs, set here so that the
    # bare command does what `make test-notebooks` does:
    # - run the notebooks with this environment's Python, not whatever kernel
    #   named in the notebook a reader has installed elsewhere (unless they name
    #   one with --nbval-kernel-name);
    # - mask what legitimately differs between runs (tests/nbval_sanitize.cfg),
    #   unless they give their own file;
    # - the offline guard (tests/offline/sitecustomize.py) on PYTHONPATH, which
    #   the kernels nbval starts, and their workers, inherit.
    option = config.option
    if hasattr(option, "nbval_current_env"):
        if not option.nbval_kernel_name:
            option.nbval_current_env = True
        if option.nbval_sanitize_with is None and SANITIZE.is_file():
            option.nbval_sanitize_with = str(SANITIZE)
    paths = [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    if OFFLINE_GUARD.is_dir() and str(OFFLINE_GUARD) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(OFFLINE_GUARD), *paths]
        )
    share = notebook_share_of_cores(
        os.environ.get("PYTEST_XDIST_WORKER_COUNT"), os.cpu_count()
    )
    if share is not None:
        os.environ.setdefault(N_JOBS_VARIABLE, str(share))


def notebook_share_of_cores(
    xdist_workers: str | None, cores: int | None
) -> int | None:
    """Worker processes each notebook should train on, or ``None`` for its default.

    With pytest-xdist running several notebooks at once (its workers say how
    many in ``PYTEST_XDIST_WORKER_COUNT``), each notebook's kernel gets an
    equal share of the cores, at least one, through helpers' ``n_jobs``
    default (``helpers.cv.default_n_jobs``): on two cores, two notebooks
    each train in their own kernel rather than each starting two worker
    processes that then queue for the same two cores, and no notebook
    starts TensorFlow in worker processes of its own.  Measured in session
    15, nbval here: 466 and 519 s this way, 505 s with two workers per
    notebook, within the host's run-to-run spread.  Scores do not depend
    on it (tests/test_cv.py).  A value the reader set is kept.
    """
    if not xdist_workers or int(xdist_workers) < 2:
        return None
    return max(1, (cores or 1) // int(xdist_workers))


def pytest_report_header(config):
    reason = getattr(config, "_book_exact_reason", None)
    if reason is None:
        return (
            "chapters: x86-64 Linux with the pinned packages: every output is compared exactly "
            f"(cells tagged {VARIES_TAG!r} excepted, {CPU_TAG!r} by nbval's own rule)"
        )
    return f"chapters: training outputs checked by the notebooks' bands, not exactly: {reason}"


def stored_run_seconds(path: Path) -> float:
    """How long the notebook's stored run took: its code cells' recorded times, summed.

    ``make execute`` (nbclient) records when each cell started and finished
    in the cell's metadata; a notebook without such records counts as 0.
    """
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    total = 0.0
    for cell in notebook.get("cells", []):
        times = cell.get("metadata", {}).get("execution", {})
        start = times.get("iopub.execute_input")
        end = times.get("shell.execute_reply")
        if start and end:
            total += (
                datetime.fromisoformat(end) - datetime.fromisoformat(start)
            ).total_seconds()
    return total


def longest_stored_run_first(items) -> None:
    """Order the collected cells by notebook, the notebook whose stored run took longest first.

    pytest-xdist hands each worker the next notebook in collection order
    when its current one is nearly done (``--dist loadfile`` with
    ``--no-loadscope-reorder``, the Makefile's options).  Started last, the
    longest notebook (chapter 7, about a third of the work) ran on alone for
    about a minute with the other core idle (session 18, ``vmstat``);
    started first, the others fill the second core meanwhile.  Each
    notebook's cells keep their order (the sort is stable).
    """
    seconds: dict = {}

    def key(item):
        path = Path(item.path)
        if path not in seconds:
            seconds[path] = (
                stored_run_seconds(path) if path.suffix == ".ipynb" else 0.0
            )
        return -seconds[path], str(path)

    items.sort(key=key)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if getattr(config.option, "nbval", False) or getattr(
        config.option, "nbval_lax", False
    ):
        longest_stored_run_first(items)
    if getattr(config, "_book_exact_reason", "no") is not None:
        return
    if not getattr(config.option, "nbval", False):
        return  # --nbval-lax or plain pytest: leave nbval's choices alone
    for item in items:
        if not hasattr(item, "cell") or not hasattr(item, "options"):
            continue
        tags = _cell_tags(item)
        if VARIES_TAG in tags:
            item.options["check"] = False
        elif CPU_TAG not in tags:
            item.options["check"] = True
