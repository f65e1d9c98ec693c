"""tools/numbered_tables.py: tables from cell outputs are numbered and cited as tables.

Each test builds a two-cell notebook with Sphinx and myst-nb, the way the
book is built, and reads the HTML.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from sphinx.cmd.build import build_main

TOOLS = Path(__file__).resolve().parents[1] / "tools"

CONF = f"""
import sys
sys.path.insert(0, {str(TOOLS)!r})
extensions = ["myst_nb", "numbered_tables"]
nb_execution_mode = "off"
numfig = True
numfig_format = {{"figure": "Figure %s", "table": "Table %s"}}
exclude_patterns = ["_build"]
"""


def output(html: str) -> dict:
    return nbformat.v4.new_output(
        "execute_result",
        data={"text/html": html, "text/plain": "x"},
        execution_count=1,
    )


def notebook(citation: str) -> nbformat.NotebookNode:
    figure = nbformat.v4.new_code_cell(
        "draw()", outputs=[output("<b>plot</b>")]
    )
    figure.metadata["mystnb"] = {
        "figure": {"name": "fig-curve", "caption": "A curve."}
    }
    table = nbformat.v4.new_code_cell(
        "table", outputs=[output("<table><tr><td>1</td></tr></table>")]
    )
    table.metadata["mystnb"] = {
        "figure": {
            "name": "tab-scores",
            "caption": "Scores.",
            "caption_before": True,
            "classes": "table",
        }
    }
    text = nbformat.v4.new_markdown_cell(
        f"# Page\n\nSee {{numref}}`fig-curve` and {{numref}}`{citation}`."
    )
    return nbformat.v4.new_notebook(
        cells=[text, figure, table],
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
        },
    )


def build(tmp_path: Path, citation: str) -> tuple[int, str]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(CONF)
    nbformat.write(notebook(citation), source / "index.ipynb")
    out = tmp_path / "html"
    status = build_main(
        ["-b", "html", "-W", "-q", "-E", str(source), str(out)]
    )
    page = (
        (out / "index.html").read_text()
        if (out / "index.html").exists()
        else ""
    )
    return status, page


def test_a_table_output_is_numbered_and_cited_as_a_table(tmp_path):
    status, page = build(tmp_path, "tab-scores")
    assert status == 0
    # The citation reads "Table 1" and links to the table's anchor.
    assert re.search(r'href="#tab-scores".*?Table 1', page, re.S)
    # The table's own caption carries its number, above the output.
    block = page[page.index('<div class="numbered-table" id="tab-scores">') :]
    assert block.index("Table 1") < block.index("<table>")
    assert "Scores." in block
    # An output without the class stays a figure, numbered on its own.
    assert re.search(r'href="#fig-curve".*?Figure 1', page, re.S)
    assert "<figure" in page


def test_a_misspelt_reference_fails_the_strict_build(tmp_path, capsys):
    status, _ = build(tmp_path, "tab-score")
    assert status != 0
    assert "tab-score" in capsys.readouterr().err
