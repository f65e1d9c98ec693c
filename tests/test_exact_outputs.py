"""chapters/conftest.py: where nbval compares the chapters' training outputs exactly.

The unit tests call its decision function with made-up machines; the last two
run nbval for real, on a tiny notebook in a scratch project holding copies of
the conftest and of requirements.txt, and show that a wrong stored number in a
``# NBVAL_IGNORE_OUTPUT`` cell fails on x86-64 Linux with the pinned packages
while the same notebook passes where only bands apply.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFTEST = ROOT / "chapters" / "conftest.py"


def load_conftest():
    spec = importlib.util.spec_from_file_location(
        "chapters_conftest", CONFTEST
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conftest = load_conftest()
PINS = {"tensorflow": "2.21.0", "numpy": "2.4.6"}


def matching(name):
    return PINS.get(name)


def reason(**overrides):
    arguments = dict(
        system="linux",
        machine="x86_64",
        environ={},
        installed=matching,
        pins=PINS,
        cpu_flags={"sse4_1", "avx", "avx2", "fma"},
    )
    arguments.update(overrides)
    return conftest.exact_mode_reason(**arguments)


def test_exact_on_x86_64_linux_with_the_pins():
    assert reason() is None
    assert (
        reason(
            environ={
                "TF_ENABLE_ONEDNN_OPTS": "0",
                "ONEDNN_MAX_CPU_ISA": "avx2",
            }
        )
        is None
    )
    assert (
        reason(cpu_flags={"avx2", "fma", "avx512f"}) is None
    )  # the cap holds it to AVX2


def test_the_conftest_expects_the_settings_helpers_makes():
    import helpers

    assert conftest.BOOK_KERNEL_SETTINGS == helpers.BOOK_KERNEL_SETTINGS


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"machine": "aarch64"}, "aarch64"),
        ({"system": "darwin", "machine": "arm64"}, "darwin arm64"),
        ({"system": "win32", "machine": "AMD64"}, "win32"),
        ({"cpu_flags": {"sse4_1", "avx"}}, "lacks AVX2"),
        (
            {"environ": {"TF_ENABLE_ONEDNN_OPTS": "1"}},
            "TF_ENABLE_ONEDNN_OPTS=1",
        ),
        (
            {"environ": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}},
            "ONEDNN_MAX_CPU_ISA=AVX512_CORE",
        ),
        (
            {"environ": {"TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL": "1"}},
            "TENSORFLOW_USE_CUSTOM_CONTRACTION_KERNEL=1",
        ),
        (
            {
                "installed": lambda name: (
                    "2.20.0" if name == "tensorflow" else PINS[name]
                )
            },
            "tensorflow 2.20.0",
        ),
        (
            {
                "installed": lambda name: (
                    None if name == "numpy" else PINS[name]
                )
            },
            "numpy (not installed)",
        ),
    ],
)
def test_bands_elsewhere_and_the_reason_is_named(overrides, expected):
    why = reason(**overrides)
    assert why is not None and expected in why


def test_pinned_versions_reads_every_exact_pin(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        "# comment\nnumpy==2.4.6  # why\njax[cpu]==0.10.2\nloose>=1\n\n"
    )
    assert conftest.pinned_versions(requirements) == {
        "numpy": "2.4.6",
        "jax": "0.10.2",
    }


def test_the_projects_pins_are_read():
    pins = conftest.pinned_versions()
    assert pins["tensorflow"] and pins["keras"] and pins["nbval"]


# --------------------------------------------------------------------------- nbval, for real


def stored_cell(count: int, source: str, stored: str, tag: str | None = None):
    """A code cell whose stored stdout is ``stored`` (right or wrong)."""
    return nbformat.v4.new_code_cell(
        source,
        execution_count=count,
        outputs=[
            nbformat.v4.new_output(
                "stream", name="stdout", text=stored + "\n"
            )
        ],
        metadata={"tags": [tag]} if tag else {},
    )


def scratch_project(tmp_path: Path) -> Path:
    """A project with the real conftest and pins, and a notebook with four wrong stored outputs.

    Only two should fail in exact mode: the ignored cell's wrong number, and the
    cell tagged varies-by-cpu that nbval's own rule compares (no
    NBVAL_IGNORE_OUTPUT).  Anywhere else only the latter fails.
    """
    (tmp_path / "chapters").mkdir()
    shutil.copy(CONFTEST, tmp_path / "chapters" / "conftest.py")
    shutil.copy(ROOT / "requirements.txt", tmp_path / "requirements.txt")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        stored_cell(
            1, "# NBVAL_IGNORE_OUTPUT\nprint(round(2 / 3, 4))", "0.6666"
        ),
        stored_cell(
            2,
            "# NBVAL_IGNORE_OUTPUT\nprint('a timing')",
            "12.3 s",
            tag="output-varies",
        ),
        stored_cell(
            3,
            "# NBVAL_IGNORE_OUTPUT\nprint('a convolutional network')",
            "97.1%",
            tag="varies-by-cpu",
        ),
        stored_cell(4, "print('a fixed text')", "a fix", tag="varies-by-cpu"),
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "chapters" / "scratch.ipynb")
    return tmp_path


def makefile_nbval_options() -> list[str]:
    """The options ``make test-notebooks`` adds to ``pytest --nbval chapters/``."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(r"^NBVAL_OPTIONS\s*:=(.*)$", text, flags=re.MULTILINE)
    assert found, "Makefile: no NBVAL_OPTIONS line"
    return found.group(1).split()


def run_nbval(project: Path, *options: str, **extra_env: str) -> str:
    env = {
        k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"
    }
    env.update(extra_env)
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            *options,
            "chapters",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return process.stdout + process.stderr


def outcome(output: str) -> tuple[int, int]:
    passed = re.search(r"(\d+) passed", output)
    failed = re.search(r"(\d+) failed", output)
    return (
        int(passed.group(1)) if passed else 0,
        int(failed.group(1)) if failed else 0,
    )


@pytest.fixture(scope="module")
def nbval_runs(tmp_path_factory):
    project = scratch_project(tmp_path_factory.mktemp("scratch"))
    return {
        "as_configured": run_nbval(project),
        "other_kernels": run_nbval(project, TF_ENABLE_ONEDNN_OPTS="1"),
        "as_make_runs_it": run_nbval(project, *makefile_nbval_options()),
    }


def expected_outcome(output: str) -> tuple[int, int]:
    """(passed, failed) for the scratch notebook in the mode this machine gets
    (and the header must name that mode): in exact mode the ignored cell's
    wrong number and the varies-by-cpu cell without the marker fail."""
    if conftest.exact_mode_reason() is None:
        assert "every output is compared exactly" in output, output
        return (2, 2)
    assert "checked by the notebooks' bands" in output, output
    return (3, 1)


def test_exact_mode_catches_a_wrong_number_in_an_ignored_cell(nbval_runs):
    output = nbval_runs["as_configured"]
    assert outcome(output) == expected_outcome(output), output
    if conftest.exact_mode_reason() is None:
        # The wrong 0.6666 fails; the cell tagged output-varies is still not
        # compared, and the one tagged varies-by-cpu follows nbval's own rule:
        # ignored with NBVAL_IGNORE_OUTPUT, compared without it.
        assert "0.6667" in output, output
        assert "a fixed text" in output and "97.1%" not in output, output


def test_make_test_notebooks_worker_processes_keep_the_mode(nbval_runs):
    # make test-notebooks runs the notebooks on pytest-xdist workers; the
    # conftest's choices must reach them, not only the process that prints
    # the header.
    assert "-n" in makefile_nbval_options()
    output = nbval_runs["as_make_runs_it"]
    assert re.search(r"\d+ workers? \[4 items\]", output), output
    assert outcome(output) == expected_outcome(output), output


def test_band_mode_keeps_nbval_ignore_output(nbval_runs):
    output = nbval_runs["other_kernels"]
    assert "TF_ENABLE_ONEDNN_OPTS=1" in output, output
    assert outcome(output) == (3, 1), output
    assert "a fixed text" in output, output


# ------------------------------------------------ notebooks side by side under xdist


@pytest.mark.parametrize(
    "workers, cores, share",
    [
        (None, 2, None),  # no xdist: each notebook uses every core
        ("1", 2, None),
        ("2", 2, 1),  # make test on the book's machine
        ("4", 8, 2),
        ("3", 2, 1),  # more notebooks than cores: at least one each
        ("2", None, 1),  # core count unknown
    ],
)
def test_each_notebook_gets_its_share_of_the_cores(workers, cores, share):
    assert conftest.notebook_share_of_cores(workers, cores) == share


def test_the_share_reaches_helpers_under_the_name_it_reads():
    from helpers.cv import N_JOBS_VARIABLE

    assert conftest.N_JOBS_VARIABLE == N_JOBS_VARIABLE


# ------------------------------------------------------------- which notebook starts first


def timed_notebook(path: Path, cell_seconds) -> Path:
    """A notebook whose code cells carry nbclient's records of a run of these lengths."""
    notebook = nbformat.v4.new_notebook()
    for i, seconds in enumerate(cell_seconds):
        cell = nbformat.v4.new_code_cell(f"x = {i}")
        if seconds is not None:
            cell.metadata["execution"] = {
                "iopub.execute_input": "2026-11-30T19:31:38.500000Z",
                "shell.execute_reply": (
                    f"2026-11-30T19:{31 + int(seconds) // 60:02d}:"
                    f"{38 + int(seconds) % 60:02d}.500000Z"
                ),
            }
        notebook.cells.append(cell)
    notebook.cells.append(nbformat.v4.new_markdown_cell("text"))
    nbformat.write(notebook, path)
    return path


def test_stored_run_seconds_adds_up_the_recorded_cells(tmp_path):
    path = timed_notebook(tmp_path / "a.ipynb", [1, None, 20])
    assert conftest.stored_run_seconds(path) == pytest.approx(21.0)
    assert conftest.stored_run_seconds(
        timed_notebook(tmp_path / "b.ipynb", [None])
    ) == pytest.approx(0.0)


def test_notebooks_start_longest_stored_run_first(tmp_path):
    class Cell:  # what the ordering reads of a collected nbval item
        def __init__(self, path, index):
            self.path, self.index = path, index

    short = timed_notebook(tmp_path / "01_short.ipynb", [2, 3])
    long = timed_notebook(tmp_path / "07_long.ipynb", [15, 1])
    middle = timed_notebook(tmp_path / "05_middle.ipynb", [9])
    items = [
        Cell(path, i)
        for path in (short, middle, long)
        for i in range(len(nbformat.read(path, as_version=4).cells) - 1)
    ]
    conftest.longest_stored_run_first(items)
    assert [(item.path.name, item.index) for item in items] == [
        ("07_long.ipynb", 0),
        ("07_long.ipynb", 1),
        ("05_middle.ipynb", 0),
        ("01_short.ipynb", 0),
        ("01_short.ipynb", 1),
    ]


def test_the_chapters_start_with_the_longest_stored_run():
    # What make test-notebooks hands out first: the chapter whose stored run
    # took longest (chapter 7 at the time of writing), whatever its name.
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    seconds = {path: conftest.stored_run_seconds(path) for path in chapters}
    assert all(value > 0 for value in seconds.values()), seconds
    items = [type("Cell", (), {"path": path})() for path in chapters]
    conftest.longest_stored_run_first(items)
    assert items[0].path == max(seconds, key=seconds.get)
    assert "--no-loadscope-reorder" in makefile_nbval_options()
