"""Hygiene of the chapter notebooks as stored artefacts (nothing is executed here).

nbval (``make test-notebooks``) re-runs the notebooks; these checks cover what
re-running cannot: that the stored outputs a reader of the HTML book sees are
complete, clean and were produced top to bottom in a fresh kernel.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = sorted(p for p in CHAPTERS.glob("*.ipynb"))
MAX_BYTES = 1_500_000  # images at 100 dpi keep a chapter far below this

ABSOLUTE_PATH = re.compile(
    r"(?<![\w.])/(?:home|root|Users|tmp|work|var|opt|usr)/[^\s\"'<>]*"
)
NOISE = re.compile(
    r"Traceback|Warning:|WARNING|oneDNN|cuda|absl::|UserWarning|DeprecationWarning"
)


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part.get("chapters", [])]
    return files


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def output_texts(notebook: dict):
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        for output in cell.get("outputs", []):
            parts = []
            if "text" in output:
                parts.append("".join(output["text"]))
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    parts.append(
                        value if isinstance(value, str) else json.dumps(value)
                    )
            yield index, output, "\n".join(parts)


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 3


def test_toc_and_chapters_agree():
    listed = toc_files()
    for entry in listed:
        candidates = [
            ROOT / f"{entry}{suffix}" for suffix in (".ipynb", ".md", "")
        ]
        assert any(c.is_file() for c in candidates), (
            f"_toc.yml lists {entry}, which does not exist"
        )
    for path in NOTEBOOKS:
        assert str(path.relative_to(ROOT).with_suffix("")) in listed, (
            f"{path.name} is not in _toc.yml"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestStoredNotebook:
    def test_has_outputs_and_no_errors(self, path):
        notebook = load(path)
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert code and any(c.get("outputs") for c in code), (
            "stored without outputs"
        )
        for index, output, _ in output_texts(notebook):
            assert output["output_type"] != "error", (
                f"cell {index} stores an error"
            )

    def test_no_warnings_logs_or_tracebacks(self, path):
        for index, output, text in output_texts(load(path)):
            if output.get("name") == "stderr":
                pytest.fail(
                    f"cell {index} stores stderr output: {text[:200]!r}"
                )
            assert not NOISE.search(text), (
                f"cell {index} stores log noise: {NOISE.search(text)[0]!r}"
            )

    def test_no_absolute_paths_user_or_host_names(self, path):
        user, host = getpass.getuser(), socket.gethostname()
        for index, _, text in output_texts(load(path)):
            assert not ABSOLUTE_PATH.search(text), (
                f"cell {index}: {ABSOLUTE_PATH.search(text)[0]!r}"
            )
            if len(host) > 3:
                assert host not in text, f"cell {index} shows the host name"
            if user not in ("root",) and len(user) > 2:
                assert user not in text, f"cell {index} shows the user name"

    def test_executed_top_to_bottom_in_a_fresh_kernel(self, path):
        counts = [
            c.get("execution_count")
            for c in load(path)["cells"]
            if c["cell_type"] == "code"
        ]
        assert counts == list(range(1, len(counts) + 1)), (
            f"execution counts {counts}"
        )

    def test_kernel_and_metadata(self, path):
        metadata = load(path)["metadata"]
        assert metadata["kernelspec"]["name"] == "python3"
        assert "widgets" not in metadata, "widget state is stored"

    def test_size(self, path):
        assert path.stat().st_size < MAX_BYTES, f"{path.stat().st_size} bytes"

    def test_title_first(self, path):
        first = load(path)["cells"][0]
        assert first["cell_type"] == "markdown" and "".join(
            first["source"]
        ).startswith("# ")

    def test_environment_record_first_and_hidden(self, path):
        code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
        source = "".join(code[0]["source"])
        assert "environment_record" in source
        assert "remove-cell" in code[0].get("metadata", {}).get("tags", [])

    def test_environment_record_is_exempt_from_exact_comparison(self, path):
        # chapters/conftest.py compares every other output exactly on x86-64 Linux.
        code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
        assert "output-varies" in code[0].get("metadata", {}).get("tags", [])

    def test_cells_that_vary_are_also_ignored_by_plain_nbval(self, path):
        # Off x86-64 Linux (and under plain nbval) only NBVAL_IGNORE_OUTPUT exempts a
        # cell; cells tagged varies-by-cpu rely on it everywhere (chapters/conftest.py).
        for index, cell in enumerate(
            c for c in load(path)["cells"] if c["cell_type"] == "code"
        ):
            tags = cell.get("metadata", {}).get("tags", [])
            if "output-varies" in tags or "varies-by-cpu" in tags:
                assert "# NBVAL_IGNORE_OUTPUT" in "".join(cell["source"]), (
                    f"code cell {index}"
                )


# --- The MyST text pair of each chapter (jupytext) --------------------------

PAIR_FORMAT = "ipynb,md:myst"


def pair_problem(path: Path) -> str | None:
    """What is wrong with a notebook's MyST text pair, or None when it is in step.

    Reviewers read the .md; nbval and the book use the .ipynb.  The pair is
    in step when the .md is exactly what jupytext writes from the notebook.
    """
    import jupytext

    notebook = jupytext.read(path)
    if notebook.metadata.get("jupytext", {}).get("formats") != PAIR_FORMAT:
        return f"{path.name} is not paired: run `jupytext --set-formats {PAIR_FORMAT} {path}`"
    text = path.with_suffix(".md")
    if not text.exists():
        return f"{text.name} is missing: run `make sync`"
    if jupytext.writes(notebook, fmt="md:myst") != text.read_text():
        return (
            f"{path.name} and {text.name} differ: after editing one, run `make sync` "
            "(the newer file wins), then `make execute` (CONTRIBUTING.md)"
        )
    return None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_an_up_to_date_myst_text_pair(path):
    assert pair_problem(path) is None, pair_problem(path)


def test_a_pair_edited_on_one_side_is_caught(tmp_path):
    import shutil

    notebook = tmp_path / NOTEBOOKS[0].name
    stored = load(NOTEBOOKS[0])
    unpaired = {**stored, "metadata": {**stored["metadata"]}}
    unpaired["metadata"].pop("jupytext", None)
    notebook.write_text(json.dumps(unpaired))
    assert "not paired" in pair_problem(notebook)
    shutil.copy(NOTEBOOKS[0], notebook)
    text = notebook.with_suffix(".md")
    shutil.copy(NOTEBOOKS[0].with_suffix(".md"), text)
    assert pair_problem(notebook) is None
    original = text.read_text()
    text.write_text(original.replace("dropout", "drop-out", 1))
    assert "differ" in pair_problem(notebook)
    text.unlink()
    assert "missing" in pair_problem(notebook)


# --- Figures and tables: named, captioned and cited ---------------------------

FIGURE_NAME = re.compile(r"^[a-z0-9]+-(fig|tab)-[a-z0-9-]+$")
HAND_NUMBERED = re.compile(r"\*\*(Figure|Table)\b|\b(Figure|Table)s? \d")


def display_outputs(cell: dict) -> list[dict]:
    return [
        o
        for o in cell.get("outputs", [])
        if o["output_type"] in ("display_data", "execute_result")
        and "application/papermill.record/text/plain" not in o.get("data", {})
    ]


def is_table(output: dict) -> bool:
    return "<table" in "".join(output.get("data", {}).get("text/html", ""))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_figure_and_table_is_named_captioned_and_cited(path):
    notebook = load(path)
    prose = "\n".join(
        "".join(c["source"])
        for c in notebook["cells"]
        if c["cell_type"] == "markdown"
    )
    names = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        shown = [
            o
            for o in display_outputs(cell)
            if "image/png" in o.get("data", {}) or is_table(o)
        ]
        if not shown:
            continue
        where = f"{path.name} cell {index}"
        # myst-nb wraps each display output: one per cell, or the name repeats.
        assert len(shown) == 1, (
            f"{where}: {len(shown)} figures/tables in one cell"
        )
        figure = cell["metadata"].get("mystnb", {}).get("figure", {})
        name, caption = figure.get("name", ""), figure.get("caption", "")
        assert FIGURE_NAME.match(name), f"{where}: name {name!r}"
        assert len(caption.split()) >= 5, f"{where}: caption {caption!r}"
        kind = "tab" if is_table(shown[0]) else "fig"
        assert f"-{kind}-" in name, f"{where}: {name} is a {kind}"
        # A table is numbered as a table by tools/numbered_tables.py.
        assert (figure.get("classes") == "table") == (kind == "tab"), where
        assert f"{{numref}}`{name}`" in prose, (
            f"{where}: {name} is never cited"
        )
        names.append(name)
    assert len(names) == len(set(names)), f"{path.name}: repeated names"
    assert not HAND_NUMBERED.search(prose), (
        f"{path.name}: hand-numbered figure or table: "
        f"{HAND_NUMBERED.search(prose).group(0)!r}"
    )
