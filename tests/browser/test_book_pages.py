"""Every page of the table of contents, opened in Chromium as a reader would open it.

Each page must load with no console or script error and no failed or external
request, every equation typeset, every image loaded, every link within the
book resolving (file and anchor), and every glued value its source asks for
filled in.  A full-page screenshot of each goes to ``_build/screenshots/`` for
a maintainer to look at.  The search page must find "dropout".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .checker import check_page, glue_references
from .conftest import ROOT, SCREENSHOTS


def toc_pages() -> list[str]:
    """The documents of ``_toc.yml``, in reading order, without suffix
    (``chapters/01_baseline``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            pages.append(chapter["file"])
            pages += [
                section["file"] for section in chapter.get("sections", [])
            ]
    return pages


def source_of(document: str) -> Path:
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{document}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"_toc.yml names {document!r}, but neither .ipynb nor .md exists"
    )


@pytest.mark.parametrize("document", toc_pages())
def test_page_renders_completely_offline(document, site, page):
    root, origin = site
    report = check_page(
        page,
        f"{origin}/{document}.html",
        root=root,
        origin=origin,
        expected_glue=glue_references(source_of(document)),
        screenshot=SCREENSHOTS / f"{document.replace('/', '__')}.png",
    )
    print(
        f"{document}: {report.equations} equations, {report.images} images, "
        f"{report.internal_links} internal links, {report.glued_values} glued values"
    )
    assert not report.problems, "\n".join(report.problems)


def test_search_finds_dropout(site, page):
    root, origin = site
    page.goto(f"{origin}/search.html?q=dropout")
    results = page.locator("#search-results li")
    results.first.wait_for(timeout=30_000)
    assert results.count() >= 5, results.count()
    titles = " ".join(
        page.locator("#search-results li a").all_inner_texts()
    ).lower()
    assert "dropout" in titles
