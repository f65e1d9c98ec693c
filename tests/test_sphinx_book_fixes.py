"""tools/sphinx_book_fixes.py: the work-arounds the book's build relies on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "sphinx_book_fixes", ROOT / "tools" / "sphinx_book_fixes.py"
)
fixes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixes)


class Env:
    """The two things the hook asks of Sphinx's build environment, over a folder of sources."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.found_docs = {
            p.relative_to(folder).with_suffix("").as_posix()
            for p in folder.rglob("*")
            if p.suffix in (".md", ".ipynb")
        }

    def doc2path(self, doc):
        for suffix in (".ipynb", ".md"):
            if (self.folder / f"{doc}{suffix}").exists():
                return self.folder / f"{doc}{suffix}"
        raise KeyError(doc)


def book(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01.ipynb").write_text("{}")
    (tmp_path / "faq.md").write_text(
        "Mean {glue:text}`chapters/01.ipynb::mean:.1f`%.\n"
    )
    (tmp_path / "intro.md").write_text(
        "No glue here; {glue:text}`local_key` is this page's own.\n"
    )
    return Env(tmp_path)


def test_a_page_gluing_from_a_notebook_is_reread_with_it(tmp_path):
    env = book(tmp_path)
    assert fixes.pages_that_glue_from(
        None, env, set(), {"chapters/01"}, set()
    ) == ["faq"]


def test_nothing_extra_is_reread_when_no_notebook_is(tmp_path):
    env = book(tmp_path)
    assert (
        fixes.pages_that_glue_from(None, env, set(), {"intro"}, set()) == []
    )
    assert (
        fixes.pages_that_glue_from(
            None, env, set(), {"faq", "chapters/01"}, set()
        )
        == []
    )


def test_the_faq_page_is_recognised(tmp_path):
    # The real FAQ must match the pattern, or the hook would silently skip it.
    assert fixes.CROSS_DOCUMENT_GLUE.search((ROOT / "faq.md").read_text())
